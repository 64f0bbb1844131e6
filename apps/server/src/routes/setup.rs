//! First run (P3): create the organization and its first admin with the one-time token.

use actix_web::{HttpResponse, web};
use otesse_domain::auth::{AuthService, SetupInput};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::created;
use super::users::UserView;
use crate::error::ApiError;

/// The deployment's one-time setup token.
#[derive(Debug, Clone)]
pub struct SetupToken(pub SecretString);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The token printed at first start (or `OTESSE_SETUP_TOKEN`).
    #[schema(value_type = String, format = Password)]
    pub setup_token: SecretString,
    pub organization_name: String,
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    pub id: uuid::Uuid,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SetupResponse {
    pub organization: OrganizationView,
    pub user: UserView,
}

/// Create the first organization and admin. Closed once an admin exists.
#[utoipa::path(post, path = "/v1/setup", operation_id = "completeSetup", tag = "setup", request_body = SetupRequest, responses((status = 201, body = SetupResponse), crate::openapi::errors::JsonBody, crate::openapi::errors::Forbidden, crate::openapi::errors::Conflict, crate::openapi::errors::TooManyRequests, crate::openapi::errors::ServerError, crate::openapi::errors::Unavailable))]
pub async fn setup(
    auth: web::Data<AuthService>,
    token: web::Data<SetupToken>,
    limits: web::Data<crate::rate_limit::Limits>,
    req: actix_web::HttpRequest,
    ip: crate::extract::ClientIp,
    body: super::body::JsonObject<SetupRequest>,
) -> Result<HttpResponse, ApiError> {
    // Guessing the setup token is as limited as guessing passwords.
    let bucket = match ip.0 {
        Some(ip) => format!("setup:{}", otesse_domain::auth::network_subject(ip)),
        None => "setup:unknown".to_owned(),
    };
    limits.check(&req, &bucket, limits.sign_in).await?;
    let body = body.into_inner();
    let organization_name = body.organization_name.clone();
    let admin = auth
        .setup(
            &token.0,
            SetupInput {
                setup_token: body.setup_token,
                organization_name: body.organization_name,
                email: body.email,
                password: body.password,
            },
        )
        .await?;
    tracing::info!(user_id = %admin.id, "first-run setup completed");
    Ok(created(&SetupResponse {
        organization: OrganizationView { id: admin.organization_id.0, name: organization_name.trim().to_owned() },
        user: UserView::from(&admin),
    }))
}
