//! Postmark: `GET /server` with `X-Postmark-Server-Token` and `Accept: application/json`.

use otesse_domain::integration::HealthOutcome;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockBuilder, ResponseTemplate};

use crate::{DELAY, KEY, answer, garbage};

fn authorized() -> MockBuilder {
    Mock::given(method("GET"))
        .and(path("/server"))
        .and(header("X-Postmark-Server-Token", KEY))
        .and(header("Accept", "application/json"))
}

fn server() -> serde_json::Value {
    json!({
        "ID": 1, "Name": "Staging Testing", "ApiTokens": ["server token"], "Color": "red",
        "SmtpApiActivated": true, "DeliveryType": "Live", "InboundAddress": "yourhash@inbound.postmarkapp.com",
        "TrackOpens": false, "TrackLinks": "None"
    })
}

#[tokio::test]
async fn a_valid_server_token_is_healthy_and_timed() {
    let report = answer("postmark", authorized(), crate::json(200, server()).set_delay(DELAY)).await;
    assert_eq!(report.outcome, HealthOutcome::Healthy, "{report:?}");
    assert_eq!(report.detail, "HTTP 200");
    assert!(u128::from(report.response_time_ms) >= DELAY.as_millis(), "{report:?}");
}

#[tokio::test]
async fn answers_are_classified() {
    let bad_token = json!({"ErrorCode": 10, "Message": "Request does not contain a valid Server token."});
    let cases = [
        (crate::json(401, bad_token.clone()), HealthOutcome::InvalidCredentials, "HTTP 401 (ErrorCode 10)"),
        (crate::json(422, bad_token), HealthOutcome::InvalidCredentials, "HTTP 422 (ErrorCode 10)"),
        (ResponseTemplate::new(429), HealthOutcome::RateLimited, "HTTP 429"),
        (crate::json(500, json!({"ErrorCode": 100, "Message": "Maintenance"})), HealthOutcome::Unreachable, "HTTP 500"),
        (ResponseTemplate::new(503), HealthOutcome::Unreachable, "HTTP 503"),
        (garbage(), HealthOutcome::Unreachable, "unexpected response (HTTP 200, body not recognised)"),
        (
            crate::json(200, json!({"Name": "no id"})),
            HealthOutcome::Unreachable,
            "unexpected response (HTTP 200, body not recognised)",
        ),
    ];
    for (response, outcome, detail) in cases {
        let report = answer("postmark", authorized(), response).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
}
