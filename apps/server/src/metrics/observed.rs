//! Decorators that measure the ports the domain calls, so that the domain crate stays free of
//! metrics: the key cache (hits and misses), the key store (the time of a lookup by hash), the webhook sender (deliveries by outcome, their
//! time) and the provider client (health checks' time by provider). Each forwards every call
//! unchanged.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::api_key::{ApiKey, ApiKeyId, ApiKeyRepository, InsertKeyError, KeyHash, RotateStoredKeyError};
use otesse_domain::event::DomainEvent;
use otesse_domain::integration::{Credentials, HealthReport, ProviderSlug};
use otesse_domain::organization::OrganizationId;
use otesse_domain::ports::{CachedKey, KeyCache, OutgoingMessage, ProviderClient, ProviderModel, ProviderUsageDay};
use otesse_domain::webhook::{SendOutcome, WebhookSender};
use prometheus::{Histogram, HistogramVec, IntCounter};
use secrecy::SecretString;

use super::Metrics;

/// The key cache, counting each lookup as a hit (a known key, or an unknown one remembered as
/// such) or a miss (the key is then looked up in the database). One atomic add per lookup.
pub struct CountedKeyCache<C> {
    inner: C,
    hits: IntCounter,
    misses: IntCounter,
}

impl<C> CountedKeyCache<C> {
    pub fn new(inner: C, metrics: &Metrics) -> Self {
        Self { inner, hits: metrics.key_cache_hits.clone(), misses: metrics.key_cache_misses.clone() }
    }
}

impl<C: KeyCache> KeyCache for CountedKeyCache<C> {
    fn get(&self, hash: &KeyHash) -> Option<CachedKey> {
        let found = self.inner.get(hash);
        match found {
            Some(_) => self.hits.inc(),
            None => self.misses.inc(),
        }
        found
    }

    fn insert(&self, hash: KeyHash, entry: CachedKey) {
        self.inner.insert(hash, entry);
    }

    fn invalidate(&self, hash: &KeyHash) {
        self.inner.invalidate(hash);
    }

    fn invalidate_all(&self) {
        self.inner.invalidate_all();
    }
}

/// The key store, timing each lookup by hash: the database read of a key-cache miss, the cold
/// path of F1. Every other call is forwarded untimed.
pub struct TimedKeyRepository {
    inner: Arc<dyn ApiKeyRepository>,
    lookup: Histogram,
}

impl TimedKeyRepository {
    pub fn new(inner: Arc<dyn ApiKeyRepository>, metrics: &Metrics) -> Self {
        Self { inner, lookup: metrics.key_lookup.clone() }
    }
}

#[async_trait]
impl ApiKeyRepository for TimedKeyRepository {
    async fn insert(
        &self,
        key: &ApiKey,
        event: &DomainEvent,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(), InsertKeyError> {
        self.inner.insert(key, event, limit, now).await
    }

    async fn find(&self, organization: OrganizationId, id: ApiKeyId) -> Result<Option<ApiKey>, StorageError> {
        self.inner.find(organization, id).await
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StorageError> {
        let started = Instant::now();
        let found = self.inner.find_by_hash(hash).await;
        self.lookup.observe(started.elapsed().as_secs_f64());
        found
    }

    async fn list(&self, organization: OrganizationId) -> Result<Vec<ApiKey>, StorageError> {
        self.inner.list(organization).await
    }

    async fn expiring_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<ApiKey>, StorageError> {
        self.inner.expiring_between(from, to).await
    }

    async fn revoke(
        &self,
        organization: OrganizationId,
        id: ApiKeyId,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<Option<ApiKey>, StorageError> {
        self.inner.revoke(organization, id, at, event).await
    }

    async fn rotate(
        &self,
        new_key: &ApiKey,
        old_key: ApiKeyId,
        revoke_old_at: Option<DateTime<Utc>>,
        event: &DomainEvent,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(), RotateStoredKeyError> {
        self.inner.rotate(new_key, old_key, revoke_old_at, event, limit, now).await
    }
}

/// The `outcome` label of `otesse_webhook_deliveries_total`: how one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Success,
    /// The receiver answered anything else (3xx included: redirects are not followed).
    HttpError,
    /// No answer: a timeout, a refused connection, TLS.
    NetworkError,
    /// Not sent: the URL resolves to a forbidden address (W5).
    Refused,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 4] = [Self::Success, Self::HttpError, Self::NetworkError, Self::Refused];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::HttpError => "http_error",
            Self::NetworkError => "network_error",
            Self::Refused => "refused",
        }
    }

    fn of(outcome: &SendOutcome) -> Self {
        match outcome {
            SendOutcome::Answered { status, .. } if (200..300).contains(status) => Self::Success,
            SendOutcome::Answered { .. } => Self::HttpError,
            SendOutcome::Failed { .. } => Self::NetworkError,
            SendOutcome::Refused { .. } => Self::Refused,
        }
    }
}

/// The webhook sender, counting every delivery attempt by outcome and timing those sent.
pub struct TimedWebhookSender {
    inner: Arc<dyn WebhookSender>,
    by_outcome: [IntCounter; 4],
    duration: Histogram,
}

impl TimedWebhookSender {
    pub fn new(inner: Arc<dyn WebhookSender>, metrics: &Metrics) -> Self {
        let by_outcome = DeliveryOutcome::ALL.map(|o| metrics.webhook_deliveries.with_label_values(&[o.as_str()]));
        Self { inner, by_outcome, duration: metrics.webhook_duration.clone() }
    }
}

#[async_trait]
impl WebhookSender for TimedWebhookSender {
    async fn check_url(&self, url: &str) -> Result<String, String> {
        self.inner.check_url(url).await
    }

    async fn send(
        &self,
        url: &str,
        secrets: &[SecretString],
        message_id: &str,
        timestamp: i64,
        body: &str,
    ) -> SendOutcome {
        let started = Instant::now();
        let outcome = self.inner.send(url, secrets, message_id, timestamp, body).await;
        let class = DeliveryOutcome::of(&outcome);
        if class != DeliveryOutcome::Refused {
            self.duration.observe(started.elapsed().as_secs_f64());
        }
        // `ALL` lists the outcomes in declaration order, so the discriminant is the index.
        self.by_outcome[class as usize].inc();
        outcome
    }

    fn new_secret(&self) -> SecretString {
        self.inner.new_secret()
    }
}

/// The provider client, timing every health check by provider. The slugs come from the
/// catalog (a connection's provider is always one), so the label has a bounded set of values.
pub struct TimedProviderClient {
    inner: Arc<dyn ProviderClient>,
    duration: HistogramVec,
}

impl TimedProviderClient {
    pub fn new(inner: Arc<dyn ProviderClient>, metrics: &Metrics) -> Self {
        Self { inner, duration: metrics.provider_health_check.clone() }
    }
}

#[async_trait]
impl ProviderClient for TimedProviderClient {
    async fn health_check(&self, provider: &ProviderSlug, credentials: &Credentials) -> HealthReport {
        let started = Instant::now();
        let report = self.inner.health_check(provider, credentials).await;
        self.duration.with_label_values(&[provider.as_str()]).observe(started.elapsed().as_secs_f64());
        report
    }

    async fn list_models(
        &self,
        provider: &ProviderSlug,
        credentials: &Credentials,
    ) -> Result<Vec<ProviderModel>, HealthReport> {
        self.inner.list_models(provider, credentials).await
    }

    async fn send_email(
        &self,
        provider: &ProviderSlug,
        credentials: &Credentials,
        message: &OutgoingMessage,
    ) -> Result<String, HealthReport> {
        self.inner.send_email(provider, credentials, message).await
    }

    async fn usage_report(
        &self,
        provider: &ProviderSlug,
        credentials: &Credentials,
        since: DateTime<Utc>,
    ) -> Result<Vec<ProviderUsageDay>, HealthReport> {
        self.inner.usage_report(provider, credentials, since).await
    }
}

#[cfg(test)]
mod tests {
    use otesse_domain::api_key::MockApiKeyRepository;
    use otesse_domain::integration::{HealthOutcome, MockProviderClient};
    use otesse_domain::ports::MockKeyCache;
    use otesse_domain::webhook::MockWebhookSender;

    use super::*;

    fn value(metrics: &Metrics, line_start: &str) -> f64 {
        let text = metrics.render();
        text.lines().find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok()).unwrap_or_else(|| {
            panic!("no {line_start} in\n{text}");
        })
    }

    #[test]
    fn key_lookups_are_counted_as_hits_or_misses() {
        let metrics = Metrics::new();
        let mut inner = MockKeyCache::new();
        let known = KeyHash([1; 32]);
        inner.expect_get().returning(move |hash| (*hash == known).then_some(None));
        inner.expect_invalidate().times(1).return_const(());
        let cache = CountedKeyCache::new(inner, &metrics);
        assert_eq!(cache.get(&known), Some(None), "answers what the inner cache answers");
        assert_eq!(cache.get(&KeyHash([2; 32])), None);
        assert_eq!(cache.get(&KeyHash([3; 32])), None);
        cache.invalidate(&known);
        assert_eq!(value(&metrics, r#"otesse_key_cache_requests_total{result="hit"}"#), 1.0);
        assert_eq!(value(&metrics, r#"otesse_key_cache_requests_total{result="miss"}"#), 2.0);
    }

    #[tokio::test]
    async fn key_lookups_by_hash_are_timed_and_nothing_else_is() {
        let metrics = Metrics::new();
        let mut inner = MockApiKeyRepository::new();
        inner.expect_find_by_hash().times(2).returning(|_| Ok(None));
        inner.expect_list().times(1).returning(|_| Ok(Vec::new()));
        let keys = TimedKeyRepository::new(Arc::new(inner), &metrics);
        assert_eq!(keys.find_by_hash(&KeyHash([1; 32])).await, Ok(None), "answers what the store answers");
        keys.find_by_hash(&KeyHash([2; 32])).await.unwrap();
        keys.list(OrganizationId(uuid::Uuid::nil())).await.unwrap();
        assert_eq!(value(&metrics, "otesse_key_lookup_seconds_count"), 2.0);
        let sum = value(&metrics, "otesse_key_lookup_seconds_sum");
        assert!(sum > 0.0 && sum < 10.0, "{sum}");
        // Fine buckets around the F1 goals (1 ms on SQLite, 3 ms on PostgreSQL).
        for le in ["0.0005", "0.001", "0.002", "0.003"] {
            let bucket = format!("otesse_key_lookup_seconds_bucket{{le=\"{le}\"}}");
            assert!(metrics.render().contains(&bucket), "no {bucket}");
        }
    }

    #[tokio::test]
    async fn deliveries_are_counted_by_outcome_and_the_sent_ones_timed() {
        let metrics = Metrics::new();
        let mut inner = MockWebhookSender::new();
        let outcomes = std::sync::Mutex::new(vec![
            SendOutcome::Refused { reason: "private address".into() },
            SendOutcome::Failed { error: "timeout".into(), response_ms: 1000 },
            SendOutcome::Answered { status: 302, response_ms: 3 },
            SendOutcome::Answered { status: 500, response_ms: 3 },
            SendOutcome::Answered { status: 204, response_ms: 3 },
        ]);
        inner.expect_send().times(5).returning(move |_, _, _, _, _| outcomes.lock().unwrap().pop().unwrap());
        let sender = TimedWebhookSender::new(Arc::new(inner), &metrics);
        for _ in 0..5 {
            sender.send("https://example.test/hook", &[], "msg_1", 0, "{}").await;
        }
        let deliveries =
            |outcome: &str| value(&metrics, &format!(r#"otesse_webhook_deliveries_total{{outcome="{outcome}"}}"#));
        assert_eq!(["success", "http_error", "network_error", "refused"].map(deliveries), [1.0, 2.0, 1.0, 1.0]);
        assert_eq!(
            value(&metrics, "otesse_webhook_delivery_duration_seconds_count"),
            4.0,
            "refused ones were not sent"
        );
    }

    #[tokio::test]
    async fn health_checks_are_timed_by_provider() {
        let metrics = Metrics::new();
        let mut inner = MockProviderClient::new();
        inner.expect_health_check().times(3).returning(|_, _| HealthReport {
            outcome: HealthOutcome::Healthy,
            response_time_ms: 1,
            detail: String::new(),
        });
        let client = TimedProviderClient::new(Arc::new(inner), &metrics);
        let credentials = Credentials { api_key: "k".to_owned().into(), api_secret: None, account_id: None };
        for slug in ["postmark", "postmark", "stripe"] {
            let report = client.health_check(&ProviderSlug::parse(slug).unwrap(), &credentials).await;
            assert_eq!(report.outcome, HealthOutcome::Healthy);
        }
        let count =
            |p: &str| value(&metrics, &format!(r#"otesse_provider_health_check_seconds_count{{provider="{p}"}}"#));
        assert_eq!((count("postmark"), count("stripe")), (2.0, 1.0));
    }
}
