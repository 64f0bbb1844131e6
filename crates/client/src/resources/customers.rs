//! `/v1/customers`.

use futures_util::Stream;
use reqwest::Method;
use uuid::Uuid;

use crate::generated::{CreateCustomerRequest, CustomerView, ListResponseCustomerView, UpdateCustomerRequest};
use crate::{Client, Error, ListParams};

/// `/v1/customers` (see [`Client::customers`]).
#[derive(Debug, Clone, Copy)]
pub struct Customers<'a> {
    pub(super) client: &'a Client,
}

impl Customers<'_> {
    /// `GET /v1/customers`: every customer of the key's organization and environment, newest
    /// first, fetched `limit` per page (default 20) as the stream is read.
    pub fn list(&self, limit: Option<u32>) -> impl Stream<Item = Result<CustomerView, Error>> + Send + 'static {
        self.client.items::<ListResponseCustomerView>(vec!["customers".into()], limit)
    }

    /// `GET /v1/customers`, one page.
    pub async fn list_page(&self, params: &ListParams) -> Result<ListResponseCustomerView, Error> {
        self.client.page(&["customers"], params).await
    }

    /// `POST /v1/customers`, with an `Idempotency-Key`: retries never make a second customer.
    pub async fn create(&self, request: &CreateCustomerRequest) -> Result<CustomerView, Error> {
        self.client.post(&["customers"], Some(request)).await
    }

    /// `GET /v1/customers/{id}`.
    pub async fn get(&self, id: Uuid) -> Result<CustomerView, Error> {
        self.client.get(&["customers", &id.to_string()], &[]).await
    }

    /// `PATCH /v1/customers/{id}`: the fields that are `Some` change, the others stay. (The
    /// API also clears a field sent as `null`; the generated request cannot say `null`, so
    /// send `{"email": null}` through [`Client::send_with_idempotency_key`] for that.)
    pub async fn update(&self, id: Uuid, request: &UpdateCustomerRequest) -> Result<CustomerView, Error> {
        self.client.send_json(Method::PATCH, &["customers", &id.to_string()], request).await
    }

    /// `DELETE /v1/customers/{id}`.
    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        self.client.delete(&["customers", &id.to_string()]).await
    }
}
