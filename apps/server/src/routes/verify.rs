//! `POST /v1/keys/verify` (S1): the platform's other services check an organization's API key.
//!
//! The caller is a platform service, authenticated by its service token (`Authorization: Bearer
//! ots_svc_...`), never an organization's key or session. For any well-formed request the answer
//! is 200 with `valid` and a `code` saying why: the same checks, in the same order, with the
//! same messages as a request made to Otesse itself with that key (the key, its status, its IP
//! allow-list, its rate limit, then the scopes asked for). A check of a known key is one request
//! of that key: it counts against the key's rate limit and is written to its usage log with the
//! method and path the service names, so "Last used" and the usage chart show the key's use
//! across the platform. Like any keyed request it costs no database write on the request path
//! (the usage queue) and, for a cached key, no read.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, web};
use chrono::{DateTime, Utc};
use otesse_domain::api_key::{ApiKey, ApiKeyService, ApiKeyStatus, Scope, VerifyError};
use otesse_domain::ports::UsageSink;
use otesse_domain::rate_limit::RateDecision;
use otesse_domain::service_token::{ServiceTokenError, ServiceTokenService};
use otesse_domain::usage::UsageRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorCode, ErrorType};
use crate::rate_limit::{KeyBucket, Limits};

/// What a service asks.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The API key the service was presented (`erp_live_...` or `erp_test_...`).
    pub key: String,
    /// Scopes the request needs; the key must hold each one (within its level).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The request's method at the service, for the key's usage log; default `POST`.
    pub method: Option<String>,
    /// The request's path at the service, for the key's usage log; default `/v1/keys/verify`.
    pub path: Option<String>,
    /// The address the request came from, checked against the key's IP allow-list. A key with an
    /// allow-list is refused (`ip_not_allowed`) when this is missing.
    pub ip: Option<String>,
}

/// Why a key is valid or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifyCode {
    Ok,
    NotFound,
    Revoked,
    Expired,
    IpNotAllowed,
    InsufficientScope,
    RateLimited,
}

impl VerifyCode {
    /// The status Otesse itself answers a request refused for this reason (for the usage log).
    fn status(self) -> u16 {
        match self {
            VerifyCode::Ok => 200,
            VerifyCode::NotFound | VerifyCode::Revoked | VerifyCode::Expired => 401,
            VerifyCode::IpNotAllowed | VerifyCode::InsufficientScope => 403,
            VerifyCode::RateLimited => 429,
        }
    }
}

/// The key, when it is known (also when it is refused).
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifiedKey {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub name: String,
    #[schema(schema_with = super::wire::environment)]
    pub environment: &'static str,
    #[schema(schema_with = super::wire::scope_level)]
    pub scope_level: &'static str,
    #[schema(schema_with = super::wire::scopes)]
    pub scopes: Vec<&'static str>,
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key was or will be revoked (a key rotated with a grace period has a time ahead).
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&ApiKey> for VerifiedKey {
    fn from(key: &ApiKey) -> Self {
        Self {
            id: key.id.0,
            organization_id: key.organization_id.0,
            name: key.name.as_str().to_owned(),
            environment: key.environment.as_str(),
            scope_level: key.scope_level.as_str(),
            scopes: key.scopes.iter().map(|s| s.as_str()).collect(),
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// The key's rate-limit state after this check (as its `RateLimit-*` headers would say).
#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitState {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the budget is full again.
    pub reset: u64,
}

impl From<&RateDecision> for RateLimitState {
    fn from(decision: &RateDecision) -> Self {
        Self { limit: decision.limit, remaining: decision.remaining, reset: decision.reset_secs() }
    }
}

/// The error answer Otesse itself gives a request refused for this reason, for the service to
/// relay as it is: its status, its `Retry-After`, and the body `{"error": {type, code, message}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refusal {
    /// The HTTP status (401, 403 or 429).
    pub status: u16,
    #[serde(rename = "type")]
    pub kind: ErrorType,
    pub code: ErrorCode,
    pub message: String,
    /// Seconds to wait, for a `Retry-After` header (rate limits only).
    pub retry_after: Option<u64>,
}

impl From<ApiError> for Refusal {
    fn from(err: ApiError) -> Self {
        let (status, kind) = err.code.spec();
        Self {
            status: status.as_u16(),
            kind,
            code: err.code,
            message: err.message.into_owned(),
            retry_after: err.retry_after,
        }
    }
}

/// The answer: always 200 for a well-formed request.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    pub valid: bool,
    pub code: VerifyCode,
    /// The message Otesse itself answers for this reason.
    pub message: String,
    pub key: Option<VerifiedKey>,
    pub ratelimit: Option<RateLimitState>,
    /// For a refused key, the error answer Otesse itself would give; `null` when valid.
    pub error: Option<Refusal>,
}

const DEFAULT_METHOD: &str = "POST";
const DEFAULT_PATH: &str = "/v1/keys/verify";

fn bad(message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameter, message)
}

/// The service token's check: `Authorization: Bearer ots_svc_...`.
pub(crate) async fn authenticate(req: &HttpRequest, tokens: &ServiceTokenService) -> Result<(), ApiError> {
    let required = "This endpoint requires a platform service token (`Authorization: Bearer ots_svc_...`); \
                    organization API keys and sessions are not accepted here.";
    // A credential that cannot be read at all (a key in the query string) is refused here too.
    if let Some(crate::identify::Identity { identified: crate::identify::Identified::Invalid(err), .. }) =
        req.extensions().get::<crate::identify::Identity>()
    {
        return Err(err.clone());
    }
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::new(ErrorCode::MissingCredentials, required));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|text| text.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| ApiError::new(ErrorCode::MissingCredentials, required))?;
    if !ServiceTokenService::looks_like_token(token) {
        return Err(ApiError::new(ErrorCode::ServiceTokenInvalid, required));
    }
    match tokens.authenticate(token).await {
        Ok(_) => Ok(()),
        Err(ServiceTokenError::Invalid) => Err(ApiError::new(ErrorCode::ServiceTokenInvalid, "Invalid service token.")),
        Err(ServiceTokenError::Storage(err)) => Err(err.into()),
    }
}

/// What the request asks, checked before anything is verified or counted.
struct Check {
    scopes: Vec<Scope>,
    method: String,
    path: String,
    ip: Option<IpAddr>,
}

fn check(body: &VerifyRequest) -> Result<Check, ApiError> {
    let mut scopes = Vec::with_capacity(body.scopes.len());
    for raw in &body.scopes {
        scopes.push(
            Scope::parse(raw).ok_or_else(|| bad("`scopes` holds a scope that does not exist; see GET /v1/scopes."))?,
        );
    }
    let method = body.method.as_deref().unwrap_or(DEFAULT_METHOD);
    if method.is_empty() || method.len() > 16 || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(bad("`method` must be an HTTP method such as GET or POST."));
    }
    let path = body.path.as_deref().unwrap_or(DEFAULT_PATH);
    if !path.starts_with('/') || path.len() > 2048 || path.chars().any(char::is_control) {
        return Err(bad("`path` must start with / and be at most 2048 characters, without control characters."));
    }
    let ip = body
        .ip
        .as_deref()
        .map(|raw| raw.trim().parse::<IpAddr>().map_err(|_| bad("`ip` must be an IPv4 or IPv6 address.")))
        .transpose()?;
    Ok(Check { scopes, method: method.to_ascii_uppercase(), path: path.to_owned(), ip })
}

/// Verify an organization's API key on behalf of another platform service.
#[utoipa::path(post, path = "/v1/keys/verify", operation_id = "verifyApiKey", tag = "platform", request_body = VerifyRequest, security(("service_token" = [])), responses((status = 200, body = VerifyResponse), crate::openapi::errors::Unauthorized, crate::openapi::errors::JsonBody, crate::openapi::errors::ServerError))]
pub async fn verify(
    req: HttpRequest,
    tokens: web::Data<ServiceTokenService>,
    keys: web::Data<ApiKeyService>,
    limits: web::Data<Limits>,
    body: super::body::JsonObject<VerifyRequest>,
) -> Result<web::Json<VerifyResponse>, ApiError> {
    authenticate(&req, &tokens).await?;
    let usage = req.app_data::<web::Data<dyn UsageSink>>().map(|sink| sink.as_ref());
    verify_key(&keys, &limits, usage, &body.into_inner()).await.map(web::Json)
}

/// The check itself, for the route and for services that embed it (`crate::embedded`): the
/// key, its status, its IP allow-list, its rate limit, then the scopes; a known, active key's
/// check is written to `usage` as the service's request.
pub async fn verify_key(
    keys: &ApiKeyService,
    limits: &Limits,
    usage: Option<&dyn UsageSink>,
    body: &VerifyRequest,
) -> Result<VerifyResponse, ApiError> {
    let started = Instant::now();
    let check = check(body)?;
    let key = match keys.known(&body.key, check.ip).await {
        Ok(key) => key,
        Err(VerifyError::Storage(err)) => return Err(err.into()),
        Err(err) => {
            let code = match err {
                VerifyError::TooManyGuesses(_) => VerifyCode::RateLimited,
                _ => VerifyCode::NotFound,
            };
            return Ok(answer(Err((code, ApiError::from(err))), None, None));
        }
    };
    // A revoked or expired key is described, not logged: Otesse logs no use of one either.
    let refused = match key.status(keys.now()) {
        ApiKeyStatus::Active => None,
        ApiKeyStatus::Revoked => Some((VerifyCode::Revoked, VerifyError::Revoked)),
        ApiKeyStatus::Expired => Some((VerifyCode::Expired, VerifyError::Expired)),
    };
    if let Some((code, err)) = refused {
        return Ok(answer(Err((code, ApiError::from(err))), Some(&key), None));
    }

    let (outcome, decision) = outcome(&key, &check, limits).await;
    let code = outcome.as_ref().map_or_else(|(code, _)| *code, |()| VerifyCode::Ok);
    if let Some(sink) = usage {
        log_use(sink, &key, &check, code, started).await;
    }
    Ok(answer(outcome, Some(&key), decision.as_ref()))
}

/// A refusal: why, and the error Otesse itself answers for it.
type Refused = (VerifyCode, ApiError);

/// The IP allow-list, then the rate limit (an address the key does not allow never spends its
/// budget), then the scopes.
async fn outcome(key: &ApiKey, check: &Check, limits: &Limits) -> (Result<(), Refused>, Option<RateDecision>) {
    if !key.allows_ip(check.ip) {
        let err = ApiError::new(ErrorCode::IpNotAllowed, "This API key may not be used from this IP address.");
        return (Err((VerifyCode::IpNotAllowed, err)), None);
    }
    let decision = limits.decide(KeyBucket::new(key.id).as_str(), limits.per_key).await;
    if let Some(refused) = decision.as_ref().filter(|d| !d.allowed) {
        let err = crate::rate_limit::refused(refused);
        return (Err((VerifyCode::RateLimited, err)), decision);
    }
    for scope in &check.scopes {
        if let Err(denied) = key.holds(*scope) {
            return (Err((VerifyCode::InsufficientScope, ApiError::from(denied))), decision);
        }
    }
    (Ok(()), decision)
}

fn answer(outcome: Result<(), Refused>, key: Option<&ApiKey>, decision: Option<&RateDecision>) -> VerifyResponse {
    let (code, message, error) = match outcome {
        Ok(()) => (VerifyCode::Ok, "The API key is valid.".to_owned(), None),
        Err((code, err)) => (code, err.message.to_string(), Some(Refusal::from(err))),
    };
    VerifyResponse {
        valid: code == VerifyCode::Ok,
        code,
        message,
        key: key.map(VerifiedKey::from),
        ratelimit: decision.map(RateLimitState::from),
        error,
    }
}

/// Writes the check to the key's usage log, as the service's request.
async fn log_use(sink: &dyn UsageSink, key: &Arc<ApiKey>, check: &Check, code: VerifyCode, started: Instant) {
    let record = UsageRecord {
        api_key_id: key.id,
        organization_id: key.organization_id,
        occurred_at: Utc::now(),
        method: check.method.clone(),
        path: check.path.clone(),
        status: code.status(),
        response_time_ms: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
        client_ip: check.ip,
    };
    crate::usage::log(sink, record).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(scopes: &[&str], method: Option<&str>, path: Option<&str>, ip: Option<&str>) -> VerifyRequest {
        VerifyRequest {
            key: "erp_live_x".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            method: method.map(str::to_owned),
            path: path.map(str::to_owned),
            ip: ip.map(str::to_owned),
        }
    }

    #[test]
    fn the_service_names_its_request_or_gets_the_defaults() {
        let named =
            check(&request(&["customers.read"], Some("get"), Some("/v1/bookings"), Some("203.0.113.9"))).unwrap();
        assert_eq!((named.method.as_str(), named.path.as_str()), ("GET", "/v1/bookings"));
        assert_eq!(named.ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(named.scopes, [Scope::CustomersRead]);
        let defaults = check(&request(&[], None, None, None)).unwrap();
        assert_eq!((defaults.method.as_str(), defaults.path.as_str()), (DEFAULT_METHOD, DEFAULT_PATH));
    }

    #[test]
    fn unknown_scopes_and_malformed_fields_are_refused_without_echoing_them() {
        let cases = [
            request(&["bookings.fly"], None, None, None),
            request(&[], Some("GE T"), None, None),
            request(&[], None, Some("no-slash"), None),
            request(&[], None, Some("/a\nb"), None),
            request(&[], None, None, Some("300.1.1.1")),
        ];
        for case in &cases {
            let err = check(case).err().expect("refused");
            assert_eq!(err.code, ErrorCode::InvalidParameter);
            for sent in ["bookings.fly", "GE T", "no-slash", "300.1.1.1"] {
                assert!(!err.message.contains(sent), "{}", err.message);
            }
        }
    }

    #[test]
    fn each_refusal_is_logged_with_the_status_otesse_would_answer() {
        let statuses: Vec<u16> = [
            VerifyCode::Ok,
            VerifyCode::NotFound,
            VerifyCode::Revoked,
            VerifyCode::Expired,
            VerifyCode::IpNotAllowed,
            VerifyCode::InsufficientScope,
            VerifyCode::RateLimited,
        ]
        .into_iter()
        .map(VerifyCode::status)
        .collect();
        assert_eq!(statuses, [200, 401, 401, 401, 403, 403, 429]);
    }
}
