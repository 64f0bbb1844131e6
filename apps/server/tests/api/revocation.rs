//! Several server processes on one PostgreSQL (O2): a key revoked through one process is refused
//! by another within a second, although that process caches keys for five minutes; and a
//! process whose listening connection was cut forgets its cache once it listens again.
//!
//! The real binary is started twice (as in `crash.rs`), against the same database and schema.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Client;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use serde_json::Value;

use crate::helpers::{ServerCommand, ServerProcess, key_body};

/// O2's bound for a revocation to reach every process.
pub(crate) const PROPAGATION: Duration = Duration::from_secs(1);
/// How often the tests look again while waiting for another process.
const POLL: Duration = Duration::from_millis(20);

/// Starts the binary beside the test's other processes, once it listens (no polling).
fn start(data_dir: &Path, url: &str, schema: &str) -> ServerProcess {
    let server = ServerCommand::new(data_dir, url, Some(schema)).beside_others().start();
    assert!(server.listener_pid.is_some(), "PostgreSQL servers listen for key invalidations before serving");
    server
}

/// A keyed request to `server`: its status and error code (if any).
pub(crate) async fn use_key(client: &Client, server: &ServerProcess, key: &str) -> (u16, Option<String>) {
    let response = client.get(format!("{}/v1/customers", server.base)).bearer_auth(key).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error"]["code"].as_str().map(str::to_owned))
}

/// Polls `server` until it refuses `key` as revoked; returns how long that took from `since`,
/// or fails once `deadline` has passed since then.
pub(crate) async fn wait_until_refused(
    client: &Client,
    server: &ServerProcess,
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
        assert!(since.elapsed() < deadline, "{} still accepted the key after {:?}", server.base, since.elapsed());
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

    let admin = a.admin(&client).await;
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
    sql(&raw, "SELECT pg_terminate_backend($1)", vec![(b.listener_pid.unwrap() as i32).into()]).await;
    let took = wait_until_refused(&client, &b, key, cut, Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(10), "B cleared its cache after reconnecting ({took:?})");

    drop((a, b));
    raw.execute_unprepared(&format!(r#"DROP SCHEMA "{schema}" CASCADE"#)).await.unwrap();
    raw.close().await.unwrap();
}
