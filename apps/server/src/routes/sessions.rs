//! Sign-in, sign-out and "who am I" for users (P2).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use otesse_domain::auth::AuthService;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::created;
use super::setup::OrganizationView;
use super::users::UserView;
use crate::error::ApiError;
use crate::extract::{ByUser, ClientIp};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// Send as `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

/// Sign in. Wrong password and unknown email get the same answer; repeated failures are
/// refused for a while (429 with `Retry-After`).
#[utoipa::path(post, path = "/v1/sessions", operation_id = "createSession", tag = "sessions", request_body = SignInRequest, responses((status = 201, body = SessionResponse), crate::openapi::errors::JsonBody, crate::openapi::errors::Unauthorized, crate::openapi::errors::TooManyRequests, crate::openapi::errors::ServerError))]
pub async fn sign_in(
    auth: web::Data<AuthService>,
    limits: web::Data<crate::rate_limit::Limits>,
    req: actix_web::HttpRequest,
    ip: ClientIp,
    body: super::body::JsonObject<SignInRequest>,
) -> Result<HttpResponse, ApiError> {
    let bucket = match ip.0 {
        Some(ip) => format!("sign-in:{ip}"),
        None => "sign-in:unknown".to_owned(),
    };
    limits.check(&req, &bucket, limits.sign_in).await?;
    let session = auth.sign_in(&body.email, &body.password, ip.0).await?;
    Ok(created(&SessionResponse {
        token: session.token.expose_secret().to_owned(),
        expires_at: session.session.expires_at,
        user: UserView::from(&session.user),
    }))
}

/// Sign out: the session token stops working at once.
#[utoipa::path(delete, path = "/v1/sessions/current", operation_id = "deleteCurrentSession", tag = "sessions", security(("session" = [])), responses((status = 204, description = "Signed out"), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden))]
pub async fn sign_out(auth: web::Data<AuthService>, user: ByUser) -> Result<HttpResponse, ApiError> {
    auth.sign_out(user.0.session().ok_or_else(ApiError::internal)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub user: UserView,
    pub organization: OrganizationView,
    /// What the user's role allows.
    #[schema(schema_with = super::wire::permissions)]
    pub permissions: Vec<&'static str>,
}

/// The signed-in user, their organization and permissions.
#[utoipa::path(get, path = "/v1/me", operation_id = "getMe", tag = "sessions", security(("session" = [])), responses((status = 200, body = MeResponse), crate::openapi::errors::SignedIn))]
pub async fn me(auth: web::Data<AuthService>, user: ByUser) -> Result<web::Json<MeResponse>, ApiError> {
    let (user, organization) = auth.me(&user.0).await?.ok_or_else(ApiError::internal)?;
    Ok(web::Json(MeResponse {
        permissions: user.role.permissions().iter().map(|p| super::users::permission_name(*p)).collect(),
        organization: OrganizationView { id: organization.id.0, name: organization.name.as_str().to_owned() },
        user: UserView::from(&user),
    }))
}
