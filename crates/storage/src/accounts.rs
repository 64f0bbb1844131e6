//! The user lifecycle's writes ([`AccountRepository`], P8): role and status changes and
//! deletion behind the organization's lock (the last active admin stays), passwords, reset
//! tokens (SHA-256 only) and a user's own sessions. Each method is one transaction that also
//! records its events (the outbox).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::account::{AccountRepository, ChangeUserError, PasswordReset, UserUpdate, change_events};
use otesse_domain::api_key::KeyHash;
use otesse_domain::auth::{Session, SessionId};
use otesse_domain::event::{AuditActor, DomainEvent, Event};
use otesse_domain::organization::OrganizationId;
use otesse_domain::user::{PasswordHash, Role, User, UserId, UserStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};

use crate::Database;
use crate::entity::{password_reset, session, user};
use crate::outbox::Outbox;
use crate::support::{begin, corrupt, db_err, finish, lock_organization, stored};

/// The lifecycle on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct AccountStore {
    conn: DatabaseConnection,
    outbox: Outbox,
}

impl AccountStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone(), outbox: db.outbox() }
    }
}

/// A conditional write that found nothing to change: rolled back and answered as `false`.
enum Conditional {
    Refused,
    Failed(StorageError),
}

use Conditional::Refused;

impl From<StorageError> for Conditional {
    fn from(err: StorageError) -> Self {
        Conditional::Failed(err)
    }
}

impl Conditional {
    fn answer(outcome: Result<(), Conditional>) -> Result<bool, StorageError> {
        match outcome {
            Ok(()) => Ok(true),
            Err(Refused) => Ok(false),
            Err(Conditional::Failed(err)) => Err(err),
        }
    }
}

/// Sessions that still work at `at`.
fn active_sessions(at: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(session::Column::ExpiresAt.gt(at))
        .add(Condition::any().add(session::Column::RevokedAt.is_null()).add(session::Column::RevokedAt.gt(at)))
}

/// Ends the user's working sessions, except `keep`; how many ended.
async fn end_sessions(
    txn: &impl ConnectionTrait,
    user: UserId,
    keep: Option<SessionId>,
    at: DateTime<Utc>,
) -> Result<u64, StorageError> {
    let at = stored(at);
    let mut query = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Some(at)))
        .filter(session::Column::UserId.eq(user.0))
        .filter(active_sessions(at));
    if let Some(keep) = keep {
        query = query.filter(session::Column::Id.ne(keep.0));
    }
    Ok(query.exec(txn).await.map_err(db_err)?.rows_affected)
}

/// Makes the user's unused reset tokens unusable.
async fn void_resets(txn: &impl ConnectionTrait, user: UserId, at: DateTime<Utc>) -> Result<(), StorageError> {
    password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(Some(stored(at))))
        .filter(password_reset::Column::UserId.eq(user.0))
        .filter(password_reset::Column::UsedAt.is_null())
        .exec(txn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// The organization's user `id`, unless deleted, read after the organization's lock.
async fn member(
    txn: &impl ConnectionTrait,
    organization: OrganizationId,
    id: UserId,
) -> Result<(user::Model, User), ChangeUserError> {
    let row = user::Entity::find_by_id(id.0)
        .filter(user::Column::OrganizationId.eq(organization.0))
        .filter(user::Column::Status.ne(UserStatus::Deleted.as_str()))
        .one(txn)
        .await
        .map_err(db_err)?
        .ok_or(ChangeUserError::NotFound)?;
    let user = crate::users::to_domain(row.clone())?;
    Ok((row, user))
}

fn is_active_admin(user: &User) -> bool {
    user.is_active() && user.role == Role::Admin
}

/// Refuses to leave the organization without an active admin: `before` is one and `after`
/// is not, so another must exist. Runs behind the organization's lock, so two concurrent
/// demotions of the last two admins see each other.
async fn keep_an_admin(txn: &impl ConnectionTrait, before: &User, after: Option<&User>) -> Result<(), ChangeUserError> {
    if !is_active_admin(before) || after.is_some_and(is_active_admin) {
        return Ok(());
    }
    let others = user::Entity::find()
        .filter(user::Column::OrganizationId.eq(before.organization_id.0))
        .filter(user::Column::Role.eq(Role::Admin.as_str()))
        .filter(user::Column::Status.eq(UserStatus::Active.as_str()))
        .filter(user::Column::Id.ne(before.id.0))
        .count(txn)
        .await
        .map_err(db_err)?;
    if others == 0 { Err(ChangeUserError::LastAdmin) } else { Ok(()) }
}

#[async_trait]
impl AccountRepository for AccountStore {
    async fn update_user(
        &self,
        organization: OrganizationId,
        id: UserId,
        update: &UserUpdate,
        at: DateTime<Utc>,
        actor: AuditActor,
    ) -> Result<User, ChangeUserError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            lock_organization(&txn, organization, at).await?;
            let (row, before) = member(&txn, organization, id).await?;
            let mut after = before.clone();
            if let Some(role) = update.role {
                after.role = role;
            }
            if let Some(status) = update.status {
                after.status = status;
            }
            if let Some(name) = &update.name {
                after.name = name.clone();
            }
            keep_an_admin(&txn, &before, Some(&after)).await?;
            let mut changed: user::ActiveModel = row.into();
            changed.role = Set(after.role.as_str().to_owned());
            changed.status = Set(after.status.as_str().to_owned());
            changed.name = Set(after.name.as_ref().map(|name| name.as_str().to_owned()));
            user::Entity::update(changed).exec(&txn).await.map_err(db_err)?;
            if after.status == UserStatus::Deactivated && before.status != UserStatus::Deactivated {
                end_sessions(&txn, id, None, at).await?;
                void_resets(&txn, id, at).await?;
            }
            for event in change_events(&before, &after) {
                self.outbox.record(&txn, &DomainEvent::new(organization, actor, at, event)).await?;
            }
            Ok(after)
        }
        .await;
        finish(txn, outcome).await
    }

    async fn delete_user(
        &self,
        organization: OrganizationId,
        id: UserId,
        at: DateTime<Utc>,
        actor: AuditActor,
    ) -> Result<User, ChangeUserError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            lock_organization(&txn, organization, at).await?;
            let (row, before) = member(&txn, organization, id).await?;
            keep_an_admin(&txn, &before, None).await?;
            let mut gone: user::ActiveModel = row.clone().into();
            gone.status = Set(UserStatus::Deleted.as_str().to_owned());
            gone.deleted_at = Set(Some(stored(at)));
            gone.former_email = Set(Some(row.email.clone()));
            // Frees the address; `.invalid` can never be a real mailbox (RFC 2606).
            gone.email = Set(format!("deleted-{}@users.invalid", id.0.simple()));
            // Matches no password: not a PHC string.
            gone.password_hash = Set(String::new());
            user::Entity::update(gone).exec(&txn).await.map_err(db_err)?;
            end_sessions(&txn, id, None, at).await?;
            void_resets(&txn, id, at).await?;
            let after = User { status: UserStatus::Deleted, ..before };
            let event = DomainEvent::new(organization, actor, at, Event::UserDeleted { user: after.clone() });
            self.outbox.record(&txn, &event).await?;
            Ok(after)
        }
        .await;
        finish(txn, outcome).await
    }

    async fn password_hash(&self, id: UserId) -> Result<Option<PasswordHash>, StorageError> {
        let row = user::Entity::find_by_id(id.0)
            .filter(user::Column::Status.ne(UserStatus::Deleted.as_str()))
            .one(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(row.map(|row| PasswordHash(row.password_hash)))
    }

    async fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<(), StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            user::Entity::update_many()
                .col_expr(user::Column::PasswordHash, Expr::value(hash.0.clone()))
                .filter(user::Column::Id.eq(id.0))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            end_sessions(&txn, id, keep, at).await?;
            self.outbox.record(&txn, event).await
        }
        .await;
        finish(txn, outcome).await
    }

    async fn insert_reset(&self, reset: &PasswordReset, event: &DomainEvent) -> Result<(), StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            // One token works at a time: the newest.
            void_resets(&txn, reset.user_id, reset.created_at).await?;
            password_reset::Entity::insert(password_reset::ActiveModel {
                id: Set(reset.id),
                organization_id: Set(reset.organization_id.0),
                user_id: Set(reset.user_id.0),
                token_hash: Set(reset.token_hash.0.to_vec()),
                created_by: Set(reset.created_by.0),
                created_at: Set(stored(reset.created_at)),
                expires_at: Set(stored(reset.expires_at)),
                used_at: Set(reset.used_at.map(stored)),
            })
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
            self.outbox.record(&txn, event).await
        }
        .await;
        finish(txn, outcome).await
    }

    async fn find_reset(&self, hash: &KeyHash) -> Result<Option<PasswordReset>, StorageError> {
        let row = password_reset::Entity::find()
            .filter(password_reset::Column::TokenHash.eq(hash.0.to_vec()))
            .one(&self.conn)
            .await
            .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let token_hash = <[u8; 32]>::try_from(row.token_hash.as_slice())
            .map_err(|_| corrupt("password_resets", "token_hash", format!("{} bytes", row.token_hash.len())))?;
        Ok(Some(PasswordReset {
            id: row.id,
            organization_id: OrganizationId(row.organization_id),
            user_id: UserId(row.user_id),
            token_hash: KeyHash(token_hash),
            created_by: UserId(row.created_by),
            created_at: row.created_at,
            expires_at: row.expires_at,
            used_at: row.used_at,
        }))
    }

    async fn redeem_reset(
        &self,
        id: uuid::Uuid,
        hash: &PasswordHash,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<bool, StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let now = stored(at);
            // The conditional update is the single use: of two redemptions, one changes the row.
            let used = password_reset::Entity::update_many()
                .col_expr(password_reset::Column::UsedAt, Expr::value(Some(now)))
                .filter(password_reset::Column::Id.eq(id))
                .filter(password_reset::Column::UsedAt.is_null())
                .filter(password_reset::Column::ExpiresAt.gt(now))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            if used.rows_affected == 0 {
                return Err(Refused);
            }
            let row = password_reset::Entity::find_by_id(id).one(&txn).await.map_err(db_err)?.ok_or(Refused)?;
            let user = UserId(row.user_id);
            let set = user::Entity::update_many()
                .col_expr(user::Column::PasswordHash, Expr::value(hash.0.clone()))
                .filter(user::Column::Id.eq(user.0))
                .filter(user::Column::Status.ne(UserStatus::Deleted.as_str()))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            if set.rows_affected == 0 {
                return Err(Refused);
            }
            end_sessions(&txn, user, None, at).await?;
            self.outbox.record(&txn, event).await?;
            Ok(())
        }
        .await;
        Conditional::answer(finish(txn, outcome).await)
    }

    async fn sessions(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StorageError> {
        session::Entity::find()
            .filter(session::Column::UserId.eq(user.0))
            .filter(active_sessions(stored(now)))
            .order_by_desc(session::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(crate::sessions::to_domain)
            .collect()
    }

    async fn end_session(
        &self,
        user: UserId,
        id: SessionId,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<bool, StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let now = stored(at);
            let ended = session::Entity::update_many()
                .col_expr(session::Column::RevokedAt, Expr::value(Some(now)))
                .filter(session::Column::Id.eq(id.0))
                .filter(session::Column::UserId.eq(user.0))
                .filter(active_sessions(now))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            if ended.rows_affected == 0 {
                return Err(Refused);
            }
            self.outbox.record(&txn, event).await?;
            Ok(())
        }
        .await;
        Conditional::answer(finish(txn, outcome).await)
    }

    async fn end_other_sessions(
        &self,
        user: UserId,
        keep: SessionId,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<u64, StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let ended = end_sessions(&txn, user, Some(keep), at).await?;
            self.outbox.record(&txn, event).await?;
            Ok(ended)
        }
        .await;
        finish(txn, outcome).await
    }
}
