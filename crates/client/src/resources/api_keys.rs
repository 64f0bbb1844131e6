//! `/v1/api-keys`.

use futures_util::Stream;
use uuid::Uuid;

use crate::generated::{
    CreateKeyRequest, CreatedKeyView, KeyDetailView, KeyView, ListResponseKeyView, ListResponseUsageView,
    RotateKeyRequest, UsageView,
};
use crate::{Client, Error, ListParams};

/// `/v1/api-keys` (see [`Client::api_keys`]).
#[derive(Debug, Clone, Copy)]
pub struct ApiKeys<'a> {
    pub(super) client: &'a Client,
}

impl ApiKeys<'_> {
    /// `POST /v1/api-keys`: a new key; its plaintext is in `key`, shown this once. Sent with
    /// an `Idempotency-Key`: a retry whose first attempt made the key fails with
    /// [`Error::SecretAlreadyShown`] (naming the key) rather than making a second one.
    pub async fn create(&self, request: &CreateKeyRequest) -> Result<CreatedKeyView, Error> {
        self.client.post(&["api-keys"], Some(request)).await
    }

    /// `GET /v1/api-keys`: every key of the organization, revoked and expired ones included.
    pub fn list(&self) -> impl Stream<Item = Result<KeyView, Error>> + Send + 'static {
        self.client.items::<ListResponseKeyView>(vec!["api-keys".into()], None)
    }

    /// `GET /v1/api-keys`, one page. (The key list is not paginated: at most 25 keys are
    /// active, so `has_more` is always false.)
    pub async fn list_page(&self, params: &ListParams) -> Result<ListResponseKeyView, Error> {
        self.client.page(&["api-keys"], params).await
    }

    /// `GET /v1/api-keys/{id}`: the key with its usage summary and recent requests.
    pub async fn get(&self, id: Uuid) -> Result<KeyDetailView, Error> {
        self.client.get(&["api-keys", &id.to_string()], &[]).await
    }

    /// `POST /v1/api-keys/{id}/rotate`: a successor key (plaintext in `key`, shown once).
    pub async fn rotate(&self, id: Uuid, request: &RotateKeyRequest) -> Result<CreatedKeyView, Error> {
        self.client.post(&["api-keys", &id.to_string(), "rotate"], Some(request)).await
    }

    /// `POST /v1/api-keys/{id}/revoke`: the key stops working at once (again is harmless).
    pub async fn revoke(&self, id: Uuid) -> Result<KeyView, Error> {
        self.client.post::<(), _>(&["api-keys", &id.to_string(), "revoke"], None).await
    }

    /// `GET /v1/api-keys/{id}/usage`: every logged request of the key, newest first, `limit`
    /// per page.
    pub fn usage(&self, id: Uuid, limit: Option<u32>) -> impl Stream<Item = Result<UsageView, Error>> + Send + 'static {
        self.client.items::<ListResponseUsageView>(vec!["api-keys".into(), id.to_string(), "usage".into()], limit)
    }

    /// `GET /v1/api-keys/{id}/usage`, one page.
    pub async fn usage_page(&self, id: Uuid, params: &ListParams) -> Result<ListResponseUsageView, Error> {
        self.client.page(&["api-keys", &id.to_string(), "usage"], params).await
    }
}
