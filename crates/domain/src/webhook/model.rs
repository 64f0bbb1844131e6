//! Outbound webhooks' records: endpoints, stored events, deliveries and their attempts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::event::{EventKind, message_id};
use crate::organization::OrganizationId;
use crate::sealed::{Ciphertext, EndpointSlot, SecretOwner};
use crate::user::UserId;

/// Identifies an outbound webhook endpoint: a UUID v7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub Uuid);

/// Whether an endpoint receives deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    /// Receives the events it subscribes to.
    Enabled,
    /// Disabled by its owner or after too many failed attempts; nothing is delivered to it.
    Disabled,
}

impl EndpointStatus {
    /// The name clients see: `enabled` or `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Enabled => "enabled",
            EndpointStatus::Disabled => "disabled",
        }
    }

    /// The status named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        [EndpointStatus::Enabled, EndpointStatus::Disabled].into_iter().find(|s| s.as_str() == raw)
    }
}

/// A registered endpoint. Its secrets are stored sealed beside it and never part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// The endpoint's id.
    pub id: EndpointId,
    /// The organization whose events it receives.
    pub organization_id: OrganizationId,
    /// The URL as the SSRF guard normalised it.
    pub url: String,
    /// What it is for, up to [`MAX_DESCRIPTION_CHARS`] characters; possibly empty.
    pub description: String,
    /// The event kinds it subscribes to; only delivered kinds ([`EventKind::delivered`]).
    pub events: Vec<EventKind>,
    /// Enabled or disabled.
    pub status: EndpointStatus,
    /// Why it is disabled, when it is.
    pub disabled_reason: Option<String>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Notified when the endpoint is disabled: the user, or the creator of the key, that made it.
    pub created_by: UserId,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When its settings or status last changed.
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    /// Whether it subscribes to events of `event`'s kind.
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
    /// The secret deliveries are signed with.
    pub current: Ciphertext,
    /// The secret before the last rotation, and until when deliveries are signed with it too.
    pub previous: Option<(Ciphertext, DateTime<Utc>)>,
}

/// One event, as delivered to every endpoint subscribed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The event's id: its webhook message id is derived from it ([`Self::message_id`]).
    pub id: Uuid,
    /// The organization it happened in.
    pub organization_id: OrganizationId,
    /// Its kind, the payload's `type`.
    pub event_type: EventKind,
    /// The JSON body sent: `{"id", "type", "timestamp", "data"}`, shaped by storage.
    pub payload: String,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl WebhookEvent {
    /// The `webhook-id` header: the same for every attempt, so receivers can de-duplicate.
    pub fn message_id(&self) -> String {
        message_id(self.id)
    }
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet delivered; an attempt is queued.
    Pending,
    /// The receiver answered 2xx.
    Succeeded,
    /// Given up: every attempt failed, the URL was refused, or the endpoint went away.
    Failed,
}

impl DeliveryState {
    /// The name clients see: `pending`, `succeeded` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
        }
    }

    /// The state named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        [DeliveryState::Pending, DeliveryState::Succeeded, DeliveryState::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// One event to one endpoint: the delivery log's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The delivery's id: the cursor of the delivery log, newest first.
    pub id: Uuid,
    /// The endpoint's organization.
    pub organization_id: OrganizationId,
    /// The endpoint it goes to.
    pub endpoint_id: EndpointId,
    /// The event it carries.
    pub event_id: Uuid,
    /// The event's kind.
    pub event_type: EventKind,
    /// Pending, succeeded or failed.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// The receiver's HTTP status on the last attempt, when it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed (never holds the URL or a secret).
    pub last_error: Option<String>,
    /// How long the last attempt took, in milliseconds, when it got that far.
    pub last_response_ms: Option<u32>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the delivery was queued, with its event.
    pub created_at: DateTime<Utc>,
}

/// The result of one attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The delivery's state after the attempt.
    pub state: DeliveryState,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it failed, when it did (never the URL or a secret).
    pub error: Option<String>,
    /// How long it took, in milliseconds, when it got that far.
    pub response_ms: Option<u32>,
    /// When it was made.
    pub at: DateTime<Utc>,
    /// When the next attempt is due, when one is.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What the receiver did with one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// It answered (any status; 2xx is a success, anything else including 3xx a failure).
    Answered {
        /// The HTTP status it answered with.
        status: u16,
        /// How long it took to answer, in milliseconds.
        response_ms: u32,
    },
    /// No answer: a timeout, a refused connection, TLS. Retried.
    Failed {
        /// What went wrong (never the URL or a secret).
        error: String,
        /// How long until it went wrong, in milliseconds.
        response_ms: u32,
    },
    /// The URL now resolves to a forbidden address (W5, checked at every delivery): not sent,
    /// not retried.
    Refused {
        /// Why the URL is refused.
        reason: String,
    },
}

/// The previous secret keeps signing deliveries this long after a rotation.
pub const PREVIOUS_SECRET_HOURS: i64 = 24;
/// The longest endpoint description, in characters.
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
