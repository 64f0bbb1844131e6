//! User management (P1, P8): admins add users with a role, list them, change their role or
//! status, delete them and issue password resets.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use otesse_domain::account::{AccountService, ResetMail, UserUpdateInput};
use otesse_domain::auth::AuthService;
use otesse_domain::user::{Permission, User, UserId};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ListResponse, created, parse_id};
use crate::error::ApiError;
use crate::extract::ByUser;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub email: String,
    /// A display name, when one was given.
    pub name: Option<String>,
    /// `admin`, `manager` or `viewer`.
    #[schema(schema_with = super::wire::role)]
    pub role: &'static str,
    /// `active` or `deactivated` (`deleted` only where a deleted user is named, such as a
    /// key's creator).
    #[schema(schema_with = super::wire::user_status)]
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.0,
            organization_id: user.organization_id.0,
            email: user.email.as_str().to_owned(),
            name: user.name.as_ref().map(|name| name.as_str().to_owned()),
            role: user.role.as_str(),
            status: user.status.as_str(),
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
    /// Optional display name, 1-100 characters.
    #[serde(default)]
    pub name: Option<String>,
}

/// Add a user to your organization (admin only).
#[utoipa::path(post, path = "/v1/users", operation_id = "createUser", tag = "users", params(crate::openapi::IdempotencyKey), request_body = CreateUserRequest, security(("session" = [])), responses((status = 201, body = UserView), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::JsonBody, crate::openapi::errors::Conflict, crate::openapi::errors::Idempotent))]
pub async fn create(
    auth: web::Data<AuthService>,
    user: ByUser,
    body: super::body::JsonObject<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let added = auth.add_user(&user.0, &body.email, body.password, &body.role, body.name.as_deref()).await?;
    Ok(created(&UserView::from(&added)))
}

/// Users of your organization (admin only).
#[utoipa::path(get, path = "/v1/users", operation_id = "listUsers", tag = "users", security(("session" = [])), responses((status = 200, body = ListResponse<UserView>), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden))]
pub async fn list(auth: web::Data<AuthService>, user: ByUser) -> Result<web::Json<ListResponse<UserView>>, ApiError> {
    let users = auth.list_users(&user.0).await?;
    Ok(web::Json(ListResponse::new::<String>(users.iter().map(UserView::from).collect(), None)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// `admin`, `manager` or `viewer`.
    #[serde(default)]
    #[schema(schema_with = super::wire::role_input)]
    pub role: Option<String>,
    /// `active` or `deactivated`. Deactivating ends the user's sessions at once; their API keys
    /// keep working until revoked.
    #[serde(default)]
    #[schema(schema_with = super::wire::user_status_input)]
    pub status: Option<String>,
    /// A display name (1-100 characters), or `null` to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(de).map(Some)
}

/// Change a user's role, status or name (admin only). The organization's last active admin
/// can be neither demoted nor deactivated (409 `last_admin`).
#[utoipa::path(patch, path = "/v1/users/{id}", operation_id = "updateUser", tag = "users", params(("id" = uuid::Uuid, Path)), request_body = UpdateUserRequest, security(("session" = [])), responses((status = 200, body = UserView), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::NotFound, crate::openapi::errors::JsonBody, crate::openapi::errors::Conflict))]
pub async fn update(
    accounts: web::Data<AccountService>,
    user: ByUser,
    id: web::Path<String>,
    body: super::body::JsonObject<UpdateUserRequest>,
) -> Result<web::Json<UserView>, ApiError> {
    let id = UserId(parse_id(&id, "user")?);
    let body = body.into_inner();
    let input = UserUpdateInput { role: body.role, status: body.status, name: body.name };
    let changed = accounts.update_user(&user.0, id, input).await?;
    Ok(web::Json(UserView::from(&changed)))
}

/// Delete a user (admin only). Their sessions end; the API keys they created keep working
/// until revoked and keep naming them. The organization's last active admin cannot be deleted.
#[utoipa::path(delete, path = "/v1/users/{id}", operation_id = "deleteUser", tag = "users", params(("id" = uuid::Uuid, Path)), security(("session" = [])), responses((status = 204, description = "Deleted"), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::NotFound, crate::openapi::errors::Conflict))]
pub async fn delete(
    accounts: web::Data<AccountService>,
    user: ByUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId(parse_id(&id, "user")?);
    accounts.delete_user(&user.0, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordResetView {
    /// `pwr_...`: shown once. Give it to the user; it works once, until `expires_at`.
    #[schema(format = Password)]
    pub reset_token: String,
    pub expires_at: DateTime<Utc>,
    /// `sent` (to the user's address through the organization's Postmark), `not_configured`
    /// (no Postmark connection with a default sender) or `failed`.
    #[schema(schema_with = super::wire::reset_email)]
    pub email: &'static str,
}

/// Issue a one-time password reset token for a user (admin only). It works once, for one
/// hour; issuing another voids the earlier one.
#[utoipa::path(post, path = "/v1/users/{id}/password-reset", operation_id = "createPasswordReset", tag = "users", params(("id" = uuid::Uuid, Path), crate::openapi::IdempotencyKey), security(("session" = [])), responses((status = 201, body = PasswordResetView), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden, crate::openapi::errors::NotFound, crate::openapi::errors::Idempotent))]
pub async fn issue_reset(
    accounts: web::Data<AccountService>,
    user: ByUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId(parse_id(&id, "user")?);
    let issued = accounts.issue_reset(&user.0, id).await?;
    let email = match &issued.mail {
        ResetMail::Sent => "sent",
        ResetMail::NotConfigured => "not_configured",
        ResetMail::Failed(detail) => {
            tracing::warn!(user_id = %id, detail = %detail, "the password reset email was not sent");
            "failed"
        }
    };
    use secrecy::ExposeSecret;
    let answer = HttpResponse::Created().json(PasswordResetView {
        reset_token: issued.token.expose_secret().to_owned(),
        expires_at: issued.reset.expires_at,
        email,
    });
    // Shown once, retries included: a retry with the same Idempotency-Key gets a pointer to the
    // user, not the token again.
    Ok(crate::idempotency::shown_once(answer, format!("/v1/users/{}", id.0)))
}
