//! Three server processes on one PostgreSQL (O2, O5, issue 16's scaling test): a key revoked
//! through one is refused by the other two within a second, although they cache keys for five
//! minutes; and the webhook deliveries queued through all three while they run are each done
//! exactly once, whichever process's worker takes them.
//!
//! The real binary is started three times (as in `revocation.rs`), on the same database and
//! schema, with a local receiver for the deliveries.

use std::collections::HashMap;
use std::time::Instant;

use reqwest::Client;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ServerCommand, ServerProcess, eventually, key_body};
use crate::revocation::{PROPAGATION, use_key, wait_until_refused};

/// Test events queued through each process.
const EVENTS_PER_PROCESS: usize = 10;

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
    // The deliveries go to a receiver on loopback.
    let command = || {
        ServerCommand::new(dir.path(), &url, Some(&schema)).beside_others().env("OTESSE_ALLOW_LOOPBACK_URLS", "true")
    };
    let servers: Vec<ServerProcess> = (0..3).map(|_| command().start()).collect();
    let client = Client::new();
    let (a, others) = (&servers[0], &servers[1..]);

    let admin = a.admin(&client).await;

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
    let (took_b, took_c) = tokio::join!(
        wait_until_refused(&client, b, &key, revoked_at, PROPAGATION),
        wait_until_refused(&client, c, &key, revoked_at, PROPAGATION)
    );
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
