//! The real server binary in a process of its own, for what `spawn_app()` cannot show: several
//! processes on one database, or a process killed with SIGKILL and started again.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use super::{ADMIN_EMAIL, PASSWORD, SETUP_TOKEN};

/// How a test starts the binary: a clean environment (nothing of the test run's), the data
/// dir as its working directory, the test setup token, JSON logs at `info` (the start-up lines
/// are read), any free port; [`Self::env`] adds the rest.
pub struct ServerCommand(Command);

impl ServerCommand {
    /// The binary with its data in `data_dir`, on the database at `url` (in `schema`, on
    /// PostgreSQL).
    pub fn new(data_dir: &Path, url: &str, schema: Option<&str>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_otesse-server"));
        command
            .current_dir(data_dir)
            .env_clear()
            .env("OTESSE_LISTEN", "127.0.0.1:0")
            .env("OTESSE_DATA_DIR", data_dir)
            .env("OTESSE_DATABASE_URL", url)
            .env("OTESSE_SETUP_TOKEN", SETUP_TOKEN)
            .env("OTESSE_LOG_FILTER", "info")
            .env("OTESSE_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(schema) = schema {
            command.env("OTESSE_DATABASE_SCHEMA", schema);
        }
        Self(command)
    }

    /// One of several processes on one PostgreSQL schema at once: the same master key for all
    /// (none makes its own), known keys cached far longer than a test (only a notice can evict
    /// them), one worker each.
    pub fn beside_others(self) -> Self {
        self.env("OTESSE_MASTER_KEYS", format!("v1:{}", "A".repeat(43) + "="))
            .env("OTESSE_KEY_CACHE__TTL_SECS", "300")
            .env("OTESSE_WORKERS", "1")
    }

    /// Listens on `port` rather than any free one: a restarted server keeps its address.
    pub fn port(self, port: u16) -> Self {
        self.env("OTESSE_LISTEN", format!("127.0.0.1:{port}"))
    }

    /// Sets (or replaces) one variable.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.0.env(key, value);
        self
    }

    /// Sets (or replaces) each variable of `env`, in order.
    pub fn envs(mut self, env: &[(&str, &str)]) -> Self {
        self.0.envs(env.iter().copied());
        self
    }

    /// Starts the process and returns once it logged that it listens (no polling).
    pub fn start(mut self) -> ServerProcess {
        let mut child = self.0.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut listener_pid = None;
        let port = loop {
            let line = lines.next().expect("the server exited before listening").unwrap();
            let Ok(event) = serde_json::from_str::<Value>(&line) else { continue };
            match event["message"].as_str() {
                Some("listening for key invalidations") => listener_pid = event["backend_pid"].as_i64(),
                Some("listening") => break event["port"].as_u64().expect("the port is logged"),
                _ => {}
            }
        };
        // Keep draining so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        ServerProcess { child, base: format!("http://127.0.0.1:{port}"), listener_pid }
    }
}

/// A started server, killed (SIGKILL) when dropped.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The PostgreSQL backend that listens for key invalidations, from the start-up log (none
    /// on SQLite).
    pub listener_pid: Option<i64>,
}

impl ServerProcess {
    /// Runs first-run setup (organization "Acme") and signs the admin in; returns the session
    /// token.
    pub async fn admin(&self, client: &reqwest::Client) -> String {
        let base = &self.base;
        let setup = json!({"setup_token": SETUP_TOKEN, "organization_name": "Acme", "email": ADMIN_EMAIL, "password": PASSWORD});
        assert_eq!(client.post(format!("{base}/v1/setup")).json(&setup).send().await.unwrap().status(), 201);
        let sign_in = json!({"email": ADMIN_EMAIL, "password": PASSWORD});
        let session: Value =
            client.post(format!("{base}/v1/sessions")).json(&sign_in).send().await.unwrap().json().await.unwrap();
        session["token"].as_str().expect("the admin signed in").to_owned()
    }

    /// Kills the process with SIGKILL, no shutdown of any kind, and waits until it is gone.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
