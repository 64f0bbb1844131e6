//! The outbox: a recorded event is written in the transaction of the change it records. Its
//! audit row (for the audited kinds) and, for the delivered kinds, the outbound event with one
//! pending delivery per enabled endpoint of its organization subscribed to it, each with its
//! queued `webhook_delivery` job. A change that commits is announced whatever happens to the
//! process afterwards (the job worker finds the jobs); a change that rolls back leaves nothing.
//!
//! Queuing a delivery also wakes the job workers ([`JobWakeup`]), so a delivery goes out within
//! milliseconds of its change instead of at the worker's next poll: on PostgreSQL with a
//! `pg_notify` in the same transaction, which PostgreSQL delivers at commit to every process's
//! listener (and never for a rolled-back change); on SQLite, which one process uses, in-process.
//! The transaction holds SQLite's write lock by then, and a claim is an `UPDATE` that waits for
//! that lock, so a worker woken before the commit still finds the job.

use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::audit::AuditEntry;
use otesse_domain::event::DomainEvent;
use otesse_domain::jobs::{JobKind, NewJob};
use otesse_domain::webhook::{Delivery, DeliveryState, EndpointId, EndpointStatus};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, Statement,
};
use uuid::Uuid;

use crate::entity::{job, webhook_delivery as delivery, webhook_endpoint as endpoint, webhook_event as event};
use crate::jobs::{JOB_QUEUED_CHANNEL, JobWakeup};
use crate::support::{db_err, stored};

/// How the outbox queues deliveries.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// Attempts each delivery's job gets before it is given up.
    pub delivery_attempts: u32,
    /// Woken when a delivery is queued (SQLite; PostgreSQL wakes through `pg_notify`).
    pub wakeup: JobWakeup,
}

impl Default for Outbox {
    fn default() -> Self {
        Self { delivery_attempts: 8, wakeup: JobWakeup::default() }
    }
}

impl Outbox {
    /// Writes `event`'s audit row and deliveries on `txn`, the transaction of its change.
    pub(crate) async fn record(&self, txn: &impl ConnectionTrait, event: &DomainEvent) -> Result<(), StorageError> {
        if let Some(entry) = AuditEntry::of(event) {
            crate::audit::insert(txn, &entry).await?;
        }
        self.deliver(txn, event, None).await.map(|_| ())
    }

    /// The outbound side: the event and its deliveries, to every enabled endpoint subscribed
    /// to its kind, or only to `only` (whatever its status or subscriptions). Nothing is
    /// stored when no endpoint receives it.
    pub(crate) async fn deliver(
        &self,
        txn: &impl ConnectionTrait,
        e: &DomainEvent,
        only: Option<EndpointId>,
    ) -> Result<Vec<Delivery>, StorageError> {
        let Some(payload) = crate::payload::webhook_body(e) else {
            return Ok(Vec::new());
        };
        let mut query = endpoint::Entity::find().filter(endpoint::Column::OrganizationId.eq(e.organization_id.0));
        query = match only {
            Some(id) => query.filter(endpoint::Column::Id.eq(id.0)),
            None => query.filter(endpoint::Column::Status.eq(EndpointStatus::Enabled.as_str())),
        };
        let rows = query.order_by_asc(endpoint::Column::Id).all(txn).await.map_err(db_err)?;
        let mut targets = Vec::with_capacity(rows.len());
        for row in &rows {
            let target = crate::webhooks::endpoint_to_domain(row)?;
            if only.is_some() || target.subscribes_to(e.kind()) {
                targets.push(target.id);
            }
        }
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let now = stored(e.occurred_at);
        event::Entity::insert(event::ActiveModel {
            id: Set(e.id),
            organization_id: Set(e.organization_id.0),
            event_type: Set(e.kind().as_str().to_owned()),
            payload: Set(payload),
            created_at: Set(now),
        })
        .exec_without_returning(txn)
        .await
        .map_err(db_err)?;
        let mut deliveries = Vec::with_capacity(targets.len());
        for target in targets {
            let made = pending(e, target, now);
            delivery::Entity::insert(delivery::ActiveModel {
                id: Set(made.id),
                organization_id: Set(made.organization_id.0),
                endpoint_id: Set(made.endpoint_id.0),
                event_id: Set(made.event_id),
                event_type: Set(made.event_type.as_str().to_owned()),
                state: Set(made.state.as_str().to_owned()),
                attempts: Set(0),
                last_status: Set(None),
                last_error: Set(None),
                last_response_ms: Set(None),
                last_attempt_at: Set(None),
                next_attempt_at: Set(Some(now)),
                created_at: Set(now),
            })
            .exec_without_returning(txn)
            .await
            .map_err(db_err)?;
            let mut job = NewJob::new(JobKind::WebhookDelivery, now);
            job.payload = serde_json::json!({ "delivery_id": made.id }).to_string();
            job.max_attempts = self.delivery_attempts.max(1);
            job::Entity::insert(crate::jobs::queued_row(&job, now))
                .exec_without_returning(txn)
                .await
                .map_err(db_err)?;
            deliveries.push(made);
        }
        if txn.get_database_backend() == DbBackend::Postgres {
            // Sent at commit (once per transaction however many events it records).
            let notify = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, '')",
                [JOB_QUEUED_CHANNEL.into()],
            );
            txn.execute_raw(notify).await.map_err(db_err)?;
        } else {
            self.wakeup.wake();
        }
        Ok(deliveries)
    }
}

fn pending(e: &DomainEvent, endpoint: EndpointId, now: DateTime<Utc>) -> Delivery {
    Delivery {
        id: Uuid::now_v7(),
        organization_id: e.organization_id,
        endpoint_id: endpoint,
        event_id: e.id,
        event_type: e.kind(),
        state: DeliveryState::Pending,
        attempts: 0,
        last_status: None,
        last_error: None,
        last_response_ms: None,
        last_attempt_at: None,
        next_attempt_at: Some(now),
        created_at: now,
    }
}
