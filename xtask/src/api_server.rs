//! The server the API checks (`openapi`, `schemathesis`) talk to: a fresh data dir (or a fresh
//! PostgreSQL schema), a known setup token, and nothing that could reach outside this machine:
//! every provider's base URL is a dead local port (connecting fails at once, as "unreachable"),
//! and the background worker, which would deliver webhooks, is off.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use crate::http::Client;
use crate::server::{Launch, ServerProcess, TempDir, free_port, random_hex};
use crate::workspace::{Backend, PostgresSchema, step};

/// The provider slugs of the shipped catalog (I1).
pub const PROVIDERS: [&str; 7] = ["postmark", "stripe", "mapbox", "google_maps", "geoapify", "anthropic", "quo"];
/// Nothing listens there: the discard port on loopback.
pub const DEAD_URL: &str = "http://127.0.0.1:9";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A started server. Dropping it stops the server, then removes its data (schema or dir).
pub struct ApiServer {
    // Dropped in this order: the process, then its schema, then its directory.
    process: ServerProcess,
    _schema: Option<PostgresSchema>,
    pub dir: TempDir,
    pub client: Client,
    pub setup_token: String,
}

impl ApiServer {
    pub fn start(binary: PathBuf, backend: Backend, prefix: &str) -> Result<Self, Error> {
        let dir = TempDir::new(prefix)?;
        let schema = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PostgresSchema::new(&prefix.replace('-', "_"))?),
        };
        let port = free_port()?;
        let setup_token = random_hex(24)?;
        let mut env: Vec<(String, String)> = vec![
            ("OTESSE_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("OTESSE_DATA_DIR".into(), dir.path().display().to_string()),
            ("OTESSE_SETUP_TOKEN".into(), setup_token.clone()),
            ("OTESSE_LOG_FILTER".into(), "warn".into()),
            ("OTESSE_ALLOW_LOOPBACK_URLS".into(), "true".into()),
            ("OTESSE_JOBS__ENABLED".into(), "false".into()),
            // A fuzzer is one fast client: let every request through the per-key limit so the
            // run tests the routes, not the limiter (429 stays documented and possible).
            ("OTESSE_RATE_LIMIT__KEY_REQUESTS".into(), "100000000".into()),
            ("OTESSE_RATE_LIMIT__KEY_PERIOD_SECS".into(), "1000".into()),
        ];
        for slug in PROVIDERS {
            env.push((format!("OTESSE_PROVIDERS__{}__BASE_URL", slug.to_uppercase()), DEAD_URL.into()));
        }
        env.extend(schema.as_ref().map(PostgresSchema::server_env).unwrap_or_default());
        let launch = Launch { binary, env, cwd: dir.path().to_owned(), log: dir.path().join("server.log") };
        let client = Client::new(format!("http://127.0.0.1:{port}"));
        step(format!("starting the server on port {port} ({}, data in {})", backend.name(), dir.path().display()));
        let mut process = ServerProcess::start(&launch)?;
        process.wait_ready(&client, READY_TIMEOUT)?;
        Ok(Self { process, _schema: schema, dir, client, setup_token })
    }

    /// The server's log so far, to print after a failure.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// Stops the server (SIGTERM) and fails if it did not exit cleanly.
    pub fn stop(self) -> Result<(), Error> {
        let Self { process, dir, _schema, .. } = self;
        let status = process.stop(Duration::from_secs(60))?;
        drop(_schema);
        drop(dir);
        if status.success() {
            Ok(())
        } else {
            Err(Error::new(format!("the server exited with {status} after SIGTERM")))
        }
    }
}
