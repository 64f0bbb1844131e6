//! Idempotency keys (W1): a create request carrying `Idempotency-Key` runs once; a retry with
//! the same key and the same request gets the first answer back, byte for byte.
//!
//! Records are scoped to the caller (an API key or a user), so two callers never share a key's
//! answer; kept at least 24 hours ([`KEEP_FOR_HOURS`]), then pruned. The first response's body
//! may hold a secret shown once (a created key), so it is stored sealed with the master keyring.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StorageError;
use crate::integration::Ciphertext;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// How long an answer is replayed.
pub const KEEP_FOR_HOURS: i64 = 24;

/// A client's idempotency key: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, InvalidIdempotencyKey> {
        let ok = (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok { Ok(Self(raw.to_owned())) } else { Err(InvalidIdempotencyKey) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The first answer, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: String,
    /// The body, sealed.
    pub body: Ciphertext,
}

/// What `begin` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key is new for this caller: run the request, then `complete` or `abandon`.
    New { record: Uuid },
    /// The same request is still running.
    InProgress,
    /// The same key was used with another request.
    Mismatch,
    /// Done before: replay this.
    Completed { record: Uuid, response: StoredResponse },
}

#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `(scope, key)` for a request with this fingerprint (SHA-256 of method, path and
    /// body), or reports what holds it. A record created before `expired_before` counts as
    /// absent and is replaced. Of concurrent calls with one key, exactly one gets `New`.
    async fn begin(
        &self,
        scope: &str,
        key: &IdempotencyKey,
        fingerprint: &[u8; 32],
        now: DateTime<Utc>,
        expired_before: DateTime<Utc>,
    ) -> Result<Begin, StorageError>;

    /// Stores the answer of the request that got `New`.
    async fn complete(&self, record: Uuid, response: &StoredResponse) -> Result<(), StorageError>;

    /// Forgets a `New` record (the request failed on our side): a retry may run again.
    async fn abandon(&self, record: Uuid) -> Result<(), StorageError>;

    /// Deletes records created before `before`; how many.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse("9f1c2d34-5e6f-4a7b-8c9d-0e1f2a3b4c5d").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in [String::new(), "k".repeat(256), "with space".into(), "tab\t".into(), "é".into()] {
            assert_eq!(IdempotencyKey::parse(&bad), Err(InvalidIdempotencyKey), "{bad:?}");
        }
    }
}
