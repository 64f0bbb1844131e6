//! Several server processes on one PostgreSQL (O2): a key revoked through one process is refused
//! by another within a second, although that process caches keys for five minutes; and a
//! process whose listening connection was cut forgets its cache once it listens again.
//!
//! The real binary is started twice (as in `crash.rs`), against the same database and schema.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Client;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, PASSWORD, SETUP_TOKEN, key_body};

/// O2's bound for a revocation to reach every process.
const PROPAGATION: Duration = Duration::from_secs(1);
/// How often the tests look again while waiting for another process.
const POLL: Duration = Duration::from_millis(20);

struct Server {
    child: Child,
    base: String,
    /// The PostgreSQL backend that listens for key invalidations, from the start-up log.
    listener_pid: i64,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on a free port and returns once it logged that it listens (no polling).
fn start(data_dir: &Path, url: &str, schema: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_otesse-server"))
        .current_dir(data_dir)
        .env_clear()
        .env("OTESSE_LISTEN", "127.0.0.1:0")
        .env("OTESSE_DATA_DIR", data_dir)
        .env("OTESSE_DATABASE_URL", url)
        .env("OTESSE_DATABASE_SCHEMA", schema)
        .env("OTESSE_SETUP_TOKEN", SETUP_TOKEN)
        .env("OTESSE_MASTER_KEYS", format!("v1:{}", "A".repeat(43) + "="))
        // Known keys stay cached far longer than the test: only a notice can evict them.
        .env("OTESSE_KEY_CACHE__TTL_SECS", "300")
        .env("OTESSE_WORKERS", "1")
        .env("OTESSE_LOG_FILTER", "info")
        .env("OTESSE_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    let listener_pid = listener_pid.expect("PostgreSQL servers listen for key invalidations before serving");
    Server { child, base: format!("http://127.0.0.1:{port}"), listener_pid }
}

/// A keyed request to `server`: its status and error code (if any).
async fn use_key(client: &Client, server: &Server, key: &str) -> (u16, Option<String>) {
    let response = client.get(format!("{}/v1/customers", server.base)).bearer_auth(key).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error"]["code"].as_str().map(str::to_owned))
}

/// Polls `server` until it refuses `key` as revoked; returns how long that took from `since`,
/// or fails once `deadline` has passed since then.
async fn wait_until_refused(
    client: &Client,
    server: &Server,
    key: &str,
    since: Instant,
    deadline: Duration,
) -> Duration {
    loop {
        match use_key(client, server, key).await {
            (401, Some(code)) if code == "api_key_revoked" => return since.elapsed(),
            (200, None) => {}
            other => panic!("unexpected answer {other:?}"),
        }
        assert!(since.elapsed() < deadline, "still accepted after {:?}", since.elapsed());
        tokio::time::sleep(POLL).await;
    }
}

async fn sql(raw: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) {
    raw.execute_raw(Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)).await.unwrap();
}

#[tokio::test]
#[cfg_attr(not(otesse_postgres), ignore = "set OTESSE_TEST_POSTGRES_URL to run on PostgreSQL")]
async fn a_revocation_reaches_every_process_within_a_second() {
    let url = std::env::var("OTESSE_TEST_POSTGRES_URL").unwrap();
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), &url, &schema);
    let b = start(dir.path(), &url, &schema);
    let client = Client::new();

    let setup =
        json!({"setup_token": SETUP_TOKEN, "organization_name": "Acme", "email": ADMIN_EMAIL, "password": PASSWORD});
    assert_eq!(client.post(format!("{}/v1/setup", a.base)).json(&setup).send().await.unwrap().status(), 201);
    let session: Value = client
        .post(format!("{}/v1/sessions", a.base))
        .json(&json!({"email": ADMIN_EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = session["token"].as_str().unwrap().to_owned();
    let mut keys = Vec::new();
    for name in ["revoked through A", "revoked behind B's back"] {
        let created: Value = client
            .post(format!("{}/v1/api-keys", a.base))
            .bearer_auth(&admin)
            .json(&key_body(name, "live"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (key, id) = (created["key"].as_str().unwrap(), created["id"].as_str().unwrap());
        // B now holds the key in its cache, as valid.
        assert_eq!(use_key(&client, &b, key).await, (200, None));
        keys.push((key.to_owned(), id.parse::<uuid::Uuid>().unwrap()));
    }

    // Revoked through A: B hears of it, well before its cache entry would expire.
    let (key, id) = &keys[0];
    let revoked_at = Instant::now();
    let revoke = client.post(format!("{}/v1/api-keys/{id}/revoke", a.base)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(revoke.status(), 200);
    assert_eq!(use_key(&client, &a, key).await, (401, Some("api_key_revoked".into())), "at once where revoked");
    let took = wait_until_refused(&client, &b, key, revoked_at, PROPAGATION).await;
    assert!(took < PROPAGATION, "B refused the key after {took:?}");

    // A revocation whose notice is lost (written straight to the database): B still serves its
    // cached entry...
    let mut options = sea_orm::ConnectOptions::new(url.clone());
    options.set_schema_search_path(schema.clone());
    let raw = sea_orm::Database::connect(options).await.unwrap();
    let (key, id) = &keys[1];
    sql(&raw, "UPDATE api_keys SET revoked_at = $1 WHERE id = $2", vec![chrono::Utc::now().into(), (*id).into()]).await;
    assert_eq!(use_key(&client, &b, key).await, (200, None), "cached for the whole window without a notice");
    // ...until its listening connection is cut: once it listens again it forgets its cache,
    // since notices may have been missed meanwhile.
    let cut = Instant::now();
    sql(&raw, "SELECT pg_terminate_backend($1)", vec![(b.listener_pid as i32).into()]).await;
    let took = wait_until_refused(&client, &b, key, cut, Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(10), "B cleared its cache after reconnecting ({took:?})");

    drop((a, b));
    raw.execute_unprepared(&format!(r#"DROP SCHEMA "{schema}" CASCADE"#)).await.unwrap();
    raw.close().await.unwrap();
}
