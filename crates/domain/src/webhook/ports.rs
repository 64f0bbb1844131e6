//! What outbound webhooks need: a sender (through the SSRF guard) and storage.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use super::model::{Attempt, Delivery, EndpointId, EndpointSecrets, SendOutcome, WebhookEndpoint, WebhookEvent};
use crate::StorageError;
use crate::event::DomainEvent;
use crate::organization::OrganizationId;
use crate::page::{Page, PageRequest};
use crate::sealed::Ciphertext;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// Sends deliveries and mints secrets, the Standard Webhooks way, through the SSRF guard.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// The URL normalised, or why it may not be used (shown to the user).
    async fn check_url(&self, url: &str) -> Result<String, String>;

    /// POSTs `body` to `url` with the three signature headers, signed with every secret.
    async fn send(
        &self,
        url: &str,
        secrets: &[SecretString],
        message_id: &str,
        timestamp: i64,
        body: &str,
    ) -> SendOutcome;

    /// A fresh `whsec_<base64>` secret.
    fn new_secret(&self) -> SecretString;
}

/// What [`WebhookRepository::insert_endpoint`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointInsert {
    /// The endpoint was stored.
    Inserted,
    /// The organization already has its limit of endpoints; nothing was stored.
    LimitReached,
}

/// Stores outbound endpoints, their sealed secrets, events and deliveries. Every method fails
/// only with [`StorageError`].
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    /// Stores the endpoint unless its organization already has `limit` endpoints. Counting and
    /// inserting are one atomic step: concurrent creates never exceed the limit.
    async fn insert_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        secret: &Ciphertext,
        limit: u32,
    ) -> Result<EndpointInsert, StorageError>;
    /// Oldest first.
    async fn endpoints(&self, organization: OrganizationId) -> Result<Vec<WebhookEndpoint>, StorageError>;
    /// The organization's endpoint with this id.
    async fn endpoint(
        &self,
        organization: OrganizationId,
        id: EndpointId,
    ) -> Result<Option<WebhookEndpoint>, StorageError>;
    /// Saves url, description, events, status, disabled reason, failures and `updated_at`.
    async fn update_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), StorageError>;
    /// Deletes the endpoint with its deliveries; false when there was none.
    async fn delete_endpoint(&self, organization: OrganizationId, id: EndpointId) -> Result<bool, StorageError>;
    /// The endpoint's sealed secrets; `None` when there is no such endpoint.
    async fn secrets(&self, id: EndpointId) -> Result<Option<EndpointSecrets>, StorageError>;
    /// The current secret becomes the previous one (kept until `previous_until`); `new` is current.
    async fn rotate_secret(
        &self,
        id: EndpointId,
        new: &Ciphertext,
        previous_until: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    /// In one transaction: stores `event` (a `webhook.test`), one pending delivery of it to
    /// `endpoint` (whether enabled or subscribed or not: a user re-checking an endpoint wants to
    /// see it work) and its queued `webhook_delivery` job. The delivery, or `None` when the
    /// organization has no such endpoint (nothing stored).
    async fn send_test(&self, event: &DomainEvent, endpoint: EndpointId) -> Result<Option<Delivery>, StorageError>;
    /// A delivery with its endpoint and event, or None once the endpoint was deleted.
    async fn delivery(&self, id: Uuid) -> Result<Option<(Delivery, WebhookEndpoint, WebhookEvent)>, StorageError>;
    /// Records an attempt: attempts + 1 and the attempt's fields.
    async fn record_attempt(&self, delivery: Uuid, attempt: &Attempt) -> Result<(), StorageError>;
    /// One more consecutive failure; disables the endpoint with `reason` when it reaches
    /// `threshold`. True only for the call that disabled it.
    async fn endpoint_failed(
        &self,
        id: EndpointId,
        threshold: u32,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;
    /// Resets the consecutive failures.
    async fn endpoint_succeeded(&self, id: EndpointId) -> Result<(), StorageError>;
    /// Deletes finished deliveries created before `before`, then the events left without a
    /// delivery; how many deliveries.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StorageError>;
    /// The endpoint's deliveries, newest first.
    async fn deliveries(
        &self,
        organization: OrganizationId,
        endpoint: EndpointId,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<Delivery, Uuid>, StorageError>;
}
