//! Who is calling: the API-key extractor (K2, K4, K10, K11, K14) and the user-session
//! extractor (P2), plus the middleware that logs every keyed request to the usage queue.
//!
//! A route states what it guards in its signature: `KeyAuth<CustomersRoute>` needs a valid
//! key whose level, method and scopes fit the customers resource; `KeyAuth<AnyScope>` needs
//! only a valid key; `SignedInUser` needs a user session.

use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use otesse_domain::api_key::{ApiKey, ApiKeyService, PresentedKey, RequestMethod, Resource};
use otesse_domain::auth::{AuthService, SignedIn};
use otesse_domain::ports::{Backlog, UsageSink};
use otesse_domain::usage::UsageRecord;

use crate::error::{ApiError, ErrorCode};
use crate::support::client_ip;

/// Proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Arc<Vec<ipnet::IpNet>>);

/// What a keyed route guards.
pub trait RouteResource: 'static {
    const RESOURCE: Option<Resource>;
}

/// Any valid key may call the route (e.g. whoami).
#[derive(Debug)]
pub struct AnyScope;
impl RouteResource for AnyScope {
    const RESOURCE: Option<Resource> = None;
}

#[derive(Debug)]
pub struct CustomersRoute;
impl RouteResource for CustomersRoute {
    const RESOURCE: Option<Resource> = Some(Resource::Customers);
}

/// A verified, authorized API key.
#[derive(Debug)]
pub struct KeyAuth<R> {
    pub key: Arc<ApiKey>,
    _route: PhantomData<R>,
}

/// Left in the request's extensions once a key is identified, so the usage middleware can log
/// the request (including refusals that happen after identification, like a missing scope).
#[derive(Debug, Clone)]
pub(crate) struct IdentifiedKey {
    pub(crate) key: Arc<ApiKey>,
    pub(crate) client_ip: Option<IpAddr>,
}

fn resolve_client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|addr| addr.ip());
    let trusted = req.app_data::<web::Data<TrustedProxies>>();
    match trusted {
        Some(trusted) if !trusted.0.is_empty() => {
            let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
            client_ip(peer, forwarded, &trusted.0)
        }
        _ => peer,
    }
}

/// Keys in the query string end up in proxy and browser logs: refuse them outright (K2).
fn refuse_keys_in_query(req: &HttpRequest) -> Result<(), ApiError> {
    let query = req.query_string();
    if query.is_empty() {
        return Ok(());
    }
    let named_like_a_credential = query.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or_default().to_ascii_lowercase();
        matches!(name.as_str(), "api_key" | "apikey" | "key" | "access_token" | "token")
    });
    if named_like_a_credential || PresentedKey::looks_like_key(query) {
        return Err(ApiError::new(
            ErrorCode::ApiKeyInQuery,
            "API keys must not be sent in the query string; send them in the Authorization or X-API-Key header. \
             Treat a key sent this way as leaked and rotate it.",
        ));
    }
    Ok(())
}

/// The bearer token of `Authorization: Bearer <token>`, if any.
fn bearer(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else { return Ok(None) };
    let text = value.to_str().map_err(|_| malformed_authorization())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(malformed_authorization)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(malformed_authorization());
    }
    Ok(Some(token.trim()))
}

fn malformed_authorization() -> ApiError {
    ApiError::new(ErrorCode::MissingCredentials, "The Authorization header must be `Bearer <token>`.")
}

fn presented_key(req: &HttpRequest) -> Result<&str, ApiError> {
    if let Some(token) = bearer(req)? {
        return Ok(token);
    }
    if let Some(value) = req.headers().get("x-api-key") {
        return value
            .to_str()
            .map(str::trim)
            .map_err(|_| ApiError::from(otesse_domain::api_key::VerifyError::Malformed));
    }
    Err(ApiError::new(
        ErrorCode::MissingCredentials,
        "No API key provided. Send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
    ))
}

impl<R: RouteResource> FromRequest for KeyAuth<R> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            refuse_keys_in_query(&req)?;
            let presented = presented_key(&req)?;
            if AuthService::looks_like_session_token(presented) {
                return Err(ApiError::new(
                    ErrorCode::ApiKeyRequired,
                    "This endpoint requires an API key; user session tokens are not accepted here.",
                ));
            }
            let service = req.app_data::<web::Data<ApiKeyService>>().ok_or_else(ApiError::internal)?;
            let key = service.verify(presented).await?;
            let ip = resolve_client_ip(&req);
            req.extensions_mut().insert(IdentifiedKey { key: key.clone(), client_ip: ip });
            // Every request of an identified key counts, whatever its outcome (W2), once: the
            // idempotency layer may have counted it already.
            let counted = req.extensions().contains::<otesse_domain::rate_limit::RateDecision>();
            if let Some(limits) = req.app_data::<web::Data<crate::rate_limit::Limits>>()
                && !counted
            {
                limits.check(&req, crate::rate_limit::KeyBucket::new(key.id).as_str(), limits.per_key).await?;
            }
            if !key.allows_ip(ip) {
                return Err(ApiError::new(
                    ErrorCode::IpNotAllowed,
                    "This API key may not be used from this IP address.",
                ));
            }
            key.authorize(RequestMethod::parse(req.method().as_str()), R::RESOURCE)?;
            Ok(KeyAuth { key, _route: PhantomData })
        })
    }
}

/// Logs every request made with an identified key to the usage queue, after the response is
/// known, and adds the rate-limit headers of a request that was counted. Never waits on the
/// database (the queue is bounded and non-blocking).
pub async fn log_key_usage(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let sink = req.app_data::<web::Data<dyn UsageSink>>().cloned();
    let mut response = next.call(req).await?;
    let decision = response.request().extensions().get::<otesse_domain::rate_limit::RateDecision>().copied();
    if let Some(decision) = decision {
        crate::rate_limit::apply_headers(response.headers_mut(), &decision);
    }
    let identified = response.request().extensions_mut().remove::<IdentifiedKey>();
    if let (Some(sink), Some(identified)) = (sink, identified) {
        let request = response.request();
        let backlog = sink.record(UsageRecord {
            api_key_id: identified.key.id,
            organization_id: identified.key.organization_id,
            occurred_at: chrono::Utc::now(),
            method: request.method().as_str().to_owned(),
            path: request.path().to_owned(),
            status: response.status().as_u16(),
            response_time_ms: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
            client_ip: identified.client_ip,
        });
        if backlog == Backlog::Behind {
            // The log is behind this load: slow it down rather than lose rows.
            sink.caught_up().await;
        }
    }
    Ok(response)
}

/// A signed-in user (session token in `Authorization: Bearer`).
#[derive(Debug)]
pub struct SignedInUser(pub SignedIn);

impl FromRequest for SignedInUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            refuse_keys_in_query(&req)?;
            let key_refused = || {
                ApiError::new(
                    ErrorCode::SessionRequired,
                    "This endpoint requires a signed-in user; API keys are not accepted here.",
                )
            };
            if req.headers().contains_key("x-api-key") {
                return Err(key_refused());
            }
            let token = bearer(&req)?.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::MissingCredentials,
                    "Sign in first: send `Authorization: Bearer <session token>`.",
                )
            })?;
            if token.starts_with(otesse_domain::api_key::KEY_PREFIX) {
                return Err(key_refused());
            }
            let auth = req.app_data::<web::Data<AuthService>>().ok_or_else(ApiError::internal)?;
            Ok(SignedInUser(auth.authenticate(token).await?))
        })
    }
}

/// The client address of a request, as the usage log and the sign-in throttle see it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequest for ClientIp {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(ClientIp(resolve_client_ip(req))))
    }
}

#[derive(Debug)]
pub struct IntegrationsRoute;
impl RouteResource for IntegrationsRoute {
    const RESOURCE: Option<Resource> = Some(Resource::Integrations);
}

/// Whether the request presents an API key rather than a session token: an `X-API-Key` header,
/// or a bearer token with the key prefix.
fn presents_key(req: &HttpRequest) -> bool {
    req.headers().contains_key("x-api-key")
        || bearer(req).ok().flatten().is_some_and(|token| token.starts_with(otesse_domain::api_key::KEY_PREFIX))
}

/// For routes that both users and keys may call: a key is checked as `KeyAuth<R>` (level,
/// method and `R`'s scope), anything else as a user session, and the caller is turned into the
/// domain's actor by `key` or `user`.
pub fn user_or_key<R: RouteResource, T: 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    key: fn(&ApiKey) -> T,
    user: fn(&SignedIn) -> T,
) -> LocalBoxFuture<'static, Result<T, ApiError>> {
    if presents_key(req) {
        let auth = KeyAuth::<R>::from_request(req, payload);
        Box::pin(async move { Ok(key(&auth.await?.key)) })
    } else {
        let signed_in = SignedInUser::from_request(req, payload);
        Box::pin(async move { Ok(user(&signed_in.await?.0)) })
    }
}

/// A signed-in user, or an API key holding `integrations.manage` (which may do what
/// `settings.edit` does on integrations).
#[derive(Debug)]
pub struct IntegrationCaller(pub otesse_domain::integration::IntegrationActor);

impl FromRequest for IntegrationCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        use otesse_domain::integration::IntegrationActor;
        user_or_key::<IntegrationsRoute, _>(
            req,
            payload,
            |key| IntegrationCaller(IntegrationActor::key(key)),
            |user| IntegrationCaller(IntegrationActor::user(&user.actor())),
        )
    }
}
