//! A signed-in user's own account (P8): their password and their sessions; and setting a
//! password with a reset token, which needs no sign-in. Session tokens are never shown here,
//! only session ids.

use std::net::IpAddr;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use otesse_domain::account::{AccountService, SessionListing};
use otesse_domain::user::SessionId;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ListResponse, parse_id};
use crate::error::ApiError;
use crate::extract::{ByUser, ClientIp};
use crate::rate_limit::Limits;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    /// 10 to 128 characters.
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// The rate-limit bucket of password guesses: per network, like sign-in.
fn bucket(route: &str, ip: Option<IpAddr>) -> String {
    match ip {
        Some(ip) => format!("{route}:{}", otesse_domain::auth::network_subject(ip)),
        None => format!("{route}:unknown"),
    }
}

/// Change your password. Your other sessions end; this one stays. A wrong current password
/// is 400 `current_password_invalid` and changes nothing; attempts are rate-limited like
/// sign-in.
#[utoipa::path(post, path = "/v1/me/password", operation_id = "changeMyPassword", tag = "sessions", params(crate::openapi::IdempotencyKey), request_body = ChangePasswordRequest, security(("session" = [])), responses((status = 204, description = "Changed"), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::JsonBody, crate::openapi::errors::TooManyRequests, crate::openapi::errors::Unavailable, crate::openapi::errors::Idempotent))]
pub async fn change_password(
    accounts: web::Data<AccountService>,
    limits: web::Data<Limits>,
    req: HttpRequest,
    user: ByUser,
    body: super::body::JsonObject<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    // Per user: a stolen session cannot guess its owner's password faster than sign-in could.
    limits.check(&req, &format!("password-change:{}", user.0.on_behalf_of()), limits.sign_in).await?;
    let body = body.into_inner();
    accounts.change_password(&user.0, &body.current_password, body.new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: uuid::Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The `User-Agent` it signed in with.
    pub user_agent: Option<String>,
    /// The address it signed in from.
    pub ip: Option<String>,
    /// The session this request came through.
    pub current: bool,
}

impl From<&SessionListing> for SessionView {
    fn from(listing: &SessionListing) -> Self {
        let session = &listing.session;
        Self {
            id: session.id.0,
            created_at: session.created_at,
            expires_at: session.expires_at,
            user_agent: session.user_agent.clone(),
            ip: session.ip_address.map(|ip| ip.to_string()),
            current: listing.current,
        }
    }
}

/// Your active sessions, newest first; `current` marks this one.
#[utoipa::path(get, path = "/v1/me/sessions", operation_id = "listMySessions", tag = "sessions", security(("session" = [])), responses((status = 200, body = ListResponse<SessionView>), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden))]
pub async fn sessions(
    accounts: web::Data<AccountService>,
    user: ByUser,
) -> Result<web::Json<ListResponse<SessionView>>, ApiError> {
    let listed = accounts.sessions(&user.0).await?;
    Ok(web::Json(ListResponse::new::<String>(listed.iter().map(SessionView::from).collect(), None)))
}

/// End one of your sessions (the current one too: that signs you out).
#[utoipa::path(delete, path = "/v1/me/sessions/{id}", operation_id = "deleteMySession", tag = "sessions", params(("id" = uuid::Uuid, Path)), security(("session" = [])), responses((status = 204, description = "Ended"), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::NotFound))]
pub async fn end_session(
    accounts: web::Data<AccountService>,
    user: ByUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = SessionId(parse_id(&id, "session")?);
    accounts.end_session(&user.0, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndedSessions {
    /// How many sessions ended.
    pub ended: u64,
}

/// End all your sessions but this one.
#[utoipa::path(delete, path = "/v1/me/sessions", operation_id = "deleteMyOtherSessions", tag = "sessions", security(("session" = [])), responses((status = 200, body = EndedSessions), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden))]
pub async fn end_other_sessions(
    accounts: web::Data<AccountService>,
    user: ByUser,
) -> Result<web::Json<EndedSessions>, ApiError> {
    Ok(web::Json(EndedSessions { ended: accounts.end_other_sessions(&user.0).await? }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemResetRequest {
    /// The `pwr_...` token an admin issued.
    #[schema(value_type = String, format = Password)]
    pub token: SecretString,
    /// 10 to 128 characters.
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// Set a new password with a reset token (no sign-in needed). Every session of the user ends.
/// A token works once and for one hour; otherwise 400 `reset_token_invalid` and nothing
/// changes. Rate-limited per network like sign-in.
#[utoipa::path(post, path = "/v1/password-resets", operation_id = "redeemPasswordReset", tag = "sessions", request_body = RedeemResetRequest, responses((status = 204, description = "The password is set"), crate::openapi::errors::JsonBody, crate::openapi::errors::TooManyRequests, crate::openapi::errors::ServerError, crate::openapi::errors::Unavailable))]
pub async fn redeem_reset(
    accounts: web::Data<AccountService>,
    limits: web::Data<Limits>,
    req: HttpRequest,
    ip: ClientIp,
    body: super::body::JsonObject<RedeemResetRequest>,
) -> Result<HttpResponse, ApiError> {
    // Guessing a token is as limited as guessing a password.
    limits.check(&req, &bucket("password-reset", ip.0), limits.sign_in).await?;
    let body = body.into_inner();
    let user = accounts.reset_password(&body.token, body.new_password).await?;
    tracing::info!(user_id = %user.id, "password set with a reset token");
    Ok(HttpResponse::NoContent().finish())
}
