//! The provider clients against local fakes (wiremock, and a few raw TCP servers for broken
//! transports) that answer the way each provider documents. Nothing here reaches the internet.
//!
//! Every check goes through [`check`] or [`models`], which assert that the report's detail never
//! contains the canary credential [`KEY`]; every fake matches on the credential where the
//! provider expects it, so a wrong auth style gets no answer and fails its test.

mod anthropic;
mod dispatch;
mod geoapify;
mod google_maps;
mod guard;
mod mapbox;
mod postmark;
mod quo;
mod stripe;
mod transport;
mod xero;

use std::collections::HashMap;
use std::time::Duration;

use otesse_domain::integration::{Credentials, HealthReport, ProviderSlug};
use otesse_domain::ports::{ProviderClient, ProviderModel};
use otesse_providers::{HttpProviderClient, ProviderClientConfig};
use secrecy::SecretString;
use wiremock::{MockBuilder, MockServer, ResponseTemplate};

/// The canary credential: no detail may contain it.
pub const KEY: &str = "canary_7Hq2_do_not_print_9xZ";

/// Delay the fakes add to successful answers, so a measured response time can be asserted.
pub const DELAY: Duration = Duration::from_millis(40);

pub fn credentials() -> Credentials {
    Credentials { api_key: SecretString::from(KEY), api_secret: None, account_id: None }
}

pub fn slug(raw: &str) -> ProviderSlug {
    ProviderSlug::parse(raw).expect("test slugs are valid")
}

/// A client whose `provider` talks to `base`, with generous timeouts (the transport tests
/// build their own short ones).
pub fn client(provider: &str, base: &str) -> HttpProviderClient {
    client_with(provider, base, Duration::from_secs(5))
}

pub fn client_with(provider: &str, base: &str, timeout: Duration) -> HttpProviderClient {
    HttpProviderClient::new(ProviderClientConfig {
        base_urls: HashMap::from([(provider.to_owned(), base.to_owned())]),
        connect_timeout: timeout,
        timeout,
    })
    .expect("test configuration is valid")
}

/// Asserts the one invariant every report shares.
pub fn assert_no_key(report: &HealthReport) {
    assert!(!report.detail.contains(KEY), "the detail leaks the credential: {report:?}");
}

/// A health check of `provider` against `base`.
pub async fn check_with(client: &HttpProviderClient, provider: &str) -> HealthReport {
    let report = client.health_check(&slug(provider), &credentials()).await;
    assert_no_key(&report);
    report
}

pub async fn check(provider: &str, base: &str) -> HealthReport {
    check_with(&client(provider, base), provider).await
}

/// Mounts `mock` (which carries the provider's path and auth matchers) answering `response`,
/// expects exactly one matching call, and runs a health check against it.
pub async fn answer(provider: &str, mock: MockBuilder, response: ResponseTemplate) -> HealthReport {
    let server = MockServer::start().await;
    mock.respond_with(response).expect(1).mount(&server).await;
    let report = check(provider, &server.uri()).await;
    server.verify().await;
    report
}

/// The model list of `provider` against `base`.
pub async fn models(provider: &str, base: &str) -> Result<Vec<ProviderModel>, HealthReport> {
    let result = client(provider, base).list_models(&slug(provider), &credentials()).await;
    if let Err(report) = &result {
        assert_no_key(report);
    }
    result
}

/// A body no provider sends: what a captive portal or a misrouted proxy answers.
pub fn garbage() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string("<html><body>Welcome to Airport Wi-Fi</body></html>")
}

pub fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}
