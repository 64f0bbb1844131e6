//! Idempotency records ([`IdempotencyStore`], W1). The unique index on `(scope,
//! idempotency_key)` decides which of concurrent first requests runs: the insert that wins gets
//! `New`, every other one reads the winner's row. No transaction is needed: each step is one
//! statement, and a row that changes between two of them only sends `begin` round once more.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::idempotency::{
    Begin, CallerScope, Fingerprint, IdempotencyKey, IdempotencyStore, StoredResponse, expiry_cutoff, lease_cutoff,
};
use otesse_domain::sealed::Ciphertext;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::Database;
use crate::entity::idempotency_record as record;
use crate::support::{corrupt, db_err, is_unique_violation, stored};

const TABLE: &str = "idempotency_records";

/// Idempotency records on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct IdempotencyRecordStore {
    conn: DatabaseConnection,
}

impl IdempotencyRecordStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone() }
    }

    /// Inserts the claim; false when `(scope, key)` is already held.
    async fn claim(
        &self,
        id: Uuid,
        scope: &CallerScope,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let inserted = record::Entity::insert(record::ActiveModel {
            id: Set(id),
            scope: Set(scope.as_str().to_owned()),
            idempotency_key: Set(key.as_str().to_owned()),
            fingerprint: Set(fingerprint.as_bytes().to_vec()),
            status: Set(None),
            content_type: Set(None),
            key_version: Set(None),
            body: Set(None),
            location: Set(None),
            created_at: Set(stored(now)),
        })
        .exec_without_returning(&self.conn)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(db_err(err)),
        }
    }

    async fn find(&self, scope: &CallerScope, key: &IdempotencyKey) -> Result<Option<record::Model>, StorageError> {
        record::Entity::find()
            .filter(record::Column::Scope.eq(scope.as_str()))
            .filter(record::Column::IdempotencyKey.eq(key.as_str()))
            .one(&self.conn)
            .await
            .map_err(db_err)
    }
}

/// What a live record held by another request means for this one.
fn held(row: record::Model, fingerprint: &Fingerprint) -> Result<Begin, StorageError> {
    if row.fingerprint != fingerprint.as_bytes().as_slice() {
        return Ok(Begin::Mismatch);
    }
    match (row.status, row.content_type, row.key_version, row.body) {
        (Some(status), Some(content_type), Some(version), Some(body)) => Ok(Begin::Completed {
            record: row.id,
            response: StoredResponse {
                status: u16::try_from(status).map_err(|_| corrupt(TABLE, "status", status))?,
                content_type,
                location: row.location,
                body: Ciphertext {
                    key_version: u32::try_from(version).map_err(|_| corrupt(TABLE, "key_version", version))?,
                    bytes: body,
                },
            },
        }),
        _ => Ok(Begin::InProgress),
    }
}

#[async_trait]
impl IdempotencyStore for IdempotencyRecordStore {
    async fn begin(
        &self,
        scope: &CallerScope,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        now: DateTime<Utc>,
    ) -> Result<Begin, StorageError> {
        let cutoff = stored(expiry_cutoff(now));
        let lease = stored(lease_cutoff(now));
        let id = Uuid::now_v7();
        // A new key costs one statement. Round twice at most: once more after deleting an
        // expired holder or a dead claim, or when the holder was abandoned between our insert
        // and our read.
        for _ in 0..2 {
            if self.claim(id, scope, key, fingerprint, now).await? {
                return Ok(Begin::New { record: id });
            }
            let Some(row) = self.find(scope, key).await? else { continue };
            let unfinished = row.status.is_none();
            if row.created_at >= cutoff && !(unfinished && row.created_at < lease) {
                return held(row, fingerprint);
            }
            // Expired, or a claim whose request died: as good as absent. Deleted by id and
            // age (and, for a claim, only while still unfinished), so a fresh claim that
            // replaced it, or an answer that arrived meanwhile, survives.
            let mut gone = record::Entity::delete_many().filter(record::Column::Id.eq(row.id));
            gone = if row.created_at < cutoff {
                gone.filter(record::Column::CreatedAt.lt(cutoff))
            } else {
                gone.filter(record::Column::CreatedAt.lt(lease)).filter(record::Column::Status.is_null())
            };
            gone.exec(&self.conn).await.map_err(db_err)?;
        }
        // Still held after two rounds: whoever holds it got there at the same moment.
        Ok(Begin::InProgress)
    }

    async fn complete(&self, id: Uuid, response: &StoredResponse) -> Result<(), StorageError> {
        let version = i32::try_from(response.body.key_version)
            .map_err(|_| StorageError::new("master key version beyond what can be stored"))?;
        let updated = record::Entity::update_many()
            .col_expr(record::Column::Status, Expr::value(Some(i32::from(response.status))))
            .col_expr(record::Column::ContentType, Expr::value(Some(response.content_type.clone())))
            .col_expr(record::Column::KeyVersion, Expr::value(Some(version)))
            .col_expr(record::Column::Body, Expr::value(Some(response.body.bytes.clone())))
            .col_expr(record::Column::Location, Expr::value(response.location.clone()))
            .filter(record::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        if updated.rows_affected == 0 {
            // Pruned or replaced while the request ran (it outlived the keep time): the
            // answer has nowhere to go, and a retry would run again.
            return Err(StorageError::new(format!("idempotency record {id} vanished before its answer was stored")));
        }
        Ok(())
    }

    async fn abandon(&self, id: Uuid) -> Result<(), StorageError> {
        record::Entity::delete_by_id(id).exec(&self.conn).await.map_err(db_err)?;
        Ok(())
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        let deleted = record::Entity::delete_many()
            .filter(record::Column::CreatedAt.lt(stored(before)))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(deleted.rows_affected)
    }
}
