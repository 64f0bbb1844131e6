//! Outbound webhooks (W3): endpoints an organization registers, the event-type catalog, and the
//! delivery of every event to the endpoints subscribed to it.
//!
//! Publishing is one transaction in storage: the event, one delivery per subscribed enabled
//! endpoint, and one durable job per delivery (O5), so an event is either fully queued or not
//! at all. The job worker calls [`WebhookService::deliver`]; the job queue's backoff (30 s
//! doubling to an hour, with jitter) spaces the attempts, and a delivery is given up after
//! [`WebhookSettings::max_attempts`]. Every attempt that fails adds to the endpoint's count of
//! consecutive failures (a success resets it); at [`WebhookSettings::disable_after_failures`]
//! the endpoint is disabled, once, and its owner notified.
//!
//! Deliveries follow the Standard Webhooks scheme: `webhook-id` (`msg_...`, the event's id),
//! `webhook-timestamp`, `webhook-signature` (`v1,<base64>` per secret, both the new and the old
//! secret for [`PREVIOUS_SECRET_HOURS`] after a rotation). The signing happens in the
//! [`WebhookSender`] adapter; this module only hands it the secrets it unsealed.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::StorageError;
use crate::api_key::{ApiKey, Scope};
use crate::caller::{Caller, Denied, Need};
use crate::integration::{Ciphertext, CredentialBinding, CredentialField, HealthCheck};
use crate::notification::{Notification, NotificationKind, NotificationRepository};
use crate::organization::OrganizationId;
use crate::page::{Page, PageRequest};
use crate::ports::{Clock, CredentialCipher};
use crate::user::{Permission, UserId};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// What an endpoint can subscribe to (`GET /v1/event-types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    ApiKeyCreated,
    ApiKeyRotated,
    ApiKeyRevoked,
    ApiKeyExpiring,
    IntegrationConnected,
    IntegrationDisconnected,
    HealthCheckFailed,
    HealthCheckRecovered,
    /// Sent only by the "send test event" route, to the one endpoint named.
    Test,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::ApiKeyCreated,
        EventType::ApiKeyRotated,
        EventType::ApiKeyRevoked,
        EventType::ApiKeyExpiring,
        EventType::IntegrationConnected,
        EventType::IntegrationDisconnected,
        EventType::HealthCheckFailed,
        EventType::HealthCheckRecovered,
        EventType::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ApiKeyCreated => "api_key.created",
            EventType::ApiKeyRotated => "api_key.rotated",
            EventType::ApiKeyRevoked => "api_key.revoked",
            EventType::ApiKeyExpiring => "api_key.expiring",
            EventType::IntegrationConnected => "integration.connected",
            EventType::IntegrationDisconnected => "integration.disconnected",
            EventType::HealthCheckFailed => "integration.health_check.failed",
            EventType::HealthCheckRecovered => "integration.health_check.recovered",
            EventType::Test => "webhook.test",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            EventType::ApiKeyCreated => "An API key was created.",
            EventType::ApiKeyRotated => "An API key was rotated: a new key replaces it, the old one stops later.",
            EventType::ApiKeyRevoked => "An API key was revoked and no longer works.",
            EventType::ApiKeyExpiring => "An API key expires in 14, 7 or 1 days.",
            EventType::IntegrationConnected => "A provider was connected.",
            EventType::IntegrationDisconnected => "A provider was disconnected.",
            EventType::HealthCheckFailed => "A connected provider's scheduled health check started failing.",
            EventType::HealthCheckRecovered => "A connected provider's health check passes again after failing.",
            EventType::Test => "A test event, sent on request to one endpoint.",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub Uuid);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    Enabled,
    /// Disabled by its owner or after too many failed attempts; nothing is delivered to it.
    Disabled,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Enabled => "enabled",
            EndpointStatus::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [EndpointStatus::Enabled, EndpointStatus::Disabled].into_iter().find(|s| s.as_str() == raw)
    }
}

/// A registered endpoint. Its secrets are stored sealed beside it and never part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: EndpointId,
    pub organization_id: OrganizationId,
    /// The URL as the SSRF guard normalised it.
    pub url: String,
    pub description: String,
    pub events: Vec<EventType>,
    pub status: EndpointStatus,
    /// Why it is disabled, when it is.
    pub disabled_reason: Option<String>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Notified when the endpoint is disabled: the user, or the creator of the key, that made it.
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    pub fn subscribes_to(&self, event: EventType) -> bool {
        self.events.contains(&event)
    }
}

/// An endpoint's sealed signing secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSecrets {
    pub current: Ciphertext,
    /// The secret before the last rotation, and until when deliveries are signed with it too.
    pub previous: Option<(Ciphertext, DateTime<Utc>)>,
}

/// One event, as delivered to every endpoint subscribed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: Uuid,
    pub organization_id: OrganizationId,
    pub event_type: EventType,
    /// The JSON body sent: `{"id", "type", "timestamp", "data"}`.
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

impl WebhookEvent {
    pub fn new(organization_id: OrganizationId, event_type: EventType, data: Value, now: DateTime<Utc>) -> Self {
        let id = Uuid::now_v7();
        let payload = json!({
            "id": Self::message_id_of(id),
            "type": event_type.as_str(),
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": data,
        });
        Self { id, organization_id, event_type, payload: payload.to_string(), created_at: now }
    }

    /// The `webhook-id` header: the same for every attempt, so receivers can de-duplicate.
    pub fn message_id(&self) -> String {
        Self::message_id_of(self.id)
    }

    fn message_id_of(id: Uuid) -> String {
        format!("msg_{}", id.simple())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet delivered; an attempt is queued.
    Pending,
    Succeeded,
    /// Given up: every attempt failed, the URL was refused, or the endpoint went away.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [DeliveryState::Pending, DeliveryState::Succeeded, DeliveryState::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// One event to one endpoint: the delivery log's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub organization_id: OrganizationId,
    pub endpoint_id: EndpointId,
    pub event_id: Uuid,
    pub event_type: EventType,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The receiver's HTTP status on the last attempt, when it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed (never holds the URL or a secret).
    pub last_error: Option<String>,
    pub last_response_ms: Option<u32>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// The result of one attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub state: DeliveryState,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub response_ms: Option<u32>,
    pub at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What the receiver did with one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// It answered (any status; 2xx is a success, anything else including 3xx a failure).
    Answered { status: u16, response_ms: u32 },
    /// No answer: a timeout, a refused connection, TLS. Retried.
    Failed { error: String, response_ms: u32 },
    /// The URL now resolves to a forbidden address (W5, checked at every delivery): not sent,
    /// not retried.
    Refused { reason: String },
}

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

/// Where the domain services announce a change once it is stored (W3): the server's adapter
/// queues the event for every subscribed endpoint. Announcing never undoes or fails the change;
/// the adapter logs an event it could not queue.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, organization: OrganizationId, event: EventType, data: Value);
}

/// What [`WebhookRepository::insert_endpoint`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointInsert {
    Inserted,
    /// The organization already has its limit of endpoints; nothing was stored.
    LimitReached,
}

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
    async fn endpoint(
        &self,
        organization: OrganizationId,
        id: EndpointId,
    ) -> Result<Option<WebhookEndpoint>, StorageError>;
    /// Saves url, description, events, status, disabled reason, failures and `updated_at`.
    async fn update_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), StorageError>;
    /// Deletes the endpoint with its deliveries; false when there was none.
    async fn delete_endpoint(&self, organization: OrganizationId, id: EndpointId) -> Result<bool, StorageError>;
    async fn secrets(&self, id: EndpointId) -> Result<Option<EndpointSecrets>, StorageError>;
    /// The current secret becomes the previous one (kept until `previous_until`); `new` is current.
    async fn rotate_secret(
        &self,
        id: EndpointId,
        new: &Ciphertext,
        previous_until: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    /// In one transaction: stores the event, a pending delivery for every enabled endpoint of
    /// its organization subscribed to it (only `only`, subscribed or not, when given), and one
    /// queued `webhook_delivery` job per delivery with `max_attempts`. The deliveries made.
    async fn publish(
        &self,
        event: &WebhookEvent,
        only: Option<EndpointId>,
        max_attempts: u32,
    ) -> Result<Vec<Delivery>, StorageError>;
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

/// The previous secret keeps signing deliveries this long after a rotation.
pub const PREVIOUS_SECRET_HOURS: i64 = 24;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Finished deliveries (and their events) are kept this long in the delivery log.
pub const KEEP_DELIVERIES_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Attempts per delivery before it is given up.
    pub max_attempts: u32,
    /// Consecutive failed attempts (across deliveries) that disable an endpoint.
    pub disable_after_failures: u32,
    /// Endpoints per organization.
    pub max_endpoints: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self { max_attempts: 8, disable_after_failures: 20, max_endpoints: 16 }
    }
}

/// Reading endpoints needs `settings.view`, managing them `settings.edit`; a key with
/// `webhooks.manage` may do both (what it creates belongs to its creator).
const VIEW: Need = Need::UserOrKey(Permission::SettingsView, Scope::WebhooksManage);
const EDIT: Need = Need::UserOrKey(Permission::SettingsEdit, Scope::WebhooksManage);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Invalid(String),
    #[error("Unknown event type `{0}`. GET /v1/event-types lists them.")]
    UnknownEventType(String),
    #[error("This URL cannot be used: {0}.")]
    UrlRefused(String),
    #[error("An organization can have at most {0} webhook endpoints.")]
    LimitReached(u32),
    #[error("No such webhook endpoint.")]
    NotFound,
    #[error(transparent)]
    Forbidden(#[from] Denied),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a create or update asks for.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// Only on update: re-enable (which resets the failures) or disable.
    pub status: Option<EndpointStatus>,
}

#[derive(Clone)]
pub struct WebhookService {
    pub repo: Arc<dyn WebhookRepository>,
    pub sender: Arc<dyn WebhookSender>,
    pub cipher: Arc<dyn CredentialCipher>,
    pub notifications: Arc<dyn NotificationRepository>,
    pub clock: Arc<dyn Clock>,
    pub settings: WebhookSettings,
}

fn binding(organization: OrganizationId, endpoint: EndpointId) -> CredentialBinding {
    CredentialBinding {
        organization_id: organization,
        connection_id: endpoint.0,
        field: CredentialField::OutboundWebhookSecret,
    }
}

fn parse_events(raw: &[String]) -> Result<Vec<EventType>, WebhookError> {
    if raw.is_empty() {
        return Err(WebhookError::Invalid("`events` must list at least one event type.".into()));
    }
    let mut events = Vec::new();
    for name in raw {
        let event = EventType::parse(name.trim()).ok_or_else(|| WebhookError::UnknownEventType(name.clone()))?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

fn parse_description(raw: Option<String>) -> Result<String, WebhookError> {
    let description = raw.unwrap_or_default().trim().to_owned();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(WebhookError::Invalid(format!(
            "`description` must be at most {MAX_DESCRIPTION_CHARS} characters."
        )));
    }
    Ok(description)
}

impl WebhookService {
    async fn checked_url(&self, raw: &str) -> Result<String, WebhookError> {
        if raw.trim().is_empty() {
            return Err(WebhookError::Invalid("`url` is required.".into()));
        }
        self.sender.check_url(raw.trim()).await.map_err(WebhookError::UrlRefused)
    }

    /// Registers an endpoint; returns it with its secret, which is never shown again.
    pub async fn create(
        &self,
        caller: &Caller,
        input: EndpointInput,
    ) -> Result<(WebhookEndpoint, SecretString), WebhookError> {
        caller.require(EDIT)?;
        let events = parse_events(input.events.as_deref().unwrap_or_default())?;
        let description = parse_description(input.description)?;
        let url = self.checked_url(input.url.as_deref().unwrap_or_default()).await?;
        let now = self.clock.now();
        let endpoint = WebhookEndpoint {
            id: EndpointId(Uuid::now_v7()),
            organization_id: caller.organization_id(),
            url,
            description,
            events,
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            consecutive_failures: 0,
            created_by: caller.on_behalf_of(),
            created_at: now,
            updated_at: now,
        };
        let secret = self.sender.new_secret();
        let sealed = self.cipher.encrypt(&secret, &binding(endpoint.organization_id, endpoint.id));
        match self.repo.insert_endpoint(&endpoint, &sealed, self.settings.max_endpoints).await? {
            EndpointInsert::Inserted => Ok((endpoint, secret)),
            EndpointInsert::LimitReached => Err(WebhookError::LimitReached(self.settings.max_endpoints)),
        }
    }

    pub async fn list(&self, caller: &Caller) -> Result<Vec<WebhookEndpoint>, WebhookError> {
        caller.require(VIEW)?;
        Ok(self.repo.endpoints(caller.organization_id()).await?)
    }

    pub async fn get(&self, caller: &Caller, id: EndpointId) -> Result<WebhookEndpoint, WebhookError> {
        caller.require(VIEW)?;
        self.repo.endpoint(caller.organization_id(), id).await?.ok_or(WebhookError::NotFound)
    }

    /// Changes what is given; nothing when any of it is invalid.
    pub async fn update(
        &self,
        caller: &Caller,
        id: EndpointId,
        input: EndpointInput,
    ) -> Result<WebhookEndpoint, WebhookError> {
        caller.require(EDIT)?;
        let mut endpoint = self.repo.endpoint(caller.organization_id(), id).await?.ok_or(WebhookError::NotFound)?;
        if let Some(events) = &input.events {
            endpoint.events = parse_events(events)?;
        }
        if input.description.is_some() {
            endpoint.description = parse_description(input.description)?;
        }
        if let Some(url) = &input.url {
            endpoint.url = self.checked_url(url).await?;
        }
        match input.status {
            Some(EndpointStatus::Enabled) => {
                endpoint.status = EndpointStatus::Enabled;
                endpoint.disabled_reason = None;
                endpoint.consecutive_failures = 0;
            }
            Some(EndpointStatus::Disabled) if endpoint.status == EndpointStatus::Enabled => {
                endpoint.status = EndpointStatus::Disabled;
                endpoint.disabled_reason = Some("Disabled by a user.".into());
            }
            _ => {}
        }
        endpoint.updated_at = self.clock.now();
        self.repo.update_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    pub async fn delete(&self, caller: &Caller, id: EndpointId) -> Result<(), WebhookError> {
        caller.require(EDIT)?;
        if self.repo.delete_endpoint(caller.organization_id(), id).await? {
            Ok(())
        } else {
            Err(WebhookError::NotFound)
        }
    }

    /// A new secret, shown once; the old one keeps signing for [`PREVIOUS_SECRET_HOURS`].
    pub async fn rotate_secret(&self, caller: &Caller, id: EndpointId) -> Result<SecretString, WebhookError> {
        caller.require(EDIT)?;
        let endpoint = self.repo.endpoint(caller.organization_id(), id).await?.ok_or(WebhookError::NotFound)?;
        let secret = self.sender.new_secret();
        let sealed = self.cipher.encrypt(&secret, &binding(endpoint.organization_id, endpoint.id));
        let until = self.clock.now() + Duration::hours(PREVIOUS_SECRET_HOURS);
        self.repo.rotate_secret(endpoint.id, &sealed, until).await?;
        Ok(secret)
    }

    /// Queues a `webhook.test` event to this endpoint (enabled or not: a user re-checking a
    /// disabled endpoint wants to see it work).
    pub async fn send_test(&self, caller: &Caller, id: EndpointId) -> Result<Delivery, WebhookError> {
        caller.require(EDIT)?;
        let endpoint = self.repo.endpoint(caller.organization_id(), id).await?.ok_or(WebhookError::NotFound)?;
        let data = json!({ "endpoint_id": endpoint.id.0, "message": "This is a test event from Otesse." });
        let event = WebhookEvent::new(endpoint.organization_id, EventType::Test, data, self.clock.now());
        let deliveries = self.repo.publish(&event, Some(endpoint.id), self.settings.max_attempts).await?;
        deliveries.into_iter().next().ok_or(WebhookError::NotFound)
    }

    pub async fn deliveries(
        &self,
        caller: &Caller,
        id: EndpointId,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<Delivery, Uuid>, WebhookError> {
        caller.require(VIEW)?;
        self.repo.endpoint(caller.organization_id(), id).await?.ok_or(WebhookError::NotFound)?;
        Ok(self.repo.deliveries(caller.organization_id(), id, page).await?)
    }

    /// Queues `event_type` with `data` for every subscribed endpoint of the organization; how
    /// many deliveries. Callers publish after their change is stored; a failure here is logged by
    /// them and does not undo the change.
    pub async fn publish(
        &self,
        organization: OrganizationId,
        event_type: EventType,
        data: Value,
    ) -> Result<usize, StorageError> {
        let event = WebhookEvent::new(organization, event_type, data, self.clock.now());
        Ok(self.repo.publish(&event, None, self.settings.max_attempts).await?.len())
    }

    /// Prunes the delivery log: finished deliveries older than [`KEEP_DELIVERIES_DAYS`].
    pub async fn prune(&self) -> Result<u64, StorageError> {
        self.repo.prune(self.clock.now() - Duration::days(KEEP_DELIVERIES_DAYS)).await
    }

    /// One attempt of a delivery, from the job worker. `retry_at` is when the job runs again if
    /// this attempt fails (None: this is the last one). `Err` asks the worker to retry.
    pub async fn deliver(&self, delivery_id: Uuid, retry_at: Option<DateTime<Utc>>) -> Result<String, String> {
        let found = self.repo.delivery(delivery_id).await.map_err(|e| e.to_string())?;
        let Some((delivery, endpoint, event)) = found else {
            return Ok("the endpoint was deleted".into());
        };
        if delivery.state != DeliveryState::Pending {
            return Ok(format!("already {}", delivery.state.as_str()));
        }
        let now = self.clock.now();
        let finished = |state, error: &str| Attempt {
            state,
            status: None,
            error: Some(error.to_owned()),
            response_ms: None,
            at: now,
            next_attempt_at: None,
        };
        if endpoint.status == EndpointStatus::Disabled && event.event_type != EventType::Test {
            let attempt = finished(DeliveryState::Failed, "the endpoint is disabled");
            self.repo.record_attempt(delivery.id, &attempt).await.map_err(|e| e.to_string())?;
            return Ok("the endpoint is disabled".into());
        }
        let secrets = self.secrets(&endpoint, now).await.map_err(|e| e.to_string())?;
        let outcome =
            self.sender.send(&endpoint.url, &secrets, &event.message_id(), now.timestamp(), &event.payload).await;
        let (status, error, response_ms, permanent) = match outcome {
            SendOutcome::Answered { status, response_ms } if (200..300).contains(&status) => {
                let attempt = Attempt {
                    state: DeliveryState::Succeeded,
                    status: Some(status),
                    error: None,
                    response_ms: Some(response_ms),
                    at: now,
                    next_attempt_at: None,
                };
                self.repo.record_attempt(delivery.id, &attempt).await.map_err(|e| e.to_string())?;
                self.repo.endpoint_succeeded(endpoint.id).await.map_err(|e| e.to_string())?;
                return Ok(format!("delivered ({status})"));
            }
            SendOutcome::Answered { status, response_ms } if (300..400).contains(&status) => (
                Some(status),
                format!("the receiver answered {status}; redirects are not followed"),
                Some(response_ms),
                false,
            ),
            SendOutcome::Answered { status, response_ms } => {
                (Some(status), format!("the receiver answered {status}"), Some(response_ms), false)
            }
            SendOutcome::Failed { error, response_ms } => (None, error, Some(response_ms), false),
            SendOutcome::Refused { reason } => (None, format!("the URL was refused: {reason}"), None, true),
        };
        let next = if permanent { None } else { retry_at };
        let attempt = Attempt {
            state: if next.is_some() { DeliveryState::Pending } else { DeliveryState::Failed },
            status,
            error: Some(error.clone()),
            response_ms,
            at: now,
            next_attempt_at: next,
        };
        self.repo.record_attempt(delivery.id, &attempt).await.map_err(|e| e.to_string())?;
        let reason = format!(
            "Disabled after {} consecutive failed delivery attempts; the last: {error}.",
            self.settings.disable_after_failures
        );
        let disabled = self
            .repo
            .endpoint_failed(endpoint.id, self.settings.disable_after_failures, &reason, now)
            .await
            .map_err(|e| e.to_string())?;
        if disabled {
            self.notify_disabled(&endpoint, &reason, now).await.map_err(|e| e.to_string())?;
        }
        match next {
            Some(_) => Err(error),
            None => Ok(format!("given up: {error}")),
        }
    }

    async fn secrets(&self, endpoint: &WebhookEndpoint, now: DateTime<Utc>) -> Result<Vec<SecretString>, StorageError> {
        let Some(stored) = self.repo.secrets(endpoint.id).await? else {
            return Ok(Vec::new());
        };
        let bound = binding(endpoint.organization_id, endpoint.id);
        let unseal = |sealed: &Ciphertext| {
            self.cipher
                .decrypt(sealed, &bound)
                .map_err(|_| StorageError::new(format!("webhook endpoint {} secret does not decrypt", endpoint.id.0)))
        };
        let mut secrets = vec![unseal(&stored.current)?];
        // A previous secret whose master key was retired meanwhile is simply no longer sent.
        if let Some((previous, until)) = &stored.previous
            && *until > now
            && let Ok(previous) = unseal(previous)
        {
            secrets.push(previous);
        }
        Ok(secrets)
    }

    async fn notify_disabled(
        &self,
        endpoint: &WebhookEndpoint,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let notification = Notification {
            id: Uuid::now_v7(),
            organization_id: endpoint.organization_id,
            user_id: endpoint.created_by,
            kind: NotificationKind::WebhookEndpointDisabled,
            title: "A webhook endpoint was disabled".into(),
            body: format!(
                "Deliveries to {} kept failing, so the endpoint was disabled. {reason} Fix the receiver, then \
                 enable the endpoint again.",
                endpoint.url
            ),
            subject: format!("webhook_endpoint:{}", endpoint.id.0),
            created_at: now,
            read_at: None,
        };
        let dedupe = format!("webhook_endpoint.disabled:{}:{}", endpoint.id.0, now.timestamp_millis());
        self.notifications.insert(&notification, &dedupe).await?;
        Ok(())
    }
}

/// The `data` of the `api_key.*` events: what identifies the key, never its secret.
pub fn api_key_data(key: &ApiKey) -> Value {
    json!({
        "id": key.id.0,
        "name": key.name.as_str(),
        "environment": key.environment.as_str(),
        "scope_level": key.scope_level.as_str(),
        "scopes": key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "last4": key.last4,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
    })
}

/// The `data` of the `integration.*` events.
pub fn connection_data(connection_id: Uuid, provider: &str, health: Option<&HealthCheck>) -> Value {
    let mut data = json!({ "connection_id": connection_id, "provider": provider });
    if let Some(check) = health {
        data["health_check"] = json!({
            "outcome": check.outcome.as_str(),
            "detail": check.detail,
            "checked_at": check.checked_at,
        });
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::MockNotificationRepository;
    use crate::ports::MockClock;
    use crate::ports::MockCredentialCipher;
    use crate::user::Role;
    use secrecy::ExposeSecret;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn org() -> OrganizationId {
        OrganizationId(Uuid::from_u128(1))
    }

    fn admin() -> Caller {
        crate::caller::fixtures::user(Role::Admin)
    }

    fn endpoint() -> WebhookEndpoint {
        WebhookEndpoint {
            id: EndpointId(Uuid::from_u128(3)),
            organization_id: org(),
            url: "https://hooks.example.com/otesse".into(),
            description: String::new(),
            events: vec![EventType::ApiKeyRevoked],
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            consecutive_failures: 0,
            created_by: UserId(Uuid::from_u128(2)),
            created_at: now(),
            updated_at: now(),
        }
    }

    fn delivery() -> Delivery {
        Delivery {
            id: Uuid::from_u128(4),
            organization_id: org(),
            endpoint_id: endpoint().id,
            event_id: Uuid::from_u128(5),
            event_type: EventType::ApiKeyRevoked,
            state: DeliveryState::Pending,
            attempts: 0,
            last_status: None,
            last_error: None,
            last_response_ms: None,
            last_attempt_at: None,
            next_attempt_at: None,
            created_at: now(),
        }
    }

    fn service(
        repo: MockWebhookRepository,
        sender: MockWebhookSender,
        notifications: MockNotificationRepository,
    ) -> WebhookService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        let mut cipher = MockCredentialCipher::new();
        cipher.expect_encrypt().returning(|_, _| Ciphertext { key_version: 1, bytes: b"sealed".to_vec() });
        cipher.expect_decrypt().returning(|c, _| Ok(SecretString::from(String::from_utf8(c.bytes.clone()).unwrap())));
        WebhookService {
            repo: Arc::new(repo),
            sender: Arc::new(sender),
            cipher: Arc::new(cipher),
            notifications: Arc::new(notifications),
            clock: Arc::new(clock),
            settings: WebhookSettings { max_attempts: 3, disable_after_failures: 2, max_endpoints: 2 },
        }
    }

    fn input(url: &str, events: &[&str]) -> EndpointInput {
        EndpointInput {
            url: Some(url.into()),
            events: Some(events.iter().map(|e| e.to_string()).collect()),
            ..EndpointInput::default()
        }
    }

    #[test]
    fn the_catalog_names_round_trip() {
        for event in EventType::ALL {
            assert_eq!(EventType::parse(event.as_str()), Some(event));
            assert!(!event.description().is_empty());
        }
        assert_eq!(EventType::parse("api_key.deleted"), None);
    }

    #[test]
    fn the_payload_names_the_event_and_holds_the_data() {
        let event = WebhookEvent::new(org(), EventType::ApiKeyRevoked, json!({"id": "k"}), now());
        let body: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(body["type"], "api_key.revoked");
        assert_eq!(body["id"], event.message_id());
        assert!(event.message_id().starts_with("msg_"));
        assert_eq!(body["data"]["id"], "k");
        assert_eq!(body["timestamp"], "2027-01-15T08:00:00.000Z");
    }

    #[tokio::test]
    async fn create_refuses_bad_input_before_storing_anything() {
        let mut sender = MockWebhookSender::new();
        sender.expect_check_url().returning(|_| Err("the URL's host resolves to a private address".into()));
        let svc = service(MockWebhookRepository::new(), sender, MockNotificationRepository::new());
        let unknown = svc.create(&admin(), input("https://x.example", &["api_key.deleted"])).await;
        assert!(matches!(unknown, Err(WebhookError::UnknownEventType(e)) if e == "api_key.deleted"));
        let none = svc.create(&admin(), input("https://x.example", &[])).await;
        assert!(matches!(none, Err(WebhookError::Invalid(_))));
        let private = svc.create(&admin(), input("http://10.0.0.1/", &["api_key.revoked"])).await;
        assert!(matches!(private, Err(WebhookError::UrlRefused(r)) if r.contains("private")));
        let long =
            EndpointInput { description: Some("x".repeat(501)), ..input("https://x.example", &["webhook.test"]) };
        assert!(matches!(svc.create(&admin(), long).await, Err(WebhookError::Invalid(_))));
        let viewer = crate::caller::fixtures::user(Role::Viewer);
        assert!(matches!(
            svc.create(&viewer, input("https://x.example", &["webhook.test"])).await,
            Err(WebhookError::Forbidden(Denied::Role(Permission::SettingsEdit)))
        ));
    }

    #[tokio::test]
    async fn create_seals_a_fresh_secret_and_returns_it_once() {
        let mut sender = MockWebhookSender::new();
        sender.expect_check_url().returning(|u| Ok(format!("{u}/")));
        sender.expect_new_secret().returning(|| SecretString::from("whsec_abc".to_owned()));
        let mut repo = MockWebhookRepository::new();
        repo.expect_insert_endpoint()
            .withf(|e, sealed, limit| {
                e.url == "https://x.example/"
                    && e.events == [EventType::ApiKeyRevoked]
                    && sealed.bytes == b"sealed"
                    && *limit == 2
            })
            .times(1)
            .returning(|_, _, _| Ok(EndpointInsert::Inserted));
        let svc = service(repo, sender, MockNotificationRepository::new());
        let (endpoint, secret) =
            svc.create(&admin(), input("https://x.example", &["api_key.revoked", "api_key.revoked"])).await.unwrap();
        assert_eq!(secret.expose_secret(), "whsec_abc");
        assert_eq!(endpoint.status, EndpointStatus::Enabled);
    }

    #[tokio::test]
    async fn the_endpoint_limit_holds() {
        let mut sender = MockWebhookSender::new();
        sender.expect_check_url().returning(|u| Ok(u.to_owned()));
        sender.expect_new_secret().returning(|| SecretString::from("whsec_abc".to_owned()));
        let mut repo = MockWebhookRepository::new();
        repo.expect_insert_endpoint().times(1).returning(|_, _, _| Ok(EndpointInsert::LimitReached));
        let svc = service(repo, sender, MockNotificationRepository::new());
        let refused = svc.create(&admin(), input("https://x.example", &["webhook.test"])).await;
        assert!(matches!(refused, Err(WebhookError::LimitReached(2))));
    }

    fn repo_with_delivery(previous_until: Option<DateTime<Utc>>) -> MockWebhookRepository {
        let mut repo = MockWebhookRepository::new();
        repo.expect_delivery().returning(|_| {
            let event = WebhookEvent::new(org(), EventType::ApiKeyRevoked, json!({}), now());
            Ok(Some((delivery(), endpoint(), event)))
        });
        repo.expect_secrets().returning(move |_| {
            Ok(Some(EndpointSecrets {
                current: Ciphertext { key_version: 1, bytes: b"whsec_new".to_vec() },
                previous: previous_until
                    .map(|until| (Ciphertext { key_version: 1, bytes: b"whsec_old".to_vec() }, until)),
            }))
        });
        repo
    }

    #[tokio::test]
    async fn a_2xx_is_a_success_that_resets_the_failures() {
        let mut repo = repo_with_delivery(None);
        repo.expect_record_attempt()
            .withf(|_, a| a.state == DeliveryState::Succeeded && a.status == Some(204))
            .times(1)
            .returning(|_, _| Ok(()));
        repo.expect_endpoint_succeeded().times(1).returning(|_| Ok(()));
        repo.expect_endpoint_failed().never();
        let mut sender = MockWebhookSender::new();
        sender
            .expect_send()
            .withf(|url, secrets, id, ts, _| {
                url == "https://hooks.example.com/otesse"
                    && secrets.len() == 1
                    && id.starts_with("msg_")
                    && *ts == now().timestamp()
            })
            .returning(|_, _, _, _, _| SendOutcome::Answered { status: 204, response_ms: 5 });
        let svc = service(repo, sender, MockNotificationRepository::new());
        assert_eq!(svc.deliver(Uuid::from_u128(4), Some(now())).await, Ok("delivered (204)".into()));
    }

    #[tokio::test]
    async fn during_a_rotation_both_secrets_sign_and_after_it_only_the_new_one() {
        for (until, expected) in [(now() + Duration::hours(1), 2), (now() - Duration::seconds(1), 1)] {
            let mut repo = repo_with_delivery(Some(until));
            repo.expect_record_attempt().returning(|_, _| Ok(()));
            repo.expect_endpoint_succeeded().returning(|_| Ok(()));
            let mut sender = MockWebhookSender::new();
            sender
                .expect_send()
                .withf(move |_, secrets, _, _, _| {
                    secrets.len() == expected && secrets[0].expose_secret() == "whsec_new"
                })
                .times(1)
                .returning(|_, _, _, _, _| SendOutcome::Answered { status: 200, response_ms: 5 });
            let svc = service(repo, sender, MockNotificationRepository::new());
            svc.deliver(Uuid::from_u128(4), None).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_failure_is_retried_and_the_endpoint_disabled_once_at_the_threshold() {
        let retry = now() + Duration::seconds(30);
        let mut repo = repo_with_delivery(None);
        repo.expect_record_attempt()
            .withf(move |_, a| {
                a.state == DeliveryState::Pending && a.status == Some(500) && a.next_attempt_at == Some(retry)
            })
            .times(1)
            .returning(|_, _| Ok(()));
        repo.expect_endpoint_failed()
            .withf(|_, threshold, _, _| *threshold == 2)
            .times(1)
            .returning(|_, _, _, _| Ok(true));
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_insert()
            .withf(|n, _| {
                n.kind == NotificationKind::WebhookEndpointDisabled && n.user_id == UserId(Uuid::from_u128(2))
            })
            .times(1)
            .returning(|_, _| Ok(true));
        let mut sender = MockWebhookSender::new();
        sender.expect_send().returning(|_, _, _, _, _| SendOutcome::Answered { status: 500, response_ms: 5 });
        let svc = service(repo, sender, notifications);
        assert_eq!(svc.deliver(Uuid::from_u128(4), Some(retry)).await, Err("the receiver answered 500".into()));
    }

    #[tokio::test]
    async fn the_last_attempt_and_a_refused_url_give_up() {
        for (outcome, retry) in [
            (SendOutcome::Failed { error: "timed out".into(), response_ms: 10_000 }, None),
            (SendOutcome::Refused { reason: "private address".into() }, Some(now())),
        ] {
            let mut repo = repo_with_delivery(None);
            repo.expect_record_attempt()
                .withf(|_, a| a.state == DeliveryState::Failed && a.next_attempt_at.is_none())
                .times(1)
                .returning(|_, _| Ok(()));
            repo.expect_endpoint_failed().returning(|_, _, _, _| Ok(false));
            let mut sender = MockWebhookSender::new();
            sender.expect_send().return_once(move |_, _, _, _, _| outcome);
            let svc = service(repo, sender, MockNotificationRepository::new());
            let result = svc.deliver(Uuid::from_u128(4), retry).await.unwrap();
            assert!(result.starts_with("given up"), "{result}");
        }
    }

    #[tokio::test]
    async fn nothing_is_sent_to_a_disabled_endpoint() {
        let mut repo = MockWebhookRepository::new();
        repo.expect_delivery().returning(|_| {
            let mut disabled = endpoint();
            disabled.status = EndpointStatus::Disabled;
            let event = WebhookEvent::new(org(), EventType::ApiKeyRevoked, json!({}), now());
            Ok(Some((delivery(), disabled, event)))
        });
        repo.expect_record_attempt().withf(|_, a| a.state == DeliveryState::Failed).times(1).returning(|_, _| Ok(()));
        let mut sender = MockWebhookSender::new();
        sender.expect_send().never();
        let svc = service(repo, sender, MockNotificationRepository::new());
        svc.deliver(Uuid::from_u128(4), Some(now())).await.unwrap();
    }
}
