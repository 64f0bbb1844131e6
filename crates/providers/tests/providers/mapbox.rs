//! Mapbox: `GET /tokens/v2?access_token=<token>`; the JSON `code` decides.

use otesse_domain::integration::HealthOutcome;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockBuilder};

use crate::{DELAY, KEY, answer, garbage};

fn authorized() -> MockBuilder {
    Mock::given(method("GET")).and(path("/tokens/v2")).and(query_param("access_token", KEY))
}

fn token(code: &str) -> serde_json::Value {
    json!({"code": code, "token": {"usage": "pk", "user": "mapbox", "authorization": "cijucimbe000brbkt48d0dhcx"}})
}

#[tokio::test]
async fn a_valid_token_is_healthy_and_timed() {
    let report = answer("mapbox", authorized(), crate::json(200, token("TokenValid")).set_delay(DELAY)).await;
    assert_eq!(report.outcome, HealthOutcome::Healthy, "{report:?}");
    assert_eq!(report.detail, "HTTP 200 TokenValid");
    assert!(u128::from(report.response_time_ms) >= DELAY.as_millis(), "{report:?}");
}

#[tokio::test]
async fn answers_are_classified() {
    let cases = [
        (crate::json(200, token("TokenInvalid")), HealthOutcome::InvalidCredentials, "HTTP 200 TokenInvalid"),
        (crate::json(200, token("TokenExpired")), HealthOutcome::InvalidCredentials, "HTTP 200 TokenExpired"),
        (crate::json(200, token("TokenRevoked")), HealthOutcome::InvalidCredentials, "HTTP 200 TokenRevoked"),
        (crate::json(401, token("TokenMalformed")), HealthOutcome::InvalidCredentials, "HTTP 401 TokenMalformed"),
        (crate::json(401, json!({"message": "Unauthorized"})), HealthOutcome::InvalidCredentials, "HTTP 401"),
        (crate::json(403, json!({"message": "Forbidden"})), HealthOutcome::InvalidCredentials, "HTTP 403"),
        (crate::json(429, json!({"message": "Too Many Requests"})), HealthOutcome::RateLimited, "HTTP 429"),
        (crate::json(500, json!({"message": "Internal Server Error"})), HealthOutcome::Unreachable, "HTTP 500"),
        (garbage(), HealthOutcome::Unreachable, "unexpected response (HTTP 200, body not recognised)"),
        // An unknown code is not repeated (it could be anything) and proves nothing.
        (
            crate::json(200, token(KEY)),
            HealthOutcome::Unreachable,
            "unexpected response (HTTP 200, body not recognised)",
        ),
    ];
    for (response, outcome, detail) in cases {
        let report = answer("mapbox", authorized(), response).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
}
