//! Connecting to SQLite or PostgreSQL, running the migrations, and handing out the stores.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use otesse_domain::StorageError;
use otesse_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend};

use crate::outbox::Outbox;
use crate::support::{WriteGate, db_err, is_unique_violation};
use crate::{
    ApiKeyStore, AuditStore, ContactStore, CustomerStore, IntegrationStore, SessionStore, UsageStore, UserStore,
};

/// How long a SQLite connection waits for another connection's write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite allows one writer at a time; several connections still let reads run beside it (WAL).
const SQLITE_MAX_CONNECTIONS: u32 = 8;
const POSTGRES_MAX_CONNECTIONS: u32 = 10;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// One migration and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub name: String,
    pub applied: bool,
}

/// The connection pool at one instant, for the operator's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open, idle or in use.
    pub open: u32,
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

impl PoolStatus {
    /// Connections lent out to a query or transaction now.
    pub fn in_use(&self) -> u32 {
        self.open.saturating_sub(self.idle)
    }
}

/// A pool of connections to the Otesse database, migrated to the current schema.
/// Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct Database {
    conn: DatabaseConnection,
    backend: &'static str,
    /// How it was opened, so that [`Database::own_pool`] can open another pool.
    url: Arc<str>,
    schema: Option<Arc<str>>,
    /// How the stores queue the webhook deliveries of the events they record.
    outbox: Outbox,
    /// On SQLite, the job worker's and the webhook deliveries' turn at the one writer.
    write_gate: WriteGate,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("Database").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Database {
    /// Opens the database at `url` and brings its schema up to date.
    ///
    /// - `sqlite:` URLs: the file and its parent directory are created if missing; the database
    ///   runs in WAL mode with foreign keys on and a busy timeout of 5 s.
    /// - `postgres:` URLs: with `schema`, that schema is created if missing and every pooled
    ///   connection uses it as its `search_path` (one database can then host several
    ///   installations, or tests, side by side). `schema` must be a plain identifier
    ///   (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes). SQLite ignores it.
    ///
    /// Errors never include the URL, which may hold a password.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<Database, StorageError> {
        let database = Self::open(url, schema).await?;
        database.migrate_up().await?;
        Ok(database)
    }

    /// Opens the database like [`Database::connect`] but leaves its schema as it is: for the
    /// operator commands that inspect it (`migrate status`, `check-config`).
    pub async fn open(url: &str, schema: Option<&str>) -> Result<Database, StorageError> {
        let (conn, backend) = if url.starts_with("sqlite:") {
            (connect_sqlite(url).await?, "sqlite")
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            (connect_postgres(url, schema, POSTGRES_MAX_CONNECTIONS).await?, "postgres")
        } else {
            return Err(StorageError::new("unsupported database URL: expected sqlite: or postgres:"));
        };
        let write_gate = WriteGate::for_backend(conn.get_database_backend());
        Ok(Database {
            conn,
            backend,
            url: url.into(),
            schema: schema.map(Into::into),
            outbox: Outbox::default(),
            write_gate,
        })
    }

    /// Applies every pending migration; returns how many there were.
    pub async fn migrate_up(&self) -> Result<usize, StorageError> {
        let pending = self.migrations().await?.iter().filter(|m| !m.applied).count();
        Migrator::up(&self.conn, None).await.map_err(|err| StorageError::new(format!("migrations failed: {err}")))?;
        Ok(pending)
    }

    /// Every migration the code knows, oldest first, and whether this database has it. Reads
    /// only: a database never migrated shows every migration pending.
    pub async fn migrations(&self) -> Result<Vec<MigrationState>, StorageError> {
        let all = Migrator::get_migration_with_status_read_only(&self.conn)
            .await
            .map_err(|err| StorageError::new(format!("cannot read the migrations table: {err}")))?;
        Ok(all
            .iter()
            .map(|m| MigrationState {
                name: m.name().to_owned(),
                applied: m.status() == otesse_migration::MigrationStatus::Applied,
            })
            .collect())
    }

    /// The same database through a pool of its own, of at most `connections`, for one task
    /// that must keep working after the HTTP workers are gone: the usage writer, which writes
    /// the last rows once they have stopped.
    ///
    /// A PostgreSQL connection is driven by the runtime of the task that opened it, and each
    /// HTTP worker runs its own runtime, which ends with the worker: a shared pool's
    /// connections opened by workers fail afterwards ("a Tokio context ... is being
    /// shutdown"). A pool that only this task uses only holds connections it opened. SQLite
    /// connections run on threads of their own and can be shared: on SQLite this is a clone.
    pub async fn own_pool(&self, connections: u32) -> Result<Database, StorageError> {
        if self.backend != "postgres" {
            return Ok(self.clone());
        }
        let conn = connect_postgres(&self.url, self.schema.as_deref(), connections.max(1)).await?;
        Ok(Database { conn, ..self.clone() })
    }

    /// The same database, with webhook deliveries queued for `attempts` attempts each.
    pub fn with_delivery_attempts(mut self, attempts: u32) -> Self {
        self.outbox.delivery_attempts = attempts.max(1);
        self
    }

    pub(crate) fn write_gate(&self) -> WriteGate {
        self.write_gate.clone()
    }

    pub(crate) fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// What wakes this process's job worker when a job is queued (see [`JobWakeup`]); shared
    /// by every clone of this database and by [`Database::own_pool`]'s.
    pub fn job_wakeup(&self) -> crate::JobWakeup {
        self.outbox.wakeup.clone()
    }

    /// Whether the database answers (the readiness probe).
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.conn.ping().await.map_err(db_err)
    }

    /// This pool's connections now (a few atomic reads, no query).
    pub fn pool_status(&self) -> PoolStatus {
        use sea_orm::DatabaseConnectionType;
        fn status<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> PoolStatus {
            PoolStatus {
                open: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            }
        }
        match &self.conn.inner {
            DatabaseConnectionType::SqlxSqlitePoolConnection(_) => status(self.conn.get_sqlite_connection_pool()),
            DatabaseConnectionType::SqlxPostgresPoolConnection(_) => status(self.conn.get_postgres_connection_pool()),
            // Matched first, so that the accessors above never panic; a `Database` is only
            // ever opened on one of those two pools.
            _ => PoolStatus { open: 0, idle: 0, max: 0 },
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        self.backend
    }

    /// Closes every pooled connection; clones of this `Database` stop working.
    pub async fn close(self) -> Result<(), StorageError> {
        self.conn.close().await.map_err(db_err)
    }

    pub fn api_keys(&self) -> ApiKeyStore {
        ApiKeyStore::new(self)
    }

    pub fn usage(&self) -> UsageStore {
        UsageStore::new(self)
    }

    pub fn audit(&self) -> AuditStore {
        AuditStore::new(self)
    }

    pub fn accounts(&self) -> crate::AccountStore {
        crate::AccountStore::new(self)
    }

    pub fn users(&self) -> UserStore {
        UserStore::new(self)
    }

    pub fn sessions(&self) -> SessionStore {
        SessionStore::new(self)
    }

    pub fn service_tokens(&self) -> crate::ServiceTokenStore {
        crate::ServiceTokenStore::new(self)
    }

    pub fn customers(&self) -> CustomerStore {
        CustomerStore::new(self)
    }

    pub fn sealed_secrets(&self) -> crate::SealedSecretsStore {
        crate::SealedSecretsStore::new(self)
    }

    pub fn integrations(&self) -> IntegrationStore {
        IntegrationStore::new(self)
    }

    pub fn oauth(&self) -> crate::OAuthStore {
        crate::OAuthStore::new(self)
    }

    pub fn contacts(&self) -> ContactStore {
        ContactStore::new(self)
    }

    pub fn idempotency(&self) -> crate::IdempotencyRecordStore {
        crate::IdempotencyRecordStore::new(self)
    }

    pub fn jobs(&self) -> crate::JobStore {
        crate::JobStore::new(self)
    }

    pub fn notifications(&self) -> crate::NotificationStore {
        crate::NotificationStore::new(self)
    }

    pub fn stripe_webhooks(&self) -> crate::StripeWebhookStore {
        crate::StripeWebhookStore::new(self)
    }

    pub fn webhooks(&self) -> crate::WebhookStore {
        crate::WebhookStore::new(self)
    }

    /// Announces key invalidations to every process sharing the database (a no-op on SQLite).
    pub fn key_invalidations(&self) -> crate::KeyInvalidationPublisher {
        crate::KeyInvalidationPublisher::new(self)
    }

    pub(crate) fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }
}

async fn connect_sqlite(url: &str) -> Result<DatabaseConnection, StorageError> {
    let parsed = SqliteConnectOptions::from_str(url)
        .map_err(|err| StorageError::new(format!("invalid SQLite URL: {}", redact(&err.to_string(), url))))?;
    let in_memory = is_in_memory(url, parsed.get_filename());
    if !in_memory {
        create_parent_dir(parsed.get_filename())?;
    }

    let mut options = ConnectOptions::new(url);
    options.acquire_timeout(ACQUIRE_TIMEOUT).sqlx_logging(false).map_sqlx_sqlite_opts(|opts| {
        opts.create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL is safe against corruption and application crashes; a power
            // loss may drop the last commits. FULL would fsync every commit.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
    });
    if in_memory {
        // An in-memory database lives as long as one connection to it: keep exactly one, for
        // good. (Several would also meet shared-cache table locks, which do not wait.)
        options.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None);
    } else {
        options.max_connections(SQLITE_MAX_CONNECTIONS);
    }
    sea_orm::Database::connect(options).await.map_err(|err| connect_err(err, url))
}

/// sqlx names `sqlite::memory:` databases `file:sqlx-in-memory-<n>`; `mode=memory` asks for one.
fn is_in_memory(url: &str, file: &Path) -> bool {
    file.to_string_lossy().starts_with("file:sqlx-in-memory-") || url.contains("mode=memory")
}

fn create_parent_dir(file: &Path) -> Result<(), StorageError> {
    // SQLite URI filenames (`file:...`) are left to SQLite.
    if file.to_string_lossy().starts_with("file:") {
        return Ok(());
    }
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|err| StorageError::new(format!("cannot create the database directory {}: {err}", dir.display()))),
        _ => Ok(()),
    }
}

/// sea-orm quotes the whole URL in some connection errors, and the URL may hold a password.
fn connect_err(err: sea_orm::DbErr, url: &str) -> StorageError {
    StorageError::new(format!("cannot connect to the database: {}", redact(&err.to_string(), url)))
}

fn redact(message: &str, url: &str) -> String {
    message.replace(url, "<database URL>")
}

async fn connect_postgres(
    url: &str,
    schema: Option<&str>,
    max_connections: u32,
) -> Result<DatabaseConnection, StorageError> {
    let mut options = ConnectOptions::new(url);
    options.max_connections(max_connections).acquire_timeout(ACQUIRE_TIMEOUT).sqlx_logging(false);
    if let Some(schema) = schema {
        check_schema_name(schema)?;
        create_schema(url, schema).await?;
        // sea-orm quotes the name and sets it on every connection the pool opens.
        options.set_schema_search_path(schema);
    }
    let conn = sea_orm::Database::connect(options).await.map_err(|err| connect_err(err, url))?;
    if conn.get_database_backend() != DbBackend::Postgres {
        return Err(StorageError::new("expected a PostgreSQL database"));
    }
    Ok(conn)
}

/// Creates `schema` over a short-lived connection, before the pool that uses it exists.
async fn create_schema(url: &str, schema: &str) -> Result<(), StorageError> {
    let mut options = ConnectOptions::new(url);
    options.max_connections(1).acquire_timeout(ACQUIRE_TIMEOUT).sqlx_logging(false);
    let conn = sea_orm::Database::connect(options).await.map_err(|err| connect_err(err, url))?;
    let created = conn.execute_unprepared(&format!(r#"CREATE SCHEMA IF NOT EXISTS "{schema}""#)).await;
    // Two processes creating the same schema at once: the loser sees a unique violation on the
    // catalog, and the schema exists, which is all that was asked.
    let outcome = match created {
        Ok(_) => Ok(()),
        Err(err) if is_unique_violation(&err) => Ok(()),
        Err(err) => Err(db_err(err)),
    };
    conn.close().await.map_err(db_err)?;
    outcome
}

/// Schema names are spliced into SQL, so only plain identifiers are accepted.
fn check_schema_name(schema: &str) -> Result<(), StorageError> {
    let mut chars = schema.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && schema.len() <= 63;
    if plain {
        Ok(())
    } else {
        Err(StorageError::new(format!(
            "invalid PostgreSQL schema name {schema:?}: expected [A-Za-z_][A-Za-z0-9_]*, at most 63 bytes"
        )))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use otesse_domain::audit::AuditFilter;
    use otesse_domain::event::{AuditActor, DomainEvent, Event};
    use otesse_domain::integration::ProviderSlug;
    use otesse_domain::organization::OrganizationId;
    use otesse_domain::page::PageRequest;
    use otesse_domain::ports::AuditLog;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["otesse", "t_0190abcdef", "_x", "A1"] {
            assert!(check_schema_name(good).is_ok(), "{good} refused");
        }
        let too_long = "s".repeat(64);
        for bad in ["", "1abc", "a-b", "a\"b", "a,b", "a b", too_long.as_str()] {
            assert!(check_schema_name(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn parent_directories_are_created_for_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested/deeper/otesse.db");
        create_parent_dir(&file).unwrap();
        assert!(dir.path().join("nested/deeper").is_dir());
        create_parent_dir(Path::new("file:shared.db")).unwrap();
        assert!(!Path::new("file:shared.db").exists());
        create_parent_dir(Path::new("otesse.db")).unwrap();
    }

    #[tokio::test]
    async fn in_memory_databases_keep_their_data() {
        let db = Database::connect("sqlite::memory:", None).await.unwrap();
        let organization = OrganizationId(Uuid::now_v7());
        let event = Event::IntegrationUpdated {
            connection_id: Uuid::now_v7(),
            provider: ProviderSlug::parse("postmark").unwrap(),
            change: "enabled".into(),
            value: "true".into(),
        };
        let event = DomainEvent::new(organization, AuditActor::System, Utc::now(), event);
        db.outbox().record(db.connection(), &event).await.unwrap();
        let page = PageRequest::new(None, None).unwrap();
        let listed = db.audit().list(organization, &AuditFilter::default(), &page).await.unwrap();
        assert_eq!(listed.items.len(), 1);
    }

    /// Connections go back to the pool on a task of their own: waits until none is in use.
    async fn all_returned(db: &Database) -> PoolStatus {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let status = db.pool_status();
            if status.in_use() == 0 {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "still in use: {status:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn the_pool_status_counts_the_connections_in_use() {
        use sea_orm::TransactionTrait;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("otesse.db").display());
        let db = Database::connect(&url, None).await.unwrap();
        let before = all_returned(&db).await;
        assert_eq!(before.max, SQLITE_MAX_CONNECTIONS);
        assert!(before.open >= 1 && before.idle == before.open, "migrating opened connections: {before:?}");

        let txn = db.connection().begin().await.unwrap();
        let held = db.pool_status();
        assert_eq!(held.in_use(), 1, "{held:?}");
        assert!(held.open <= held.max);
        txn.rollback().await.unwrap();
        all_returned(&db).await;
    }

    #[tokio::test]
    async fn connection_errors_do_not_repeat_the_url() {
        // An invalid port: refused while parsing, before any network access.
        let url = "postgres://otesse:hunter2-secret@localhost:notaport/otesse";
        let err = Database::connect(url, None).await.unwrap_err();
        assert!(err.0.contains("<database URL>"), "{err}");
        assert!(!err.0.contains("hunter2-secret"), "{err}");
        let err = Database::connect("mysql://root:hunter2-secret@localhost/otesse", None).await.unwrap_err();
        assert!(!err.0.contains("hunter2-secret"), "{err}");
    }
}
