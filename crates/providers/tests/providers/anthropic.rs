//! Anthropic: `GET /v1/models` with `x-api-key` and `anthropic-version: 2023-06-01`, for the
//! check (`limit=1`) and for the paged model list.

use otesse_domain::integration::HealthOutcome;
use otesse_domain::ports::ProviderModel;
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

use crate::{DELAY, KEY, answer, garbage, models};

fn authorized() -> MockBuilder {
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", "2023-06-01"))
}

fn model(id: &str, name: &str) -> serde_json::Value {
    json!({"id": id, "display_name": name, "created_at": "2025-02-19T00:00:00Z", "type": "model"})
}

fn page(models: &[serde_json::Value], has_more: bool) -> serde_json::Value {
    let first = models.first().map(|m| m["id"].clone());
    let last = models.last().map(|m| m["id"].clone());
    json!({"data": models, "has_more": has_more, "first_id": first, "last_id": last})
}

fn error(status: u16, kind: &str) -> ResponseTemplate {
    crate::json(status, json!({"type": "error", "error": {"type": kind, "message": format!("key {KEY} rejected")}}))
}

#[tokio::test]
async fn a_valid_key_is_healthy_and_timed() {
    let mock = authorized().and(query_param("limit", "1"));
    let response = crate::json(200, page(&[model("claude-opus-4-1", "Claude Opus 4.1")], true)).set_delay(DELAY);
    let report = answer("anthropic", mock, response).await;
    assert_eq!(report.outcome, HealthOutcome::Healthy, "{report:?}");
    assert!(u128::from(report.response_time_ms) >= DELAY.as_millis(), "{report:?}");
}

#[tokio::test]
async fn answers_are_classified() {
    let cases = [
        (error(401, "authentication_error"), HealthOutcome::InvalidCredentials, "HTTP 401 authentication_error"),
        (error(403, "permission_error"), HealthOutcome::InvalidCredentials, "HTTP 403 permission_error"),
        (error(429, "rate_limit_error"), HealthOutcome::RateLimited, "HTTP 429 rate_limit_error"),
        (error(500, "api_error"), HealthOutcome::Unreachable, "HTTP 500 api_error"),
        (error(529, "overloaded_error"), HealthOutcome::Unreachable, "HTTP 529 overloaded_error"),
        (ResponseTemplate::new(502), HealthOutcome::Unreachable, "HTTP 502"),
        (garbage(), HealthOutcome::Unreachable, "unexpected response (HTTP 200, body not recognised)"),
    ];
    for (response, outcome, detail) in cases {
        let report = answer("anthropic", authorized(), response).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
}

#[tokio::test]
async fn the_model_list_follows_pages() {
    let server = MockServer::start().await;
    let first =
        page(&[model("claude-opus-4-1", "Claude Opus 4.1"), model("claude-sonnet-4-5", "Claude Sonnet 4.5")], true);
    let second = page(&[model("claude-3-5-haiku-20241022", "Claude Haiku 3.5")], false);
    authorized()
        .and(query_param_is_missing("after_id"))
        .respond_with(crate::json(200, first))
        .expect(1)
        .mount(&server)
        .await;
    authorized()
        .and(query_param("after_id", "claude-sonnet-4-5"))
        .respond_with(crate::json(200, second))
        .expect(1)
        .mount(&server)
        .await;

    let listed = models("anthropic", &server.uri()).await.expect("models");
    let expected = [
        ("claude-opus-4-1", "Claude Opus 4.1"),
        ("claude-sonnet-4-5", "Claude Sonnet 4.5"),
        ("claude-3-5-haiku-20241022", "Claude Haiku 3.5"),
    ]
    .map(|(id, name)| ProviderModel { id: id.to_owned(), display_name: name.to_owned() });
    assert_eq!(listed, expected);
    server.verify().await;
}

#[tokio::test]
async fn a_page_that_never_ends_is_cut_off() {
    let server = MockServer::start().await;
    authorized().respond_with(crate::json(200, page(&[model("loop", "Loop")], true))).mount(&server).await;
    let listed = models("anthropic", &server.uri()).await.expect("models");
    assert!(!listed.is_empty() && listed.len() <= 10, "{listed:?}");
}

#[tokio::test]
async fn a_failed_model_list_is_reported() {
    let server = MockServer::start().await;
    authorized().respond_with(error(401, "authentication_error")).expect(1).mount(&server).await;
    let report = models("anthropic", &server.uri()).await.expect_err("a 401 is no model list");
    assert_eq!(report.outcome, HealthOutcome::InvalidCredentials);
    assert_eq!(report.detail, "HTTP 401 authentication_error");

    let garbled = MockServer::start().await;
    authorized().respond_with(garbage()).mount(&garbled).await;
    let report = models("anthropic", &garbled.uri()).await.expect_err("garbage is no model list");
    assert_eq!(report.outcome, HealthOutcome::Unreachable);
}

#[tokio::test]
async fn other_providers_have_no_models() {
    let report = models("stripe", "http://127.0.0.1:9").await.expect_err("stripe has no models");
    assert_eq!((report.outcome, report.detail.as_str()), (HealthOutcome::Unreachable, "provider has no models"));
}
