//! Anthropic (AI), checked with an API key; also the source of the model list (I11).
//!
//! - Endpoint: `GET https://api.anthropic.com/v1/models?limit=1` for the check ("List Models":
//!   free, read-only). The model list pages through the same endpoint with `limit` (1 to 1000,
//!   default 20) and `after_id`; each page is `{"data": [{"id", "display_name", "created_at",
//!   "type": "model"}], "has_more", "first_id", "last_id"}`, `last_id` being the next
//!   `after_id`.
//! - Auth: headers `x-api-key: <key>` and `anthropic-version: 2023-06-01`.
//! - Answers: errors are `{"type": "error", "error": {"type": "...", "message": "..."}}` with
//!   400 `invalid_request_error`, 401 `authentication_error` (a problem with the key), 403
//!   `permission_error` (the key may not use the resource), 404 `not_found_error`, 429
//!   `rate_limit_error`, 500 `api_error`, 529 `overloaded_error` (Anthropic is overloaded).
//!   The error type is repeated in the detail; the message never is.
//!
//! - Usage monitoring: `GET /v1/organizations/usage_report/messages?starting_at=<RFC 3339>&
//!   bucket_width=1d&limit=31` (Admin API: the same two headers, but `x-api-key` is an **admin**
//!   key, `sk-ant-admin...`, which ordinary keys are not). Each page is `{"data": [{"starting_at",
//!   "ending_at", "results": [{"uncached_input_tokens", "cache_creation":
//!   {"ephemeral_1h_input_tokens", "ephemeral_5m_input_tokens"}, "cache_read_input_tokens",
//!   "output_tokens", ...}]}], "has_more", "next_page"}`, `next_page` going back as `page`.
//!
//! Read from <https://docs.claude.com/en/api/errors> (statuses, error shape),
//! <https://platform.claude.com/docs/en/api/models-list> (endpoint, paging, headers) and
//! <https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages> (usage report).

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use otesse_domain::integration::Credentials;
use otesse_domain::ports::{ProviderModel, ProviderUsageDay};
use reqwest::RequestBuilder;
use reqwest::header::HeaderName;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::api::{Failed, NO_USAGE_REPORT, ProviderApi, not_offered};
use crate::http::{Answer, BaseUrl, Http, Verdict, by_status, secret_header, word};

const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// Anthropic's client: a health check, the model list and (with an admin key) the usage report.
#[derive(Debug)]
pub(crate) struct Anthropic;

#[async_trait]
impl ProviderApi for Anthropic {
    fn slug(&self) -> &'static str {
        "anthropic"
    }

    fn default_base_url(&self) -> &'static str {
        DEFAULT_BASE_URL
    }

    fn health_request(&self, http: &Http, base: &BaseUrl, key: &str) -> Result<RequestBuilder, Verdict> {
        health_request(http, base, key)
    }

    fn classify(&self, answer: &Answer) -> Verdict {
        classify(answer)
    }

    async fn list_models(&self, http: &Http, base: &BaseUrl, key: &str) -> Result<Vec<ProviderModel>, Failed> {
        list_models(http, base, key).await
    }

    /// Needs the admin key (`credentials.api_secret`); without one there is no report to read.
    async fn usage_report(
        &self,
        http: &Http,
        base: &BaseUrl,
        credentials: &Credentials,
        since: DateTime<Utc>,
    ) -> Result<Vec<ProviderUsageDay>, Failed> {
        let Some(admin_key) = &credentials.api_secret else {
            return Err(not_offered(NO_USAGE_REPORT));
        };
        usage_report(http, base, admin_key.expose_secret(), since).await
    }
}

const API_VERSION: &str = "2023-06-01";
/// Models per page of the model list.
const PAGE_SIZE: &str = "100";
/// Pages read at most; the list has a few dozen models, so this bound is never reached
/// by a real answer, only by one that says `has_more` forever.
const MAX_PAGES: usize = 5;

fn request(http: &Http, base: &BaseUrl, key: &str, query: &[(&str, &str)]) -> Result<RequestBuilder, Verdict> {
    Ok(http
        .get(base.endpoint("/v1/models", query))
        .header(HeaderName::from_static("x-api-key"), secret_header(key)?)
        .header(HeaderName::from_static("anthropic-version"), API_VERSION))
}

fn health_request(http: &Http, base: &BaseUrl, key: &str) -> Result<RequestBuilder, Verdict> {
    request(http, base, key, &[("limit", "1")])
}

#[derive(Deserialize)]
struct ModelPage {
    data: Vec<ModelInfo>,
    #[serde(default)]
    has_more: bool,
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct ModelInfo {
    id: String,
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct AnthropicError {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(rename = "type")]
    kind: String,
}

/// `HTTP 401 authentication_error`, or just `HTTP 401` when the body does not say.
fn with_error_type(answer: &Answer) -> String {
    let status = answer.status.as_u16();
    match answer.json::<AnthropicError>().as_ref().and_then(|e| word(&e.error.kind)) {
        Some(kind) => format!("HTTP {status} {kind}"),
        None => format!("HTTP {status}"),
    }
}

/// Failures shared by the check and the model list.
fn classify_failure(answer: &Answer) -> Verdict {
    match answer.status.as_u16() {
        401 | 403 => Verdict::invalid(with_error_type(answer)),
        _ => {
            let shared = by_status(answer.status);
            Verdict::new(shared.outcome, with_error_type(answer))
        }
    }
}

fn classify(answer: &Answer) -> Verdict {
    if !answer.status.is_success() {
        return classify_failure(answer);
    }
    match answer.json::<ModelPage>() {
        Some(_) => Verdict::healthy(format!("HTTP {}", answer.status.as_u16())),
        None => Verdict::unexpected_body(answer.status),
    }
}

/// Every model, newest first (Anthropic's order), following `has_more` / `last_id` for at most
/// [`MAX_PAGES`] pages. A failure comes back with the response time of the call that failed.
async fn list_models(http: &Http, base: &BaseUrl, key: &str) -> Result<Vec<ProviderModel>, Failed> {
    let mut models = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![("limit", PAGE_SIZE)];
        if let Some(after) = after.as_deref() {
            query.push(("after_id", after));
        }
        let request = request(http, base, key, &query).map_err(|verdict| (verdict, 0))?;
        let (result, elapsed) = http.send(request).await;
        let answer = result.map_err(|failure| (failure.verdict(), elapsed))?;
        if !answer.status.is_success() {
            return Err((classify_failure(&answer), elapsed));
        }
        let page = answer.json::<ModelPage>().ok_or_else(|| (Verdict::unexpected_body(answer.status), elapsed))?;
        models.extend(
            page.data
                .into_iter()
                .map(|m| ProviderModel { display_name: m.display_name.unwrap_or_else(|| m.id.clone()), id: m.id }),
        );
        match page.last_id {
            Some(last) if page.has_more => after = Some(last),
            _ => return Ok(models),
        }
    }
    tracing::warn!(provider = "anthropic", pages = MAX_PAGES, "model list still had more pages; keeping what was read");
    Ok(models)
}

#[derive(Deserialize)]
struct UsagePage {
    data: Vec<UsageBucket>,
    #[serde(default)]
    has_more: bool,
    next_page: Option<String>,
}

#[derive(Deserialize)]
struct UsageBucket {
    starting_at: DateTime<Utc>,
    #[serde(default)]
    results: Vec<UsageResult>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UsageResult {
    uncached_input_tokens: u64,
    cache_creation: CacheCreation,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CacheCreation {
    ephemeral_1h_input_tokens: u64,
    ephemeral_5m_input_tokens: u64,
}

/// Daily usage from `since`, each day summed over its results (models, tiers), oldest first.
/// Follows `next_page` for at most [`MAX_PAGES`] pages.
async fn usage_report(
    http: &Http,
    base: &BaseUrl,
    admin_key: &str,
    since: DateTime<Utc>,
) -> Result<Vec<ProviderUsageDay>, Failed> {
    let starting_at = since.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut days = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![("starting_at", starting_at.as_str()), ("bucket_width", "1d"), ("limit", "31")];
        if let Some(page) = page.as_deref() {
            query.push(("page", page));
        }
        let request = http
            .get(base.endpoint("/v1/organizations/usage_report/messages", &query))
            .header(HeaderName::from_static("x-api-key"), secret_header(admin_key).map_err(|v| (v, 0))?)
            .header(HeaderName::from_static("anthropic-version"), API_VERSION);
        let (result, elapsed) = http.send(request).await;
        let answer = result.map_err(|failure| (failure.verdict(), elapsed))?;
        if !answer.status.is_success() {
            return Err((classify_failure(&answer), elapsed));
        }
        let body = answer.json::<UsagePage>().ok_or_else(|| (Verdict::unexpected_body(answer.status), elapsed))?;
        days.extend(body.data.into_iter().map(|bucket| {
            bucket.results.iter().fold(
                ProviderUsageDay { starting_at: bucket.starting_at, ..Default::default() },
                |mut day, r| {
                    day.input_tokens += r.uncached_input_tokens;
                    day.cache_creation_input_tokens +=
                        r.cache_creation.ephemeral_1h_input_tokens + r.cache_creation.ephemeral_5m_input_tokens;
                    day.cache_read_input_tokens += r.cache_read_input_tokens;
                    day.output_tokens += r.output_tokens;
                    day
                },
            )
        }));
        match body.next_page {
            Some(next) if body.has_more => page = Some(next),
            _ => break,
        }
    }
    days.sort_by_key(|d| d.starting_at);
    Ok(days)
}
