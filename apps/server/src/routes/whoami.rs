//! `GET /v1/whoami` (K15): the key describes itself.

use actix_web::HttpResponse;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use chrono::{DateTime, Utc};
use otesse_domain::api_key::Scope;
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use crate::extract::{AnyScope, ByKey};

/// The answer's shape, as documented. The handler serializes [`Whoami`], which borrows the same
/// fields from the cached key instead of copying them (this answers every keyed health check).
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoamiResponse {
    pub id: uuid::Uuid,
    pub name: String,
    pub organization_id: uuid::Uuid,
    #[schema(schema_with = super::wire::environment)]
    pub environment: &'static str,
    #[schema(schema_with = super::wire::scope_level)]
    pub scope_level: &'static str,
    #[schema(schema_with = super::wire::scopes)]
    pub scopes: Vec<&'static str>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// [`WhoamiResponse`], borrowed: the same fields in the same order.
#[derive(Serialize)]
struct Whoami<'a> {
    id: uuid::Uuid,
    name: &'a str,
    organization_id: uuid::Uuid,
    environment: &'static str,
    scope_level: &'static str,
    #[serde(serialize_with = "scope_names")]
    scopes: &'a [Scope],
    expires_at: Option<DateTime<Utc>>,
}

fn scope_names<S: Serializer>(scopes: &&[Scope], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(scopes.iter().map(|s| s.as_str()))
}

/// Which key is this?
#[utoipa::path(get, path = "/v1/whoami", operation_id = "getWhoami", tag = "api", security(("api_key" = []), ("api_key_header" = [])), responses((status = 200, body = WhoamiResponse), crate::openapi::errors::Keyed))]
pub async fn whoami(auth: ByKey<AnyScope>) -> HttpResponse {
    let key = auth.key();
    let body = Whoami {
        id: key.id.0,
        name: key.name.as_str(),
        organization_id: key.organization_id.0,
        environment: key.environment.as_str(),
        scope_level: key.scope_level.as_str(),
        scopes: &key.scopes,
        expires_at: key.expires_at,
    };
    match serde_json::to_vec(&body) {
        Ok(json) => {
            HttpResponse::Ok().insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json"))).body(json)
        }
        Err(_) => actix_web::ResponseError::error_response(&crate::error::ApiError::internal()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn the_borrowed_answer_serializes_like_the_documented_shape() {
        let scopes = vec![Scope::CustomersRead, Scope::CustomersWrite];
        let expires_at = Some(Utc.with_ymd_and_hms(2027, 1, 2, 3, 4, 5).unwrap());
        let (id, organization_id) = (Uuid::from_u128(7), Uuid::from_u128(9));
        let documented = WhoamiResponse {
            id,
            name: "CI \"deploy\" key".into(),
            organization_id,
            environment: "live",
            scope_level: "custom",
            scopes: scopes.iter().map(|s| s.as_str()).collect(),
            expires_at,
        };
        let borrowed = Whoami {
            id,
            name: "CI \"deploy\" key",
            organization_id,
            environment: "live",
            scope_level: "custom",
            scopes: &scopes,
            expires_at,
        };
        assert_eq!(serde_json::to_string(&borrowed).unwrap(), serde_json::to_string(&documented).unwrap());
        assert!(!documented.scopes.is_empty());
    }
}
