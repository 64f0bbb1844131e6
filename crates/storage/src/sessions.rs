//! Sign-in sessions ([`SessionRepository`]). Only the hash of a session token is stored.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::api_key::KeyHash;
use otesse_domain::auth::{Session, SessionId};
use otesse_domain::ports::SessionRepository;
use otesse_domain::user::{User, UserId, UserStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter};

use crate::Database;
use crate::entity::{session, user};
use crate::support::{corrupt, db_err, stored};

/// Sessions on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct SessionStore {
    conn: DatabaseConnection,
}

impl SessionStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone() }
    }
}

#[async_trait]
impl SessionRepository for SessionStore {
    async fn insert(&self, session: &Session) -> Result<(), StorageError> {
        let row = session::ActiveModel {
            id: Set(session.id.0),
            user_id: Set(session.user_id.0),
            token_hash: Set(session.token_hash.0.to_vec()),
            created_at: Set(stored(session.created_at)),
            expires_at: Set(stored(session.expires_at)),
            revoked_at: Set(None),
            user_agent: Set(session.user_agent.clone()),
            ip_address: Set(session.ip_address.map(|ip| ip.to_string())),
        };
        session::Entity::insert(row).exec_without_returning(&self.conn).await.map_err(db_err)?;
        Ok(())
    }

    async fn find_active(&self, hash: &KeyHash, now: DateTime<Utc>) -> Result<Option<(Session, User)>, StorageError> {
        let now = stored(now);
        let found = session::Entity::find()
            .filter(session::Column::TokenHash.eq(hash.0.to_vec()))
            .filter(session::Column::ExpiresAt.gt(now))
            .filter(Condition::any().add(session::Column::RevokedAt.is_null()).add(session::Column::RevokedAt.gt(now)))
            .find_also_related(user::Entity)
            .filter(user::Column::Status.eq(UserStatus::Active.as_str()))
            .one(&self.conn)
            .await
            .map_err(db_err)?;
        // The foreign key guarantees the user; without one there is no usable session.
        let Some((row, Some(user))) = found else {
            return Ok(None);
        };
        Ok(Some((to_domain(row)?, crate::users::to_domain(user)?)))
    }

    async fn revoke(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), StorageError> {
        let at = stored(at);
        // An ended session keeps the time it ended; a later sign-out changes nothing.
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(Some(at)))
            .filter(session::Column::Id.eq(id.0))
            .filter(Condition::any().add(session::Column::RevokedAt.is_null()).add(session::Column::RevokedAt.gt(at)))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

pub(crate) fn to_domain(row: session::Model) -> Result<Session, StorageError> {
    let token_hash = <[u8; 32]>::try_from(row.token_hash.as_slice())
        .map_err(|_| corrupt("sessions", "token_hash", format!("{} bytes", row.token_hash.len())))?;
    let ip_address = row.ip_address.as_deref().map(|ip| ip.parse().map_err(|_| corrupt("sessions", "ip_address", ip)));
    Ok(Session {
        id: SessionId(row.id),
        user_id: UserId(row.user_id),
        token_hash: KeyHash(token_hash),
        created_at: row.created_at,
        expires_at: row.expires_at,
        user_agent: row.user_agent,
        ip_address: ip_address.transpose()?,
    })
}
