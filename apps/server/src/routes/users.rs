//! User management (P1): admins add users with a role and list them.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use otesse_domain::auth::AuthService;
use otesse_domain::user::{Permission, User};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ListResponse, created};
use crate::error::ApiError;
use crate::extract::ByUser;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub email: String,
    /// `admin`, `manager` or `viewer`.
    #[schema(schema_with = super::wire::role)]
    pub role: &'static str,
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.0,
            organization_id: user.organization_id.0,
            email: user.email.as_str().to_owned(),
            role: user.role.as_str(),
            created_at: user.created_at,
        }
    }
}

pub fn permission_name(permission: Permission) -> &'static str {
    match permission {
        Permission::SettingsView => "settings.view",
        Permission::SettingsEdit => "settings.edit",
        Permission::UsersManage => "users.manage",
        Permission::GrantSensitiveScopes => "scopes.grant_sensitive",
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// `admin`, `manager` or `viewer`.
    #[schema(schema_with = super::wire::role)]
    pub role: String,
}

/// Add a user to your organization (admin only).
#[utoipa::path(post, path = "/v1/users", operation_id = "createUser", tag = "users", params(crate::openapi::IdempotencyKey), request_body = CreateUserRequest, security(("session" = [])), responses((status = 201, body = UserView), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::JsonBody, crate::openapi::errors::Conflict, crate::openapi::errors::Idempotent))]
pub async fn create(
    auth: web::Data<AuthService>,
    user: ByUser,
    body: super::body::JsonObject<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let added = auth.add_user(&user.0, &body.email, body.password, &body.role).await?;
    Ok(created(&UserView::from(&added)))
}

/// Users of your organization (admin only).
#[utoipa::path(get, path = "/v1/users", operation_id = "listUsers", tag = "users", security(("session" = [])), responses((status = 200, body = ListResponse<UserView>), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden))]
pub async fn list(auth: web::Data<AuthService>, user: ByUser) -> Result<web::Json<ListResponse<UserView>>, ApiError> {
    let users = auth.list_users(&user.0).await?;
    Ok(web::Json(ListResponse::new::<String>(users.iter().map(UserView::from).collect(), None)))
}
