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

/// A job's id: a UUID v7, so ids sort by creation time (the list's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub Uuid);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a job does; stored as [`JobKind::as_str`]. A worker claims only the kinds it knows, so
/// during a rolling upgrade older processes leave a newer kind to the processes that handle it.
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
    /// One attempt of one outbound webhook delivery (payload `{"delivery_id": ...}`).
    WebhookDelivery,
    /// Refresh the OAuth access tokens that expire soon (I12).
    TokenRefresh,
}

impl JobKind {
    /// Every kind, in declaration order.
    pub const ALL: [JobKind; 6] = [
        JobKind::ExpiryWarnings,
        JobKind::HealthChecks,
        JobKind::UsageRetention,
        JobKind::Pruning,
        JobKind::WebhookDelivery,
        JobKind::TokenRefresh,
    ];

    /// The stored name, which is also the prefix of recurring jobs' dedupe keys.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::ExpiryWarnings => "expiry_warnings",
            JobKind::HealthChecks => "health_checks",
            JobKind::UsageRetention => "usage_retention",
            JobKind::Pruning => "pruning",
            JobKind::WebhookDelivery => "webhook_delivery",
            JobKind::TokenRefresh => "token_refresh",
        }
    }

    /// The kind stored as `raw`, if this build knows it.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// Where a job is in its life; stored as [`JobState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for its `run_at`.
    Queued,
    /// Claimed by a worker until its lease ends.
    Running,
    /// Its handler finished without error.
    Succeeded,
    /// Gave up after its last attempt.
    Failed,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 4] = [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Failed];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    /// The state stored as `raw`.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Succeeded or failed: nothing more will happen to the job, and pruning may delete it.
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The id to store it under (fresh from [`NewJob::new`]).
    pub id: JobId,
    /// What it does, which picks the handler.
    pub kind: JobKind,
    /// JSON text the job's handler understands (`{}` when it needs nothing).
    pub payload: String,
    /// Not claimed before this.
    pub run_at: DateTime<Utc>,
    /// Attempts before it is given up (a claim starts one, a lost lease counts as one).
    pub max_attempts: u32,
    /// At most one job per key, ever (until finished jobs are pruned).
    pub dedupe_key: Option<String>,
}

impl NewJob {
    /// Default attempts before a job is given up.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

    /// A job of `kind` due at `run_at`, with an empty payload and no dedupe key.
    pub fn new(kind: JobKind, run_at: DateTime<Utc>) -> Self {
        Self {
            id: JobId(Uuid::now_v7()),
            kind,
            payload: "{}".into(),
            run_at,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            dedupe_key: None,
        }
    }

    /// The same job, refused by [`JobQueue::enqueue`] if a job with `key` exists.
    pub fn deduplicated(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The job's id.
    pub id: JobId,
    /// What it does, which picks the handler.
    pub kind: JobKind,
    /// JSON text for the handler, as enqueued.
    pub payload: String,
    /// Where it is in its life.
    pub state: JobState,
    /// Attempts started so far (a claim starts one).
    pub attempts: u32,
    /// Attempts allowed before it is given up.
    pub max_attempts: u32,
    /// When it is (or was) due; a retry moves it.
    pub run_at: DateTime<Utc>,
    /// The worker that claimed it last.
    pub locked_by: Option<String>,
    /// The end of the current lease, while running.
    pub locked_until: Option<DateTime<Utc>>,
    /// The last failure, cut to [`MAX_ERROR_CHARS`].
    pub last_error: Option<String>,
    /// The key that keeps a recurring job to one row per period, if it has one.
    pub dedupe_key: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When its state, attempts or lease last changed.
    pub updated_at: DateTime<Utc>,
}

impl Job {
    /// When to try again after the current attempt failed at `now`: after [`backoff`], or
    /// `None` when that was the last attempt and the job should be given up.
    pub fn retry_at(&self, now: DateTime<Utc>, jitter: f64) -> Option<DateTime<Utc>> {
        (self.attempts < self.max_attempts).then(|| now + backoff(self.attempts, jitter))
    }
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

/// The part of `error` a job keeps: its first [`MAX_ERROR_CHARS`] characters (never a split
/// character).
pub fn kept_error(error: &str) -> &str {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => &error[..end],
        None => error,
    }
}

/// Which jobs to list; every field narrows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this kind.
    pub kind: Option<JobKind>,
}

/// How many jobs of one kind wait, for the operator's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobBacklog {
    /// The kind these jobs are.
    pub kind: JobKind,
    /// Queued jobs: due ones and those waiting for a later `run_at` (a retry's backoff).
    pub queued: u64,
    /// The `run_at` of the oldest queued job that is due, if any: how long it has waited for a
    /// worker is the queue's lag.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// The durable job queue. Every method fails only with [`StorageError`] (the store is
/// unreachable or holds a row this build cannot read).
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Stores the job, queued; its id, or `None` (and nothing stored) when a job with its
    /// dedupe key exists. Jobs without a dedupe key are always stored.
    async fn enqueue(&self, job: &NewJob, now: DateTime<Utc>) -> Result<Option<JobId>, StorageError>;

    /// Takes the oldest due job of a [known kind](JobKind::ALL) for `worker` until `now + lease`:
    /// a queued one whose `run_at` has come, or a running one whose lease ended (its worker
    /// died). Starts an attempt. Never hands one job to two workers at once.
    ///
    /// A running job whose lease ended on its last attempt is given up (`failed`) instead, so
    /// a job that kills its worker is not retried forever.
    async fn claim(&self, worker: &str, now: DateTime<Utc>, lease: Duration) -> Result<Option<Job>, StorageError> {
        Ok(self.claim_up_to(worker, now, lease, 1).await?.into_iter().next())
    }

    /// Like [`claim`](JobQueue::claim), up to `limit` jobs at once (fewer when fewer are due),
    /// oldest first: one write for a worker that has several free slots.
    async fn claim_up_to(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Job>, StorageError>;

    /// Moves the end of `job`'s lease (as `claim` handed it out) to `until`: the worker's
    /// heartbeat while a job runs longer than its lease, so that no other worker takes it
    /// meanwhile. Only the claim that holds the job may; `false` when it no longer does (its
    /// lease ended and another worker claimed it, or it was given up or finished).
    async fn extend(&self, job: &Job, until: DateTime<Utc>) -> Result<bool, StorageError>;

    /// The attempt of `job` (as `claim` handed it out) succeeded. Only that claim may finish
    /// it: a job that is no longer running (given up, finished), or that another worker has
    /// claimed since this one's lease ended, is left as it is.
    async fn succeed(&self, job: &Job, now: DateTime<Utc>) -> Result<(), StorageError>;

    /// The attempt of `job` (as `claim` handed it out) failed: queued again for `retry_at`, or
    /// failed for good when `retry_at` is `None` or the job has used its `max_attempts` (see
    /// [`Job::retry_at`]). The error is kept (cut by [`kept_error`]). Like `succeed`, only the
    /// claim that holds the job changes it.
    async fn fail(
        &self,
        job: &Job,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Jobs matching `filter`, newest first.
    async fn list(&self, filter: &JobFilter, page: &PageRequest<JobId>) -> Result<Page<Job, JobId>, StorageError>;

    /// Deletes succeeded and failed jobs last updated before `before`; how many.
    async fn prune_finished(&self, before: DateTime<Utc>) -> Result<u64, StorageError>;

    /// The backlog of every [known kind](JobKind::ALL) with a queued job, as of `now` (kinds
    /// with none are left out; rows of kinds this build does not know are not counted). One
    /// aggregate read, cheap enough to run at every metrics scrape.
    async fn backlog(&self, now: DateTime<Utc>) -> Result<Vec<JobBacklog>, StorageError>;
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
    fn a_failed_attempt_is_retried_until_the_last_one() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut job = Job {
            id: JobId(Uuid::now_v7()),
            kind: JobKind::HealthChecks,
            payload: "{}".into(),
            state: JobState::Running,
            attempts: 1,
            max_attempts: 3,
            run_at: now,
            locked_by: Some("w".into()),
            locked_until: Some(now + Duration::seconds(60)),
            last_error: None,
            dedupe_key: None,
            created_at: now,
            updated_at: now,
        };
        assert_eq!(job.retry_at(now, 0.0), Some(now + Duration::seconds(30)));
        job.attempts = 2;
        assert_eq!(job.retry_at(now, 0.0), Some(now + Duration::seconds(60)));
        job.attempts = 3;
        assert_eq!(job.retry_at(now, 0.0), None, "the last attempt failed");
        job.attempts = 4;
        assert_eq!(job.retry_at(now, 0.0), None, "a lost lease may have counted one more");
    }

    #[test]
    fn errors_are_cut_to_whole_characters() {
        assert_eq!(kept_error("boom"), "boom");
        let exact = "x".repeat(MAX_ERROR_CHARS);
        assert_eq!(kept_error(&exact), exact);
        let long = "é".repeat(MAX_ERROR_CHARS + 5);
        let kept = kept_error(&long);
        assert_eq!(kept.chars().count(), MAX_ERROR_CHARS);
        assert_eq!(kept.len(), 2 * MAX_ERROR_CHARS, "two bytes each, none split");
    }

    #[test]
    fn a_new_job_is_due_with_defaults() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let job = NewJob::new(JobKind::Pruning, at).deduplicated("pruning:500000");
        assert_eq!(job.id.0.get_version_num(), 7);
        assert_eq!((job.payload.as_str(), job.max_attempts, job.run_at), ("{}", 5, at));
        assert_eq!(job.dedupe_key.as_deref(), Some("pruning:500000"));
        assert!(NewJob::new(JobKind::Pruning, at).id < NewJob::new(JobKind::Pruning, at).id, "ids sort by creation");
    }

    #[test]
    fn kinds_and_states_round_trip() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        assert_eq!(JobKind::parse("report_export"), None, "a kind this build does not know");
        let finished: Vec<_> = JobState::ALL.into_iter().filter(|s| s.is_finished()).collect();
        assert_eq!(finished, [JobState::Succeeded, JobState::Failed]);
    }
}
