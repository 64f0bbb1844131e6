//! Platform service tokens ([`ServiceTokenRepository`]). Only the hash of a token is stored.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::api_key::KeyHash;
use otesse_domain::service_token::{ServiceToken, ServiceTokenId, ServiceTokenRepository};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::Database;
use crate::entity::service_token as row;
use crate::support::{corrupt, db_err, stored};

/// Service tokens on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct ServiceTokenStore {
    conn: DatabaseConnection,
}

impl ServiceTokenStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone() }
    }
}

fn to_domain(model: row::Model) -> Result<ServiceToken, StorageError> {
    let hash = <[u8; 32]>::try_from(model.token_hash.as_slice())
        .map_err(|_| corrupt("service_tokens", "token_hash", format!("{} bytes", model.token_hash.len())))?;
    Ok(ServiceToken {
        id: ServiceTokenId(model.id),
        name: model.name,
        token_hash: KeyHash(hash),
        last_four: model.last_four,
        created_at: model.created_at,
        revoked_at: model.revoked_at,
    })
}

#[async_trait]
impl ServiceTokenRepository for ServiceTokenStore {
    async fn insert(&self, token: &ServiceToken) -> Result<(), StorageError> {
        let model = row::ActiveModel {
            id: Set(token.id.0),
            name: Set(token.name.clone()),
            token_hash: Set(token.token_hash.0.to_vec()),
            last_four: Set(token.last_four.clone()),
            created_at: Set(stored(token.created_at)),
            revoked_at: Set(token.revoked_at.map(stored)),
        };
        row::Entity::insert(model).exec_without_returning(&self.conn).await.map_err(db_err)?;
        Ok(())
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ServiceToken>, StorageError> {
        let found = row::Entity::find()
            .filter(row::Column::TokenHash.eq(hash.0.to_vec()))
            .one(&self.conn)
            .await
            .map_err(db_err)?;
        found.map(to_domain).transpose()
    }

    async fn list(&self) -> Result<Vec<ServiceToken>, StorageError> {
        let rows = row::Entity::find()
            .order_by_asc(row::Column::CreatedAt)
            .order_by_asc(row::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        rows.into_iter().map(to_domain).collect()
    }

    async fn revoke(&self, id: ServiceTokenId, at: DateTime<Utc>) -> Result<Option<ServiceToken>, StorageError> {
        let at = stored(at);
        // Revocation only moves earlier: a token revoked before keeps its time.
        row::Entity::update_many()
            .col_expr(row::Column::RevokedAt, Expr::value(Some(at)))
            .filter(row::Column::Id.eq(id.0))
            .filter(Condition::any().add(row::Column::RevokedAt.is_null()).add(row::Column::RevokedAt.gt(at)))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        let found = row::Entity::find_by_id(id.0).one(&self.conn).await.map_err(db_err)?;
        found.map(to_domain).transpose()
    }
}
