//! `otesse-server demo`: the real server on a data directory of its own, with fake providers
//! and an organization filled the way a few weeks of use would fill it, so that every page of
//! the dashboard has something to show.
//!
//! What needs a past (keys created days ago, their usage, a key about to expire with its 14-,
//! 7- and 1-day warnings) is written through the domain services with a clock set back; the
//! rest goes through the public API like any client. The fake providers are started here and
//! nowhere else, and the demo refuses production mode and any data directory it did not make.

mod fake_providers;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use otesse_crypto::{RandomSecretGenerator, Sha256KeyHasher};
use otesse_domain::api_key::{ApiKeyId, ApiKeyPorts, ApiKeyService, CreateKeyInput, CreatedKey};
use otesse_domain::caller::Caller;
use otesse_domain::integration::PostmarkMailer;
use otesse_domain::notification::{ExpiryWarningPorts, ExpiryWarnings};
use otesse_domain::organization::OrganizationId;
use otesse_domain::ports::{Clock, UsageLog};
use otesse_domain::usage::UsageRecord;
use otesse_domain::user::{Actor, Role, SessionId, UserId};
use otesse_storage::Database;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::config::{Mode, Settings};
use crate::startup::{Application, StartupError};
use crate::support::{MemoryKeyGuessGuard, MokaKeyCache};
use fake_providers::{FakeProviders, credential};

/// Marks a data directory as the demo's own: the only kind it fills or reuses.
const MARKER: &str = "DEMO";
const DEFAULT_DIR: &str = "./demo-data";
const ORGANIZATION: &str = "Acme Cleaning (demo)";
/// Every demo user's password: printed, and of no value outside the demo.
pub const PASSWORD: &str = "demo password 1234";
pub const USERS: [(&str, Role); 3] =
    [("owner@acme.test", Role::Admin), ("manager@acme.test", Role::Manager), ("viewer@acme.test", Role::Viewer)];
const SLUGS: [&str; 7] = ["postmark", "stripe", "mapbox", "google_maps", "geoapify", "anthropic", "quo"];

/// Runs the demo until SIGINT/SIGTERM. `dir_given`: the data directory was chosen by flag or
/// variable; otherwise the demo uses `./demo-data`, never the product's `./data`.
#[allow(clippy::print_stderr)]
pub async fn run(mut settings: Settings, dir_given: bool) -> ExitCode {
    if settings.mode == Mode::Production {
        eprintln!("otesse-server: the demo runs in development mode only (OTESSE_MODE is production)");
        return ExitCode::FAILURE;
    }
    if !dir_given {
        settings.data_dir = PathBuf::from(DEFAULT_DIR);
    }
    let dir = settings.data_dir.clone();
    let resumed = match prepare(&dir) {
        Ok(resumed) => resumed,
        Err(message) => {
            eprintln!("otesse-server: {message}");
            return ExitCode::FAILURE;
        }
    };
    match serve(settings, resumed).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if !resumed && !dir.join(MARKER).exists() {
                // A fill that failed leaves nothing behind, so that the next try starts afresh.
                for file in ["otesse.db", "otesse.db-wal", "otesse.db-shm", "master.key"] {
                    let _ = std::fs::remove_file(dir.join(file));
                }
                let _ = std::fs::remove_dir(&dir);
            }
            eprintln!("otesse-server: demo: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `dir` holds a demo already (`true`: serve it again), is fresh (`false`), or holds
/// something else (refused).
fn prepare(dir: &Path) -> Result<bool, String> {
    if dir.join(MARKER).exists() {
        return Ok(true);
    }
    let occupied = dir.join("otesse.db").exists() || dir.join("master.key").exists();
    if occupied {
        return Err(format!(
            "{} holds an installation that is not a demo: the demo never fills or changes one. Pick another \
             directory with --data-dir, or leave it out to use {DEFAULT_DIR}",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(false)
}

async fn serve(mut settings: Settings, resumed: bool) -> Result<(), String> {
    let fakes = FakeProviders::start().map_err(|e| format!("cannot start the fake providers: {e}"))?;
    // The demo's database is always the SQLite file in its own directory.
    settings.database_url = None;
    settings.database_schema = None;
    settings.allow_loopback_urls = true;
    for slug in SLUGS {
        let provider = settings.providers.entry(slug.to_owned()).or_default();
        provider.base_url = Some(fakes.base_url.clone());
    }
    let token = RandomSecretGenerator::new();
    let setup_token: SecretString = otesse_domain::ports::SecretGenerator::base62(&token, 32);
    settings.setup_token = Some(setup_token.clone());
    let database = Database::connect(&settings.database_url(), None).await.map_err(|e| e.to_string())?;
    let app = Application::build_with(settings.clone(), database.clone()).await.map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let running = app.run_until_stopped();
    let fill = async {
        let outcome = if resumed {
            Ok(None)
        } else {
            let filled = fill(&settings, &database, &fakes, &base, &setup_token).await;
            if filled.is_ok() {
                let _ = std::fs::write(settings.data_dir.join(MARKER), "Made by `otesse-server demo`.\n");
            }
            filled.map(Some)
        };
        match outcome {
            Ok(filled) => {
                announce(&base, &settings.data_dir, &fakes, filled.as_ref());
                Ok(())
            }
            Err(err) => {
                handle.stop(true).await;
                Err(err)
            }
        }
    };
    let (served, filled) = futures_util::future::join(running, fill).await;
    fakes.stop().await;
    filled?;
    served.map_err(|e| e.to_string())
}

/// What the fill made, for the printout.
struct Filled {
    key: SecretString,
    keys: usize,
    requests: usize,
    warnings: usize,
    connections: usize,
    deliveries: usize,
}

#[allow(clippy::print_stdout)]
fn announce(base: &str, dir: &Path, fakes: &FakeProviders, filled: Option<&Filled>) {
    let mut text =
        format!("\nOtesse demo: {base}/ (data in {}; fake providers at {})\n\n", dir.display(), fakes.base_url);
    text.push_str(&format!("Sign in with the password \"{PASSWORD}\" as any of:\n"));
    for (email, role) in USERS {
        text.push_str(&format!("  {email:<20} {}\n", role.as_str()));
    }
    match filled {
        Some(filled) => {
            text.push_str(&format!(
                "\nFilled in: {} API keys (every level, live and test, one expiring within a day, one revoked) with \
                 {} requests over the last 5 days, {} expiry warnings, {} connected providers (Mapbox failing its \
                 health checks), a webhook endpoint with {} deliveries.\n",
                filled.keys, filled.requests, filled.warnings, filled.connections, filled.deliveries
            ));
            text.push_str(&format!(
                "\nA live read-write key, shown this once:\n\n  curl -s {base}/v1/customers -H \"Authorization: Bearer {}\"\n",
                filled.key.expose_secret()
            ));
        }
        None => text.push_str("\nThe demo's data is as it was left (its keys were shown on the first run).\n"),
    }
    text.push_str(&format!(
        "\nCtrl-C stops it; `otesse-server demo` again serves the same data; delete {} to start over.\n",
        dir.display()
    ));
    println!("{text}");
}

/// A clock that says what it is told: the demo's past.
struct SetClock(std::sync::Mutex<DateTime<Utc>>);

impl SetClock {
    fn at(time: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(std::sync::Mutex::new(time)))
    }

    fn set(&self, time: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = time;
    }
}

impl Clock for SetClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The demo's HTTP client: the API, with a session.
struct Api {
    http: reqwest::Client,
    base: String,
    session: Option<String>,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(session) = &self.session {
            request = request.bearer_auth(session);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("{method} {path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{method} {path} answered {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        self.call(reqwest::Method::GET, path, None).await
    }
}

fn uuid_of(value: &Value, what: &str) -> Result<uuid::Uuid, String> {
    value.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| format!("no {what} in the answer"))
}

async fn fill(
    settings: &Settings,
    database: &Database,
    fakes: &FakeProviders,
    base: &str,
    setup_token: &SecretString,
) -> Result<Filled, String> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().map_err(|e| e.to_string())?;
    let mut api = Api { http, base: base.to_owned(), session: None };
    let (owner, _) = USERS[0];
    api.post(
        "/v1/setup",
        json!({"setup_token": setup_token.expose_secret(), "organization_name": ORGANIZATION, "email": owner, "password": PASSWORD}),
    )
    .await?;
    let signed_in = api.post("/v1/sessions", json!({"email": owner, "password": PASSWORD})).await?;
    api.session = signed_in["token"].as_str().map(str::to_owned);
    let me = api.get("/v1/me").await?;
    let actor = Actor {
        user_id: UserId(uuid_of(&me["user"]["id"], "user id")?),
        organization_id: OrganizationId(uuid_of(&me["organization"]["id"], "organization id")?),
        role: Role::Admin,
    };
    for (email, role) in &USERS[1..] {
        api.post("/v1/users", json!({"email": email, "password": PASSWORD, "role": role.as_str()})).await?;
    }

    // The endpoint first, so that what follows is delivered to it.
    let endpoint = api
        .post(
            "/v1/webhook-endpoints",
            json!({
                "url": format!("{}/hook", fakes.base_url),
                "description": "Demo receiver (answers 204)",
                "events": ["api_key.created", "api_key.revoked", "api_key.expiring", "integration.connected",
                           "integration.health_check.failed"]
            }),
        )
        .await?;
    let endpoint_id = uuid_of(&endpoint["id"], "endpoint id")?;

    let mut connections = 0;
    let mut mapbox = None;
    for slug in ["postmark", "stripe", "google_maps", "mapbox"] {
        let connected = api
            .post(
                &format!("/v1/integrations/providers/{slug}/connect"),
                json!({"credentials": {"api_key": credential(slug)}}),
            )
            .await?;
        let id = uuid_of(&connected["id"], "connection id")?;
        connections += 1;
        if slug == "postmark" {
            for _ in 0..3 {
                api.post(&format!("/v1/integrations/connections/{id}/health-checks"), json!({})).await?;
            }
        }
        if slug == "mapbox" {
            mapbox = Some(id);
        }
    }
    // Mapbox goes down after it was connected: its next checks fail.
    fakes.break_mapbox();
    if let Some(id) = mapbox {
        for _ in 0..2 {
            api.post(&format!("/v1/integrations/connections/{id}/health-checks"), json!({})).await?;
        }
    }

    let (keys, live_key, requests) = keys_with_usage(database, &actor).await?;
    let warnings = expiry_warnings(settings, database, &actor, keys.expiring).await?;

    // A few customers, made with the live key as a client would.
    let client =
        Api { http: api.http.clone(), base: base.to_owned(), session: Some(live_key.expose_secret().to_owned()) };
    for (name, email) in [("Ada Lovelace", "ada@example.com"), ("Grace Hopper", "grace@example.com")] {
        client.post("/v1/customers", json!({"name": name, "email": email})).await?;
    }
    api.post(&format!("/v1/webhook-endpoints/{endpoint_id}/test"), json!({})).await?;
    let deliveries = api.get(&format!("/v1/webhook-endpoints/{endpoint_id}/deliveries")).await?;
    let deliveries = deliveries["data"].as_array().map_or(0, Vec::len);
    Ok(Filled { key: live_key, keys: keys.count, requests, warnings, connections, deliveries })
}

struct Keys {
    count: usize,
    expiring: ApiKeyId,
}

/// One key per level in each environment, made five days ago, with five days of requests; one
/// made 29 days ago that expires within a day; one revoked yesterday.
async fn keys_with_usage(database: &Database, actor: &Actor) -> Result<(Keys, SecretString, usize), String> {
    let now = Utc::now();
    let clock = SetClock::at(now - chrono::Duration::days(5));
    let service = ApiKeyService::new(ApiKeyPorts {
        keys: Arc::new(database.api_keys()),
        usage: Arc::new(database.usage()),
        cache: Arc::new(MokaKeyCache::new(100, Duration::from_secs(1), 100, Duration::from_secs(1))),
        invalidations: Arc::new(database.key_invalidations()),
        guesses: Arc::new(MemoryKeyGuessGuard::new(30, Duration::from_secs(60))),
        hasher: Arc::new(Sha256KeyHasher),
        secrets: Arc::new(RandomSecretGenerator::new()),
        clock: clock.clone(),
        users: Arc::new(database.users()),
    });
    let caller = Caller::user(actor.clone(), SessionId(uuid::Uuid::now_v7()));
    let create = |name: &str, level: &str, scopes: &[&str], expires: &str, environment: &str| CreateKeyInput {
        name: name.to_owned(),
        description: Some(format!("Demo key: {level}, {environment}")),
        scope_level: level.to_owned(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        expires_in: expires.to_owned(),
        environment: environment.to_owned(),
        allowed_ips: Vec::new(),
    };
    let plan: [(&str, &str, &[&str], &str, &str); 6] = [
        ("Zapier CRM sync", "read_write", &["customers.read", "customers.write"], "90d", "live"),
        ("Reporting dashboard", "read_only", &["customers.read", "reports.read"], "1y", "live"),
        ("Operations admin", "admin", &["customers.read", "customers.write", "settings.read"], "30d", "live"),
        ("Staging CRM sync", "read_write", &["customers.read", "customers.write"], "never", "test"),
        ("QA read-only", "read_only", &["customers.read"], "90d", "test"),
        ("Sandbox admin", "admin", &["customers.read", "customers.write", "reports.read"], "30d", "test"),
    ];
    let mut made: Vec<CreatedKey> = Vec::new();
    for (name, level, scopes, expires, environment) in plan {
        made.push(
            service
                .create(&caller, create(name, level, scopes, expires, environment))
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    // Made 30 days minus 20 hours ago for 30 days: it expires in 20 hours.
    clock.set(now - chrono::Duration::days(30) + chrono::Duration::hours(20));
    let expiring = service
        .create(&caller, create("Nightly export", "read_only", &["customers.read"], "30d", "live"))
        .await
        .map_err(|e| e.to_string())?;
    clock.set(now - chrono::Duration::days(5));
    let retired = service
        .create(&caller, create("Old importer", "read_write", &["customers.read", "customers.write"], "90d", "live"))
        .await
        .map_err(|e| e.to_string())?;
    clock.set(now - chrono::Duration::days(1));
    service.revoke(&caller, retired.key.id).await.map_err(|e| e.to_string())?;

    let usage = database.usage();
    let mut requests = 0;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for (index, created) in made.iter().chain([&expiring]).enumerate() {
        let rows = usage_rows(created, now, index, &mut seed);
        requests += rows.len();
        for batch in rows.chunks(500) {
            usage.append(batch).await.map_err(|e| e.to_string())?;
        }
    }
    let retired_rows: Vec<UsageRecord> = usage_rows(&retired, now - chrono::Duration::days(1), 9, &mut seed)
        .into_iter()
        .filter(|r| r.occurred_at >= retired.key.created_at)
        .collect();
    requests += retired_rows.len();
    usage.append(&retired_rows).await.map_err(|e| e.to_string())?;
    let live = made.swap_remove(0).plaintext.secret().clone();
    Ok((Keys { count: made.len() + 3, expiring: expiring.key.id }, live, requests))
}

/// Five days of a key's requests up to `until`: busier in working hours, mostly successes.
fn usage_rows(created: &CreatedKey, until: DateTime<Utc>, index: usize, seed: &mut u64) -> Vec<UsageRecord> {
    let mut next = move || {
        // xorshift64*: enough to look irregular, and the same every run.
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33
    };
    let writes = created.key.scope_level.as_str() != "read_only";
    let mut rows = Vec::new();
    for hour in (0..5 * 24).rev() {
        let at = until - chrono::Duration::hours(hour);
        let busy = matches!(chrono::Timelike::hour(&at), 8..=18);
        let count = (next() % if busy { 6 } else { 2 }) as usize + usize::from(index.is_multiple_of(3) && busy);
        for _ in 0..count {
            let roll = next() % 100;
            let (method, path, status) = match roll {
                0..=44 => ("GET", "/v1/customers".to_owned(), 200),
                45..=64 => ("GET", format!("/v1/customers/{}", uuid::Uuid::from_u64_pair(next(), next())), 200),
                65..=74 => ("GET", "/v1/whoami".to_owned(), 200),
                75..=86 if writes => ("POST", "/v1/customers".to_owned(), 201),
                87..=91 if writes => ("PATCH", format!("/v1/customers/{}", uuid::Uuid::from_u64_pair(next(), 1)), 200),
                92..=94 => ("GET", format!("/v1/customers/{}", uuid::Uuid::from_u64_pair(next(), 2)), 404),
                95..=96 if writes => ("POST", "/v1/customers".to_owned(), 422),
                97 => ("GET", "/v1/customers".to_owned(), 429),
                _ => ("GET", "/v1/customers".to_owned(), 200),
            };
            let ip: std::net::IpAddr = [203, 0, 113, (10 + index * 3 + (next() % 3) as usize) as u8].into();
            rows.push(UsageRecord {
                api_key_id: created.key.id,
                organization_id: created.key.organization_id,
                occurred_at: at + chrono::Duration::seconds((next() % 3600) as i64),
                method: method.to_owned(),
                path,
                status,
                response_time_ms: 8 + (next() % 90) as u32 + if status == 201 { 25 } else { 0 },
                client_ip: Some(ip),
            });
        }
    }
    rows.retain(|r| r.occurred_at <= until);
    rows.sort_by_key(|r| r.occurred_at);
    rows
}

/// K13's three warnings for the expiring key, each issued when it was due: 13 days, 6 days
/// and (now) under a day before expiry. The 7- and 1-day ones email the admins through the
/// organization's (fake) Postmark.
async fn expiry_warnings(
    settings: &Settings,
    database: &Database,
    actor: &Actor,
    key: ApiKeyId,
) -> Result<usize, String> {
    let stored = otesse_domain::api_key::ApiKeyRepository::find(&database.api_keys(), actor.organization_id, key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the expiring key is gone")?;
    let expires_at = stored.expires_at.ok_or("the expiring key never expires")?;
    let clock = SetClock::at(expires_at - chrono::Duration::days(13));
    let (integrations, _) = crate::startup::integration_services(settings, database, clock.clone(), None)
        .map_err(|e: StartupError| e.to_string())?;
    let warnings = ExpiryWarnings::new(ExpiryWarningPorts {
        keys: Arc::new(database.api_keys()),
        users: Arc::new(database.users()),
        notifications: Arc::new(database.notifications()),
        mailer: Arc::new(PostmarkMailer::new(integrations)),
        clock: clock.clone(),
    });
    let mut issued = 0;
    for before in
        [chrono::Duration::days(13), chrono::Duration::days(6), Utc::now().signed_duration_since(expires_at).abs()]
    {
        clock.set(expires_at - before);
        let (run, _) = warnings.run().await.map_err(|e| e.to_string())?;
        issued += run.notifications as usize;
    }
    Ok(issued)
}
