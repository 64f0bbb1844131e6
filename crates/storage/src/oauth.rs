//! OAuth2 ([`OAuthRepository`]): authorizations in progress and OAuth connections' tokens.
//!
//! A `state` is stored as its SHA-256 only and taken with a `DELETE`: of two callbacks
//! presenting the same state, one deletes the row and the other finds none. Tokens and PKCE
//! verifiers are stored as the cipher sealed them; their owners are rebuilt from the row's own
//! columns. The refresh lease is a conditional `UPDATE` of the connection's tokens row (taken
//! only when free or lapsed), so it holds across processes on both databases without keeping
//! a transaction open during the provider call.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::event::DomainEvent;
use otesse_domain::integration::{ConnectionStatus, PendingAuthorization, ProviderSlug, StoredTokens};
use otesse_domain::notification::Notification;
use otesse_domain::organization::OrganizationId;
use otesse_domain::ports::OAuthRepository;
use otesse_domain::sealed::Ciphertext;
use otesse_domain::user::UserId;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::Database;
use crate::entity::{
    integration_connection as connection, integration_oauth_authorization as authorization,
    integration_oauth_token as token, notification,
};
use crate::outbox::Outbox;
use crate::support::{begin, corrupt, db_err, finish, stored};

/// How often a process waiting for another's refresh looks again.
const WAIT_POLL: Duration = Duration::from_millis(50);

const AUTHORIZATIONS: &str = "integration_oauth_authorizations";
const TOKENS: &str = "integration_oauth_tokens";

/// OAuth records on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct OAuthStore {
    conn: DatabaseConnection,
    outbox: Outbox,
}

impl OAuthStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone(), outbox: db.outbox() }
    }
}

fn version(raw: u32) -> Result<i32, StorageError> {
    i32::try_from(raw).map_err(|_| StorageError::new(format!("master key version {raw} is beyond what can be stored")))
}

fn sealed(table: &str, column: &str, version: i32, bytes: Vec<u8>) -> Result<Ciphertext, StorageError> {
    let key_version = u32::try_from(version).map_err(|_| corrupt(table, column, version))?;
    Ok(Ciphertext { key_version, bytes })
}

/// Inserts a new OAuth connection's tokens (inside the connect's transaction).
pub(crate) async fn insert_tokens(conn: &impl ConnectionTrait, tokens: &StoredTokens) -> Result<(), StorageError> {
    let row = token::ActiveModel {
        connection_id: Set(tokens.connection_id),
        organization_id: Set(tokens.organization_id.0),
        access_key_version: Set(version(tokens.access.key_version)?),
        access_ciphertext: Set(tokens.access.bytes.clone()),
        refresh_key_version: Set(tokens.refresh.as_ref().map(|r| version(r.key_version)).transpose()?),
        refresh_ciphertext: Set(tokens.refresh.as_ref().map(|r| r.bytes.clone())),
        access_expires_at: Set(tokens.access_expires_at.map(stored)),
        updated_at: Set(stored(tokens.updated_at)),
        lease_holder: Set(None),
        lease_until: Set(None),
    };
    token::Entity::insert(row).exec_without_returning(conn).await.map_err(db_err)?;
    Ok(())
}

/// Deletes a connection's tokens (its disconnect, or a refused refresh).
pub(crate) async fn delete_tokens(conn: &impl ConnectionTrait, connection: Uuid) -> Result<(), StorageError> {
    token::Entity::delete_many().filter(token::Column::ConnectionId.eq(connection)).exec(conn).await.map_err(db_err)?;
    Ok(())
}

fn tokens_to_domain(row: token::Model) -> Result<StoredTokens, StorageError> {
    let refresh = match (row.refresh_key_version, row.refresh_ciphertext) {
        (Some(v), Some(bytes)) => Some(sealed(TOKENS, "refresh_key_version", v, bytes)?),
        _ => None,
    };
    Ok(StoredTokens {
        connection_id: row.connection_id,
        organization_id: OrganizationId(row.organization_id),
        access: sealed(TOKENS, "access_key_version", row.access_key_version, row.access_ciphertext)?,
        refresh,
        access_expires_at: row.access_expires_at,
        updated_at: row.updated_at,
    })
}

#[async_trait]
impl OAuthRepository for OAuthStore {
    async fn insert_authorization(&self, pending: &PendingAuthorization) -> Result<(), StorageError> {
        let row = authorization::ActiveModel {
            id: Set(pending.id),
            state_hash: Set(pending.state_hash.to_vec()),
            organization_id: Set(pending.organization_id.0),
            user_id: Set(pending.user_id.0),
            provider: Set(pending.provider.as_str().to_owned()),
            redirect_uri: Set(pending.redirect_uri.clone()),
            verifier_key_version: Set(pending.verifier.as_ref().map(|v| version(v.key_version)).transpose()?),
            verifier_ciphertext: Set(pending.verifier.as_ref().map(|v| v.bytes.clone())),
            created_at: Set(stored(pending.created_at)),
            expires_at: Set(stored(pending.expires_at)),
        };
        // Expired authorizations nobody came back for go with the next one of the organization.
        authorization::Entity::delete_many()
            .filter(authorization::Column::OrganizationId.eq(pending.organization_id.0))
            .filter(authorization::Column::ExpiresAt.lt(stored(pending.created_at)))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        authorization::Entity::insert(row).exec_without_returning(&self.conn).await.map_err(db_err)?;
        Ok(())
    }

    async fn take_authorization(&self, state_hash: &[u8; 32]) -> Result<Option<PendingAuthorization>, StorageError> {
        let Some(row) = authorization::Entity::find()
            .filter(authorization::Column::StateHash.eq(state_hash.to_vec()))
            .one(&self.conn)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        // Whoever deletes the row owns it: a concurrent callback with the same state deletes
        // nothing and gets nothing. (One statement, no transaction: SQLite would refuse to
        // upgrade two readers' locks.)
        let deleted = authorization::Entity::delete_many()
            .filter(authorization::Column::Id.eq(row.id))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        if deleted.rows_affected != 1 {
            return Ok(None);
        }
        let verifier = match (row.verifier_key_version, row.verifier_ciphertext) {
            (Some(v), Some(bytes)) => Some(sealed(AUTHORIZATIONS, "verifier_key_version", v, bytes)?),
            _ => None,
        };
        let state_hash: [u8; 32] =
            row.state_hash.as_slice().try_into().map_err(|_| corrupt(AUTHORIZATIONS, "state_hash", row.id))?;
        Ok(Some(PendingAuthorization {
            id: row.id,
            state_hash,
            organization_id: OrganizationId(row.organization_id),
            user_id: UserId(row.user_id),
            provider: ProviderSlug::parse(&row.provider)
                .ok_or_else(|| corrupt(AUTHORIZATIONS, "provider", &row.provider))?,
            redirect_uri: row.redirect_uri,
            verifier,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }))
    }

    async fn tokens(&self, connection: Uuid) -> Result<Option<StoredTokens>, StorageError> {
        token::Entity::find_by_id(connection).one(&self.conn).await.map_err(db_err)?.map(tokens_to_domain).transpose()
    }

    async fn lease_refresh(
        &self,
        connection: Uuid,
        holder: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let free =
            Condition::any().add(token::Column::LeaseUntil.is_null()).add(token::Column::LeaseUntil.lte(stored(now)));
        let taken = token::Entity::update_many()
            .col_expr(token::Column::LeaseHolder, Expr::value(Some(holder)))
            .col_expr(token::Column::LeaseUntil, Expr::value(Some(stored(until))))
            .filter(token::Column::ConnectionId.eq(connection))
            .filter(free)
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(taken.rows_affected == 1)
    }

    async fn store_refreshed(&self, tokens: &StoredTokens, holder: Uuid) -> Result<bool, StorageError> {
        let refresh_version = tokens.refresh.as_ref().map(|r| version(r.key_version)).transpose()?;
        let stored_now = token::Entity::update_many()
            .col_expr(token::Column::AccessKeyVersion, Expr::value(version(tokens.access.key_version)?))
            .col_expr(token::Column::AccessCiphertext, Expr::value(tokens.access.bytes.clone()))
            .col_expr(token::Column::RefreshKeyVersion, Expr::value(refresh_version))
            .col_expr(token::Column::RefreshCiphertext, Expr::value(tokens.refresh.as_ref().map(|r| r.bytes.clone())))
            .col_expr(token::Column::AccessExpiresAt, Expr::value(tokens.access_expires_at.map(stored)))
            .col_expr(token::Column::UpdatedAt, Expr::value(stored(tokens.updated_at)))
            .col_expr(token::Column::LeaseHolder, Expr::value(Option::<Uuid>::None))
            .col_expr(token::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(token::Column::ConnectionId.eq(tokens.connection_id))
            .filter(token::Column::LeaseHolder.eq(holder))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(stored_now.rows_affected == 1)
    }

    async fn tokens_expiring_before(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<StoredTokens>, StorageError> {
        token::Entity::find()
            .filter(token::Column::AccessExpiresAt.lte(stored(before)))
            .order_by_asc(token::Column::AccessExpiresAt)
            .limit(limit)
            .all(&self.conn)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(tokens_to_domain)
            .collect()
    }

    async fn release_refresh(&self, connection: Uuid, holder: Uuid) -> Result<(), StorageError> {
        token::Entity::update_many()
            .col_expr(token::Column::LeaseHolder, Expr::value(Option::<Uuid>::None))
            .col_expr(token::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(token::Column::ConnectionId.eq(connection))
            .filter(token::Column::LeaseHolder.eq(holder))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn wait_for_refresh(
        &self,
        connection: Uuid,
        deadline: DateTime<Utc>,
    ) -> Result<Option<StoredTokens>, StorageError> {
        loop {
            let Some(row) = token::Entity::find_by_id(connection).one(&self.conn).await.map_err(db_err)? else {
                return Ok(None);
            };
            let now = Utc::now();
            if row.lease_until.is_none_or(|until| until <= now) {
                return tokens_to_domain(row).map(Some);
            }
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    async fn mark_needs_reauthorization(
        &self,
        connection_id: Uuid,
        n: &Notification,
        event: &DomainEvent,
    ) -> Result<bool, StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let marked = connection::Entity::update_many()
                .col_expr(connection::Column::Status, Expr::value(ConnectionStatus::NeedsReauthorization.as_str()))
                .filter(connection::Column::Id.eq(connection_id))
                .filter(connection::Column::Status.eq(ConnectionStatus::Connected.as_str()))
                .exec(&txn)
                .await
                .map_err(db_err)?;
            if marked.rows_affected != 1 {
                return Ok(false);
            }
            delete_tokens(&txn, connection_id).await?;
            notification::Entity::insert(notification::ActiveModel {
                id: Set(n.id),
                organization_id: Set(n.organization_id.0),
                user_id: Set(n.user_id.0),
                kind: Set(n.kind.as_str().to_owned()),
                title: Set(n.title.clone()),
                body: Set(n.body.clone()),
                subject: Set(n.subject.clone()),
                dedupe_key: Set(format!("{}:{connection_id}", n.kind.as_str())),
                created_at: Set(stored(n.created_at)),
                read_at: Set(n.read_at.map(stored)),
            })
            .on_conflict(OnConflict::column(notification::Column::DedupeKey).do_nothing().to_owned())
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
            self.outbox.record(&txn, event).await?;
            Ok(true)
        }
        .await;
        match outcome {
            Ok(false) => {
                txn.rollback().await.map_err(db_err)?;
                Ok(false)
            }
            outcome => finish(txn, outcome).await,
        }
    }
}
