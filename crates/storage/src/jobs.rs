//! The jobs table ([`JobQueue`], O5).
//!
//! A claim is one `UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING ...` statement (on
//! PostgreSQL, the select is a CTE). There the select takes `FOR UPDATE SKIP LOCKED`: concurrent claimers (other
//! workers, other processes) skip a row another one is taking instead of waiting for it or
//! taking it twice. SQLite has one writer at a time, and an `UPDATE` takes the write lock before
//! it reads, so the plain statement is already exclusive (`RETURNING` needs SQLite 3.35; the
//! bundled one is newer).
//!
//! A dedupe key is enforced by the unique index: `INSERT ... ON CONFLICT (dedupe_key) DO NOTHING`
//! inserts nothing, without an error (and without an error in PostgreSQL's log every time each
//! process schedules a recurring job), when the key is taken. NULL keys never conflict.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use otesse_domain::StorageError;
use otesse_domain::jobs::{Job, JobBacklog, JobFilter, JobId, JobKind, JobQueue, JobState, NewJob, kept_error};
use otesse_domain::page::{Page, PageRequest};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, Statement, Value,
};

use crate::Database;
use crate::entity::job;
use crate::support::{WriteGate, corrupt, db_err, overfetch, stored};

const TABLE: &str = "jobs";

/// The PostgreSQL notification channel on which the outbox announces queued jobs (at commit).
/// Database-wide, like the key invalidations: installations in other schemas of the same
/// database wake for nothing, and find nothing to claim.
pub const JOB_QUEUED_CHANNEL: &str = "otesse_job_queued";

/// How the listening connection shows in `pg_stat_activity`.
const WAKEUP_APPLICATION_NAME: &str = "otesse-job-wakeups";

/// Wakes a process's job worker when a job is queued. Clones share one signal; a wake while the
/// worker is busy is kept for its next wait (one permit, not a count).
#[derive(Debug, Clone, Default)]
pub struct JobWakeup {
    signal: std::sync::Arc<tokio::sync::Notify>,
}

impl JobWakeup {
    /// Wakes the worker (or makes its next wait return at once).
    pub fn wake(&self) {
        self.signal.notify_one();
    }

    /// Waits for a wake.
    pub async fn woken(&self) {
        self.signal.notified().await;
    }

    /// On PostgreSQL, listens on [`JOB_QUEUED_CHANNEL`] on a dedicated connection and wakes for
    /// every notice, from any process sharing the database (this one included), until the
    /// returned task is aborted. Returns once listening. `None` on SQLite, where the outbox
    /// wakes the worker in-process.
    pub async fn listen(&self, db: &Database) -> Result<Option<tokio::task::JoinHandle<()>>, StorageError> {
        use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
        let conn = db.connection();
        if conn.get_database_backend() != DbBackend::Postgres {
            return Ok(None);
        }
        let options =
            (*conn.get_postgres_connection_pool().connect_options()).clone().application_name(WAKEUP_APPLICATION_NAME);
        // A pool of one connection, only so that the listener reconnects by itself.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options);
        let listen_err = |err: sea_orm::sqlx::Error| StorageError::new(format!("job wake-ups: {err}"));
        let mut listener = PgListener::connect_with(&pool).await.map_err(listen_err)?;
        listener.ignore_pool_close_event(true);
        listener.listen(JOB_QUEUED_CHANNEL).await.map_err(listen_err)?;
        let wakeup = self.clone();
        Ok(Some(tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(_)) => wakeup.wake(),
                    // Reconnected (listening again): notices sent meanwhile are lost; look now.
                    Ok(None) => wakeup.wake(),
                    Err(err) => {
                        tracing::warn!(error = %err, "job wake-ups: the listening connection failed; polling meanwhile");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        wakeup.wake();
                    }
                }
            }
        })))
    }
}

/// Kept as the error of a job given up because its lease ended during its last attempt.
const LEASE_LOST: &str = "the lease ended during the last attempt (the worker stopped or took too long)";

/// Jobs on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct JobStore {
    conn: DatabaseConnection,
    gate: WriteGate,
}

impl JobStore {
    /// A store on `db`'s pool.
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone(), gate: db.write_gate() }
    }

    /// Gives up running jobs whose lease ended during their last attempt; how many.
    ///
    /// Runs before every claim, so it looks first: a read finds the usual nothing without
    /// taking SQLite's one write lock (an `UPDATE` takes it even when it matches no row).
    async fn give_up_lost_last_attempts(&self, now: DateTime<Utc>) -> Result<u64, StorageError> {
        let lost = Condition::all()
            .add(job::Column::State.eq(JobState::Running.as_str()))
            .add(job::Column::LockedUntil.lt(stored(now)))
            .add(Expr::col(job::Column::Attempts).gte(Expr::col(job::Column::MaxAttempts)));
        let any = job::Entity::find()
            .filter(lost.clone())
            .select_only()
            .column(job::Column::Id)
            .limit(1)
            .into_tuple::<uuid::Uuid>()
            .one(&self.conn)
            .await
            .map_err(db_err)?;
        if any.is_none() {
            return Ok(0);
        }
        let _turn = self.gate.turn().await;
        let given_up = job::Entity::update_many()
            .col_expr(job::Column::State, Expr::value(JobState::Failed.as_str()))
            .col_expr(job::Column::LastError, Expr::value(LEASE_LOST))
            .col_expr(job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(job::Column::UpdatedAt, Expr::value(stored(now)))
            .filter(lost)
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(given_up.rows_affected)
    }
}

/// The claim: the `limit` oldest due jobs of kinds this build knows, in one statement. A lost
/// lease is taken again only while attempts remain ([`JobStore::give_up_lost_last_attempts`]
/// ends the others).
///
/// On PostgreSQL the rows are picked in a CTE, evaluated once: an `IN (SELECT ... FOR UPDATE
/// SKIP LOCKED)` subquery may be run again by the plan and pick other rows than it locked.
fn claim_statement(
    backend: DbBackend,
    worker: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u32,
) -> Statement {
    let placeholder = |n: usize| match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    };
    let (worker_p, until_p, now_p, limit_p) = (placeholder(1), placeholder(2), placeholder(3), placeholder(4));
    let kinds = (5..5 + JobKind::ALL.len()).map(placeholder).collect::<Vec<_>>().join(", ");
    let due = format!(
        "SELECT id FROM jobs \
           WHERE ((state = 'queued' AND run_at <= {now_p}) \
             OR (state = 'running' AND locked_until < {now_p} AND attempts < max_attempts)) \
             AND kind IN ({kinds}) \
           ORDER BY run_at, id LIMIT {limit_p}"
    );
    let set = format!(
        "SET state = 'running', attempts = attempts + 1, locked_by = {worker_p}, \
         locked_until = {until_p}, updated_at = {now_p}"
    );
    let columns = "id, kind, payload, state, attempts, max_attempts, run_at, locked_by, locked_until, last_error, \
                   dedupe_key, created_at, updated_at";
    let sql = match backend {
        DbBackend::Postgres => {
            let returning = columns.split(", ").map(|c| format!("jobs.{}", c.trim())).collect::<Vec<_>>().join(", ");
            format!(
                "WITH picked AS ({due} FOR UPDATE SKIP LOCKED) \
                 UPDATE jobs {set} FROM picked WHERE jobs.id = picked.id RETURNING {returning}"
            )
        }
        _ => format!("UPDATE jobs {set} WHERE id IN ({due}) RETURNING {columns}"),
    };
    let mut values: Vec<Value> =
        vec![worker.into(), stored(until).into(), stored(now).into(), i64::from(Ord::max(limit, 1)).into()];
    values.extend(JobKind::ALL.map(|kind| Value::from(kind.as_str())));
    Statement::from_sql_and_values(backend, sql, values)
}

/// The row of a newly queued job; also used by stores that queue jobs inside their own
/// transaction (webhook deliveries).
pub(crate) fn queued_row(new: &NewJob, now: DateTime<Utc>) -> job::ActiveModel {
    let now = stored(now);
    job::ActiveModel {
        id: Set(new.id.0),
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
    }
}

/// Narrows an update to the row still held by `claimed`'s claim: running, by the same worker,
/// on the same attempt. A worker whose lease ended and whose job was claimed again (by another
/// worker, or by itself on a later attempt) changes nothing.
fn held_by(update: sea_orm::UpdateMany<job::Entity>, claimed: &Job) -> sea_orm::UpdateMany<job::Entity> {
    let attempt = i32::try_from(claimed.attempts).unwrap_or(i32::MAX);
    update
        .filter(job::Column::Id.eq(claimed.id.0))
        .filter(job::Column::State.eq(JobState::Running.as_str()))
        .filter(job::Column::LockedBy.eq(claimed.locked_by.clone()))
        .filter(job::Column::Attempts.eq(attempt))
}

#[async_trait]
impl JobQueue for JobStore {
    async fn enqueue(&self, new: &NewJob, now: DateTime<Utc>) -> Result<Option<JobId>, StorageError> {
        let _turn = self.gate.turn().await;
        let inserted = job::Entity::insert(queued_row(new, now))
            .on_conflict(OnConflict::column(job::Column::DedupeKey).do_nothing().to_owned())
            .exec_without_returning(&self.conn)
            .await
            .map_err(db_err)?;
        Ok((inserted > 0).then_some(new.id))
    }

    async fn claim_up_to(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Job>, StorageError> {
        let given_up = self.give_up_lost_last_attempts(now).await?;
        if given_up > 0 {
            tracing::warn!(jobs = given_up, "jobs given up: their lease ended during their last attempt");
        }
        // No read first: on SQLite the outbox wakes the worker before its transaction commits,
        // and only a write (which waits for that transaction's lock) is sure to see the job.
        let _turn = self.gate.turn().await;
        let statement = claim_statement(self.conn.get_database_backend(), worker, now, now + lease, limit);
        let rows = job::Entity::find().from_raw_sql(statement).all(&self.conn).await.map_err(db_err)?;
        let mut jobs = rows.into_iter().map(to_domain).collect::<Result<Vec<_>, _>>()?;
        // RETURNING keeps no order.
        jobs.sort_by_key(|job| (job.run_at, job.id.0));
        Ok(jobs)
    }

    async fn extend(&self, claimed: &Job, until: DateTime<Utc>) -> Result<bool, StorageError> {
        let _turn = self.gate.turn().await;
        let extended = held_by(
            job::Entity::update_many().col_expr(job::Column::LockedUntil, Expr::value(Some(stored(until)))),
            claimed,
        )
        .exec(&self.conn)
        .await
        .map_err(db_err)?;
        Ok(extended.rows_affected == 1)
    }

    async fn succeed(&self, claimed: &Job, now: DateTime<Utc>) -> Result<(), StorageError> {
        let _turn = self.gate.turn().await;
        held_by(
            job::Entity::update_many()
                .col_expr(job::Column::State, Expr::value(JobState::Succeeded.as_str()))
                .col_expr(job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
                .col_expr(job::Column::UpdatedAt, Expr::value(stored(now))),
            claimed,
        )
        .exec(&self.conn)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn fail(
        &self,
        claimed: &Job,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let update = job::Entity::update_many()
            .col_expr(job::Column::LastError, Expr::value(kept_error(error)))
            .col_expr(job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(job::Column::UpdatedAt, Expr::value(stored(now)));
        let update = match retry_at {
            // Decided against the row itself, so that a caller that lost count (or a lease lost
            // on an earlier attempt that counted one more) cannot retry past `max_attempts`.
            Some(retry_at) => {
                let again = || Expr::col(job::Column::Attempts).lt(Expr::col(job::Column::MaxAttempts));
                update
                    .col_expr(
                        job::Column::State,
                        Expr::case(again(), JobState::Queued.as_str()).finally(JobState::Failed.as_str()).into(),
                    )
                    .col_expr(
                        job::Column::RunAt,
                        Expr::case(again(), stored(retry_at)).finally(Expr::col(job::Column::RunAt)).into(),
                    )
            }
            None => update.col_expr(job::Column::State, Expr::value(JobState::Failed.as_str())),
        };
        let _turn = self.gate.turn().await;
        held_by(update, claimed).exec(&self.conn).await.map_err(db_err)?;
        Ok(())
    }

    async fn list(&self, filter: &JobFilter, page: &PageRequest<JobId>) -> Result<Page<Job, JobId>, StorageError> {
        let mut query = job::Entity::find();
        if let Some(state) = filter.state {
            query = query.filter(job::Column::State.eq(state.as_str()));
        }
        if let Some(kind) = filter.kind {
            query = query.filter(job::Column::Kind.eq(kind.as_str()));
        }
        if let Some(after) = page.after() {
            query = query.filter(job::Column::Id.lt(after.0));
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
        let finished = JobState::ALL.into_iter().filter(|s| s.is_finished()).map(JobState::as_str);
        let deleted = job::Entity::delete_many()
            .filter(job::Column::State.is_in(finished))
            .filter(job::Column::UpdatedAt.lt(stored(before)))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(deleted.rows_affected)
    }

    async fn backlog(&self, now: DateTime<Utc>) -> Result<Vec<JobBacklog>, StorageError> {
        #[derive(FromQueryResult)]
        struct Row {
            kind: String,
            queued: i64,
            oldest_due: Option<DateTime<Utc>>,
        }
        // Reads the queued rows only (the `state, run_at` index); a CASE without ELSE is NULL
        // for jobs not yet due, which MIN skips.
        let due = Expr::case(job::Column::RunAt.lte(stored(now)), Expr::col(job::Column::RunAt));
        let rows = job::Entity::find()
            .select_only()
            .column(job::Column::Kind)
            .column_as(Expr::col(job::Column::Id).count(), "queued")
            .column_as(Expr::from(Func::min(due)), "oldest_due")
            .filter(job::Column::State.eq(JobState::Queued.as_str()))
            .group_by(job::Column::Kind)
            .into_model::<Row>()
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(JobBacklog {
                    kind: JobKind::parse(&row.kind)?,
                    queued: u64::try_from(row.queued).unwrap_or(0),
                    oldest_due: row.oldest_due,
                })
            })
            .collect())
    }
}

fn to_domain(row: job::Model) -> Result<Job, StorageError> {
    let count = |column: &str, value: i32| u32::try_from(value).map_err(|_| corrupt(TABLE, column, value));
    Ok(Job {
        id: JobId(row.id),
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
