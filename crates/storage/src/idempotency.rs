//! Idempotency records ([`IdempotencyStore`], W1). The unique index on `(scope,
//! idempotency_key)` decides which of concurrent first requests runs: the insert that wins gets
//! `New`, every other one reads the winner's row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::idempotency::{Begin, IdempotencyKey, IdempotencyStore, StoredResponse};
use otesse_domain::integration::Ciphertext;
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

    async fn find(&self, scope: &str, key: &IdempotencyKey) -> Result<Option<record::Model>, StorageError> {
        record::Entity::find()
            .filter(record::Column::Scope.eq(scope))
            .filter(record::Column::IdempotencyKey.eq(key.as_str()))
            .one(&self.conn)
            .await
            .map_err(db_err)
    }
}

#[async_trait]
impl IdempotencyStore for IdempotencyRecordStore {
    async fn begin(
        &self,
        scope: &str,
        key: &IdempotencyKey,
        fingerprint: &[u8; 32],
        now: DateTime<Utc>,
        expired_before: DateTime<Utc>,
    ) -> Result<Begin, StorageError> {
        // An expired record is as good as absent.
        record::Entity::delete_many()
            .filter(record::Column::Scope.eq(scope))
            .filter(record::Column::IdempotencyKey.eq(key.as_str()))
            .filter(record::Column::CreatedAt.lt(stored(expired_before)))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        let id = Uuid::now_v7();
        let inserted = record::Entity::insert(record::ActiveModel {
            id: Set(id),
            scope: Set(scope.to_owned()),
            idempotency_key: Set(key.as_str().to_owned()),
            fingerprint: Set(fingerprint.to_vec()),
            status: Set(None),
            content_type: Set(None),
            key_version: Set(None),
            body: Set(None),
            created_at: Set(stored(now)),
        })
        .exec_without_returning(&self.conn)
        .await;
        match inserted {
            Ok(_) => return Ok(Begin::New { record: id }),
            Err(err) if is_unique_violation(&err) => {}
            Err(err) => return Err(db_err(err)),
        }
        // Someone holds the key: find what they hold. (It may have been abandoned meanwhile:
        // then the caller is told it is in progress and may retry.)
        let Some(row) = self.find(scope, key).await? else { return Ok(Begin::InProgress) };
        if row.fingerprint != fingerprint.as_slice() {
            return Ok(Begin::Mismatch);
        }
        match (row.status, row.content_type, row.key_version, row.body) {
            (Some(status), Some(content_type), Some(version), Some(body)) => Ok(Begin::Completed {
                record: row.id,
                response: StoredResponse {
                    status: u16::try_from(status).map_err(|_| corrupt(TABLE, "status", status))?,
                    content_type,
                    body: Ciphertext {
                        key_version: u32::try_from(version).map_err(|_| corrupt(TABLE, "key_version", version))?,
                        bytes: body,
                    },
                },
            }),
            _ => Ok(Begin::InProgress),
        }
    }

    async fn complete(&self, id: Uuid, response: &StoredResponse) -> Result<(), StorageError> {
        let version = i32::try_from(response.body.key_version)
            .map_err(|_| StorageError::new("master key version beyond what can be stored"))?;
        record::Entity::update_many()
            .col_expr(record::Column::Status, Expr::value(Some(i32::from(response.status))))
            .col_expr(record::Column::ContentType, Expr::value(Some(response.content_type.clone())))
            .col_expr(record::Column::KeyVersion, Expr::value(Some(version)))
            .col_expr(record::Column::Body, Expr::value(Some(response.body.bytes.clone())))
            .filter(record::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
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
