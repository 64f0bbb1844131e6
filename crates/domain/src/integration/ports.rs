//! What the integrations need from storage and from the providers themselves.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    ConnectionView, ContactKind, ContactResource, Credentials, HealthCheck, HealthReport, InstanceStatus,
    IntegrationInstance, NewConnection, ProviderSlug, ProviderState, StoredCredential,
};
use crate::StorageError;
use crate::event::DomainEvent;
use crate::organization::OrganizationId;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// A model a provider offers (Anthropic's model selection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderModel {
    /// The model's id, as the provider's API takes it (`claude-sonnet-4-5`, ...).
    pub id: String,
    /// The model's name for people.
    pub display_name: String,
}

/// Token usage of one day (Anthropic's usage monitoring, I11), summed over models.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderUsageDay {
    /// The UTC day the bucket starts.
    pub starting_at: DateTime<Utc>,
    /// Input tokens not read from or written to the prompt cache.
    pub input_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

/// A plain-text email to send through a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The sender address: the connection's default sender.
    pub from: String,
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// Why a successful connect was not saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaveConnectionError {
    /// The user already holds a connected connection to this provider in the organization.
    #[error("the user already has a connected connection of this provider")]
    AlreadyConnected,
    /// The store failed; nothing was written.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Talks to the providers themselves: health checks and the resource operations (I6, I11).
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

/// Stores integration instances, connections, credentials, health checks and the resource
/// settings, each change with its event. Every method fails only with [`StorageError`] unless
/// it says otherwise.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait IntegrationRepository: Send + Sync {
    /// Per provider with an instance in this organization: its status and whether any
    /// connection is connected.
    async fn provider_states(&self, organization: OrganizationId) -> Result<Vec<ProviderState>, StorageError>;

    /// The organization's instance of `provider`, whatever its status.
    async fn find_instance(
        &self,
        organization: OrganizationId,
        provider: &ProviderSlug,
    ) -> Result<Option<IntegrationInstance>, StorageError>;

    /// Writes a successful connect in one transaction: inserts the instance or updates the
    /// existing one (matched by organization and provider) to status `active`; inserts the
    /// connection, its credentials and its first health check; records `event`. Refuses, and
    /// writes nothing, when the connection's user already has a connected connection of this
    /// provider in the organization (enforced by the database, so concurrent connects cannot
    /// both succeed).
    async fn save_connection(&self, new: &NewConnection, event: &DomainEvent) -> Result<(), SaveConnectionError>;

    /// Records a failed connect in one transaction: the instance (inserted if absent, matched by
    /// organization and provider) gets `instance.status` — `error`, or `active` when another
    /// connection still works; `event` is recorded. No connection and no credential are written.
    async fn record_failed_connect(
        &self,
        instance: &IntegrationInstance,
        event: &DomainEvent,
    ) -> Result<(), StorageError>;

    /// Every connected connection of every organization (for the scheduled health checks).
    async fn connected_connections(&self) -> Result<Vec<ConnectionView>, StorageError>;

    /// Connections of the organization (connected and disconnected), newest first.
    async fn list_connections(&self, organization: OrganizationId) -> Result<Vec<ConnectionView>, StorageError>;

    /// The organization's connection with this id, connected or not.
    async fn find_connection(
        &self,
        organization: OrganizationId,
        id: Uuid,
    ) -> Result<Option<ConnectionView>, StorageError>;

    /// The connection's sealed credentials; none once disconnected, or for a pre-configured one.
    async fn credentials(&self, connection: Uuid) -> Result<Vec<StoredCredential>, StorageError>;

    /// Records a check, sets the connection's instance to `status` and, when the check changed
    /// the connection's health, records `event`, in one transaction.
    async fn record_health<'a>(
        &self,
        check: &HealthCheck,
        instance: Uuid,
        status: InstanceStatus,
        event: Option<&'a DomainEvent>,
    ) -> Result<(), StorageError>;

    /// The connection's checks, newest first.
    async fn health_history(&self, connection: Uuid, limit: u32) -> Result<Vec<HealthCheck>, StorageError>;

    /// In one transaction: deletes the connection's credentials, marks it disconnected at `at`,
    /// sets its instance to `disconnected` if no connected connection remains, records
    /// `event`. Returns false (and records nothing) if no connected connection has this id in
    /// this organization.
    async fn disconnect(
        &self,
        organization: OrganizationId,
        id: Uuid,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<bool, StorageError>;

    /// Sets the instance's active/inactive toggle and records `event`.
    async fn set_enabled(
        &self,
        instance: Uuid,
        enabled: bool,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<(), StorageError>;

    /// Sets (or clears) the instance's chosen model and records `event`.
    async fn set_selected_model(
        &self,
        instance: Uuid,
        model: Option<String>,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<(), StorageError>;
}

/// Why the store refused a sender email or phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactStoreError {
    /// The instance already lists this value for this kind.
    #[error("duplicate value")]
    Duplicate,
    /// The store failed.
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
        instance: Uuid,
        kind: ContactKind,
    ) -> Result<Vec<ContactResource>, StorageError>;

    /// Inserts the resource and records `event`; it becomes the default if it is the first of
    /// its kind (its own `is_default` is ignored). Returns it as stored.
    async fn insert(
        &self,
        resource: &ContactResource,
        event: &DomainEvent,
    ) -> Result<ContactResource, ContactStoreError>;

    /// Changes value and/or label and records `event`; `None` (nothing recorded) if no such
    /// resource in this organization.
    async fn update(
        &self,
        organization: OrganizationId,
        id: Uuid,
        value: Option<String>,
        label: Option<String>,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<Option<ContactResource>, ContactStoreError>;

    /// Deletes it and records `event`; when it was the default, the oldest remaining one of its
    /// kind becomes the default. False (nothing recorded) if no such resource in this
    /// organization.
    async fn delete(&self, organization: OrganizationId, id: Uuid, event: &DomainEvent) -> Result<bool, StorageError>;

    /// Makes it the only default of its kind and records `event`. `None` (nothing recorded) if no
    /// such resource in this organization.
    async fn set_default(
        &self,
        organization: OrganizationId,
        id: Uuid,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<Option<ContactResource>, StorageError>;
}
