//! The audit trail ([`AuditLog`]). Entries are written by the outbox ([`crate::Outbox`]),
//! inside the transaction of the change they record.

use std::collections::BTreeMap;

use async_trait::async_trait;
use otesse_domain::StorageError;
use otesse_domain::api_key::ApiKeyId;
use otesse_domain::audit::{AuditActor, AuditEntry, AuditFilter};
use otesse_domain::event::EventKind;
use otesse_domain::organization::OrganizationId;
use otesse_domain::page::{Page, PageRequest};
use otesse_domain::ports::AuditLog;
use otesse_domain::user::UserId;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::Database;
use crate::entity::audit_log;
use crate::support::{corrupt, db_err, overfetch, stored};

const ACTOR_USER: &str = "user";
const ACTOR_API_KEY: &str = "api_key";
const ACTOR_SYSTEM: &str = "system";

/// The audit trail on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct AuditStore {
    conn: DatabaseConnection,
}

impl AuditStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone() }
    }
}

#[async_trait]
impl AuditLog for AuditStore {
    async fn list(
        &self,
        organization: OrganizationId,
        filter: &AuditFilter,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<AuditEntry, Uuid>, StorageError> {
        let mut query = audit_log::Entity::find().filter(audit_log::Column::OrganizationId.eq(organization.0));
        if let Some(action) = filter.action {
            query = query.filter(audit_log::Column::Action.eq(action.as_str()));
        }
        if let Some(actor) = filter.actor {
            let (actor_type, actor_id) = actor_columns(actor);
            query = query.filter(audit_log::Column::ActorType.eq(actor_type));
            if let Some(id) = actor_id {
                query = query.filter(audit_log::Column::ActorId.eq(id));
            }
        }
        if let Some(target_type) = &filter.target_type {
            query = query.filter(audit_log::Column::TargetType.eq(target_type.as_str()));
        }
        if let Some(provider) = &filter.provider {
            query = query.filter(audit_log::Column::Provider.eq(provider.as_str()));
        }
        if let Some(from) = filter.from {
            query = query.filter(audit_log::Column::OccurredAt.gte(stored(from)));
        }
        if let Some(to) = filter.to {
            query = query.filter(audit_log::Column::OccurredAt.lte(stored(to)));
        }
        if let Some(after) = page.after() {
            query = query.filter(audit_log::Column::Id.lt(*after));
        }
        let rows = query
            .order_by_desc(audit_log::Column::Id)
            .limit(overfetch(page.limit()))
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        let entries = rows.into_iter().map(to_domain).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(entries, page.limit(), |entry| entry.id))
    }
}

/// Writes one entry on `conn`, which may be a transaction.
pub(crate) async fn insert(conn: &impl ConnectionTrait, entry: &AuditEntry) -> Result<(), StorageError> {
    audit_log::Entity::insert(to_active(entry)).exec_without_returning(conn).await.map_err(db_err)?;
    Ok(())
}

fn actor_columns(actor: AuditActor) -> (&'static str, Option<Uuid>) {
    match actor {
        AuditActor::User(UserId(id)) => (ACTOR_USER, Some(id)),
        AuditActor::ApiKey(ApiKeyId(id)) => (ACTOR_API_KEY, Some(id)),
        AuditActor::System => (ACTOR_SYSTEM, None),
    }
}

fn to_active(entry: &AuditEntry) -> audit_log::ActiveModel {
    let (actor_type, actor_id) = actor_columns(entry.actor);
    let details = serde_json::Value::from_iter(
        entry.details.iter().map(|(key, value)| (key.clone(), serde_json::Value::from(value.as_str()))),
    );
    audit_log::ActiveModel {
        id: Set(entry.id),
        organization_id: Set(entry.organization_id.0),
        actor_type: Set(actor_type.to_owned()),
        actor_id: Set(actor_id),
        action: Set(entry.action.as_str().to_owned()),
        target_type: Set(entry.target_type.clone()),
        target_id: Set(entry.target_id.clone()),
        occurred_at: Set(stored(entry.occurred_at)),
        provider: Set(entry.provider.clone()),
        details: Set(details.to_string()),
    }
}

fn to_domain(row: audit_log::Model) -> Result<AuditEntry, StorageError> {
    let actor = match (row.actor_type.as_str(), row.actor_id) {
        (ACTOR_USER, Some(id)) => AuditActor::User(UserId(id)),
        (ACTOR_API_KEY, Some(id)) => AuditActor::ApiKey(ApiKeyId(id)),
        (ACTOR_SYSTEM, None) => AuditActor::System,
        (other, id) => return Err(corrupt("audit_log", "actor_type", (other, id))),
    };
    let action = EventKind::parse(&row.action)
        .filter(|kind| kind.audited())
        .ok_or_else(|| corrupt("audit_log", "action", &row.action))?;
    let details: BTreeMap<String, String> =
        serde_json::from_str(&row.details).map_err(|_| corrupt("audit_log", "details", &row.details))?;
    Ok(AuditEntry {
        id: row.id,
        organization_id: OrganizationId(row.organization_id),
        actor,
        action,
        target_type: row.target_type,
        target_id: row.target_id,
        occurred_at: row.occurred_at,
        provider: row.provider,
        details,
    })
}
