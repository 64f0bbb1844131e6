//! Ports: what the services need from the outside world, named by role. Adapters implement
//! them (storage, crypto, the server's cache and queues); tests use the mockall mocks
//! (`MockApiKeyRepository`, ...), also exported under the `mocks` feature.
//!
//! Every method documents what it must do and which errors it may return. `StorageError` always
//! means "not the caller's fault" and becomes a 500 at the edge.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::StorageError;
use crate::api_key::{ApiKey, ApiKeyId, KeyHash};
use crate::audit::{AuditEntry, AuditFilter};
use crate::auth::{Session, SessionId};
use crate::customer::{Customer, CustomerId, CustomerPatch, Tenant};
use crate::organization::{Organization, OrganizationId};
use crate::page::{Page, PageRequest};
use crate::usage::{UsageEntry, UsageRecord, UsageSummary};
use crate::user::{Email, PasswordHash, User, UserId};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// The time. Services never read the system clock themselves.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Cryptographically secure random material.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait SecretGenerator: Send + Sync {
    /// `len` characters drawn uniformly from `[0-9A-Za-z]` by a CSPRNG.
    fn base62(&self, len: usize) -> SecretString;
}

/// Hashes API keys and session tokens for storage and lookup.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait KeyHasher: Send + Sync {
    /// SHA-256 of the whole plaintext.
    fn hash(&self, plaintext: &str) -> KeyHash;
    /// Whether `plaintext` hashes to `expected`, compared in constant time.
    fn matches(&self, plaintext: &str, expected: &KeyHash) -> bool;
    /// Whether two hashes are equal, compared in constant time.
    fn same(&self, a: &KeyHash, b: &KeyHash) -> bool;
}

/// Argon2id password hashing. Implementations run the work off the async runtime.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: &SecretString) -> PasswordHash;
    /// Whether `password` matches `hash`. With `hash = None` it does the same work against a
    /// dummy hash and answers false, so an unknown email takes as long as a wrong password.
    async fn verify(&self, password: &SecretString, hash: Option<PasswordHash>) -> bool;
}

/// Outcome of an atomic key insert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertKeyError {
    #[error("an active key already has this name")]
    NameTaken,
    #[error("the organization already has the maximum number of active keys")]
    LimitReached,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait ApiKeyRepository: Send + Sync {
    /// Inserts `key` and `audit` in one transaction, but only if, at `now`, the organization has
    /// fewer than `limit` active keys and none of them has `key`'s name (compared exactly, case
    /// included). The check and the insert are atomic: concurrent inserts never exceed the
    /// limit nor duplicate a name.
    async fn insert(
        &self,
        key: &ApiKey,
        audit: &AuditEntry,
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
    /// only ever moves earlier), writing `audit` in the same transaction. Returns the key as
    /// stored afterwards, or `None` if it does not exist in this organization.
    async fn revoke(
        &self,
        organization: OrganizationId,
        id: ApiKeyId,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<Option<ApiKey>, StorageError>;

    /// Inserts `new_key` as [`ApiKeyRepository::insert`] does and, in the same transaction,
    /// schedules the old key's revocation at `revoke_old_at` (if given) and writes `audit`.
    async fn rotate(
        &self,
        new_key: &ApiKey,
        old_key: ApiKeyId,
        revoke_old_at: Option<DateTime<Utc>>,
        audit: &AuditEntry,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(), InsertKeyError>;
}

/// A cached verification result: the key, or `None` for "no such key" (negative caching).
pub type CachedKey = Option<Arc<ApiKey>>;

/// The hot-path cache of keys by hash (F1). Bounded; entries expire on their own.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait KeyCache: Send + Sync {
    /// `None` when nothing is cached for this hash.
    fn get(&self, hash: &KeyHash) -> Option<CachedKey>;
    fn insert(&self, hash: KeyHash, entry: CachedKey);
    /// Drops the entry at once, so the next request reads the database.
    fn invalidate(&self, hash: &KeyHash);
    /// Drops every entry: used when invalidations from other processes may have been missed.
    fn invalidate_all(&self);
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

/// Accepts usage rows on the hot path. `record` must never block and never fail the request:
/// it queues the row (or, when even the queue's hard limit is reached, drops and counts it) and
/// says whether the queue is behind. A caller told [`Backlog::Behind`] awaits
/// [`UsageSink::caught_up`] before answering, so that a load the log cannot keep up with is
/// slowed down instead of shedding rows; that wait is bounded by the adapter.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait UsageSink: Send + Sync {
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
    async fn summary(&self, key: ApiKeyId) -> Result<UsageSummary, StorageError>;
    /// Newest first; the cursor is the id of the last entry of the previous page.
    async fn recent(&self, key: ApiKeyId, page: &PageRequest<i64>) -> Result<Page<UsageEntry, i64>, StorageError>;
    /// Deletes up to `limit` rows that occurred before `before` (retention); how many. The
    /// per-key totals are kept: they are counters, not counts of what remains.
    async fn delete_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StorageError>;
}

#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn record(&self, entry: &AuditEntry) -> Result<(), StorageError>;
    /// Newest first; the cursor is the id of the last entry of the previous page.
    async fn list(
        &self,
        organization: OrganizationId,
        filter: &AuditFilter,
        page: &PageRequest<uuid::Uuid>,
    ) -> Result<Page<AuditEntry, uuid::Uuid>, StorageError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupStoreError {
    #[error("setup has already been completed")]
    AlreadyDone,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertUserError {
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Creates the first organization and its admin, atomically, only if setup was never done.
    async fn complete_setup(
        &self,
        organization: &Organization,
        admin: &User,
        hash: &PasswordHash,
    ) -> Result<(), SetupStoreError>;
    /// Whether first-run setup has been completed (its one-time record exists).
    async fn is_setup_done(&self) -> Result<bool, StorageError>;
    async fn insert(&self, user: &User, hash: &PasswordHash) -> Result<(), InsertUserError>;
    async fn find_by_email(&self, email: &Email) -> Result<Option<(User, PasswordHash)>, StorageError>;
    async fn find(&self, id: UserId) -> Result<Option<User>, StorageError>;
    async fn list(&self, organization: OrganizationId) -> Result<Vec<User>, StorageError>;
    async fn organization(&self, id: OrganizationId) -> Result<Option<Organization>, StorageError>;
}

#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync {
    async fn insert(&self, session: &Session) -> Result<(), StorageError>;
    /// The unexpired, unrevoked session with this token hash, with its user.
    async fn find_active(&self, hash: &KeyHash, now: DateTime<Utc>) -> Result<Option<(Session, User)>, StorageError>;
    /// Ends the session; ending an ended session is not an error.
    async fn revoke(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), StorageError>;
}

/// Failed sign-in bookkeeping (P2). In-process by default.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait SignInThrottle: Send + Sync {
    /// `Err(seconds)` when attempts for this subject are refused for that long.
    fn check(&self, subject: &str) -> Result<(), u64>;
    fn record_failure(&self, subject: &str);
    fn reset(&self, subject: &str);
}

#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait CustomerRepository: Send + Sync {
    async fn insert(&self, customer: &Customer) -> Result<(), StorageError>;
    /// The customer with this id in this tenant (organization and environment), or `None`.
    async fn find(&self, tenant: Tenant, id: CustomerId) -> Result<Option<Customer>, StorageError>;
    /// Newest first; the cursor is the id of the last customer of the previous page.
    async fn list(
        &self,
        tenant: Tenant,
        page: &PageRequest<CustomerId>,
    ) -> Result<Page<Customer, CustomerId>, StorageError>;
    /// Applies the patch and returns the customer as stored, or `None` if absent.
    async fn update(
        &self,
        tenant: Tenant,
        id: CustomerId,
        patch: &CustomerPatch,
        now: DateTime<Utc>,
    ) -> Result<Option<Customer>, StorageError>;
    /// Whether a customer was deleted.
    async fn delete(&self, tenant: Tenant, id: CustomerId) -> Result<bool, StorageError>;
}

// ---------------------------------------------------------------------------------------------
// Integrations (I1-I13)
// ---------------------------------------------------------------------------------------------

use crate::integration::{
    Ciphertext, ConnectionView, CredentialBinding, Credentials, HealthCheck, HealthReport, InstanceStatus,
    IntegrationInstance, NewConnection, ProviderSlug, ProviderState, StoredCredential,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("no master key has version {0}")]
    UnknownKeyVersion(u32),
    /// Wrong key, altered bytes, or a ciphertext moved to another record.
    #[error("the ciphertext does not authenticate")]
    Tampered,
}

/// AES-256-GCM with versioned master keys (I4, I5).
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait CredentialCipher: Send + Sync {
    /// Seals `plaintext` under the newest master key with a fresh random nonce, bound to
    /// `binding` as associated data.
    fn encrypt(&self, plaintext: &SecretString, binding: &CredentialBinding) -> Ciphertext;
    /// Opens a ciphertext made by any configured key version, if it was bound to `binding`.
    fn decrypt(&self, ciphertext: &Ciphertext, binding: &CredentialBinding) -> Result<SecretString, DecryptError>;
    /// The version new ciphertexts get.
    fn current_version(&self) -> u32;
}

/// A model a provider offers (Anthropic's model selection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderModel {
    pub id: String,
    pub display_name: String,
}

/// Token usage of one day (Anthropic's usage monitoring, I11), summed over models.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderUsageDay {
    /// The UTC day the bucket starts.
    pub starting_at: DateTime<Utc>,
    pub input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub output_tokens: u64,
}

/// A plain-text email to send through a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Talks to the providers themselves.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait ProviderClient: Send + Sync {
    /// One lightweight authenticated call to the provider's account or token endpoint, with
    /// bounded timeouts; classifies the answer and measures the response time. Never fails:
    /// every failure is a [`HealthReport`] outcome.
    async fn health_check(&self, provider: &ProviderSlug, credentials: &Credentials) -> HealthReport;
    /// The models the provider offers (providers with model selection); a failure comes back
    /// as the report of what went wrong.
    async fn list_models(
        &self,
        provider: &ProviderSlug,
        credentials: &Credentials,
    ) -> Result<Vec<ProviderModel>, HealthReport>;
    /// Sends an email (Postmark); the provider's message id, or the report of what went wrong.
    async fn send_email(
        &self,
        provider: &ProviderSlug,
        credentials: &Credentials,
        message: &OutgoingMessage,
    ) -> Result<String, HealthReport>;
    /// Daily token usage from `since` (providers with usage monitoring), oldest day first,
    /// read with the admin credential (`credentials.api_secret`); a failure comes back as the
    /// report of what went wrong.
    async fn usage_report(
        &self,
        provider: &ProviderSlug,
        credentials: &Credentials,
        since: DateTime<Utc>,
    ) -> Result<Vec<ProviderUsageDay>, HealthReport>;
}

#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait IntegrationRepository: Send + Sync {
    /// Per provider with an instance in this organization: its status and whether any
    /// connection is connected.
    async fn provider_states(&self, organization: OrganizationId) -> Result<Vec<ProviderState>, StorageError>;

    async fn find_instance(
        &self,
        organization: OrganizationId,
        provider: &ProviderSlug,
    ) -> Result<Option<IntegrationInstance>, StorageError>;

    /// Writes a successful connect in one transaction: inserts the instance or updates the
    /// existing one (matched by organization and provider) to status `active`; inserts the
    /// connection, its credentials and its first health check; writes `audit`.
    async fn save_connection(&self, new: &NewConnection, audit: &AuditEntry) -> Result<(), StorageError>;

    /// Records a failed connect in one transaction: the instance (inserted if absent, matched by
    /// organization and provider) gets `instance.status` — `error`, or `active` when another
    /// connection still works; `audit` is written. No connection and no credential are written.
    async fn record_failed_connect(
        &self,
        instance: &IntegrationInstance,
        audit: &AuditEntry,
    ) -> Result<(), StorageError>;

    /// Every connected connection of every organization (for the scheduled health checks).
    async fn connected_connections(&self) -> Result<Vec<ConnectionView>, StorageError>;

    /// Connections of the organization (connected and disconnected), newest first.
    async fn list_connections(&self, organization: OrganizationId) -> Result<Vec<ConnectionView>, StorageError>;

    async fn find_connection(
        &self,
        organization: OrganizationId,
        id: uuid::Uuid,
    ) -> Result<Option<ConnectionView>, StorageError>;

    async fn credentials(&self, connection: uuid::Uuid) -> Result<Vec<StoredCredential>, StorageError>;

    /// Records a check and sets the connection's instance to `status`.
    async fn record_health(
        &self,
        check: &HealthCheck,
        instance: uuid::Uuid,
        status: InstanceStatus,
    ) -> Result<(), StorageError>;

    /// The connection's checks, newest first.
    async fn health_history(&self, connection: uuid::Uuid, limit: u32) -> Result<Vec<HealthCheck>, StorageError>;

    /// In one transaction: deletes the connection's credentials, marks it disconnected at `at`,
    /// sets its instance to `disconnected` if no connected connection remains, writes `audit`.
    /// Returns false if no connected connection has this id in this organization.
    async fn disconnect(
        &self,
        organization: OrganizationId,
        id: uuid::Uuid,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<bool, StorageError>;

    /// Sets the instance's active/inactive toggle.
    async fn set_enabled(&self, instance: uuid::Uuid, enabled: bool, at: DateTime<Utc>) -> Result<(), StorageError>;

    /// Sets (or clears) the instance's chosen model.
    async fn set_selected_model(
        &self,
        instance: uuid::Uuid,
        model: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Up to `limit` sealed secrets under a key version below `version`, for the rewrap:
    /// credentials, Stripe endpoints' signing secrets, outbound webhook endpoints' secrets, and
    /// the previous secrets of outbound endpoints that are still sent at `now` (a rotation's
    /// overlap). An outbound endpoint's current and previous secret share its id.
    async fn credentials_below_version(
        &self,
        version: u32,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredCredential>, StorageError>;

    /// Replaces a credential's ciphertext if it still is `old` (compare-and-swap); false if
    /// the row changed or vanished meanwhile.
    async fn replace_ciphertext(
        &self,
        id: uuid::Uuid,
        old: &Ciphertext,
        new: &Ciphertext,
    ) -> Result<bool, StorageError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactStoreError {
    /// The instance already lists this value for this kind.
    #[error("duplicate value")]
    Duplicate,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Sender emails and phone numbers (I11). Every write keeps "exactly one default per instance
/// and kind while any exist", also under concurrent writes (the implementation serializes
/// writes per instance).
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait ContactRepository: Send + Sync {
    /// Oldest first.
    async fn list(
        &self,
        organization: OrganizationId,
        instance: uuid::Uuid,
        kind: crate::integration::ContactKind,
    ) -> Result<Vec<crate::integration::ContactResource>, StorageError>;

    /// Inserts the resource; it becomes the default if it is the first of its kind (its own
    /// `is_default` is ignored). Returns it as stored.
    async fn insert(
        &self,
        resource: &crate::integration::ContactResource,
    ) -> Result<crate::integration::ContactResource, ContactStoreError>;

    /// Changes value and/or label; `None` if no such resource in this organization.
    async fn update(
        &self,
        organization: OrganizationId,
        id: uuid::Uuid,
        value: Option<String>,
        label: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Option<crate::integration::ContactResource>, ContactStoreError>;

    /// Deletes it; when it was the default, the oldest remaining one of its kind becomes the
    /// default. False if no such resource in this organization.
    async fn delete(&self, organization: OrganizationId, id: uuid::Uuid) -> Result<bool, StorageError>;

    /// Makes it the only default of its kind. `None` if no such resource in this organization.
    async fn set_default(
        &self,
        organization: OrganizationId,
        id: uuid::Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<crate::integration::ContactResource>, StorageError>;
}
