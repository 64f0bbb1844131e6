//! Sign-in, sign-out and "who am I" for users (P2). A browser signs in with `"cookie": true`:
//! the session then lives in an HttpOnly cookie the dashboard's script cannot read, and the
//! answer carries the CSRF token instead of the session token (D2).

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use otesse_domain::auth::AuthService;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::created;
use super::setup::OrganizationView;
use super::users::UserView;
use crate::dashboard::BrowserPolicy;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ByUser, ClientIp};
use crate::identify::{SESSION_COOKIE, csrf_token};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// For browsers: keep the session in an HttpOnly cookie (`otesse_session`) instead of
    /// answering it; the answer holds `csrf_token`, to send as `X-CSRF-Token` on every change.
    /// Refused (403) from another site's page.
    #[serde(default)]
    pub cookie: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// Send as `Authorization: Bearer <token>`. Shown once. Absent on a cookie sign-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Password)]
    pub token: Option<String>,
    /// A cookie sign-in's CSRF token (also in the readable `otesse_csrf` cookie).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

/// Sign in. Wrong password and unknown email get the same answer; repeated failures are
/// refused for a while (429 with `Retry-After`).
#[utoipa::path(post, path = "/v1/sessions", operation_id = "createSession", tag = "sessions", request_body = SignInRequest, responses((status = 201, body = SessionResponse), crate::openapi::errors::JsonBody, crate::openapi::errors::Unauthorized, crate::openapi::errors::Forbidden, crate::openapi::errors::TooManyRequests, crate::openapi::errors::ServerError, crate::openapi::errors::Unavailable))]
pub async fn sign_in(
    auth: web::Data<AuthService>,
    limits: web::Data<crate::rate_limit::Limits>,
    browser: web::Data<BrowserPolicy>,
    req: actix_web::HttpRequest,
    ip: ClientIp,
    body: super::body::JsonObject<SignInRequest>,
) -> Result<HttpResponse, ApiError> {
    if body.cookie && !browser.is_same_origin(&req) {
        // Another site's page could otherwise sign a visitor's browser in to an account of
        // the attacker's choosing (login CSRF).
        return Err(ApiError::new(ErrorCode::CsrfTokenInvalid, "Cross-site sign-in is not allowed."));
    }
    // Per network (an IPv6 client holds a whole /64), like the sign-in throttle.
    let bucket = match ip.0 {
        Some(ip) => format!("sign-in:{}", otesse_domain::auth::network_subject(ip)),
        None => "sign-in:unknown".to_owned(),
    };
    limits.check(&req, &bucket, limits.sign_in).await?;
    let agent = req.headers().get(header::USER_AGENT).and_then(|value| value.to_str().ok());
    let session = auth.sign_in(&body.email, &body.password, ip.0, agent).await?;
    let token = session.token.expose_secret();
    let user = UserView::from(&session.user);
    if !body.cookie {
        return Ok(created(&SessionResponse {
            token: Some(token.to_owned()),
            csrf_token: None,
            expires_at: session.session.expires_at,
            user,
        }));
    }
    let csrf = csrf_token(token);
    let max_age = (session.session.expires_at - Utc::now()).num_seconds().max(0);
    let mut response = HttpResponse::Created();
    for cookie in browser.session_cookies(token, &csrf, max_age) {
        response.append_header((header::SET_COOKIE, cookie));
    }
    Ok(response.insert_header((header::CACHE_CONTROL, "no-store")).json(SessionResponse {
        token: None,
        csrf_token: Some(csrf),
        expires_at: session.session.expires_at,
        user,
    }))
}

/// Sign out: the session token stops working at once. Through the cookie, both cookies are
/// cleared too.
#[utoipa::path(delete, path = "/v1/sessions/current", operation_id = "deleteCurrentSession", tag = "sessions", security(("session" = [])), responses((status = 204, description = "Signed out"), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden))]
pub async fn sign_out(
    auth: web::Data<AuthService>,
    browser: web::Data<BrowserPolicy>,
    req: actix_web::HttpRequest,
    user: ByUser,
) -> Result<HttpResponse, ApiError> {
    auth.sign_out(user.0.session().ok_or_else(ApiError::internal)?).await?;
    let mut response = HttpResponse::NoContent();
    if crate::dashboard::cookie(&req, SESSION_COOKIE).is_some() {
        for cookie in browser.cleared_cookies() {
            response.append_header((header::SET_COOKIE, cookie));
        }
    }
    Ok(response.finish())
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
