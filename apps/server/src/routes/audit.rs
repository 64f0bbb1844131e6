//! The audit log (K16, I9): key and integration operations, who did them and when.

use std::collections::BTreeMap;

use actix_web::web;
use chrono::{DateTime, Utc};
use otesse_domain::audit::{AuditActor, AuditEntry, AuditFilter, AuditQueryError, AuditService};
use otesse_domain::event::EventKind;
use otesse_domain::page::PageRequest;
use otesse_domain::user::UserId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ListResponse;
use crate::error::{ApiError, ErrorCode};
use crate::extract::ByUser;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: uuid::Uuid,
    /// e.g. `api_key.created`
    #[schema(schema_with = super::wire::audit_action)]
    pub action: &'static str,
    /// `user`, `api_key` or `system`.
    #[schema(schema_with = super::wire::actor_type)]
    pub actor_type: &'static str,
    pub actor_id: Option<uuid::Uuid>,
    pub target_type: String,
    pub target_id: String,
    pub occurred_at: DateTime<Utc>,
    pub details: BTreeMap<String, String>,
}

impl From<&AuditEntry> for AuditEntryView {
    fn from(entry: &AuditEntry) -> Self {
        let (actor_type, actor_id) = match entry.actor {
            AuditActor::User(id) => ("user", Some(id.0)),
            AuditActor::ApiKey(id) => ("api_key", Some(id.0)),
            AuditActor::System => ("system", None),
        };
        Self {
            id: entry.id,
            action: entry.action.as_str(),
            actor_type,
            actor_id,
            target_type: entry.target_type.clone(),
            target_id: entry.target_id.clone(),
            occurred_at: entry.occurred_at,
            details: entry.details.clone(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// e.g. `api_key.revoked`
    #[param(schema_with = super::wire::audit_action)]
    pub action: Option<String>,
    /// A user id.
    pub actor: Option<uuid::Uuid>,
    /// e.g. `api_key`
    pub target_type: Option<String>,
    /// A provider slug, e.g. `stripe`.
    pub provider: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    pub cursor: Option<uuid::Uuid>,
}

/// Audit entries of your organization, newest first, filtered.
#[utoipa::path(get, path = "/v1/integrations/audit-log", operation_id = "listAuditLogEntries", tag = "audit", params(AuditQuery), security(("session" = [])), responses((status = 200, body = ListResponse<AuditEntryView>), crate::openapi::errors::SignedIn, crate::openapi::errors::Forbidden))]
pub async fn list(
    audit: web::Data<AuditService>,
    user: ByUser,
    query: web::Query<AuditQuery>,
) -> Result<web::Json<ListResponse<AuditEntryView>>, ApiError> {
    let actor = user.0;
    let query = query.into_inner();
    let action = query
        .action
        .as_deref()
        .map(|raw| {
            EventKind::parse(raw)
                .filter(|kind| kind.audited())
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidParameter, "unknown action"))
        })
        .transpose()?;
    let filter = AuditFilter {
        action,
        actor: query.actor.map(|id| AuditActor::User(UserId(id))),
        target_type: query.target_type,
        provider: query.provider,
        from: query.from,
        to: query.to,
    };
    let page = PageRequest::new(query.limit, query.cursor)?;
    let page = audit.list(&actor, &filter, &page).await.map_err(|err| match err {
        AuditQueryError::Forbidden(_) => {
            ApiError::new(ErrorCode::PermissionDenied, "Your role does not allow this action.")
        }
        AuditQueryError::Storage(err) => err.into(),
    })?;
    Ok(web::Json(ListResponse::new(page.items.iter().map(AuditEntryView::from).collect(), page.next)))
}
