//! `cargo xtask bench auth`: what authenticating with an API key costs, and whether the usage
//! log keeps every keyed request across a graceful shutdown; `cargo xtask bench usage-writer`:
//! the usage log's writer alone.
//!
//! The server runs as a release build on a fresh SQLite data dir, or with `--database
//! postgres` in a fresh PostgreSQL schema. After a warm-up of each, wrk
//! loads `GET /healthz` (no authentication, the baseline) and then `GET /v1/whoami` with a key,
//! for a number of rounds (3 by default); the ratio is the median round's, since wrk shares the
//! machine with the server and single runs vary. Each keyed run waits for the usage writer to
//! catch up before the next baseline, so its backlog does not slow the baseline down. The server is then stopped with SIGTERM while usage rows are still
//! queued, restarted, and the key's `usage.total_requests` must equal the number of keyed
//! requests the server counted (`otesse_api_key_requests_total`, which includes the warm-up).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Context, Error};
use crate::http::{Client, metric};
use crate::server::{Launch, ServerProcess, TempDir, free_port, random_hex};
use crate::workspace::{
    Backend, DEFAULT_POSTGRES_URL, POSTGRES_URL_VAR, PostgresSchema, Profile, build_server, step, workspace_root,
};
use crate::wrk::{self, Load};

/// Set to a server binary to bench it instead of building the workspace's.
const BINARY_VAR: &str = "OTESSE_BENCH_BINARY";
/// F2's goal: the authenticated rate at least this share of the unauthenticated one. A goal,
/// printed beside the figure: the ratio moves with the machine.
const TARGET_RATIO: f64 = 0.80;
/// What gates (the F2 decision): the median round's ratio must not fall below this.
const MIN_RATIO: f64 = 0.65;
const WARM_UP: &str = "2s";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The server's own shutdown timeout is 30 s, plus the time to flush the usage queue.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "bench password 123";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub load: Load,
    /// Pairs of runs (healthz, then whoami); the median ratio counts.
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
        let mut args = args.iter().copied();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value)),
                None => (arg, None),
            };
            let mut value = || {
                inline
                    .or_else(|| args.next())
                    .ok_or_else(|| Error::new(format!("{flag} needs a value; see `cargo xtask help`")))
            };
            match flag {
                "--duration" => load.duration = parse_duration(value()?)?,
                "--connections" => load.connections = parse_count(flag, value()?)?,
                "--threads" => load.threads = parse_count(flag, value()?)?,
                "--rounds" => rounds = parse_count(flag, value()?)?,
                "--database" => backend = Backend::parse(value()?)?,
                _ => return Err(Error::new(format!("unknown option `{arg}`; see `cargo xtask help`"))),
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

/// One pair of measured runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub whoami: wrk::Report,
    pub healthz: wrk::Report,
}

impl Round {
    pub fn ratio(&self) -> f64 {
        if self.healthz.requests_per_sec > 0.0 {
            self.whoami.requests_per_sec / self.healthz.requests_per_sec
        } else {
            0.0
        }
    }
}

/// Everything the bench measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// In the order they ran; at least one.
    pub rounds: Vec<Round>,
    /// `otesse_api_key_requests_total` once the keyed run was over.
    pub keyed_requests: u64,
    /// `otesse_usage_rows_dropped_total` just before shutdown.
    pub dropped: u64,
    /// The key's `usage.total_requests` after the restart.
    pub written: u64,
    /// Server CPU time per request during each measured run, in µs: (whoami, healthz). Unlike
    /// the throughput ratio, it hardly depends on how the CPU is shared with wrk; their
    /// difference is the keyed request's extra cost, which must not grow (F2).
    pub cpu_us_per_request: Option<(f64, f64)>,
    pub backend: Backend,
}

impl Report {
    /// The round with the median ratio (the lower middle one of an even count).
    pub fn median(&self) -> &Round {
        let mut order: Vec<&Round> = self.rounds.iter().collect();
        order.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
        order[(order.len() - 1) / 2]
    }

    pub fn ratio(&self) -> f64 {
        self.median().ratio()
    }

    pub fn nothing_lost(&self) -> bool {
        self.written == self.keyed_requests && self.dropped == 0
    }

    /// Why the bench fails, if it does.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        // On PostgreSQL the database shares this machine's cores with the server and wrk, as
        // it would not in a deployment: the ratio is reported there, and the log gates.
        if self.backend == Backend::Sqlite && self.ratio() < MIN_RATIO {
            failures.push(format!("ratio {:.3} is below {MIN_RATIO:.2}", self.ratio()));
        }
        for (name, non_2xx) in [
            ("GET /v1/whoami", self.rounds.iter().map(|r| r.whoami.non_2xx).sum::<u64>()),
            ("GET /healthz", self.rounds.iter().map(|r| r.healthz.non_2xx).sum()),
        ] {
            if non_2xx > 0 {
                failures.push(format!("{name} had {non_2xx} non-2xx responses"));
            }
        }
        if !self.nothing_lost() {
            failures.push("the usage log does not match the keyed requests".into());
        }
        failures
    }

    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }
}

fn run_line(label: &str, run: &wrk::Report) -> String {
    format!(
        "{label}: {:.1} req/s  p50 {:.2} ms  p99 {:.2} ms  ({} requests, {} non-2xx)",
        run.requests_per_sec, run.p50_ms, run.p99_ms, run.requests, run.non_2xx
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let median = self.median();
        writeln!(f, "{}", run_line("authenticated   GET /v1/whoami ", &median.whoami))?;
        writeln!(f, "{}", run_line("unauthenticated GET /healthz   ", &median.healthz))?;
        let gate = match self.backend {
            Backend::Sqlite => format!("gate >= {MIN_RATIO:.2}"),
            Backend::Postgres => "not gated: the database shares the machine".to_owned(),
        };
        writeln!(f, "ratio: {:.3} on {} ({gate}, goal >= {TARGET_RATIO:.2})", self.ratio(), self.backend.name())?;
        if self.rounds.len() > 1 {
            let each: Vec<String> = self.rounds.iter().map(|r| format!("{:.3}", r.ratio())).collect();
            writeln!(f, "ratio per round: {} (the median counts; the lines above are its round)", each.join(", "))?;
        }
        let verdict = if self.nothing_lost() {
            "nothing lost".to_owned()
        } else if self.written > self.keyed_requests {
            format!("MISMATCH: {} more rows than keyed requests", self.written - self.keyed_requests)
        } else {
            format!("LOST {}", self.keyed_requests - self.written)
        };
        writeln!(
            f,
            "usage log: {} of {} keyed requests written after shutdown, {} dropped: {verdict}",
            self.written, self.keyed_requests, self.dropped
        )?;
        if let Some((whoami, healthz)) = self.cpu_us_per_request {
            writeln!(
                f,
                "server CPU per request: whoami {whoami:.1} µs, healthz {healthz:.1} µs: a keyed request costs {:.1} µs more",
                whoami - healthz
            )?;
        }
        for round in &self.rounds {
            for (name, run) in [("GET /v1/whoami", &round.whoami), ("GET /healthz", &round.healthz)] {
                if let Some(errors) = &run.socket_errors {
                    writeln!(f, "{name}: {errors}")?;
                }
            }
        }
        Ok(())
    }
}

/// Runs the bench, prints the report to stdout (progress goes to stderr) and returns it.
pub fn auth(options: &Options) -> Result<Report, Error> {
    wrk::ensure_installed()?;
    let binary = match std::env::var_os(BINARY_VAR) {
        // A/B comparisons: the same bench against builds kept from before and after a change.
        Some(path) => {
            let binary = PathBuf::from(path);
            if !binary.is_file() {
                return Err(Error::new(format!("{BINARY_VAR}={} is not a file", binary.display())));
            }
            step(format!("using {} ({BINARY_VAR}; not building)", binary.display()));
            binary
        }
        None => build_server(Profile::Release)?,
    };
    let mut dir = TempDir::new("otesse-bench")?;
    let schema = match options.backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(PostgresSchema::new("otesse_bench")?),
    };
    let database = schema.as_ref().map(PostgresSchema::server_env).unwrap_or_default();
    let result = measure(dir.path(), binary, options, &database);
    drop(schema);
    match &result {
        Ok(report) => {
            print!("{report}");
            for failure in report.failures() {
                eprintln!("FAILED: {failure}");
            }
        }
        Err(_) => {
            dir.keep();
            eprintln!("==> kept {} (server.log) for inspection", dir.path().display());
        }
    }
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

    let warm_up = Load { duration: WARM_UP.into(), ..load.clone() };
    let keyed = [format!("Authorization: Bearer {key}")];
    let healthz_url = client.url("/healthz");
    let whoami_url = client.url("/v1/whoami");
    let describe = |path: &str, load: &Load| {
        format!("wrk -t{} -c{} -d{} GET {path}", load.threads, load.connections, load.duration)
    };
    step(format!("warm-up: {}", describe("/healthz", &warm_up)));
    wrk::run(&healthz_url, &[], &warm_up)?;
    step(format!("warm-up: {} (with the key)", describe("/v1/whoami", &warm_up)));
    wrk::run(&whoami_url, &keyed, &warm_up)?;
    settled_counters(&client)?;

    let mut rounds = Vec::new();
    // Server CPU and requests over every round: (whoami, healthz).
    let (mut cpu, mut requests) = ((Some(Duration::ZERO), Some(Duration::ZERO)), (0, 0));
    let add = |total: &mut Option<Duration>, before: Option<Duration>, after: Option<Duration>| {
        *total = total.zip(after.zip(before)).map(|(sum, (after, before))| sum + after.saturating_sub(before));
    };
    for round in 1..=options.rounds {
        let of = options.rounds;
        step(format!("round {round}/{of}: {}", describe("/healthz", load)));
        let before = server.cpu_time();
        let healthz = wrk::run(&healthz_url, &[], load)?;
        add(&mut cpu.1, before, server.cpu_time());
        step(format!("round {round}/{of}: {} (with the key)", describe("/v1/whoami", load)));
        let before = server.cpu_time();
        let whoami = wrk::run(&whoami_url, &keyed, load)?;
        // The usage rows of this run are written by the background writer: let it finish (the
        // settled counters) before reading the CPU the run cost and starting the next baseline.
        settled_counters(&client)?;
        add(&mut cpu.0, before, server.cpu_time());
        requests = (requests.0 + whoami.requests, requests.1 + healthz.requests);
        rounds.push(Round { whoami, healthz });
    }
    let counters = settled_counters(&client)?;
    let per_request = |cpu: Duration, requests: u64| cpu.as_secs_f64() * 1e6 / requests.max(1) as f64;
    let cpu_us_per_request = cpu.0.zip(cpu.1).map(|(w, h)| (per_request(w, requests.0), per_request(h, requests.1)));

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
        keyed_requests: counters.keyed_requests,
        dropped: counters.dropped,
        written,
        cpu_us_per_request,
        backend: options.backend,
    })
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

    fn run(rps: f64, requests: u64, non_2xx: u64) -> wrk::Report {
        wrk::Report { requests_per_sec: rps, requests, non_2xx, socket_errors: None, p50_ms: 0.714, p99_ms: 2.1 }
    }

    fn report() -> Report {
        Report {
            rounds: vec![Round { whoami: run(41_234.5, 412_345, 0), healthz: run(45_678.9, 456_789, 0) }],
            keyed_requests: 412_345,
            dropped: 0,
            written: 412_345,
            cpu_us_per_request: None,
            backend: Backend::Sqlite,
        }
    }

    #[test]
    fn prints_the_report_lines() {
        let text = report().to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "authenticated   GET /v1/whoami : 41234.5 req/s  p50 0.71 ms  p99 2.10 ms  (412345 requests, 0 non-2xx)",
                "unauthenticated GET /healthz   : 45678.9 req/s  p50 0.71 ms  p99 2.10 ms  (456789 requests, 0 non-2xx)",
                "ratio: 0.903 on SQLite (gate >= 0.65, goal >= 0.80)",
                "usage log: 412345 of 412345 keyed requests written after shutdown, 0 dropped: nothing lost",
            ]
        );
        assert!(report().passed());
    }

    #[test]
    fn prints_server_cpu_per_request_when_measured() {
        let text = Report { cpu_us_per_request: Some((12.46, 8.0)), ..report() }.to_string();
        assert!(
            text.contains("server CPU per request: whoami 12.5 µs, healthz 8.0 µs: a keyed request costs 4.5 µs more"),
            "{text}"
        );
        assert!(!report().to_string().contains("server CPU"));
    }

    #[test]
    fn lost_rows_low_ratio_and_errors_fail() {
        let lost = Report { written: 412_300, ..report() };
        assert!(
            lost.to_string().contains("412300 of 412345 keyed requests written after shutdown, 0 dropped: LOST 45")
        );
        assert!(!lost.passed());

        let dropped = Report { dropped: 3, ..report() };
        assert!(!dropped.passed());

        let below_goal = Report {
            rounds: vec![Round { whoami: run(30_000.0, 300_000, 0), healthz: run(45_678.9, 456_789, 0) }],
            keyed_requests: 300_000,
            written: 300_000,
            ..report()
        };
        assert!(below_goal.to_string().contains("ratio: 0.657 on SQLite (gate >= 0.65, goal >= 0.80)"));
        assert!(below_goal.passed(), "below the goal but above the gate passes");
        let slow = Report {
            rounds: vec![Round { whoami: run(29_000.0, 290_000, 0), healthz: run(45_678.9, 456_789, 0) }],
            keyed_requests: 290_000,
            written: 290_000,
            backend: Backend::Postgres,
            ..report()
        };
        assert!(slow.to_string().contains("ratio: 0.635 on PostgreSQL (not gated"));
        assert!(slow.passed(), "on PostgreSQL the usage log gates, not the ratio");
        assert!(!Report { dropped: 1, ..slow.clone() }.passed());
        let slow = Report { backend: Backend::Sqlite, ..slow };
        assert_eq!(slow.failures(), ["ratio 0.635 is below 0.65"]);

        let errors = Report {
            rounds: vec![Round { whoami: run(41_234.5, 412_345, 0), healthz: run(45_678.9, 456_789, 2) }],
            ..report()
        };
        assert_eq!(errors.failures(), ["GET /healthz had 2 non-2xx responses"]);
    }

    #[test]
    fn the_median_round_counts_and_every_rounds_errors_fail() {
        let round = |whoami: f64, non_2xx: u64| Round {
            whoami: run(whoami, 100_000, non_2xx),
            healthz: run(50_000.0, 200_000, 0),
        };
        let three = Report { rounds: vec![round(45_000.0, 0), round(30_000.0, 0), round(40_000.0, 0)], ..report() };
        assert!((three.ratio() - 0.8).abs() < 1e-9, "{}", three.ratio());
        assert_eq!(three.median().whoami.requests_per_sec, 40_000.0);
        let text = three.to_string();
        assert!(text.contains("ratio per round: 0.900, 0.600, 0.800 (the median counts"), "{text}");
        assert!(text.contains("authenticated   GET /v1/whoami : 40000.0 req/s"), "{text}");
        // With an even count, the lower middle round.
        let four = Report {
            rounds: vec![round(45_000.0, 0), round(30_000.0, 0), round(40_000.0, 0), round(35_000.0, 0)],
            ..report()
        };
        assert!((four.ratio() - 0.7).abs() < 1e-9);
        // A round that is not the median still fails the bench with its errors.
        let errors = Report { rounds: vec![round(45_000.0, 0), round(30_000.0, 3), round(40_000.0, 0)], ..report() };
        assert_eq!(errors.failures(), ["GET /v1/whoami had 3 non-2xx responses"]);
    }

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
