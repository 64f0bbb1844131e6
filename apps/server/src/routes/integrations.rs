//! Integrations (I1-I11, I13): the catalog, connecting with encrypted credentials, connected
//! apps with their health, and the active/inactive toggle and model list.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use otesse_domain::integration::{
    CallbackAnswer, Category, ConnectInput, ConnectStart, ConnectionView, HealthCheck, IntegrationService,
    ProviderListing,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ListResponse, created, parse_id};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ByEither, IntegrationsRoute};

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldView {
    /// `api_key`, `api_secret` or `account_id`.
    #[schema(schema_with = super::wire::credential_field)]
    pub name: &'static str,
    pub label: String,
    pub required: bool,
    pub max_length: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DependencyView {
    pub slug: String,
    /// Where to connect it.
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub logo_url: String,
    /// `communication`, `payment`, `mapping` or `ai`.
    #[schema(schema_with = super::wire::category)]
    pub category: &'static str,
    /// `api_key` or `oauth2`.
    #[schema(schema_with = super::wire::auth_type)]
    pub auth_type: &'static str,
    pub fields: Vec<FieldView>,
    pub dependencies: Vec<DependencyView>,
    #[schema(schema_with = super::wire::resource_types)]
    pub resource_types: Vec<&'static str>,
    pub docs_url: String,
    /// Inactive providers cannot be connected.
    pub active: bool,
    /// The deployment supplies credentials: connect with `{"use_preconfigured": true}`.
    pub preconfigured: bool,
    /// False when this deployment cannot connect it (an OAuth2 provider without its client id
    /// and secret); `unavailable_reason` says why.
    pub available: bool,
    pub unavailable_reason: Option<String>,
    /// This organization's state: `not_connected`, `connected` or `error`.
    #[schema(schema_with = super::wire::provider_connection_status)]
    pub connection_status: &'static str,
}

impl From<&ProviderListing> for ProviderView {
    fn from(listing: &ProviderListing) -> Self {
        let d = &listing.definition;
        let connection_status = match &listing.state {
            Some(state) if state.connected => "connected",
            Some(state) if state.instance_status == otesse_domain::integration::InstanceStatus::Error => "error",
            _ => "not_connected",
        };
        Self {
            slug: d.slug.to_string(),
            name: d.name.clone(),
            description: d.description.clone(),
            logo_url: d.logo_url.clone(),
            category: d.category.as_str(),
            auth_type: d.auth_type.as_str(),
            fields: d
                .fields
                .iter()
                .map(|f| FieldView {
                    name: f.field.as_str(),
                    label: f.label.clone(),
                    required: f.required,
                    max_length: f.max_length,
                })
                .collect(),
            dependencies: d
                .dependencies
                .iter()
                .map(|dep| DependencyView { slug: dep.to_string(), url: format!("/v1/integrations/providers/{dep}") })
                .collect(),
            resource_types: d.resource_types.iter().map(|r| r.as_str()).collect(),
            docs_url: d.docs_url.clone(),
            active: d.active,
            preconfigured: listing.preconfigured,
            available: listing.unavailable.is_none(),
            unavailable_reason: listing.unavailable.clone(),
            connection_status,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProviderQuery {
    /// Search text (name, slug, description, category).
    pub q: Option<String>,
    #[param(schema_with = super::wire::category)]
    pub category: Option<String>,
}

/// The provider catalog with this organization's connection status.
#[utoipa::path(get, path = "/v1/integrations/providers", operation_id = "listProviders", tag = "integrations", params(ProviderQuery), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ListResponse<ProviderView>), crate::openapi::errors::Keyed, crate::openapi::errors::Forbidden))]
pub async fn providers(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    query: web::Query<ProviderQuery>,
) -> Result<web::Json<ListResponse<ProviderView>>, ApiError> {
    let category = query
        .category
        .as_deref()
        .map(|c| {
            Category::parse(c).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidParameter,
                    "category must be one of communication, payment, mapping, ai",
                )
            })
        })
        .transpose()?;
    let listings = service.list_providers(&caller.caller, query.q.as_deref(), category).await?;
    Ok(web::Json(ListResponse::new::<String>(listings.iter().map(ProviderView::from).collect(), None)))
}

/// One provider of the catalog.
#[utoipa::path(get, path = "/v1/integrations/providers/{slug}", operation_id = "getProvider", tag = "integrations", params(("slug" = String, Path, description = "A provider of the catalog, e.g. `postmark`")), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ProviderView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound))]
pub async fn provider(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    slug: web::Path<String>,
) -> Result<web::Json<ProviderView>, ApiError> {
    Ok(web::Json(ProviderView::from(&service.provider(&caller.caller, &slug).await?)))
}

/// The credential fields by name, each a secret (`format: password`).
fn credentials() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let schema = serde_json::json!({
        "type": ["object", "null"],
        "description": "`{api_key, api_secret?, account_id?}` as the provider's `fields` ask.",
        "propertyNames": {"type": "string"},
        "additionalProperties": {"type": "string", "format": "password"},
    });
    match serde_json::from_value(schema) {
        Ok(schema) => utoipa::openapi::RefOr::T(schema),
        Err(err) => panic!("the credentials schema does not build: {err}"),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    /// `{api_key, api_secret?, account_id?}` as the provider's `fields` ask.
    #[schema(schema_with = credentials)]
    pub credentials: Option<BTreeMap<String, SecretString>>,
    /// Use the deployment's pre-configured credentials instead.
    #[serde(default)]
    pub use_preconfigured: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    pub id: uuid::Uuid,
    /// `healthy`, `invalid_credentials`, `unreachable` or `rate_limited`.
    #[schema(schema_with = super::wire::health_outcome)]
    pub status: &'static str,
    pub response_time_ms: u32,
    pub detail: String,
    pub checked_at: DateTime<Utc>,
}

impl From<&HealthCheck> for HealthView {
    fn from(h: &HealthCheck) -> Self {
        Self {
            id: h.id,
            status: h.outcome.as_str(),
            response_time_ms: h.response_time_ms,
            detail: h.detail.clone(),
            checked_at: h.checked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionViewBody {
    pub id: uuid::Uuid,
    pub provider: String,
    /// `connected`, `disconnected` or `needs_reauthorization` (an OAuth grant the provider no
    /// longer honours: connect again).
    #[schema(schema_with = super::wire::connection_status)]
    pub status: &'static str,
    /// The organization's instance: `active`, `error` or `disconnected`.
    #[schema(schema_with = super::wire::instance_status)]
    pub instance_status: &'static str,
    /// The active/inactive toggle.
    pub enabled: bool,
    /// The chosen model (providers with model selection).
    pub selected_model: Option<String>,
    /// `api_key`, `preconfigured` or `oauth2`.
    #[schema(schema_with = super::wire::auth_method)]
    pub auth_method: &'static str,
    pub user_id: uuid::Uuid,
    pub created_at: DateTime<Utc>,
    pub disconnected_at: Option<DateTime<Utc>>,
    pub health: Option<HealthView>,
}

impl From<&ConnectionView> for ConnectionViewBody {
    fn from(v: &ConnectionView) -> Self {
        Self {
            id: v.connection.id,
            provider: v.connection.provider.to_string(),
            status: v.connection.status.as_str(),
            instance_status: v.instance.status.as_str(),
            enabled: v.instance.enabled,
            selected_model: v.instance.selected_model.clone(),
            auth_method: v.connection.auth_method.as_str(),
            user_id: v.connection.user_id.0,
            created_at: v.connection.created_at,
            disconnected_at: v.connection.disconnected_at,
            health: v.latest_health.as_ref().map(HealthView::from),
        }
    }
}

/// Where to send the browser to authorize an OAuth2 provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationView {
    /// The provider's consent page; the browser comes back to
    /// `/v1/integrations/oauth/callback`.
    pub authorization_url: String,
    /// After this the callback is refused; connect again.
    pub expires_at: DateTime<Utc>,
}

/// The redirect URI registered with every OAuth2 provider.
pub const OAUTH_CALLBACK_PATH: &str = "/v1/integrations/oauth/callback";

/// Connect a provider. API-key providers: credentials are validated, checked live against the
/// provider, encrypted (AES-256-GCM) and stored only if the check passes (201). OAuth2
/// providers: send no credentials (`{}`); the answer (200) is the authorization URL to send the
/// browser to, and the connection is made by the callback.
#[utoipa::path(post, path = "/v1/integrations/providers/{slug}/connect", operation_id = "connectProvider", tag = "integrations", params(("slug" = String, Path, description = "A provider of the catalog, e.g. `postmark`"), crate::openapi::IdempotencyKey), request_body = ConnectRequest, security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 201, body = ConnectionViewBody), (status = 200, body = AuthorizationView, description = "An OAuth2 provider: where to authorize"), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::JsonBody, crate::openapi::errors::Conflict, crate::openapi::errors::Unprocessable, crate::openapi::errors::Provider, crate::openapi::errors::Idempotent))]
pub async fn connect(
    service: web::Data<IntegrationService>,
    public: web::Data<super::stripe::PublicUrl>,
    req: actix_web::HttpRequest,
    caller: ByEither<IntegrationsRoute>,
    slug: web::Path<String>,
    body: super::body::JsonObject<ConnectRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input = match (body.use_preconfigured, body.credentials) {
        (true, None) => Some(ConnectInput::Preconfigured),
        (false, Some(credentials)) => Some(ConnectInput::Credentials(credentials)),
        (false, None) => None,
        (true, Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                "send either credentials or use_preconfigured: true",
            ));
        }
    };
    let redirect_uri = format!("{}{OAUTH_CALLBACK_PATH}", public.base(&req));
    match service.start_connect(&caller.caller, &slug, input, &redirect_uri).await? {
        ConnectStart::Connected(view) => {
            tracing::info!(provider = %view.connection.provider, connection_id = %view.connection.id, "integration connected");
            Ok(created(&ConnectionViewBody::from(view.as_ref())))
        }
        ConnectStart::Authorize(authorization) => {
            tracing::info!(provider = %slug, "oauth authorization started");
            Ok(HttpResponse::Ok()
                .json(AuthorizationView { authorization_url: authorization.url, expires_at: authorization.expires_at }))
        }
    }
}

/// What the provider sends the browser back with.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CallbackQuery {
    /// The `state` of the authorization URL.
    pub state: Option<String>,
    /// The authorization code, when access was granted.
    #[param(value_type = Option<String>)]
    pub code: Option<SecretString>,
    /// `access_denied` when the user refused, or another OAuth error code.
    pub error: Option<String>,
}

/// The OAuth2 redirect URI: checks the single-use `state` and that the user who started the
/// authorization may still connect integrations (403 otherwise), exchanges the code, checks the
/// new connection (a concurrent connect that already won: 409, the new grant revoked), and sends the browser to the dashboard's Connected Apps (303), or answers JSON
/// (`Accept: application/json`). No session or key: the state identifies the attempt.
#[utoipa::path(get, path = "/v1/integrations/oauth/callback", operation_id = "oauthCallback", tag = "integrations", params(CallbackQuery), responses((status = 201, body = ConnectionViewBody, description = "Connected (Accept: application/json)"), (status = 303, description = "Back to the dashboard's Connected Apps, with `connected=<id>` or `error=<code>&message=...`"), crate::openapi::errors::BadRequest, crate::openapi::errors::Forbidden, crate::openapi::errors::Conflict, crate::openapi::errors::Unprocessable, crate::openapi::errors::Provider, crate::openapi::errors::ServerError))]
pub async fn oauth_callback(
    service: web::Data<IntegrationService>,
    req: actix_web::HttpRequest,
    query: web::Query<CallbackQuery>,
) -> HttpResponse {
    let query = query.into_inner();
    let wants_json = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let answer = match (query.code, query.error) {
        (_, Some(error)) => Some(CallbackAnswer::Error(error)),
        (Some(code), None) => Some(CallbackAnswer::Code(code)),
        (None, None) => None,
    };
    let outcome = match (query.state, answer) {
        (Some(state), Some(answer)) => service.complete_authorization(&state, answer).await.map_err(ApiError::from),
        _ => Err(ApiError::new(ErrorCode::InvalidParameter, "state and either code or error are required")),
    };
    let page = "/settings/integrations/connected";
    match outcome {
        Ok(view) => {
            tracing::info!(provider = %view.connection.provider, connection_id = %view.connection.id, "integration connected through oauth");
            if wants_json {
                created(&ConnectionViewBody::from(&view))
            } else {
                see_other(&format!("{page}?connected={}", view.connection.id))
            }
        }
        Err(err) if wants_json => actix_web::ResponseError::error_response(&err),
        Err(err) => {
            let code = serde_json::to_value(err.code).ok().and_then(|v| v.as_str().map(str::to_owned));
            let message = url::form_urlencoded::byte_serialize(err.message.as_bytes()).collect::<String>();
            see_other(&format!("{page}?error={}&message={message}", code.unwrap_or_default()))
        }
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((actix_web::http::header::LOCATION, location.to_owned())).finish()
}

/// Connected apps of the organization, newest first.
#[utoipa::path(get, path = "/v1/integrations/connections", operation_id = "listConnections", tag = "integrations", security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ListResponse<ConnectionViewBody>), crate::openapi::errors::Keyed))]
pub async fn connections(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
) -> Result<web::Json<ListResponse<ConnectionViewBody>>, ApiError> {
    let views = service.list_connections(&caller.caller).await?;
    Ok(web::Json(ListResponse::new::<String>(views.iter().map(ConnectionViewBody::from).collect(), None)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionDetailBody {
    #[serde(flatten)]
    pub connection: ConnectionViewBody,
    /// The last 20 checks, newest first.
    pub health_history: Vec<HealthView>,
}

/// One connection with its health history and response times.
#[utoipa::path(get, path = "/v1/integrations/connections/{id}", operation_id = "getConnection", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection")), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ConnectionDetailBody), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound))]
pub async fn connection(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    id: web::Path<String>,
) -> Result<web::Json<ConnectionDetailBody>, ApiError> {
    let id = parse_id(&id, "connection")?;
    let detail = service.connection(&caller.caller, id).await?;
    Ok(web::Json(ConnectionDetailBody {
        connection: ConnectionViewBody::from(&detail.view),
        health_history: detail.history.iter().map(HealthView::from).collect(),
    }))
}

/// Disconnect: credentials deleted, audit written.
#[utoipa::path(delete, path = "/v1/integrations/connections/{id}", operation_id = "deleteConnection", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection")), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 204, description = "Disconnected"), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound))]
pub async fn disconnect(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "connection")?;
    service.disconnect(&caller.caller, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Re-run the health check now.
#[utoipa::path(post, path = "/v1/integrations/connections/{id}/health-checks", operation_id = "createHealthCheck", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection"), crate::openapi::IdempotencyKey), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 201, body = HealthView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::Idempotent))]
pub async fn run_check(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id, "connection")?;
    let check = service.check(&caller.caller, id).await?;
    Ok(created(&HealthView::from(&check)))
}

/// The connection's health history, newest first.
#[utoipa::path(get, path = "/v1/integrations/connections/{id}/health-checks", operation_id = "listHealthChecks", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection")), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ListResponse<HealthView>), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound))]
pub async fn checks(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    id: web::Path<String>,
) -> Result<web::Json<ListResponse<HealthView>>, ApiError> {
    let id = parse_id(&id, "connection")?;
    let history = service.health_history(&caller.caller, id).await?;
    Ok(web::Json(ListResponse::new::<String>(history.iter().map(HealthView::from).collect(), None)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnabledRequest {
    pub enabled: bool,
}

/// The active/inactive toggle (Mapbox, Google Maps, Geoapify).
#[utoipa::path(put, path = "/v1/integrations/connections/{id}/enabled", operation_id = "setConnectionEnabled", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection")), request_body = EnabledRequest, security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ConnectionViewBody), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered, crate::openapi::errors::JsonBody))]
pub async fn set_enabled(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    id: web::Path<String>,
    body: super::body::JsonObject<EnabledRequest>,
) -> Result<web::Json<ConnectionViewBody>, ApiError> {
    let id = parse_id(&id, "connection")?;
    let view = service.set_enabled(&caller.caller, id, body.enabled).await?;
    Ok(web::Json(ConnectionViewBody::from(&view)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelView {
    pub id: String,
    pub display_name: String,
}

/// The models the provider offers (Anthropic), read live from the provider.
#[utoipa::path(get, path = "/v1/integrations/connections/{id}/models", operation_id = "listConnectionModels", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection")), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ListResponse<ModelView>), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered, crate::openapi::errors::Unprocessable, crate::openapi::errors::Provider))]
pub async fn models(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    id: web::Path<String>,
) -> Result<web::Json<ListResponse<ModelView>>, ApiError> {
    let id = parse_id(&id, "connection")?;
    let models = service.models(&caller.caller, id).await?.map_err(|outcome| {
        ApiError::from(otesse_domain::integration::ConnectError::CheckFailed {
            outcome,
            message: outcome.message("the provider"),
        })
    })?;
    Ok(web::Json(ListResponse::new::<String>(
        models.into_iter().map(|m| ModelView { id: m.id, display_name: m.display_name }).collect(),
        None,
    )))
}

/// `?days=` of the usage report.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// 1 to 31 days, today included; default 7.
    #[param(minimum = 1, maximum = 31)]
    pub days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageDayView {
    /// The UTC day.
    pub date: chrono::NaiveDate,
    pub input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReportView {
    pub days: u32,
    /// Oldest day first; days without usage are absent.
    pub data: Vec<UsageDayView>,
    pub total_input_tokens: u64,
    pub total_output_tokens: u64,
}

/// Usage monitoring (Anthropic): daily token usage, read live from the provider's usage report
/// with the connection's admin key (`api_secret`).
#[utoipa::path(get, path = "/v1/integrations/connections/{id}/usage", operation_id = "getConnectionUsage", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection"), UsageQuery), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = UsageReportView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered, crate::openapi::errors::Conflict, crate::openapi::errors::Unprocessable, crate::openapi::errors::Provider))]
pub async fn usage(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    id: web::Path<String>,
    query: web::Query<UsageQuery>,
) -> Result<web::Json<UsageReportView>, ApiError> {
    let id = parse_id(&id, "connection")?;
    let days = query.days.unwrap_or(7);
    if !(1..=31).contains(&days) {
        return Err(ApiError::new(ErrorCode::InvalidParameter, "days must be between 1 and 31"));
    }
    let report = service.usage(&caller.caller, id, days).await?.map_err(|outcome| {
        ApiError::from(otesse_domain::integration::ConnectError::CheckFailed {
            outcome,
            message: outcome.message("the provider"),
        })
    })?;
    let data: Vec<UsageDayView> = report
        .into_iter()
        .map(|d| UsageDayView {
            date: d.starting_at.date_naive(),
            input_tokens: d.input_tokens,
            cache_creation_input_tokens: d.cache_creation_input_tokens,
            cache_read_input_tokens: d.cache_read_input_tokens,
            output_tokens: d.output_tokens,
        })
        .collect();
    Ok(web::Json(UsageReportView {
        days,
        total_input_tokens: data
            .iter()
            .map(|d| d.input_tokens + d.cache_creation_input_tokens + d.cache_read_input_tokens)
            .sum(),
        total_output_tokens: data.iter().map(|d| d.output_tokens).sum(),
        data,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelRequest {
    /// A model id from `GET .../models`.
    pub model: String,
}

/// Choose the model (Anthropic): it must be one the provider offers now.
#[utoipa::path(put, path = "/v1/integrations/connections/{id}/model", operation_id = "selectConnectionModel", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection")), request_body = ModelRequest, security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ConnectionViewBody), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered, crate::openapi::errors::JsonBody, crate::openapi::errors::Unprocessable, crate::openapi::errors::Provider))]
pub async fn select_model(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    id: web::Path<String>,
    body: super::body::JsonObject<ModelRequest>,
) -> Result<web::Json<ConnectionViewBody>, ApiError> {
    let id = parse_id(&id, "connection")?;
    let view = service.select_model(&caller.caller, id, &body.model).await?.map_err(|outcome| {
        ApiError::from(otesse_domain::integration::ConnectError::CheckFailed {
            outcome,
            message: outcome.message("the provider"),
        })
    })?;
    Ok(web::Json(ConnectionViewBody::from(&view)))
}

/// The `{kind}` of a contacts route: `senders` (Postmark's sender emails) or `phone-numbers`
/// (Quo's phone numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ContactKindPath {
    Senders,
    PhoneNumbers,
}

impl ContactKindPath {
    const ALL: [ContactKindPath; 2] = [ContactKindPath::Senders, ContactKindPath::PhoneNumbers];

    fn segment(self) -> &'static str {
        match self {
            ContactKindPath::Senders => "senders",
            ContactKindPath::PhoneNumbers => "phone-numbers",
        }
    }

    fn kind(self) -> otesse_domain::integration::ContactKind {
        use otesse_domain::integration::ContactKind;
        match self {
            ContactKindPath::Senders => ContactKind::SenderEmail,
            ContactKindPath::PhoneNumbers => ContactKind::PhoneNumber,
        }
    }
}

fn contact_kind(segment: &str) -> Result<otesse_domain::integration::ContactKind, ApiError> {
    ContactKindPath::ALL
        .into_iter()
        .find(|kind| kind.segment() == segment)
        .map(ContactKindPath::kind)
        .ok_or_else(|| ApiError::new(ErrorCode::ResourceMissing, "Unrecognized request URL."))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    pub id: uuid::Uuid,
    /// An email address (senders) or an E.164 number (phone numbers).
    pub value: String,
    pub label: String,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&otesse_domain::integration::ContactResource> for ContactView {
    fn from(c: &otesse_domain::integration::ContactResource) -> Self {
        Self {
            id: c.id,
            value: c.value.clone(),
            label: c.label.clone(),
            is_default: c.is_default,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    pub value: String,
    pub label: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    pub value: Option<String>,
    pub label: Option<String>,
}

/// Sender emails (`senders`, Postmark) or phone numbers (`phone-numbers`, Quo), oldest first.
#[utoipa::path(get, path = "/v1/integrations/connections/{id}/{kind}", operation_id = "listContacts", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection"), ("kind" = inline(ContactKindPath), Path)), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ListResponse<ContactView>), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered))]
pub async fn contacts(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    path: web::Path<(String, String)>,
) -> Result<web::Json<ListResponse<ContactView>>, ApiError> {
    let (id, kind) = path.into_inner();
    let kind = contact_kind(&kind)?;
    let listed = service.contacts(&caller.caller, parse_id(&id, "connection")?, kind).await?;
    Ok(web::Json(ListResponse::new::<String>(listed.iter().map(ContactView::from).collect(), None)))
}

/// Add a sender email or phone number; the first becomes the default.
#[utoipa::path(post, path = "/v1/integrations/connections/{id}/{kind}", operation_id = "createContact", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection"), ("kind" = inline(ContactKindPath), Path), crate::openapi::IdempotencyKey), request_body = ContactRequest, security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 201, body = ContactView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered, crate::openapi::errors::JsonBody, crate::openapi::errors::Conflict, crate::openapi::errors::Idempotent))]
pub async fn add_contact(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    path: web::Path<(String, String)>,
    body: super::body::JsonObject<ContactRequest>,
) -> Result<HttpResponse, ApiError> {
    let (id, kind) = path.into_inner();
    let kind = contact_kind(&kind)?;
    let created_contact = service
        .add_contact(&caller.caller, parse_id(&id, "connection")?, kind, &body.value, body.label.as_deref())
        .await?;
    Ok(created(&ContactView::from(&created_contact)))
}

/// Change a sender email or phone number.
#[utoipa::path(patch, path = "/v1/integrations/connections/{id}/{kind}/{resource_id}", operation_id = "updateContact", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection"), ("kind" = inline(ContactKindPath), Path), ("resource_id" = uuid::Uuid, Path)), request_body = ContactPatch, security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ContactView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered, crate::openapi::errors::JsonBody, crate::openapi::errors::Conflict))]
pub async fn update_contact(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    path: web::Path<(String, String, String)>,
    body: super::body::JsonObject<ContactPatch>,
) -> Result<web::Json<ContactView>, ApiError> {
    let (id, kind, resource) = path.into_inner();
    let kind = contact_kind(&kind)?;
    let updated = service
        .update_contact(
            &caller.caller,
            parse_id(&id, "connection")?,
            kind,
            parse_id(&resource, "resource")?,
            body.value.as_deref(),
            body.label.as_deref(),
        )
        .await?;
    Ok(web::Json(ContactView::from(&updated)))
}

/// Delete one; if it was the default, the oldest remaining becomes the default.
#[utoipa::path(delete, path = "/v1/integrations/connections/{id}/{kind}/{resource_id}", operation_id = "deleteContact", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection"), ("kind" = inline(ContactKindPath), Path), ("resource_id" = uuid::Uuid, Path)), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 204, description = "Deleted"), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered))]
pub async fn delete_contact(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, kind, resource) = path.into_inner();
    let kind = contact_kind(&kind)?;
    service
        .delete_contact(&caller.caller, parse_id(&id, "connection")?, kind, parse_id(&resource, "resource")?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Make it the one default of its kind.
#[utoipa::path(post, path = "/v1/integrations/connections/{id}/{kind}/{resource_id}/default", operation_id = "setDefaultContact", tag = "integrations", params(("id" = uuid::Uuid, Path, description = "The connection"), ("kind" = inline(ContactKindPath), Path), ("resource_id" = uuid::Uuid, Path), crate::openapi::IdempotencyKey), security(("session" = []), ("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = ContactView), crate::openapi::errors::Keyed, crate::openapi::errors::NotFound, crate::openapi::errors::NotOffered, crate::openapi::errors::Idempotent))]
pub async fn set_default_contact(
    service: web::Data<IntegrationService>,
    caller: ByEither<IntegrationsRoute>,
    path: web::Path<(String, String, String)>,
) -> Result<web::Json<ContactView>, ApiError> {
    let (id, kind, resource) = path.into_inner();
    let kind = contact_kind(&kind)?;
    let updated = service
        .set_default_contact(&caller.caller, parse_id(&id, "connection")?, kind, parse_id(&resource, "resource")?)
        .await?;
    Ok(web::Json(ContactView::from(&updated)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_kinds_are_documented_as_they_are_matched() {
        for kind in ContactKindPath::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.segment());
            assert_eq!(contact_kind(kind.segment()).unwrap(), kind.kind());
        }
        assert!(contact_kind("models").is_err());
    }
}
