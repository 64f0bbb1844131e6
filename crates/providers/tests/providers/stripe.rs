//! Stripe: `GET /v1/balance` with `Authorization: Bearer <secret key>`.

use otesse_domain::integration::HealthOutcome;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockBuilder, ResponseTemplate};

use crate::{DELAY, KEY, answer, garbage};

fn authorized() -> MockBuilder {
    Mock::given(method("GET")).and(path("/v1/balance")).and(header("Authorization", format!("Bearer {KEY}").as_str()))
}

#[tokio::test]
async fn a_valid_secret_key_is_healthy_and_timed() {
    let balance = json!({
        "object": "balance",
        "available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
        "livemode": false,
        "pending": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}]
    });
    let report = answer("stripe", authorized(), crate::json(200, balance).set_delay(DELAY)).await;
    assert_eq!(report.outcome, HealthOutcome::Healthy, "{report:?}");
    assert!(u128::from(report.response_time_ms) >= DELAY.as_millis(), "{report:?}");
}

#[tokio::test]
async fn answers_are_classified() {
    // Stripe quotes part of the key in its message; the detail keeps only type and code.
    let invalid_key = json!({"error": {
        "type": "invalid_request_error",
        "message": format!("Invalid API Key provided: {KEY}"),
    }});
    let restricted = json!({"error": {
        "type": "invalid_request_error",
        "message": "The provided key 'rk_test_***' does not have the required permissions for this endpoint.",
    }});
    let expired = json!({"error": {"type": "invalid_request_error", "code": "api_key_expired", "message": "Expired API Key provided"}});
    let rate =
        json!({"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests."}});
    let cases = [
        (crate::json(401, invalid_key), HealthOutcome::InvalidCredentials, "HTTP 401 invalid_request_error"),
        (
            crate::json(401, expired),
            HealthOutcome::InvalidCredentials,
            "HTTP 401 invalid_request_error api_key_expired",
        ),
        (crate::json(403, restricted), HealthOutcome::InvalidCredentials, "HTTP 403 invalid_request_error"),
        (crate::json(429, rate), HealthOutcome::RateLimited, "HTTP 429"),
        (crate::json(500, json!({"error": {"type": "api_error"}})), HealthOutcome::Unreachable, "HTTP 500"),
        (garbage(), HealthOutcome::Unreachable, "unexpected response (HTTP 200, body not recognised)"),
        (
            crate::json(200, json!({"object": "list"})),
            HealthOutcome::Unreachable,
            "unexpected response (HTTP 200, body not recognised)",
        ),
        (ResponseTemplate::new(404), HealthOutcome::Unreachable, "unexpected response (HTTP 404)"),
    ];
    for (response, outcome, detail) in cases {
        let report = answer("stripe", authorized(), response).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
}
