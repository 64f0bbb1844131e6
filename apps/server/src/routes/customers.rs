//! Customers (P7): the resource API keys guard. The key's environment picks live or test data.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use otesse_domain::customer::{Customer, CustomerId, CustomerInput, CustomerPatchInput, CustomerService};
use otesse_domain::page::PageRequest;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::{ListResponse, PageQuery, created, parse_id};
use crate::error::ApiError;
use crate::extract::{ByKey, CustomersRoute};

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub id: uuid::Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `live` or `test`, from the key used.
    #[schema(schema_with = super::wire::environment)]
    pub environment: &'static str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Customer> for CustomerView {
    fn from(c: &Customer) -> Self {
        Self {
            id: c.id.0,
            name: c.name.clone(),
            email: c.email.as_ref().map(|e| e.as_str().to_owned()),
            phone: c.phone.clone(),
            environment: c.environment.as_str(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerRequest {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// `null` clears a field; an absent field is left alone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomerRequest {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
}

/// Tells "absent" (`None`, via `default`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// Customers of the key's organization and environment, newest first.
#[utoipa::path(get, path = "/v1/customers", operation_id = "listCustomers", tag = "api", params(PageQuery), security(("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ListResponse<CustomerView>), crate::openapi::errors::Keyed))]
pub async fn list(
    customers: web::Data<CustomerService>,
    auth: ByKey<CustomersRoute>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<ListResponse<CustomerView>>, ApiError> {
    let page = PageRequest::new(query.limit, query.cursor::<uuid::Uuid>()?.map(CustomerId))?;
    let page = customers.list(&auth.caller, &page).await?;
    Ok(web::Json(ListResponse::new(page.items.iter().map(CustomerView::from).collect(), page.next.map(|id| id.0))))
}

/// Create a customer.
#[utoipa::path(post, path = "/v1/customers", operation_id = "createCustomer", tag = "api", params(crate::openapi::IdempotencyKey), request_body = CreateCustomerRequest, security(("api_key" = []), ("api_key_header" = [])), responses((status = 201, body = CustomerView), crate::openapi::errors::Keyed, crate::openapi::errors::JsonBody, crate::openapi::errors::Idempotent))]
pub async fn create(
    customers: web::Data<CustomerService>,
    auth: ByKey<CustomersRoute>,
    body: super::body::JsonObject<CreateCustomerRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let customer =
        customers.create(&auth.caller, CustomerInput { name: body.name, email: body.email, phone: body.phone }).await?;
    Ok(created(&CustomerView::from(&customer)))
}

/// One customer.
#[utoipa::path(get, path = "/v1/customers/{id}", operation_id = "getCustomer", tag = "api", params(("id" = uuid::Uuid, Path)), security(("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = CustomerView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound))]
pub async fn get(
    customers: web::Data<CustomerService>,
    auth: ByKey<CustomersRoute>,
    id: web::Path<String>,
) -> Result<web::Json<CustomerView>, ApiError> {
    let id = CustomerId(parse_id(&id, "customer")?);
    Ok(web::Json(CustomerView::from(&customers.get(&auth.caller, id).await?)))
}

/// Update a customer.
#[utoipa::path(patch, path = "/v1/customers/{id}", operation_id = "updateCustomer", tag = "api", params(("id" = uuid::Uuid, Path)), request_body = UpdateCustomerRequest, security(("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = CustomerView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::JsonBody))]
pub async fn update(
    customers: web::Data<CustomerService>,
    auth: ByKey<CustomersRoute>,
    id: web::Path<String>,
    body: super::body::JsonObject<UpdateCustomerRequest>,
) -> Result<web::Json<CustomerView>, ApiError> {
    let id = CustomerId(parse_id(&id, "customer")?);
    let body = body.into_inner();
    let patch = CustomerPatchInput { name: body.name, email: body.email, phone: body.phone };
    Ok(web::Json(CustomerView::from(&customers.update(&auth.caller, id, patch).await?)))
}

/// Delete a customer.
#[utoipa::path(delete, path = "/v1/customers/{id}", operation_id = "deleteCustomer", tag = "api", params(("id" = uuid::Uuid, Path)), security(("api_key" = []), ("api_key_header" = [])), responses((status = 204, description = "Deleted"), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound))]
pub async fn delete(
    customers: web::Data<CustomerService>,
    auth: ByKey<CustomersRoute>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = CustomerId(parse_id(&id, "customer")?);
    customers.delete(&auth.caller, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
