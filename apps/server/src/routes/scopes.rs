//! The scope catalog (K5) and the level policy (K4), for the key-creation form.

use actix_web::web;
use otesse_domain::api_key::{Access, Scope, ScopeLevel};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::ByUser;

#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeView {
    #[schema(schema_with = super::wire::scope)]
    pub name: &'static str,
    pub description: &'static str,
    /// `read` or `write`.
    #[schema(schema_with = super::wire::access)]
    pub access: &'static str,
    /// Only an admin may grant it.
    pub sensitive: bool,
    /// Test keys may not hold it (it reaches organization-wide live integrations or webhooks).
    pub live_only: bool,
    /// The scope levels that may hold it.
    #[schema(schema_with = super::wire::scope_levels)]
    pub levels: Vec<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LevelView {
    #[schema(schema_with = super::wire::scope_level)]
    pub name: &'static str,
    pub description: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeCatalog {
    pub data: Vec<ScopeView>,
    pub levels: Vec<LevelView>,
}

pub fn scope_view(scope: Scope) -> ScopeView {
    let info = scope.info();
    ScopeView {
        name: info.name,
        description: info.description,
        access: match info.access {
            Access::Read => "read",
            Access::Write => "write",
        },
        sensitive: info.sensitive,
        live_only: info.live_only,
        levels: ScopeLevel::ALL.into_iter().filter(|l| l.allows_scope(scope)).map(ScopeLevel::as_str).collect(),
    }
}

fn level_description(level: ScopeLevel) -> &'static str {
    match level {
        ScopeLevel::ReadOnly => "GET requests only, on standard resources",
        ScopeLevel::ReadWrite => "GET, POST, PUT, PATCH and DELETE on standard resources",
        ScopeLevel::Admin => "Everything, including settings, user management, billing and integrations",
    }
}

/// Every granular scope with its description and sensitive flag, and the scope levels.
#[utoipa::path(get, path = "/v1/scopes", operation_id = "listScopes", tag = "api-keys", security(("session" = [])), responses((status = 200, body = ScopeCatalog), crate::openapi::errors::SignedIn))]
pub async fn list(_user: ByUser) -> Result<web::Json<ScopeCatalog>, ApiError> {
    Ok(web::Json(ScopeCatalog {
        data: Scope::ALL.into_iter().map(scope_view).collect(),
        levels: ScopeLevel::ALL
            .into_iter()
            .map(|l| LevelView { name: l.as_str(), description: level_description(l) })
            .collect(),
    }))
}
