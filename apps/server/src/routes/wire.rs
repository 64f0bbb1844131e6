//! The closed sets of names the API sends and accepts, as OpenAPI schemas (string enums) for
//! the view types' `#[schema(schema_with = ...)]`. Each list comes from the domain's own list
//! (`ALL`) or, where the domain keeps none, is written here beside an exhaustive match: a new
//! variant does not compile until it is listed, so the document cannot fall behind the server.
//!
//! Each set carries a `title`, its name (`Environment`, `ScopeLevel`): every property that uses
//! the set has the same title, so generated clients (the Rust client's `generated.rs`) make one
//! type per set rather than one per property.

use otesse_domain::api_key::{Access, ApiKeyStatus, Environment, ExpiresIn, Scope, ScopeLevel};
use otesse_domain::event::EventKind;
use otesse_domain::integration::{
    AuthMethod, AuthType, Category, ConnectionStatus, CredentialField, HealthOutcome, InstanceStatus, ResourceType,
};
use otesse_domain::notification::NotificationKind;
use otesse_domain::user::{Permission, Role, UserStatus};
use otesse_domain::webhook::{DeliveryState, EndpointStatus};
use serde_json::{Value, json};
use utoipa::openapi::{RefOr, Schema};

/// The names of every variant, by the type's `as_str`, checked exhaustive.
macro_rules! listed {
    ($ty:ident: $($variant:ident),+ $(,)?) => {{
        // Exhaustive: a new variant does not compile until it is listed here.
        let _exhaustive = |value: $ty| match value {
            $($ty::$variant)|+ => (),
        };
        [$($ty::$variant),+].map($ty::as_str).to_vec()
    }};
}

fn schema(value: Value) -> RefOr<Schema> {
    match serde_json::from_value(value) {
        Ok(schema) => RefOr::T(schema),
        Err(err) => panic!("a name schema does not build: {err}"),
    }
}

/// A string, one of `names`, the set called `title`.
fn one_of(title: &str, names: Vec<&'static str>) -> RefOr<Schema> {
    schema(json!({"title": title, "type": "string", "enum": names}))
}

/// A string, one of `names`, or `null`.
fn optional(title: &str, names: Vec<&'static str>) -> RefOr<Schema> {
    let mut values: Vec<Value> = names.into_iter().map(Value::from).collect();
    values.push(Value::Null);
    schema(json!({"title": title, "type": ["string", "null"], "enum": values}))
}

/// A list of strings, each one of `names`.
fn list(title: &str, names: Vec<&'static str>) -> RefOr<Schema> {
    schema(json!({"type": "array", "items": {"title": title, "type": "string", "enum": names}}))
}

fn scope_names() -> Vec<&'static str> {
    Scope::ALL.map(Scope::as_str).to_vec()
}

fn event_type_names() -> Vec<&'static str> {
    EventKind::deliverable().map(EventKind::as_str).collect()
}

pub fn scope_level() -> RefOr<Schema> {
    one_of("ScopeLevel", ScopeLevel::ALL.map(ScopeLevel::as_str).to_vec())
}

pub fn scope_levels() -> RefOr<Schema> {
    list("ScopeLevel", ScopeLevel::ALL.map(ScopeLevel::as_str).to_vec())
}

pub fn scope() -> RefOr<Schema> {
    one_of("Scope", scope_names())
}

pub fn scopes() -> RefOr<Schema> {
    list("Scope", scope_names())
}

/// Scopes as a request may spell them: `customers.read`, or `customers:read` (K5). The set is
/// still `Scope`: the second spellings are aliases.
pub fn scope_inputs() -> RefOr<Schema> {
    let names: Vec<String> =
        scope_names().into_iter().flat_map(|name| [name.to_owned(), name.replacen('.', ":", 1)]).collect();
    schema(json!({"type": "array", "items": {"title": "Scope", "type": "string", "enum": names}}))
}

pub fn environment() -> RefOr<Schema> {
    one_of("Environment", Environment::ALL.map(Environment::as_str).to_vec())
}

pub fn expires_in() -> RefOr<Schema> {
    one_of("ExpiresIn", ExpiresIn::ALL.map(ExpiresIn::as_str).to_vec())
}

pub fn key_status() -> RefOr<Schema> {
    one_of("KeyStatus", listed!(ApiKeyStatus: Active, Expired, Revoked))
}

pub fn access() -> RefOr<Schema> {
    let _exhaustive = |access: Access| match access {
        Access::Read | Access::Write => (),
    };
    one_of("Access", vec!["read", "write"])
}

pub fn role() -> RefOr<Schema> {
    one_of("Role", Role::ALL.map(Role::as_str).to_vec())
}

/// An optional role in a change (`PATCH /v1/users/{id}`).
pub fn role_input() -> RefOr<Schema> {
    optional("Role", Role::ALL.map(Role::as_str).to_vec())
}

pub fn user_status() -> RefOr<Schema> {
    one_of("UserStatus", UserStatus::ALL.map(UserStatus::as_str).to_vec())
}

/// The statuses an admin may set: deletion has its own route.
pub fn user_status_input() -> RefOr<Schema> {
    let _exhaustive = |status: UserStatus| match status {
        UserStatus::Active | UserStatus::Deactivated | UserStatus::Deleted => (),
    };
    optional("UserStatusChange", vec![UserStatus::Active.as_str(), UserStatus::Deactivated.as_str()])
}

/// Whether a password reset token also went out by email.
pub fn reset_email() -> RefOr<Schema> {
    let _exhaustive = |mail: otesse_domain::account::ResetMail| match mail {
        otesse_domain::account::ResetMail::Sent
        | otesse_domain::account::ResetMail::NotConfigured
        | otesse_domain::account::ResetMail::Failed(_) => (),
    };
    one_of("ResetEmail", vec!["sent", "not_configured", "failed"])
}

pub fn permissions() -> RefOr<Schema> {
    use Permission::*;
    let all = [SettingsView, SettingsEdit, UsersManage, GrantSensitiveScopes];
    let _exhaustive = |permission: Permission| match permission {
        SettingsView | SettingsEdit | UsersManage | GrantSensitiveScopes => (),
    };
    list("Permission", all.map(super::users::permission_name).to_vec())
}

pub fn category() -> RefOr<Schema> {
    one_of("Category", Category::ALL.map(Category::as_str).to_vec())
}

pub fn auth_type() -> RefOr<Schema> {
    one_of("AuthType", listed!(AuthType: ApiKey, OAuth2))
}

pub fn credential_field() -> RefOr<Schema> {
    one_of("CredentialField", CredentialField::ALL.map(CredentialField::as_str).to_vec())
}

pub fn resource_types() -> RefOr<Schema> {
    list("ResourceType", ResourceType::ALL.map(ResourceType::as_str).to_vec())
}

/// This organization's state of a provider, as `ProviderView` computes it.
pub fn provider_connection_status() -> RefOr<Schema> {
    one_of("ProviderConnectionStatus", vec!["not_connected", "connected", "error"])
}

pub fn health_outcome() -> RefOr<Schema> {
    one_of("HealthOutcome", listed!(HealthOutcome: Healthy, InvalidCredentials, Unreachable, RateLimited))
}

pub fn connection_status() -> RefOr<Schema> {
    one_of("ConnectionStatus", listed!(ConnectionStatus: Connected, Disconnected, NeedsReauthorization))
}

pub fn instance_status() -> RefOr<Schema> {
    one_of("InstanceStatus", listed!(InstanceStatus: Active, Error, Disconnected))
}

pub fn auth_method() -> RefOr<Schema> {
    one_of("AuthMethod", listed!(AuthMethod: ApiKey, Preconfigured, OAuth2))
}

pub fn event_type() -> RefOr<Schema> {
    one_of("EventType", event_type_names())
}

pub fn event_types() -> RefOr<Schema> {
    list("EventType", event_type_names())
}

pub fn optional_event_types() -> RefOr<Schema> {
    schema(
        json!({"type": ["array", "null"], "items": {"title": "EventType", "type": "string", "enum": event_type_names()}}),
    )
}

pub fn endpoint_status() -> RefOr<Schema> {
    one_of("EndpointStatus", listed!(EndpointStatus: Enabled, Disabled))
}

pub fn optional_endpoint_status() -> RefOr<Schema> {
    optional("EndpointStatus", listed!(EndpointStatus: Enabled, Disabled))
}

pub fn delivery_state() -> RefOr<Schema> {
    one_of("DeliveryState", listed!(DeliveryState: Pending, Succeeded, Failed))
}

pub fn notification_kind() -> RefOr<Schema> {
    one_of("NotificationKind", NotificationKind::ALL.map(NotificationKind::as_str).to_vec())
}

pub fn audit_action() -> RefOr<Schema> {
    one_of("AuditAction", EventKind::auditable().map(EventKind::as_str).collect())
}

/// Who did it, as `AuditEntryView` names it.
pub fn actor_type() -> RefOr<Schema> {
    one_of("ActorType", vec!["user", "api_key", "system"])
}
