//! The usage pipeline (K14, F1, F2): the hot path puts rows on a bounded queue without waiting;
//! one background task writes them in batches, one transaction per batch, lingering up to
//! `usage.linger_ms` to fill a batch. Rows that do not fit
//! the queue are dropped and counted (`otesse_usage_rows_dropped_total`). On shutdown the
//! queue is drained before the process exits.

use std::sync::Arc;
use std::time::Duration;

use otesse_domain::ports::{UsageLog, UsageSink};
use otesse_domain::usage::UsageRecord;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Requests to the writer, on their own channel so that rows never wake it.
enum Control {
    /// Answered once every row queued before it is written.
    Flush(oneshot::Sender<()>),
    /// Like `Flush`, then the writer stops.
    Stop(oneshot::Sender<()>),
}

/// Rows waiting to be written, in a few mutex-guarded shards. Each worker thread pushes to
/// its own shard, so a push is an uncontended lock: no channel semaphore, no waker, no
/// cache line shared between workers on the hot path.
struct Shards {
    shards: Box<[Mutex<Vec<UsageRecord>>]>,
    per_shard: usize,
}

impl Shards {
    fn new(capacity: usize) -> Self {
        let count = std::thread::available_parallelism().map_or(4, |n| n.get()).clamp(1, 16) * 2;
        let per_shard = capacity.div_ceil(count).max(1);
        Self { shards: (0..count).map(|_| Mutex::new(Vec::new())).collect(), per_shard }
    }

    fn mine(&self) -> &Mutex<Vec<UsageRecord>> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        let index = SHARD.with(|shard| *shard) % self.shards.len();
        &self.shards[index]
    }

    /// Queues the row, or gives it back when the shard is full.
    fn push(&self, row: UsageRecord) -> Result<(), UsageRecord> {
        let mut shard = self.mine().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if shard.len() >= self.per_shard {
            return Err(row);
        }
        shard.push(row);
        Ok(())
    }

    /// Moves everything queued so far into `out`.
    fn drain_into(&self, out: &mut Vec<UsageRecord>) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            out.append(&mut shard);
        }
    }
}

/// The sending side, shared by every worker.
#[derive(Clone)]
pub struct UsageQueue {
    rows: Arc<Shards>,
    control: mpsc::Sender<Control>,
    metrics: Metrics,
}

impl std::fmt::Debug for UsageQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageQueue").field("shards", &self.rows.shards.len()).finish()
    }
}

impl UsageSink for UsageQueue {
    fn record(&self, record: UsageRecord) {
        self.metrics.key_requests.inc();
        if self.rows.push(record).is_err() {
            self.metrics.usage_dropped.inc();
        }
    }
}

impl UsageQueue {
    /// Starts the writer task and returns the queue feeding it. The writer wakes every
    /// `interval` (and on flush or stop), takes everything queued, and writes it in
    /// transactions of at most `batch_size` rows. At most about `capacity` rows wait.
    pub fn start(
        log: Arc<dyn UsageLog>,
        capacity: usize,
        batch_size: usize,
        interval: Duration,
        metrics: Metrics,
    ) -> Self {
        let rows = Arc::new(Shards::new(capacity));
        let (control, control_receiver) = mpsc::channel(16);
        let writer =
            Writer { rows: rows.clone(), control: control_receiver, log, batch_size, metrics: metrics.clone() };
        tokio::spawn(writer.run(interval));
        Self { rows, control, metrics }
    }

    /// Waits until every row queued so far is written.
    pub async fn flush(&self) {
        self.request(Control::Flush).await;
    }

    /// Writes what is queued and stops the writer.
    pub async fn stop(&self) {
        self.request(Control::Stop).await;
    }

    async fn request(&self, make: fn(oneshot::Sender<()>) -> Control) {
        let (done, wait) = oneshot::channel();
        if self.control.send(make(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

struct Writer {
    rows: Arc<Shards>,
    control: mpsc::Receiver<Control>,
    log: Arc<dyn UsageLog>,
    batch_size: usize,
    metrics: Metrics,
}

impl Writer {
    /// Waking on a timer rather than on each row keeps the hot path free of cross-thread
    /// wake-ups, and makes every transaction carry everything that arrived in the interval.
    async fn run(mut self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending = Vec::new();
        loop {
            let control = tokio::select! {
                _ = ticker.tick() => None,
                control = self.control.recv() => control,
            };
            // Every row queued before the control request is in a shard now: take them all.
            self.rows.drain_into(&mut pending);
            for batch in pending.chunks(self.batch_size) {
                write_batch(self.log.as_ref(), batch, &self.metrics).await;
            }
            pending.clear();
            match control {
                Some(Control::Flush(ack)) => {
                    let _ = ack.send(());
                }
                Some(Control::Stop(ack)) => {
                    let _ = ack.send(());
                    return;
                }
                None => {}
            }
        }
    }
}

/// Writes one batch, retrying a few times; a batch that still fails is counted as dropped.
async fn write_batch(log: &dyn UsageLog, batch: &[UsageRecord], metrics: &Metrics) {
    const ATTEMPTS: u32 = 4;
    for attempt in 1..=ATTEMPTS {
        match log.append(batch).await {
            Ok(()) => {
                metrics.usage_written.inc_by(batch.len() as u64);
                return;
            }
            Err(err) if attempt < ATTEMPTS => {
                tracing::warn!(error = %err, rows = batch.len(), attempt, "usage batch failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            Err(err) => {
                tracing::error!(error = %err, rows = batch.len(), "usage batch dropped");
                metrics.usage_dropped.inc_by(batch.len() as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::Utc;
    use otesse_domain::StorageError;
    use otesse_domain::api_key::ApiKeyId;
    use otesse_domain::organization::OrganizationId;
    use otesse_domain::ports::MockUsageLog;
    use uuid::Uuid;

    use super::*;

    fn row(n: u16) -> UsageRecord {
        UsageRecord {
            api_key_id: ApiKeyId(Uuid::nil()),
            organization_id: OrganizationId(Uuid::nil()),
            occurred_at: Utc::now(),
            method: "GET".into(),
            path: "/v1/whoami".into(),
            status: n,
            response_time_ms: 1,
            client_ip: None,
        }
    }

    #[tokio::test]
    async fn rows_are_written_in_batches_and_stop_drains_the_queue() {
        let written = Arc::new(Mutex::new(Vec::<usize>::new()));
        let sink = written.clone();
        let mut log = MockUsageLog::new();
        log.expect_append().returning(move |batch| {
            sink.lock().unwrap().push(batch.len());
            Ok(())
        });
        let metrics = Metrics::new();
        let queue = UsageQueue::start(Arc::new(log), 1_000, 10, Duration::from_secs(3600), metrics.clone());
        for n in 0..25 {
            queue.record(row(n));
        }
        queue.stop().await;
        let batches = written.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), 25, "every row written");
        assert!(batches.iter().all(|&len| len <= 10), "batches respect the size: {batches:?}");
        assert_eq!(metrics.usage_written.get(), 25);
        assert_eq!(metrics.usage_dropped.get(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let written = Arc::new(Mutex::new(0usize));
        let sink = written.clone();
        let mut log = MockUsageLog::new();
        log.expect_append().returning(move |batch| {
            *sink.lock().unwrap() += batch.len();
            Ok(())
        });
        let metrics = Metrics::new();
        // The writer only wakes on stop here, so nothing drains the queue meanwhile.
        let queue = UsageQueue::start(Arc::new(log), 8, 100, Duration::from_secs(3600), metrics.clone());
        for n in 0..500 {
            queue.record(row(n)); // never awaits: this loop finishing proves it does not block
        }
        let dropped = metrics.usage_dropped.get();
        assert!((490..500).contains(&dropped), "the queue holds about its capacity; dropped {dropped}");
        queue.stop().await;
        assert_eq!(metrics.key_requests.get(), 500);
        assert_eq!(*written.lock().unwrap() as u64, 500 - dropped, "what was kept is written");
        assert_eq!(metrics.usage_written.get() + metrics.usage_dropped.get(), 500, "every row accounted for");
    }

    #[tokio::test]
    async fn rows_from_many_threads_are_all_written() {
        let written = Arc::new(Mutex::new(0usize));
        let sink = written.clone();
        let mut log = MockUsageLog::new();
        log.expect_append().returning(move |batch| {
            *sink.lock().unwrap() += batch.len();
            Ok(())
        });
        let metrics = Metrics::new();
        let queue = UsageQueue::start(Arc::new(log), 100_000, 64, Duration::from_secs(3600), metrics.clone());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let queue = queue.clone();
                std::thread::spawn(move || (0..1_000).for_each(|n| queue.record(row(n))))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        queue.flush().await;
        assert_eq!(*written.lock().unwrap(), 4_000);
        queue.stop().await;
    }

    #[tokio::test]
    async fn a_failing_database_is_retried_then_counted() {
        let mut log = MockUsageLog::new();
        let mut seq = mockall::Sequence::new();
        log.expect_append().times(1).in_sequence(&mut seq).returning(|_| Err(StorageError::new("busy")));
        log.expect_append().times(1).in_sequence(&mut seq).returning(|_| Ok(()));
        let metrics = Metrics::new();
        let queue = UsageQueue::start(Arc::new(log), 10, 10, Duration::from_secs(3600), metrics.clone());
        queue.record(row(200));
        queue.flush().await;
        assert_eq!(metrics.usage_written.get(), 1);
        assert_eq!(metrics.usage_dropped.get(), 0);
        queue.stop().await;
    }
}
