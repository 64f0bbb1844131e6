//! What the key service needs from storage and from the hot path's cache.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{ApiKey, ApiKeyId, ApiKeyStatus, KeyHash};
use crate::StorageError;
use crate::event::DomainEvent;
use crate::organization::OrganizationId;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// Outcome of an atomic key insert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertKeyError {
    /// An active key of the organization already has this name, case included.
    #[error("an active key already has this name")]
    NameTaken,
    /// The organization already has `limit` active keys (K7).
    #[error("the organization already has the maximum number of active keys")]
    LimitReached,
    /// The store failed; nothing was inserted.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Outcome of an atomic rotation: the insert's refusals, or the old key's state under the lock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotateStoredKeyError {
    /// The new key was refused: name taken, limit reached, or the store failed.
    #[error(transparent)]
    Insert(#[from] InsertKeyError),
    /// The old key is no longer active at `now` (revoked or expired since the caller read it).
    #[error("the old key is {}", .0.as_str())]
    OldKeyNotActive(ApiKeyStatus),
    /// The old key already has an active successor (a key made by rotating it that is neither
    /// revoked nor expired).
    #[error("the old key already has an active successor")]
    AlreadyRotated,
}

impl From<StorageError> for RotateStoredKeyError {
    fn from(err: StorageError) -> Self {
        RotateStoredKeyError::Insert(InsertKeyError::Storage(err))
    }
}

/// Stores API keys and the events of their changes. The changes are atomic with their
/// [`DomainEvent`]s: a stored change is always announced.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait ApiKeyRepository: Send + Sync {
    /// Inserts `key` and records `event` (its audit row, its webhook deliveries) in one
    /// transaction, but only if, at `now`, the organization has fewer than `limit` active keys
    /// and none of them has `key`'s name (compared exactly, case included). The check and the
    /// insert are atomic: concurrent inserts never exceed the limit nor duplicate a name.
    async fn insert(
        &self,
        key: &ApiKey,
        event: &DomainEvent,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(), InsertKeyError>;

    /// The key with this id in this organization, or `None` (also for another organization's key).
    async fn find(&self, organization: OrganizationId, id: ApiKeyId) -> Result<Option<ApiKey>, StorageError>;

    /// The key whose hash is `hash`, whatever its status.
    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StorageError>;

    /// Every key of the organization (at most a few hundred: 25 active plus history), newest first.
    async fn list(&self, organization: OrganizationId) -> Result<Vec<ApiKey>, StorageError>;

    /// Keys of every organization whose `expires_at` lies in `(from, to]`, revoked ones
    /// included (the caller decides), oldest expiry first (for the expiry warnings, K13).
    async fn expiring_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<ApiKey>, StorageError>;

    /// Sets `revoked_at` to `at` unless the key is already revoked at or before `at` (revocation
    /// only ever moves earlier), recording `event` in the same transaction (and only when it
    /// changed something). Returns the key as stored afterwards, or `None` if it does not exist
    /// in this organization.
    async fn revoke(
        &self,
        organization: OrganizationId,
        id: ApiKeyId,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<Option<ApiKey>, StorageError>;

    /// Inserts `new_key` as [`ApiKeyRepository::insert`] does and, in the same transaction,
    /// schedules the old key's revocation at `revoke_old_at` (if given) and records `event`.
    /// Under the same lock as the limit check, the old key must still be active at `now`
    /// ([`RotateStoredKeyError::OldKeyNotActive`]) and have no active successor
    /// ([`RotateStoredKeyError::AlreadyRotated`]): of concurrent rotations of one key exactly
    /// one succeeds, and the old key's revocation is scheduled once.
    async fn rotate(
        &self,
        new_key: &ApiKey,
        old_key: ApiKeyId,
        revoke_old_at: Option<DateTime<Utc>>,
        event: &DomainEvent,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(), RotateStoredKeyError>;
}

/// A cached verification result: the key, or `None` for "no such key" (negative caching).
pub type CachedKey = Option<Arc<ApiKey>>;

/// The hot-path cache of keys by hash (F1). Bounded; entries expire on their own.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait KeyCache: Send + Sync {
    /// `None` when nothing is cached for this hash.
    fn get(&self, hash: &KeyHash) -> Option<CachedKey>;
    /// Caches `entry` (a key, or `None` for "no such key") under `hash`, replacing what was there.
    fn insert(&self, hash: KeyHash, entry: CachedKey);
    /// Drops the entry at once, so the next request reads the database.
    fn invalidate(&self, hash: &KeyHash);
    /// Drops every entry: used when invalidations from other processes may have been missed.
    fn invalidate_all(&self);
}

/// Guesses at keys: a well-formed key that is not cached costs a database read, so failed
/// verifications are counted per client network and, past a limit, a network's uncached keys
/// are refused without a read until its window ends. Keys already cached (verified, or known
/// to be unknown) cost nothing and are answered as usual.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait KeyGuessGuard: Send + Sync {
    /// Whether a key from `network` may be looked up; `Err(seconds)` to wait.
    fn may_look_up(&self, network: &str) -> Result<(), u64>;
    /// A key from `network` was unknown.
    fn failed(&self, network: &str);
}

/// Tells every process sharing the database that a key's cached entries are stale, so each drops
/// them from its [`KeyCache`] (O2). The services call it after the change has committed.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait KeyInvalidationBus: Send + Sync {
    /// Announces `hash` (never the key) to every process, this one included. Best effort: the
    /// change is already committed, so a failure is the adapter's to log and never the caller's
    /// error; a process that misses the notice drops its entry when the entry's time is up.
    async fn publish(&self, hash: &KeyHash);
}
