//! Three server processes on one PostgreSQL (O2, O5, issue 16's scaling test): a key revoked
//! through one is refused by the other two within a second, although they cache keys for five
//! minutes; and the webhook deliveries queued through all three while they run are each done
//! exactly once, whichever process's worker takes them.
//!
//! The real binary is started three times (as in `revocation.rs`), on the same database and
//! schema, with a local receiver for the deliveries.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Client;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ADMIN_EMAIL, PASSWORD, SETUP_TOKEN, eventually, key_body};

/// O2's bound for a revocation to reach every process.
const PROPAGATION: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(20);
/// Test events queued through each process.
const EVENTS_PER_PROCESS: usize = 10;

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on a free port and returns once it logged that it listens.
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
        .env("OTESSE_ALLOW_LOOPBACK_URLS", "true")
        .env("OTESSE_WORKERS", "1")
        .env("OTESSE_LOG_FILTER", "info")
        .env("OTESSE_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("the server exited before listening").unwrap();
        let Ok(event) = serde_json::from_str::<Value>(&line) else { continue };
        if event["message"] == "listening" {
            break event["port"].as_u64().expect("the port is logged");
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, base: format!("http://127.0.0.1:{port}") }
}

async fn use_key(client: &Client, server: &Server, key: &str) -> (u16, Option<String>) {
    let response = client.get(format!("{}/v1/customers", server.base)).bearer_auth(key).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error"]["code"].as_str().map(str::to_owned))
}

/// Polls `server` until it refuses `key` as revoked; fails once `PROPAGATION` has passed since
/// `since`.
async fn refused_within(client: &Client, server: &Server, key: &str, since: Instant) -> Duration {
    loop {
        match use_key(client, server, key).await {
            (401, Some(code)) if code == "api_key_revoked" => return since.elapsed(),
            (200, None) => {}
            other => panic!("unexpected answer {other:?}"),
        }
        assert!(since.elapsed() < PROPAGATION, "{} still accepted the key after {:?}", server.base, since.elapsed());
        tokio::time::sleep(POLL).await;
    }
}

async fn count(raw: &DatabaseConnection, sql: &str) -> i64 {
    let row = raw.query_one_raw(Statement::from_string(DatabaseBackend::Postgres, sql)).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

#[tokio::test]
#[cfg_attr(not(otesse_postgres), ignore = "set OTESSE_TEST_POSTGRES_URL to run on PostgreSQL")]
async fn three_processes_share_revocations_and_deliver_every_event_once() {
    let url = std::env::var("OTESSE_TEST_POSTGRES_URL").unwrap();
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    let servers: Vec<Server> = (0..3).map(|_| start(dir.path(), &url, &schema)).collect();
    let client = Client::new();
    let (a, others) = (&servers[0], &servers[1..]);

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

    let receiver = MockServer::start().await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(204)).mount(&receiver).await;
    let endpoint: Value = client
        .post(format!("{}/v1/webhook-endpoints", a.base))
        .bearer_auth(&admin)
        .json(&json!({"url": format!("{}/hook", receiver.uri()), "events": ["api_key.created", "api_key.revoked"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = endpoint["id"].as_str().expect("the endpoint is created").to_owned();

    // A key, cached as valid by the two other processes, revoked through the first.
    let created: Value = client
        .post(format!("{}/v1/api-keys", a.base))
        .bearer_auth(&admin)
        .json(&key_body("revoked through A", "live"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (key, id) = (created["key"].as_str().unwrap().to_owned(), created["id"].as_str().unwrap().to_owned());
    for server in others {
        assert_eq!(use_key(&client, server, &key).await, (200, None));
    }
    let revoked_at = Instant::now();
    let revoke = client.post(format!("{}/v1/api-keys/{id}/revoke", a.base)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(revoke.status(), 200);
    let (b, c) = (&others[0], &others[1]);
    let (took_b, took_c) =
        tokio::join!(refused_within(&client, b, &key, revoked_at), refused_within(&client, c, &key, revoked_at));
    assert!(took_b < PROPAGATION && took_c < PROPAGATION, "B after {took_b:?}, C after {took_c:?}");

    // Deliveries queued through all three at once, while all three workers run.
    let mut expected: Vec<String> = Vec::new();
    let sends = servers.iter().flat_map(|server| {
        (0..EVENTS_PER_PROCESS).map(|_| {
            client.post(format!("{}/v1/webhook-endpoints/{endpoint}/test", server.base)).bearer_auth(&admin).send()
        })
    });
    for answer in futures_util::future::join_all(sends).await {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 202);
        let body: Value = answer.json().await.unwrap();
        expected.push(body["message_id"].as_str().unwrap().to_owned());
    }

    let mut options = sea_orm::ConnectOptions::new(url.clone());
    options.set_schema_search_path(schema.clone());
    let raw = sea_orm::Database::connect(options).await.unwrap();
    // The created and revoked events' deliveries, and the test events'.
    let queued = count(&raw, "SELECT COUNT(*) AS n FROM jobs WHERE kind = 'webhook_delivery'").await;
    assert_eq!(queued, 2 + expected.len() as i64);
    // Done: every delivery's job finished. Nothing is left to send after that, so what the
    // receiver has seen then is all it will ever see.
    eventually("every delivery job finished", || async {
        let open = "SELECT COUNT(*) AS n FROM jobs WHERE kind = 'webhook_delivery' \
                    AND state NOT IN ('succeeded', 'failed')";
        (count(&raw, open).await == 0).then_some(())
    })
    .await;
    let once =
        "SELECT COUNT(*) AS n FROM jobs WHERE kind = 'webhook_delivery' AND state = 'succeeded' AND attempts = 1";
    assert_eq!(count(&raw, once).await, queued, "every job succeeded at its first attempt");
    let delivered = "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE state = 'succeeded' AND attempts = 1";
    assert_eq!(count(&raw, delivered).await, queued);

    let mut seen: HashMap<String, usize> = HashMap::new();
    for request in receiver.received_requests().await.unwrap() {
        let id = request.headers.get("webhook-id").unwrap().to_str().unwrap().to_owned();
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len() as i64, queued, "one id per delivery: {seen:?}");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    for id in &expected {
        assert_eq!(seen.get(id), Some(&1), "{id}");
    }

    drop(servers);
    raw.execute_unprepared(&format!(r#"DROP SCHEMA "{schema}" CASCADE"#)).await.unwrap();
    raw.close().await.unwrap();
}
