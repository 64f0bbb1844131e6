//! A server killed between the provider's token answer and the store (I12): the real binary
//! asks the fake authorization server for a refresh, the fake holds its answer until the test
//! has SIGKILLed the server, then answers (a rotated pair) into the dead connection. A second
//! server on the same database then serves the connection: with a provider that accepts the
//! old refresh token once more (a grace period, as Xero's) the connection works and holds a
//! new pair; with one that already spent it, the connection is marked for re-authorization,
//! with its notification and event, never left "connected" and broken.
//!
//! The fake is a few lines of HTTP/1.1 over a socket rather than wiremock, so that one
//! request can wait for the test while the others are answered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

use crate::crash::{database, free_port, start_with};
use crate::helpers::{ServerProcess, XeroCatalog, xero_catalog};

const ACCESS_1: &str = "crash-access-canary-1";
const REFRESH_1: &str = "crash-refresh-canary-1";
const ACCESS_2: &str = "crash-access-canary-2-never-stored";
const REFRESH_2: &str = "crash-refresh-canary-2-never-stored";
const ACCESS_3: &str = "crash-access-canary-3";
const REFRESH_3: &str = "crash-refresh-canary-3";
const ACCESS_4: &str = "crash-access-canary-4";
/// Short, so that the restarted server does not wait thirty seconds for the dead one's lease.
const LEASE_SECS: &str = "4";
/// Below the lease, as the server requires.
const TIMEOUT_MS: &str = "3000";

/// What the fake saw.
#[derive(Default)]
struct Seen {
    /// The `refresh_token` of each refresh request, in order.
    refreshes: Vec<String>,
    /// The bearer token of each health call, in order.
    bearers: Vec<String>,
    /// The held answer was written after the test killed the server.
    answered_after_kill: bool,
}

struct Fake {
    /// The provider still accepts a spent refresh token once (a grace period).
    grace: bool,
    seen: Mutex<Seen>,
    /// Told when the first refresh arrives.
    arrived: mpsc::UnboundedSender<()>,
    /// Opened by the test once the server is dead.
    gate: Semaphore,
}

fn answer(status: u16, body: &Value) -> String {
    let body = body.to_string();
    let reason = if status == 200 { "OK" } else { "Error" };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn grant(access: &str, refresh: &str, expires_in: u64) -> String {
    answer(
        200,
        &json!({"access_token": access, "refresh_token": refresh, "expires_in": expires_in, "token_type": "Bearer"}),
    )
}

/// One request: its request line, headers (lowercased names) and form body.
async fn read_request(stream: &mut TcpStream) -> Option<(String, HashMap<String, String>, HashMap<String, String>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let form = url::form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    Some((request_line, headers, form))
}

async fn serve(fake: Arc<Fake>, mut stream: TcpStream) {
    let Some((line, headers, form)) = read_request(&mut stream).await else { return };
    let response = if line.starts_with("GET /connections") {
        let bearer = headers.get("authorization").cloned().unwrap_or_default();
        let token = bearer.trim_start_matches("Bearer ").to_owned();
        fake.seen.lock().unwrap().bearers.push(token.clone());
        if [ACCESS_1, ACCESS_3, ACCESS_4].contains(&token.as_str()) {
            answer(200, &json!([{"tenantId": "t-1"}]))
        } else {
            answer(401, &json!({"Title": "Unauthorized"}))
        }
    } else if line.starts_with("POST /token") {
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => grant(ACCESS_1, REFRESH_1, 0),
            Some("refresh_token") => {
                let token = form.get("refresh_token").cloned().unwrap_or_default();
                let earlier = {
                    let mut seen = fake.seen.lock().unwrap();
                    seen.refreshes.push(token.clone());
                    seen.refreshes.iter().filter(|t| **t == token).count() - 1
                };
                match (token.as_str(), earlier) {
                    (REFRESH_1, 0) => {
                        // Rotate, but hold the answer until the server is dead.
                        let _ = fake.arrived.send(());
                        fake.gate.acquire().await.unwrap().forget();
                        let _ = stream.write_all(grant(ACCESS_2, REFRESH_2, 1800).as_bytes()).await;
                        fake.seen.lock().unwrap().answered_after_kill = true;
                        return;
                    }
                    // The old refresh token again: a provider with a grace period answers a new
                    // pair (short-lived, so the next call refreshes with what was stored).
                    (REFRESH_1, 1) if fake.grace => grant(ACCESS_3, REFRESH_3, 0),
                    (REFRESH_3, 0) => grant(ACCESS_4, "crash-refresh-canary-4", 1800),
                    _ => answer(400, &json!({"error": "invalid_grant"})),
                }
            }
            _ => answer(400, &json!({"error": "unsupported_grant_type"})),
        }
    } else if line.starts_with("POST /revoke") {
        answer(200, &json!({}))
    } else {
        answer(404, &json!({}))
    };
    let _ = stream.write_all(response.as_bytes()).await;
}

/// The fake's base URL, and the channel telling of the first refresh.
async fn start_fake(grace: bool) -> (String, Arc<Fake>, mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (arrived, rx) = mpsc::unbounded_channel();
    let fake = Arc::new(Fake { grace, seen: Mutex::new(Seen::default()), arrived, gate: Semaphore::new(0) });
    let shared = fake.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(shared.clone(), stream));
        }
    });
    (base, fake, rx)
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Connects Xero on a first server, has it refresh, kills it while the fake holds the rotated
/// pair, lets the fake answer into the dead connection, and starts a second server on the same
/// database. The second server, the session, the connection id and the fake.
async fn crash_mid_refresh(grace: bool, dir: &std::path::Path) -> (ServerProcess, String, String, Arc<Fake>) {
    let (fake_url, fake, mut arrived) = start_fake(grace).await;
    let catalog_file = dir.join("catalog.toml");
    std::fs::write(&catalog_file, xero_catalog(&fake_url, XeroCatalog { revocation: true, ..Default::default() }))
        .unwrap();
    let catalog_file = catalog_file.display().to_string();
    let db = database(dir);
    let port = free_port();
    let env = [
        ("OTESSE_CATALOG_FILE", catalog_file.as_str()),
        ("OTESSE_PROVIDERS__XERO__BASE_URL", fake_url.as_str()),
        ("OTESSE_PROVIDERS__XERO__CLIENT_ID", "client-1"),
        ("OTESSE_PROVIDERS__XERO__CLIENT_SECRET", "crash-client-secret"),
        ("OTESSE_OAUTH_REFRESH_LEASE_SECS", LEASE_SECS),
        ("OTESSE_PROVIDER_TIMEOUT_MS", TIMEOUT_MS),
        ("OTESSE_JOBS__ENABLED", "false"),
    ];
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let server = tokio::task::block_in_place(|| start_with(dir, port, &fake_url, &db, &env));
    let base = server.base.clone();
    let token = server.admin(&client).await;

    let connect = client
        .post(format!("{base}/v1/integrations/providers/xero/connect"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, started) = json_of(connect).await;
    assert_eq!(status, 200, "{started}");
    let url = url::Url::parse(started["authorization_url"].as_str().unwrap()).unwrap();
    let state = url.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let back = client
        .get(format!("{base}/v1/integrations/oauth/callback?state={state}&code=crash-code"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let (status, connection) = json_of(back).await;
    assert_eq!(status, 201, "{connection}");
    let id = connection["id"].as_str().unwrap().to_owned();

    // The access token came with no lifetime left: the next call refreshes it.
    let check = format!("{base}/v1/integrations/connections/{id}/health-checks");
    let in_flight = {
        let (client, check, token) = (client.clone(), check.clone(), token.clone());
        tokio::spawn(async move { client.post(check).bearer_auth(token).json(&json!({})).send().await })
    };
    tokio::time::timeout(Duration::from_secs(30), arrived.recv()).await.expect("the refresh reached the fake");
    server.kill();
    // Now the provider answers: a rotated pair the dead server never stores.
    fake.gate.add_permits(1);
    assert!(in_flight.await.unwrap().is_err(), "the caller saw the server die");
    let answered = async {
        while !fake.seen.lock().unwrap().answered_after_kill {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), answered).await.expect("the held answer was sent");

    let server = tokio::task::block_in_place(|| start_with(dir, port, &fake_url, &db, &env));
    (server, token, id, fake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_the_token_answer_and_the_store_a_grace_period_keeps_the_connection_working() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token, id, fake) = crash_mid_refresh(true, dir.path()).await;
    let client = reqwest::Client::new();
    let base = &server.base;

    let check = format!("{base}/v1/integrations/connections/{id}/health-checks");
    let (status, checked) =
        json_of(client.post(&check).bearer_auth(&token).json(&json!({})).send().await.unwrap()).await;
    assert_eq!(status, 201, "{checked}");
    assert_eq!(checked["status"], "healthy");
    {
        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen.refreshes, [REFRESH_1, REFRESH_1], "the old refresh token, once more after the restart");
        assert_eq!(seen.bearers.last().map(String::as_str), Some(ACCESS_3), "the new access token was used");
        assert!(!seen.bearers.iter().any(|b| b == ACCESS_2), "the unstored pair was never used");
    }
    // The new pair was stored: the next refresh sends its refresh token.
    let (status, checked) =
        json_of(client.post(&check).bearer_auth(&token).json(&json!({})).send().await.unwrap()).await;
    assert_eq!(status, 201, "{checked}");
    assert_eq!(checked["status"], "healthy");
    {
        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen.refreshes, [REFRESH_1, REFRESH_1, REFRESH_3]);
        assert_eq!(seen.bearers.last().map(String::as_str), Some(ACCESS_4));
    }
    let (_, detail) = json_of(
        client.get(format!("{base}/v1/integrations/connections/{id}")).bearer_auth(&token).send().await.unwrap(),
    )
    .await;
    assert_eq!(detail["status"], "connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_the_token_answer_and_the_store_a_spent_refresh_token_asks_for_reauthorization() {
    let dir = tempfile::tempdir().unwrap();
    let (server, token, id, fake) = crash_mid_refresh(false, dir.path()).await;
    let client = reqwest::Client::new();
    let base = &server.base;

    let check = format!("{base}/v1/integrations/connections/{id}/health-checks");
    let (status, refused) =
        json_of(client.post(&check).bearer_auth(&token).json(&json!({})).send().await.unwrap()).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "reauthorization_required");
    assert_eq!(fake.seen.lock().unwrap().refreshes, [REFRESH_1, REFRESH_1]);

    let get = |path: String| client.get(format!("{base}{path}")).bearer_auth(&token).send();
    let (_, detail) = json_of(get(format!("/v1/integrations/connections/{id}")).await.unwrap()).await;
    assert_eq!(detail["status"], "needs_reauthorization", "never left connected and broken");
    let (_, notifications) = json_of(get("/v1/notifications".into()).await.unwrap()).await;
    assert_eq!(notifications["data"][0]["kind"], "integration.needs_reauthorization", "{notifications}");
    let (_, audited) =
        json_of(get("/v1/integrations/audit-log?action=integration.needs_reauthorization".into()).await.unwrap()).await;
    assert_eq!(audited["data"].as_array().map(Vec::len), Some(1), "{audited}");
    // Again: answered at once, without another token request.
    let (status, _) = json_of(client.post(&check).bearer_auth(&token).json(&json!({})).send().await.unwrap()).await;
    assert_ne!(status, 201);
    assert_eq!(fake.seen.lock().unwrap().refreshes.len(), 2);
}
