//! The configuration, the provider list and [`HttpProviderClient`], the
//! [`ProviderClient`] port over HTTP: it picks the provider's module by slug, sends its one
//! request, and turns the answer (or the lack of one) into a [`HealthReport`].

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::integration::{Credentials, HealthOutcome, HealthReport, ProviderSlug};
use otesse_domain::ports::{OutgoingMessage, ProviderClient, ProviderModel, ProviderUsageDay};
use reqwest::RequestBuilder;
use secrecy::ExposeSecret;

use crate::http::{Answer, BaseUrl, Http, Verdict};
use crate::{anthropic, geoapify, google_maps, mapbox, postmark, quo, stripe};

/// One outgoing email.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Email<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

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
    #[error("no provider client for `{0}` (known: postmark, stripe, mapbox, google_maps, geoapify, anthropic, quo)")]
    UnknownProvider(String),
    #[error("base URL for provider {provider}: {reason}")]
    InvalidBaseUrl { provider: &'static str, reason: &'static str },
    #[error("timeouts must be greater than zero")]
    ZeroTimeout,
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// The providers this crate has a client for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Postmark,
    Stripe,
    Mapbox,
    GoogleMaps,
    Geoapify,
    Anthropic,
    Quo,
}

impl Provider {
    pub const ALL: [Provider; 7] = [
        Provider::Postmark,
        Provider::Stripe,
        Provider::Mapbox,
        Provider::GoogleMaps,
        Provider::Geoapify,
        Provider::Anthropic,
        Provider::Quo,
    ];

    /// The catalog slug.
    pub fn slug(self) -> &'static str {
        match self {
            Provider::Postmark => "postmark",
            Provider::Stripe => "stripe",
            Provider::Mapbox => "mapbox",
            Provider::GoogleMaps => "google_maps",
            Provider::Geoapify => "geoapify",
            Provider::Anthropic => "anthropic",
            Provider::Quo => "quo",
        }
    }

    pub fn parse(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.slug() == slug)
    }

    /// The provider's public API, used unless the configuration overrides it.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::Postmark => postmark::DEFAULT_BASE_URL,
            Provider::Stripe => stripe::DEFAULT_BASE_URL,
            Provider::Mapbox => mapbox::DEFAULT_BASE_URL,
            Provider::GoogleMaps => google_maps::DEFAULT_BASE_URL,
            Provider::Geoapify => geoapify::DEFAULT_BASE_URL,
            Provider::Anthropic => anthropic::DEFAULT_BASE_URL,
            Provider::Quo => quo::DEFAULT_BASE_URL,
        }
    }

    fn health_request(self, http: &Http, base: &BaseUrl, key: &str) -> Result<RequestBuilder, Verdict> {
        match self {
            Provider::Postmark => postmark::health_request(http, base, key),
            Provider::Stripe => stripe::health_request(http, base, key),
            Provider::Mapbox => mapbox::health_request(http, base, key),
            Provider::GoogleMaps => google_maps::health_request(http, base, key),
            Provider::Geoapify => geoapify::health_request(http, base, key),
            Provider::Anthropic => anthropic::health_request(http, base, key),
            Provider::Quo => quo::health_request(http, base, key),
        }
    }

    fn classify(self, answer: &Answer) -> Verdict {
        match self {
            Provider::Postmark => postmark::classify(answer),
            Provider::Stripe => stripe::classify(answer),
            Provider::Mapbox => mapbox::classify(answer),
            Provider::GoogleMaps => google_maps::classify(answer),
            Provider::Geoapify => geoapify::classify(answer),
            Provider::Anthropic => anthropic::classify(answer),
            Provider::Quo => quo::classify(answer),
        }
    }
}

/// [`ProviderClient`] over HTTP for the seven catalog providers. Cheap to clone (one shared
/// connection pool).
#[derive(Debug, Clone)]
pub struct HttpProviderClient {
    http: Http,
    base_urls: HashMap<Provider, BaseUrl>,
}

impl HttpProviderClient {
    pub fn new(config: ProviderClientConfig) -> Result<Self, ProviderClientConfigError> {
        if config.connect_timeout.is_zero() || config.timeout.is_zero() {
            return Err(ProviderClientConfigError::ZeroTimeout);
        }
        let mut base_urls = HashMap::new();
        for provider in Provider::ALL {
            let base = BaseUrl::parse(provider.default_base_url())
                .map_err(|reason| ProviderClientConfigError::InvalidBaseUrl { provider: provider.slug(), reason })?;
            base_urls.insert(provider, base);
        }
        for (slug, raw) in &config.base_urls {
            let provider = Provider::parse(&slug.trim().to_ascii_lowercase())
                .ok_or_else(|| ProviderClientConfigError::UnknownProvider(slug.clone()))?;
            let base = BaseUrl::parse(raw)
                .map_err(|reason| ProviderClientConfigError::InvalidBaseUrl { provider: provider.slug(), reason })?;
            base_urls.insert(provider, base);
        }
        let http = Http::new(config.connect_timeout, config.timeout).map_err(ProviderClientConfigError::Http)?;
        Ok(Self { http, base_urls })
    }

    fn base_url(&self, provider: Provider) -> &BaseUrl {
        // Every provider got an entry in `new`.
        &self.base_urls[&provider]
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

fn no_client() -> HealthReport {
    report(Verdict::unreachable("no client for provider"), 0)
}

#[async_trait]
impl ProviderClient for HttpProviderClient {
    async fn health_check(&self, provider: &ProviderSlug, credentials: &Credentials) -> HealthReport {
        let Some(known) = Provider::parse(provider.as_str()) else {
            tracing::warn!(provider = %provider, "health check for a provider without a client");
            return no_client();
        };
        let key = credentials.api_key.expose_secret();
        let (verdict, elapsed) = match known.health_request(&self.http, self.base_url(known), key) {
            Err(verdict) => (verdict, 0),
            Ok(request) => {
                let (result, elapsed) = self.http.send(request).await;
                let verdict = match result {
                    Ok(answer) => known.classify(&answer),
                    Err(failure) => failure.verdict(),
                };
                (verdict, elapsed)
            }
        };
        let verdict = scrub(verdict, key);
        tracing::info!(
            provider = known.slug(),
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
        match Provider::parse(provider.as_str()) {
            None => Err(no_client()),
            Some(Provider::Anthropic) => {
                let key = credentials.api_key.expose_secret();
                anthropic::list_models(&self.http, self.base_url(Provider::Anthropic), key).await.map_err(
                    |(verdict, elapsed)| {
                        let verdict = scrub(verdict, key);
                        tracing::info!(
                            provider = "anthropic",
                            outcome = verdict.outcome.as_str(),
                            detail = %verdict.detail,
                            "model list failed"
                        );
                        report(verdict, elapsed)
                    },
                )
            }
            Some(_) => Err(report(Verdict::new(HealthOutcome::Unreachable, "provider has no models"), 0)),
        }
    }

    async fn send_email(
        &self,
        provider: &ProviderSlug,
        credentials: &Credentials,
        message: &OutgoingMessage,
    ) -> Result<String, HealthReport> {
        if Provider::parse(provider.as_str()) != Some(Provider::Postmark) {
            return Err(report(Verdict::new(HealthOutcome::Unreachable, "provider does not send email"), 0));
        }
        let token = credentials.api_key.expose_secret();
        let email = Email { from: &message.from, to: &message.to, subject: &message.subject, body: &message.body };
        postmark::send_email(&self.http, self.base_url(Provider::Postmark), token, email).await.map_err(
            |(verdict, elapsed)| {
                let verdict = scrub(verdict, token);
                tracing::info!(provider = "postmark", outcome = verdict.outcome.as_str(), detail = %verdict.detail, "email not sent");
                report(verdict, elapsed)
            },
        )
    }

    async fn usage_report(
        &self,
        provider: &ProviderSlug,
        credentials: &Credentials,
        since: DateTime<Utc>,
    ) -> Result<Vec<ProviderUsageDay>, HealthReport> {
        let admin_key = match (Provider::parse(provider.as_str()), &credentials.api_secret) {
            (Some(Provider::Anthropic), Some(admin_key)) => admin_key.expose_secret(),
            (None, _) => return Err(no_client()),
            _ => return Err(report(Verdict::new(HealthOutcome::Unreachable, "no usage report for this provider"), 0)),
        };
        anthropic::usage_report(&self.http, self.base_url(Provider::Anthropic), admin_key, since).await.map_err(
            |(verdict, elapsed)| {
                let verdict = scrub(verdict, admin_key);
                tracing::info!(
                    provider = "anthropic",
                    outcome = verdict.outcome.as_str(),
                    detail = %verdict.detail,
                    "usage report failed"
                );
                report(verdict, elapsed)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_round_trip_and_defaults_parse() {
        for provider in Provider::ALL {
            assert_eq!(Provider::parse(provider.slug()), Some(provider));
            assert!(BaseUrl::parse(provider.default_base_url()).is_ok(), "{provider:?}");
            assert!(ProviderSlug::parse(provider.slug()).is_some(), "{provider:?}");
        }
        assert_eq!(Provider::parse("openphone"), None);
    }

    #[test]
    fn configuration_is_checked() {
        let with = |slug: &str, url: &str| ProviderClientConfig {
            base_urls: HashMap::from([(slug.to_owned(), url.to_owned())]),
            ..ProviderClientConfig::default()
        };
        assert!(HttpProviderClient::new(with("GOOGLE_MAPS", "http://127.0.0.1:9/")).is_ok());
        assert!(matches!(
            HttpProviderClient::new(with("googlemaps", "http://127.0.0.1:9")),
            Err(ProviderClientConfigError::UnknownProvider(_))
        ));
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
    }
}
