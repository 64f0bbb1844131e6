//! The background worker (O5): schedules the recurring jobs and runs what is due.
//!
//! Every process runs one worker. Scheduling is idempotent across processes: each recurring job
//! is enqueued with a dedupe key naming its period (`expiry_warnings:<hour>`), so however many
//! processes schedule it, one row exists and one worker claims it (see `otesse_domain::jobs`).
//! A failed attempt is retried with exponential backoff and jitter; after `max_attempts` the job
//! stays `failed` with its last error, visible in the table.
//!
//! The worker runs up to `jobs.concurrency` jobs at once (a webhook delivery mostly waits on its
//! receiver), claiming another as soon as one finishes. It looks for due jobs when woken (the
//! outbox queued a delivery, in this process or, on PostgreSQL, in any process: see
//! [`JobWakeup`]), when a job finishes, and every `jobs.poll_interval_ms` otherwise (retries
//! coming due, recurring jobs, a lost wake).
//!
//! A claim holds a job for `jobs.lease_secs`; while the job runs, the worker extends the lease
//! every third of it, so a long job (the usage retention over tens of millions of rows) is not
//! taken by a second worker. Only a worker that stops (crash, kill) lets the lease end, and then
//! another takes the job again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use otesse_domain::integration::IntegrationService;
use otesse_domain::jobs::{Job, JobKind, JobQueue, NewJob};
use otesse_domain::notification::ExpiryWarnings;
use otesse_domain::ports::{Clock, UsageLog};
use otesse_storage::JobWakeup;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::JobSettings;

/// What the jobs work with.
#[derive(Clone)]
pub struct JobContext {
    pub queue: Arc<dyn JobQueue>,
    pub expiry: ExpiryWarnings,
    pub integrations: IntegrationService,
    pub webhooks: otesse_domain::webhook::WebhookService,
    pub usage: Arc<dyn UsageLog>,
    pub idempotency: Arc<dyn otesse_domain::idempotency::IdempotencyStore>,
    pub clock: Arc<dyn Clock>,
    pub metrics: crate::metrics::Metrics,
}

/// Rows deleted per statement by the usage retention.
const RETENTION_BATCH: u32 = 10_000;
/// Finished jobs are kept this long, for inspection.
const KEEP_FINISHED_DAYS: i64 = 7;

/// One worker: schedules, claims and runs jobs until the task is dropped.
pub struct Worker {
    runner: std::sync::Arc<Runner>,
    name: String,
    /// The last period each recurring kind was scheduled for, so that a tick does not insert
    /// (and have refused) the same row again.
    scheduled: HashMap<JobKind, i64>,
}

/// What runs one claimed job; shared by the jobs running at once.
struct Runner {
    context: JobContext,
    settings: JobSettings,
}

impl Worker {
    pub fn new(context: JobContext, settings: JobSettings) -> Self {
        let name = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Self { runner: std::sync::Arc::new(Runner { context, settings }), name, scheduled: HashMap::new() }
    }

    /// Runs forever on the current runtime (the server drops it on shutdown, and with it the
    /// jobs running; a job cut short is taken again when its lease ends). It wakes on `wakeup`;
    /// `listener` is the task that wakes it for jobs queued by other processes on PostgreSQL
    /// ([`JobWakeup::listen`]), stopped with the worker.
    pub fn start(mut self, wakeup: JobWakeup, listener: Option<JoinHandle<()>>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let _listener = listener.map(AbortOnDrop);
            let settings = &self.runner.settings;
            let poll = StdDuration::from_millis(settings.poll_interval_ms.max(10));
            let concurrency = settings.concurrency.max(1) as usize;
            let mut running = JoinSet::new();
            loop {
                if let Err(err) = self.fill(&mut running, concurrency).await {
                    tracing::warn!(error = %err, "background jobs: storage failure; trying again later");
                }
                tokio::select! {
                    () = wakeup.woken() => {}
                    Some(_) = running.join_next(), if !running.is_empty() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
        })
    }

    /// Schedules what is due, then claims due jobs until `concurrency` run at once or none is
    /// left, each running in `running`.
    async fn fill(&mut self, running: &mut JoinSet<()>, concurrency: usize) -> Result<(), otesse_domain::StorageError> {
        let runner = self.runner.clone();
        let context = &runner.context;
        self.schedule(context.clock.now()).await?;
        let lease = Duration::seconds(i64::try_from(runner.settings.lease_secs).unwrap_or(300));
        // Results of finished jobs are only their storage errors, already logged.
        while running.try_join_next().is_some() {}
        let free = u32::try_from(concurrency.saturating_sub(running.len())).unwrap_or(u32::MAX);
        if free == 0 {
            return Ok(());
        }
        // One claim for every free slot: one write, not one per job.
        for job in context.queue.claim_up_to(&self.name, context.clock.now(), lease, free).await? {
            let runner = runner.clone();
            running.spawn(async move {
                if let Err(err) = runner.run(job).await {
                    tracing::warn!(error = %err, "background jobs: could not record a job's outcome");
                }
            });
        }
        Ok(())
    }

    /// The recurring jobs, each once per period.
    async fn schedule(&mut self, now: DateTime<Utc>) -> Result<(), otesse_domain::StorageError> {
        let s = &self.runner.settings;
        let every = [
            (JobKind::ExpiryWarnings, s.expiry_warning_interval_secs),
            (JobKind::HealthChecks, s.health_check_interval_secs),
            (JobKind::UsageRetention, 24 * 3600),
            (JobKind::Pruning, 3600),
            (JobKind::TokenRefresh, s.token_refresh_interval_secs),
        ];
        for (kind, interval) in every {
            let interval = i64::try_from(interval.max(1)).unwrap_or(i64::MAX);
            let period = now.timestamp().div_euclid(interval);
            if self.scheduled.get(&kind) == Some(&period) {
                continue;
            }
            let job = NewJob::new(kind, now).deduplicated(format!("{}:{period}", kind.as_str()));
            self.runner.context.queue.enqueue(&job, now).await?;
            self.scheduled.insert(kind, period);
        }
        Ok(())
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Runner {
    async fn run(&self, job: Job) -> Result<(), otesse_domain::StorageError> {
        // Decided before the attempt, so a delivery can record when it will be tried again.
        let retry_at = job.retry_at(self.context.clock.now(), jitter());
        let outcome = self.perform_holding_the_lease(&job, retry_at).await;
        let now = self.context.clock.now();
        match outcome {
            Ok(summary) => {
                tracing::info!(job = %job.id, kind = job.kind.as_str(), attempt = job.attempts, %summary, "job done");
                self.context.metrics.jobs_succeeded.inc();
                self.context.queue.succeed(&job, now).await
            }
            Err(error) => {
                match retry_at {
                    Some(_) => self.context.metrics.jobs_retried.inc(),
                    None => self.context.metrics.jobs_failed.inc(),
                }
                tracing::warn!(job = %job.id, kind = job.kind.as_str(), attempt = job.attempts, %error,
                    retry_at = ?retry_at, "job failed");
                self.context.queue.fail(&job, &error, retry_at, now).await
            }
        }
    }

    /// Performs the job, extending its lease every third of its length while it runs: a job
    /// that takes longer than its lease (the usage retention at tens of millions of rows) is
    /// still this worker's, and no other takes it meanwhile. A lease that cannot be extended
    /// (lost, or the database unreachable) is logged; the job goes on, and its outcome is
    /// recorded only if its claim still holds it.
    async fn perform_holding_the_lease(&self, job: &Job, retry_at: Option<DateTime<Utc>>) -> Result<String, String> {
        let lease_secs = self.settings.lease_secs.max(1);
        let every = StdDuration::from_millis(lease_secs.saturating_mul(1000) / 3);
        let lease = Duration::seconds(i64::try_from(lease_secs).unwrap_or(300));
        let perform = self.perform(job, retry_at);
        tokio::pin!(perform);
        loop {
            tokio::select! {
                outcome = &mut perform => return outcome,
                () = tokio::time::sleep(every) => {
                    match self.context.queue.extend(job, self.context.clock.now() + lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(job = %job.id, kind = job.kind.as_str(),
                            "a running job's lease was lost: another worker may run it too"),
                        Err(err) => tracing::warn!(job = %job.id, error = %err, "could not extend a running job's lease"),
                    }
                }
            }
        }
    }

    async fn perform(&self, job: &Job, retry_at: Option<DateTime<Utc>>) -> Result<String, String> {
        let now = self.context.clock.now();
        match job.kind {
            JobKind::ExpiryWarnings => {
                // Each warning's webhook event is recorded with its notice (see ExpiryWarnings).
                let (run, _) = self.context.expiry.run().await.map_err(|e| e.to_string())?;
                Ok(format!(
                    "{} notifications, {} emails sent, {} undeliverable",
                    run.notifications, run.emails_sent, run.emails_undeliverable
                ))
            }
            JobKind::HealthChecks => {
                // A change of health is recorded with its check, as its event (see check_all).
                let changes = self.context.integrations.check_all().await.map_err(|e| e.to_string())?;
                for change in &changes {
                    let connection = &change.view.connection;
                    tracing::info!(connection = %connection.id, provider = %connection.provider,
                        outcome = change.check.outcome.as_str(), recovered = change.recovered, "connection health changed");
                }
                Ok(format!("{} health changes", changes.len()))
            }
            JobKind::TokenRefresh => {
                // Under the same lease as a call's refresh; invalid_grant is recorded with its
                // notification and event (see refresh_expiring).
                let run = self
                    .context
                    .integrations
                    .refresh_expiring(self.settings.token_refresh_window_secs)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "{} OAuth tokens refreshed, {} need re-authorization, {} to try again",
                    run.refreshed, run.needs_reauthorization, run.failed
                ))
            }
            JobKind::UsageRetention => {
                let before = now - Duration::days(i64::from(self.settings.usage_retention_days));
                let mut deleted = 0;
                loop {
                    let batch =
                        self.context.usage.delete_before(before, RETENTION_BATCH).await.map_err(|e| e.to_string())?;
                    deleted += batch;
                    if batch < u64::from(RETENTION_BATCH) {
                        return Ok(format!("{deleted} usage rows older than {before} deleted"));
                    }
                }
            }
            JobKind::WebhookDelivery => {
                #[derive(serde::Deserialize)]
                struct Payload {
                    delivery_id: uuid::Uuid,
                }
                let payload: Payload =
                    serde_json::from_str(&job.payload).map_err(|e| format!("unreadable payload: {e}"))?;
                self.context.webhooks.deliver(payload.delivery_id, retry_at).await
            }
            JobKind::Pruning => {
                let pruned = self
                    .context
                    .queue
                    .prune_finished(now - Duration::days(KEEP_FINISHED_DAYS))
                    .await
                    .map_err(|e| e.to_string())?;
                let keep = Duration::hours(otesse_domain::idempotency::KEEP_FOR_HOURS);
                let records = self.context.idempotency.prune(now - keep).await.map_err(|e| e.to_string())?;
                let deliveries = self.context.webhooks.prune().await.map_err(|e| e.to_string())?;
                Ok(format!(
                    "{pruned} finished jobs, {records} idempotency records and {deliveries} webhook deliveries pruned"
                ))
            }
        }
    }
}

/// 0.0 to 1.0, from the OS's randomness.
fn jitter() -> f64 {
    uuid::Uuid::new_v4().as_u128() as f64 / u128::MAX as f64
}
