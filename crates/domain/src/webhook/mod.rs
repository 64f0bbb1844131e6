//! Outbound webhooks (W3): endpoints an organization registers, the event-type catalog, and the
//! delivery of every event to the endpoints subscribed to it.
//!
//! Events are stored by the outbox (see [`crate::event`]): in the transaction of the change
//! that caused them, storage writes the event, one delivery per subscribed enabled endpoint,
//! and one durable job per delivery (O5), so a stored change is announced and a refused one is
//! not. The job worker calls [`WebhookService::deliver`]; the job queue's backoff (30 s
//! doubling to an hour, with jitter) spaces the attempts, and a delivery is given up after the
//! deployment's attempts (its job's). Every attempt that fails adds to the endpoint's count of
//! consecutive failures (a success resets it); at [`WebhookSettings::disable_after_failures`]
//! the endpoint is disabled, once, and its owner notified.
//!
//! Deliveries follow the Standard Webhooks scheme: `webhook-id` (`msg_...`, the event's id),
//! `webhook-timestamp`, `webhook-signature` (`v1,<base64>` per secret, both the new and the old
//! secret for [`PREVIOUS_SECRET_HOURS`] after a rotation). The signing happens in the
//! [`WebhookSender`] adapter; this module only hands it the secrets it unsealed.

mod delivery;
mod endpoints;
mod model;
mod ports;
#[cfg(test)]
mod testing;

pub use endpoints::{EndpointInput, WebhookError, WebhookService};
pub use model::{
    Attempt, Delivery, DeliveryState, EndpointId, EndpointSecrets, EndpointStatus, KEEP_DELIVERIES_DAYS,
    MAX_DESCRIPTION_CHARS, PREVIOUS_SECRET_HOURS, SendOutcome, WebhookEndpoint, WebhookEvent, WebhookSettings,
};
pub use ports::{EndpointInsert, WebhookRepository, WebhookSender};
#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockWebhookRepository, MockWebhookSender};
