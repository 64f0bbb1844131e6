//! Anthropic: `GET /v1/models` with `x-api-key` and `anthropic-version: 2023-06-01`, for the
//! check (`limit=1`) and for the paged model list.

use otesse_domain::integration::HealthOutcome;
use otesse_domain::ports::{ProviderClient, ProviderModel};
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

const ADMIN_KEY: &str = "sk-ant-admin01-usage";

fn usage_credentials() -> otesse_domain::integration::Credentials {
    otesse_domain::integration::Credentials {
        api_key: KEY.to_owned().into(),
        api_secret: Some(ADMIN_KEY.to_owned().into()),
        account_id: None,
    }
}

fn usage_request() -> MockBuilder {
    Mock::given(method("GET"))
        .and(path("/v1/organizations/usage_report/messages"))
        .and(header("x-api-key", ADMIN_KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .and(query_param("starting_at", "2026-11-18T00:00:00Z"))
        .and(query_param("bucket_width", "1d"))
}

fn bucket(day: &str, results: serde_json::Value) -> serde_json::Value {
    json!({"starting_at": format!("{day}T00:00:00Z"), "ending_at": format!("{day}T23:59:59Z"), "results": results})
}

fn result(uncached: u64, output: u64) -> serde_json::Value {
    json!({
        "uncached_input_tokens": uncached,
        "cache_creation": {"ephemeral_1h_input_tokens": 10, "ephemeral_5m_input_tokens": 5},
        "cache_read_input_tokens": 7,
        "output_tokens": output,
        "server_tool_use": {"web_search_requests": 0},
        "model": "claude-sonnet-4-5", "api_key_id": null, "workspace_id": null, "service_tier": "standard",
        "context_window": "0-200k"
    })
}

async fn usage(
    base: &str,
) -> Result<Vec<otesse_domain::ports::ProviderUsageDay>, otesse_domain::integration::HealthReport> {
    let since = chrono::DateTime::parse_from_rfc3339("2026-11-18T00:00:00Z").unwrap().to_utc();
    let report =
        crate::client("anthropic", base).usage_report(&crate::slug("anthropic"), &usage_credentials(), since).await;
    if let Err(failure) = &report {
        assert!(!failure.detail.contains(ADMIN_KEY), "{failure:?}");
    }
    report
}

#[tokio::test]
async fn usage_is_read_with_the_admin_key_summed_per_day_across_pages() {
    let server = MockServer::start().await;
    let first = json!({
        "data": [bucket("2026-11-18", json!([result(100, 40), result(1, 2)]))],
        "has_more": true, "next_page": "page_2"
    });
    let second = json!({"data": [bucket("2026-11-19", json!([result(5, 6)]))], "has_more": false, "next_page": null});
    usage_request()
        .and(query_param_is_missing("page"))
        .respond_with(crate::json(200, first))
        .expect(1)
        .mount(&server)
        .await;
    usage_request()
        .and(query_param("page", "page_2"))
        .respond_with(crate::json(200, second))
        .expect(1)
        .mount(&server)
        .await;

    let days = usage(&server.uri()).await.expect("a usage report");
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].starting_at.to_rfc3339(), "2026-11-18T00:00:00+00:00");
    assert_eq!(
        (
            days[0].input_tokens,
            days[0].cache_creation_input_tokens,
            days[0].cache_read_input_tokens,
            days[0].output_tokens
        ),
        (101, 30, 14, 42)
    );
    assert_eq!((days[1].input_tokens, days[1].output_tokens), (5, 6));
    server.verify().await;
}

#[tokio::test]
async fn an_ordinary_key_on_the_admin_api_is_reported_as_invalid() {
    let server = MockServer::start().await;
    usage_request().respond_with(error(401, "authentication_error")).expect(1).mount(&server).await;
    let report = usage(&server.uri()).await.expect_err("a 401 is no report");
    assert_eq!(
        (report.outcome, report.detail.as_str()),
        (HealthOutcome::InvalidCredentials, "HTTP 401 authentication_error")
    );

    let garbled = MockServer::start().await;
    usage_request().respond_with(garbage()).mount(&garbled).await;
    assert_eq!(usage(&garbled.uri()).await.expect_err("garbage").outcome, HealthOutcome::Unreachable);
}
