//! Integrations ([`IntegrationRepository`]): an organization's instance of each provider, the
//! users' connections to it, their encrypted credentials and their health checks.
//!
//! Every transaction that changes connections writes the instance row first (the upsert of a
//! connect, the `updated_at` of a disconnect). On PostgreSQL that row lock serializes the
//! connects and disconnects of one instance, so "is any connection still connected" is answered
//! after the others committed and an instance is never left `active` with nothing connected, or
//! `disconnected` with a connection. On SQLite the first write takes the database write lock.
//!
//! Credentials are stored as the cipher sealed them; their owner (organization, connection,
//! field: the associated data) is rebuilt from the row's own columns, so a ciphertext copied to
//! another row fails to decrypt. Every change is written with its event (see [`Outbox`]).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::event::DomainEvent;
use otesse_domain::integration::{
    AuthMethod, ConnectionStatus, ConnectionView, CredentialField, HealthCheck, HealthOutcome, InstanceStatus,
    IntegrationConnection, IntegrationInstance, NewConnection, ProviderSlug, ProviderState, SaveConnectionError,
    StoredCredential,
};
use otesse_domain::organization::OrganizationId;
use otesse_domain::ports::IntegrationRepository;
use otesse_domain::sealed::Ciphertext;
use otesse_domain::user::UserId;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::Database;
use crate::entity::{
    integration_connection as connection, integration_credential as credential, integration_health_check as health,
    integration_instance as instance,
};
use crate::outbox::Outbox;
use crate::support::{begin, corrupt, db_err, finish, is_unique_violation, stored};

/// Integrations on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct IntegrationStore {
    conn: DatabaseConnection,
    outbox: Outbox,
}

impl IntegrationStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone(), outbox: db.outbox() }
    }
}

#[async_trait]
impl IntegrationRepository for IntegrationStore {
    async fn provider_states(&self, organization: OrganizationId) -> Result<Vec<ProviderState>, StorageError> {
        let instances = instance::Entity::find()
            .filter(instance::Column::OrganizationId.eq(organization.0))
            .order_by_asc(instance::Column::Provider)
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        let connected: HashSet<Uuid> = connection::Entity::find()
            .select_only()
            .column(connection::Column::InstanceId)
            .distinct()
            .filter(connection::Column::OrganizationId.eq(organization.0))
            .filter(connection::Column::Status.eq(ConnectionStatus::Connected.as_str()))
            .into_tuple::<Uuid>()
            .all(&self.conn)
            .await
            .map_err(db_err)?
            .into_iter()
            .collect();
        instances
            .into_iter()
            .map(|row| {
                let connected = connected.contains(&row.id);
                let instance = instance_to_domain(row)?;
                Ok(ProviderState { provider: instance.provider, instance_status: instance.status, connected })
            })
            .collect()
    }

    async fn find_instance(
        &self,
        organization: OrganizationId,
        provider: &ProviderSlug,
    ) -> Result<Option<IntegrationInstance>, StorageError> {
        find_instance_in(&self.conn, organization, provider).await?.map(instance_to_domain).transpose()
    }

    async fn save_connection(&self, new: &NewConnection, event: &DomainEvent) -> Result<(), SaveConnectionError> {
        check_belongs(new)?;
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let instance_id = upsert_instance(&txn, &new.instance).await?;
            // The instance may have existed under another id than the one the caller made up.
            let row =
                connection::ActiveModel { instance_id: Set(instance_id), ..connection_to_active(&new.connection) };
            // At most one connected connection per organization, provider and user (a partial
            // unique index): a concurrent connect that committed first wins.
            connection::Entity::insert(row).exec_without_returning(&txn).await.map_err(|err| {
                if is_unique_violation(&err) {
                    SaveConnectionError::AlreadyConnected
                } else {
                    SaveConnectionError::Storage(db_err(err))
                }
            })?;
            if !new.credentials.is_empty() {
                let rows = new.credentials.iter().map(credential_to_active).collect::<Result<Vec<_>, _>>()?;
                credential::Entity::insert_many(rows).exec_without_returning(&txn).await.map_err(db_err)?;
            }
            if let Some(tokens) = &new.tokens {
                crate::oauth::insert_tokens(&txn, tokens).await?;
            }
            insert_health(&txn, &new.health).await?;
            self.outbox.record(&txn, event).await?;
            Ok::<_, SaveConnectionError>(())
        }
        .await;
        finish(txn, outcome).await
    }

    async fn record_failed_connect(
        &self,
        instance: &IntegrationInstance,
        event: &DomainEvent,
    ) -> Result<(), StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            upsert_instance(&txn, instance).await?;
            self.outbox.record(&txn, event).await
        }
        .await;
        finish(txn, outcome).await
    }

    async fn connected_connections(&self) -> Result<Vec<ConnectionView>, StorageError> {
        views(&self.conn, Condition::all().add(connection::Column::Status.eq(ConnectionStatus::Connected.as_str())))
            .await
    }

    async fn list_connections(&self, organization: OrganizationId) -> Result<Vec<ConnectionView>, StorageError> {
        views(&self.conn, Condition::all().add(connection::Column::OrganizationId.eq(organization.0))).await
    }

    async fn find_connection(
        &self,
        organization: OrganizationId,
        id: Uuid,
    ) -> Result<Option<ConnectionView>, StorageError> {
        let only = Condition::all()
            .add(connection::Column::OrganizationId.eq(organization.0))
            .add(connection::Column::Id.eq(id));
        Ok(views(&self.conn, only).await?.into_iter().next())
    }

    async fn credentials(&self, connection: Uuid) -> Result<Vec<StoredCredential>, StorageError> {
        credential::Entity::find()
            .filter(credential::Column::ConnectionId.eq(connection))
            .order_by_asc(credential::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(credential_to_domain)
            .collect()
    }

    async fn record_health<'a>(
        &self,
        check: &HealthCheck,
        instance: Uuid,
        status: InstanceStatus,
        event: Option<&'a DomainEvent>,
    ) -> Result<(), StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            insert_health(&txn, check).await?;
            instance::Entity::update_many()
                .col_expr(instance::Column::Status, Expr::value(status.as_str()))
                .col_expr(instance::Column::UpdatedAt, Expr::value(stored(check.checked_at)))
                .filter(instance::Column::Id.eq(instance))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            if let Some(event) = event {
                self.outbox.record(&txn, event).await?;
            }
            Ok(())
        }
        .await;
        finish(txn, outcome).await
    }

    async fn health_history(&self, connection: Uuid, limit: u32) -> Result<Vec<HealthCheck>, StorageError> {
        health::Entity::find()
            .filter(health::Column::ConnectionId.eq(connection))
            .order_by_desc(health::Column::Id)
            .limit(u64::from(limit))
            .all(&self.conn)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(health_to_domain)
            .collect()
    }

    async fn disconnect(
        &self,
        organization: OrganizationId,
        id: Uuid,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<bool, StorageError> {
        let at = stored(at);
        let connected = ConnectionStatus::Connected.as_str();
        // A connection waiting for re-authorization can be disconnected too.
        let live = [connected, ConnectionStatus::NeedsReauthorization.as_str()];
        let this_connected = Condition::all()
            .add(connection::Column::Id.eq(id))
            .add(connection::Column::OrganizationId.eq(organization.0))
            .add(connection::Column::Status.is_in(live));
        let txn = begin(&self.conn).await?;
        let outcome = async {
            // The instance's row first (see the module docs); it matches nothing when no
            // connected connection has this id in this organization.
            let its_instance = Query::select()
                .column(connection::Column::InstanceId)
                .from(connection::Entity)
                .cond_where(this_connected.clone())
                .to_owned();
            let touched = instance::Entity::update_many()
                .col_expr(instance::Column::UpdatedAt, Expr::value(at))
                .filter(instance::Column::Id.in_subquery(its_instance))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            if touched.rows_affected == 0 {
                return Ok(false);
            }
            // Matches nothing if a concurrent disconnect of the same connection committed while
            // this one waited for the instance's lock.
            let disconnected = connection::Entity::update_many()
                .col_expr(connection::Column::Status, Expr::value(ConnectionStatus::Disconnected.as_str()))
                .col_expr(connection::Column::DisconnectedAt, Expr::value(Some(at)))
                .filter(this_connected)
                .exec(&txn)
                .await
                .map_err(db_err)?;
            if disconnected.rows_affected == 0 {
                return Ok(false);
            }
            credential::Entity::delete_many()
                .filter(credential::Column::ConnectionId.eq(id))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            crate::oauth::delete_tokens(&txn, id).await?;
            crate::stripe_webhooks::delete_for_connection(&txn, id).await?;
            let instance_id: Uuid = connection::Entity::find_by_id(id)
                .select_only()
                .column(connection::Column::InstanceId)
                .into_tuple()
                .one(&txn)
                .await
                .map_err(db_err)?
                .ok_or_else(|| StorageError::new(format!("integration connection {id} vanished")))?;
            let still_connected = connection::Entity::find()
                .select_only()
                .column(connection::Column::Id)
                .filter(connection::Column::InstanceId.eq(instance_id))
                .filter(connection::Column::Status.eq(connected))
                .into_tuple::<Uuid>()
                .one(&txn)
                .await
                .map_err(db_err)?;
            if still_connected.is_none() {
                instance::Entity::update_many()
                    .col_expr(instance::Column::Status, Expr::value(InstanceStatus::Disconnected.as_str()))
                    .filter(instance::Column::Id.eq(instance_id))
                    .exec(&txn)
                    .await
                    .map_err(db_err)?;
            }
            self.outbox.record(&txn, event).await?;
            Ok(true)
        }
        .await;
        commit_if(txn, outcome).await
    }

    async fn set_enabled(
        &self,
        instance: Uuid,
        enabled: bool,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<(), StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            instance::Entity::update_many()
                .col_expr(instance::Column::Enabled, Expr::value(enabled))
                .col_expr(instance::Column::UpdatedAt, Expr::value(stored(at)))
                .filter(instance::Column::Id.eq(instance))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            self.outbox.record(&txn, event).await
        }
        .await;
        finish(txn, outcome).await
    }

    async fn set_selected_model(
        &self,
        instance: Uuid,
        model: Option<String>,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<(), StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            instance::Entity::update_many()
                .col_expr(instance::Column::SelectedModel, Expr::value(model))
                .col_expr(instance::Column::UpdatedAt, Expr::value(stored(at)))
                .filter(instance::Column::Id.eq(instance))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            self.outbox.record(&txn, event).await
        }
        .await;
        finish(txn, outcome).await
    }
}

/// The records of a connect must all be about its connection; anything else is a bug upstream
/// that would file a credential (or a check) under another connection.
fn check_belongs(new: &NewConnection) -> Result<(), StorageError> {
    let id = new.connection.id;
    let organization = new.connection.organization_id;
    let misfiled = new
        .credentials
        .iter()
        .any(|credential| credential.connection_id != id || credential.organization_id != organization)
        || new.tokens.as_ref().is_some_and(|t| t.connection_id != id || t.organization_id != organization)
        || new.health.connection_id != id
        || new.instance.organization_id != organization
        || new.instance.provider != new.connection.provider;
    if misfiled {
        return Err(StorageError::new(format!("the records of integration connection {id} do not all belong to it")));
    }
    Ok(())
}

/// Commits when the operation happened; rolls back when it did not (`Ok(false)`) or failed.
async fn commit_if(txn: DatabaseTransaction, outcome: Result<bool, StorageError>) -> Result<bool, StorageError> {
    if let Ok(false) = outcome {
        txn.rollback().await.map_err(db_err)?;
        return Ok(false);
    }
    finish(txn, outcome).await
}

/// Inserts the instance, or sets the status and `updated_at` of the organization's existing
/// instance of the provider (keeping its id, `enabled` and `created_at`). Returns the id of the
/// row stored.
async fn upsert_instance(txn: &impl ConnectionTrait, instance: &IntegrationInstance) -> Result<Uuid, StorageError> {
    let row = instance::ActiveModel {
        id: Set(instance.id),
        organization_id: Set(instance.organization_id.0),
        provider: Set(instance.provider.as_str().to_owned()),
        status: Set(instance.status.as_str().to_owned()),
        enabled: Set(instance.enabled),
        selected_model: Set(instance.selected_model.clone()),
        created_at: Set(stored(instance.created_at)),
        updated_at: Set(stored(instance.updated_at)),
    };
    let on_conflict = OnConflict::columns([instance::Column::OrganizationId, instance::Column::Provider])
        .update_columns([instance::Column::Status, instance::Column::UpdatedAt])
        .to_owned();
    instance::Entity::insert(row).on_conflict(on_conflict).exec_without_returning(txn).await.map_err(db_err)?;
    let stored_id = find_instance_in(txn, instance.organization_id, &instance.provider)
        .await?
        .ok_or_else(|| StorageError::new(format!("integration instance of {} vanished", instance.provider)))?
        .id;
    Ok(stored_id)
}

async fn find_instance_in(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    provider: &ProviderSlug,
) -> Result<Option<instance::Model>, StorageError> {
    instance::Entity::find()
        .filter(instance::Column::OrganizationId.eq(organization.0))
        .filter(instance::Column::Provider.eq(provider.as_str()))
        .one(conn)
        .await
        .map_err(db_err)
}

async fn insert_health(conn: &impl ConnectionTrait, check: &HealthCheck) -> Result<(), StorageError> {
    let row = health::ActiveModel {
        id: Set(check.id),
        connection_id: Set(check.connection_id),
        outcome: Set(check.outcome.as_str().to_owned()),
        // A check longer than 24 days is recorded as lasting 24 days.
        response_time_ms: Set(i32::try_from(check.response_time_ms).unwrap_or(i32::MAX)),
        detail: Set(check.detail.clone()),
        checked_at: Set(stored(check.checked_at)),
    };
    health::Entity::insert(row).exec_without_returning(conn).await.map_err(db_err)?;
    Ok(())
}

/// The connections matching `condition`, newest first, each with its instance and latest check:
/// three queries whatever their number.
async fn views(conn: &impl ConnectionTrait, condition: Condition) -> Result<Vec<ConnectionView>, StorageError> {
    let rows = connection::Entity::find()
        .filter(condition)
        .find_also_related(instance::Entity)
        .order_by_desc(connection::Column::Id)
        .all(conn)
        .await
        .map_err(db_err)?;
    let ids: Vec<Uuid> = rows.iter().map(|(row, _)| row.id).collect();
    let mut latest = latest_health(conn, ids).await?;
    rows.into_iter()
        .map(|(row, instance)| {
            // The foreign key guarantees the instance.
            let instance = instance.ok_or_else(|| corrupt(CONNECTIONS, "instance_id", row.instance_id))?;
            let latest_health = latest.remove(&row.id);
            Ok(ConnectionView {
                connection: connection_to_domain(row)?,
                instance: instance_to_domain(instance)?,
                latest_health,
            })
        })
        .collect()
}

/// The newest check of each of `connections`, by connection.
async fn latest_health(
    conn: &impl ConnectionTrait,
    connections: Vec<Uuid>,
) -> Result<HashMap<Uuid, HealthCheck>, StorageError> {
    if connections.is_empty() {
        return Ok(HashMap::new());
    }
    // Ids are UUID v7, so the greatest is the newest; the (connection_id, id) index answers
    // each correlated lookup. (PostgreSQL has no max() over uuid, hence ORDER BY ... LIMIT 1.)
    let newer = Alias::new("newer");
    let newest_of_its_connection = Query::select()
        .column((newer.clone(), health::Column::Id))
        .from_as(health::Entity, newer.clone())
        .and_where(
            Expr::col((newer.clone(), health::Column::ConnectionId))
                .equals((health::Entity, health::Column::ConnectionId)),
        )
        .order_by((newer, health::Column::Id), Order::Desc)
        .limit(1)
        .to_owned();
    health::Entity::find()
        .filter(health::Column::ConnectionId.is_in(connections))
        .filter(health::Column::Id.in_subquery(newest_of_its_connection))
        .all(conn)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|row| Ok((row.connection_id, health_to_domain(row)?)))
        .collect()
}

fn connection_to_active(connection: &IntegrationConnection) -> connection::ActiveModel {
    connection::ActiveModel {
        id: Set(connection.id),
        instance_id: Set(connection.instance_id),
        organization_id: Set(connection.organization_id.0),
        provider: Set(connection.provider.as_str().to_owned()),
        user_id: Set(connection.user_id.0),
        auth_method: Set(connection.auth_method.as_str().to_owned()),
        status: Set(connection.status.as_str().to_owned()),
        created_at: Set(stored(connection.created_at)),
        disconnected_at: Set(connection.disconnected_at.map(stored)),
    }
}

fn credential_to_active(credential: &StoredCredential) -> Result<credential::ActiveModel, StorageError> {
    Ok(credential::ActiveModel {
        id: Set(credential.id),
        connection_id: Set(credential.connection_id),
        organization_id: Set(credential.organization_id.0),
        field: Set(credential.field.as_str().to_owned()),
        key_version: Set(version_column(credential.ciphertext.key_version)?),
        ciphertext: Set(credential.ciphertext.bytes.clone()),
        created_at: Set(stored(credential.created_at)),
    })
}

/// Master key versions are small counters; one beyond the column's range is refused, not cut.
fn version_column(version: u32) -> Result<i32, StorageError> {
    i32::try_from(version)
        .map_err(|_| StorageError::new(format!("master key version {version} is beyond what can be stored")))
}

const INSTANCES: &str = "integration_instances";
const CONNECTIONS: &str = "integration_connections";
const CREDENTIALS: &str = "integration_credentials";
const HEALTH_CHECKS: &str = "integration_health_checks";

fn provider(table: &str, raw: &str) -> Result<ProviderSlug, StorageError> {
    ProviderSlug::parse(raw).ok_or_else(|| corrupt(table, "provider", raw))
}

fn instance_to_domain(row: instance::Model) -> Result<IntegrationInstance, StorageError> {
    let status = InstanceStatus::parse(&row.status).ok_or_else(|| corrupt(INSTANCES, "status", &row.status))?;
    Ok(IntegrationInstance {
        id: row.id,
        organization_id: OrganizationId(row.organization_id),
        provider: provider(INSTANCES, &row.provider)?,
        status,
        enabled: row.enabled,
        selected_model: row.selected_model,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn connection_to_domain(row: connection::Model) -> Result<IntegrationConnection, StorageError> {
    let auth_method =
        AuthMethod::parse(&row.auth_method).ok_or_else(|| corrupt(CONNECTIONS, "auth_method", &row.auth_method))?;
    let status = ConnectionStatus::parse(&row.status).ok_or_else(|| corrupt(CONNECTIONS, "status", &row.status))?;
    Ok(IntegrationConnection {
        id: row.id,
        instance_id: row.instance_id,
        organization_id: OrganizationId(row.organization_id),
        provider: provider(CONNECTIONS, &row.provider)?,
        user_id: UserId(row.user_id),
        auth_method,
        status,
        created_at: row.created_at,
        disconnected_at: row.disconnected_at,
    })
}

fn credential_to_domain(row: credential::Model) -> Result<StoredCredential, StorageError> {
    let field = CredentialField::parse(&row.field).ok_or_else(|| corrupt(CREDENTIALS, "field", &row.field))?;
    let key_version =
        u32::try_from(row.key_version).map_err(|_| corrupt(CREDENTIALS, "key_version", row.key_version))?;
    Ok(StoredCredential {
        id: row.id,
        organization_id: OrganizationId(row.organization_id),
        connection_id: row.connection_id,
        field,
        ciphertext: Ciphertext { key_version, bytes: row.ciphertext },
        created_at: row.created_at,
    })
}

fn health_to_domain(row: health::Model) -> Result<HealthCheck, StorageError> {
    let outcome = HealthOutcome::parse(&row.outcome).ok_or_else(|| corrupt(HEALTH_CHECKS, "outcome", &row.outcome))?;
    let response_time_ms = u32::try_from(row.response_time_ms)
        .map_err(|_| corrupt(HEALTH_CHECKS, "response_time_ms", row.response_time_ms))?;
    Ok(HealthCheck {
        id: row.id,
        connection_id: row.connection_id,
        outcome,
        response_time_ms,
        detail: row.detail,
        checked_at: row.checked_at,
    })
}
