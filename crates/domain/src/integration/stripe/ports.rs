//! What the Stripe webhooks need: a signature check and storage.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use super::model::{SignatureError, StripeEvent, StripeWebhookEndpoint};
use crate::StorageError;
use crate::event::DomainEvent;
use crate::organization::OrganizationId;
use crate::page::{Page, PageRequest};
use crate::sealed::Ciphertext;

/// Checks a `Stripe-Signature` header against an endpoint's secret.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait StripeSignatureVerifier: Send + Sync {
    /// Ok if `header` holds a `v1` signature of `payload` under `secret`, made within the
    /// tolerance window around `now`. Compares in constant time.
    fn verify(
        &self,
        secret: &SecretString,
        header: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError>;
}

/// Storage of endpoints and their events.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait StripeWebhookRepository: Send + Sync {
    /// The connection's endpoints, oldest first, each with its newest event's time.
    async fn list(
        &self,
        organization: OrganizationId,
        connection: Uuid,
    ) -> Result<Vec<StripeWebhookEndpoint>, StorageError>;

    /// Stores the endpoint and its sealed secret and records `event`, unless its connection
    /// already has `limit` endpoints (false, nothing stored). Counting and inserting are one
    /// atomic step.
    async fn insert(
        &self,
        endpoint: &StripeWebhookEndpoint,
        secret: &Ciphertext,
        limit: usize,
        event: &DomainEvent,
    ) -> Result<bool, StorageError>;

    /// An endpoint and its sealed secret, by id alone (the receiving route knows nothing else).
    async fn find(&self, id: Uuid) -> Result<Option<(StripeWebhookEndpoint, Ciphertext)>, StorageError>;

    /// Deletes the endpoint and its events and records `event`; false (nothing recorded) if the
    /// organization has no such endpoint on this connection.
    async fn delete(
        &self,
        organization: OrganizationId,
        connection: Uuid,
        id: Uuid,
        event: &DomainEvent,
    ) -> Result<bool, StorageError>;

    /// Stores a verified event; false (and nothing written) if the endpoint already has an
    /// event with this Stripe id.
    async fn record_event(&self, event: &StripeEvent) -> Result<bool, StorageError>;

    /// The connection's received events, newest first; the cursor is the last entry's id.
    async fn events(
        &self,
        organization: OrganizationId,
        connection: Uuid,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<StripeEvent, Uuid>, StorageError>;
}
