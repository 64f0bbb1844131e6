//! Stripe webhook endpoints and their received events ([`StripeWebhookRepository`]).
//!
//! De-duplication is the unique index on `(endpoint_id, event_id)`: an insert that violates it
//! is a retry, reported as such, and the rest of the store does not need a transaction.
//! Endpoint secrets are also visible to the master-key rewrap through
//! [`crate::SealedSecretsStore`]. Adding or deleting an endpoint is written with its event.

use async_trait::async_trait;
use otesse_domain::StorageError;
use otesse_domain::event::DomainEvent;
use otesse_domain::integration::{StripeEvent, StripeWebhookEndpoint, StripeWebhookRepository};
use otesse_domain::organization::OrganizationId;
use otesse_domain::page::{Page, PageRequest};
use otesse_domain::sealed::Ciphertext;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::Database;
use crate::entity::{stripe_webhook_endpoint as endpoint, stripe_webhook_event as event};
use crate::outbox::Outbox;
use crate::support::{begin, corrupt, db_err, finish, is_unique_violation, lock_organization, overfetch, stored};

const ENDPOINTS: &str = "stripe_webhook_endpoints";

/// Stripe webhooks on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct StripeWebhookStore {
    conn: DatabaseConnection,
    outbox: Outbox,
}

impl StripeWebhookStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone(), outbox: db.outbox() }
    }
}

#[async_trait]
impl StripeWebhookRepository for StripeWebhookStore {
    async fn list(
        &self,
        organization: OrganizationId,
        connection: Uuid,
    ) -> Result<Vec<StripeWebhookEndpoint>, StorageError> {
        let rows = endpoint::Entity::find()
            .filter(endpoint::Column::OrganizationId.eq(organization.0))
            .filter(endpoint::Column::ConnectionId.eq(connection))
            .order_by_asc(endpoint::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        let mut endpoints = Vec::with_capacity(rows.len());
        for row in rows {
            let last: Option<Option<chrono::DateTime<chrono::Utc>>> = event::Entity::find()
                .select_only()
                .column_as(event::Column::ReceivedAt.max(), "last")
                .filter(event::Column::EndpointId.eq(row.id))
                .into_tuple()
                .one(&self.conn)
                .await
                .map_err(db_err)?;
            let (endpoint, _) = to_domain(row)?;
            endpoints.push(StripeWebhookEndpoint { last_event_at: last.flatten(), ..endpoint });
        }
        Ok(endpoints)
    }

    async fn insert(
        &self,
        new: &StripeWebhookEndpoint,
        secret: &Ciphertext,
        limit: usize,
        recorded: &DomainEvent,
    ) -> Result<bool, StorageError> {
        let events = serde_json::to_string(&new.events).map_err(|e| StorageError::new(e.to_string()))?;
        let key_version = i32::try_from(secret.key_version)
            .map_err(|_| StorageError::new(format!("master key version {} cannot be stored", secret.key_version)))?;
        let txn = begin(&self.conn).await?;
        let outcome = async {
            // Serializes adds within the organization, so the count stays true until the insert.
            lock_organization(&txn, new.organization_id, new.created_at).await?;
            let count = endpoint::Entity::find()
                .filter(endpoint::Column::ConnectionId.eq(new.connection_id))
                .count(&txn)
                .await
                .map_err(db_err)?;
            if count >= limit as u64 {
                return Ok(false);
            }
            endpoint::Entity::insert(endpoint::ActiveModel {
                id: Set(new.id),
                organization_id: Set(new.organization_id.0),
                connection_id: Set(new.connection_id),
                description: Set(new.description.clone()),
                events: Set(events),
                key_version: Set(key_version),
                secret_ciphertext: Set(secret.bytes.clone()),
                created_at: Set(stored(new.created_at)),
            })
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
            self.outbox.record(&txn, recorded).await?;
            Ok(true)
        }
        .await;
        finish(txn, outcome).await
    }

    async fn find(&self, id: Uuid) -> Result<Option<(StripeWebhookEndpoint, Ciphertext)>, StorageError> {
        endpoint::Entity::find_by_id(id).one(&self.conn).await.map_err(db_err)?.map(to_domain).transpose()
    }

    async fn delete(
        &self,
        organization: OrganizationId,
        connection: Uuid,
        id: Uuid,
        recorded: &DomainEvent,
    ) -> Result<bool, StorageError> {
        let owned = Condition::all()
            .add(endpoint::Column::Id.eq(id))
            .add(endpoint::Column::OrganizationId.eq(organization.0))
            .add(endpoint::Column::ConnectionId.eq(connection));
        let txn = begin(&self.conn).await?;
        let outcome = async {
            // Its events first (the foreign key), matched through the endpoint so that nothing
            // is deleted unless the endpoint is this organization's, on this connection.
            let its_id = Query::select()
                .column(endpoint::Column::Id)
                .from(endpoint::Entity)
                .cond_where(owned.clone())
                .to_owned();
            event::Entity::delete_many()
                .filter(event::Column::EndpointId.in_subquery(its_id))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            let deleted = endpoint::Entity::delete_many().filter(owned).exec(&txn).await.map_err(db_err)?;
            if deleted.rows_affected == 0 {
                return Ok(false);
            }
            self.outbox.record(&txn, recorded).await?;
            Ok(true)
        }
        .await;
        finish(txn, outcome).await
    }

    async fn record_event(&self, new: &StripeEvent) -> Result<bool, StorageError> {
        let inserted = event::Entity::insert(event::ActiveModel {
            id: Set(new.id),
            endpoint_id: Set(new.endpoint_id),
            organization_id: Set(new.organization_id.0),
            event_id: Set(new.event_id.clone()),
            event_type: Set(new.event_type.clone()),
            livemode: Set(new.livemode),
            payload: Set(new.payload.clone()),
            received_at: Set(stored(new.received_at)),
        })
        .exec_without_returning(&self.conn)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(db_err(err)),
        }
    }

    async fn events(
        &self,
        organization: OrganizationId,
        connection: Uuid,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<StripeEvent, Uuid>, StorageError> {
        let endpoints: Vec<Uuid> = endpoint::Entity::find()
            .select_only()
            .column(endpoint::Column::Id)
            .filter(endpoint::Column::OrganizationId.eq(organization.0))
            .filter(endpoint::Column::ConnectionId.eq(connection))
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        let mut query = event::Entity::find()
            .filter(event::Column::OrganizationId.eq(organization.0))
            .filter(event::Column::EndpointId.is_in(endpoints));
        if let Some(after) = page.after() {
            query = query.filter(event::Column::Id.lt(*after));
        }
        let rows = query
            .order_by_desc(event::Column::Id)
            .limit(overfetch(page.limit()))
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        let events = rows
            .into_iter()
            .map(|row| StripeEvent {
                id: row.id,
                endpoint_id: row.endpoint_id,
                organization_id: OrganizationId(row.organization_id),
                event_id: row.event_id,
                event_type: row.event_type,
                livemode: row.livemode,
                payload: row.payload,
                received_at: row.received_at,
            })
            .collect();
        Ok(Page::from_overfetch(events, page.limit(), |e| e.id))
    }
}

/// Deletes endpoints and their events, on `conn` (a transaction of the caller's).
pub(crate) async fn delete_endpoints(conn: &impl ConnectionTrait, ids: &[Uuid]) -> Result<(), StorageError> {
    if ids.is_empty() {
        return Ok(());
    }
    event::Entity::delete_many()
        .filter(event::Column::EndpointId.is_in(ids.iter().copied()))
        .exec(conn)
        .await
        .map_err(db_err)?;
    endpoint::Entity::delete_many()
        .filter(endpoint::Column::Id.is_in(ids.iter().copied()))
        .exec(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Deletes every endpoint of a connection (and their events): disconnecting deletes secrets.
pub(crate) async fn delete_for_connection(conn: &impl ConnectionTrait, connection: Uuid) -> Result<(), StorageError> {
    let ids: Vec<Uuid> = endpoint::Entity::find()
        .select_only()
        .column(endpoint::Column::Id)
        .filter(endpoint::Column::ConnectionId.eq(connection))
        .into_tuple()
        .all(conn)
        .await
        .map_err(db_err)?;
    delete_endpoints(conn, &ids).await
}

fn to_domain(row: endpoint::Model) -> Result<(StripeWebhookEndpoint, Ciphertext), StorageError> {
    let events: Vec<String> =
        serde_json::from_str(&row.events).map_err(|_| corrupt(ENDPOINTS, "events", &row.events))?;
    let key_version = u32::try_from(row.key_version).map_err(|_| corrupt(ENDPOINTS, "key_version", row.key_version))?;
    Ok((
        StripeWebhookEndpoint {
            id: row.id,
            organization_id: OrganizationId(row.organization_id),
            connection_id: row.connection_id,
            description: row.description,
            events,
            created_at: row.created_at,
            last_event_at: None,
        },
        Ciphertext { key_version, bytes: row.secret_ciphertext },
    ))
}
