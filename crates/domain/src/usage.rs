//! The per-request usage log of API keys (K9, K14).

use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StorageError;
use crate::api_key::ApiKeyId;
use crate::organization::OrganizationId;
use crate::page::{Page, PageRequest};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// One request made with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// The key the request was made with.
    pub api_key_id: ApiKeyId,
    /// The key's organization.
    pub organization_id: OrganizationId,
    /// When the request arrived.
    pub occurred_at: DateTime<Utc>,
    /// The HTTP method, as sent (`GET`, `POST`, ...).
    pub method: String,
    /// The path only; the query string is never logged.
    pub path: String,
    /// The HTTP status of the answer.
    pub status: u16,
    /// How long the server took to answer, in milliseconds.
    pub response_time_ms: u32,
    /// The client's address; forwarded headers count only from trusted proxies (K14). `None` when
    /// the server could not tell.
    pub client_ip: Option<IpAddr>,
}

/// A logged request with its position in the log, which is also its pagination cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEntry {
    /// The row's position in the log: increasing, and the cursor of [`UsageLog::recent`].
    pub id: i64,
    /// The request it logs.
    pub record: UsageRecord,
}

/// Totals over a key's whole history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageSummary {
    /// How many requests the key has made, rows already deleted by retention included.
    pub total_requests: u64,
    /// How many distinct client addresses the key was used from.
    pub unique_ips: u64,
    /// When the key was last used; `None` if never.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Accepts usage rows on the hot path. `record` must never block and never fail the request:
/// it queues the row (or, when even the queue's hard limit is reached, drops and counts it) and
/// says whether the queue is behind. A caller told [`Backlog::Behind`] awaits
/// [`UsageSink::caught_up`] before answering, so that a load the log cannot keep up with is
/// slowed down instead of shedding rows; that wait is bounded by the adapter.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait UsageSink: Send + Sync {
    /// Queues `record` without blocking or failing, and says whether the queue is behind.
    fn record(&self, record: UsageRecord) -> Backlog;
    /// Returns once the writer has taken the queue, or after the adapter's bound on waiting.
    async fn caught_up(&self);
}

/// How far behind the usage log is, as [`UsageSink::record`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// The row is queued; nothing to do.
    Normal,
    /// The queue is past its high-water mark (or full): wait for [`UsageSink::caught_up`].
    Behind,
}

/// The usage log: batch writes from the background writer, and reads for the views.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait UsageLog: Send + Sync {
    /// Writes a batch of rows in one transaction, and coalesces each key's `last_used_at` and
    /// counters from it. Used by the background writer.
    async fn append(&self, batch: &[UsageRecord]) -> Result<(), StorageError>;
    /// Totals over the key's whole history (K9), fast even with millions of rows (F3).
    async fn summary(&self, key: ApiKeyId) -> Result<UsageSummary, StorageError>;
    /// Newest first; the cursor is the id of the last entry of the previous page.
    async fn recent(&self, key: ApiKeyId, page: &PageRequest<i64>) -> Result<Page<UsageEntry, i64>, StorageError>;
    /// Deletes up to `limit` rows that occurred before `before` (retention); how many. The
    /// per-key totals are kept: they are counters, not counts of what remains.
    async fn delete_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StorageError>;
}
