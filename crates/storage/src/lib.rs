//! The storage adapter: the domain's repository ports implemented with sea-orm, on SQLite or
//! PostgreSQL.
//!
//! [`Database::connect`] opens a pool and runs the migrations; each port then has its own small
//! store built from the [`Database`] ([`Database::api_keys`], [`Database::usage`], ...).
//!
//! Invariants:
//! - sea-orm entities and `DbErr` never leave this crate: rows are mapped to domain types here,
//!   and database errors become the domain's errors (`StorageError`, or the precise variant
//!   the port names, such as `InsertKeyError::NameTaken`).
//! - A row that does not map back (an unknown enum string, a malformed JSON list) is a
//!   `StorageError`, never a panic.
//! - Every transaction that writes starts with a write, so that SQLite takes its write lock
//!   before reading anything (no `SQLITE_BUSY_SNAPSHOT`) and PostgreSQL locks the row that
//!   serializes the transaction.
//! - Timestamps are stored to the microsecond, PostgreSQL's precision, on both databases.
//! - A recorded event (its audit row, its webhook deliveries and their jobs) is written in the
//!   transaction of the change it records ([`Outbox`]).

mod accounts;
mod api_keys;
mod audit;
mod contacts;
mod customers;
mod database;
mod entity;
mod idempotency;
mod integrations;
mod jobs;
mod key_invalidation;
mod notifications;
mod oauth;
mod outbox;
mod payload;
mod sealed;
mod service_tokens;
mod sessions;
mod stripe_webhooks;
mod support;
mod usage;
mod users;
mod webhooks;

pub use accounts::AccountStore;
pub use api_keys::ApiKeyStore;
pub use audit::AuditStore;
pub use contacts::ContactStore;
pub use customers::CustomerStore;
pub use database::{Database, MigrationState, PoolStatus};
pub use idempotency::IdempotencyRecordStore;
pub use integrations::IntegrationStore;
pub use jobs::{JOB_QUEUED_CHANNEL, JobStore, JobWakeup};
pub use key_invalidation::{
    KEY_INVALIDATION_CHANNEL, KeyInvalidationPublisher, KeyInvalidationSubscription, KeyNotice,
};
pub use notifications::NotificationStore;
pub use oauth::OAuthStore;
pub use outbox::Outbox;
pub use sealed::SealedSecretsStore;
pub use service_tokens::ServiceTokenStore;
pub use sessions::SessionStore;
pub use stripe_webhooks::StripeWebhookStore;
pub use usage::UsageStore;
pub use users::UserStore;
pub use webhooks::WebhookStore;
