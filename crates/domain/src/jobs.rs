//! Durable background jobs (O5): what a job is, the [`JobQueue`] port, and the retry rule.
//!
//! A job is a row: claimed by one worker at a time with a lease (on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, so two processes never take the same job), retried with
//! exponential backoff when it fails, and given up after `max_attempts`. A worker that dies
//! holding a job loses it when the lease ends, and another worker takes it again.
//!
//! Recurring work (expiry warnings, health checks, usage retention) is enqueued with a
//! `dedupe_key` naming its period (`expiry_warnings:2026-11-24T13`): however many processes
//! schedule it, the unique key lets exactly one row in, so it runs once per period.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::StorageError;
use crate::page::{Page, PageRequest};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// K13: warn about keys nearing expiry.
    ExpiryWarnings,
    /// Check every connection's health.
    HealthChecks,
    /// Delete usage-log rows past the retention period.
    UsageRetention,
    /// Delete idempotency records and finished jobs past their keep time.
    Pruning,
}

impl JobKind {
    pub const ALL: [JobKind; 4] =
        [JobKind::ExpiryWarnings, JobKind::HealthChecks, JobKind::UsageRetention, JobKind::Pruning];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::ExpiryWarnings => "expiry_warnings",
            JobKind::HealthChecks => "health_checks",
            JobKind::UsageRetention => "usage_retention",
            JobKind::Pruning => "pruning",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    /// Gave up after its last attempt.
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 4] = [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub id: Uuid,
    pub kind: JobKind,
    /// JSON text the job's handler understands (`{}` when it needs nothing).
    pub payload: String,
    pub run_at: DateTime<Utc>,
    pub max_attempts: u32,
    /// At most one job per key, ever (until finished jobs are pruned).
    pub dedupe_key: Option<String>,
}

impl NewJob {
    pub fn new(kind: JobKind, run_at: DateTime<Utc>) -> Self {
        Self { id: Uuid::now_v7(), kind, payload: "{}".into(), run_at, max_attempts: 5, dedupe_key: None }
    }

    pub fn deduplicated(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: Uuid,
    pub kind: JobKind,
    pub payload: String,
    pub state: JobState,
    /// Attempts started so far (a claim starts one).
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub dedupe_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How long to wait before attempt `attempts + 1` after `attempts` failed ones: 30 s doubling,
/// capped at an hour, plus `jitter` (0.0 to 1.0) of up to a quarter more, so that retries of
/// jobs that failed together do not fire together.
pub fn backoff(attempts: u32, jitter: f64) -> Duration {
    let base = 30i64.saturating_mul(1i64 << attempts.saturating_sub(1).min(20)).min(3600);
    let extra = (base as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as i64;
    Duration::seconds(base + extra)
}

/// Error messages kept with a job are cut to this many characters.
pub const MAX_ERROR_CHARS: usize = 1000;

#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Stores the job; `false` (and nothing stored) when its dedupe key is taken.
    async fn enqueue(&self, job: &NewJob, now: DateTime<Utc>) -> Result<bool, StorageError>;

    /// Takes the oldest due job for `worker` until `now + lease`: a queued one whose `run_at`
    /// has come, or a running one whose lease ended (its worker died). Starts an attempt.
    /// Never hands one job to two workers at once.
    async fn claim(&self, worker: &str, now: DateTime<Utc>, lease: Duration) -> Result<Option<Job>, StorageError>;

    /// The attempt succeeded.
    async fn succeed(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StorageError>;

    /// The attempt failed: queued again for `retry_at`, or failed for good when `retry_at` is
    /// `None`. The error is kept (cut to [`MAX_ERROR_CHARS`]).
    async fn fail(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Jobs newest first, optionally in one state.
    async fn list(&self, state: Option<JobState>, page: &PageRequest<Uuid>) -> Result<Page<Job, Uuid>, StorageError>;

    /// Deletes succeeded and failed jobs last updated before `before`; how many.
    async fn prune_finished(&self, before: DateTime<Utc>) -> Result<u64, StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_up_to_an_hour() {
        let waits: Vec<_> = (1..=9).map(|n| backoff(n, 0.0).num_seconds()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(1, 1.0).num_seconds(), 37, "jitter adds up to a quarter");
        assert_eq!(backoff(u32::MAX, 0.5).num_seconds(), 4050);
    }

    #[test]
    fn kinds_and_states_round_trip() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
    }
}
