//! Killing the server: in the middle of a connect it leaves no orphan credentials (I8); between a
//! change and its webhook delivery the delivery still happens after restart (the outbox). The
//! real binary is started, killed with SIGKILL, and restarted.

use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{ADMIN_EMAIL, PASSWORD, ServerCommand, ServerProcess};

/// Tells the test the check arrived, then never answers in time.
struct Hang(Mutex<Sender<()>>);

impl Respond for Hang {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let _ = self.0.lock().unwrap().send(());
        ResponseTemplate::new(200).set_delay(Duration::from_secs(60))
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Tells the test each request that arrived, with its body, and answers 200.
struct Forward(Mutex<Sender<Vec<u8>>>);

impl Respond for Forward {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let _ = self.0.lock().unwrap().send(request.body.clone());
        ResponseTemplate::new(200)
    }
}

/// Starts the binary and returns once it logged that it listens (no polling).
fn start(data_dir: &std::path::Path, port: u16, fake: &str, db: &(String, Option<String>)) -> ServerProcess {
    start_with(data_dir, port, fake, db, &[])
}

/// Starts the binary on `port` (a restarted server keeps its address) with Postmark at `fake`,
/// and `env` on top.
pub(crate) fn start_with(
    data_dir: &std::path::Path,
    port: u16,
    fake: &str,
    db: &(String, Option<String>),
    env: &[(&str, &str)],
) -> ServerProcess {
    ServerCommand::new(data_dir, &db.0, db.1.as_deref())
        .port(port)
        .env("OTESSE_PROVIDERS__POSTMARK__BASE_URL", fake)
        .env("OTESSE_PROVIDER_TIMEOUT_MS", "120000")
        .envs(env)
        .start()
}

/// The database the test's servers share: a fresh schema on PostgreSQL, or a file in `dir`.
pub(crate) fn database(dir: &std::path::Path) -> (String, Option<String>) {
    match std::env::var("OTESSE_TEST_POSTGRES_URL") {
        Ok(url) => (url, Some(format!("t_{}", uuid::Uuid::new_v4().simple()))),
        Err(_) => (format!("sqlite://{}", dir.join("otesse.db").display()), None),
    }
}

#[tokio::test]
async fn a_connect_killed_mid_check_leaves_no_orphans() {
    let (tx, rx) = channel();
    let fake = MockServer::start().await;
    Mock::given(method("GET")).and(path("/server")).respond_with(Hang(Mutex::new(tx))).mount(&fake).await;
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let port = free_port();
    let client = reqwest::Client::new();
    let server = start(dir.path(), port, &fake.uri(), &db);
    let base = server.base.clone();
    let token = server.admin(&client).await;

    let connect = {
        let client = client.clone();
        let (base, token) = (base.clone(), token.clone());
        tokio::spawn(async move {
            client
                .post(format!("{base}/v1/integrations/providers/postmark/connect"))
                .bearer_auth(token)
                .json(&json!({"credentials": {"api_key": "pm-crash-canary"}}))
                .send()
                .await
        })
    };
    // The check reached the provider: the connect is in flight. Kill the server now.
    tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)).unwrap()).await.unwrap();
    server.kill();
    assert!(connect.await.unwrap().is_err(), "the client saw the connection die");

    let server = start(dir.path(), port, &fake.uri(), &db);
    let sign_in = json!({"email": ADMIN_EMAIL, "password": PASSWORD});
    let session: serde_json::Value =
        client.post(format!("{}/v1/sessions", server.base)).json(&sign_in).send().await.unwrap().json().await.unwrap();
    let token = session["token"].as_str().unwrap();
    let connections: serde_json::Value = client
        .get(format!("{}/v1/integrations/connections", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(connections["data"], json!([]), "no half-made connection");
    let catalog: serde_json::Value = client
        .get(format!("{}/v1/integrations/providers/postmark", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(catalog["connection_status"], "not_connected");

    let database = otesse_storage::Database::connect(&db.0, db.1.as_deref()).await.unwrap();
    let stored = otesse_domain::sealed::SealedSecretStore::below_version(
        &database.sealed_secrets(),
        u32::MAX,
        chrono::Utc::now(),
        100,
    )
    .await
    .unwrap();
    assert!(stored.is_empty(), "no orphan credentials");
}

/// A change's webhook is stored with the change, in its transaction: a server killed after the
/// change committed and before anything was delivered still has the delivery to make, and the
/// next server makes it. The first server runs no worker, so nothing can be delivered before the
/// kill; the receiver is asserted to have received nothing then.
#[tokio::test]
async fn a_server_killed_between_a_change_and_its_delivery_delivers_after_restart() {
    let (tx, rx) = channel();
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).and(path("/hooks")).respond_with(Forward(Mutex::new(tx))).mount(&receiver).await;
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path());
    let port = free_port();
    let client = reqwest::Client::new();
    let loopback = ("OTESSE_ALLOW_LOOPBACK_URLS", "true");
    let server =
        start_with(dir.path(), port, "http://127.0.0.1:9", &db, &[loopback, ("OTESSE_JOBS__ENABLED", "false")]);
    let base = server.base.clone();
    let token = server.admin(&client).await;
    let endpoint = json!({"url": format!("{}/hooks", receiver.uri()), "events": ["api_key.created"]});
    let created = client.post(format!("{base}/v1/webhook-endpoints")).bearer_auth(&token).json(&endpoint).send().await;
    assert_eq!(created.unwrap().status(), 201);
    let key = json!({"name": "Zapier", "environment": "live", "scope_level": "read_only", "expires_in": "never"});
    let key: serde_json::Value = client
        .post(format!("{base}/v1/api-keys"))
        .bearer_auth(&token)
        .json(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = key["id"].as_str().expect("the key was created").to_owned();

    // The change is committed; nothing has been delivered. Kill the server.
    server.kill();
    assert!(receiver.received_requests().await.unwrap().is_empty(), "nothing delivered before the kill");

    let _server =
        start_with(dir.path(), port, "http://127.0.0.1:9", &db, &[loopback, ("OTESSE_JOBS__POLL_INTERVAL_MS", "50")]);
    let body = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the restarted server delivered the webhook");
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "api_key.created");
    assert_eq!(event["data"]["id"], key_id.as_str());
}
