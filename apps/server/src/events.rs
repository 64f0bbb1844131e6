//! The domain's [`EventPublisher`] port on the webhook service (W3): a change the services
//! have stored is queued for every subscribed endpoint. A failure to queue is logged, never
//! answered: the change itself happened.

use otesse_domain::organization::OrganizationId;
use otesse_domain::webhook::{EventPublisher, EventType, WebhookService};

/// Queues `event` for the organization's subscribed endpoints, logging a failure.
pub async fn publish(
    webhooks: &WebhookService,
    organization: OrganizationId,
    event: EventType,
    data: serde_json::Value,
) {
    if let Err(err) = webhooks.publish(organization, event, data).await {
        tracing::error!(error = %err, event = event.as_str(), "could not queue a webhook event");
    }
}

/// What the API-key and integration services announce through.
#[derive(Clone)]
pub struct WebhookEvents(pub WebhookService);

#[async_trait::async_trait]
impl EventPublisher for WebhookEvents {
    async fn publish(&self, organization: OrganizationId, event: EventType, data: serde_json::Value) {
        publish(&self.0, organization, event, data).await;
    }
}
