//! `/v1/integrations/...`: the catalog and the organization's connections.

use uuid::Uuid;

use crate::generated::{
    Category, ConnectRequest, ConnectionDetailBody, ConnectionViewBody, HealthView, ListResponseConnectionViewBody,
    ListResponseHealthView, ListResponseProviderView, ProviderView,
};
use crate::{Client, Error};

/// `/v1/integrations` (see [`Client::integrations`]).
#[derive(Debug, Clone, Copy)]
pub struct Integrations<'a> {
    pub(super) client: &'a Client,
}

/// Narrows the catalog: a search text and a category.
#[derive(Debug, Clone, Default)]
pub struct ProviderFilter {
    /// Matched against names and descriptions.
    pub q: Option<String>,
    /// One category.
    pub category: Option<Category>,
}

impl Integrations<'_> {
    /// `GET /v1/integrations/providers`: the catalog with this organization's state of each.
    pub async fn providers(&self, filter: &ProviderFilter) -> Result<ListResponseProviderView, Error> {
        let mut query = Vec::new();
        if let Some(q) = &filter.q {
            query.push(("q", q.clone()));
        }
        if let Some(category) = filter.category {
            query.push(("category", category.to_string()));
        }
        self.client.get(&["integrations", "providers"], &query).await
    }

    /// `GET /v1/integrations/providers/{slug}`.
    pub async fn provider(&self, slug: &str) -> Result<ProviderView, Error> {
        self.client.get(&["integrations", "providers", slug], &[]).await
    }

    /// `POST /v1/integrations/providers/{slug}/connect`: checks the credentials with the
    /// provider, then stores them encrypted. Sent with an `Idempotency-Key`.
    pub async fn connect(&self, slug: &str, request: &ConnectRequest) -> Result<ConnectionViewBody, Error> {
        self.client.post(&["integrations", "providers", slug, "connect"], Some(request)).await
    }

    /// `GET /v1/integrations/connections`: the connected apps.
    pub async fn connections(&self) -> Result<ListResponseConnectionViewBody, Error> {
        self.client.get(&["integrations", "connections"], &[]).await
    }

    /// `GET /v1/integrations/connections/{id}`, with its recent health checks.
    pub async fn connection(&self, id: Uuid) -> Result<ConnectionDetailBody, Error> {
        self.client.get(&["integrations", "connections", &id.to_string()], &[]).await
    }

    /// `DELETE /v1/integrations/connections/{id}`: disconnects; the credentials are deleted.
    pub async fn disconnect(&self, id: Uuid) -> Result<(), Error> {
        self.client.delete(&["integrations", "connections", &id.to_string()]).await
    }

    /// `POST /v1/integrations/connections/{id}/health-checks`: checks the connection now.
    pub async fn check_health(&self, id: Uuid) -> Result<HealthView, Error> {
        self.client.post::<(), _>(&["integrations", "connections", &id.to_string(), "health-checks"], None).await
    }

    /// `GET /v1/integrations/connections/{id}/health-checks`: the check history.
    pub async fn health_checks(&self, id: Uuid) -> Result<ListResponseHealthView, Error> {
        self.client.get(&["integrations", "connections", &id.to_string(), "health-checks"], &[]).await
    }
}
