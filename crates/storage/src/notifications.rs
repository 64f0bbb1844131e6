//! Notifications and emails ([`NotificationRepository`]). The unique dedupe keys make each
//! insert happen once whoever races for it; a lost race is a `false`, not an error. A
//! notification's event (an expiry warning's webhook) is written with it, or not at all.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::event::DomainEvent;
use otesse_domain::notification::{EmailRecord, EmailStatus, Notification, NotificationKind, NotificationRepository};
use otesse_domain::organization::OrganizationId;
use otesse_domain::page::{Page, PageRequest};
use otesse_domain::user::UserId;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::Database;
use crate::entity::{email, notification};
use crate::outbox::Outbox;
use crate::support::{begin, corrupt, db_err, finish, is_unique_violation, overfetch, stored};

/// Notifications and emails on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct NotificationStore {
    conn: DatabaseConnection,
    outbox: Outbox,
}

impl NotificationStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone(), outbox: db.outbox() }
    }
}

#[async_trait]
impl NotificationRepository for NotificationStore {
    async fn insert<'a>(
        &self,
        n: &Notification,
        dedupe_key: &str,
        event: Option<&'a DomainEvent>,
    ) -> Result<bool, StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            // A duplicate is skipped, not an error: a failed statement would end the
            // transaction on PostgreSQL.
            let inserted = notification::Entity::insert(notification::ActiveModel {
                id: Set(n.id),
                organization_id: Set(n.organization_id.0),
                user_id: Set(n.user_id.0),
                kind: Set(n.kind.as_str().to_owned()),
                title: Set(n.title.clone()),
                body: Set(n.body.clone()),
                subject: Set(n.subject.clone()),
                dedupe_key: Set(dedupe_key.to_owned()),
                created_at: Set(stored(n.created_at)),
                read_at: Set(n.read_at.map(stored)),
            })
            .on_conflict(OnConflict::column(notification::Column::DedupeKey).do_nothing().to_owned())
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
            if inserted == 0 {
                return Ok(false);
            }
            if let Some(event) = event {
                self.outbox.record(&txn, event).await?;
            }
            Ok(true)
        }
        .await;
        finish(txn, outcome).await
    }

    async fn list(
        &self,
        organization: OrganizationId,
        user: UserId,
        unread_only: bool,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<Notification, Uuid>, StorageError> {
        let mut query = notification::Entity::find()
            .filter(notification::Column::OrganizationId.eq(organization.0))
            .filter(notification::Column::UserId.eq(user.0));
        if unread_only {
            query = query.filter(notification::Column::ReadAt.is_null());
        }
        if let Some(after) = page.after() {
            query = query.filter(notification::Column::Id.lt(*after));
        }
        let rows = query
            .order_by_desc(notification::Column::Id)
            .limit(overfetch(page.limit()))
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        let items = rows.into_iter().map(to_domain).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, page.limit(), |n| n.id))
    }

    async fn mark_read(
        &self,
        organization: OrganizationId,
        user: UserId,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<Notification>, StorageError> {
        let mine = || {
            notification::Entity::find()
                .filter(notification::Column::Id.eq(id))
                .filter(notification::Column::OrganizationId.eq(organization.0))
                .filter(notification::Column::UserId.eq(user.0))
        };
        notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(Some(stored(at))))
            .filter(notification::Column::Id.eq(id))
            .filter(notification::Column::OrganizationId.eq(organization.0))
            .filter(notification::Column::UserId.eq(user.0))
            .filter(notification::Column::ReadAt.is_null())
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        mine().one(&self.conn).await.map_err(db_err)?.map(to_domain).transpose()
    }

    async fn insert_email(&self, e: &EmailRecord, dedupe_key: &str) -> Result<bool, StorageError> {
        let inserted = email::Entity::insert(email::ActiveModel {
            id: Set(e.id),
            organization_id: Set(e.organization_id.0),
            recipient: Set(e.to.clone()),
            subject: Set(e.subject.clone()),
            body: Set(e.body.clone()),
            status: Set(e.status.as_str().to_owned()),
            detail: Set(e.detail.clone()),
            dedupe_key: Set(dedupe_key.to_owned()),
            created_at: Set(stored(e.created_at)),
        })
        .exec_without_returning(&self.conn)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(db_err(err)),
        }
    }

    async fn finish_email(&self, id: Uuid, status: EmailStatus, detail: &str) -> Result<(), StorageError> {
        let detail: String = detail.chars().take(1000).collect();
        email::Entity::update_many()
            .col_expr(email::Column::Status, Expr::value(status.as_str()))
            .col_expr(email::Column::Detail, Expr::value(detail))
            .filter(email::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn emails(&self, organization: OrganizationId, limit: u32) -> Result<Vec<EmailRecord>, StorageError> {
        email::Entity::find()
            .filter(email::Column::OrganizationId.eq(organization.0))
            .order_by_desc(email::Column::Id)
            .limit(u64::from(limit))
            .all(&self.conn)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|row| {
                let status = EmailStatus::parse(&row.status).ok_or_else(|| corrupt("emails", "status", &row.status))?;
                Ok(EmailRecord {
                    id: row.id,
                    organization_id: OrganizationId(row.organization_id),
                    to: row.recipient,
                    subject: row.subject,
                    body: row.body,
                    status,
                    detail: row.detail,
                    created_at: row.created_at,
                })
            })
            .collect()
    }
}

fn to_domain(row: notification::Model) -> Result<Notification, StorageError> {
    let kind = NotificationKind::parse(&row.kind).ok_or_else(|| corrupt("notifications", "kind", &row.kind))?;
    Ok(Notification {
        id: row.id,
        organization_id: OrganizationId(row.organization_id),
        user_id: UserId(row.user_id),
        kind,
        title: row.title,
        body: row.body,
        subject: row.subject,
        created_at: row.created_at,
        read_at: row.read_at,
    })
}
