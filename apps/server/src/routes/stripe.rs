//! Stripe's resources (I11: webhook endpoints, connection status, received events) and the
//! route Stripe delivers webhooks to (W4).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use otesse_domain::integration::{
    ReceiveError, Received, StripeEventHeader, StripeWebhookEndpoint, StripeWebhookService,
};
use otesse_domain::page::PageRequest;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::body_bytes;
use super::integrations::ConnectionViewBody;
use super::{ListResponse, PageQuery, created, parse_id};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ByEither, IntegrationsRoute};

/// Where Stripe should send an endpoint's events: `OTESSE_PUBLIC_URL` when set, otherwise the
/// scheme and host this request came in on.
#[derive(Debug, Clone)]
pub struct PublicUrl(pub Option<String>);

impl PublicUrl {
    /// The server's public base URL: the setting, else the scheme and host of the request.
    pub fn base(&self, req: &HttpRequest) -> String {
        match &self.0 {
            Some(base) => base.trim_end_matches('/').to_owned(),
            None => {
                let info = req.connection_info();
                format!("{}://{}", info.scheme(), info.host())
            }
        }
    }

    fn receiving_url(&self, req: &HttpRequest, endpoint: uuid::Uuid) -> String {
        format!("{}/v1/integrations/stripe/webhooks/{endpoint}", self.base(req))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointView {
    pub id: uuid::Uuid,
    /// The URL to register in Stripe for this endpoint.
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// When its newest event arrived.
    pub last_event_at: Option<DateTime<Utc>>,
}

impl WebhookEndpointView {
    fn new(endpoint: &StripeWebhookEndpoint, public: &PublicUrl, req: &HttpRequest) -> Self {
        Self {
            id: endpoint.id,
            url: public.receiving_url(req, endpoint.id),
            description: endpoint.description.clone(),
            events: endpoint.events.clone(),
            created_at: endpoint.created_at,
            last_event_at: endpoint.last_event_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointRequest {
    /// Stripe event types (`charge.succeeded`), or `["*"]` for all.
    pub events: Vec<String>,
    /// The endpoint's signing secret from Stripe (`whsec_...`); stored encrypted, never shown.
    #[schema(value_type = String, format = Password)]
    pub signing_secret: SecretString,
    pub description: Option<String>,
}

/// Stripe webhook endpoints of the connection, oldest first.
#[utoipa::path(get, path = "/v1/integrations/connections/{id}/webhook-endpoints", operation_id = "listStripeWebhookEndpoints", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection")), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ListResponse<WebhookEndpointView>), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered))]
pub async fn endpoints(
    service: web::Data<StripeWebhookService>,
    public: web::Data<PublicUrl>,
    caller: ByEither<IntegrationsRoute>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<web::Json<ListResponse<WebhookEndpointView>>, ApiError> {
    let listed = service.endpoints(&caller.caller, parse_id(&id, "connection")?).await?;
    let views = listed.iter().map(|e| WebhookEndpointView::new(e, &public, &req)).collect();
    Ok(web::Json(ListResponse::new::<String>(views, None)))
}

/// Register a Stripe webhook endpoint: the events it subscribes to and its signing secret.
/// The answer's `url` is where Stripe must send them.
#[utoipa::path(post, path = "/v1/integrations/connections/{id}/webhook-endpoints", operation_id = "createStripeWebhookEndpoint", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection"), crate::openapi::IdempotencyKey), request_body = WebhookEndpointRequest, security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 201, body = WebhookEndpointView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered, crate::openapi::errors::JsonBody, crate::openapi::errors::Conflict, crate::openapi::errors::Idempotent))]
pub async fn add_endpoint(
    service: web::Data<StripeWebhookService>,
    public: web::Data<PublicUrl>,
    caller: ByEither<IntegrationsRoute>,
    id: web::Path<String>,
    body: super::body::JsonObject<WebhookEndpointRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let endpoint = service
        .add_endpoint(
            &caller.caller,
            parse_id(&id, "connection")?,
            &body.events,
            &body.signing_secret,
            body.description.as_deref(),
        )
        .await?;
    Ok(created(&WebhookEndpointView::new(&endpoint, &public, &req)))
}

#[utoipa::path(delete, path = "/v1/integrations/connections/{id}/webhook-endpoints/{endpoint_id}", operation_id = "deleteStripeWebhookEndpoint", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection"), ("endpoint_id" = uuid::Uuid, Path, description = "The Stripe webhook endpoint")), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 204, description = "Deleted"), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered))]
pub async fn delete_endpoint(
    service: web::Data<StripeWebhookService>,
    caller: ByEither<IntegrationsRoute>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, endpoint) = path.into_inner();
    service.delete_endpoint(&caller.caller, parse_id(&id, "connection")?, parse_id(&endpoint, "resource")?).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StripeStatusView {
    pub connection: ConnectionViewBody,
    pub webhook_endpoints: usize,
    /// When the newest event arrived on any of its endpoints.
    pub last_event_at: Option<DateTime<Utc>>,
}

/// Stripe's connection status: the connection with its latest health check, its webhook
/// endpoints and when the newest event arrived.
#[utoipa::path(get, path = "/v1/integrations/connections/{id}/status", operation_id = "getStripeStatus", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection")), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = StripeStatusView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered))]
pub async fn status(
    service: web::Data<StripeWebhookService>,
    caller: ByEither<IntegrationsRoute>,
    id: web::Path<String>,
) -> Result<web::Json<StripeStatusView>, ApiError> {
    let status = service.status(&caller.caller, parse_id(&id, "connection")?).await?;
    Ok(web::Json(StripeStatusView {
        connection: ConnectionViewBody::from(&status.view),
        webhook_endpoints: status.endpoints.len(),
        last_event_at: status.last_event_at,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StripeEventView {
    pub id: uuid::Uuid,
    pub endpoint_id: uuid::Uuid,
    /// Stripe's id (`evt_...`).
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub livemode: bool,
    pub received_at: DateTime<Utc>,
    /// The event as Stripe sent it.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// Events received on the connection's endpoints, newest first.
#[utoipa::path(get, path = "/v1/integrations/connections/{id}/webhook-events", operation_id = "listStripeWebhookEvents", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection"), PageQuery), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ListResponse<StripeEventView>), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered))]
pub async fn events(
    service: web::Data<StripeWebhookService>,
    caller: ByEither<IntegrationsRoute>,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<ListResponse<StripeEventView>>, ApiError> {
    let page = PageRequest::new(query.limit, query.cursor()?)?;
    let page = service.events(&caller.caller, parse_id(&id, "connection")?, &page).await?;
    let views = page
        .items
        .into_iter()
        .map(|e| StripeEventView {
            id: e.id,
            endpoint_id: e.endpoint_id,
            event_id: e.event_id,
            event_type: e.event_type,
            livemode: e.livemode,
            received_at: e.received_at,
            payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    Ok(web::Json(ListResponse::new(views, page.next)))
}

/// The fields of a Stripe event the receiving route needs.
#[derive(Deserialize)]
struct EventEnvelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    livemode: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceivedView {
    pub received: bool,
    /// True when Stripe had sent this event before (a retry); it is not stored twice.
    pub duplicate: bool,
}

/// Where Stripe delivers an endpoint's events (W4). No session or key: the `Stripe-Signature`
/// header, checked against the endpoint's signing secret within a tolerance window, is the
/// authentication. Retries of an event are acknowledged without being stored again.
#[utoipa::path(post, path = "/v1/integrations/stripe/webhooks/{endpoint_id}", operation_id = "receiveStripeWebhook", tag = "integrations", params(("endpoint_id" = uuid::Uuid, Path, description = "The Stripe webhook endpoint"), ("Stripe-Signature" = String, Header, description = "Stripe's signature of the body")), request_body(content = Object, content_type = "application/json", description = "The Stripe event as Stripe sent it"), responses((status = 200, body = ReceivedView), crate::openapi::errors::BadRequest, crate::openapi::errors::NotFound, crate::openapi::errors::TooLarge, crate::openapi::errors::ServerError))]
pub async fn receive(
    service: web::Data<StripeWebhookService>,
    endpoint: web::Path<String>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<web::Json<ReceivedView>, ApiError> {
    let body = body_bytes(body)?;
    let endpoint = parse_id(&endpoint, "webhook endpoint")?;
    let envelope: EventEnvelope = serde_json::from_slice(&body)
        .map_err(|_| ApiError::new(ErrorCode::InvalidBody, "The body is not a Stripe event."))?;
    if envelope.id.is_empty() || envelope.id.len() > 255 || envelope.event_type.len() > 255 {
        return Err(ApiError::new(ErrorCode::InvalidBody, "The body is not a Stripe event."));
    }
    let header =
        StripeEventHeader { event_id: envelope.id, event_type: envelope.event_type, livemode: envelope.livemode };
    let signature = req.headers().get("stripe-signature").and_then(|v| v.to_str().ok());
    let received = service.receive(endpoint, signature, &body, &header).await.map_err(|err| match err {
        ReceiveError::UnknownEndpoint => ApiError::not_found("webhook endpoint"),
        ReceiveError::Signature(_) => {
            tracing::info!(endpoint = %endpoint, error = %err, "stripe webhook refused");
            ApiError::new(ErrorCode::WebhookSignatureInvalid, err.to_string())
        }
        ReceiveError::Storage(err) => err.into(),
    })?;
    Ok(web::Json(ReceivedView { received: true, duplicate: received == Received::Duplicate }))
}
