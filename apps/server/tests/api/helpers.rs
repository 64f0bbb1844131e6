//! `spawn_app()` and the client helpers every test uses.

mod process;

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use otesse_domain::organization::{Organization, OrganizationId, OrganizationName};
use otesse_domain::ports::{PasswordHasher, UserRepository};
use otesse_domain::user::{Email, Role, User, UserId};
use otesse_server::config::Settings;
use otesse_server::startup::Application;
use otesse_server::usage::UsageQueue;
use otesse_storage::Database;
use reqwest::{Method, RequestBuilder, StatusCode};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use serde_json::{Value as Json, json};
use uuid::Uuid;

pub use process::{ServerCommand, ServerProcess};

pub const SETUP_TOKEN: &str = "test-setup-token-0123456789";
pub const ADMIN_EMAIL: &str = "admin@acme.test";
pub const PASSWORD: &str = "a long test password";

/// Everything the server logged, across all tests of this binary (for secret scans).
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

#[derive(Clone)]
struct BufferWriter;

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        tracing_subscriber::fmt()
            // The fake providers (wiremock) log what they receive, credentials included: they are
            // test doubles, not the server, so their lines are left out of the secret scans.
            .with_env_filter("debug,hyper=info,h2=info,mio=info,wiremock=off")
            .with_writer(|| BufferWriter)
            .with_ansi(false)
            .init();
    });
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: Database,
    pub raw: DatabaseConnection,
    pub usage: UsageQueue,
    pub handle: actix_web::dev::ServerHandle,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The SQLite file, when the test runs on SQLite.
    pub sqlite_file: Option<PathBuf>,
    /// The PostgreSQL schema, when the test runs on PostgreSQL.
    pub schema: Option<String>,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the application with default test settings, adjusted by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_owned(),
        setup_token: Some(SETUP_TOKEN.to_owned().into()),
        workers: Some(2),
        shutdown_timeout_secs: 5,
        ..Settings::default()
    };
    // The worker would check every connection's health on its own schedule and add to the
    // histories tests count; tests of the worker turn it back on.
    settings.jobs.enabled = false;
    let (url, schema, sqlite_file) = match std::env::var("OTESSE_TEST_POSTGRES_URL") {
        Ok(url) => (url, Some(format!("t_{}", Uuid::new_v4().simple())), None),
        Err(_) => {
            let file = dir.path().join("otesse.db");
            (format!("sqlite://{}", file.display()), None, Some(file))
        }
    };
    settings.database_url = Some(url);
    settings.database_schema = schema;
    adjust(&mut settings);
    // `adjust` may point the app at another app's database (several servers, one database).
    let url = settings.database_url.clone().unwrap_or_default();
    let schema = settings.database_schema.clone();
    let sqlite_file = match url.strip_prefix("sqlite://") {
        Some(path) if sqlite_file.is_some() => Some(PathBuf::from(path)),
        _ => sqlite_file,
    };

    let db = Database::connect(&url, schema.as_deref()).await.unwrap();
    let mut options = sea_orm::ConnectOptions::new(url);
    if let Some(schema) = &schema {
        options.set_schema_search_path(schema.clone());
    }
    let raw = sea_orm::Database::connect(options).await.unwrap();
    let app = Application::build_with(settings, db.clone()).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let usage = app.usage_queue();
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        db,
        raw,
        usage,
        handle,
        server,
        sqlite_file,
        schema,
        _dir: dir,
    }
}

/// A response read once: status, headers and JSON body (Null when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Json,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Json::Null);
        Self { status, headers, text, body }
    }

    /// Asserts the P4 error shape and returns `(code, message)`.
    pub fn error(&self) -> (String, String) {
        let error = &self.body["error"];
        assert!(error["type"].is_string(), "no error shape in {}: {}", self.status, self.text);
        (error["code"].as_str().unwrap().to_owned(), error["message"].as_str().unwrap().to_owned())
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Json {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        &self.body
    }

    /// Asserts the status and the error code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        let (actual, message) = self.error();
        assert_eq!(actual, code, "message: {message}");
        message
    }
}

impl TestApp {
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The database this app runs on, as `OTESSE_DATABASE_URL` names it (with [`Self::schema`]
    /// on PostgreSQL): for a second process, or a command like `rewrap`, on the same data.
    pub fn database_url(&self) -> String {
        match &self.sqlite_file {
            Some(file) => format!("sqlite://{}", file.display()),
            None => std::env::var("OTESSE_TEST_POSTGRES_URL").unwrap_or_default(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn send(&self, builder: RequestBuilder) -> Answer {
        Answer::read(builder.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(self.request(Method::GET, path).bearer_auth(token)).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Json) -> Answer {
        self.send(self.request(Method::POST, path).bearer_auth(token).json(body)).await
    }

    pub async fn setup(&self) -> Answer {
        let body = json!({
            "setup_token": SETUP_TOKEN,
            "organization_name": "Acme Cleaning",
            "email": ADMIN_EMAIL,
            "password": PASSWORD,
        });
        self.send(self.request(Method::POST, "/v1/setup").json(&body)).await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Answer {
        self.send(self.request(Method::POST, "/v1/sessions").json(&json!({"email": email, "password": password}))).await
    }

    /// Runs setup and signs the admin in; returns the admin's session token.
    pub async fn admin(&self) -> String {
        self.setup().await.expect(201);
        self.session(ADMIN_EMAIL).await
    }

    pub async fn session(&self, email: &str) -> String {
        self.sign_in(email, PASSWORD).await.expect(201)["token"].as_str().unwrap().to_owned()
    }

    /// Adds a user with `role` (as the admin) and signs them in.
    pub async fn user(&self, admin: &str, email: &str, role: &str) -> String {
        self.post("/v1/users", admin, &json!({"email": email, "password": PASSWORD, "role": role})).await.expect(201);
        self.session(email).await
    }

    pub async fn create_key(&self, session: &str, body: Json) -> Answer {
        self.post("/v1/api-keys", session, &body).await
    }

    /// Creates a key and returns `(plaintext, id)`.
    pub async fn key(&self, session: &str, body: Json) -> (String, String) {
        let answer = self.create_key(session, body).await;
        let body = answer.expect(201);
        (body["key"].as_str().unwrap().to_owned(), body["id"].as_str().unwrap().to_owned())
    }

    /// A read-write live key for customers.
    pub async fn customers_key(&self, session: &str, environment: &str) -> String {
        self.key(session, key_body(&format!("customers {environment} {}", Uuid::new_v4()), environment)).await.0
    }

    /// A platform service token, made the way the operator makes one (through the service,
    /// straight on the database), and that service, to revoke it.
    pub async fn service_token(&self, name: &str) -> (String, otesse_domain::service_token::ServiceTokenService) {
        use secrecy::ExposeSecret;
        let tokens = otesse_server::service_tokens::service(
            &self.db,
            std::sync::Arc::new(otesse_crypto::Sha256KeyHasher),
            std::sync::Arc::new(otesse_crypto::RandomSecretGenerator::new()),
            std::sync::Arc::new(otesse_server::support::SystemClock),
        );
        let (_, plaintext) = tokens.create(name).await.unwrap();
        (plaintext.expose_secret().to_owned(), tokens)
    }

    pub async fn flush_usage(&self) {
        self.usage.flush().await;
    }

    pub async fn key_count(&self, session: &str) -> usize {
        self.get("/v1/api-keys", session).await.expect(200)["data"].as_array().unwrap().len()
    }

    /// Runs SQL with positional parameters written `$1, $2, ...` (rewritten for SQLite).
    pub async fn sql(&self, sql: &str, values: Vec<Value>) -> u64 {
        let backend = self.raw.get_database_backend();
        let sql = match backend {
            sea_orm::DatabaseBackend::Postgres => sql.to_owned(),
            _ => {
                let mut out = sql.to_owned();
                for n in (1..=values.len()).rev() {
                    out = out.replace(&format!("${n}"), "?");
                }
                out
            }
        };
        self.raw.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await.unwrap().rows_affected()
    }

    /// A second organization with its own admin (there is no public route for it: the
    /// platform provisions organizations). Returns the admin's session token.
    pub async fn other_organization(&self, email: &str) -> String {
        let now = chrono::Utc::now();
        let org = Organization {
            id: OrganizationId(Uuid::now_v7()),
            name: OrganizationName::parse("Other Org").unwrap(),
            created_at: now,
        };
        self.sql(
            "INSERT INTO organizations (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)",
            vec![org.id.0.into(), "Other Org".into(), now.into(), now.into()],
        )
        .await;
        let user = User {
            id: UserId(Uuid::now_v7()),
            organization_id: org.id,
            email: Email::parse(email).unwrap(),
            name: None,
            role: Role::Admin,
            status: otesse_domain::user::UserStatus::Active,
            created_at: now,
        };
        let hash = otesse_crypto::Argon2PasswordHasher::new().hash(&PASSWORD.to_owned().into()).await.unwrap();
        self.db.users().insert(&user, &hash).await.unwrap();
        self.session(email).await
    }

    /// Stops the server the way SIGTERM does and waits for it to finish.
    pub async fn stop(self) -> (Database, DatabaseConnection, Option<PathBuf>, tempfile::TempDir) {
        self.handle.stop(true).await;
        self.server.await.unwrap().unwrap();
        (self.db, self.raw, self.sqlite_file, self._dir)
    }
}

/// A create-key body with sensible defaults: a read-write key on customers.
pub fn key_body(name: &str, environment: &str) -> Json {
    json!({
        "name": name,
        "description": "integration test key",
        "scope_level": "read_write",
        "scopes": ["customers.read", "customers.write"],
        "expires_in": "90d",
        "environment": environment,
        "allowed_ips": [],
    })
}

/// Polls `probe` until it returns `Some`, for at most 15 seconds.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// What a test's Xero catalog entry holds beyond the common part (see [`xero_catalog`]).
#[derive(Default)]
pub struct XeroCatalog {
    /// The fake's `/revoke` as the revocation endpoint.
    pub revocation: bool,
    /// `refresh_token_lifetime_days`, when given.
    pub refresh_token_lifetime_days: Option<u32>,
}

/// A deployment's own catalog entry for Xero (OAuth2 with PKCE and rotating refresh tokens)
/// whose authorization and token endpoints are the fake authorization server at `fake_base`.
pub fn xero_catalog(fake_base: &str, extra: XeroCatalog) -> String {
    let mut catalog = format!(
        r#"
[[providers]]
slug = "xero"
name = "Xero"
description = "Accounting"
logo_url = "/assets/logos/xero.svg"
category = "accounting"
auth_type = "oauth2"
docs_url = "https://developer.xero.com/"

[providers.oauth]
authorization_url = "{fake_base}/authorize"
token_url = "{fake_base}/token"
"#
    );
    if extra.revocation {
        catalog.push_str(&format!("revocation_url = \"{fake_base}/revoke\"\n"));
    }
    catalog.push_str(
        r#"scopes = ["offline_access", "accounting.transactions"]
pkce = true
refresh_token_rotation = true
"#,
    );
    if let Some(days) = extra.refresh_token_lifetime_days {
        catalog.push_str(&format!("refresh_token_lifetime_days = {days}\n"));
    }
    catalog
}
