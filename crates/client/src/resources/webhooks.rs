//! `/v1/webhook-endpoints` and `/v1/event-types`. To check a delivery's signature, see
//! [`crate::webhooks`].

use futures_util::Stream;
use reqwest::Method;
use uuid::Uuid;

use crate::generated::{
    CreateEndpointRequest, DeliveryView, EndpointView, EndpointWithSecret, EventTypeList, ListResponseDeliveryView,
    ListResponseEndpointView, SecretView, UpdateEndpointRequest,
};
use crate::{Client, Error, ListParams};

/// Outbound webhooks (see [`Client::webhooks`]).
#[derive(Debug, Clone, Copy)]
pub struct Webhooks<'a> {
    pub(super) client: &'a Client,
}

impl Webhooks<'_> {
    /// `GET /v1/event-types`: the events an endpoint can subscribe to.
    pub async fn event_types(&self) -> Result<EventTypeList, Error> {
        self.client.get(&["event-types"], &[]).await
    }

    /// `POST /v1/webhook-endpoints`: a new endpoint; its signing `secret` (`whsec_...`) is
    /// shown this once. Sent with an `Idempotency-Key`: a retry whose first attempt made the
    /// endpoint fails with [`Error::SecretAlreadyShown`] naming it.
    pub async fn create(&self, request: &CreateEndpointRequest) -> Result<EndpointWithSecret, Error> {
        self.client.post(&["webhook-endpoints"], Some(request)).await
    }

    /// `GET /v1/webhook-endpoints`: every endpoint (at most 16), never a secret.
    pub async fn list(&self) -> Result<ListResponseEndpointView, Error> {
        self.client.get(&["webhook-endpoints"], &[]).await
    }

    /// `GET /v1/webhook-endpoints/{id}`.
    pub async fn get(&self, id: Uuid) -> Result<EndpointView, Error> {
        self.client.get(&["webhook-endpoints", &id.to_string()], &[]).await
    }

    /// `PATCH /v1/webhook-endpoints/{id}`: the fields that are `Some` change.
    pub async fn update(&self, id: Uuid, request: &UpdateEndpointRequest) -> Result<EndpointView, Error> {
        self.client.send_json(Method::PATCH, &["webhook-endpoints", &id.to_string()], request).await
    }

    /// `DELETE /v1/webhook-endpoints/{id}`, with its delivery log.
    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        self.client.delete(&["webhook-endpoints", &id.to_string()]).await
    }

    /// `POST /v1/webhook-endpoints/{id}/rotate-secret`: a new secret; the old one keeps
    /// signing for 24 hours.
    pub async fn rotate_secret(&self, id: Uuid) -> Result<SecretView, Error> {
        self.client.post::<(), _>(&["webhook-endpoints", &id.to_string(), "rotate-secret"], None).await
    }

    /// `POST /v1/webhook-endpoints/{id}/test`: queues a `webhook.test` delivery.
    pub async fn send_test(&self, id: Uuid) -> Result<DeliveryView, Error> {
        self.client.post::<(), _>(&["webhook-endpoints", &id.to_string(), "test"], None).await
    }

    /// `GET /v1/webhook-endpoints/{id}/deliveries`: the delivery log, newest first, `limit`
    /// per page.
    pub fn deliveries(
        &self,
        id: Uuid,
        limit: Option<u32>,
    ) -> impl Stream<Item = Result<DeliveryView, Error>> + Send + 'static {
        self.client.items::<ListResponseDeliveryView>(
            vec!["webhook-endpoints".into(), id.to_string(), "deliveries".into()],
            limit,
        )
    }

    /// `GET /v1/webhook-endpoints/{id}/deliveries`, one page.
    pub async fn deliveries_page(&self, id: Uuid, params: &ListParams) -> Result<ListResponseDeliveryView, Error> {
        self.client.page(&["webhook-endpoints", &id.to_string(), "deliveries"], params).await
    }
}
