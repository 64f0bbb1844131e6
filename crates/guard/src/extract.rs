//! The actix-web extractor: a handler names the scope it needs and gets the verified key.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use crate::{Check, Guard, Refusal, VerifiedKey};

/// A scope a handler needs: see [`crate::scope`] for Otesse's catalog and
/// [`required_scope!`](crate::required_scope) to name another.
pub trait RequiredScope {
    /// The scope's name, e.g. `bookings.read`.
    const SCOPE: &'static str;
}

/// A request's key, verified by the app's [`Guard`] (registered as `web::Data<Guard>`) to hold
/// scope `S`. Extracting it refuses the request as Otesse would when the key does not pass.
///
/// The key is read from `Authorization: Bearer <key>` or `X-API-Key: <key>`, as Otesse reads
/// it; the client's address is the connection's peer address.
#[derive(Debug, Clone)]
pub struct Authorized<S: RequiredScope> {
    key: VerifiedKey,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope> Authorized<S> {
    /// The verified key.
    pub fn key(&self) -> &VerifiedKey {
        &self.key
    }

    /// The verified key, owned.
    pub fn into_key(self) -> VerifiedKey {
        self.key
    }
}

impl<S: RequiredScope> Deref for Authorized<S> {
    type Target = VerifiedKey;

    fn deref(&self) -> &VerifiedKey {
        &self.key
    }
}

/// The key a request presents, if any.
fn presented(req: &HttpRequest) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    let value = req.headers().get("x-api-key")?;
    Some(value.to_str().ok()?.trim().to_owned())
}

impl<S: RequiredScope + 'static> FromRequest for Authorized<S> {
    type Error = Refusal;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Refusal>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let guard = req.app_data::<web::Data<Guard>>().cloned();
        let key = presented(req);
        let method = req.method().as_str().to_owned();
        let path = req.path().to_owned();
        let ip = req.peer_addr().map(|addr| addr.ip());
        Box::pin(async move {
            let Some(guard) = guard else {
                tracing::error!("Authorized<_> was used without a web::Data<Guard> in the app");
                return Err(Refusal::internal());
            };
            let key = key.filter(|key| !key.is_empty()).ok_or_else(Refusal::missing)?;
            let check = Check { key: &key, scopes: &[S::SCOPE], method: &method, path: &path, ip };
            let key = guard.verify(&check).await?;
            Ok(Self { key, _scope: PhantomData })
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_key_is_read_where_otesse_reads_it() {
        let bearer = TestRequest::default().insert_header(("Authorization", "Bearer erp_test_abc")).to_http_request();
        assert_eq!(presented(&bearer).as_deref(), Some("erp_test_abc"));
        let header = TestRequest::default().insert_header(("X-API-Key", "erp_live_abc")).to_http_request();
        assert_eq!(presented(&header).as_deref(), Some("erp_live_abc"));
        let basic = TestRequest::default().insert_header(("Authorization", "Basic abc")).to_http_request();
        assert_eq!(presented(&basic), None);
        assert_eq!(presented(&TestRequest::default().to_http_request()), None);
    }
}
