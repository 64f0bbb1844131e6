//! Postmark: `GET /server` with `X-Postmark-Server-Token` and `Accept: application/json`.

use otesse_domain::integration::HealthOutcome;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

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

fn message() -> otesse_domain::ports::OutgoingMessage {
    otesse_domain::ports::OutgoingMessage {
        from: "billing@acme.test".into(),
        to: "admin@acme.test".into(),
        subject: "Your key expires".into(),
        body: "Rotate it.".into(),
    }
}

async fn send(server: &MockServer) -> Result<String, otesse_domain::integration::HealthReport> {
    use otesse_domain::ports::ProviderClient;
    crate::client("postmark", &server.uri())
        .send_email(&crate::slug("postmark"), &crate::credentials(), &message())
        .await
}

#[tokio::test]
async fn email_is_sent_with_the_server_token_and_the_message_id_returned() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .and(header("X-Postmark-Server-Token", KEY))
        .and(wiremock::matchers::body_json(serde_json::json!({
            "From": "billing@acme.test", "To": "admin@acme.test", "Subject": "Your key expires",
            "TextBody": "Rotate it.", "MessageStream": "outbound"
        })))
        .respond_with(crate::json(
            200,
            serde_json::json!({
                "To": "admin@acme.test", "SubmittedAt": "2026-11-24T12:00:00Z",
                "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "ErrorCode": 0, "Message": "OK"
            }),
        ))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(send(&server).await.unwrap(), "b7bc2f4a-e38e-4336-af7d-e6c392c2f817");
}

#[tokio::test]
async fn a_refused_email_reports_postmarks_error_code_only() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .respond_with(crate::json(422, serde_json::json!({
            "ErrorCode": 400, "Message": "The 'From' address you supplied (billing@acme.test) is not a Sender Signature"
        })))
        .mount(&server)
        .await;
    let report = send(&server).await.unwrap_err();
    assert_eq!(report.detail, "HTTP 422 (ErrorCode 400)");
    assert!(!report.detail.contains("billing@acme.test"));

    let denied = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .respond_with(crate::json(401, serde_json::json!({"ErrorCode": 10, "Message": "Bad token"})))
        .mount(&denied)
        .await;
    assert_eq!(send(&denied).await.unwrap_err().outcome, HealthOutcome::InvalidCredentials);
}
