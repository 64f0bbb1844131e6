//! Outbound webhook endpoints, events and deliveries ([`WebhookRepository`]).
//!
//! Events and their deliveries are written by the outbox ([`crate::Outbox`]) in the
//! transaction of the change they announce; the test event of one endpoint is too. Disabling an endpoint is a conditional update (`status = 'enabled' AND failures >=
//! threshold`), so exactly one failing attempt disables it, however many run at once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::event::{DomainEvent, EventKind};
use otesse_domain::organization::OrganizationId;
use otesse_domain::page::{Page, PageRequest};
use otesse_domain::sealed::Ciphertext;
use otesse_domain::user::UserId;
use otesse_domain::webhook::{
    Attempt, Delivery, DeliveryState, EndpointId, EndpointInsert, EndpointSecrets, EndpointStatus, WebhookEndpoint,
    WebhookEvent, WebhookRepository,
};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::Database;
use crate::entity::{webhook_delivery as delivery, webhook_endpoint as endpoint, webhook_event as event};
use crate::outbox::Outbox;
use crate::support::{WriteGate, begin, corrupt, db_err, finish, lock_organization, overfetch, stored};

const ENDPOINTS: &str = "webhook_endpoints";
const DELIVERIES: &str = "webhook_deliveries";

/// Outbound webhooks on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct WebhookStore {
    conn: DatabaseConnection,
    outbox: Outbox,
    gate: WriteGate,
}

impl WebhookStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone(), outbox: db.outbox(), gate: db.write_gate() }
    }
}

fn events_json(events: &[EventKind]) -> String {
    let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

fn key_version(raw: i32, column: &str) -> Result<u32, StorageError> {
    u32::try_from(raw).map_err(|_| corrupt(ENDPOINTS, column, raw))
}

pub(crate) fn endpoint_to_domain(row: &endpoint::Model) -> Result<WebhookEndpoint, StorageError> {
    let names: Vec<String> =
        serde_json::from_str(&row.events).map_err(|_| corrupt(ENDPOINTS, "events", &row.events))?;
    let events = names
        .iter()
        .map(|name| EventKind::parse(name).ok_or_else(|| corrupt(ENDPOINTS, "events", name)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WebhookEndpoint {
        id: EndpointId(row.id),
        organization_id: OrganizationId(row.organization_id),
        url: row.url.clone(),
        description: row.description.clone(),
        events,
        status: EndpointStatus::parse(&row.status).ok_or_else(|| corrupt(ENDPOINTS, "status", &row.status))?,
        disabled_reason: row.disabled_reason.clone(),
        consecutive_failures: u32::try_from(row.consecutive_failures)
            .map_err(|_| corrupt(ENDPOINTS, "consecutive_failures", row.consecutive_failures))?,
        created_by: UserId(row.created_by),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn delivery_to_domain(row: delivery::Model) -> Result<Delivery, StorageError> {
    let optional_u32 = |value: Option<i32>, column: &str| {
        value.map(|v| u32::try_from(v).map_err(|_| corrupt(DELIVERIES, column, v))).transpose()
    };
    Ok(Delivery {
        id: row.id,
        organization_id: OrganizationId(row.organization_id),
        endpoint_id: EndpointId(row.endpoint_id),
        event_id: row.event_id,
        event_type: EventKind::parse(&row.event_type)
            .ok_or_else(|| corrupt(DELIVERIES, "event_type", &row.event_type))?,
        state: DeliveryState::parse(&row.state).ok_or_else(|| corrupt(DELIVERIES, "state", &row.state))?,
        attempts: u32::try_from(row.attempts).map_err(|_| corrupt(DELIVERIES, "attempts", row.attempts))?,
        last_status: row
            .last_status
            .map(|v| u16::try_from(v).map_err(|_| corrupt(DELIVERIES, "last_status", v)))
            .transpose()?,
        last_error: row.last_error,
        last_response_ms: optional_u32(row.last_response_ms, "last_response_ms")?,
        last_attempt_at: row.last_attempt_at,
        next_attempt_at: row.next_attempt_at,
        created_at: row.created_at,
    })
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

#[async_trait]
impl WebhookRepository for WebhookStore {
    async fn insert_endpoint(
        &self,
        e: &WebhookEndpoint,
        secret: &Ciphertext,
        limit: u32,
    ) -> Result<EndpointInsert, StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            // Serializes creates within the organization, so the count below stays true until
            // the insert.
            lock_organization(&txn, e.organization_id, e.created_at).await?;
            let count = endpoint::Entity::find()
                .filter(endpoint::Column::OrganizationId.eq(e.organization_id.0))
                .count(&txn)
                .await
                .map_err(db_err)?;
            if count >= u64::from(limit) {
                return Ok(EndpointInsert::LimitReached);
            }
            endpoint::Entity::insert(endpoint::ActiveModel {
                id: Set(e.id.0),
                organization_id: Set(e.organization_id.0),
                url: Set(e.url.clone()),
                description: Set(e.description.clone()),
                events: Set(events_json(&e.events)),
                status: Set(e.status.as_str().to_owned()),
                disabled_reason: Set(e.disabled_reason.clone()),
                consecutive_failures: Set(to_i32(e.consecutive_failures)),
                created_by: Set(e.created_by.0),
                key_version: Set(to_i32(secret.key_version)),
                secret_ciphertext: Set(secret.bytes.clone()),
                previous_key_version: Set(None),
                previous_secret_ciphertext: Set(None),
                previous_secret_until: Set(None),
                created_at: Set(stored(e.created_at)),
                updated_at: Set(stored(e.updated_at)),
            })
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
            Ok(EndpointInsert::Inserted)
        }
        .await;
        finish(txn, outcome).await
    }

    async fn endpoints(&self, organization: OrganizationId) -> Result<Vec<WebhookEndpoint>, StorageError> {
        let rows = endpoint::Entity::find()
            .filter(endpoint::Column::OrganizationId.eq(organization.0))
            .order_by_asc(endpoint::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        rows.iter().map(endpoint_to_domain).collect()
    }

    async fn endpoint(
        &self,
        organization: OrganizationId,
        id: EndpointId,
    ) -> Result<Option<WebhookEndpoint>, StorageError> {
        let row = endpoint::Entity::find_by_id(id.0)
            .filter(endpoint::Column::OrganizationId.eq(organization.0))
            .one(&self.conn)
            .await
            .map_err(db_err)?;
        row.as_ref().map(endpoint_to_domain).transpose()
    }

    async fn update_endpoint(&self, e: &WebhookEndpoint) -> Result<(), StorageError> {
        endpoint::Entity::update_many()
            .col_expr(endpoint::Column::Url, Expr::value(e.url.clone()))
            .col_expr(endpoint::Column::Description, Expr::value(e.description.clone()))
            .col_expr(endpoint::Column::Events, Expr::value(events_json(&e.events)))
            .col_expr(endpoint::Column::Status, Expr::value(e.status.as_str()))
            .col_expr(endpoint::Column::DisabledReason, Expr::value(e.disabled_reason.clone()))
            .col_expr(endpoint::Column::ConsecutiveFailures, Expr::value(to_i32(e.consecutive_failures)))
            .col_expr(endpoint::Column::UpdatedAt, Expr::value(stored(e.updated_at)))
            .filter(endpoint::Column::Id.eq(e.id.0))
            .filter(endpoint::Column::OrganizationId.eq(e.organization_id.0))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn delete_endpoint(&self, organization: OrganizationId, id: EndpointId) -> Result<bool, StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let deleted = endpoint::Entity::delete_many()
                .filter(endpoint::Column::Id.eq(id.0))
                .filter(endpoint::Column::OrganizationId.eq(organization.0))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            if deleted.rows_affected == 0 {
                return Ok(false);
            }
            delivery::Entity::delete_many()
                .filter(delivery::Column::EndpointId.eq(id.0))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            Ok(true)
        }
        .await;
        finish(txn, outcome).await
    }

    async fn secrets(&self, id: EndpointId) -> Result<Option<EndpointSecrets>, StorageError> {
        let Some(row) = endpoint::Entity::find_by_id(id.0).one(&self.conn).await.map_err(db_err)? else {
            return Ok(None);
        };
        let current =
            Ciphertext { key_version: key_version(row.key_version, "key_version")?, bytes: row.secret_ciphertext };
        let previous = match (row.previous_key_version, row.previous_secret_ciphertext, row.previous_secret_until) {
            (Some(v), Some(bytes), Some(until)) => {
                Some((Ciphertext { key_version: key_version(v, "previous_key_version")?, bytes }, until))
            }
            _ => None,
        };
        Ok(Some(EndpointSecrets { current, previous }))
    }

    async fn rotate_secret(
        &self,
        id: EndpointId,
        new: &Ciphertext,
        previous_until: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        // One statement: the right-hand sides read the row as it was, so the current secret
        // becomes the previous one atomically.
        endpoint::Entity::update_many()
            .col_expr(endpoint::Column::PreviousKeyVersion, Expr::col(endpoint::Column::KeyVersion))
            .col_expr(endpoint::Column::PreviousSecretCiphertext, Expr::col(endpoint::Column::SecretCiphertext))
            .col_expr(endpoint::Column::PreviousSecretUntil, Expr::value(Some(stored(previous_until))))
            .col_expr(endpoint::Column::KeyVersion, Expr::value(to_i32(new.key_version)))
            .col_expr(endpoint::Column::SecretCiphertext, Expr::value(new.bytes.clone()))
            .filter(endpoint::Column::Id.eq(id.0))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn send_test(&self, e: &DomainEvent, endpoint: EndpointId) -> Result<Option<Delivery>, StorageError> {
        let _turn = self.gate.turn().await;
        let txn = begin(&self.conn).await?;
        let outcome = async {
            // The outbox reads the endpoint before it writes. On SQLite the transaction must
            // write first (the crate's invariant): a read snapshot taken before another
            // connection commits (the job worker's, recording an attempt) could not become a
            // write transaction, and the send would fail with SQLITE_BUSY_SNAPSHOT. On
            // PostgreSQL nothing needs locking here, and the organization's row stays free.
            if self.conn.get_database_backend() == DbBackend::Sqlite {
                lock_organization(&txn, e.organization_id, e.occurred_at).await?;
            }
            Ok(self.outbox.deliver(&txn, e, Some(endpoint)).await?.into_iter().next())
        }
        .await;
        finish(txn, outcome).await
    }

    async fn delivery(&self, id: Uuid) -> Result<Option<(Delivery, WebhookEndpoint, WebhookEvent)>, StorageError> {
        let Some(row) = delivery::Entity::find_by_id(id).one(&self.conn).await.map_err(db_err)? else {
            return Ok(None);
        };
        let Some(target) = endpoint::Entity::find_by_id(row.endpoint_id).one(&self.conn).await.map_err(db_err)? else {
            return Ok(None);
        };
        let Some(message) = event::Entity::find_by_id(row.event_id).one(&self.conn).await.map_err(db_err)? else {
            return Ok(None);
        };
        let stored_event = WebhookEvent {
            id: message.id,
            organization_id: OrganizationId(message.organization_id),
            event_type: EventKind::parse(&message.event_type)
                .ok_or_else(|| corrupt("webhook_events", "event_type", &message.event_type))?,
            payload: message.payload,
            created_at: message.created_at,
        };
        Ok(Some((delivery_to_domain(row)?, endpoint_to_domain(&target)?, stored_event)))
    }

    async fn record_attempt(&self, id: Uuid, a: &Attempt) -> Result<(), StorageError> {
        let error = a.error.as_ref().map(|e| e.chars().take(500).collect::<String>());
        let _turn = self.gate.turn().await;
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Attempts, Expr::col(delivery::Column::Attempts).add(1))
            .col_expr(delivery::Column::State, Expr::value(a.state.as_str()))
            .col_expr(delivery::Column::LastStatus, Expr::value(a.status.map(i32::from)))
            .col_expr(delivery::Column::LastError, Expr::value(error))
            .col_expr(delivery::Column::LastResponseMs, Expr::value(a.response_ms.map(to_i32)))
            .col_expr(delivery::Column::LastAttemptAt, Expr::value(Some(stored(a.at))))
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(a.next_attempt_at.map(stored)))
            .filter(delivery::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn endpoint_failed(
        &self,
        id: EndpointId,
        threshold: u32,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let _turn = self.gate.turn().await;
        endpoint::Entity::update_many()
            .col_expr(endpoint::Column::ConsecutiveFailures, Expr::col(endpoint::Column::ConsecutiveFailures).add(1))
            .filter(endpoint::Column::Id.eq(id.0))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        let disabled = endpoint::Entity::update_many()
            .col_expr(endpoint::Column::Status, Expr::value(EndpointStatus::Disabled.as_str()))
            .col_expr(endpoint::Column::DisabledReason, Expr::value(Some(reason.to_owned())))
            .col_expr(endpoint::Column::UpdatedAt, Expr::value(stored(now)))
            .filter(endpoint::Column::Id.eq(id.0))
            .filter(endpoint::Column::Status.eq(EndpointStatus::Enabled.as_str()))
            .filter(endpoint::Column::ConsecutiveFailures.gte(to_i32(threshold)))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(disabled.rows_affected == 1)
    }

    async fn endpoint_succeeded(&self, id: EndpointId) -> Result<(), StorageError> {
        let _turn = self.gate.turn().await;
        endpoint::Entity::update_many()
            .col_expr(endpoint::Column::ConsecutiveFailures, Expr::value(0))
            .filter(endpoint::Column::Id.eq(id.0))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        let deleted = delivery::Entity::delete_many()
            .filter(delivery::Column::CreatedAt.lt(stored(before)))
            .filter(delivery::Column::State.ne(DeliveryState::Pending.as_str()))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        let referenced = Query::select().column(delivery::Column::EventId).from(delivery::Entity).to_owned();
        event::Entity::delete_many()
            .filter(event::Column::CreatedAt.lt(stored(before)))
            .filter(event::Column::Id.not_in_subquery(referenced))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(deleted.rows_affected)
    }

    async fn deliveries(
        &self,
        organization: OrganizationId,
        endpoint_id: EndpointId,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<Delivery, Uuid>, StorageError> {
        let mut query = delivery::Entity::find()
            .filter(delivery::Column::OrganizationId.eq(organization.0))
            .filter(delivery::Column::EndpointId.eq(endpoint_id.0));
        if let Some(after) = page.after() {
            query = query.filter(delivery::Column::Id.lt(*after));
        }
        let rows = query
            .order_by_desc(delivery::Column::Id)
            .limit(overfetch(page.limit()))
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        let items = rows.into_iter().map(delivery_to_domain).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, page.limit(), |d| d.id))
    }
}
