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
    pub id: Uuid,
    pub organization_id: OrganizationId,
    /// The Stripe connection it belongs to; disconnecting deletes it.
    pub connection_id: Uuid,
    pub description: String,
    /// Stripe event types (`charge.succeeded`), or `*` for all.
    pub events: Vec<String>,
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
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub organization_id: OrganizationId,
    /// Stripe's id (`evt_...`), the de-duplication key.
    pub event_id: String,
    pub event_type: String,
    pub livemode: bool,
    /// The body exactly as Stripe sent it.
    pub payload: String,
    pub received_at: DateTime<Utc>,
}

/// What the receiving route read from the body before the signature is checked (untrusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEventHeader {
    pub event_id: String,
    pub event_type: String,
    pub livemode: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookEndpointError {
    #[error("events must list 1 to 100 Stripe event types such as \"charge.succeeded\", or \"*\"; {0:?} is not one")]
    InvalidEvent(String),
    #[error("events must list 1 to 100 Stripe event types such as \"charge.succeeded\", or \"*\"")]
    NoEvents,
    #[error("signing_secret must be the endpoint's signing secret from Stripe, starting with whsec_")]
    InvalidSecret,
    #[error("description must be at most 200 characters, without control characters")]
    InvalidDescription,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance window")]
    OutsideTolerance,
    #[error("no signature matches")]
    Mismatch,
}

/// Why an inbound delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    #[error("No such webhook endpoint.")]
    UnknownEndpoint,
    #[error("The webhook signature could not be verified: {0}.")]
    Signature(SignatureError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What happened to a verified delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Stored,
    /// Stripe sent this event before (a retry): acknowledged, not stored again.
    Duplicate,
}

/// The Stripe connection's status view (I11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeStatus {
    pub view: ConnectionView,
    pub endpoints: Vec<StripeWebhookEndpoint>,
    pub last_event_at: Option<DateTime<Utc>>,
}
