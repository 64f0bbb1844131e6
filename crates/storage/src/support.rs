//! Small helpers shared by the stores: error translation, transactions, timestamps.

use chrono::{DateTime, SubsecRound, Utc};
use otesse_domain::StorageError;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, IsolationLevel, SqlErr, TransactionTrait};

/// Any database error the caller cannot be blamed for.
pub(crate) fn db_err(err: DbErr) -> StorageError {
    StorageError::new(err.to_string())
}

pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// A stored value that does not map back to the domain.
pub(crate) fn corrupt(table: &str, column: &str, value: impl std::fmt::Debug) -> StorageError {
    StorageError::new(format!("{table}.{column} holds an unexpected value: {value:?}"))
}

/// Timestamps are kept to the microsecond on both databases (PostgreSQL's precision), so that
/// what is read back equals what was written whatever the backend.
pub(crate) fn stored(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// Starts a transaction. On PostgreSQL it is READ COMMITTED whatever the server's default: the
/// key store relies on each statement seeing what committed before it (after waiting for the
/// organization's row lock). SQLite transactions are serializable anyway.
pub(crate) async fn begin(conn: &DatabaseConnection) -> Result<DatabaseTransaction, StorageError> {
    let txn = match conn.get_database_backend() {
        DbBackend::Postgres => conn.begin_with_config(Some(IsolationLevel::ReadCommitted), None).await,
        _ => conn.begin().await,
    };
    txn.map_err(db_err)
}

/// Commits on success and rolls back on failure, so a refused operation leaves no trace.
pub(crate) async fn finish<T, E>(txn: DatabaseTransaction, outcome: Result<T, E>) -> Result<T, E>
where
    E: From<StorageError>,
{
    match outcome {
        Ok(value) => {
            txn.commit().await.map_err(db_err)?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = txn.rollback().await {
                // The connection is discarded by the pool in that case; nothing was committed.
                tracing::warn!(error = %rollback, "rollback failed");
            }
            Err(err)
        }
    }
}

/// The `limit + 1` rows a page query fetches, to know whether another page follows.
pub(crate) fn overfetch(limit: u32) -> u64 {
    u64::from(limit) + 1
}
