//! `GET /v1/whoami` (K15): the key describes itself.

use actix_web::web;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::{AnyScope, KeyAuth};

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoamiResponse {
    pub id: uuid::Uuid,
    pub name: String,
    pub organization_id: uuid::Uuid,
    pub environment: &'static str,
    pub scope_level: &'static str,
    pub scopes: Vec<&'static str>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Which key is this?
#[utoipa::path(get, path = "/v1/whoami", tag = "api", security(("api_key" = []), ("api_key_header" = [])),
    responses((status = 200, body = WhoamiResponse), (status = 401)))]
pub async fn whoami(auth: KeyAuth<AnyScope>) -> web::Json<WhoamiResponse> {
    let key = &auth.key;
    web::Json(WhoamiResponse {
        id: key.id.0,
        name: key.name.as_str().to_owned(),
        organization_id: key.organization_id.0,
        environment: key.environment.as_str(),
        scope_level: key.scope_level.as_str(),
        scopes: key.scopes.iter().map(|s| s.as_str()).collect(),
        expires_at: key.expires_at,
    })
}
