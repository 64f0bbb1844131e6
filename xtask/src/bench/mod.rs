//! `cargo xtask bench auth`: what authenticating with an API key costs, what the verification
//! API costs, and whether the usage log keeps every keyed request across a graceful shutdown;
//! `cargo xtask bench usage-writer`: the usage log's writer alone; `cargo xtask bench
//! usage-scale`: the usage log's reads and retention at millions of rows ([`usage_scale`]).
//!
//! The server runs as a release build on a fresh SQLite data dir, or with `--database
//! postgres` in a fresh PostgreSQL schema. After a warm-up of each, wrk loads, for a number of
//! rounds (5 by default), `GET /healthz` (no authentication, the baseline), `GET /v1/whoami`
//! with a key, and `POST /v1/keys/verify` checking that key with a platform service token (made
//! with the server's own `service-token create`). The ratio is the median round's, since wrk
//! shares the machine with the server and single runs vary. Each keyed run waits for the usage
//! writer to catch up before the next run, so its backlog does not slow the next one down, and
//! is credited with the keyed requests the server counted meanwhile
//! (`otesse_api_key_requests_total`): at least one per answer wrk read. The server is then
//! stopped with SIGTERM while usage rows are still queued, restarted, and the key's
//! `usage.total_requests` must equal the keyed requests counted (warm-ups included), whoami's
//! and the verification API's together: a check of a key is written to its usage log.

pub mod cold_keys;
pub mod memory;
mod report;
pub mod usage_scale;
mod verify;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::args::Flags;
use crate::error::{Context, Error};
use crate::http::{Client, metric};
use crate::server::{Launch, ServerProcess, TempDir, free_port, random_hex};
use crate::sql::SqlTarget;
use crate::workspace::{
    Backend, DEFAULT_POSTGRES_URL, POSTGRES_URL_VAR, PostgresSchema, Profile, build_server, step, workspace_root,
};
use crate::wrk::{self, Load};
pub use report::{Cpu, Keyed, Report, Round};

/// Set to a server binary to bench it instead of building the workspace's.
const BINARY_VAR: &str = "OTESSE_BENCH_BINARY";
const WARM_UP: &str = "2s";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The server's own shutdown timeout is 30 s, plus the time to flush the usage queue.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "bench password 123";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub load: Load,
    /// Rounds of runs (healthz, whoami, verify); the median ratio counts.
    pub rounds: u32,
    pub backend: Backend,
}

impl Options {
    /// `[--duration 10s] [--connections 32] [--threads 2] [--rounds 5] [--database sqlite]`,
    /// also as `--flag=value`.
    pub fn parse(args: &[&str]) -> Result<Self, Error> {
        let mut load = Load { threads: 2, connections: 32, duration: "10s".into() };
        let mut rounds = 5;
        let mut backend = Backend::Sqlite;
        let mut flags = Flags::new(args);
        while let Some(flag) = flags.next() {
            match flag.name {
                "--duration" => load.duration = parse_duration(flags.value(&flag)?)?,
                "--connections" => load.connections = parse_count(flag.name, flags.value(&flag)?)?,
                "--threads" => load.threads = parse_count(flag.name, flags.value(&flag)?)?,
                "--rounds" => rounds = parse_count(flag.name, flags.value(&flag)?)?,
                "--database" => backend = Backend::parse(flags.value(&flag)?)?,
                _ => return Err(flag.unknown()),
            }
        }
        if load.threads > load.connections {
            return Err(Error::new("--threads cannot exceed --connections (wrk needs a connection per thread)"));
        }
        Ok(Self { load, rounds, backend })
    }
}

/// wrk's duration syntax: a whole number with an optional unit `s`, `m` or `h`.
fn parse_duration(raw: &str) -> Result<String, Error> {
    let digits = raw.trim_end_matches(['s', 'm', 'h']);
    let unit_ok = raw.len() - digits.len() <= 1;
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && unit_ok => Ok(raw.to_owned()),
        _ => Err(Error::new(format!("--duration `{raw}`: expected e.g. 10s, 2m"))),
    }
}

fn parse_count(flag: &str, raw: &str) -> Result<u32, Error> {
    match raw.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::new(format!("{flag} `{raw}`: expected a positive whole number"))),
    }
}

/// A positive whole number of keys, rows or requests, `_` allowed (`1_000_000`).
fn positive(flag: &str, raw: &str) -> Result<u64, Error> {
    match raw.replace('_', "").parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::new(format!("{flag} `{raw}`: expected a positive whole number"))),
    }
}

/// The server to bench: the binary `OTESSE_BENCH_BINARY` names (A/B comparisons: the same bench
/// against builds kept from before and after a change), else a fresh build of `profile`. As an
/// absolute path: the server runs in the bench's own directory.
fn server_binary(profile: Profile) -> Result<PathBuf, Error> {
    let Some(path) = std::env::var_os(BINARY_VAR) else {
        return build_server(profile);
    };
    let binary = PathBuf::from(path);
    if !binary.is_file() {
        return Err(Error::new(format!("{BINARY_VAR}={} is not a file", binary.display())));
    }
    step(format!("using {} ({BINARY_VAR}; not building)", binary.display()));
    Ok(std::fs::canonicalize(&binary)?)
}

/// Where a bench's server keeps its data: a fresh directory and, with PostgreSQL, a fresh
/// schema. Dropped, the schema goes first, then the directory (unless kept).
struct Scratch {
    schema: Option<PostgresSchema>,
    dir: TempDir,
}

impl Scratch {
    /// `dir_prefix` starts the directory's name, `schema_prefix` the schema's.
    fn new(backend: Backend, dir_prefix: &str, schema_prefix: &str) -> Result<Self, Error> {
        let dir = TempDir::new(dir_prefix)?;
        let schema = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PostgresSchema::new(schema_prefix)?),
        };
        Ok(Self { schema, dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The server's database settings: the schema's; none on SQLite (a file in the data dir).
    fn server_env(&self) -> Vec<(String, String)> {
        self.schema.as_ref().map(PostgresSchema::server_env).unwrap_or_default()
    }

    /// The same database, for the bench's own SQL.
    fn sql(&self) -> SqlTarget {
        match &self.schema {
            None => SqlTarget::Sqlite { file: self.dir.path().join("otesse.db") },
            Some(schema) => SqlTarget::Postgres { url: schema.url().to_owned(), schema: schema.name().to_owned() },
        }
    }

    /// Keeps the directory after a failure, and says where it is and what to look at there.
    fn keep(&mut self, what: &str) {
        self.dir.keep();
        eprintln!("==> kept {} ({what}) for inspection", self.dir.path().display());
    }

    /// Prints a finished run's report and what failed (`failures`); keeps the directory when
    /// the run itself failed.
    fn report<R: std::fmt::Display>(
        &mut self,
        result: &Result<R, Error>,
        failures: impl Fn(&R) -> Vec<String>,
        what: &str,
    ) {
        match result {
            Ok(report) => {
                print!("{report}");
                for failure in failures(report) {
                    eprintln!("FAILED: {failure}");
                }
            }
            Err(_) => self.keep(what),
        }
    }
}

/// Runs the bench, prints the report to stdout (progress goes to stderr) and returns it.
pub fn auth(options: &Options) -> Result<Report, Error> {
    wrk::ensure_installed()?;
    let binary = server_binary(Profile::Release)?;
    let mut scratch = Scratch::new(options.backend, "otesse-bench", "otesse_bench")?;
    let result = measure(scratch.path(), binary, options, &scratch.server_env());
    scratch.report(&result, Report::failures, "server.log");
    result
}

/// `cargo bench -p otesse-storage --bench usage_writer`: the writer alone, on a fresh database.
pub fn usage_writer(backend: Backend) -> Result<(), Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command.args(["bench", "-p", "otesse-storage", "--bench", "usage_writer", "--"]).current_dir(workspace_root());
    if backend == Backend::Postgres {
        // The bench makes its own schema there and drops it.
        command.arg(std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned()));
    }
    step(format!("usage writer alone on {}", backend.name()));
    let status = command.status().context("running cargo bench")?;
    if !status.success() {
        return Err(Error::new(format!("the usage writer bench failed ({status})")));
    }
    Ok(())
}

fn measure(dir: &Path, binary: PathBuf, options: &Options, database: &[(String, String)]) -> Result<Report, Error> {
    let load = &options.load;
    let port = free_port()?;
    let setup_token = random_hex(24)?;
    let launch = Launch {
        binary,
        env: [
            ("OTESSE_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("OTESSE_DATA_DIR".into(), dir.display().to_string()),
            ("OTESSE_SETUP_TOKEN".into(), setup_token.clone()),
            ("OTESSE_LOG_FILTER".into(), "warn".into()),
            ("OTESSE_SIGN_IN__MAX_FAILURES_PER_IP".into(), "1000".into()),
            // Rate limiting stays on (every keyed request is counted, W2), with a limit the
            // load never reaches, so what is measured is its cost, not its refusals. The server
            // refuses limits finer than one request per 10 µs: 10^8 per 1000 s is exactly that
            // (100,000 a second sustained, bursts of 10^8).
            ("OTESSE_RATE_LIMIT__KEY_REQUESTS".into(), "100000000".into()),
            ("OTESSE_RATE_LIMIT__KEY_PERIOD_SECS".into(), "1000".into()),
        ]
        .into_iter()
        .chain(database.iter().cloned())
        .collect(),
        cwd: dir.to_owned(),
        log: dir.join("server.log"),
    };
    let client = Client::new(format!("http://127.0.0.1:{port}"));

    step(format!("starting the server on port {port} with data in {}", dir.display()));
    let mut server = ServerProcess::start(&launch)?;
    server.wait_ready(&client, READY_TIMEOUT)?;
    client.setup(&setup_token, EMAIL, PASSWORD)?;
    let session = client.sign_in(EMAIL, PASSWORD)?;
    let (key, key_id) = client.create_key(&session, "bench")?;
    let service_token = verify::service_token(&launch)?;
    let script = verify::script(dir, &service_token, &key)?;

    let keyed = [format!("Authorization: Bearer {key}")];
    let (healthz_url, whoami_url, verify_url) =
        (client.url("/healthz"), client.url("/v1/whoami"), client.url(verify::PATH));
    let describe = |method: &str, path: &str, load: &Load| {
        format!("wrk -t{} -c{} -d{} {method} {path}", load.threads, load.connections, load.duration)
    };
    // The key's requests by route: those wrk read the answer of, and those the server counted
    // while the route was loaded (settled after each run).
    let (mut answered, mut counted) = (Keyed::default(), Keyed::default());
    let mut last = settled_counters(&client)?.keyed_requests;
    let mut since_last = || -> Result<u64, Error> {
        let now = settled_counters(&client)?.keyed_requests;
        Ok(now - std::mem::replace(&mut last, now))
    };
    verify::probe(&client, &service_token, &key)?;
    answered.verify += 1;
    counted.verify += since_last()?;

    let warm_up = Load { duration: WARM_UP.into(), ..load.clone() };
    step(format!("warm-up: {}", describe("GET", "/healthz", &warm_up)));
    wrk::run(&healthz_url, &[], &warm_up)?;
    step(format!("warm-up: {} (with the key)", describe("GET", "/v1/whoami", &warm_up)));
    answered.whoami += wrk::run(&whoami_url, &keyed, &warm_up)?.requests;
    counted.whoami += since_last()?;
    step(format!("warm-up: {} (with the service token)", describe("POST", verify::PATH, &warm_up)));
    answered.verify += wrk::run_script(&verify_url, &script, &warm_up)?.requests;
    counted.verify += since_last()?;

    let mut rounds = Vec::new();
    let (mut healthz_cpu, mut whoami_cpu, mut verify_cpu) = (CpuTotal::new(), CpuTotal::new(), CpuTotal::new());
    for round in 1..=options.rounds {
        let of = options.rounds;
        step(format!("round {round}/{of}: {}", describe("GET", "/healthz", load)));
        let before = server.cpu_time();
        let healthz = wrk::run(&healthz_url, &[], load)?;
        healthz_cpu.add(before, server.cpu_time(), healthz.requests);

        step(format!("round {round}/{of}: {} (with the key)", describe("GET", "/v1/whoami", load)));
        let before = server.cpu_time();
        let whoami = wrk::run(&whoami_url, &keyed, load)?;
        // The usage rows of this run are written by the background writer: let it finish (the
        // settled counters) before reading the CPU the run cost and starting the next run.
        counted.whoami += since_last()?;
        whoami_cpu.add(before, server.cpu_time(), whoami.requests);
        answered.whoami += whoami.requests;

        step(format!("round {round}/{of}: {} (with the service token)", describe("POST", verify::PATH, load)));
        let before = server.cpu_time();
        let verify = wrk::run_script(&verify_url, &script, load)?;
        counted.verify += since_last()?;
        verify_cpu.add(before, server.cpu_time(), verify.requests);
        answered.verify += verify.requests;
        rounds.push(Round { healthz, whoami, verify });
    }
    let counters = settled_counters(&client)?;
    let cpu_us_per_request = match (healthz_cpu.per_request(), whoami_cpu.per_request(), verify_cpu.per_request()) {
        (Some(healthz), Some(whoami), Some(verify)) => Some(Cpu { healthz, whoami, verify }),
        _ => None,
    };

    step(format!(
        "stopping the server with SIGTERM ({} keyed requests counted, {} usage rows still queued)",
        counters.keyed_requests,
        counters.keyed_requests.saturating_sub(counters.written + counters.dropped)
    ));
    let started = Instant::now();
    let status = server.stop(STOP_TIMEOUT)?;
    if !status.success() {
        return Err(Error::new(format!("the server exited with {status} after SIGTERM{}", server_log(&launch))));
    }
    step(format!("stopped after {:.1}s; restarting on the same data dir", started.elapsed().as_secs_f64()));

    let mut server = ServerProcess::start(&launch)?;
    server.wait_ready(&client, READY_TIMEOUT)?;
    let session = client.sign_in(EMAIL, PASSWORD)?;
    let written = client.key_total_requests(&session, &key_id)?;
    let status = server.stop(STOP_TIMEOUT)?;
    if !status.success() {
        return Err(Error::new(format!(
            "the restarted server exited with {status} after SIGTERM{}",
            server_log(&launch)
        )));
    }

    Ok(Report {
        rounds,
        answered,
        counted,
        dropped: counters.dropped,
        rate_limited: counters.rate_limited,
        written,
        cpu_us_per_request,
        backend: options.backend,
    })
}

/// Server CPU time and wrk's requests over every run of one route. The time is `None` where
/// procfs is not available.
struct CpuTotal {
    time: Option<Duration>,
    requests: u64,
}

impl CpuTotal {
    fn new() -> Self {
        Self { time: Some(Duration::ZERO), requests: 0 }
    }

    fn add(&mut self, before: Option<Duration>, after: Option<Duration>, requests: u64) {
        self.time = self.time.zip(after.zip(before)).map(|(sum, (after, before))| sum + after.saturating_sub(before));
        self.requests += requests;
    }

    /// In µs.
    fn per_request(&self) -> Option<f64> {
        self.time.map(|time| time.as_secs_f64() * 1e6 / self.requests.max(1) as f64)
    }
}

fn server_log(launch: &Launch) -> String {
    std::fs::read_to_string(&launch.log)
        .map(|log| format!("\n--- {} ---\n{log}", launch.log.display()))
        .unwrap_or_default()
}

struct Counters {
    keyed_requests: u64,
    written: u64,
    dropped: u64,
    rate_limited: u64,
}

/// The usage counters once no keyed request is in flight any more: wrk stops at its deadline
/// without waiting for the answers it has not read, so the server may still be finishing a few.
fn settled_counters(client: &Client) -> Result<Counters, Error> {
    let read = || -> Result<Counters, Error> {
        let text = client.metrics()?;
        let counter = |name: &str| {
            metric(&text, name).map(|v| v as u64).ok_or_else(|| Error::new(format!("GET /metrics has no {name}")))
        };
        Ok(Counters {
            keyed_requests: counter("otesse_api_key_requests_total")?,
            written: counter("otesse_usage_rows_written_total")?,
            dropped: counter("otesse_usage_rows_dropped_total")?,
            rate_limited: counter("otesse_rate_limited_total")?,
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = read()?;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let now = read()?;
        if now.keyed_requests == last.keyed_requests || Instant::now() >= deadline {
            return Ok(now);
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let defaults = Options::parse(&[]).unwrap();
        assert_eq!(defaults.load, Load { threads: 2, connections: 32, duration: "10s".into() });
        assert_eq!(defaults.rounds, 5);
        assert_eq!(defaults.backend, Backend::Sqlite);
        assert_eq!(Options::parse(&["--database", "postgres"]).unwrap().backend, Backend::Postgres);
        assert_eq!(Options::parse(&["--database=sqlite"]).unwrap().backend, Backend::Sqlite);
        assert_eq!(Options::parse(&["--rounds", "5"]).unwrap().rounds, 5);
        let custom = Options::parse(&["--duration", "5s", "--connections=64", "--threads", "4"]).unwrap();
        assert_eq!(custom.load, Load { threads: 4, connections: 64, duration: "5s".into() });
        assert_eq!(Options::parse(&["--duration", "2m"]).unwrap().load.duration, "2m");
        for bad in [
            &["--duration"][..],
            &["--duration", "fast"],
            &["--duration", "5ss"],
            &["--duration", "0s"],
            &["--connections", "-1"],
            &["--threads", "8", "--connections", "4"],
            &["--rounds", "0"],
            &["--database", "mysql"],
            &["--verbose"],
        ] {
            assert!(Options::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
