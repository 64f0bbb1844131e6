//! Killing the server: in the middle of a connect it leaves no orphan credentials (I8); between a
//! change and its webhook delivery the delivery still happens after restart (the outbox). The
//! real binary is started, killed with SIGKILL, and restarted.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{ADMIN_EMAIL, PASSWORD, SETUP_TOKEN};

/// Tells the test the check arrived, then never answers in time.
struct Hang(Mutex<Sender<()>>);

impl Respond for Hang {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let _ = self.0.lock().unwrap().send(());
        ResponseTemplate::new(200).set_delay(Duration::from_secs(60))
    }
}

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
fn start(data_dir: &std::path::Path, port: u16, fake: &str, db: &(String, Option<String>)) -> Server {
    start_with(data_dir, port, fake, db, &[])
}

pub(crate) fn start_with(
    data_dir: &std::path::Path,
    port: u16,
    fake: &str,
    db: &(String, Option<String>),
    env: &[(&str, &str)],
) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_otesse-server"));
    command
        .current_dir(data_dir)
        .env_clear()
        .env("OTESSE_LISTEN", format!("127.0.0.1:{port}"))
        .env("OTESSE_DATA_DIR", data_dir)
        .env("OTESSE_SETUP_TOKEN", SETUP_TOKEN)
        .env("OTESSE_LOG_FILTER", "info")
        .env("OTESSE_LOG_FORMAT", "json")
        .env("OTESSE_PROVIDERS__POSTMARK__BASE_URL", fake)
        .env("OTESSE_PROVIDER_TIMEOUT_MS", "120000")
        .env("OTESSE_DATABASE_URL", &db.0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(schema) = &db.1 {
        command.env("OTESSE_DATABASE_SCHEMA", schema);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("the server exited before listening").unwrap();
        if line.contains("\"listening\"") {
            break;
        }
    }
    // Keep draining so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, base: format!("http://127.0.0.1:{port}") }
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
    let mut server = start(dir.path(), port, &fake.uri(), &db);
    let base = server.base.clone();
    let setup =
        json!({"setup_token": SETUP_TOKEN, "organization_name": "Acme", "email": ADMIN_EMAIL, "password": PASSWORD});
    assert_eq!(client.post(format!("{base}/v1/setup")).json(&setup).send().await.unwrap().status(), 201);
    let sign_in = json!({"email": ADMIN_EMAIL, "password": PASSWORD});
    let session: serde_json::Value =
        client.post(format!("{base}/v1/sessions")).json(&sign_in).send().await.unwrap().json().await.unwrap();
    let token = session["token"].as_str().unwrap().to_owned();

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
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(connect.await.unwrap().is_err(), "the client saw the connection die");
    drop(server);

    let server = start(dir.path(), port, &fake.uri(), &db);
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
    let mut server =
        start_with(dir.path(), port, "http://127.0.0.1:9", &db, &[loopback, ("OTESSE_JOBS__ENABLED", "false")]);
    let base = server.base.clone();
    let setup =
        json!({"setup_token": SETUP_TOKEN, "organization_name": "Acme", "email": ADMIN_EMAIL, "password": PASSWORD});
    assert_eq!(client.post(format!("{base}/v1/setup")).json(&setup).send().await.unwrap().status(), 201);
    let sign_in = json!({"email": ADMIN_EMAIL, "password": PASSWORD});
    let session: serde_json::Value =
        client.post(format!("{base}/v1/sessions")).json(&sign_in).send().await.unwrap().json().await.unwrap();
    let token = session["token"].as_str().unwrap().to_owned();
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
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
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
