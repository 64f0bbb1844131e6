//! Two real processes: Otesse (served by this test process) and the bookings service (its own
//! process, `otesse-bookings`), talking over HTTP as they do in production. A `bookings.read`
//! key reads bookings, one without it gets Otesse's 403, a test key sees no live bookings, a
//! revoked key gets Otesse's 401 at the bookings service within a second, the bookings calls
//! show in the key's usage in Otesse, and with Otesse down only keys it verified lately pass.
//! Runs on SQLite, and on PostgreSQL too when `OTESSE_TEST_POSTGRES_URL` is set.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use otesse_server::config::Settings;
use otesse_server::key_invalidation::InvalidationFeed;
use otesse_server::startup::Application;
use otesse_storage::Database;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const SETUP_TOKEN: &str = "bookings-e2e-setup-token-0123";
const PASSWORD: &str = "a long test password";

struct Otesse {
    url: String,
    database_url: String,
    schema: Option<String>,
    db: Database,
    handle: actix_web::dev::ServerHandle,
    feed: InvalidationFeed,
    session: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Otesse {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, schema) = match std::env::var("OTESSE_TEST_POSTGRES_URL") {
            Ok(url) => (url, Some(format!("t_{}", uuid::Uuid::new_v4().simple()))),
            Err(_) => {
                eprintln!("OTESSE_TEST_POSTGRES_URL is not set: these end-to-end tests run on SQLite only");
                (format!("sqlite://{}", dir.path().join("otesse.db").display()), None)
            }
        };
        let mut settings = Settings {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_owned(),
            setup_token: Some(SETUP_TOKEN.to_owned().into()),
            workers: Some(2),
            shutdown_timeout_secs: 5,
            database_url: Some(database_url.clone()),
            database_schema: schema.clone(),
            ..Settings::default()
        };
        settings.jobs.enabled = false;
        let db = Database::connect(&database_url, schema.as_deref()).await.unwrap();
        let app = Application::build_with(settings, db.clone()).await.unwrap();
        let url = format!("http://127.0.0.1:{}", app.port());
        let (handle, feed) = (app.handle(), app.invalidation_feed());
        tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::new();
        let setup = json!({"setup_token": SETUP_TOKEN, "organization_name": "Acme Cleaning",
                           "email": "admin@acme.test", "password": PASSWORD});
        let answer = http.post(format!("{url}/v1/setup")).json(&setup).send().await.unwrap();
        assert_eq!(answer.status(), 201);
        let signed_in: Value = http
            .post(format!("{url}/v1/sessions"))
            .json(&json!({"email": "admin@acme.test", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = signed_in["token"].as_str().unwrap().to_owned();
        Self { url, database_url, schema, db, handle, feed, session, http, _dir: dir }
    }

    /// Makes a key; returns `(plaintext, id)`.
    async fn key(&self, name: &str, environment: &str, scopes: &[&str]) -> (String, String) {
        let body = json!({"name": name, "scope_level": "read_write", "scopes": scopes,
                          "expires_in": "90d", "environment": environment, "allowed_ips": []});
        let answer = self.http.post(format!("{}/v1/api-keys", self.url)).bearer_auth(&self.session).json(&body);
        let answer = answer.send().await.unwrap();
        assert_eq!(answer.status(), 201);
        let created: Value = answer.json().await.unwrap();
        (created["key"].as_str().unwrap().to_owned(), created["id"].as_str().unwrap().to_owned())
    }

    async fn revoke(&self, id: &str) {
        let answer = self.http.post(format!("{}/v1/api-keys/{id}/revoke", self.url)).bearer_auth(&self.session);
        assert_eq!(answer.json(&json!({})).send().await.unwrap().status(), 200);
    }

    async fn key_detail(&self, id: &str) -> Value {
        let answer = self.http.get(format!("{}/v1/api-keys/{id}", self.url)).bearer_auth(&self.session);
        answer.send().await.unwrap().json().await.unwrap()
    }

    async fn service_token(&self) -> String {
        let tokens = otesse_server::service_tokens::service(
            &self.db,
            Arc::new(otesse_crypto::Sha256KeyHasher),
            Arc::new(otesse_crypto::RandomSecretGenerator::new()),
            Arc::new(otesse_server::support::SystemClock),
        );
        tokens.create("bookings").await.unwrap().1.expose_secret().to_owned()
    }

    async fn stop(&self) {
        self.feed.close();
        self.handle.stop(true).await;
    }
}

/// The bookings service, in its own process.
struct Bookings {
    url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Bookings {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bookings {
    fn start(env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_otesse-bookings"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BOOKINGS_LISTEN", "127.0.0.1:0")
            .env("BOOKINGS_DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("bookings.db").display()))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("bookings said {line:?}")).to_owned();
        Self { url, child, _dir: dir }
    }

    async fn get(&self, key: &str) -> (StatusCode, Value) {
        let answer =
            reqwest::Client::new().get(format!("{}/v1/bookings", self.url)).bearer_auth(key).send().await.unwrap();
        (answer.status(), answer.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, key: &str, customer: &str) -> (StatusCode, Value) {
        let body = json!({"customer_name": customer, "service": "Deep clean", "starts_at": "2026-12-24T09:00:00Z"});
        let answer = reqwest::Client::new().post(format!("{}/v1/bookings", self.url)).bearer_auth(key).json(&body);
        let answer = answer.send().await.unwrap();
        (answer.status(), answer.json().await.unwrap_or(Value::Null))
    }

    async fn health(&self) -> Value {
        reqwest::get(format!("{}/healthz", self.url)).await.unwrap().json().await.unwrap()
    }
}

/// Polls `probe` until it returns `Some`, for at most `limit`.
async fn within<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    mut probe: impl FnMut() -> F,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn names(page: &Value) -> Vec<&str> {
    page["data"].as_array().unwrap().iter().map(|b| b["customer_name"].as_str().unwrap()).collect()
}

/// Scopes, environments and revocation, the same whichever way the service checks keys.
async fn keys_protect_bookings(otesse: &Otesse, bookings: &Bookings, revocation_within: Duration) {
    let (live, live_id) = otesse.key("Bookings live", "live", &["bookings.read", "bookings.write"]).await;
    let (test, _) = otesse.key("Bookings test", "test", &["bookings.read", "bookings.write"]).await;
    let (customers, _) = otesse.key("Customers only", "live", &["customers.read"]).await;

    let (status, made) = bookings.post(&live, "Ada Lovelace").await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["environment"], "live");
    assert_eq!(bookings.post(&test, "Test Customer").await.0, 201);
    let (status, page) = bookings.get(&live).await;
    assert_eq!((status, names(&page)), (StatusCode::OK, vec!["Ada Lovelace"]));
    let (_, page) = bookings.get(&test).await;
    assert_eq!(names(&page), vec!["Test Customer"], "a test key sees test bookings only");

    // Otesse's own answers, relayed as they are.
    let (status, refused) = bookings.get(&customers).await;
    assert_eq!(status, 403);
    assert_eq!(
        refused,
        json!({"error": {"type": "permission_error", "code": "scope_missing",
                         "message": "This API key is missing the bookings.read scope."}})
    );
    let (status, refused) = bookings.post(&customers, "Nobody").await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("scope_missing")));
    let unknown = format!("erp_live_{}", "Q".repeat(40));
    let (status, refused) = bookings.get(&unknown).await;
    assert_eq!(
        (status, refused["error"]["message"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid API key provided."))
    );
    let anonymous = reqwest::get(format!("{}/v1/bookings", bookings.url)).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let own = reqwest::get(format!("{}/v1/customers", otesse.url)).await.unwrap();
    assert_eq!(anonymous.json::<Value>().await.unwrap(), own.json::<Value>().await.unwrap(), "as Otesse answers");

    // Revoked in Otesse: refused at the bookings service within the promised time.
    otesse.revoke(&live_id).await;
    let revoked_at = Instant::now();
    let refused = within(revocation_within, || async {
        let (status, body) = bookings.get(&live).await;
        (status == StatusCode::UNAUTHORIZED).then_some(body)
    })
    .await
    .unwrap_or_else(|| panic!("the revoked key still passed after {revocation_within:?}"));
    assert_eq!(refused["error"]["message"], "This API key has been revoked.");
    eprintln!("revoked key refused at the bookings service after {:?}", revoked_at.elapsed());

    // The bookings calls are the key's use, in Otesse.
    let used = within(Duration::from_secs(10), || async {
        let detail = otesse.key_detail(&live_id).await;
        let recent = detail["recent_requests"].as_array().cloned().unwrap_or_default();
        (recent.len() >= 2).then_some(recent)
    })
    .await
    .expect("the bookings calls reached the key's usage log");
    let calls: Vec<(&str, &str, u64)> = used
        .iter()
        .map(|r| (r["method"].as_str().unwrap(), r["endpoint"].as_str().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert!(calls.contains(&("POST", "/v1/bookings", 200)), "{calls:?}");
    assert!(calls.contains(&("GET", "/v1/bookings", 200)), "{calls:?}");
}

#[tokio::test]
async fn the_bookings_service_trusts_otesse_through_the_verification_api() {
    let otesse = Otesse::start().await;
    let token = otesse.service_token().await;
    let bookings = Bookings::start(&[("OTESSE_URL", otesse.url.clone()), ("OTESSE_SERVICE_TOKEN", token)]);
    within(Duration::from_secs(10), || async { (bookings.health().await["guard"]["listening"] == true).then_some(()) })
        .await
        .expect("the bookings service listens to Otesse's invalidations");

    keys_protect_bookings(&otesse, &bookings, Duration::from_secs(1)).await;

    // Two keys verified lately; one revoked: the stream drops it from the bookings cache
    // before anyone uses it again.
    let (kept, _) = otesse.key("Kept", "live", &["bookings.read"]).await;
    let (dropped, dropped_id) = otesse.key("Dropped", "live", &["bookings.read"]).await;
    assert_eq!(bookings.get(&kept).await.0, 200);
    assert_eq!(bookings.get(&dropped).await.0, 200);
    let cached = bookings.health().await["guard"]["cached_keys"].as_u64().unwrap();
    otesse.revoke(&dropped_id).await;
    within(Duration::from_secs(1), || async {
        (bookings.health().await["guard"]["cached_keys"].as_u64() == Some(cached - 1)).then_some(())
    })
    .await
    .expect("the revocation reached the bookings cache through the stream within a second");

    // Otesse down: only keys it verified lately pass, and never an unknown or revoked one.
    otesse.stop().await;
    assert_eq!(bookings.get(&kept).await.0, 200, "a key verified lately passes while Otesse is down");
    let (status, refused) = bookings.get(&dropped).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("service_unavailable"))
    );
    let (status, _) = bookings.get(&format!("erp_live_{}", "Z".repeat(40))).await;
    assert_eq!(status, 503, "a key Otesse never confirmed is never let through");
}

#[tokio::test]
async fn the_bookings_service_embeds_otesse_s_key_check_on_its_database() {
    let otesse = Otesse::start().await;
    let mut env = vec![
        ("BOOKINGS_GUARD", "embedded".to_owned()),
        ("OTESSE_DATABASE_URL", otesse.database_url.clone()),
        // SQLite has no notices between processes: a revocation reaches the embedded cache
        // when the entry's time is up (with PostgreSQL, at once).
        ("OTESSE_KEY_CACHE__TTL_SECS", "1".to_owned()),
        ("OTESSE_USAGE__FLUSH_INTERVAL_MS", "50".to_owned()),
    ];
    if let Some(schema) = &otesse.schema {
        env.push(("OTESSE_DATABASE_SCHEMA", schema.clone()));
    }
    let bookings = Bookings::start(&env);
    let within_time = if otesse.schema.is_some() { Duration::from_secs(1) } else { Duration::from_secs(3) };
    keys_protect_bookings(&otesse, &bookings, within_time).await;
}

/// The README's bookings block (after `<!-- readme-test: bookings -->`) and the answer it shows.
fn readme_block() -> (String, String) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let (_, after) = readme.split_once("<!-- readme-test: bookings -->").expect("the README's bookings block");
    let mut fences = after.split("```").skip(1);
    let code = fences.next().unwrap().strip_prefix("sh\n").expect("an sh block").to_owned();
    fences.next();
    let expected = fences.next().unwrap().strip_prefix("text\n").expect("its answer").to_owned();
    (code, expected)
}

#[tokio::test]
async fn the_readme_s_bookings_block_runs_as_written() {
    let otesse = Otesse::start().await;
    let token = otesse.service_token().await;
    let bookings = Bookings::start(&[("OTESSE_URL", otesse.url.clone()), ("OTESSE_SERVICE_TOKEN", token)]);
    let (customers_key, _) = otesse.key("Zapier", "live", &["customers.read", "customers.write"]).await;
    let (code, expected) = readme_block();
    let code = code.replace("http://127.0.0.1:8090", &bookings.url);
    let output = tokio::process::Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &code])
        .env("BASE", &otesse.url)
        .env("SESSION", &otesse.session)
        .env("KEY", &customers_key)
        .stderr(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
}
