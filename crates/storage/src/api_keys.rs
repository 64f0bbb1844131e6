//! API keys ([`ApiKeyRepository`]), with the atomic limit and name checks of K3 and K7.
//!
//! Creating and rotating a key both run, in one transaction:
//! 1. `UPDATE organizations SET updated_at = now WHERE id = org`, as the first statement. On
//!    PostgreSQL this row lock serializes every creator of keys for the organization; on SQLite
//!    a write as first statement takes the database write lock before any read snapshot exists.
//! 2. The count of the organization's keys active at `now`, refused at `limit`.
//! 3. The same-name check among those active keys.
//! 4. The inserts (and, for a rotation, the old key's scheduled revocation, applied before the
//!    count so that an old key revoked at once frees its place), and the operation's event
//!    (its audit row and webhook deliveries, see [`crate::Outbox`]).
//!
//! A rotation also reads, after the lock and before anything else, the old key (it must still
//! be active) and whether it already has an active successor: of concurrent rotations of one
//! key, the first to take the lock wins and the others see its successor (or the revocation it
//! made), so a key never has two active successors and its end is scheduled once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use otesse_domain::StorageError;
use otesse_domain::api_key::{
    ApiKey, ApiKeyDescription, ApiKeyId, ApiKeyName, ApiKeyStatus, Environment, ExpiresIn, KeyHash, Scope, ScopeLevel,
};
use otesse_domain::event::DomainEvent;
use otesse_domain::organization::OrganizationId;
use otesse_domain::ports::{ApiKeyRepository, InsertKeyError, RotateStoredKeyError};
use otesse_domain::user::UserId;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::Database;
use crate::entity::api_key;
use crate::outbox::Outbox;
use crate::support::{begin, corrupt, db_err, finish, lock_organization, stored};

/// API keys on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct ApiKeyStore {
    conn: DatabaseConnection,
    outbox: Outbox,
}

impl ApiKeyStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone(), outbox: db.outbox() }
    }
}

#[async_trait]
impl ApiKeyRepository for ApiKeyStore {
    async fn insert(
        &self,
        key: &ApiKey,
        event: &DomainEvent,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(), InsertKeyError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            lock_organization(&txn, key.organization_id, now).await?;
            check_room(&txn, key, limit, now).await?;
            insert_key(&txn, key).await?;
            self.outbox.record(&txn, event).await?;
            Ok(())
        }
        .await;
        finish(txn, outcome).await
    }

    async fn find(&self, organization: OrganizationId, id: ApiKeyId) -> Result<Option<ApiKey>, StorageError> {
        find_in(&self.conn, organization, id).await
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StorageError> {
        api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(hash.0.to_vec()))
            .one(&self.conn)
            .await
            .map_err(db_err)?
            .map(to_domain)
            .transpose()
    }

    async fn list(&self, organization: OrganizationId) -> Result<Vec<ApiKey>, StorageError> {
        api_key::Entity::find()
            .filter(api_key::Column::OrganizationId.eq(organization.0))
            .order_by_desc(api_key::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn expiring_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<ApiKey>, StorageError> {
        api_key::Entity::find()
            .filter(api_key::Column::ExpiresAt.gt(stored(from)))
            .filter(api_key::Column::ExpiresAt.lte(stored(to)))
            .order_by_asc(api_key::Column::ExpiresAt)
            .all(&self.conn)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn revoke(
        &self,
        organization: OrganizationId,
        id: ApiKeyId,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<Option<ApiKey>, StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            // The write comes first (see the module docs); it matches nothing when the key is
            // absent or already revoked at or before `at`.
            let changed = revoke_no_later_than(&txn, organization, id, at).await?;
            let Some(key) = find_in(&txn, organization, id).await? else {
                return Ok(None);
            };
            if changed {
                self.outbox.record(&txn, event).await?;
            }
            Ok(Some(key))
        }
        .await;
        finish(txn, outcome).await
    }

    async fn rotate(
        &self,
        new_key: &ApiKey,
        old_key: ApiKeyId,
        revoke_old_at: Option<DateTime<Utc>>,
        event: &DomainEvent,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(), RotateStoredKeyError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let organization = new_key.organization_id;
            lock_organization(&txn, organization, now).await?;
            let old = find_in(&txn, organization, old_key)
                .await?
                .ok_or_else(|| StorageError::new("the key being rotated is gone (keys are never deleted)"))?;
            let status = old.status(now);
            if status != ApiKeyStatus::Active {
                return Err(RotateStoredKeyError::OldKeyNotActive(status));
            }
            if has_active_successor(&txn, organization, old_key, now).await? {
                return Err(RotateStoredKeyError::AlreadyRotated);
            }
            if let Some(at) = revoke_old_at {
                revoke_no_later_than(&txn, organization, old_key, at).await?;
            }
            check_room(&txn, new_key, limit, now).await?;
            insert_key(&txn, new_key).await?;
            self.outbox.record(&txn, event).await?;
            Ok(())
        }
        .await;
        finish(txn, outcome).await
    }
}

/// Steps 2 and 3: refuses when the organization has no room for `key` at `now`.
async fn check_room(
    txn: &impl ConnectionTrait,
    key: &ApiKey,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<(), InsertKeyError> {
    let now = stored(now);
    let active_names: Vec<String> = api_key::Entity::find()
        .select_only()
        .column(api_key::Column::Name)
        .filter(api_key::Column::OrganizationId.eq(key.organization_id.0))
        .filter(Condition::any().add(api_key::Column::RevokedAt.is_null()).add(api_key::Column::RevokedAt.gt(now)))
        .filter(Condition::any().add(api_key::Column::ExpiresAt.is_null()).add(api_key::Column::ExpiresAt.gt(now)))
        .into_tuple()
        .all(txn)
        .await
        .map_err(db_err)?;
    if active_names.len() >= limit {
        return Err(InsertKeyError::LimitReached);
    }
    if active_names.iter().any(|name| name == key.name.as_str()) {
        return Err(InsertKeyError::NameTaken);
    }
    Ok(())
}

/// Whether a key made by rotating `old_key` is active at `now`.
async fn has_active_successor(
    txn: &impl ConnectionTrait,
    organization: OrganizationId,
    old_key: ApiKeyId,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let now = stored(now);
    let successor = api_key::Entity::find()
        .select_only()
        .column(api_key::Column::Id)
        .filter(api_key::Column::OrganizationId.eq(organization.0))
        .filter(api_key::Column::RotatedFrom.eq(old_key.0))
        .filter(Condition::any().add(api_key::Column::RevokedAt.is_null()).add(api_key::Column::RevokedAt.gt(now)))
        .filter(Condition::any().add(api_key::Column::ExpiresAt.is_null()).add(api_key::Column::ExpiresAt.gt(now)))
        .into_tuple::<uuid::Uuid>()
        .one(txn)
        .await
        .map_err(db_err)?;
    Ok(successor.is_some())
}

async fn insert_key(txn: &impl ConnectionTrait, key: &ApiKey) -> Result<(), StorageError> {
    api_key::Entity::insert(to_active(key)).exec_without_returning(txn).await.map_err(db_err)?;
    Ok(())
}

/// Sets `revoked_at = at` unless the key is already revoked at or before `at`: revocation only
/// ever moves earlier. Whether it changed the key.
async fn revoke_no_later_than(
    txn: &impl ConnectionTrait,
    organization: OrganizationId,
    id: ApiKeyId,
    at: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let at = stored(at);
    let updated = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(Some(at)))
        .filter(api_key::Column::Id.eq(id.0))
        .filter(api_key::Column::OrganizationId.eq(organization.0))
        .filter(Condition::any().add(api_key::Column::RevokedAt.is_null()).add(api_key::Column::RevokedAt.gt(at)))
        .exec(txn)
        .await
        .map_err(db_err)?;
    Ok(updated.rows_affected > 0)
}

async fn find_in(
    conn: &impl ConnectionTrait,
    organization: OrganizationId,
    id: ApiKeyId,
) -> Result<Option<ApiKey>, StorageError> {
    api_key::Entity::find_by_id(id.0)
        .filter(api_key::Column::OrganizationId.eq(organization.0))
        .one(conn)
        .await
        .map_err(db_err)?
        .map(to_domain)
        .transpose()
}

fn to_active(key: &ApiKey) -> api_key::ActiveModel {
    let scopes = serde_json::Value::from_iter(key.scopes.iter().map(|scope| scope.as_str()));
    let allowed_ips = serde_json::Value::from_iter(key.allowed_ips.iter().map(|net| net.to_string()));
    api_key::ActiveModel {
        id: Set(key.id.0),
        organization_id: Set(key.organization_id.0),
        name: Set(key.name.as_str().to_owned()),
        description: Set(key.description.as_str().to_owned()),
        environment: Set(key.environment.as_str().to_owned()),
        scope_level: Set(key.scope_level.as_str().to_owned()),
        scopes: Set(scopes.to_string()),
        expires_in: Set(key.expires_in.as_str().to_owned()),
        allowed_ips: Set(allowed_ips.to_string()),
        key_hash: Set(key.key_hash.0.to_vec()),
        last4: Set(key.last4.clone()),
        created_by: Set(key.created_by.0),
        created_at: Set(stored(key.created_at)),
        expires_at: Set(key.expires_at.map(stored)),
        revoked_at: Set(key.revoked_at.map(stored)),
        rotated_from: Set(key.rotated_from.map(|id| id.0)),
        last_used_at: Set(key.last_used_at.map(stored)),
        request_count: Set(0),
    }
}

const TABLE: &str = "api_keys";

fn to_domain(row: api_key::Model) -> Result<ApiKey, StorageError> {
    let name = ApiKeyName::parse(&row.name).map_err(|_| corrupt(TABLE, "name", &row.name))?;
    let description =
        ApiKeyDescription::parse(&row.description).map_err(|_| corrupt(TABLE, "description", &row.description))?;
    let environment =
        Environment::parse(&row.environment).ok_or_else(|| corrupt(TABLE, "environment", &row.environment))?;
    let scope_level =
        ScopeLevel::parse(&row.scope_level).ok_or_else(|| corrupt(TABLE, "scope_level", &row.scope_level))?;
    let scopes = serde_json::from_str::<Vec<String>>(&row.scopes)
        .map_err(|_| corrupt(TABLE, "scopes", &row.scopes))?
        .iter()
        .map(|raw| Scope::parse(raw).ok_or_else(|| corrupt(TABLE, "scopes", raw)))
        .collect::<Result<Vec<_>, _>>()?;
    let expires_in = ExpiresIn::parse(&row.expires_in).ok_or_else(|| corrupt(TABLE, "expires_in", &row.expires_in))?;
    let allowed_ips = serde_json::from_str::<Vec<String>>(&row.allowed_ips)
        .map_err(|_| corrupt(TABLE, "allowed_ips", &row.allowed_ips))?
        .iter()
        .map(|raw| raw.parse::<IpNet>().map_err(|_| corrupt(TABLE, "allowed_ips", raw)))
        .collect::<Result<Vec<_>, _>>()?;
    // The hash is not secret, but there is no use in printing it either.
    let key_hash = <[u8; 32]>::try_from(row.key_hash.as_slice())
        .map_err(|_| corrupt(TABLE, "key_hash", format!("{} bytes", row.key_hash.len())))?;
    Ok(ApiKey {
        id: ApiKeyId(row.id),
        organization_id: OrganizationId(row.organization_id),
        name,
        description,
        environment,
        scope_level,
        scopes,
        expires_in,
        allowed_ips,
        key_hash: KeyHash(key_hash),
        last4: row.last4,
        created_by: UserId(row.created_by),
        created_at: row.created_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        rotated_from: row.rotated_from.map(ApiKeyId),
        last_used_at: row.last_used_at,
    })
}
