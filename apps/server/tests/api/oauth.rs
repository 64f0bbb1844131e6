//! OAuth2 providers end to end (I12) against a fake authorization server (wiremock) standing in
//! for Xero: its authorize step is played by the test (it reads the authorization URL and calls
//! the callback as the browser would), its token endpoint checks the PKCE verifier against the
//! challenge, rotates refresh tokens and answers `invalid_grant`, and it takes revocations.

use std::sync::{Arc, Mutex};

use base64::Engine;
use otesse_server::config::ProviderSettings;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{TestApp, XeroCatalog, captured_logs, eventually, spawn_app_with, xero_catalog};

mod crash;

const CLIENT_SECRET: &str = "oauth-client-secret-canary-51c2";
const ACCESS_1: &str = "oauth-access-canary-1-9d04e";
const REFRESH_1: &str = "oauth-refresh-canary-1-77ab1";
const ACCESS_2: &str = "oauth-access-canary-2-c3e85";
const REFRESH_2: &str = "oauth-refresh-canary-2-0f6d2";
const CODE: &str = "oauth-code-canary-2e1f0";

async fn fake_xero() -> MockServer {
    let server = MockServer::start().await;
    for token in [ACCESS_1, ACCESS_2] {
        Mock::given(method("GET"))
            .and(path("/connections"))
            .and(header("Authorization", format!("Bearer {token}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"tenantId": "t-1"}])))
            .mount(&server)
            .await;
    }
    Mock::given(method("POST")).and(path("/revoke")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    server
}

async fn app_with(
    fake: &MockServer,
    dir: &tempfile::TempDir,
    adjust: impl FnOnce(&mut otesse_server::config::Settings),
) -> TestApp {
    let file = dir.path().join("catalog.toml");
    std::fs::write(
        &file,
        xero_catalog(&fake.uri(), XeroCatalog { revocation: true, refresh_token_lifetime_days: Some(60) }),
    )
    .unwrap();
    let uri = fake.uri();
    spawn_app_with(move |s| {
        s.catalog_file = Some(file);
        s.providers.insert(
            "xero".into(),
            ProviderSettings {
                base_url: Some(uri),
                client_id: Some("client-1".into()),
                client_secret: Some(CLIENT_SECRET.to_owned().into()),
                ..Default::default()
            },
        );
        s.provider_timeout_ms = 3_000;
        adjust(s);
    })
    .await
}

/// The query parameters of the authorization URL connect answered.
fn authorization(answer: &Value) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(answer["authorization_url"].as_str().unwrap()).unwrap();
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn form(request: &Request) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(&request.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The token endpoint's PKCE check (RFC 7636 4.6): BASE64URL(SHA256(verifier)) == challenge.
struct Pkce(String);

impl wiremock::Match for Pkce {
    fn matches(&self, request: &Request) -> bool {
        let form = form(request);
        form.get("code_verifier").is_some_and(|verifier| {
            let digest = otesse_crypto::sha256(verifier.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == self.0
        })
    }
}

/// Client authentication by HTTP Basic with the deployment's registration.
fn basic() -> String {
    let pair = format!("client-1:{CLIENT_SECRET}");
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

fn grant(access: &str, refresh: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        json!({"access_token": access, "refresh_token": refresh, "expires_in": expires_in, "token_type": "Bearer"}),
    )
}

fn invalid_grant() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"}))
}

/// Mounts the code exchange: with this challenge's verifier and the code, a grant; anything
/// else at the token endpoint, `invalid_grant`.
async fn exchange(fake: &MockServer, challenge: &str, expires_in: u64) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("Authorization", basic().as_str()))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains(format!("code={CODE}")))
        .and(Pkce(challenge.to_owned()))
        .respond_with(grant(ACCESS_1, REFRESH_1, expires_in))
        .with_priority(1)
        .mount(fake)
        .await;
    Mock::given(method("POST")).and(path("/token")).respond_with(invalid_grant()).with_priority(10).mount(fake).await;
}

async fn callback(app: &TestApp, query: &str, json: bool) -> reqwest::Response {
    let mut request = app.client.get(app.url(&format!("/v1/integrations/oauth/callback?{query}")));
    if json {
        request = request.header("Accept", "application/json");
    }
    request.send().await.unwrap()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = app.raw.get_database_backend();
    let row = app
        .raw
        .query_one_raw(Statement::from_string(backend, format!("SELECT COUNT(*) AS n FROM {table}")))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// Connects Xero through the callback; the connection id.
async fn connect(app: &TestApp, fake: &MockServer, session: &str, expires_in: u64) -> String {
    let started = app.post("/v1/integrations/providers/xero/connect", session, &json!({})).await;
    let params = authorization(started.expect(200));
    exchange(fake, &params["code_challenge"], expires_in).await;
    let back = callback(app, &format!("state={}&code={CODE}", params["state"]), true).await;
    assert_eq!(back.status(), 201);
    let body: Value = back.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_full_connect_through_the_callback_seals_the_tokens_and_a_disconnect_revokes_them() {
    let fake = fake_xero().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(&fake, &dir, |_| {}).await;
    let admin = app.admin().await;

    let listed = app.get("/v1/integrations/providers/xero", &admin).await;
    assert_eq!(listed.expect(200)["available"], true, "registered: available");
    let started = app.post("/v1/integrations/providers/xero/connect", &admin, &json!({})).await;
    let answer = started.expect(200).clone();
    let params = authorization(&answer);
    assert!(answer["authorization_url"].as_str().unwrap().starts_with(&format!("{}/authorize?", fake.uri())));
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], "client-1");
    assert_eq!(params["redirect_uri"], format!("{}/v1/integrations/oauth/callback", app.address));
    assert_eq!(params["scope"], "offline_access accounting.transactions");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["state"].len(), 43);
    exchange(&fake, &params["code_challenge"], 1800).await;

    // The browser comes back: it lands on Connected Apps.
    let back = callback(&app, &format!("state={}&code={CODE}", params["state"]), false).await;
    assert_eq!(back.status(), 303);
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/settings/integrations/connected?connected="), "{location}");
    let id = location.rsplit('=').next().unwrap().to_owned();
    let connections = app.get("/v1/integrations/connections", &admin).await;
    let connection = connections.expect(200)["data"][0].clone();
    assert_eq!(connection["id"], id.as_str());
    assert_eq!(connection["auth_method"], "oauth2");
    assert_eq!(connection["status"], "connected");
    assert_eq!(connection["health"]["status"], "healthy");
    assert_eq!(count(&app, "integration_oauth_authorizations").await, 0, "the state was used up");

    // The same state again: refused, as a redirect and as JSON.
    let again = callback(&app, &format!("state={}&code={CODE}", params["state"]), false).await;
    let location = again.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("error=oauth_state_invalid"), "{location}");
    let again = callback(&app, &format!("state={}&code={CODE}", params["state"]), true).await;
    assert_eq!(again.status(), 400);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], "oauth_state_invalid");

    // Canary: the tokens, the code and the client secret are nowhere in plaintext.
    for table in ["integration_oauth_tokens", "integration_oauth_authorizations", "audit_log", "webhook_events"] {
        let dump = dump(&app, table).await;
        for secret in [ACCESS_1, REFRESH_1, CODE, CLIENT_SECRET] {
            assert!(!dump.contains(secret), "{secret} in {table}");
        }
    }
    let detail = app.get(&format!("/v1/integrations/connections/{id}"), &admin).await;
    let shown = detail.expect(200).to_string() + &answer.to_string();
    for secret in [ACCESS_1, REFRESH_1, CODE, CLIENT_SECRET] {
        assert!(!shown.contains(secret), "{secret} in a response");
    }

    // Disconnect: revoked at the provider with the refresh token, then forgotten.
    let gone = app
        .send(app.request(reqwest::Method::DELETE, &format!("/v1/integrations/connections/{id}")).bearer_auth(&admin))
        .await;
    assert_eq!(gone.status, 204);
    let revocations: Vec<_> =
        fake.received_requests().await.unwrap().into_iter().filter(|r| r.url.path() == "/revoke").collect();
    assert_eq!(revocations.len(), 1);
    assert_eq!(form(&revocations[0]).get("token").map(String::as_str), Some(REFRESH_1));
    assert_eq!(revocations[0].headers["authorization"].to_str().unwrap(), basic());
    assert_eq!(count(&app, "integration_oauth_tokens").await, 0);

    let logs = captured_logs();
    for secret in [ACCESS_1, REFRESH_1, CODE, CLIENT_SECRET] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}

/// Every value of a table as text, ciphertexts included (as lossy UTF-8).
async fn dump(app: &TestApp, table: &str) -> String {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = app.raw.get_database_backend();
    let rows = app.raw.query_all_raw(Statement::from_string(backend, format!("SELECT * FROM {table}"))).await.unwrap();
    let mut out = String::new();
    for row in rows {
        for column in row.column_names() {
            if let Ok(Some(text)) = row.try_get::<Option<String>>("", &column) {
                out.push_str(&text);
            } else if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>>("", &column) {
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
            out.push('|');
        }
    }
    out
}

#[tokio::test]
async fn a_wrong_state_a_denial_and_a_wrong_verifier_leave_nothing_behind() {
    let fake = fake_xero().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(&fake, &dir, |_| {}).await;
    let admin = app.admin().await;

    let unknown = callback(&app, &format!("state=not-a-state&code={CODE}"), true).await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(unknown.json::<Value>().await.unwrap()["error"]["code"], "oauth_state_invalid");

    // Denied on the consent page.
    let first =
        authorization(app.post("/v1/integrations/providers/xero/connect", &admin, &json!({})).await.expect(200));
    let denied = callback(&app, &format!("state={}&error=access_denied", first["state"]), true).await;
    assert_eq!(denied.status(), 400);
    let body: Value = denied.json().await.unwrap();
    assert_eq!(body["error"]["code"], "authorization_denied");
    assert_eq!(body["error"]["message"], "Connection was cancelled. You denied access.");
    let denied = callback(&app, &format!("state={}&error=access_denied", first["state"]), false).await;
    assert!(denied.headers()["location"].to_str().unwrap().contains("error=oauth_state_invalid"), "used up");

    // A verifier that does not match the challenge the provider saw: the fake refuses the code.
    let second =
        authorization(app.post("/v1/integrations/providers/xero/connect", &admin, &json!({})).await.expect(200));
    let third =
        authorization(app.post("/v1/integrations/providers/xero/connect", &admin, &json!({})).await.expect(200));
    exchange(&fake, &second["code_challenge"], 1800).await;
    let wrong = callback(&app, &format!("state={}&code={CODE}", third["state"]), true).await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"]["code"], "authorization_failed");

    for table in ["integration_connections", "integration_oauth_tokens", "integration_credentials"] {
        assert_eq!(count(&app, table).await, 0, "nothing in {table}");
    }
    let token_calls = fake.received_requests().await.unwrap().into_iter().filter(|r| r.url.path() == "/token").count();
    assert_eq!(token_calls, 1, "a denial and an unknown state never reach the token endpoint");
}

#[tokio::test]
async fn a_failing_or_slow_token_endpoint_at_the_callback_answers_an_error_and_stores_nothing() {
    let fake = fake_xero().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(&fake, &dir, |_| {}).await;
    let admin = app.admin().await;
    // The first code exchange meets a token endpoint that fails (500), the second one that
    // answers too late (past the 3 s provider timeout), the third one that limits requests.
    let answers = [
        ResponseTemplate::new(500),
        grant(ACCESS_1, REFRESH_1, 1800).set_delay(std::time::Duration::from_secs(6)),
        ResponseTemplate::new(429),
    ];
    for (priority, answer) in (1u8..).zip(answers) {
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains("grant_type=authorization_code"))
            .respond_with(answer)
            .up_to_n_times(1)
            .with_priority(priority)
            .mount(&fake)
            .await;
    }

    for (status, code) in [(502, "provider_unreachable"), (502, "provider_unreachable"), (503, "provider_rate_limited")]
    {
        let params =
            authorization(app.post("/v1/integrations/providers/xero/connect", &admin, &json!({})).await.expect(200));
        let back = callback(&app, &format!("state={}&code={CODE}", params["state"]), true).await;
        assert_eq!(back.status(), status, "{code}");
        let body: Value = back.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(!body.to_string().contains(CODE), "the code is not echoed: {body}");
        // The state is spent: the browser cannot replay it against a recovered provider.
        let again = callback(&app, &format!("state={}&code={CODE}", params["state"]), true).await;
        assert_eq!(again.json::<Value>().await.unwrap()["error"]["code"], "oauth_state_invalid");
    }

    for table in ["integration_oauth_tokens", "integration_credentials"] {
        assert_eq!(count(&app, table).await, 0, "nothing in {table}");
    }
    let connections = app.get("/v1/integrations/connections", &admin).await;
    let live: Vec<_> =
        connections.expect(200)["data"].as_array().unwrap().iter().filter(|c| c["status"] == "connected").collect();
    assert!(live.is_empty(), "nothing connected: {live:?}");
    let token_calls = fake.received_requests().await.unwrap().into_iter().filter(|r| r.url.path() == "/token").count();
    assert_eq!(token_calls, 3, "one exchange per attempt, none retried with the spent code");
}

#[tokio::test]
async fn near_expiry_two_processes_refresh_once_and_invalid_grant_asks_for_reauthorization() {
    let fake = fake_xero().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(&fake, &dir, |_| {}).await;
    let admin = app.admin().await;
    // Sixty seconds to live: inside the refresh margin from the start.
    let id = connect(&app, &fake, &admin, 60).await;

    // A second process on the same database, with the same master key.
    let (url, schema, data_dir) = (app.database_url(), app.schema.clone(), app.data_dir().to_owned());
    let other = app_with(&fake, &dir, move |s| {
        s.database_url = Some(url);
        s.database_schema = schema;
        s.data_dir = data_dir;
    })
    .await;

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains(format!("refresh_token={REFRESH_1}")))
        .respond_with(move |request: &Request| {
            sink.lock().unwrap().push(form(request));
            // Slow enough for the other process to arrive while this refresh runs.
            grant(ACCESS_2, REFRESH_2, 1800).set_delay(std::time::Duration::from_millis(400))
        })
        .with_priority(1)
        .mount(&fake)
        .await;

    let check = format!("/v1/integrations/connections/{id}/health-checks");
    let empty = json!({});
    let (a, b) = tokio::join!(app.post(&check, &admin, &empty), other.post(&check, &admin, &empty));
    assert_eq!(a.expect(201)["status"], "healthy");
    assert_eq!(b.expect(201)["status"], "healthy");
    assert_eq!(seen.lock().unwrap().len(), 1, "one refresh reached the provider");

    // The rotated pair was stored: the next refresh sends the new refresh token, which the
    // provider now refuses.
    app.sql(
        "UPDATE integration_oauth_tokens SET access_expires_at = $1",
        vec![(chrono::Utc::now() - chrono::Duration::minutes(1)).into()],
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains(format!("refresh_token={REFRESH_2}")))
        .respond_with(invalid_grant())
        .with_priority(1)
        .expect(1)
        .mount(&fake)
        .await;
    let refused = app.post(&check, &admin, &json!({})).await;
    refused.expect_error(409, "reauthorization_required");
    let connection = app.get(&format!("/v1/integrations/connections/{id}"), &admin).await;
    assert_eq!(connection.expect(200)["status"], "needs_reauthorization");
    assert_eq!(count(&app, "integration_oauth_tokens").await, 0, "the refused tokens are gone");
    let notifications = app.get("/v1/notifications", &admin).await;
    let notifications = notifications.expect(200)["data"].clone();
    assert_eq!(notifications[0]["kind"], "integration.needs_reauthorization", "{notifications}");
    let audited = app.get("/v1/integrations/audit-log?action=integration.needs_reauthorization", &admin).await;
    assert_eq!(audited.expect(200)["data"].as_array().unwrap().len(), 1);

    // It can be connected again.
    let again = app.post("/v1/integrations/providers/xero/connect", &admin, &json!({})).await;
    again.expect(200);
}

/// Accepts `access` at the fake's health call.
async fn accept(fake: &MockServer, access: &str) {
    Mock::given(method("GET"))
        .and(path("/connections"))
        .and(header("Authorization", format!("Bearer {access}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"tenantId": "t-1"}])))
        .mount(fake)
        .await;
}

/// Starts a connect as `session`; the fake will grant `access` and `refresh` for `code`. The
/// authorization's parameters (state and challenge).
async fn start_with_grant(
    app: &TestApp,
    fake: &MockServer,
    session: &str,
    (code, access, refresh, expires_in): (&str, &str, &str, u64),
) -> std::collections::HashMap<String, String> {
    let params =
        authorization(app.post("/v1/integrations/providers/xero/connect", session, &json!({})).await.expect(200));
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains(format!("code={code}")))
        .and(Pkce(params["code_challenge"].clone()))
        .respond_with(grant(access, refresh, expires_in))
        .with_priority(1)
        .mount(fake)
        .await;
    accept(fake, access).await;
    params
}

fn requests_to<'a>(requests: &'a [Request], to: &str) -> Vec<&'a Request> {
    requests.iter().filter(|r| r.url.path() == to).collect()
}

#[tokio::test]
async fn a_grant_that_loses_the_race_at_the_store_is_revoked_and_answers_already_connected() {
    let fake = fake_xero().await;
    Mock::given(method("POST")).and(path("/token")).respond_with(invalid_grant()).with_priority(10).mount(&fake).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(&fake, &dir, |_| {}).await;
    let admin = app.admin().await;

    // Two tabs start a connect before either comes back: both pass the "not connected yet" check.
    let first = start_with_grant(&app, &fake, &admin, (CODE, ACCESS_1, REFRESH_1, 1800)).await;
    let second = start_with_grant(&app, &fake, &admin, ("oauth-code-canary-b-5a1", ACCESS_2, REFRESH_2, 1800)).await;
    let won = callback(&app, &format!("state={}&code={CODE}", first["state"]), true).await;
    assert_eq!(won.status(), 201);
    let lost = callback(&app, &format!("state={}&code=oauth-code-canary-b-5a1", second["state"]), true).await;
    assert_eq!(lost.status(), 409);
    assert_eq!(lost.json::<Value>().await.unwrap()["error"]["code"], "already_connected");

    let requests = fake.received_requests().await.unwrap();
    let revoked: Vec<String> =
        requests_to(&requests, "/revoke").into_iter().map(|r| form(r).get("token").cloned().unwrap()).collect();
    assert_eq!(revoked, [REFRESH_2, ACCESS_2], "exactly the losing grant's tokens are handed back");
    assert_eq!(count(&app, "integration_connections").await, 1);
    assert_eq!(count(&app, "integration_oauth_tokens").await, 1);
    let connections = app.get("/v1/integrations/connections", &admin).await;
    assert_eq!(connections.expect(200)["data"][0]["health"]["status"], "healthy", "the winner is untouched");
}

#[tokio::test]
async fn the_callback_refuses_a_user_who_lost_the_permission_or_was_deactivated_meanwhile() {
    let fake = fake_xero().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(&fake, &dir, |_| {}).await;
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager@acme.test", "manager").await;
    let leaver = app.user(&admin, "leaver@acme.test", "manager").await;
    let started = start_with_grant(&app, &fake, &manager, (CODE, ACCESS_1, REFRESH_1, 1800)).await;
    let leaving = start_with_grant(&app, &fake, &leaver, ("oauth-code-canary-c-88e", ACCESS_2, REFRESH_2, 1800)).await;

    let users = app.get("/v1/users", &admin).await;
    let id_of = |email: &str| {
        let users = users.expect(200)["data"].as_array().unwrap().clone();
        users.iter().find(|u| u["email"] == email).unwrap()["id"].as_str().unwrap().to_owned()
    };
    let (manager_id, leaver_id) = (id_of("manager@acme.test"), id_of("leaver@acme.test"));
    let patch = |id: String, body: Value| {
        let request = app.request(reqwest::Method::PATCH, &format!("/v1/users/{id}")).bearer_auth(&admin).json(&body);
        app.send(request)
    };
    patch(manager_id, json!({"role": "viewer"})).await.expect(200);
    patch(leaver_id, json!({"status": "deactivated"})).await.expect(200);

    let refused = callback(&app, &format!("state={}&code={CODE}", started["state"]), true).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"]["code"], "permission_denied");
    let refused = callback(&app, &format!("state={}&code=oauth-code-canary-c-88e", leaving["state"]), false).await;
    assert_eq!(refused.status(), 303);
    let location = refused.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/settings/integrations/connected?error=permission_denied"), "{location}");

    for table in ["integration_connections", "integration_oauth_tokens", "integration_instances"] {
        assert_eq!(count(&app, table).await, 0, "nothing in {table}");
    }
    let requests = fake.received_requests().await.unwrap();
    assert!(requests_to(&requests, "/token").is_empty(), "no code was exchanged");
}

/// The stored expiry of a connection's access token.
async fn expiry(app: &TestApp, id: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = app.raw.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "SELECT access_expires_at FROM integration_oauth_tokens WHERE connection_id = $1"
        }
        _ => "SELECT access_expires_at FROM integration_oauth_tokens WHERE connection_id = ?",
    };
    let id = uuid::Uuid::parse_str(id).unwrap();
    let row = app.raw.query_one_raw(Statement::from_sql_and_values(backend, sql, [id.into()])).await.unwrap()?;
    row.try_get::<Option<chrono::DateTime<chrono::Utc>>>("", "access_expires_at").unwrap()
}

async fn succeeded_refresh_jobs(app: &TestApp) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = app.raw.get_database_backend();
    let sql = "SELECT COUNT(*) AS n FROM jobs WHERE kind = 'token_refresh' AND state = 'succeeded'";
    let row = app.raw.query_one_raw(Statement::from_string(backend, sql)).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

#[tokio::test]
async fn the_background_job_refreshes_tokens_ahead_of_expiry_and_marks_refused_ones() {
    const NEAR_ACCESS: &str = "oauth-access-canary-near-1";
    const NEAR_REFRESH: &str = "oauth-refresh-canary-near-1";
    const FAR_REFRESH: &str = "oauth-refresh-canary-far-1";
    const REFUSED_REFRESH: &str = "oauth-refresh-canary-refused-1";
    let fake = fake_xero().await;
    Mock::given(method("POST")).and(path("/token")).respond_with(invalid_grant()).with_priority(10).mount(&fake).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(&fake, &dir, |s| {
        s.jobs.enabled = true;
        s.jobs.poll_interval_ms = 50;
        s.jobs.token_refresh_interval_secs = 1;
        s.jobs.token_refresh_window_secs = 600;
    })
    .await;
    let admin = app.admin().await;
    let second = app.user(&admin, "second@acme.test", "manager").await;
    let third = app.user(&admin, "third@acme.test", "manager").await;

    // Refused first (its refresh token answers invalid_grant), far, then near: eight minutes
    // to live, outside a call's five-minute margin, inside the job's ten-minute window.
    let refused = start_with_grant(&app, &fake, &third, ("code-refused", "at-refused", REFUSED_REFRESH, 300)).await;
    let refused = callback(&app, &format!("state={}&code=code-refused", refused["state"]), true).await;
    let refused = refused.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let far = start_with_grant(&app, &fake, &second, ("code-far", "at-far", FAR_REFRESH, 3600)).await;
    let far = callback(&app, &format!("state={}&code=code-far", far["state"]), true).await;
    let far = far.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let far_expiry = expiry(&app, &far).await.unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains(format!("refresh_token={NEAR_REFRESH}")))
        .respond_with(move |request: &Request| {
            sink.lock().unwrap().push(form(request));
            grant(ACCESS_2, REFRESH_2, 1800)
        })
        .with_priority(1)
        .mount(&fake)
        .await;
    let near = start_with_grant(&app, &fake, &admin, (CODE, NEAR_ACCESS, NEAR_REFRESH, 480)).await;
    let near = callback(&app, &format!("state={}&code={CODE}", near["state"]), true).await;
    let near = near.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    // Stored with eight minutes to live; the refreshed token has thirty.
    let fresh = chrono::Utc::now() + chrono::Duration::minutes(20);
    eventually("the job's refresh", || async { expiry(&app, &near).await.filter(|at| *at > fresh) }).await;
    // Two more runs after it: still exactly one refresh reached the provider.
    let runs = succeeded_refresh_jobs(&app).await;
    eventually("two more runs", || async { (succeeded_refresh_jobs(&app).await >= runs + 2).then_some(()) }).await;
    assert_eq!(seen.lock().unwrap().len(), 1, "one refresh for the near connection");
    assert_eq!(expiry(&app, &far).await, Some(far_expiry), "the far connection is untouched");

    let detail = app.get(&format!("/v1/integrations/connections/{refused}"), &admin).await;
    assert_eq!(detail.expect(200)["status"], "needs_reauthorization");
    assert_eq!(count(&app, "integration_oauth_tokens").await, 2, "the refused connection's tokens are gone");
    let audited = app.get("/v1/integrations/audit-log?action=integration.needs_reauthorization", &admin).await;
    assert_eq!(audited.expect(200)["data"].as_array().unwrap().len(), 1);
    let requests = fake.received_requests().await.unwrap();
    let refreshes: Vec<String> =
        requests_to(&requests, "/token").into_iter().filter_map(|r| form(r).get("refresh_token").cloned()).collect();
    assert!(!refreshes.iter().any(|t| t == FAR_REFRESH), "{refreshes:?}");
}
