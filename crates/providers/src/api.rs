//! [`ProviderApi`], what one provider module gives the client: its slug, its public API, its
//! health-check request and how to read the answer, and the optional operations it offers.
//! Which provider offers what is the catalog's `resource_types`, and the domain gates on that;
//! an operation a module does not override answers, as a report, that the provider does not
//! offer it (only reached when the catalog and the modules disagree).

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::integration::Credentials;
use otesse_domain::ports::{ProviderModel, ProviderUsageDay};
use reqwest::RequestBuilder;

use crate::http::{Answer, BaseUrl, Http, Verdict};

/// What went wrong in an operation, with the response time of the call that failed (0 when
/// no call was made).
pub(crate) type Failed = (Verdict, u32);

/// One outgoing email.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Email<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// One provider's client, a unit struct in the provider's module, listed once in
/// [`PROVIDERS`](crate::PROVIDERS). Methods build and read requests; the caller (`client.rs`)
/// sends health checks, scrubs secrets from every detail and logs.
#[async_trait]
pub(crate) trait ProviderApi: Debug + Send + Sync {
    /// The catalog slug.
    fn slug(&self) -> &'static str;

    /// The provider's public API, used unless the configuration overrides it.
    fn default_base_url(&self) -> &'static str;

    /// The one lightweight authenticated call of a health check, or why it cannot be made.
    fn health_request(&self, http: &Http, base: &BaseUrl, key: &str) -> Result<RequestBuilder, Verdict>;

    /// Reads a complete answer to [`health_request`](Self::health_request).
    fn classify(&self, answer: &Answer) -> Verdict;

    /// Every model the provider offers (catalog resource type `model_selection`).
    async fn list_models(&self, _http: &Http, _base: &BaseUrl, _key: &str) -> Result<Vec<ProviderModel>, Failed> {
        Err(not_offered("provider has no models"))
    }

    /// Sends one email; the provider's message id (catalog resource type `sender_emails`).
    async fn send_email(
        &self,
        _http: &Http,
        _base: &BaseUrl,
        _token: &str,
        _email: Email<'_>,
    ) -> Result<String, Failed> {
        Err(not_offered("provider does not send email"))
    }

    /// Daily token usage from `since`, oldest day first (catalog resource type
    /// `usage_monitoring`). Takes the whole credentials: the usage call may need another
    /// secret than the health check.
    async fn usage_report(
        &self,
        _http: &Http,
        _base: &BaseUrl,
        _credentials: &Credentials,
        _since: DateTime<Utc>,
    ) -> Result<Vec<ProviderUsageDay>, Failed> {
        Err(not_offered(NO_USAGE_REPORT))
    }
}

pub(crate) const NO_USAGE_REPORT: &str = "no usage report for this provider";

/// The answer for an operation the provider does not offer; no call was made.
pub(crate) fn not_offered(detail: &'static str) -> Failed {
    (Verdict::unreachable(detail), 0)
}
