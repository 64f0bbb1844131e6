//! Prometheus metrics, served at `/metrics` (O4); docs/operations.md lists each one.
//!
//! Most are counted where things happen: requests by route ([`HttpMetrics`], in the request-id
//! middleware), key-cache lookups, usage rows and batch writes, job attempts, webhook deliveries
//! and provider checks (the decorators of [`observed`]). A few are read when `/metrics` is
//! scraped ([`Scrape`]): the usage queue's depth, the database pool, the job backlog.
//!
//! Labels only ever take values from closed sets: route patterns (never paths, which hold ids),
//! status classes, method names, job kinds, delivery outcomes and the catalog's provider slugs.
//! No label or value carries a secret, an id or anything a caller typed.

mod http;
pub mod observed;
mod scrape;

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub use http::HttpMetrics;
pub use scrape::Scrape;

/// Seconds, for requests: from half a millisecond (a cached key) to 10 s.
const REQUEST_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Seconds, for one usage batch written in one transaction.
const BATCH_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Seconds, for one API key's lookup in the database: fine around the F1 goals (p99 under 1 ms
/// on SQLite, 3 ms on PostgreSQL), from 50 µs to 1 s.
const KEY_LOOKUP_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025,
    0.1, 1.0,
];
/// Seconds, for calls to other services (webhook receivers, providers), up to their timeouts.
const OUTBOUND_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Every metric of one process, registered in its own registry (tests run several servers in
/// one process). Cheap to clone: clones share the metrics.
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
    /// `{route, method, status_class}`; written through [`HttpMetrics`].
    http_requests: IntCounterVec,
    /// `{route, method}`; written through [`HttpMetrics`].
    http_duration: HistogramVec,
    /// Key lookups the cache answered (a known key or a remembered unknown one), and those it
    /// did not (the key is looked up in the database).
    pub key_cache_hits: IntCounter,
    pub key_cache_misses: IntCounter,
    /// A key's lookup in the database by its hash, after a cache miss (F1).
    pub key_lookup: Histogram,
    /// Usage rows waiting for the writer (read when scraped), and how many may wait.
    pub usage_queue_depth: IntGauge,
    pub usage_queue_capacity: IntGauge,
    /// One batch's write, each attempt.
    pub usage_batch_write: Histogram,
    /// `{kind}`, read from the jobs table when scraped.
    pub jobs_queued: IntGaugeVec,
    pub job_oldest_age: GaugeVec,
    /// `{outcome}`: see [`observed::DeliveryOutcome`].
    pub webhook_deliveries: IntCounterVec,
    pub webhook_duration: Histogram,
    /// `{provider}`.
    pub provider_health_check: HistogramVec,
    /// `{state}`: `idle` or `in_use`; read when scraped.
    pub db_pool_connections: IntGaugeVec,
    pub db_pool_max: IntGauge,
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

/// Registers `metric` in `registry` and returns it. Names and labels are static, so a failure
/// is a bug found by the first test that builds [`Metrics`].
fn registered<M: Collector + Clone + 'static>(registry: &Registry, metric: prometheus::Result<M>) -> M {
    #[allow(clippy::expect_used)]
    let metric = metric.expect("metric names and labels are static and valid");
    #[allow(clippy::expect_used)]
    registry.register(Box::new(metric.clone())).expect("each metric is registered once");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    registered(registry, IntCounter::new(name, help))
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    registered(registry, IntGauge::new(name, help))
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    registered(registry, Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec())))
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let key_cache = registered(
            &r,
            IntCounterVec::new(
                Opts::new("otesse_key_cache_requests_total", "API key lookups in the key cache, by result"),
                &["result"],
            ),
        );
        let jobs_queued = registered(
            &r,
            IntGaugeVec::new(
                Opts::new("otesse_jobs_queued", "Queued background jobs (due or waiting for a retry), by kind"),
                &["kind"],
            ),
        );
        let job_oldest_age = registered(
            &r,
            GaugeVec::new(
                Opts::new(
                    "otesse_job_oldest_age_seconds",
                    "How long the oldest due queued job has waited for a worker, by kind (0 when none is due)",
                ),
                &["kind"],
            ),
        );
        let webhook_deliveries = registered(
            &r,
            IntCounterVec::new(
                Opts::new("otesse_webhook_deliveries_total", "Webhook delivery attempts, by outcome"),
                &["outcome"],
            ),
        );
        let db_pool_connections = registered(
            &r,
            IntGaugeVec::new(
                Opts::new("otesse_db_pool_connections", "Open connections of the database pool, by state"),
                &["state"],
            ),
        );
        // The closed label sets are written out from the start, so that every series exists
        // (at 0) before its first event and `rate()` and alerts see its first increase.
        for kind in otesse_domain::jobs::JobKind::ALL {
            jobs_queued.with_label_values(&[kind.as_str()]);
            job_oldest_age.with_label_values(&[kind.as_str()]);
        }
        for outcome in observed::DeliveryOutcome::ALL {
            webhook_deliveries.with_label_values(&[outcome.as_str()]);
        }
        for state in ["idle", "in_use"] {
            db_pool_connections.with_label_values(&[state]);
        }
        Self {
            key_requests: counter(
                &r,
                "otesse_api_key_requests_total",
                "Requests authenticated with an API key and handed to the usage log",
            ),
            usage_written: counter(&r, "otesse_usage_rows_written_total", "Usage rows written to the database"),
            usage_dropped: counter(
                &r,
                "otesse_usage_rows_dropped_total",
                "Usage rows dropped because the queue was full or the database kept failing",
            ),
            rate_limited: counter(&r, "otesse_rate_limited_total", "Requests refused by a rate limit"),
            rate_limiter_errors: counter(
                &r,
                "otesse_rate_limiter_errors_total",
                "Requests let through because the rate limiter could not decide",
            ),
            jobs_succeeded: counter(&r, "otesse_jobs_succeeded_total", "Background jobs that succeeded"),
            jobs_retried: counter(
                &r,
                "otesse_jobs_retried_total",
                "Background job attempts that failed and will be retried",
            ),
            jobs_failed: counter(
                &r,
                "otesse_jobs_failed_total",
                "Background jobs that failed their last attempt and gave up",
            ),
            http_requests: registered(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "otesse_http_requests_total",
                        "HTTP requests answered, by route pattern, method and status class",
                    ),
                    &["route", "method", "status_class"],
                ),
            ),
            http_duration: registered(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "otesse_http_request_duration_seconds",
                        "Time to answer an HTTP request (until its response head), by route pattern and method",
                    )
                    .buckets(REQUEST_BUCKETS.to_vec()),
                    &["route", "method"],
                ),
            ),
            key_cache_hits: key_cache.with_label_values(&["hit"]),
            key_cache_misses: key_cache.with_label_values(&["miss"]),
            key_lookup: histogram(
                &r,
                "otesse_key_lookup_seconds",
                "Time to look an API key up in the database by its hash, after a key-cache miss",
                KEY_LOOKUP_BUCKETS,
            ),
            usage_queue_depth: gauge(&r, "otesse_usage_queue_depth", "Usage rows queued for the writer"),
            usage_queue_capacity: gauge(
                &r,
                "otesse_usage_queue_capacity",
                "The most usage rows that may wait; past it rows are dropped",
            ),
            usage_batch_write: histogram(
                &r,
                "otesse_usage_batch_write_seconds",
                "Time to write one batch of usage rows (each attempt)",
                BATCH_BUCKETS,
            ),
            jobs_queued,
            job_oldest_age,
            webhook_deliveries,
            webhook_duration: histogram(
                &r,
                "otesse_webhook_delivery_duration_seconds",
                "Time of a webhook delivery attempt that was sent, until the answer or the failure",
                OUTBOUND_BUCKETS,
            ),
            provider_health_check: registered(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "otesse_provider_health_check_seconds",
                        "Time of a provider health check, by provider",
                    )
                    .buckets(OUTBOUND_BUCKETS.to_vec()),
                    &["provider"],
                ),
            ),
            db_pool_connections,
            db_pool_max: gauge(&r, "otesse_db_pool_max_connections", "The most connections the database pool opens"),
            registry: r,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}
