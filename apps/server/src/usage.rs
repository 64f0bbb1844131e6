//! The usage pipeline (K14, F1, F2): the hot path appends each row to a bounded in-memory
//! queue, never waiting; one background task wakes every `usage.flush_interval_ms`, takes
//! everything queued at once and writes it in batches, one transaction per batch. Rows that do
//! not fit the queue are dropped and counted (`otesse_usage_rows_dropped_total`). On shutdown
//! the queue is written before the process exits.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use otesse_domain::ports::{UsageLog, UsageSink};
use otesse_domain::usage::UsageRecord;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Requests to the writer, on their own channel so that rows never wake it.
enum Control {
    /// Answered once every row queued before it is written.
    Flush(oneshot::Sender<()>),
    /// Like `Flush`, then the writer stops.
    Stop(oneshot::Sender<()>),
}

/// The rows waiting for the writer: a vector behind a mutex, which the writer swaps for an
/// empty one. A row costs the hot path one uncontended lock and a push (no per-row atomics on a
/// shared channel, no block allocations, no waker), and the writer takes thousands at once.
struct Pending {
    rows: Mutex<Vec<UsageRecord>>,
    capacity: usize,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, Vec<UsageRecord>> {
        // A panic while holding the lock leaves a valid vector: keep using it.
        self.rows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `record` unless `capacity` rows already wait.
    fn push(&self, record: UsageRecord) -> bool {
        let mut rows = self.lock();
        if rows.len() >= self.capacity {
            return false;
        }
        rows.push(record);
        true
    }

    /// Moves everything queued into `into` (which must be empty), leaving `into`'s allocation
    /// for the next rows.
    fn take_all(&self, into: &mut Vec<UsageRecord>) {
        std::mem::swap(&mut *self.lock(), into);
    }
}

/// The sending side, shared by every worker.
#[derive(Clone)]
pub struct UsageQueue {
    pending: Arc<Pending>,
    control: mpsc::Sender<Control>,
    metrics: Metrics,
}

impl std::fmt::Debug for UsageQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageQueue").field("capacity", &self.pending.capacity).finish()
    }
}

impl UsageSink for UsageQueue {
    fn record(&self, record: UsageRecord) {
        self.metrics.key_requests.inc();
        if !self.pending.push(record) {
            self.metrics.usage_dropped.inc();
        }
    }
}

impl UsageQueue {
    /// Starts the writer task and returns the queue feeding it. The writer wakes every
    /// `interval` (and on flush or stop), takes everything queued, and writes it in
    /// transactions of at most `batch_size` rows. At most `capacity` rows wait.
    pub fn start(
        log: Arc<dyn UsageLog>,
        capacity: usize,
        batch_size: usize,
        interval: Duration,
        metrics: Metrics,
    ) -> Self {
        // Room for a typical interval's rows up front; the vectors keep their size afterwards.
        let pending = Arc::new(Pending { rows: Mutex::new(Vec::with_capacity(capacity.min(4096))), capacity });
        let (control, control_receiver) = mpsc::channel(16);
        let writer = Writer {
            pending: pending.clone(),
            control: control_receiver,
            log,
            batch_size: batch_size.max(1),
            metrics: metrics.clone(),
        };
        tokio::spawn(writer.run(interval));
        Self { pending, control, metrics }
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
    pending: Arc<Pending>,
    control: mpsc::Receiver<Control>,
    log: Arc<dyn UsageLog>,
    batch_size: usize,
    metrics: Metrics,
}

impl Writer {
    /// The writer is never woken by a row: it takes the queue when the timer (or a flush)
    /// wakes it, so queuing a row wakes nobody. While it is behind, it keeps writing without
    /// waiting (missed ticks fire at once).
    async fn run(mut self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut taken = Vec::new();
        loop {
            let control = tokio::select! {
                _ = ticker.tick() => None,
                control = self.control.recv() => control,
            };
            // Everything queued before the control request is visible now: take it all, once.
            // Rows that arrive while it is written wait for the next tick (which comes at once
            // if the writing took longer than the interval): taking them right away would cut
            // the stream into ever smaller transactions, each rewriting the same pages.
            self.pending.take_all(&mut taken);
            for batch in taken.chunks(self.batch_size) {
                write_batch(self.log.as_ref(), batch, &self.metrics).await;
            }
            taken.clear();
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
        // The writer only wakes on stop here (after its first, immediate tick), so nothing
        // drains the queue meanwhile.
        let queue = UsageQueue::start(Arc::new(log), 8, 100, Duration::from_secs(3600), metrics.clone());
        for n in 0..500 {
            queue.record(row(n)); // never awaits: this loop finishing proves it does not block
        }
        let dropped = metrics.usage_dropped.get();
        assert_eq!(dropped, 492, "the queue holds exactly its capacity");
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
