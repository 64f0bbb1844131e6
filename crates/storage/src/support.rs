//! Small helpers shared by the stores: error translation, transactions, timestamps.

use chrono::{DateTime, SubsecRound, Utc};
use otesse_domain::StorageError;
use otesse_domain::organization::OrganizationId;
use otesse_domain::sealed::Ciphertext;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    IsolationLevel, QueryFilter, SqlErr, TransactionTrait,
};

use crate::entity::organization;

/// On SQLite, takes turns at the database's one writer inside this process, for the writes that
/// come many at once: the job worker's claims and outcomes, and webhook deliveries' sends and
/// attempts. SQLite itself makes a second writer wait by sleeping, in steps that grow from 1 to
/// 100 ms, and the lock sits idle while the waiters sleep: under a steady stream of deliveries
/// that idle time, not the writes, capped a process at about 90 deliveries a second. Writers
/// that queue here are handed the turn as the one before them ends. Writers that don't (other
/// stores) still meet SQLite's wait, as before; a gated write never waits for another gated one,
/// and none is taken inside another (the mutex is not reentrant). On PostgreSQL, which locks
/// rows, there is no gate.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteGate(Option<std::sync::Arc<tokio::sync::Mutex<()>>>);

impl WriteGate {
    pub(crate) fn for_backend(backend: DbBackend) -> Self {
        Self((backend == DbBackend::Sqlite).then(Default::default))
    }

    /// Waits for this process's turn at the writer (at once on PostgreSQL); the turn lasts as
    /// long as the guard.
    pub(crate) async fn turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.0 {
            Some(gate) => Some(gate.lock().await),
            None => None,
        }
    }
}

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

/// The first statement of a transaction that must not run alongside another of the same
/// organization (counting against a limit, then inserting). On PostgreSQL the row lock it takes
/// serializes them; on SQLite a write as first statement takes the database write lock before
/// any read snapshot exists.
pub(crate) async fn lock_organization(
    txn: &impl ConnectionTrait,
    organization: OrganizationId,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let updated = organization::Entity::update_many()
        .col_expr(organization::Column::UpdatedAt, Expr::value(stored(now)))
        .filter(organization::Column::Id.eq(organization.0))
        .exec(txn)
        .await
        .map_err(db_err)?;
    if updated.rows_affected == 0 {
        return Err(StorageError::new(format!("organization {organization} does not exist")));
    }
    Ok(())
}

/// The master-key rewrap's compare-and-swap: replaces the sealed value (its key version and
/// ciphertext columns) of the row `owner` selects with `new`, only if it still is `old`. False
/// when the row changed or vanished since it was read, or `old` holds a version no row can.
pub(crate) async fn swap_sealed<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    owner: sea_orm::Condition,
    [version_column, ciphertext_column]: [E::Column; 2],
    old: &Ciphertext,
    new: &Ciphertext,
) -> Result<bool, StorageError> {
    let new_version = i32::try_from(new.key_version).map_err(|_| {
        StorageError::new(format!("master key version {} is beyond what can be stored", new.key_version))
    })?;
    let Ok(old_version) = i32::try_from(old.key_version) else {
        return Ok(false);
    };
    let replaced = E::update_many()
        .col_expr(version_column, Expr::value(new_version))
        .col_expr(ciphertext_column, Expr::value(new.bytes.clone()))
        .filter(owner)
        .filter(version_column.eq(old_version))
        .filter(ciphertext_column.eq(old.bytes.clone()))
        .exec(conn)
        .await
        .map_err(db_err)?;
    Ok(replaced.rows_affected == 1)
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn on_sqlite_one_writer_holds_the_turn_until_it_drops_it() {
        let gate = WriteGate::for_backend(DbBackend::Sqlite);
        let other = gate.clone();
        let first = gate.turn().await;
        assert!(first.is_some());
        assert!(other.turn().now_or_never().is_none(), "a clone waits while the turn is held");
        drop(first);
        assert!(other.turn().now_or_never().is_some(), "and gets it once it is dropped");
    }

    #[tokio::test]
    async fn on_postgresql_there_is_no_turn_to_wait_for() {
        let gate = WriteGate::for_backend(DbBackend::Postgres);
        let other = gate.clone();
        let _first = gate.turn().await;
        assert!(matches!(other.turn().now_or_never(), Some(None)), "never waits, and holds nothing");
    }
}
