//! The configuration and [`HttpProviderClient`], the [`ProviderClient`] port over HTTP: it
//! picks the provider's module by slug from the registry (`PROVIDERS`), sends its one request,
//! and turns the answer (or the lack of one) into a [`HealthReport`]. Nothing here names a
//! provider.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::integration::{Credentials, HealthReport, ProviderSlug};
use otesse_domain::ports::{OutgoingMessage, ProviderClient, ProviderModel, ProviderUsageDay};
use secrecy::ExposeSecret;

use crate::PROVIDERS;
use crate::api::{Email, Failed, ProviderApi};
use crate::http::{BaseUrl, Http, Verdict};

/// Settings for [`HttpProviderClient::new`]. The server fills `base_urls` from
/// `OTESSE_PROVIDERS__<SLUG>__BASE_URL`; a provider without an entry uses its public API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderClientConfig {
    /// Provider slug (`postmark`, `google_maps`, ...) to base URL, e.g. a proxy or a test
    /// server. Slugs are matched case-insensitively; an unknown slug is a configuration error.
    pub base_urls: HashMap<String, String>,
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest wait for the whole exchange, body included.
    pub timeout: Duration,
}

impl Default for ProviderClientConfig {
    fn default() -> Self {
        Self { base_urls: HashMap::new(), connect_timeout: Duration::from_secs(5), timeout: Duration::from_secs(10) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderClientConfigError {
    #[error("no provider client for `{0}` (known: {known})", known = crate::slugs().collect::<Vec<_>>().join(", "))]
    UnknownProvider(String),
    #[error("base URL for provider {provider}: {reason}")]
    InvalidBaseUrl { provider: &'static str, reason: &'static str },
    #[error("timeouts must be greater than zero")]
    ZeroTimeout,
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// A registered provider's module and the base URL it talks to.
#[derive(Debug, Clone)]
struct Route {
    api: &'static dyn ProviderApi,
    base: BaseUrl,
}

/// [`ProviderClient`] over HTTP for every provider in the registry ([`slugs`](crate::slugs)).
/// Cheap to clone (one shared connection pool).
#[derive(Debug, Clone)]
pub struct HttpProviderClient {
    http: Http,
    routes: HashMap<&'static str, Route>,
}

impl HttpProviderClient {
    pub fn new(config: ProviderClientConfig) -> Result<Self, ProviderClientConfigError> {
        if config.connect_timeout.is_zero() || config.timeout.is_zero() {
            return Err(ProviderClientConfigError::ZeroTimeout);
        }
        let mut routes = HashMap::new();
        for &api in PROVIDERS {
            let base = BaseUrl::parse(api.default_base_url())
                .map_err(|reason| ProviderClientConfigError::InvalidBaseUrl { provider: api.slug(), reason })?;
            routes.insert(api.slug(), Route { api, base });
        }
        for (slug, raw) in &config.base_urls {
            let route = routes
                .get_mut(slug.trim().to_ascii_lowercase().as_str())
                .ok_or_else(|| ProviderClientConfigError::UnknownProvider(slug.clone()))?;
            route.base = BaseUrl::parse(raw)
                .map_err(|reason| ProviderClientConfigError::InvalidBaseUrl { provider: route.api.slug(), reason })?;
        }
        let http = Http::new(config.connect_timeout, config.timeout).map_err(ProviderClientConfigError::Http)?;
        Ok(Self { http, routes })
    }

    fn route(&self, provider: &ProviderSlug) -> Option<&Route> {
        self.routes.get(provider.as_str())
    }
}

fn report(verdict: Verdict, response_time_ms: u32) -> HealthReport {
    HealthReport { outcome: verdict.outcome, response_time_ms, detail: verdict.detail }
}

/// The last guard of the invariant that a detail never holds the credential: details are
/// built from fixed text, status codes and short provider words, but a provider (or something
/// posing as one) could echo the key back as such a word.
fn scrub(verdict: Verdict, secret: &str) -> Verdict {
    if !secret.is_empty() && verdict.detail.contains(secret) {
        Verdict { detail: format!("{} (detail withheld)", verdict.outcome.as_str()), ..verdict }
    } else {
        verdict
    }
}

/// [`scrub`] for every secret of `credentials`: an operation may send either.
fn scrub_all(verdict: Verdict, credentials: &Credentials) -> Verdict {
    let verdict = scrub(verdict, credentials.api_key.expose_secret());
    match &credentials.api_secret {
        Some(secret) => scrub(verdict, secret.expose_secret()),
        None => verdict,
    }
}

/// A failed operation as a report, scrubbed and logged as `what`.
fn failed(api: &dyn ProviderApi, (verdict, elapsed): Failed, credentials: &Credentials, what: &str) -> HealthReport {
    let verdict = scrub_all(verdict, credentials);
    tracing::info!(provider = api.slug(), outcome = verdict.outcome.as_str(), detail = %verdict.detail, "{what}");
    report(verdict, elapsed)
}

fn no_client() -> HealthReport {
    report(Verdict::unreachable("no client for provider"), 0)
}

#[async_trait]
impl ProviderClient for HttpProviderClient {
    async fn health_check(&self, provider: &ProviderSlug, credentials: &Credentials) -> HealthReport {
        let Some(Route { api, base }) = self.route(provider) else {
            tracing::warn!(provider = %provider, "health check for a provider without a client");
            return no_client();
        };
        let key = credentials.api_key.expose_secret();
        let (verdict, elapsed) = match api.health_request(&self.http, base, key) {
            Err(verdict) => (verdict, 0),
            Ok(request) => {
                let (result, elapsed) = self.http.send(request).await;
                let verdict = match result {
                    Ok(answer) => api.classify(&answer),
                    Err(failure) => failure.verdict(),
                };
                (verdict, elapsed)
            }
        };
        let verdict = scrub(verdict, key);
        tracing::info!(
            provider = api.slug(),
            outcome = verdict.outcome.as_str(),
            response_time_ms = elapsed,
            detail = %verdict.detail,
            "provider health check"
        );
        report(verdict, elapsed)
    }

    async fn list_models(
        &self,
        provider: &ProviderSlug,
        credentials: &Credentials,
    ) -> Result<Vec<ProviderModel>, HealthReport> {
        let Some(Route { api, base }) = self.route(provider) else {
            return Err(no_client());
        };
        let key = credentials.api_key.expose_secret();
        api.list_models(&self.http, base, key).await.map_err(|f| failed(*api, f, credentials, "model list failed"))
    }

    async fn send_email(
        &self,
        provider: &ProviderSlug,
        credentials: &Credentials,
        message: &OutgoingMessage,
    ) -> Result<String, HealthReport> {
        let Some(Route { api, base }) = self.route(provider) else {
            return Err(no_client());
        };
        let token = credentials.api_key.expose_secret();
        let email = Email { from: &message.from, to: &message.to, subject: &message.subject, body: &message.body };
        api.send_email(&self.http, base, token, email).await.map_err(|f| failed(*api, f, credentials, "email not sent"))
    }

    async fn usage_report(
        &self,
        provider: &ProviderSlug,
        credentials: &Credentials,
        since: DateTime<Utc>,
    ) -> Result<Vec<ProviderUsageDay>, HealthReport> {
        let Some(Route { api, base }) = self.route(provider) else {
            return Err(no_client());
        };
        api.usage_report(&self.http, base, credentials, since)
            .await
            .map_err(|f| failed(*api, f, credentials, "usage report failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use otesse_domain::integration::HealthOutcome;
    use secrecy::SecretString;

    #[test]
    fn registry_slugs_are_unique_and_defaults_parse() {
        let client = HttpProviderClient::new(ProviderClientConfig::default()).unwrap();
        assert_eq!(client.routes.len(), PROVIDERS.len(), "a slug is registered twice");
        for api in PROVIDERS {
            assert!(BaseUrl::parse(api.default_base_url()).is_ok(), "{api:?}");
            let slug = ProviderSlug::parse(api.slug()).unwrap_or_else(|| panic!("{api:?}: not a catalog slug"));
            assert_eq!(client.route(&slug).map(|r| r.api.slug()), Some(api.slug()));
        }
        assert!(client.route(&ProviderSlug::parse("openphone").unwrap()).is_none());
    }

    #[test]
    fn configuration_is_checked() {
        let with = |slug: &str, url: &str| ProviderClientConfig {
            base_urls: HashMap::from([(slug.to_owned(), url.to_owned())]),
            ..ProviderClientConfig::default()
        };
        assert!(HttpProviderClient::new(with("GOOGLE_MAPS", "http://127.0.0.1:9/")).is_ok());
        let unknown = HttpProviderClient::new(with("googlemaps", "http://127.0.0.1:9")).unwrap_err();
        assert!(matches!(unknown, ProviderClientConfigError::UnknownProvider(_)));
        let message = unknown.to_string();
        assert!(message.contains("`googlemaps`"), "{message}");
        for api in PROVIDERS {
            assert!(message.contains(api.slug()), "{message} does not name {}", api.slug());
        }
        assert!(matches!(
            HttpProviderClient::new(with("stripe", "api.stripe.com")),
            Err(ProviderClientConfigError::InvalidBaseUrl { provider: "stripe", .. })
        ));
        let zero = ProviderClientConfig { timeout: Duration::ZERO, ..ProviderClientConfig::default() };
        assert!(matches!(HttpProviderClient::new(zero), Err(ProviderClientConfigError::ZeroTimeout)));
    }

    #[test]
    fn a_detail_that_echoes_the_key_is_withheld() {
        let echoed = scrub(Verdict::invalid("HTTP 401 sk_canary"), "sk_canary");
        assert_eq!(echoed.outcome, HealthOutcome::InvalidCredentials);
        assert!(!echoed.detail.contains("sk_canary"));
        assert_eq!(scrub(Verdict::invalid("HTTP 401"), "sk_canary").detail, "HTTP 401");
        let credentials = Credentials {
            api_key: SecretString::from("key_canary"),
            api_secret: Some(SecretString::from("admin_canary")),
            account_id: None,
        };
        for detail in ["HTTP 403 key_canary", "HTTP 403 admin_canary"] {
            let withheld = scrub_all(Verdict::invalid(detail), &credentials);
            assert_eq!(withheld.detail, "invalid_credentials (detail withheld)", "{detail}");
        }
    }
}
