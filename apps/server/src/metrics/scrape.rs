//! The metrics read when `/metrics` is scraped rather than counted as things happen: the usage
//! queue's depth, the database pool, and the job backlog.
//!
//! The backlog is one aggregate query on the jobs table (the queued rows, by kind), bounded by
//! [`BACKLOG_TIMEOUT`] and read at most once per [`BACKLOG_MAX_AGE`] whatever the scrape rate,
//! so `/metrics` cannot be used to load the database. When the read fails, the job series are
//! left out of the answer (a gap, rather than a stale number) and a warning is logged. The jobs
//! table is shared: every process sharing the database reports the same backlog.

use std::sync::Arc;
use std::time::{Duration, Instant};

use otesse_domain::jobs::{JobKind, JobQueue};
use otesse_domain::ports::Clock;
use otesse_storage::Database;
use tokio::sync::Mutex;

use super::Metrics;
use crate::usage::UsageQueue;

/// How long a scrape waits for the job backlog.
pub const BACKLOG_TIMEOUT: Duration = Duration::from_secs(2);
/// Scrapes closer together than this reuse the last backlog read.
pub const BACKLOG_MAX_AGE: Duration = Duration::from_secs(1);

/// What `/metrics` renders, refreshing the scrape-time values first.
pub struct Scrape {
    metrics: Metrics,
    usage: UsageQueue,
    database: Database,
    jobs: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
    /// When the backlog was last read; held while reading, so concurrent scrapes read once.
    backlog_read: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrape").finish_non_exhaustive()
    }
}

impl Scrape {
    pub fn new(
        metrics: Metrics,
        usage: UsageQueue,
        database: Database,
        jobs: Arc<dyn JobQueue>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { metrics, usage, database, jobs, clock, backlog_read: Mutex::new(None) }
    }

    /// The text exposition format, with the scrape-time values read now.
    pub async fn render(&self) -> String {
        let m = &self.metrics;
        m.usage_queue_depth.set(i64::try_from(self.usage.depth()).unwrap_or(i64::MAX));
        m.usage_queue_capacity.set(i64::try_from(self.usage.capacity()).unwrap_or(i64::MAX));
        let pool = self.database.pool_status();
        m.db_pool_connections.with_label_values(&["idle"]).set(i64::from(pool.idle));
        m.db_pool_connections.with_label_values(&["in_use"]).set(i64::from(pool.in_use()));
        m.db_pool_max.set(i64::from(pool.max));
        self.refresh_backlog().await;
        m.render()
    }

    async fn refresh_backlog(&self) {
        let mut last = self.backlog_read.lock().await;
        if last.is_some_and(|at| at.elapsed() < BACKLOG_MAX_AGE) {
            return;
        }
        *last = Some(Instant::now());
        let now = self.clock.now();
        let (queued, age) = (&self.metrics.jobs_queued, &self.metrics.job_oldest_age);
        let backlog = match tokio::time::timeout(BACKLOG_TIMEOUT, self.jobs.backlog(now)).await {
            Ok(Ok(backlog)) => backlog,
            failed => {
                let error = match failed {
                    Ok(Err(err)) => err.to_string(),
                    _ => format!("no answer within {BACKLOG_TIMEOUT:?}"),
                };
                tracing::warn!(%error, "metrics: could not read the job backlog; its series are left out");
                queued.reset();
                age.reset();
                return;
            }
        };
        for kind in JobKind::ALL {
            let found = backlog.iter().find(|b| b.kind == kind);
            let waited = found
                .and_then(|b| b.oldest_due)
                .map_or(0.0, |due| (now - due).to_std().map_or(0.0, |waited| waited.as_secs_f64()));
            queued
                .with_label_values(&[kind.as_str()])
                .set(found.map_or(0, |b| i64::try_from(b.queued).unwrap_or(i64::MAX)));
            age.with_label_values(&[kind.as_str()]).set(waited);
        }
    }
}
