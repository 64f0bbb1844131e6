//! Fresh databases for each test: a SQLite file in a temporary directory, or a PostgreSQL
//! schema named `t_<uuid>` that is dropped when the test passes (a failing test leaves it for
//! inspection).

use otesse_storage::Database;
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection};
use tempfile::TempDir;
use uuid::Uuid;

pub const POSTGRES_URL_VAR: &str = "OTESSE_TEST_POSTGRES_URL";

pub struct TestDb {
    pub db: Database,
    target: Target,
}

enum Target {
    Sqlite { _dir: TempDir, url: String },
    Postgres { url: String, schema: String },
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        // A directory that does not exist yet: connecting must create it.
        let file = dir.path().join("data").join("otesse.db");
        let url = format!("sqlite://{}", file.display());
        let db = Database::connect(&url, None).await.expect("connect to SQLite");
        assert_eq!(db.backend_name(), "sqlite");
        Self { db, target: Target::Sqlite { _dir: dir, url } }
    }

    pub async fn postgres() -> Self {
        let url =
            std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| panic!("{POSTGRES_URL_VAR} is not set at run time"));
        let schema = format!("t_{}", Uuid::new_v4().simple());
        let db = Database::connect(&url, Some(&schema)).await.expect("connect to PostgreSQL");
        assert_eq!(db.backend_name(), "postgres");
        Self { db, target: Target::Postgres { url, schema } }
    }

    /// A plain sea-orm connection to the same database (and schema), for what the ports cannot
    /// do on purpose, such as writing a row the domain would never produce.
    pub async fn raw(&self) -> DatabaseConnection {
        let options = match &self.target {
            Target::Sqlite { url, .. } => ConnectOptions::new(url.clone()),
            Target::Postgres { url, schema } => {
                ConnectOptions::new(url.clone()).set_schema_search_path(schema.clone()).to_owned()
            }
        };
        sea_orm::Database::connect(options).await.expect("raw connection")
    }

    pub async fn finish(self) {
        self.db.ping().await.expect("database still answers");
        if let Target::Postgres { schema, .. } = &self.target {
            let raw = self.raw().await;
            raw.execute_unprepared(&format!(r#"DROP SCHEMA "{schema}" CASCADE"#)).await.expect("drop the test schema");
            raw.close().await.expect("close");
        }
        self.db.close().await.expect("close");
    }
}
