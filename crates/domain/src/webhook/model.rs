//! Outbound webhooks' records: endpoints, stored events, deliveries and their attempts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::{EventKind, message_id};
use crate::organization::OrganizationId;
use crate::sealed::{Ciphertext, EndpointSlot, SecretOwner};
use crate::user::UserId;

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
    pub events: Vec<EventKind>,
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
    pub fn subscribes_to(&self, event: EventKind) -> bool {
        self.events.contains(&event)
    }

    /// What one of its secrets is sealed to.
    pub fn secret_owner(&self, slot: EndpointSlot) -> SecretOwner {
        SecretOwner::OutboundEndpointSecret { organization: self.organization_id, endpoint: self.id.0, slot }
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
    pub event_type: EventKind,
    /// The JSON body sent: `{"id", "type", "timestamp", "data"}`, shaped by storage.
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

impl WebhookEvent {
    /// The `webhook-id` header: the same for every attempt, so receivers can de-duplicate.
    pub fn message_id(&self) -> String {
        message_id(self.id)
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
    pub event_type: EventKind,
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

/// The previous secret keeps signing deliveries this long after a rotation.
pub const PREVIOUS_SECRET_HOURS: i64 = 24;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Finished deliveries (and their events) are kept this long in the delivery log.
pub const KEEP_DELIVERIES_DAYS: i64 = 30;

/// How deliveries fail (how many attempts a delivery gets is the job queue's: storage queues
/// each delivery's job with the deployment's attempts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Consecutive failed attempts (across deliveries) that disable an endpoint.
    pub disable_after_failures: u32,
    /// Endpoints per organization.
    pub max_endpoints: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self { disable_after_failures: 20, max_endpoints: 16 }
    }
}
