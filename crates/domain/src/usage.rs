//! The per-request usage log of API keys (K9, K14).

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::api_key::ApiKeyId;
use crate::organization::OrganizationId;

/// One request made with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    pub api_key_id: ApiKeyId,
    pub organization_id: OrganizationId,
    pub occurred_at: DateTime<Utc>,
    pub method: String,
    /// The path only; the query string is never logged.
    pub path: String,
    pub status: u16,
    pub response_time_ms: u32,
    pub client_ip: Option<IpAddr>,
}

/// A logged request with its position in the log, which is also its pagination cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEntry {
    pub id: i64,
    pub record: UsageRecord,
}

/// Totals over a key's whole history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageSummary {
    pub total_requests: u64,
    pub unique_ips: u64,
    pub last_used_at: Option<DateTime<Utc>>,
}
