//! `cargo xtask crash`: kill -9 the server under load and during connects, restart it, and check
//! that nothing half-written survived and nothing committed was lost.
//!
//! One database for the whole run (a data dir, or a fresh PostgreSQL schema), so every round
//! finds what the earlier kills left. A round: the running server takes a mixed load from four
//! client threads ([`load`]: keys created, rotated, revoked and used, a provider connected to
//! and disconnected from a local fake, health checks, webhook endpoints created, each change
//! delivered to a local receiver); it is killed with SIGKILL at a moment drawn from the seeded
//! generator, either after a random delay ("load") or while a call to the fake provider is in
//! flight ("connect"); the database is checked with the server down ([`checks::offline`]), a
//! new server is started on it, and the API is checked ([`checks::online`]). That server takes
//! the next round's load. Any violation stops the run with a message naming it, and keeps the
//! data dir with the server logs.
//!
//! The server runs with a 5 s job lease (default 300 s): a job claimed by a killed process is
//! taken again once its lease runs out, and a short lease keeps each round's wait short.

mod checks;
mod load;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api_server::{DEAD_URL, PROVIDERS};
use crate::args::Flags;
use crate::error::Error;
use crate::fake_http::FakeHttp;
use crate::http::Client;
use crate::server::{Launch, ServerProcess, TempDir, free_port, random_hex};
use crate::sql::SqlTarget;
use crate::workspace::{Backend, DEFAULT_POSTGRES_URL, POSTGRES_URL_VAR, PostgresSchema, Profile, build_server, step};

const EMAIL: &str = "crash@example.com";
const PASSWORD: &str = "crash password 123";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The provider the load connects to (it has no dependencies and an API-key form).
pub const PROVIDER: &str = "postmark";
/// How long the fake provider takes to answer: the window in which a connect is in flight.
const PROVIDER_DELAY: Duration = Duration::from_millis(150);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub rounds: u32,
    pub backend: Backend,
    /// The PostgreSQL database (a fresh schema is made in it); `None`: `OTESSE_BENCH_POSTGRES_URL`
    /// or the default.
    pub url: Option<String>,
    pub seed: Option<u64>,
    pub profile: Profile,
}

impl Options {
    /// `[--rounds 20] [--database sqlite|postgres] [--url URL] [--seed N] [--release]`.
    pub fn parse(args: &[&str]) -> Result<Self, Error> {
        let mut options =
            Options { rounds: 20, backend: Backend::Sqlite, url: None, seed: None, profile: Profile::Debug };
        let mut flags = Flags::new(args);
        while let Some(flag) = flags.next() {
            match flag.name {
                "--rounds" => {
                    let raw = flags.value(&flag)?;
                    options.rounds = match raw.parse::<u32>() {
                        Ok(n) if n > 0 => n,
                        _ => return Err(Error::new(format!("--rounds `{raw}`: expected a positive whole number"))),
                    }
                }
                "--seed" => {
                    let raw = flags.value(&flag)?;
                    options.seed =
                        Some(raw.parse().map_err(|_| Error::new(format!("--seed `{raw}`: expected a whole number")))?);
                }
                "--database" => options.backend = Backend::parse(flags.value(&flag)?)?,
                "--url" => {
                    let url = flags.value(&flag)?;
                    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                        return Err(Error::new("--url must be a postgres:// URL"));
                    }
                    options.url = Some(url.to_owned());
                }
                "--release" if flag.is_switch() => options.profile = Profile::Release,
                _ => return Err(flag.unknown()),
            }
        }
        if options.url.is_some() {
            options.backend = Backend::Postgres;
        }
        Ok(options)
    }
}

/// SplitMix64: small, seedable, good enough to draw kill moments and operations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the fake provider and the webhook receiver saw, shared with the checks.
#[derive(Debug, Default)]
pub struct Fakes {
    /// `(type, data.id)` of every webhook received (deliveries may repeat: at least once).
    pub received: Mutex<HashSet<(String, String)>>,
    pub deliveries: Mutex<u64>,
    /// Told of every provider call as it arrives (for the "connect" kills).
    pub provider_calls: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

/// The figures of a run.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub rounds: u32,
    pub kills: u32,
    pub kills_during_connects: u32,
    pub requests: u64,
    pub cut_by_kill: u64,
    pub checks: u64,
    pub items: u64,
    pub keys_listed: u64,
    pub deliveries_received: u64,
}

pub fn run(options: &Options) -> Result<Summary, Error> {
    let seed = match options.seed {
        Some(seed) => seed,
        None => u64::from_str_radix(&random_hex(8)?, 16).map_err(|e| Error::new(e.to_string()))?,
    };
    step(format!(
        "crash runs: {} rounds on {}, seed {seed} (repeat with --seed {seed})",
        options.rounds,
        options.backend.name()
    ));
    let started = Instant::now();
    let binary = build_server(options.profile)?;
    let mut dir = TempDir::new("otesse-crash")?;
    let result = rounds(options, seed, binary, &dir);
    match result {
        Ok(summary) => {
            println!(
                "crash runs on {}: seed {seed}, {} rounds, {} kills ({} during a provider call), {} requests answered, \
                 {} cut by the kills, {} checks passed over {} items (last round: {} keys listed), {} webhook \
                 deliveries received, {:.0}s",
                options.backend.name(),
                summary.rounds,
                summary.kills,
                summary.kills_during_connects,
                summary.requests,
                summary.cut_by_kill,
                summary.checks,
                summary.items,
                summary.keys_listed,
                summary.deliveries_received,
                started.elapsed().as_secs_f64()
            );
            Ok(summary)
        }
        Err(err) => {
            dir.keep();
            Err(err.context(format!("seed {seed}; the data dir and server logs are kept in {}", dir.path().display())))
        }
    }
}

/// The database of the run and how the server and the checks reach it.
struct Store {
    _schema: Option<PostgresSchema>,
    env: Vec<(String, String)>,
    sql: SqlTarget,
}

impl Store {
    fn new(options: &Options, dir: &TempDir) -> Result<Self, Error> {
        match options.backend {
            Backend::Sqlite => {
                Ok(Self { _schema: None, env: vec![], sql: SqlTarget::Sqlite { file: dir.path().join("otesse.db") } })
            }
            Backend::Postgres => {
                let url = match &options.url {
                    Some(url) => url.clone(),
                    None => std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned()),
                };
                let schema = PostgresSchema::in_database(url.clone(), "otesse_crash")?;
                let sql = SqlTarget::Postgres { url, schema: schema.name().to_owned() };
                Ok(Self { env: schema.server_env(), _schema: Some(schema), sql })
            }
        }
    }
}

fn rounds(options: &Options, seed: u64, binary: PathBuf, dir: &TempDir) -> Result<Summary, Error> {
    let store = Store::new(options, dir)?;
    let fakes = Arc::new(Fakes::default());
    let provider = {
        let fakes = Arc::clone(&fakes);
        FakeHttp::start(move |request| {
            if request.path != "/server" {
                return (404, r#"{"ErrorCode": 404, "Message": "not faked"}"#.to_owned());
            }
            if let Some(tx) = fakes.provider_calls.lock().unwrap().as_ref() {
                let _ = tx.send(());
            }
            std::thread::sleep(PROVIDER_DELAY);
            (200, r#"{"ID": 1, "Name": "crash fake"}"#.to_owned())
        })?
    };
    let receiver = {
        let fakes = Arc::clone(&fakes);
        FakeHttp::start(move |request| {
            if request.method != "POST" {
                return (405, "{}".to_owned());
            }
            if let Ok(event) = serde_json::from_slice::<Value>(&request.body) {
                let kind = event["type"].as_str().unwrap_or_default().to_owned();
                let id = event["data"]["id"].as_str().unwrap_or_default().to_owned();
                fakes.received.lock().unwrap().insert((kind, id));
            }
            *fakes.deliveries.lock().unwrap() += 1;
            (200, "{}".to_owned())
        })?
    };
    let setup_token = random_hex(24)?;
    let launch = |n: u32| -> Result<(ServerProcess, Client), Error> {
        let port = free_port()?;
        let mut env: Vec<(String, String)> = vec![
            ("OTESSE_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("OTESSE_DATA_DIR".into(), dir.path().display().to_string()),
            ("OTESSE_SETUP_TOKEN".into(), setup_token.clone()),
            ("OTESSE_LOG_FILTER".into(), "warn".into()),
            ("OTESSE_ALLOW_LOOPBACK_URLS".into(), "true".into()),
            ("OTESSE_JOBS__POLL_INTERVAL_MS".into(), "100".into()),
            ("OTESSE_JOBS__LEASE_SECS".into(), "5".into()),
            // The load is one fast client: the limits would refuse it, not test it.
            ("OTESSE_RATE_LIMIT__KEY_REQUESTS".into(), "100000000".into()),
            ("OTESSE_RATE_LIMIT__KEY_PERIOD_SECS".into(), "1000".into()),
            ("OTESSE_RATE_LIMIT__KEY_CREATION_REQUESTS".into(), "100000".into()),
        ];
        for slug in PROVIDERS {
            let url = if slug == PROVIDER { provider.url() } else { DEAD_URL.to_owned() };
            env.push((format!("OTESSE_PROVIDERS__{}__BASE_URL", slug.to_uppercase()), url));
        }
        env.extend(store.env.iter().cloned());
        let log = dir.path().join(format!("server-{n:02}.log"));
        let launch = Launch { binary: binary.clone(), env, cwd: dir.path().to_owned(), log };
        let client = Client::new(format!("http://127.0.0.1:{port}"));
        let mut process = ServerProcess::start(&launch)?;
        process.wait_ready(&client, READY_TIMEOUT)?;
        Ok((process, client))
    };

    let (mut server, mut client) = launch(0)?;
    let (status, body) = client.call(
        "POST /v1/setup",
        None,
        Some(json!({"setup_token": setup_token, "organization_name": "Crash", "email": EMAIL, "password": PASSWORD})),
    )?;
    if status != 201 {
        return Err(Error::new(format!("POST /v1/setup: HTTP {status}: {body}")));
    }
    let session = client.sign_in(EMAIL, PASSWORD)?;
    let events: Vec<Value> = client.get_json("/v1/event-types", &session)?["data"]
        .as_array()
        .ok_or_else(|| Error::new("GET /v1/event-types: no data"))?
        .iter()
        .filter_map(|kind| kind.get("name").or_else(|| kind.get("type")).cloned())
        .collect();
    let endpoint =
        json!({"url": format!("{}/hooks", receiver.url()), "events": events, "description": "crash receiver"});
    let (status, body) = client.call("POST /v1/webhook-endpoints", Some(&session), Some(endpoint))?;
    if status != 201 {
        return Err(Error::new(format!("POST /v1/webhook-endpoints: HTTP {status}: {body}")));
    }

    let mut rng = Rng::new(seed);
    let state = Arc::new(load::State::new(format!("{}/hooks", receiver.url())));
    let mut summary = Summary::default();
    for round in 1..=options.rounds {
        let during_connect = rng.below(2) == 1;
        let delay = Duration::from_millis(300 + rng.below(2700));
        let (tx, rx) = std::sync::mpsc::channel();
        *fakes.provider_calls.lock().unwrap() = Some(tx);
        let running = load::start(&client, &session, &state, rng.next());
        std::thread::sleep(delay);
        let mut kind = "load";
        if during_connect {
            // Kill while the provider is answering a call (a connect or a health check).
            while rx.try_recv().is_ok() {}
            if rx.recv_timeout(Duration::from_secs(10)).is_ok() {
                std::thread::sleep(Duration::from_millis(rng.below(PROVIDER_DELAY.as_millis() as u64 * 2 / 3)));
                kind = "connect";
                summary.kills_during_connects += 1;
            }
        }
        *fakes.provider_calls.lock().unwrap() = None;
        state.stop();
        server.kill_hard()?;
        summary.kills += 1;
        let figures = running.join()?;
        summary.requests += figures.answered;
        summary.cut_by_kill += figures.cut;

        let offline = checks::offline(&store.sql)?;
        let (next, next_client) = launch(round)?;
        server = next;
        client = next_client;
        let online = checks::online(&client, &session, &state, &fakes, &store.sql)?;
        summary.checks += offline.checks + online.checks;
        summary.items += offline.items + online.items;
        summary.keys_listed = online.keys;
        summary.rounds = round;
        eprintln!(
            "==> round {round}/{}: killed during {kind} after {} ms, {} requests answered, {} cut; {} checks \
             passed ({} items, {} keys listed, {} active)",
            options.rounds,
            delay.as_millis(),
            figures.answered,
            figures.cut,
            offline.checks + online.checks,
            offline.items + online.items,
            online.keys,
            online.active
        );
    }
    summary.deliveries_received = *fakes.deliveries.lock().unwrap();
    server.stop(Duration::from_secs(60))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let defaults = Options::parse(&[]).unwrap();
        assert_eq!(
            defaults,
            Options { rounds: 20, backend: Backend::Sqlite, url: None, seed: None, profile: Profile::Debug }
        );
        let custom = Options::parse(&["--rounds", "3", "--url=postgres://u@h/db", "--seed", "42"]).unwrap();
        assert_eq!(
            custom,
            Options {
                rounds: 3,
                backend: Backend::Postgres,
                url: Some("postgres://u@h/db".into()),
                seed: Some(42),
                profile: Profile::Debug
            }
        );
        for bad in [&["--rounds", "0"][..], &["--url", "mysql://x"], &["--database", "oracle"], &["--fast"]] {
            assert!(Options::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_generator_repeats_with_its_seed() {
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..5).map(|_| rng.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }
}
