//! Idempotency keys (W1) on create routes: replays are byte for byte and run nothing, another
//! request under the same key is refused, a duplicate of a running request gets 409, keys are
//! scoped to their caller, and a stored answer holding a secret is sealed.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use otesse_server::config::ProviderSettings;
use reqwest::Method;
use reqwest::header::HeaderValue;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{Answer, TestApp, key_body, spawn_app, spawn_app_with};

async fn post(app: &TestApp, path: &str, token: &str, key: &str, body: &Value) -> Answer {
    app.send(app.request(Method::POST, path).bearer_auth(token).header("Idempotency-Key", key).json(body)).await
}

async fn records(app: &TestApp) -> i64 {
    let backend = app.raw.get_database_backend();
    let sql = "SELECT COUNT(*) AS n FROM idempotency_records";
    let row = app.raw.query_one_raw(Statement::from_string(backend, sql)).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

fn replayed(answer: &Answer) -> bool {
    answer.headers.get("idempotent-replayed").is_some_and(|v| v == "true")
}

#[tokio::test]
async fn a_retried_create_replays_the_first_answer_and_creates_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (customers, key_id) = app.key(&admin, key_body("customers", "live")).await;
    let body = json!({"name": "Ada Lovelace", "email": "ada@example.test"});

    let first = post(&app, "/v1/customers", &customers, "create-ada-1", &body).await;
    first.expect(201);
    assert!(!replayed(&first));
    let again = post(&app, "/v1/customers", &customers, "create-ada-1", &body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.text, first.text, "byte for byte");
    assert_eq!(again.headers.get("content-type"), first.headers.get("content-type"));
    assert!(replayed(&again));
    assert!(again.headers.contains_key("x-request-id"), "a replay is a response like any other");
    let listed = app.get("/v1/customers", &customers).await;
    assert_eq!(listed.expect(200)["data"].as_array().unwrap().len(), 1, "one customer");

    // The same key with other parameters is refused, and runs nothing.
    let other = json!({"name": "Grace Hopper"});
    let message =
        post(&app, "/v1/customers", &customers, "create-ada-1", &other).await.expect_error(422, "idempotency_error");
    assert_eq!(
        message,
        "Keys for idempotent requests can only be used with the same parameters they were first used with."
    );
    // The same bytes on another path are another request.
    post(&app, "/v1/users", &customers, "create-ada-1", &body).await.expect_error(422, "idempotency_error");

    // A validation failure is an answer too: replayed as is, and the fixed request needs a new key.
    let bad = json!({"name": ""});
    let refused = post(&app, "/v1/customers", &customers, "bad-one", &bad).await;
    refused.expect_error(400, "invalid_parameter");
    let refused_again = post(&app, "/v1/customers", &customers, "bad-one", &bad).await;
    assert_eq!((refused_again.status, &refused_again.text), (refused.status, &refused.text));
    assert!(replayed(&refused_again));

    // Another caller's identical key is its own: it runs.
    let second_key = app.customers_key(&admin, "live").await;
    let theirs = post(&app, "/v1/customers", &second_key, "create-ada-1", &body).await;
    theirs.expect(201);
    assert!(!replayed(&theirs));
    assert_ne!(theirs.body["id"], first.body["id"]);
    let listed = app.get("/v1/customers", &customers).await;
    assert_eq!(listed.expect(200)["data"].as_array().unwrap().len(), 2);

    // Requests without the header are untouched.
    let plain = app.post("/v1/customers", &customers, &body).await;
    plain.expect(201);
    assert!(!replayed(&plain));

    // Answers the middleware gives itself are still the key's requests: logged and counted.
    assert!(again.headers.contains_key("ratelimit-remaining"));
    app.flush_usage().await;
    let detail = app.get(&format!("/v1/api-keys/{key_id}"), &admin).await;
    // create, replay, 422 twice, 400, replayed 400, two lists, plain create.
    assert_eq!(detail.expect(200)["usage"]["total_requests"], 9);
}

#[tokio::test]
async fn replays_count_against_the_key_rate_limit() {
    let app = spawn_app_with(|s| {
        s.rate_limit.key_requests = 3;
        s.rate_limit.key_period_secs = 3600;
    })
    .await;
    let admin = app.admin().await;
    let key = app.customers_key(&admin, "live").await;
    let body = json!({"name": "Limited"});
    let statuses = [
        post(&app, "/v1/customers", &key, "limited", &body).await.status,
        post(&app, "/v1/customers", &key, "limited", &body).await.status,
        post(&app, "/v1/customers", &key, "limited", &body).await.status,
    ];
    assert_eq!(statuses, [201, 201, 201], "counted once each, the first included");
    post(&app, "/v1/customers", &key, "limited", &body).await.expect_error(429, "rate_limited");
}

/// A secret is shown exactly once (K5): a retried key creation or rotation does not answer the
/// key again, it answers 409 `idempotency_secret_shown` with the created key's `Location`, and
/// creates nothing. Nothing of the first answer's secret is stored, sealed or not.
#[tokio::test]
async fn a_retried_key_creation_or_rotation_points_at_the_key_and_never_shows_it_again() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let body = key_body("Replayed", "live");
    let first = post(&app, "/v1/api-keys", &admin, "new-key-1", &body).await;
    let created = first.expect(201)["key"].as_str().unwrap().to_owned();
    let id = first.body["id"].as_str().unwrap().to_owned();
    let location = format!("/v1/api-keys/{id}");
    assert_eq!(first.headers.get("location").unwrap(), location.as_str());
    assert_eq!(first.headers.get("cache-control").unwrap(), "no-store");

    for _ in 0..2 {
        let again = post(&app, "/v1/api-keys", &admin, "new-key-1", &body).await;
        assert!(replayed(&again));
        let message = again.expect_error(409, "idempotency_secret_shown");
        assert!(message.contains(&location), "{message}");
        assert!(!again.text.contains(&created), "the key is shown again");
        assert_eq!(again.headers.get("location").unwrap(), location.as_str());
    }
    assert_eq!(app.key_count(&admin).await, 1, "one key");
    // The same key with another request is still refused as such.
    let other = key_body("Another", "live");
    post(&app, "/v1/api-keys", &admin, "new-key-1", &other).await.expect_error(422, "idempotency_error");

    let rotate = format!("/v1/api-keys/{id}/rotate");
    let rotated = post(&app, &rotate, &admin, "rotate-1", &json!({})).await;
    let new_key = rotated.expect(201)["key"].as_str().unwrap().to_owned();
    let new_location = format!("/v1/api-keys/{}", rotated.body["id"].as_str().unwrap());
    let rotated_again = post(&app, &rotate, &admin, "rotate-1", &json!({})).await;
    rotated_again.expect_error(409, "idempotency_secret_shown");
    assert!(!rotated_again.text.contains(&new_key));
    assert_eq!(rotated_again.headers.get("location").unwrap(), new_location.as_str());
    assert_eq!(app.key_count(&admin).await, 2, "one rotation");

    // A user's keys are theirs: another admin's same key runs, for them.
    let other_admin = app.user(&admin, "second-admin@example.test", "admin").await;
    let theirs = post(&app, "/v1/api-keys", &other_admin, "new-key-1", &key_body("Theirs", "live")).await;
    assert!(!replayed(&theirs));
    let theirs = theirs.expect(201)["key"].as_str().unwrap().to_owned();
    assert_ne!(theirs, created);
    assert_eq!(records(&app).await, 3);

    let (_db, raw, sqlite_file, _dir) = app.stop().await;
    let stored = database_contents(&raw, sqlite_file).await;
    assert!(contains(&stored, b"Replayed"), "the scan reads the right database");
    for secret in [&created, &new_key, &theirs] {
        assert!(!contains(&stored, secret.as_bytes()), "a plaintext key is stored");
        assert!(!contains(&stored, hex(secret.as_bytes()).as_bytes()), "a plaintext key is stored (as bytes)");
    }
}

/// The same for a webhook endpoint's signing secret, at creation and at rotation.
#[tokio::test]
async fn a_retried_endpoint_creation_or_secret_rotation_never_shows_the_secret_again() {
    // Nothing is delivered (jobs are off): the receiver only has to be an allowed address.
    let app = spawn_app_with(|s| s.allow_loopback_urls = true).await;
    let admin = app.admin().await;
    let body = json!({"url": "http://127.0.0.1:9/otesse", "events": ["api_key.created"]});
    let first = post(&app, "/v1/webhook-endpoints", &admin, "endpoint-1", &body).await;
    let secret = first.expect(201)["secret"].as_str().unwrap().to_owned();
    let location = format!("/v1/webhook-endpoints/{}", first.body["id"].as_str().unwrap());
    assert_eq!(first.headers.get("location").unwrap(), location.as_str());

    let again = post(&app, "/v1/webhook-endpoints", &admin, "endpoint-1", &body).await;
    again.expect_error(409, "idempotency_secret_shown");
    assert!(!again.text.contains(&secret));
    assert_eq!(again.headers.get("location").unwrap(), location.as_str());
    let listed = app.get("/v1/webhook-endpoints", &admin).await;
    assert_eq!(listed.expect(200)["data"].as_array().unwrap().len(), 1, "one endpoint");

    let rotate = format!("{location}/rotate-secret");
    let rotated = post(&app, &rotate, &admin, "rotate-secret-1", &json!({})).await;
    let new_secret = rotated.expect(200)["secret"].as_str().unwrap().to_owned();
    let rotated_again = post(&app, &rotate, &admin, "rotate-secret-1", &json!({})).await;
    rotated_again.expect_error(409, "idempotency_secret_shown");
    assert!(!rotated_again.text.contains(&new_secret));
    assert_eq!(rotated_again.headers.get("location").unwrap(), location.as_str());
}

#[tokio::test]
async fn bad_keys_and_requests_that_are_not_kept() {
    let app = spawn_app_with(|s| s.max_body_bytes = 1024).await;
    let admin = app.admin().await;
    let customers = app.customers_key(&admin, "live").await;
    let body = json!({"name": "Careful"});
    for bad in ["k".repeat(256), String::new(), "with space".into(), "tab\there".into()] {
        let message = post(&app, "/v1/customers", &customers, &bad, &body).await.expect_error(400, "invalid_parameter");
        assert!(message.contains("Idempotency-Key"), "{message}");
    }
    let not_ascii = app
        .request(Method::POST, "/v1/customers")
        .bearer_auth(&customers)
        .header("Idempotency-Key", HeaderValue::from_bytes(b"caf\xe9").unwrap())
        .json(&body);
    app.send(not_ascii).await.expect_error(400, "invalid_parameter");
    post(&app, "/v1/customers", &customers, &"k".repeat(255), &body).await.expect(201);

    // A body over the limit is refused in the error shape, as without the header.
    let large = json!({"name": "x".repeat(2000)});
    post(&app, "/v1/customers", &customers, "large", &large).await.expect_error(413, "payload_too_large");

    // No valid credential: the handler answers, and nothing is recorded.
    let anonymous = app.request(Method::POST, "/v1/customers").header("Idempotency-Key", &"k".repeat(300)).json(&body);
    app.send(anonymous).await.expect_error(401, "missing_credentials");
    let wrong = format!("erp_live_{}", "0".repeat(40));
    post(&app, "/v1/customers", &wrong, "anonymous", &body).await.expect_error(401, "api_key_invalid");
    // A key used from an address it does not allow is refused by the handler, every time.
    let mut fenced = key_body("fenced", "live");
    fenced["allowed_ips"] = json!(["192.0.2.0/24"]);
    let (fenced, _) = app.key(&admin, fenced).await;
    for _ in 0..2 {
        post(&app, "/v1/customers", &fenced, "fenced", &body).await.expect_error(403, "ip_not_allowed");
    }
    // Refusals about the credential and conflicts are not kept: the retry runs again.
    let mut reader = key_body("reader", "live");
    reader["scope_level"] = json!("read_only");
    reader["scopes"] = json!(["customers.read"]);
    let (read_only, _) = app.key(&admin, reader).await;
    for _ in 0..2 {
        post(&app, "/v1/customers", &read_only, "read-only", &body).await.expect_error(403, "read_only_key");
    }
    let taken = key_body("Taken", "live");
    app.key(&admin, taken.clone()).await;
    for _ in 0..2 {
        post(&app, "/v1/api-keys", &admin, "taken", &taken).await.expect_error(409, "name_taken");
    }
    // Sign-in and setup have no caller yet: the header changes nothing there.
    let sign_in = json!({"email": crate::helpers::ADMIN_EMAIL, "password": crate::helpers::PASSWORD});
    for _ in 0..2 {
        let request = app.request(Method::POST, "/v1/sessions").header("Idempotency-Key", "sign-in").json(&sign_in);
        let signed_in = app.send(request).await;
        assert!(!replayed(&signed_in));
        signed_in.expect(201);
    }
    assert_eq!(records(&app).await, 1, "only the 255-character key's answer is kept");
}

/// Postmark's `GET /server`, held until the test releases it: tells the test the check
/// arrived, then blocks the fake's own thread. Dropping the release sender lets it answer too,
/// so a failing test does not hang.
struct Held {
    arrived: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

impl Respond for Held {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let _ = self.arrived.lock().unwrap().send(());
        let _ = self.release.lock().unwrap().recv();
        ResponseTemplate::new(200).set_body_json(json!({"ID": 1, "Name": "Acme", "ApiTokens": ["..."]}))
    }
}

#[tokio::test]
async fn a_duplicate_of_a_running_request_gets_409_and_the_side_effect_happens_once() {
    let (arrived_tx, arrived) = channel();
    let (release, release_rx) = channel();
    let fake = MockServer::start().await;
    let held = Held { arrived: Mutex::new(arrived_tx), release: Mutex::new(release_rx) };
    Mock::given(method("GET")).and(path("/server")).respond_with(held).mount(&fake).await;
    let uri = fake.uri();
    let app = spawn_app_with(move |s| {
        s.providers.insert("postmark".into(), ProviderSettings { base_url: Some(uri), ..Default::default() });
        s.provider_timeout_ms = 120_000;
    })
    .await;
    let admin = app.admin().await;
    let connect = "/v1/integrations/providers/postmark/connect";
    let body = json!({"credentials": {"api_key": "pm-idempotency-canary"}});

    let first = {
        let request =
            app.request(Method::POST, connect).bearer_auth(&admin).header("Idempotency-Key", "connect-1").json(&body);
        tokio::spawn(request.send())
    };
    // The first request is inside its handler, waiting on the provider.
    tokio::task::spawn_blocking(move || arrived.recv_timeout(Duration::from_secs(60)).unwrap()).await.unwrap();

    let duplicate = post(&app, connect, &admin, "connect-1", &body).await;
    let message = duplicate.expect_error(409, "idempotency_in_progress");
    assert!(message.contains("still being processed"), "{message}");
    let other = json!({"credentials": {"api_key": "another"}});
    post(&app, connect, &admin, "connect-1", &other).await.expect_error(422, "idempotency_error");

    release.send(()).unwrap();
    let first = Answer::read(first.await.unwrap().unwrap()).await;
    assert_eq!(first.expect(201)["status"], "connected");
    assert!(!replayed(&first));
    let retry = post(&app, connect, &admin, "connect-1", &body).await;
    assert!(replayed(&retry));
    assert_eq!((retry.status, &retry.text), (first.status, &first.text));

    assert_eq!(fake.received_requests().await.unwrap().len(), 1, "the provider was called once");
    let connections = app.get("/v1/integrations/connections", &admin).await;
    assert_eq!(connections.expect(200)["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_duplicates_create_once() {
    let app = spawn_app_with(|s| s.workers = Some(4)).await;
    let admin = app.admin().await;
    let customers = app.customers_key(&admin, "live").await;
    let body = json!({"name": "Concurrent"});
    let requests: Vec<_> = (0..10)
        .map(|_| {
            app.request(Method::POST, "/v1/customers")
                .bearer_auth(&customers)
                .header("Idempotency-Key", "same-for-all")
                .json(&body)
                .send()
        })
        .collect();
    let mut created = Vec::new();
    for response in futures_util::future::join_all(requests).await {
        let answer = Answer::read(response.unwrap()).await;
        match answer.status.as_u16() {
            201 => created.push(answer.text),
            409 => assert_eq!(answer.error().0, "idempotency_in_progress"),
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert!(!created.is_empty());
    assert!(created.windows(2).all(|w| w[0] == w[1]), "every 201 is the one answer, replayed");
    let listed = app.get("/v1/customers", &customers).await;
    assert_eq!(listed.expect(200)["data"].as_array().unwrap().len(), 1, "the side effect happened once");
}

/// Every byte the database holds: the SQLite file and its WAL, or on PostgreSQL every row of
/// this schema as JSON (where a `bytea` shows as hex, hence [`hex`]).
async fn database_contents(raw: &DatabaseConnection, sqlite_file: Option<std::path::PathBuf>) -> Vec<u8> {
    if let Some(file) = sqlite_file {
        let mut bytes = std::fs::read(&file).unwrap();
        if let Ok(wal) = std::fs::read(file.with_extension("db-wal")) {
            bytes.extend(wal);
        }
        return bytes;
    }
    let backend = raw.get_database_backend();
    let tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()";
    let mut bytes = Vec::new();
    for table in raw.query_all_raw(Statement::from_string(backend, tables)).await.unwrap() {
        let name: String = table.try_get("", "table_name").unwrap();
        let rows = format!("SELECT row_to_json(t)::text AS j FROM \"{name}\" t");
        for row in raw.query_all_raw(Statement::from_string(backend, rows)).await.unwrap() {
            bytes.extend(row.try_get::<String>("", "j").unwrap().into_bytes());
        }
    }
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// And for a password-reset token an admin issues.
#[tokio::test]
async fn a_retried_password_reset_never_shows_the_token_again() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    app.user(&admin, "leaver@example.test", "viewer").await;
    let users = app.get("/v1/users", &admin).await.expect(200).clone();
    let user = users["data"].as_array().unwrap().iter().find(|u| u["email"] == "leaver@example.test").unwrap();
    let path = format!("/v1/users/{}/password-reset", user["id"].as_str().unwrap());
    let first = post(&app, &path, &admin, "reset-1", &json!({})).await;
    let token = first.expect(201)["reset_token"].as_str().unwrap().to_owned();
    let again = post(&app, &path, &admin, "reset-1", &json!({})).await;
    again.expect_error(409, "idempotency_secret_shown");
    assert!(!again.text.contains(&token));
    assert_eq!(again.headers.get("location").unwrap(), format!("/v1/users/{}", user["id"].as_str().unwrap()).as_str());
}
