//! The usage pipeline (K14, F1, F2): the hot path puts rows on a bounded queue without waiting;
//! one background task writes them in batches, one transaction per batch. Rows that do not fit
//! the queue are dropped and counted (`otesse_usage_rows_dropped_total`). On shutdown the
//! queue is drained before the process exits.

use std::sync::Arc;
use std::time::Duration;

use otesse_domain::ports::{UsageLog, UsageSink};
use otesse_domain::usage::UsageRecord;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

enum Message {
    Row(UsageRecord),
    /// Answered once every row queued before it is written.
    Flush(oneshot::Sender<()>),
    /// Like `Flush`, then the writer stops.
    Stop(oneshot::Sender<()>),
}

/// The sending side, shared by every worker.
#[derive(Clone)]
pub struct UsageQueue {
    sender: mpsc::Sender<Message>,
    metrics: Metrics,
}

impl std::fmt::Debug for UsageQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageQueue").field("capacity", &self.sender.max_capacity()).finish()
    }
}

impl UsageSink for UsageQueue {
    fn record(&self, record: UsageRecord) {
        self.metrics.key_requests.inc();
        if self.sender.try_send(Message::Row(record)).is_err() {
            self.metrics.usage_dropped.inc();
        }
    }
}

impl UsageQueue {
    /// Starts the writer task and returns the queue feeding it.
    pub fn start(log: Arc<dyn UsageLog>, capacity: usize, batch_size: usize, metrics: Metrics) -> Self {
        let (sender, receiver) = mpsc::channel(capacity);
        tokio::spawn(write_loop(receiver, log, batch_size, metrics.clone()));
        Self { sender, metrics }
    }

    /// Waits until every row queued so far is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Writes what is queued and stops the writer.
    pub async fn stop(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Stop(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(
    mut receiver: mpsc::Receiver<Message>,
    log: Arc<dyn UsageLog>,
    batch_size: usize,
    metrics: Metrics,
) {
    let mut messages = Vec::with_capacity(batch_size);
    let mut rows = Vec::with_capacity(batch_size);
    // `recv_many` takes whatever is waiting (at least one): under load batches grow by
    // themselves while the previous one is being written; when idle, rows go out at once.
    while receiver.recv_many(&mut messages, batch_size).await > 0 {
        let mut acks = Vec::new();
        let mut stop = false;
        for message in messages.drain(..) {
            match message {
                Message::Row(row) => rows.push(row),
                Message::Flush(ack) => acks.push(ack),
                Message::Stop(ack) => {
                    acks.push(ack);
                    stop = true;
                }
            }
        }
        if stop {
            // Everything already in the channel was queued before the stop: write it too.
            while let Ok(message) = receiver.try_recv() {
                match message {
                    Message::Row(row) => rows.push(row),
                    Message::Flush(ack) | Message::Stop(ack) => acks.push(ack),
                }
            }
        }
        for chunk in rows.chunks(batch_size) {
            write_batch(log.as_ref(), chunk, &metrics).await;
        }
        rows.clear();
        for ack in acks {
            let _ = ack.send(());
        }
        if stop {
            receiver.close();
            break;
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
        let queue = UsageQueue::start(Arc::new(log), 1_000, 10, metrics.clone());
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
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Mutex::new(hold);
        let mut log = MockUsageLog::new();
        // The first write blocks until released, so the queue behind it fills up.
        log.expect_append().returning(move |_| {
            let _ = hold.lock().unwrap().recv_timeout(std::time::Duration::from_secs(5));
            Ok(())
        });
        let metrics = Metrics::new();
        let queue = UsageQueue::start(Arc::new(log), 4, 1, metrics.clone());
        for n in 0..50 {
            queue.record(row(n)); // never awaits: this loop finishing proves it does not block
        }
        assert!(metrics.usage_dropped.get() >= 40, "dropped {}", metrics.usage_dropped.get());
        for _ in 0..50 {
            let _ = release.send(());
        }
        queue.stop().await;
        assert_eq!(metrics.key_requests.get(), 50);
        assert_eq!(metrics.usage_written.get() + metrics.usage_dropped.get(), 50, "every row accounted for");
    }

    #[tokio::test]
    async fn a_failing_database_is_retried_then_counted() {
        let mut log = MockUsageLog::new();
        let mut seq = mockall::Sequence::new();
        log.expect_append().times(1).in_sequence(&mut seq).returning(|_| Err(StorageError::new("busy")));
        log.expect_append().times(1).in_sequence(&mut seq).returning(|_| Ok(()));
        let metrics = Metrics::new();
        let queue = UsageQueue::start(Arc::new(log), 10, 10, metrics.clone());
        queue.record(row(200));
        queue.flush().await;
        assert_eq!(metrics.usage_written.get(), 1);
        assert_eq!(metrics.usage_dropped.get(), 0);
        queue.stop().await;
    }
}
