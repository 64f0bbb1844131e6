//! Idempotency keys on create requests (W1), as a middleware on `/v1`.
//!
//! A `POST` with an `Idempotency-Key` header, from an identified caller (API key or signed-in
//! user), is recorded under `(caller, key)` with a fingerprint of its method, path and body:
//! - the first one runs; its answer (status, content type, body) is stored sealed with the
//!   master keyring and replayed byte for byte, with `Idempotent-Replayed: true`, to every retry
//!   with the same request for 24 hours;
//! - the same key with another request answers 422 `idempotency_error`;
//! - a retry while the first still runs answers 409 `idempotency_in_progress`;
//! - a first answer that is a 5xx, a 409 or a 429 is not stored: the retry runs again.
//!
//! Requests without the header cost one header lookup.

use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError, web};
use chrono::Duration;
use otesse_domain::api_key::{ApiKeyService, KEY_PREFIX};
use otesse_domain::auth::AuthService;
use otesse_domain::idempotency::{Begin, IdempotencyKey, IdempotencyStore, KEEP_FOR_HOURS, StoredResponse};
use otesse_domain::integration::{CredentialBinding, CredentialField};
use otesse_domain::organization::OrganizationId;
use otesse_domain::ports::{Clock, CredentialCipher};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};

/// What the middleware needs.
#[derive(Clone)]
pub struct Idempotency {
    pub store: Arc<dyn IdempotencyStore>,
    pub cipher: Arc<dyn CredentialCipher>,
    pub clock: Arc<dyn Clock>,
}

const HEADER: &str = "idempotency-key";
/// Routes without a caller yet (or authenticated otherwise): keys are not honoured there.
const EXEMPT: [&str; 2] = ["/v1/sessions", "/v1/setup"];

/// The caller a record belongs to.
struct Caller {
    scope: String,
    organization: OrganizationId,
}

async fn caller(req: &ServiceRequest) -> Option<Caller> {
    let headers = req.headers();
    let bearer = headers
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim);
    match (bearer, api_key) {
        (Some(token), _) if !token.starts_with(KEY_PREFIX) => {
            let auth = req.app_data::<web::Data<AuthService>>()?;
            let signed_in = auth.authenticate(token).await.ok()?;
            Some(Caller {
                scope: format!("user:{}", signed_in.user.id.0),
                organization: signed_in.user.organization_id,
            })
        }
        (Some(key), _) | (None, Some(key)) => {
            let keys = req.app_data::<web::Data<ApiKeyService>>()?;
            let key = keys.verify(key).await.ok()?;
            Some(Caller { scope: format!("key:{}", key.id.0), organization: key.organization_id })
        }
        (None, None) => None,
    }
}

fn binding(organization: OrganizationId, record: Uuid) -> CredentialBinding {
    CredentialBinding {
        organization_id: organization,
        connection_id: record,
        field: CredentialField::IdempotentResponse,
    }
}

fn error(err: ApiError) -> HttpResponse {
    err.error_response()
}

/// Puts a body read by the middleware back for the handler.
fn payload(bytes: web::Bytes) -> actix_web::dev::Payload {
    let (_, mut payload) = actix_http::h1::Payload::create(true);
    payload.unread_data(bytes);
    actix_web::dev::Payload::from(payload)
}

/// The middleware. Requests it does not apply to (everything but a POST with the header) only
/// pay for a header lookup: the work, and its large future, live in [`idempotent`], boxed
/// separately so the common path does not carry them.
pub async fn idempotency(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    match req.headers().get(HEADER) {
        Some(value) if req.method() == Method::POST && !EXEMPT.contains(&req.path()) => {
            let raw_key = value.clone();
            Box::pin(idempotent(req, next, raw_key)).await
        }
        _ => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

async fn idempotent(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    raw_key: HeaderValue,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(layer) = req.app_data::<web::Data<Idempotency>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let key = match raw_key.to_str().ok().map(IdempotencyKey::parse) {
        Some(Ok(key)) => key,
        _ => {
            let err = ApiError::new(
                ErrorCode::InvalidParameter,
                "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice).",
            );
            return Ok(req.into_response(error(err)));
        }
    };
    let Some(caller) = caller(&req).await else {
        // No identified caller: the handler answers 401; nothing to remember.
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let body = req.extract::<web::Bytes>().await?;
    let mut fingerprinted = format!("{} {}\n", req.method(), req.path()).into_bytes();
    fingerprinted.extend_from_slice(&body);
    let fingerprint = otesse_crypto::sha256(&fingerprinted);
    req.set_payload(payload(body));

    let now = layer.clock.now();
    let begun = layer.store.begin(&caller.scope, &key, &fingerprint, now, now - Duration::hours(KEEP_FOR_HOURS)).await;
    let record = match begun {
        Err(err) => return Ok(req.into_response(error(err.into()))),
        Ok(Begin::Mismatch) => {
            let err = ApiError::new(
                ErrorCode::IdempotencyError,
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            );
            return Ok(req.into_response(error(err)));
        }
        Ok(Begin::InProgress) => {
            let err = ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "A request with this Idempotency-Key is still being processed. Retry once it has finished.",
            );
            return Ok(req.into_response(error(err)));
        }
        Ok(Begin::Completed { record, response }) => {
            let Ok(body) = layer.cipher.decrypt(&response.body, &binding(caller.organization, record)) else {
                tracing::error!(record = %record, "a stored idempotent response does not decrypt");
                return Ok(req.into_response(error(ApiError::internal())));
            };
            let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
            let replay = HttpResponse::build(status)
                .insert_header((CONTENT_TYPE, response.content_type.as_str()))
                .insert_header((HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("true")))
                .body(body.expose_secret().to_owned());
            return Ok(req.into_response(replay));
        }
        Ok(Begin::New { record }) => record,
    };

    let response = match next.call(req).await {
        Ok(response) => response,
        Err(err) => {
            let _ = layer.store.abandon(record).await;
            return Err(err);
        }
    };
    let status = response.status();
    let keep = !(status.is_server_error() || status == StatusCode::CONFLICT || status == StatusCode::TOO_MANY_REQUESTS);
    let content_type =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_owned();
    let (request, response) = response.into_parts();
    let (response, body) = response.into_parts();
    let bytes =
        actix_web::body::to_bytes(body).await.map_err(|_| actix_web::error::ErrorInternalServerError("body"))?;
    let stored = match (keep, std::str::from_utf8(&bytes)) {
        (true, Ok(text)) => {
            let sealed =
                layer.cipher.encrypt(&SecretString::from(text.to_owned()), &binding(caller.organization, record));
            let answer = StoredResponse { status: status.as_u16(), content_type, body: sealed };
            layer.store.complete(record, &answer).await
        }
        _ => layer.store.abandon(record).await,
    };
    if let Err(err) = stored {
        // The request itself went through; only its replay is lost. Forget the key rather
        // than leave it "in progress" for a day.
        tracing::error!(error = %err, "could not store an idempotent response");
        let _ = layer.store.abandon(record).await;
    }
    let response = response.set_body(BoxBody::new(bytes));
    Ok(ServiceResponse::new(request, response))
}
