//! The jobs table ([`JobQueue`], O5).
//!
//! A claim is one `UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING *` statement. On
//! PostgreSQL the inner select takes `FOR UPDATE SKIP LOCKED`: concurrent claimers (other
//! workers, other processes) skip a row another one is taking instead of waiting for it or
//! taking it twice. SQLite has one writer at a time, so the plain statement is already exclusive.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use otesse_domain::StorageError;
use otesse_domain::jobs::{Job, JobKind, JobQueue, JobState, MAX_ERROR_CHARS, NewJob};
use otesse_domain::page::{Page, PageRequest};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use uuid::Uuid;

use crate::Database;
use crate::entity::job;
use crate::support::{corrupt, db_err, is_unique_violation, overfetch, stored};

const TABLE: &str = "jobs";

/// Jobs on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct JobStore {
    conn: DatabaseConnection,
}

impl JobStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone() }
    }
}

fn claim_statement(backend: DbBackend, worker: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> Statement {
    let (placeholders, lock) = match backend {
        DbBackend::Postgres => (["$1", "$2", "$3"], " FOR UPDATE SKIP LOCKED"),
        _ => (["?1", "?2", "?3"], ""),
    };
    let [worker_p, until_p, now_p] = placeholders;
    let sql = format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = {worker_p}, \
         locked_until = {until_p}, updated_at = {now_p} \
         WHERE id = (SELECT id FROM jobs \
           WHERE (state = 'queued' AND run_at <= {now_p}) OR (state = 'running' AND locked_until < {now_p}) \
           ORDER BY run_at, id LIMIT 1{lock}) \
         RETURNING id, kind, payload, state, attempts, max_attempts, run_at, locked_by, locked_until, last_error, \
         dedupe_key, created_at, updated_at"
    );
    Statement::from_sql_and_values(backend, sql, [worker.into(), stored(until).into(), stored(now).into()])
}

#[async_trait]
impl JobQueue for JobStore {
    async fn enqueue(&self, new: &NewJob, now: DateTime<Utc>) -> Result<bool, StorageError> {
        let now = stored(now);
        let inserted = job::Entity::insert(job::ActiveModel {
            id: Set(new.id),
            kind: Set(new.kind.as_str().to_owned()),
            payload: Set(new.payload.clone()),
            state: Set(JobState::Queued.as_str().to_owned()),
            attempts: Set(0),
            max_attempts: Set(i32::try_from(new.max_attempts).unwrap_or(i32::MAX)),
            run_at: Set(stored(new.run_at)),
            locked_by: Set(None),
            locked_until: Set(None),
            last_error: Set(None),
            dedupe_key: Set(new.dedupe_key.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&self.conn)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(db_err(err)),
        }
    }

    async fn claim(&self, worker: &str, now: DateTime<Utc>, lease: Duration) -> Result<Option<Job>, StorageError> {
        let statement = claim_statement(self.conn.get_database_backend(), worker, now, now + lease);
        let row = job::Entity::find().from_raw_sql(statement).one(&self.conn).await.map_err(db_err)?;
        row.map(to_domain).transpose()
    }

    async fn succeed(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StorageError> {
        job::Entity::update_many()
            .col_expr(job::Column::State, Expr::value(JobState::Succeeded.as_str()))
            .col_expr(job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(job::Column::UpdatedAt, Expr::value(stored(now)))
            .filter(job::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn fail(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        let (state, run_at) = match retry_at {
            Some(at) => (JobState::Queued, Some(stored(at))),
            None => (JobState::Failed, None),
        };
        let mut update = job::Entity::update_many()
            .col_expr(job::Column::State, Expr::value(state.as_str()))
            .col_expr(job::Column::LastError, Expr::value(Some(error)))
            .col_expr(job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(job::Column::UpdatedAt, Expr::value(stored(now)));
        if let Some(run_at) = run_at {
            update = update.col_expr(job::Column::RunAt, Expr::value(run_at));
        }
        update.filter(job::Column::Id.eq(id)).exec(&self.conn).await.map_err(db_err)?;
        Ok(())
    }

    async fn list(&self, state: Option<JobState>, page: &PageRequest<Uuid>) -> Result<Page<Job, Uuid>, StorageError> {
        let mut query = job::Entity::find();
        if let Some(state) = state {
            query = query.filter(job::Column::State.eq(state.as_str()));
        }
        if let Some(after) = page.after() {
            query = query.filter(job::Column::Id.lt(*after));
        }
        let rows = query
            .order_by_desc(job::Column::Id)
            .limit(overfetch(page.limit()))
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        let jobs = rows.into_iter().map(to_domain).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(jobs, page.limit(), |j| j.id))
    }

    async fn prune_finished(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        let deleted = job::Entity::delete_many()
            .filter(job::Column::State.is_in([JobState::Succeeded.as_str(), JobState::Failed.as_str()]))
            .filter(job::Column::UpdatedAt.lt(stored(before)))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(deleted.rows_affected)
    }
}

fn to_domain(row: job::Model) -> Result<Job, StorageError> {
    let count = |column: &str, value: i32| u32::try_from(value).map_err(|_| corrupt(TABLE, column, value));
    Ok(Job {
        id: row.id,
        kind: JobKind::parse(&row.kind).ok_or_else(|| corrupt(TABLE, "kind", &row.kind))?,
        payload: row.payload,
        state: JobState::parse(&row.state).ok_or_else(|| corrupt(TABLE, "state", &row.state))?,
        attempts: count("attempts", row.attempts)?,
        max_attempts: count("max_attempts", row.max_attempts)?,
        run_at: row.run_at,
        locked_by: row.locked_by,
        locked_until: row.locked_until,
        last_error: row.last_error,
        dedupe_key: row.dedupe_key,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
