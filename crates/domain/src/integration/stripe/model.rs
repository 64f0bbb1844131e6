//! Stripe's webhook endpoints and received events, and the rules on what registers them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StorageError;
use crate::integration::ConnectionView;
use crate::organization::OrganizationId;
use crate::sealed::SecretOwner;

/// Endpoints one connection may have.
pub const MAX_ENDPOINTS_PER_CONNECTION: usize = 16;
/// Event types one endpoint may list.
const MAX_EVENTS: usize = 100;

/// An endpoint registered in Stripe whose deliveries Otesse receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeWebhookEndpoint {
    /// The endpoint's id: the last segment of the URL Stripe delivers to.
    pub id: Uuid,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// The Stripe connection it belongs to; disconnecting deletes it.
    pub connection_id: Uuid,
    /// What it is for, up to 200 characters; possibly empty.
    pub description: String,
    /// Stripe event types (`charge.succeeded`), or `*` for all.
    pub events: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When its newest event arrived (read, not stored).
    pub last_event_at: Option<DateTime<Utc>>,
}

impl StripeWebhookEndpoint {
    /// What its signing secret is bound to.
    pub fn secret_owner(&self) -> SecretOwner {
        SecretOwner::StripeSigningSecret { organization: self.organization_id, endpoint: self.id }
    }
}

/// A verified event as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEvent {
    /// The stored event's own id.
    pub id: Uuid,
    /// The endpoint that received it.
    pub endpoint_id: Uuid,
    /// The endpoint's organization.
    pub organization_id: OrganizationId,
    /// Stripe's id (`evt_...`), the de-duplication key.
    pub event_id: String,
    /// Stripe's event type (`charge.succeeded`).
    pub event_type: String,
    /// Whether Stripe sent it from live mode.
    pub livemode: bool,
    /// The body exactly as Stripe sent it.
    pub payload: String,
    /// When Otesse received it.
    pub received_at: DateTime<Utc>,
}

/// What the receiving route read from the body before the signature is checked (untrusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEventHeader {
    /// Stripe's event id (`evt_...`).
    pub event_id: String,
    /// Stripe's event type (`charge.succeeded`).
    pub event_type: String,
    /// Whether the body says it comes from live mode.
    pub livemode: bool,
}

/// Why a Stripe webhook endpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookEndpointError {
    /// An event type is neither `*` nor dotted lower-case words (`charge.succeeded`).
    #[error("events must list 1 to 100 Stripe event types such as \"charge.succeeded\", or \"*\"; {0:?} is not one")]
    InvalidEvent(String),
    /// The list is empty or holds more than 100 event types.
    #[error("events must list 1 to 100 Stripe event types such as \"charge.succeeded\", or \"*\"")]
    NoEvents,
    /// The signing secret is not `whsec_` and 1 to 250 visible ASCII characters.
    #[error("signing_secret must be the endpoint's signing secret from Stripe, starting with whsec_")]
    InvalidSecret,
    /// The description is longer than 200 characters or holds a control character.
    #[error("description must be at most 200 characters, without control characters")]
    InvalidDescription,
    /// The connection already has [`MAX_ENDPOINTS_PER_CONNECTION`] endpoints.
    #[error("A connection has at most 16 webhook endpoints.")]
    TooMany,
}

/// Checks and normalises the event list: trimmed, de-duplicated, in the given order.
pub fn parse_events(raw: &[String]) -> Result<Vec<String>, WebhookEndpointError> {
    if raw.is_empty() || raw.len() > MAX_EVENTS {
        return Err(WebhookEndpointError::NoEvents);
    }
    let mut events: Vec<String> = Vec::with_capacity(raw.len());
    for event in raw {
        let event = event.trim();
        let valid = event == "*"
            || (event.len() <= 100
                && event.split('.').count() >= 2
                && event.split('.').all(|part| {
                    !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                }));
        if !valid {
            return Err(WebhookEndpointError::InvalidEvent(event.chars().take(100).collect()));
        }
        if !events.iter().any(|e| e == event) {
            events.push(event.to_owned());
        }
    }
    Ok(events)
}

/// A Stripe signing secret: `whsec_` and 1 to 250 visible ASCII characters.
pub fn check_secret(secret: &str) -> Result<(), WebhookEndpointError> {
    let rest = secret.strip_prefix("whsec_").ok_or(WebhookEndpointError::InvalidSecret)?;
    if rest.is_empty() || rest.len() > 250 || !rest.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WebhookEndpointError::InvalidSecret);
    }
    Ok(())
}

pub(super) fn parse_description(raw: Option<&str>) -> Result<String, WebhookEndpointError> {
    let description = raw.unwrap_or_default().trim();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        return Err(WebhookEndpointError::InvalidDescription);
    }
    Ok(description.to_owned())
}

/// Why a `Stripe-Signature` header does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is absent or empty.
    #[error("the Stripe-Signature header is missing")]
    Missing,
    /// The header has no `t=` timestamp, no `v1=` signature, or a badly formed one.
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    /// The timestamp is further from now than the tolerance, either way: a replay or a wrong
    /// clock.
    #[error("the signature's timestamp is outside the tolerance window")]
    OutsideTolerance,
    /// Well-formed, but no signature was made with the endpoint's secret over this body and time.
    #[error("no signature matches")]
    Mismatch,
}

/// Why an inbound delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    /// No endpoint has this id.
    #[error("No such webhook endpoint.")]
    UnknownEndpoint,
    /// The signature did not verify; nothing was stored.
    #[error("The webhook signature could not be verified: {0}.")]
    Signature(SignatureError),
    /// The store failed, or the endpoint's signing secret does not decrypt.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What happened to a verified delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Verified and stored.
    Stored,
    /// Stripe sent this event before (a retry): acknowledged, not stored again.
    Duplicate,
}

/// The Stripe connection's status view (I11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeStatus {
    /// The Stripe connection.
    pub view: ConnectionView,
    /// Its webhook endpoints, oldest first.
    pub endpoints: Vec<StripeWebhookEndpoint>,
    /// When the newest event arrived at any of them; `None` if none ever did.
    pub last_event_at: Option<DateTime<Utc>>,
}
