//! What Otesse answers about a key, as the verification API sends it.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A key's environment: live keys reach live data, test keys test data only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// `erp_live_...`
    Live,
    /// `erp_test_...`
    Test,
}

impl Environment {
    /// `"live"` or `"test"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }
}

/// A key Otesse verified for the request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VerifiedKey {
    /// The key's id in Otesse (never the key itself).
    pub id: Uuid,
    /// The organization the key belongs to: scope every query by it.
    pub organization_id: Uuid,
    /// The key's name, as its owner gave it.
    pub name: String,
    /// Live or test: a test key must see test data only.
    pub environment: Environment,
    /// `read_only`, `standard` or `admin`.
    pub scope_level: String,
    /// Every scope the key holds.
    pub scopes: Vec<String>,
    /// When the key expires, if it does.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key was or will be revoked (a key rotated with a grace period has a time ahead).
    pub revoked_at: Option<DateTime<Utc>>,
}

impl VerifiedKey {
    /// Whether the key is past its expiry or revocation time at `now`.
    pub fn ended_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now) || self.revoked_at.is_some_and(|at| at <= now)
    }
}

/// A refused request, answered as Otesse answers it (P4's error shape).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The error's family (`authentication_error`, `permission_error`, `rate_limit_error`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The precise reason (`api_key_revoked`, `scope_missing`, ...).
    pub code: String,
    /// For people; never repeats the key.
    pub message: String,
    /// Seconds to wait before retrying, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl Refusal {
    pub(crate) fn new(status: u16, kind: &str, code: &str, message: &str) -> Self {
        Self { status, kind: kind.into(), code: code.into(), message: message.into(), retry_after: None }
    }

    /// No key in the request, in Otesse's words.
    pub(crate) fn missing() -> Self {
        Self::new(
            401,
            "authentication_error",
            "missing_credentials",
            "No API key provided. Send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
        )
    }

    /// Otesse cannot be asked and the key is not in the fresh cache.
    pub(crate) fn unavailable() -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                503,
                "api_error",
                "service_unavailable",
                "The API key could not be verified right now. Please try again shortly.",
            )
        }
    }

    /// A guard that is not configured (a wiring mistake in the service).
    pub(crate) fn internal() -> Self {
        Self::new(500, "api_error", "internal_error", "Something went wrong on our side. Please try again.")
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    code: &'a str,
    message: &'a str,
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(Envelope { error: Body { kind: &self.kind, code: &self.code, message: &self.message } })
    }
}

/// The verification API's answer (the fields the guard reads).
#[derive(Debug, Deserialize)]
pub(crate) struct Answer {
    pub valid: bool,
    pub code: String,
    pub key: Option<VerifiedKey>,
    pub error: Option<Refusal>,
}

impl Answer {
    /// The key, or the refusal to relay.
    pub fn into_verdict(self) -> Result<VerifiedKey, Refusal> {
        match (self.valid, self.key, self.error) {
            (true, Some(key), _) => Ok(key),
            (false, _, Some(refusal)) => Err(refusal),
            // Not an answer this version of the guard understands: refuse, never admit.
            _ => Err(Refusal::unavailable()),
        }
    }

    /// Whether the key itself is gone (unknown, revoked, expired), not merely refused for this
    /// request (scope, address, rate limit).
    pub fn key_is_gone(&self) -> bool {
        matches!(self.code.as_str(), "not_found" | "revoked" | "expired")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_admits_only_a_valid_key_and_relays_refusals_as_they_are() {
        let key = serde_json::json!({
            "id": Uuid::nil(), "organization_id": Uuid::nil(), "name": "n", "environment": "test",
            "scope_level": "standard", "scopes": ["bookings.read"], "expires_at": null, "revoked_at": null
        });
        let valid: Answer =
            serde_json::from_value(serde_json::json!({"valid": true, "code": "ok", "key": key, "error": null}))
                .unwrap();
        assert_eq!(valid.into_verdict().unwrap().environment, Environment::Test);

        let refused: Answer = serde_json::from_value(serde_json::json!({
            "valid": false, "code": "revoked", "key": key,
            "error": {"status": 401, "type": "authentication_error", "code": "api_key_revoked",
                      "message": "This API key has been revoked.", "retry_after": null}
        }))
        .unwrap();
        assert!(refused.key_is_gone());
        let refusal = refused.into_verdict().unwrap_err();
        assert_eq!((refusal.status, refusal.code.as_str()), (401, "api_key_revoked"));

        // Valid without a key, or refused without an error: never admitted.
        for odd in [
            serde_json::json!({"valid": true, "code": "ok", "key": null, "error": null}),
            serde_json::json!({"valid": false, "code": "revoked", "key": key, "error": null}),
        ] {
            let answer: Answer = serde_json::from_value(odd).unwrap();
            assert_eq!(answer.into_verdict().unwrap_err().status, 503);
        }
    }

    #[actix_web::test]
    async fn a_refusal_is_answered_in_otesse_s_error_shape() {
        let mut limited =
            Refusal::new(429, "rate_limit_error", "rate_limited", "Too many requests. Retry in 3 seconds.");
        limited.retry_after = Some(3);
        let response = limited.error_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "3");
        let body = actix_web::body::to_bytes(response.into_body()).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"type": "rate_limit_error", "code": "rate_limited",
                                         "message": "Too many requests. Retry in 3 seconds."}})
        );
        let missing = Refusal::missing().error_response();
        assert_eq!(missing.headers().get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    }
}
