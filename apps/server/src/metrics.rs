//! Prometheus metrics, served at `/metrics` (O4).

use prometheus::{Encoder, IntCounter, Registry, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests authenticated with an API key (each one queued for the usage log, or dropped).
    pub key_requests: IntCounter,
    pub usage_written: IntCounter,
    pub usage_dropped: IntCounter,
    /// Requests refused with 429 by a rate limit.
    pub rate_limited: IntCounter,
    /// Requests let through because the rate limiter could not decide (its store was down).
    pub rate_limiter_errors: IntCounter,
    /// Background job attempts that succeeded, were retried, or gave up (O5).
    pub jobs_succeeded: IntCounter,
    pub jobs_retried: IntCounter,
    pub jobs_failed: IntCounter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    #[allow(clippy::expect_used)]
    let counter = IntCounter::new(name, help).expect("metric names are static and valid");
    #[allow(clippy::expect_used)]
    registry.register(Box::new(counter.clone())).expect("each metric is registered once");
    counter
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        Self {
            key_requests: counter(
                &registry,
                "otesse_api_key_requests_total",
                "Requests authenticated with an API key and handed to the usage log",
            ),
            usage_written: counter(&registry, "otesse_usage_rows_written_total", "Usage rows written to the database"),
            usage_dropped: counter(
                &registry,
                "otesse_usage_rows_dropped_total",
                "Usage rows dropped because the queue was full or the database kept failing",
            ),
            rate_limited: counter(&registry, "otesse_rate_limited_total", "Requests refused by a rate limit"),
            rate_limiter_errors: counter(
                &registry,
                "otesse_rate_limiter_errors_total",
                "Requests let through because the rate limiter could not decide",
            ),
            jobs_succeeded: counter(&registry, "otesse_jobs_succeeded_total", "Background jobs that succeeded"),
            jobs_retried: counter(
                &registry,
                "otesse_jobs_retried_total",
                "Background job attempts that failed and will be retried",
            ),
            jobs_failed: counter(
                &registry,
                "otesse_jobs_failed_total",
                "Background jobs that failed their last attempt and gave up",
            ),
            registry,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding counters into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}
