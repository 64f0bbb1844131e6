//! The usage pipeline (K14, F1, F2): the hot path appends each row to a bounded in-memory
//! queue, never blocking; one background task wakes every `usage.flush_interval_ms`, takes
//! everything queued at once and writes it in batches, one transaction per batch. On shutdown
//! the queue is written before the process exits.
//!
//! When the writer falls behind (a load faster than the database can log), the queue grows
//! past its high-water mark (half its capacity) and the requests that find it there wait,
//! before their answer goes out, until the writer takes the queue (at most
//! [`MAX_BACKPRESSURE_WAIT`]): keyed requests slow down to the pace of the log instead of
//! the log losing rows. Only when the queue is full all the same (the database stalled for
//! longer than that) are rows dropped, counted (`otesse_usage_rows_dropped_total`) and
//! reported in a warning at most every [`DROP_WARNING_INTERVAL`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use otesse_domain::ports::{Backlog, UsageLog, UsageSink};
use otesse_domain::usage::UsageRecord;
use tokio::sync::{Notify, mpsc, oneshot};

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
    /// Past this many rows, callers wait for the writer ([`Backlog::Behind`]).
    high_water: usize,
    /// Woken each time the writer takes the queue.
    taken: Notify,
}

/// The longest a request waits for the writer to take a queue past its high-water mark. Longer
/// than the writer's slowest healthy batch; short enough that a stalled database delays
/// answers by this much, not more.
pub const MAX_BACKPRESSURE_WAIT: Duration = Duration::from_secs(1);
/// Dropped rows are reported in a warning at most this often (and always counted).
pub const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(10);

impl Pending {
    fn lock(&self) -> MutexGuard<'_, Vec<UsageRecord>> {
        // A panic while holding the lock leaves a valid vector: keep using it.
        self.rows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `record` unless `capacity` rows already wait; `None` when it was dropped, else
    /// how many rows wait now.
    fn push(&self, record: UsageRecord) -> Option<usize> {
        let mut rows = self.lock();
        if rows.len() >= self.capacity {
            return None;
        }
        rows.push(record);
        Some(rows.len())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Moves everything queued into `into` (which must be empty), leaving `into`'s allocation
    /// for the next rows, and releases the requests waiting for room.
    fn take_all(&self, into: &mut Vec<UsageRecord>) {
        std::mem::swap(&mut *self.lock(), into);
        self.taken.notify_waiters();
    }
}

/// The sending side, shared by every worker.
#[derive(Clone)]
pub struct UsageQueue {
    pending: Arc<Pending>,
    control: mpsc::Sender<Control>,
    metrics: Metrics,
}

/// Logs one keyed request: queues its row and, when the log is behind this load, waits for the
/// writer rather than lose rows. Every keyed request goes through here (Otesse's own, and those
/// the verification API checks for other services).
pub async fn log(sink: &dyn UsageSink, record: UsageRecord) {
    if sink.record(record) == Backlog::Behind {
        sink.caught_up().await;
    }
}

impl std::fmt::Debug for UsageQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageQueue").field("capacity", &self.pending.capacity).finish()
    }
}

#[async_trait]
impl UsageSink for UsageQueue {
    fn record(&self, record: UsageRecord) -> Backlog {
        self.metrics.key_requests.inc();
        match self.pending.push(record) {
            Some(waiting) if waiting < self.pending.high_water => Backlog::Normal,
            Some(_) => Backlog::Behind,
            None => {
                self.metrics.usage_dropped.inc();
                Backlog::Behind
            }
        }
    }

    async fn caught_up(&self) {
        let taken = self.pending.taken.notified();
        tokio::pin!(taken);
        // Registered before looking, so a take between the look and the wait still wakes it.
        taken.as_mut().enable();
        if self.pending.len() < self.pending.high_water {
            return;
        }
        let _ = tokio::time::timeout(MAX_BACKPRESSURE_WAIT, taken).await;
    }
}

impl UsageQueue {
    /// Starts the writer task and returns the queue feeding it. The writer wakes every
    /// `interval` (and on flush or stop), takes everything queued, and writes it in
    /// transactions of at most `batch_size` rows. At most `capacity` rows wait; past half of
    /// that, callers are told to wait for the writer.
    pub fn start(
        log: Arc<dyn UsageLog>,
        capacity: usize,
        batch_size: usize,
        interval: Duration,
        metrics: Metrics,
    ) -> Self {
        // Room for a typical interval's rows up front; the vectors keep their size afterwards.
        let pending = Arc::new(Pending {
            rows: Mutex::new(Vec::with_capacity(capacity.min(4096))),
            capacity,
            high_water: (capacity / 2).max(1),
            taken: Notify::new(),
        });
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

    /// Rows waiting for the writer now.
    pub fn depth(&self) -> usize {
        self.pending.len()
    }

    /// The most rows that may wait; past it rows are dropped.
    pub fn capacity(&self) -> usize {
        self.pending.capacity
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
        let mut drops = DropReport::new(self.metrics.usage_dropped.get());
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
            let _ = drops.warn_if_new(self.metrics.usage_dropped.get(), self.pending.capacity);
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

/// Turns the drop counter into a warning in the log, at most every [`DROP_WARNING_INTERVAL`].
struct DropReport {
    reported: u64,
    last_warning: Option<std::time::Instant>,
}

impl DropReport {
    fn new(dropped: u64) -> Self {
        Self { reported: dropped, last_warning: None }
    }

    /// Whether it warned.
    fn warn_if_new(&mut self, dropped: u64, capacity: usize) -> bool {
        if dropped == self.reported || self.last_warning.is_some_and(|at| at.elapsed() < DROP_WARNING_INTERVAL) {
            return false;
        }
        tracing::warn!(
            dropped = dropped - self.reported,
            dropped_total = dropped,
            queue_capacity = capacity,
            "usage rows were dropped: the usage log could not keep up or the database failed"
        );
        self.reported = dropped;
        self.last_warning = Some(std::time::Instant::now());
        true
    }
}

/// Writes one batch, retrying a few times; a batch that still fails is counted as dropped.
async fn write_batch(log: &dyn UsageLog, batch: &[UsageRecord], metrics: &Metrics) {
    const ATTEMPTS: u32 = 4;
    for attempt in 1..=ATTEMPTS {
        let started = std::time::Instant::now();
        let appended = log.append(batch).await;
        metrics.usage_batch_write.observe(started.elapsed().as_secs_f64());
        match appended {
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

    use futures_util::FutureExt;

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
        // The writer has not run yet (nothing awaited on this one-thread runtime).
        assert_eq!((queue.depth(), queue.capacity()), (25, 1_000));
        queue.stop().await;
        assert_eq!(queue.depth(), 0);
        let batches = written.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), 25, "every row written");
        assert!(batches.iter().all(|&len| len <= 10), "batches respect the size: {batches:?}");
        assert_eq!(metrics.usage_written.get(), 25);
        assert_eq!(metrics.usage_dropped.get(), 0);
        assert_eq!(metrics.usage_batch_write.get_sample_count(), batches.len() as u64, "each batch timed");
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
                std::thread::spawn(move || {
                    for n in 0..1_000 {
                        queue.record(row(n));
                    }
                })
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

    #[tokio::test(start_paused = true)]
    async fn past_the_high_water_mark_callers_wait_until_the_writer_takes_the_queue() {
        let mut log = MockUsageLog::new();
        log.expect_append().returning(|_| Ok(()));
        let metrics = Metrics::new();
        // High-water mark 5; the writer only wakes on flush here.
        let queue = UsageQueue::start(Arc::new(log), 10, 100, Duration::from_secs(3600), metrics.clone());
        queue.flush().await;
        for n in 0..4 {
            assert_eq!(queue.record(row(n)), Backlog::Normal);
        }
        assert_eq!(queue.record(row(4)), Backlog::Behind, "the fifth row reaches the mark");
        let started = tokio::time::Instant::now();
        let mut waiting = Box::pin(queue.caught_up());
        assert!((&mut waiting).now_or_never().is_none(), "waits while the queue is behind");
        queue.flush().await;
        waiting.await;
        assert_eq!(started.elapsed(), Duration::ZERO, "released by the writer taking the queue, not by the bound");
        assert_eq!(metrics.usage_written.get(), 5);
        // With the queue empty again, nobody waits.
        assert_eq!(queue.record(row(5)), Backlog::Normal);
        queue.caught_up().await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        queue.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_writer_delays_callers_by_the_bound_and_rows_past_the_capacity_are_dropped() {
        let mut log = MockUsageLog::new();
        log.expect_append().returning(|_| Ok(()));
        // The writer takes the queue only on its first tick and on stop: as stalled as a
        // database that stopped answering.
        let metrics = Metrics::new();
        let queue = UsageQueue::start(Arc::new(log), 4, 100, Duration::from_secs(3600), metrics.clone());
        queue.flush().await;
        for n in 0..6 {
            queue.record(row(n));
        }
        assert_eq!(metrics.usage_dropped.get(), 2, "past the capacity rows are dropped and counted");
        let started = tokio::time::Instant::now();
        queue.caught_up().await;
        assert_eq!(started.elapsed(), MAX_BACKPRESSURE_WAIT, "a writer that never takes the queue costs the bound");
        let mut report = DropReport::new(0);
        assert!(report.warn_if_new(2, 4), "new drops are reported");
        assert!(!report.warn_if_new(3, 4), "but not again within the interval");
        assert!(!DropReport::new(2).warn_if_new(2, 4), "no new drops, no warning");
        queue.stop().await;
    }
}
