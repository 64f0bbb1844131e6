//! Request bodies. [`JsonObject`] is the JSON body extractor of every route: `web::Json` would
//! also build a struct from a JSON array of its fields in order (`["Acme", null, null]`),
//! which no client means and the document does not allow.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::{ApiError, ErrorCode, json_error};

/// A JSON object body deserialized into `T`; every refusal is in the error shape: not JSON
/// (415), over the size limit (413), malformed (400 `invalid_json`), not an object or not a `T`
/// (400 `invalid_body`).
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json(req);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(json_error(JsonPayloadError::ContentType));
            }
            let body = body_bytes(bytes.await)?;
            object(&body).map(JsonObject)
        })
    }
}

fn is_json(req: &HttpRequest) -> bool {
    matches!(req.mime_type(), Ok(Some(mime)) if mime.subtype() == actix_web::mime::JSON
        || mime.suffix() == Some(actix_web::mime::JSON))
}

/// `body` as a `T`, if it is a JSON object.
fn object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Malformed JSON says so; well-formed JSON of another type is the wrong body.
        serde_json::from_slice::<IgnoredAny>(body).map_err(|err| json_error(JsonPayloadError::Deserialize(err)))?;
        return Err(ApiError::new(ErrorCode::InvalidBody, "Invalid body: send a JSON object."));
    }
    serde_json::from_slice(body).map_err(|err| json_error(JsonPayloadError::Deserialize(err)))
}

/// A raw body (`Result<web::Bytes, actix_web::Error>` as the extractor), or the error shape:
/// actix's own answer to a body over the limit is plain text.
pub fn body_bytes(body: Result<web::Bytes, actix_web::Error>) -> Result<web::Bytes, ApiError> {
    body.map_err(|err| {
        if err.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge, "The request body is too large.")
        } else {
            ApiError::new(ErrorCode::InvalidBody, "The request body could not be read.")
        }
    })
}

/// A JSON object body the client may leave out: no body at all, or `null`, is `None`; anything
/// else is refused as [`JsonObject`] refuses it.
pub fn optional_json<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.is_empty() {
        return Ok(None);
    }
    if !is_json(req) {
        return Err(json_error(JsonPayloadError::ContentType));
    }
    if body.trim_ascii() == b"null" {
        return Ok(None);
    }
    object(body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Customer {
        name: String,
        email: Option<String>,
    }

    #[test]
    fn only_an_object_makes_the_struct() {
        assert_eq!(object::<Customer>(br#" {"name": "Acme"}"#).unwrap(), Customer { name: "Acme".into(), email: None });
        let err = object::<Customer>(br#"["Acme", null]"#).unwrap_err();
        assert_eq!((err.code, err.message.as_ref()), (ErrorCode::InvalidBody, "Invalid body: send a JSON object."));
        assert_eq!(object::<Customer>(b"null").unwrap_err().code, ErrorCode::InvalidBody);
        assert_eq!(object::<Customer>(b"[1,").unwrap_err().code, ErrorCode::InvalidJson);
        assert_eq!(object::<Customer>(b"").unwrap_err().code, ErrorCode::InvalidJson);
        assert_eq!(object::<Customer>(br#"{"name": 1}"#).unwrap_err().code, ErrorCode::InvalidBody);
    }
}
