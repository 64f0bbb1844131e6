//! Stripe's post-connection resources (I11) and its inbound webhooks (W4).
//!
//! A webhook endpoint is what the organization registered in its Stripe dashboard: the events
//! it subscribed to and the signing secret (`whsec_...`) Stripe showed for it. The endpoint's
//! URL is Otesse's receiving route for it, so Stripe's deliveries land here; each one is
//! checked against that secret (with a tolerance window), de-duplicated by Stripe's event id,
//! and stored. The secret is sealed like a credential (AES-256-GCM, bound to the organization,
//! the endpoint and the field) and never shown again.
//!
//! Invariants:
//! - Nothing unverified is stored: an event is recorded only after its signature matched.
//! - One stored event per (endpoint, Stripe event id), however often Stripe retries.

mod model;
mod ports;
mod service;

pub use model::{
    MAX_ENDPOINTS_PER_CONNECTION, ReceiveError, Received, SignatureError, StripeEvent, StripeEventHeader, StripeStatus,
    StripeWebhookEndpoint, WebhookEndpointError, check_secret, parse_events,
};
#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockStripeSignatureVerifier, MockStripeWebhookRepository};
pub use ports::{StripeSignatureVerifier, StripeWebhookRepository};
pub use service::{StripeWebhookPorts, StripeWebhookService};
