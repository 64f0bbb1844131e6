//! Quo (OpenPhone): `GET /v1/phone-numbers` with `Authorization: <key>`, no `Bearer`.

use otesse_domain::integration::HealthOutcome;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockBuilder, ResponseTemplate};

use crate::{DELAY, KEY, answer, garbage};

fn authorized() -> MockBuilder {
    // The exact value: `Bearer <key>` would not match.
    Mock::given(method("GET")).and(path("/v1/phone-numbers")).and(header("Authorization", KEY))
}

fn error(status: u16, code: &str, title: &str) -> ResponseTemplate {
    crate::json(
        status,
        json!({"message": title, "code": code, "status": status, "docs": "https://openphone.com/docs",
               "title": title, "trace": "trace_id_123", "errors": []}),
    )
}

#[tokio::test]
async fn a_valid_key_is_healthy_and_timed() {
    let numbers = json!({"data": [{
        "id": "PN123abc", "groupId": "GR123abc", "formattedNumber": "(555) 555-5555", "name": "Sales",
        "number": "+15555555555", "users": [], "createdAt": "2022-01-01T00:00:00Z", "updatedAt": "2022-01-01T00:00:00Z"
    }]});
    let report = answer("quo", authorized(), crate::json(200, numbers).set_delay(DELAY)).await;
    assert_eq!(report.outcome, HealthOutcome::Healthy, "{report:?}");
    assert!(u128::from(report.response_time_ms) >= DELAY.as_millis(), "{report:?}");
}

#[tokio::test]
async fn answers_are_classified() {
    let cases = [
        (error(401, "unauthorized", "Unauthorized"), HealthOutcome::InvalidCredentials, "HTTP 401"),
        (error(403, "forbidden", "Forbidden"), HealthOutcome::InvalidCredentials, "HTTP 403"),
        (error(429, "too_many_requests", "Too Many Requests"), HealthOutcome::RateLimited, "HTTP 429"),
        (ResponseTemplate::new(500), HealthOutcome::Unreachable, "HTTP 500"),
        (garbage(), HealthOutcome::Unreachable, "unexpected response (HTTP 200, body not recognised)"),
    ];
    for (response, outcome, detail) in cases {
        let report = answer("quo", authorized(), response).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
}
