//! Sender emails and phone numbers ([`ContactRepository`]), with exactly one default per
//! instance and kind while any exist (I11).
//!
//! Every write runs in one transaction whose first statement writes the instance's row
//! (`UPDATE integration_instances SET updated_at = ...`). On PostgreSQL that row lock
//! serializes the writes of one instance, so each sees what the previous ones committed (READ
//! COMMITTED); on SQLite the first write takes the database write lock before any read. The
//! partial unique index on `(instance_id, kind) WHERE is_default` backs this up: two defaults
//! of a kind cannot be stored, whatever happens. Each change is written with its event (see
//! [`crate::Outbox`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::event::DomainEvent;
use otesse_domain::integration::{ContactKind, ContactResource};
use otesse_domain::organization::OrganizationId;
use otesse_domain::ports::{ContactRepository, ContactStoreError};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::Database;
use crate::entity::{integration_contact as contact, integration_instance as instance};
use crate::outbox::Outbox;
use crate::support::{begin, corrupt, db_err, finish, is_unique_violation, stored};

/// Contacts on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct ContactStore {
    conn: DatabaseConnection,
    outbox: Outbox,
}

impl ContactStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone(), outbox: db.outbox() }
    }
}

#[async_trait]
impl ContactRepository for ContactStore {
    async fn list(
        &self,
        organization: OrganizationId,
        instance: Uuid,
        kind: ContactKind,
    ) -> Result<Vec<ContactResource>, StorageError> {
        contact::Entity::find()
            .filter(contact::Column::OrganizationId.eq(organization.0))
            .filter(contact::Column::InstanceId.eq(instance))
            .filter(contact::Column::Kind.eq(kind.as_str()))
            .order_by_asc(contact::Column::CreatedAt)
            .order_by_asc(contact::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn insert(
        &self,
        resource: &ContactResource,
        event: &DomainEvent,
    ) -> Result<ContactResource, ContactStoreError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let locked = instance::Entity::update_many()
                .col_expr(instance::Column::UpdatedAt, Expr::value(stored(resource.updated_at)))
                .filter(instance::Column::Id.eq(resource.instance_id))
                .filter(instance::Column::OrganizationId.eq(resource.organization_id.0))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            if locked.rows_affected == 0 {
                return Err(StorageError::new(format!(
                    "integration instance {} does not exist in organization {}",
                    resource.instance_id, resource.organization_id
                ))
                .into());
            }
            if value_taken(&txn, resource.instance_id, resource.kind, &resource.value, None).await? {
                return Err(ContactStoreError::Duplicate);
            }
            let is_default = oldest_of_kind(&txn, resource.instance_id, resource.kind).await?.is_none();
            let stored_resource = ContactResource {
                is_default,
                created_at: stored(resource.created_at),
                updated_at: stored(resource.updated_at),
                ..resource.clone()
            };
            contact::Entity::insert(to_active(&stored_resource))
                .exec_without_returning(&txn)
                .await
                .map_err(write_err)?;
            self.outbox.record(&txn, event).await?;
            Ok(stored_resource)
        }
        .await;
        finish(txn, outcome).await
    }

    async fn update(
        &self,
        organization: OrganizationId,
        id: Uuid,
        value: Option<String>,
        label: Option<String>,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<Option<ContactResource>, ContactStoreError> {
        let at = stored(at);
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let Some(current) = lock_and_find(&txn, organization, id, Expr::value(at)).await? else {
                return Ok(None);
            };
            let value = value.unwrap_or_else(|| current.value.clone());
            let label = label.unwrap_or_else(|| current.label.clone());
            if value != current.value && value_taken(&txn, current.instance_id, current.kind, &value, Some(id)).await? {
                return Err(ContactStoreError::Duplicate);
            }
            contact::Entity::update_many()
                .col_expr(contact::Column::Value, Expr::value(value.clone()))
                .col_expr(contact::Column::Label, Expr::value(label.clone()))
                .col_expr(contact::Column::UpdatedAt, Expr::value(at))
                .filter(contact::Column::Id.eq(id))
                .exec(&txn)
                .await
                .map_err(write_err)?;
            self.outbox.record(&txn, event).await?;
            Ok(Some(ContactResource { value, label, updated_at: at, ..current }))
        }
        .await;
        finish_found(txn, outcome).await
    }

    async fn delete(&self, organization: OrganizationId, id: Uuid, event: &DomainEvent) -> Result<bool, StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            // No time is given: the lock rewrites the instance's `updated_at` as it is.
            let Some(current) = lock_and_find(&txn, organization, id, Expr::col(instance::Column::UpdatedAt)).await?
            else {
                return Ok(None);
            };
            contact::Entity::delete_by_id(id).exec(&txn).await.map_err(db_err)?;
            if current.is_default
                && let Some(oldest) = oldest_of_kind(&txn, current.instance_id, current.kind).await?
            {
                contact::Entity::update_many()
                    .col_expr(contact::Column::IsDefault, Expr::value(true))
                    .filter(contact::Column::Id.eq(oldest))
                    .exec(&txn)
                    .await
                    .map_err(db_err)?;
            }
            self.outbox.record(&txn, event).await?;
            Ok(Some(()))
        }
        .await;
        Ok(finish_found(txn, outcome).await?.is_some())
    }

    async fn set_default(
        &self,
        organization: OrganizationId,
        id: Uuid,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<Option<ContactResource>, StorageError> {
        let at = stored(at);
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let Some(current) = lock_and_find(&txn, organization, id, Expr::value(at)).await? else {
                return Ok(None);
            };
            self.outbox.record(&txn, event).await?;
            if current.is_default {
                return Ok(Some(current));
            }
            // The others first: the partial unique index refuses two defaults even for a moment.
            contact::Entity::update_many()
                .col_expr(contact::Column::IsDefault, Expr::value(false))
                .col_expr(contact::Column::UpdatedAt, Expr::value(at))
                .filter(contact::Column::InstanceId.eq(current.instance_id))
                .filter(contact::Column::Kind.eq(current.kind.as_str()))
                .filter(contact::Column::IsDefault.eq(true))
                .filter(contact::Column::Id.ne(id))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            contact::Entity::update_many()
                .col_expr(contact::Column::IsDefault, Expr::value(true))
                .col_expr(contact::Column::UpdatedAt, Expr::value(at))
                .filter(contact::Column::Id.eq(id))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            Ok(Some(ContactResource { is_default: true, updated_at: at, ..current }))
        }
        .await;
        finish_found(txn, outcome).await
    }
}

/// Commits when the resource was found; rolls back when it was not (`Ok(None)`) or on failure.
async fn finish_found<T, E>(txn: DatabaseTransaction, outcome: Result<Option<T>, E>) -> Result<Option<T>, E>
where
    E: From<StorageError>,
{
    if let Ok(None) = outcome {
        txn.rollback().await.map_err(db_err)?;
        return Ok(None);
    }
    finish(txn, outcome).await
}

/// The first statement of a write on an existing resource: writes the row of the resource's
/// instance (matching nothing when no such resource is in this organization), then reads the
/// resource, which a concurrent delete may have removed while this one waited.
async fn lock_and_find(
    txn: &DatabaseTransaction,
    organization: OrganizationId,
    id: Uuid,
    updated_at: Expr,
) -> Result<Option<ContactResource>, StorageError> {
    let its_instance = Query::select()
        .column(contact::Column::InstanceId)
        .from(contact::Entity)
        .and_where(contact::Column::Id.eq(id))
        .and_where(contact::Column::OrganizationId.eq(organization.0))
        .to_owned();
    let locked = instance::Entity::update_many()
        .col_expr(instance::Column::UpdatedAt, updated_at)
        .filter(instance::Column::Id.in_subquery(its_instance))
        .exec(txn)
        .await
        .map_err(db_err)?;
    if locked.rows_affected == 0 {
        return Ok(None);
    }
    contact::Entity::find_by_id(id)
        .filter(contact::Column::OrganizationId.eq(organization.0))
        .one(txn)
        .await
        .map_err(db_err)?
        .map(to_domain)
        .transpose()
}

/// Whether another resource of the instance already lists `value` for `kind`.
async fn value_taken(
    txn: &impl ConnectionTrait,
    instance: Uuid,
    kind: ContactKind,
    value: &str,
    except: Option<Uuid>,
) -> Result<bool, StorageError> {
    let mut query = contact::Entity::find()
        .select_only()
        .column(contact::Column::Id)
        .filter(contact::Column::InstanceId.eq(instance))
        .filter(contact::Column::Kind.eq(kind.as_str()))
        .filter(contact::Column::Value.eq(value));
    if let Some(except) = except {
        query = query.filter(contact::Column::Id.ne(except));
    }
    Ok(query.into_tuple::<Uuid>().one(txn).await.map_err(db_err)?.is_some())
}

/// The oldest resource of the instance of this kind, if any.
async fn oldest_of_kind(
    txn: &impl ConnectionTrait,
    instance: Uuid,
    kind: ContactKind,
) -> Result<Option<Uuid>, StorageError> {
    contact::Entity::find()
        .select_only()
        .column(contact::Column::Id)
        .filter(contact::Column::InstanceId.eq(instance))
        .filter(contact::Column::Kind.eq(kind.as_str()))
        .order_by_asc(contact::Column::CreatedAt)
        .order_by_asc(contact::Column::Id)
        .into_tuple::<Uuid>()
        .one(txn)
        .await
        .map_err(db_err)
}

/// A unique violation on a write is a duplicate value (the checks before it make any other
/// violation impossible while the instance is locked).
fn write_err(err: DbErr) -> ContactStoreError {
    if is_unique_violation(&err) { ContactStoreError::Duplicate } else { db_err(err).into() }
}

fn to_active(resource: &ContactResource) -> contact::ActiveModel {
    contact::ActiveModel {
        id: Set(resource.id),
        organization_id: Set(resource.organization_id.0),
        instance_id: Set(resource.instance_id),
        kind: Set(resource.kind.as_str().to_owned()),
        value: Set(resource.value.clone()),
        label: Set(resource.label.clone()),
        is_default: Set(resource.is_default),
        created_at: Set(stored(resource.created_at)),
        updated_at: Set(stored(resource.updated_at)),
    }
}

const TABLE: &str = "integration_contacts";

fn to_domain(row: contact::Model) -> Result<ContactResource, StorageError> {
    let kind = ContactKind::parse(&row.kind).ok_or_else(|| corrupt(TABLE, "kind", &row.kind))?;
    Ok(ContactResource {
        id: row.id,
        organization_id: OrganizationId(row.organization_id),
        instance_id: row.instance_id,
        kind,
        value: row.value,
        label: row.label,
        is_default: row.is_default,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
