//! API-key management for signed-in users (K3, K8, K9, K11, K12).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use otesse_domain::api_key::{
    ApiKey, ApiKeyDetail, ApiKeyId, ApiKeyService, CreateKeyInput, CreatedKey, RotateKeyInput,
};
use otesse_domain::page::PageRequest;
use otesse_domain::usage::UsageEntry;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::{body_bytes, optional_json};
use super::scopes::{ScopeView, scope_view};
use super::{ListResponse, PageQuery, created, parse_id};
use crate::error::ApiError;
use crate::extract::ByUser;
use crate::idempotency::shown_once;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// 1-100 characters, unique among the organization's active keys.
    pub name: String,
    /// 0-500 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// `read_only`, `read_write` or `admin`.
    #[schema(schema_with = super::wire::scope_level)]
    pub scope_level: String,
    /// Granular scopes (`customers.read`; `customers:read` is accepted too). See `GET /v1/scopes`.
    #[serde(default)]
    #[schema(schema_with = super::wire::scope_inputs)]
    pub scopes: Vec<String>,
    /// `30d`, `90d`, `1y` or `never`.
    #[schema(schema_with = super::wire::expires_in)]
    pub expires_in: String,
    /// `live` or `test`.
    #[schema(schema_with = super::wire::environment)]
    pub environment: String,
    /// IP addresses and CIDR ranges allowed to use the key; empty allows all.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: uuid::Uuid,
    pub name: String,
    pub description: String,
    /// `erp_live_...s9t0`
    pub masked_key: String,
    #[schema(schema_with = super::wire::scope_level)]
    pub scope_level: &'static str,
    #[schema(schema_with = super::wire::scopes)]
    pub scopes: Vec<&'static str>,
    #[schema(schema_with = super::wire::environment)]
    pub environment: &'static str,
    /// `active`, `expired` or `revoked`.
    #[schema(schema_with = super::wire::key_status)]
    pub status: &'static str,
    #[schema(schema_with = super::wire::expires_in)]
    pub expires_in: &'static str,
    pub created_at: DateTime<Utc>,
    /// The creator's user id (kept for compatibility; `creator` names them).
    pub created_by: uuid::Uuid,
    /// Who created the key, also after they were deactivated or deleted.
    pub creator: Option<CreatorView>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Active and expiring within 7 days.
    pub expires_soon: bool,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub allowed_ips: Vec<String>,
    pub rotated_from: Option<uuid::Uuid>,
}

/// A key's creator by name and email.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatorView {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: Option<String>,
    /// `active`, `deactivated` or `deleted`.
    #[schema(schema_with = super::wire::user_status)]
    pub status: &'static str,
}

impl CreatorView {
    fn of(user: Option<&otesse_domain::user::User>) -> Option<Self> {
        user.map(|user| Self {
            id: user.id.0,
            email: user.email.as_str().to_owned(),
            name: user.name.as_ref().map(|name| name.as_str().to_owned()),
            status: user.status.as_str(),
        })
    }
}

impl KeyView {
    fn new(
        key: &ApiKey,
        status: &'static str,
        expires_soon: bool,
        creator: Option<&otesse_domain::user::User>,
    ) -> Self {
        Self {
            id: key.id.0,
            name: key.name.as_str().to_owned(),
            description: key.description.as_str().to_owned(),
            masked_key: key.masked_key(),
            scope_level: key.scope_level.as_str(),
            scopes: key.scopes.iter().map(|s| s.as_str()).collect(),
            environment: key.environment.as_str(),
            status,
            expires_in: key.expires_in.as_str(),
            created_at: key.created_at,
            created_by: key.created_by.0,
            creator: CreatorView::of(creator),
            expires_at: key.expires_at,
            expires_soon,
            revoked_at: key.revoked_at,
            last_used_at: key.last_used_at,
            allowed_ips: key.allowed_ips.iter().map(|net| net.to_string()).collect(),
            rotated_from: key.rotated_from.map(|id| id.0),
        }
    }
}

impl From<&otesse_domain::api_key::KeyListing> for KeyView {
    fn from(listing: &otesse_domain::api_key::KeyListing) -> Self {
        KeyView::new(&listing.key, listing.status.as_str(), listing.expires_soon, listing.creator.as_ref())
    }
}

/// The create and rotate answer: the only time the plaintext key is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKeyView {
    /// The full key. Store it now: it is never shown again.
    #[schema(format = Password)]
    pub key: String,
    #[serde(flatten)]
    pub api_key: KeyView,
}

impl CreatedKeyView {
    fn new(created: &CreatedKey, now: DateTime<Utc>) -> Self {
        let key = &created.key;
        Self {
            key: created.plaintext.secret().expose_secret().to_owned(),
            api_key: KeyView::new(key, key.status(now).as_str(), key.expires_soon(now), created.creator.as_ref()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    pub id: i64,
    pub method: String,
    /// The path called (never the query string).
    pub endpoint: String,
    pub status: u16,
    pub response_time_ms: u32,
    pub ip: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl From<&UsageEntry> for UsageView {
    fn from(entry: &UsageEntry) -> Self {
        let r = &entry.record;
        Self {
            id: entry.id,
            method: r.method.clone(),
            endpoint: r.path.clone(),
            status: r.status,
            response_time_ms: r.response_time_ms,
            ip: r.client_ip.map(|ip| ip.to_string()),
            occurred_at: r.occurred_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageSummaryView {
    pub total_requests: u64,
    pub unique_ips: u64,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyDetailView {
    #[serde(flatten)]
    pub api_key: KeyView,
    /// The granted scopes with their descriptions.
    pub scope_details: Vec<ScopeView>,
    pub usage: UsageSummaryView,
    /// The last 50 requests, newest first.
    pub recent_requests: Vec<UsageView>,
    /// Used in the last 24 hours (warn before revoking).
    pub used_in_last_24h: bool,
}

impl From<&ApiKeyDetail> for KeyDetailView {
    fn from(detail: &ApiKeyDetail) -> Self {
        let key = &detail.listing.key;
        Self {
            api_key: KeyView::from(&detail.listing),
            scope_details: key.scopes.iter().map(|s| scope_view(*s)).collect(),
            usage: UsageSummaryView {
                total_requests: detail.usage.total_requests,
                unique_ips: detail.usage.unique_ips,
                last_used_at: detail.usage.last_used_at,
            },
            recent_requests: detail.recent_requests.iter().map(UsageView::from).collect(),
            used_in_last_24h: detail.used_in_last_24h,
        }
    }
}

/// Create a key. The answer holds the plaintext `key`, shown this once.
#[utoipa::path(post, path = "/v1/api-keys", operation_id = "createApiKey", tag = "api-keys", params(crate::openapi::IdempotencyKey), request_body = CreateKeyRequest, security(("session" = [])), responses((status = 201, body = CreatedKeyView), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::JsonBody, crate::openapi::errors::Conflict, crate::openapi::errors::TooManyRequests, crate::openapi::errors::Idempotent))]
pub async fn create(
    keys: web::Data<ApiKeyService>,
    limits: web::Data<crate::rate_limit::Limits>,
    req: actix_web::HttpRequest,
    user: ByUser,
    body: super::body::JsonObject<CreateKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    limits.check(&req, &format!("key-creation:{}", user.0.on_behalf_of().0), limits.key_creation).await?;
    let body = body.into_inner();
    let input = CreateKeyInput {
        name: body.name,
        description: body.description,
        scope_level: body.scope_level,
        scopes: body.scopes,
        expires_in: body.expires_in,
        environment: body.environment,
        allowed_ips: body.allowed_ips,
    };
    let created_key = keys.create(&user.0, input).await?;
    tracing::info!(api_key_id = %created_key.key.id, "api key created");
    let location = format!("/v1/api-keys/{}", created_key.key.id);
    Ok(shown_once(created(&CreatedKeyView::new(&created_key, keys.now())), location))
}

/// Every key of the organization, newest first; revoked keys stay listed.
#[utoipa::path(get, path = "/v1/api-keys", operation_id = "listApiKeys", tag = "api-keys", security(("session" = [])), responses((status = 200, body = ListResponse<KeyView>), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden))]
pub async fn list(keys: web::Data<ApiKeyService>, user: ByUser) -> Result<web::Json<ListResponse<KeyView>>, ApiError> {
    let listings = keys.list(&user.0).await?;
    Ok(web::Json(ListResponse::new::<String>(listings.iter().map(KeyView::from).collect(), None)))
}

/// One key with its scopes, usage summary and last 50 requests.
#[utoipa::path(get, path = "/v1/api-keys/{id}", operation_id = "getApiKey", tag = "api-keys", params(("id" = uuid::Uuid, Path)), security(("session" = [])), responses((status = 200, body = KeyDetailView), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::NotFound))]
pub async fn detail(
    keys: web::Data<ApiKeyService>,
    user: ByUser,
    id: web::Path<String>,
) -> Result<web::Json<KeyDetailView>, ApiError> {
    let id = ApiKeyId(parse_id(&id, "API key")?);
    let detail = keys.detail(&user.0, id).await?;
    Ok(web::Json(KeyDetailView::from(&detail)))
}

/// The key's requests, newest first, paginated.
#[utoipa::path(get, path = "/v1/api-keys/{id}/usage", operation_id = "listApiKeyUsage", tag = "api-keys", params(("id" = uuid::Uuid, Path), PageQuery), security(("session" = [])), responses((status = 200, body = ListResponse<UsageView>), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::NotFound))]
pub async fn usage(
    keys: web::Data<ApiKeyService>,
    user: ByUser,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<ListResponse<UsageView>>, ApiError> {
    let id = ApiKeyId(parse_id(&id, "API key")?);
    let page = PageRequest::new(query.limit, query.cursor::<i64>()?)?;
    let page = keys.usage(&user.0, id, &page).await?;
    Ok(web::Json(ListResponse::new(page.items.iter().map(UsageView::from).collect(), page.next)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// The new key's name; default: the old name with " (rotated)".
    pub name: Option<String>,
    /// When the old key stops working (never later than its expiry); default: it keeps working
    /// until revoked. A past time means now.
    pub revoke_old_at: Option<DateTime<Utc>>,
}

/// Create a new key with the same scopes and settings. The answer holds the new plaintext.
#[utoipa::path(post, path = "/v1/api-keys/{id}/rotate", operation_id = "rotateApiKey", tag = "api-keys", params(("id" = uuid::Uuid, Path), crate::openapi::IdempotencyKey), request_body(content = Option<RotateKeyRequest>, description = "Optional: send no body for the defaults"), security(("session" = [])), responses((status = 201, body = CreatedKeyView), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::NotFound, crate::openapi::errors::JsonBody, crate::openapi::errors::Conflict, crate::openapi::errors::TooManyRequests, crate::openapi::errors::Idempotent))]
pub async fn rotate(
    keys: web::Data<ApiKeyService>,
    limits: web::Data<crate::rate_limit::Limits>,
    req: actix_web::HttpRequest,
    user: ByUser,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body: RotateKeyRequest = optional_json(&req, &body_bytes(body)?)?.unwrap_or_default();
    limits.check(&req, &format!("key-creation:{}", user.0.on_behalf_of().0), limits.key_creation).await?;
    let id = ApiKeyId(parse_id(&id, "API key")?);
    let input = RotateKeyInput { name: body.name, revoke_old_at: body.revoke_old_at };
    let created_key = keys.rotate(&user.0, id, input).await?;
    tracing::info!(api_key_id = %created_key.key.id, rotated_from = %id, "api key rotated");
    let location = format!("/v1/api-keys/{}", created_key.key.id);
    Ok(shown_once(created(&CreatedKeyView::new(&created_key, keys.now())), location))
}

/// Revoke a key, immediately and for good.
#[utoipa::path(post, path = "/v1/api-keys/{id}/revoke", operation_id = "revokeApiKey", tag = "api-keys", params(("id" = uuid::Uuid, Path), crate::openapi::IdempotencyKey), security(("session" = [])), responses((status = 200, body = KeyView), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::NotFound, crate::openapi::errors::Idempotent))]
pub async fn revoke(
    keys: web::Data<ApiKeyService>,
    user: ByUser,
    id: web::Path<String>,
) -> Result<web::Json<KeyView>, ApiError> {
    let id = ApiKeyId(parse_id(&id, "API key")?);
    let listing = keys.revoke(&user.0, id).await?;
    tracing::info!(api_key_id = %id, "api key revoked");
    Ok(web::Json(KeyView::from(&listing)))
}
