//! What several tasks share: building the server, the workspace's directories, and the
//! database a started server runs on.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Error};
use crate::server::random_hex;

/// Where `--database postgres` runs, unless `OTESSE_BENCH_POSTGRES_URL` says otherwise. A task
/// works in a fresh schema of that database and drops it afterwards (with `psql`).
pub const POSTGRES_URL_VAR: &str = "OTESSE_BENCH_POSTGRES_URL";
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Progress, on stderr.
pub fn step(message: impl fmt::Display) {
    eprintln!("==> {message}");
}

/// Runs a tool to completion (no stdin), failing with `what` unless it succeeds.
pub fn run_tool(command: &mut Command, what: &str) -> Result<(), Error> {
    let status = command.stdin(std::process::Stdio::null()).status().context(what)?;
    if status.success() { Ok(()) } else { Err(Error::new(format!("{what} failed ({status})"))) }
}

/// Which database the server runs on during the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file in the bench's data dir (the default).
    Sqlite,
    /// A fresh schema in the PostgreSQL database at `OTESSE_BENCH_POSTGRES_URL`.
    Postgres,
}

impl Backend {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        match raw {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(Error::new(format!("--database `{raw}`: expected sqlite or postgres"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// How the server is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The debug binary `cargo test` builds for the server's integration tests
    /// (`CARGO_BIN_EXE_otesse-server`). A plain `cargo build` would compile every dependency a
    /// second time with a non-test build's features, and the next `cargo test` a third.
    Debug,
    Release,
}

/// Builds the server (see [`Profile`]); returns the binary's path.
pub fn build_server(profile: Profile) -> Result<PathBuf, Error> {
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let (args, dir): (&[&str], &str) = match profile {
        Profile::Debug => (&["test", "-p", "otesse-server", "--no-run"], "debug"),
        Profile::Release => (&["build", "--release", "-p", "otesse-server"], "release"),
    };
    let command = format!("cargo {}", args.join(" "));
    step(&command);
    let status = Command::new(&cargo).args(args).current_dir(&root).status().context("running cargo build")?;
    if !status.success() {
        return Err(Error::new(format!("{command} failed ({status})")));
    }
    let binary = target_dir()?.join(dir).join("otesse-server");
    if !binary.is_file() {
        return Err(Error::new(format!("the build succeeded but {} does not exist", binary.display())));
    }
    Ok(binary)
}

pub fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_owned()
}

/// Where cargo puts its output, honouring `CARGO_TARGET_DIR` and `build.target-dir`.
pub fn target_dir() -> Result<PathBuf, Error> {
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(&root)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        return Err(Error::new(format!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr))));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| Error::new(format!("cargo metadata: {e}")))?;
    metadata
        .get("target_directory")
        .and_then(serde_json::Value::as_str)
        .map(PathBuf::from)
        .ok_or_else(|| Error::new("cargo metadata has no target_directory"))
}

/// A fresh schema for the server in the PostgreSQL database named by `OTESSE_BENCH_POSTGRES_URL`
/// (the server creates it); dropped with `psql` when this goes out of scope.
pub struct PostgresSchema {
    url: String,
    name: String,
}

impl PostgresSchema {
    /// `prefix` starts the schema's name (`otesse_bench`), a random suffix ends it.
    pub fn new(prefix: &str) -> Result<Self, Error> {
        let url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::new(format!("{POSTGRES_URL_VAR} must be a postgres:// URL")));
        }
        let name = format!("{prefix}_{}", random_hex(6)?);
        step(format!("PostgreSQL: schema {name} ({POSTGRES_URL_VAR} or {DEFAULT_POSTGRES_URL})"));
        Ok(Self { url, name })
    }

    /// A fresh schema in the database at `url` (a `postgres://` URL).
    pub fn in_database(url: String, prefix: &str) -> Result<Self, Error> {
        let name = format!("{prefix}_{}", random_hex(6)?);
        step(format!("PostgreSQL: schema {name}"));
        Ok(Self { url, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database the schema is in.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn server_env(&self) -> Vec<(String, String)> {
        vec![("OTESSE_DATABASE_URL".into(), self.url.clone()), ("OTESSE_DATABASE_SCHEMA".into(), self.name.clone())]
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        let dropped = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &self.url, "-c"])
            .env("PGOPTIONS", "--client-min-messages=warning")
            .arg(format!(r#"DROP SCHEMA IF EXISTS "{}" CASCADE"#, self.name))
            .stdin(std::process::Stdio::null())
            .status();
        if !dropped.is_ok_and(|status| status.success()) {
            eprintln!("==> could not drop schema {} (is psql installed?); drop it by hand", self.name);
        }
    }
}
