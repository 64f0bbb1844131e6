//! Outbound webhooks (W3): endpoints, their delivery log, the test event, secret rotation and
//! the event-type catalog. Users with settings.view read and settings.edit change; API keys
//! need `webhooks.manage` (and an admin scope level, like every settings resource).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use otesse_domain::event::EventKind;
use otesse_domain::page::PageRequest;
use otesse_domain::webhook::{Delivery, EndpointId, EndpointInput, EndpointStatus, WebhookEndpoint, WebhookService};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ListResponse, PageQuery, created, parse_id};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ByEither, WebhooksRoute};
use crate::idempotency::shown_once;

impl From<otesse_domain::webhook::WebhookError> for ApiError {
    fn from(err: otesse_domain::webhook::WebhookError) -> Self {
        use otesse_domain::webhook::WebhookError as E;
        match err {
            E::Invalid(_) | E::UnknownEventType(_) => ApiError::new(ErrorCode::InvalidParameter, err.to_string()),
            E::UrlRefused(_) => ApiError::new(ErrorCode::UrlNotAllowed, err.to_string()),
            E::LimitReached(_) => ApiError::new(ErrorCode::ResourceLimitReached, err.to_string()),
            E::NotFound => ApiError::not_found("webhook endpoint"),
            E::Forbidden(denied) => denied.into(),
            E::Storage(err) => err.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeView {
    #[schema(schema_with = super::wire::event_type)]
    pub name: &'static str,
    pub description: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeList {
    pub data: Vec<EventTypeView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: uuid::Uuid,
    pub url: String,
    pub description: String,
    #[schema(schema_with = super::wire::event_types)]
    pub events: Vec<&'static str>,
    /// `enabled` or `disabled`.
    #[schema(schema_with = super::wire::endpoint_status)]
    pub status: &'static str,
    pub disabled_reason: Option<String>,
    /// Failed attempts since the last success; the endpoint is disabled when it reaches the
    /// deployment's threshold (20 by default).
    pub consecutive_failures: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&WebhookEndpoint> for EndpointView {
    fn from(e: &WebhookEndpoint) -> Self {
        Self {
            id: e.id.0,
            url: e.url.clone(),
            description: e.description.clone(),
            events: e.events.iter().map(|t| t.as_str()).collect(),
            status: e.status.as_str(),
            disabled_reason: e.disabled_reason.clone(),
            consecutive_failures: e.consecutive_failures,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// The endpoint with its signing secret: answered once, on create (and the new secret on a
/// rotation).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_...`: verify deliveries with it. Shown only now.
    #[schema(format = Password)]
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    /// The new `whsec_...` secret. The previous one keeps signing deliveries for 24 hours.
    #[schema(format = Password)]
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: uuid::Uuid,
    /// The `webhook-id` the receiver saw (the same on every attempt).
    pub message_id: String,
    #[schema(schema_with = super::wire::event_type)]
    pub event_type: &'static str,
    /// `pending`, `succeeded` or `failed`.
    #[schema(schema_with = super::wire::delivery_state)]
    pub state: &'static str,
    pub attempts: u32,
    /// The receiver's HTTP status on the last attempt, when it answered.
    pub response_status: Option<u16>,
    pub error: Option<String>,
    pub response_time_ms: Option<u32>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id,
            message_id: format!("msg_{}", d.event_id.simple()),
            event_type: d.event_type.as_str(),
            state: d.state.as_str(),
            attempts: d.attempts,
            response_status: d.last_status,
            error: d.last_error.clone(),
            response_time_ms: d.last_response_ms,
            last_attempt_at: d.last_attempt_at,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// https (http and loopback only where the deployment allows them); never a private address.
    pub url: String,
    /// Event types from `GET /v1/event-types`.
    #[schema(schema_with = super::wire::event_types)]
    pub events: Vec<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointRequest {
    pub url: Option<String>,
    #[schema(schema_with = super::wire::optional_event_types)]
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// `enabled` (also resets the failure count) or `disabled`.
    #[schema(schema_with = super::wire::optional_endpoint_status)]
    pub status: Option<String>,
}

fn endpoint_id(raw: &str) -> Result<EndpointId, ApiError> {
    Ok(EndpointId(parse_id(raw, "webhook endpoint")?))
}

/// The event types endpoints can subscribe to.
#[utoipa::path(get, path = "/v1/event-types", operation_id = "listEventTypes", tag = "webhooks", security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = EventTypeList), crate::openapi::errors::Keyed))]
pub async fn event_types(_caller: ByEither<WebhooksRoute>) -> Result<web::Json<EventTypeList>, ApiError> {
    let data =
        EventKind::deliverable().map(|t| EventTypeView { name: t.as_str(), description: t.description() }).collect();
    Ok(web::Json(EventTypeList { data }))
}

/// Register an endpoint. The answer holds its signing secret, shown only this once.
#[utoipa::path(post, path = "/v1/webhook-endpoints", operation_id = "createWebhookEndpoint", tag = "webhooks", params(crate::openapi::IdempotencyKey), request_body = CreateEndpointRequest, security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 201, body = EndpointWithSecret), crate::openapi::errors::Keyed, crate::openapi::errors::JsonBody, crate::openapi::errors::Conflict, crate::openapi::errors::Idempotent))]
pub async fn create(
    service: web::Data<WebhookService>,
    caller: ByEither<WebhooksRoute>,
    body: super::body::JsonObject<CreateEndpointRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input =
        EndpointInput { url: Some(body.url), events: Some(body.events), description: body.description, status: None };
    let (endpoint, secret) = service.create(&caller.caller, input).await?;
    tracing::info!(webhook_endpoint_id = %endpoint.id.0, "webhook endpoint created");
    let answer = created(&EndpointWithSecret {
        endpoint: EndpointView::from(&endpoint),
        secret: secret.expose_secret().to_owned(),
    });
    Ok(shown_once(answer, format!("/v1/webhook-endpoints/{}", endpoint.id.0)))
}

/// The organization's endpoints, oldest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints", operation_id = "listWebhookEndpoints", tag = "webhooks", security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ListResponse<EndpointView>), crate::openapi::errors::Keyed))]
pub async fn list(
    service: web::Data<WebhookService>,
    caller: ByEither<WebhooksRoute>,
) -> Result<web::Json<ListResponse<EndpointView>>, ApiError> {
    let endpoints = service.list(&caller.caller).await?;
    Ok(web::Json(ListResponse::new(endpoints.iter().map(EndpointView::from).collect(), None::<String>)))
}

#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", operation_id = "getWebhookEndpoint", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "The webhook endpoint")), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = EndpointView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound))]
pub async fn get(
    service: web::Data<WebhookService>,
    caller: ByEither<WebhooksRoute>,
    id: web::Path<String>,
) -> Result<web::Json<EndpointView>, ApiError> {
    let endpoint = service.get(&caller.caller, endpoint_id(&id)?).await?;
    Ok(web::Json(EndpointView::from(&endpoint)))
}

/// Change the URL, events, description, or enable/disable the endpoint.
#[utoipa::path(patch, path = "/v1/webhook-endpoints/{id}", operation_id = "updateWebhookEndpoint", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "The webhook endpoint")), request_body = UpdateEndpointRequest, security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = EndpointView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::JsonBody))]
pub async fn update(
    service: web::Data<WebhookService>,
    caller: ByEither<WebhooksRoute>,
    id: web::Path<String>,
    body: super::body::JsonObject<UpdateEndpointRequest>,
) -> Result<web::Json<EndpointView>, ApiError> {
    let body = body.into_inner();
    let status = body
        .status
        .as_deref()
        .map(|raw| {
            EndpointStatus::parse(raw)
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidParameter, "`status` must be `enabled` or `disabled`."))
        })
        .transpose()?;
    let input = EndpointInput { url: body.url, events: body.events, description: body.description, status };
    let endpoint = service.update(&caller.caller, endpoint_id(&id)?, input).await?;
    Ok(web::Json(EndpointView::from(&endpoint)))
}

/// Delete the endpoint and its delivery log; queued deliveries to it are dropped.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", operation_id = "deleteWebhookEndpoint", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "The webhook endpoint")), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 204, description = "Deleted"), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound))]
pub async fn delete(
    service: web::Data<WebhookService>,
    caller: ByEither<WebhooksRoute>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    service.delete(&caller.caller, endpoint_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret, shown once; deliveries carry signatures under both secrets for 24 h.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", operation_id = "rotateWebhookEndpointSecret", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "The webhook endpoint"), crate::openapi::IdempotencyKey), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = SecretView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::Idempotent))]
pub async fn rotate_secret(
    service: web::Data<WebhookService>,
    caller: ByEither<WebhooksRoute>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = endpoint_id(&id)?;
    let secret = service.rotate_secret(&caller.caller, id).await?;
    let answer = HttpResponse::Ok().json(SecretView { secret: secret.expose_secret().to_owned() });
    Ok(shown_once(answer, format!("/v1/webhook-endpoints/{}", id.0)))
}

/// Queue a `webhook.test` event to this endpoint; its delivery shows in the log.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/test", operation_id = "sendWebhookEndpointTest", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "The webhook endpoint"), crate::openapi::IdempotencyKey), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 202, body = DeliveryView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::Idempotent))]
pub async fn send_test(
    service: web::Data<WebhookService>,
    caller: ByEither<WebhooksRoute>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let delivery = service.send_test(&caller.caller, endpoint_id(&id)?).await?;
    Ok(HttpResponse::Accepted().json(DeliveryView::from(&delivery)))
}

/// The endpoint's delivery log, newest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", operation_id = "listWebhookDeliveries", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "The webhook endpoint"), PageQuery), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ListResponse<DeliveryView>), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound))]
pub async fn deliveries(
    service: web::Data<WebhookService>,
    caller: ByEither<WebhooksRoute>,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<ListResponse<DeliveryView>>, ApiError> {
    let page = PageRequest::new(query.limit, query.cursor()?)?;
    let page = service.deliveries(&caller.caller, endpoint_id(&id)?, &page).await?;
    Ok(web::Json(ListResponse::new(page.items.iter().map(DeliveryView::from).collect(), page.next)))
}
