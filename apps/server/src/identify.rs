//! Who is calling, resolved once per `/v1` request (P2, K2, K10, K11, K14, W2).
//!
//! The [`identify`] middleware wraps every `/v1` route. It reads the credential (an API key in
//! `Authorization: Bearer` or `X-API-Key`, a session token in `Authorization: Bearer`, or the
//! dashboard's session cookie), then in this order: verifies it, checks a key's IP allow-list,
//! and charges a key's rate limit. So a key used from an address it does not allow never
//! spends its owner's budget. The outcome is left in the request's extensions as an
//! [`Identity`]; the extractors in [`crate::extract`] only authorize it for their route, and
//! the idempotency layer reads it too. After the response, a request made with a key (also a
//! refused one, once the key was known) is logged to the usage queue with its status and
//! time, and the rate-limit headers are added.
//!
//! Nothing here answers a request itself: a refused credential is an answer only on routes
//! that need a caller, so public routes (setup, sign-in, the OpenAPI document, inbound
//! provider webhooks) work whatever headers a client sends along.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest, web};
use otesse_domain::api_key::{ApiKey, ApiKeyService, KEY_PREFIX, PresentedKey};
use otesse_domain::auth::AuthService;
use otesse_domain::caller::Caller;
use otesse_domain::ports::UsageSink;
use otesse_domain::usage::UsageRecord;

use crate::error::{ApiError, ErrorCode};
use crate::support::client_ip;

/// Proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Arc<Vec<ipnet::IpNet>>);

/// The dashboard's session cookie (HttpOnly) and the cookie holding its CSRF token (readable by
/// the dashboard's script, which echoes it in [`CSRF_HEADER`] on every change).
pub const SESSION_COOKIE: &str = "otesse_session";
pub const CSRF_COOKIE: &str = "otesse_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What kind of credential a request presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    ApiKey,
    Session,
}

/// What identification found.
#[derive(Debug, Clone)]
pub enum Identified {
    /// No credential at all.
    Anonymous,
    Caller(Caller),
    /// A credential that was refused, and why.
    Refused(CredentialKind, ApiError),
    /// A request whose credential cannot even be read (a malformed `Authorization` header, a
    /// key in the query string): refused on every route that needs a caller.
    Invalid(ApiError),
    /// A bearer token shaped like neither an API key nor a session token.
    Unrecognized,
}

/// Left in the request's extensions by [`identify`].
#[derive(Debug, Clone)]
pub struct Identity {
    pub identified: Identified,
    /// The client's address, as the usage log, the allow-lists and the throttles see it.
    pub client_ip: Option<IpAddr>,
}

impl Identity {
    pub fn caller(&self) -> Option<&Caller> {
        match &self.identified {
            Identified::Caller(caller) => Some(caller),
            _ => None,
        }
    }
}

/// The middleware; see the module documentation.
pub async fn identify(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let client_ip = resolve_client_ip(req.request());
    // The key known for this request, also when it is refused afterwards: its use is logged.
    let mut used_key = None;
    let identified = resolve(req.request(), client_ip, &mut used_key).await;
    req.extensions_mut().insert(Identity { identified, client_ip });

    let mut response = next.call(req).await?;
    let decision = response.request().extensions().get::<otesse_domain::rate_limit::RateDecision>().copied();
    if let Some(decision) = decision {
        crate::rate_limit::apply_headers(response.headers_mut(), &decision);
    }
    if let (Some(key), Some(sink)) = (used_key, response.request().app_data::<web::Data<dyn UsageSink>>()) {
        let request = response.request();
        let record = UsageRecord {
            api_key_id: key.id,
            organization_id: key.organization_id,
            occurred_at: chrono::Utc::now(),
            method: request.method().as_str().to_owned(),
            path: request.path().to_owned(),
            status: response.status().as_u16(),
            response_time_ms: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
            client_ip,
        };
        crate::usage::log(sink.as_ref(), record).await;
    }
    Ok(response)
}

/// Credentials, then (for a key) the IP allow-list, then the rate limit.
async fn resolve(req: &HttpRequest, client_ip: Option<IpAddr>, used_key: &mut Option<Arc<ApiKey>>) -> Identified {
    let credential = match credential(req) {
        Ok(Some(credential)) => credential,
        Ok(None) => return Identified::Anonymous,
        Err(err) => return Identified::Invalid(err),
    };
    match credential {
        Credential::Key(presented) => {
            let Some(keys) = req.app_data::<web::Data<ApiKeyService>>() else {
                return Identified::Refused(CredentialKind::ApiKey, ApiError::internal());
            };
            let key = match keys.verify(presented, client_ip).await {
                Ok(key) => key,
                Err(err) => return Identified::Refused(CredentialKind::ApiKey, err.into()),
            };
            *used_key = Some(key.clone());
            if !key.allows_ip(client_ip) {
                let err = ApiError::new(ErrorCode::IpNotAllowed, "This API key may not be used from this IP address.");
                return Identified::Refused(CredentialKind::ApiKey, err);
            }
            // Every request of an identified key counts, whatever its outcome (W2).
            if let Some(limits) = req.app_data::<web::Data<crate::rate_limit::Limits>>()
                && let Err(refused) =
                    limits.check(req, crate::rate_limit::KeyBucket::new(key.id).as_str(), limits.per_key).await
            {
                return Identified::Refused(CredentialKind::ApiKey, refused);
            }
            Identified::Caller(Caller::key(key))
        }
        Credential::Session(token) => session(req, token).await,
        Credential::Cookie(token) => {
            // A browser sends cookies to this origin whoever made it send the request: a change
            // must prove it comes from the dashboard's own script.
            if !is_safe(req.method()) && !csrf_matches(req, token) {
                let err = ApiError::new(
                    ErrorCode::CsrfTokenInvalid,
                    "This request needs the X-CSRF-Token header the dashboard sends; reload the page and try again.",
                );
                return Identified::Refused(CredentialKind::Session, err);
            }
            session(req, token).await
        }
        Credential::Unrecognized => Identified::Unrecognized,
        Credential::UnreadableKey => {
            Identified::Refused(CredentialKind::ApiKey, otesse_domain::api_key::VerifyError::Malformed.into())
        }
    }
}

async fn session(req: &HttpRequest, token: &str) -> Identified {
    let Some(auth) = req.app_data::<web::Data<AuthService>>() else {
        return Identified::Refused(CredentialKind::Session, ApiError::internal());
    };
    match auth.authenticate(token).await {
        Ok(signed_in) => Identified::Caller(signed_in.caller()),
        Err(err) => Identified::Refused(CredentialKind::Session, err.into()),
    }
}

enum Credential<'a> {
    Key(&'a str),
    Session(&'a str),
    Cookie(&'a str),
    Unrecognized,
    /// An `X-API-Key` header that is not even text.
    UnreadableKey,
}

/// The request's credential: `Authorization: Bearer` first, then `X-API-Key`, then the
/// session cookie. Keys in the query string are refused outright (K2).
fn credential(req: &HttpRequest) -> Result<Option<Credential<'_>>, ApiError> {
    refuse_keys_in_query(req)?;
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let token = bearer(value)?;
        return Ok(Some(if token.starts_with(KEY_PREFIX) {
            Credential::Key(token)
        } else if AuthService::looks_like_session_token(token) {
            Credential::Session(token)
        } else {
            Credential::Unrecognized
        }));
    }
    if let Some(value) = req.headers().get("x-api-key") {
        return Ok(Some(match value.to_str() {
            Ok(presented) => Credential::Key(presented.trim()),
            Err(_) => Credential::UnreadableKey,
        }));
    }
    Ok(cookie(req, SESSION_COOKIE).map(Credential::Cookie))
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(value: &header::HeaderValue) -> Result<&str, ApiError> {
    let malformed =
        || ApiError::new(ErrorCode::MissingCredentials, "The Authorization header must be `Bearer <token>`.");
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(malformed());
    }
    Ok(token.trim())
}

/// Keys in the query string end up in proxy and browser logs: refuse them outright (K2).
fn refuse_keys_in_query(req: &HttpRequest) -> Result<(), ApiError> {
    let query = req.query_string();
    if query.is_empty() {
        return Ok(());
    }
    // Read as the application would (percent-decoded): `erp%5Flive%5F...` is still a key.
    let leaked = url::form_urlencoded::parse(query.as_bytes()).any(|(name, value)| {
        let name = name.to_ascii_lowercase();
        matches!(name.as_str(), "api_key" | "apikey" | "key" | "access_token" | "token")
            || PresentedKey::looks_like_key(&name)
            || PresentedKey::looks_like_key(&value)
    });
    if leaked || PresentedKey::looks_like_key(query) {
        return Err(ApiError::new(
            ErrorCode::ApiKeyInQuery,
            "API keys must not be sent in the query string; send them in the Authorization or X-API-Key header. \
             Treat a key sent this way as leaked and rotate it.",
        ));
    }
    Ok(())
}

/// A cookie's value, read from the `Cookie` header without allocating.
fn cookie<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The CSRF token of a session: derived from the session token (which only the cookie holds),
/// so it needs no storage and no other site can compute it.
pub fn csrf_token(session_token: &str) -> String {
    use base64::Engine;
    let digest = otesse_crypto::sha256(format!("otesse/csrf/v1\n{session_token}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

fn csrf_matches(req: &HttpRequest, session_token: &str) -> bool {
    let Some(sent) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    otesse_crypto::constant_time_eq(sent.as_bytes(), csrf_token(session_token).as_bytes())
}

/// The client address: the peer, or the forwarded address when the peer is a trusted proxy.
pub fn resolve_client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|addr| addr.ip());
    let trusted = req.app_data::<web::Data<TrustedProxies>>();
    match trusted {
        Some(trusted) if !trusted.0.is_empty() => {
            // A proxy may append its own header line instead of extending the client's: every
            // line counts, in order, as one list. A line that is not text stops the walk there.
            let lines: Vec<&str> =
                req.headers().get_all("x-forwarded-for").map(|v| v.to_str().unwrap_or("unreadable")).collect();
            let forwarded = (!lines.is_empty()).then(|| lines.join(","));
            client_ip(peer, forwarded.as_deref(), &trusted.0)
        }
        _ => peer,
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn every_forwarded_for_line_is_read_before_walking_from_the_right() {
        let trusted = TrustedProxies(Arc::new(vec!["10.0.0.0/8".parse().unwrap()]));
        // The client forged the first line; our proxy appended the second.
        let req = TestRequest::default()
            .peer_addr("10.0.0.2:4000".parse().unwrap())
            .append_header(("x-forwarded-for", "6.6.6.6"))
            .append_header(("x-forwarded-for", "198.51.100.7, 10.0.0.3"))
            .app_data(web::Data::new(trusted.clone()))
            .to_http_request();
        assert_eq!(resolve_client_ip(&req), Some("198.51.100.7".parse().unwrap()));
        let unreadable = TestRequest::default()
            .peer_addr("10.0.0.2:4000".parse().unwrap())
            .append_header(("x-forwarded-for", "6.6.6.6"))
            .append_header(("x-forwarded-for", header::HeaderValue::from_bytes(b"\xff10.1.1.1").unwrap()))
            .app_data(web::Data::new(trusted))
            .to_http_request();
        assert_eq!(resolve_client_ip(&unreadable), Some("10.0.0.2".parse().unwrap()), "stops at the unreadable line");
    }

    #[test]
    fn credentials_are_read_in_order_and_classified() {
        let key = "erp_live_0123456789abcdefghijABCDEFGHIJ0123456789";
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, format!("Bearer {key}")))
            .insert_header(("x-api-key", "erp_test_other"))
            .to_http_request();
        assert!(matches!(credential(&req), Ok(Some(Credential::Key(k))) if k == key), "the bearer comes first");
        let req = TestRequest::default().insert_header(("x-api-key", format!(" {key} "))).to_http_request();
        assert!(matches!(credential(&req), Ok(Some(Credential::Key(k))) if k == key));
        let session = format!("ses_{}", "a".repeat(otesse_domain::auth::SESSION_SECRET_CHARS));
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, format!("Bearer {session}")))
            .to_http_request();
        assert!(matches!(credential(&req), Ok(Some(Credential::Session(s))) if s == session));
        let req = TestRequest::default().insert_header((header::AUTHORIZATION, "Bearer whatever")).to_http_request();
        assert!(matches!(credential(&req), Ok(Some(Credential::Unrecognized))));
        let req = TestRequest::default().insert_header((header::AUTHORIZATION, "Basic abc")).to_http_request();
        assert!(matches!(credential(&req), Err(err) if err.code == ErrorCode::MissingCredentials));
        let req = TestRequest::default()
            .insert_header((header::COOKIE, "theme=dark; otesse_session=ses_cookie; other=1"))
            .to_http_request();
        assert!(matches!(credential(&req), Ok(Some(Credential::Cookie("ses_cookie")))));
        assert!(matches!(credential(&TestRequest::default().to_http_request()), Ok(None)));
        let req = TestRequest::with_uri(&format!("/v1/whoami?api_key={key}")).to_http_request();
        assert!(matches!(credential(&req), Err(err) if err.code == ErrorCode::ApiKeyInQuery));
    }

    #[test]
    fn a_change_through_the_cookie_needs_the_session_s_csrf_token() {
        let token = "ses_0123456789";
        let with = |csrf: &str| {
            TestRequest::post()
                .insert_header((header::COOKIE, format!("{SESSION_COOKIE}={token}")))
                .insert_header((CSRF_HEADER, csrf.to_owned()))
                .to_http_request()
        };
        assert!(csrf_matches(&with(&csrf_token(token)), token));
        assert!(!csrf_matches(&with(&csrf_token("ses_another")), token), "another session's token");
        assert!(!csrf_matches(&with(""), token));
        assert!(!csrf_matches(&TestRequest::post().to_http_request(), token), "no header");
        assert_ne!(csrf_token(token), token, "the CSRF token does not reveal the session token");
        assert!(is_safe(&Method::GET) && !is_safe(&Method::POST) && !is_safe(&Method::DELETE));
    }
}
