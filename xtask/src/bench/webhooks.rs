//! `cargo xtask bench webhooks`: how fast outbound webhooks go out, and that each goes out once.
//!
//! The server runs as a release build on a fresh SQLite data dir, or with `--database postgres`
//! in a fresh PostgreSQL schema, as one process or, on PostgreSQL, `--processes 2` sharing the
//! database (and so the jobs table: either process's worker may deliver any event). A local
//! receiver (the xtask's own small HTTP server) answers 204 and records the `webhook-id` of
//! every delivery and when it arrived. One endpoint is subscribed; events are then published at
//! `--rate` per second for `--duration` through `POST /v1/webhook-endpoints/{id}/test`, spread
//! over the processes. That route takes the path every change's event takes: one transaction
//! stores the event, its delivery and the delivery's queued `webhook_delivery` job (the outbox),
//! and the job worker delivers it signed, through the SSRF guard. Its answer names the
//! `webhook-id` the receiver will see, so each delivery is matched to its request.
//!
//! Printed: events published per second, deliveries per second at the receiver, p50/p99/max
//! from the request (its start) to the delivery's arrival, and the counts. Fails when a
//! delivery is lost, arrives twice, or carries an id no request was answered with, or when a
//! publish was not accepted; the latency goal (p99 under 1 s at 100 events/s) is printed
//! beside the figures and does not fail the run, since it moves with the machine.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::args::Flags;
use crate::error::Error;
use crate::fake_http::FakeHttp;
use crate::http::Client;
use crate::server::{Launch, ServerProcess, free_port, random_hex};
use crate::workspace::{Backend, Profile, step};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "bench password 123";
/// The goal at 100 events/s (issue 16): p99 from the change to its delivery.
const GOAL_P99: Duration = Duration::from_secs(1);
/// How long the receiver may take to see every delivery once publishing stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
/// After the last expected delivery, how long the receiver keeps listening for a second copy.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Events published per second.
    pub rate: u32,
    /// How long events are published.
    pub duration: Duration,
    pub backend: Backend,
    /// Server processes sharing the database (more than one needs PostgreSQL).
    pub processes: u32,
    /// Bench the debug server the tests build instead of a release build (CI's short run,
    /// which checks that nothing is lost or sent twice, not the figures).
    pub debug: bool,
}

impl Options {
    /// `[--rate 100] [--duration 20s] [--database sqlite|postgres] [--processes 1] [--debug]`,
    /// also as `--flag=value`.
    pub fn parse(args: &[&str]) -> Result<Self, Error> {
        let mut options =
            Self { rate: 100, duration: Duration::from_secs(20), backend: Backend::Sqlite, processes: 1, debug: false };
        let mut flags = Flags::new(args);
        while let Some(flag) = flags.next() {
            match flag.name {
                "--debug" if flag.is_switch() => options.debug = true,
                "--rate" => options.rate = super::parse_count(flag.name, flags.value(&flag)?)?,
                "--duration" => options.duration = seconds(flags.value(&flag)?)?,
                "--database" => options.backend = Backend::parse(flags.value(&flag)?)?,
                "--processes" => options.processes = super::parse_count(flag.name, flags.value(&flag)?)?,
                _ => return Err(flag.unknown()),
            }
        }
        if options.processes > 1 && options.backend != Backend::Postgres {
            return Err(Error::new("--processes above 1 needs --database postgres (SQLite is one process only)"));
        }
        if options.processes > 8 {
            return Err(Error::new("--processes: at most 8"));
        }
        Ok(options)
    }
}

/// `20s`, `2m` or a whole number of seconds.
fn seconds(raw: &str) -> Result<Duration, Error> {
    let bad = || Error::new(format!("--duration `{raw}`: expected e.g. 20s, 2m"));
    let (digits, unit) = match raw.strip_suffix('m') {
        Some(digits) => (digits, 60),
        None => (raw.strip_suffix('s').unwrap_or(raw), 1),
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n * unit)),
        _ => Err(bad()),
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub options: Options,
    /// Events whose publishing request was answered 202.
    pub published: u64,
    /// Publishing requests answered otherwise (each with its status), or not answered.
    pub refused: Vec<String>,
    /// From the first request's start to the last answer.
    pub publish_window: Duration,
    /// Every delivery the receiver saw, duplicates included.
    pub deliveries: u64,
    /// From the first request's start to the last delivery.
    pub delivery_window: Duration,
    /// Request start to delivery, for each event delivered (the first copy), sorted.
    pub latencies: Vec<Duration>,
    /// Published events the receiver had not seen when the wait ([`DRAIN_TIMEOUT`]) ended.
    pub lost: u64,
    /// Events the receiver saw more than once.
    pub duplicated: u64,
    /// Deliveries with an id no request was answered with.
    pub unknown: u64,
    /// Successful delivery attempts each process counted (`otesse_webhook_deliveries_total`).
    pub per_process: Vec<Option<u64>>,
}

impl Report {
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.lost > 0 {
            failures.push(format!(
                "{} published events were not delivered within {}s of the last publish",
                self.lost,
                DRAIN_TIMEOUT.as_secs()
            ));
        }
        if self.duplicated > 0 {
            failures.push(format!("{} events were delivered more than once", self.duplicated));
        }
        if self.unknown > 0 {
            failures.push(format!("{} deliveries carried an id no request was answered with", self.unknown));
        }
        if !self.refused.is_empty() {
            failures.push(format!(
                "{} publishing requests were not accepted (first: {})",
                self.refused.len(),
                self.refused[0]
            ));
        }
        if self.published == 0 {
            failures.push("nothing was published".into());
        }
        failures
    }

    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    fn percentile(&self, p: f64) -> Option<Duration> {
        percentile(&self.latencies, p)
    }
}

/// The `p` quantile (0.0 to 1.0) of sorted values, nearest rank.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn per_second(count: u64, window: Duration) -> f64 {
    count as f64 / window.as_secs_f64().max(1e-9)
}

fn ms(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "webhooks: {} event/s asked for {}s on {}, {} process{}{}",
            o.rate,
            o.duration.as_secs(),
            o.backend.name(),
            o.processes,
            if o.processes == 1 { "" } else { "es" },
            if o.debug { " (debug build: the figures do not count)" } else { "" }
        )?;
        writeln!(
            f,
            "  published   {:>8} events in {:.1}s: {:.1} events/s",
            self.published,
            self.publish_window.as_secs_f64(),
            per_second(self.published, self.publish_window)
        )?;
        writeln!(
            f,
            "  delivered   {:>8} deliveries in {:.1}s: {:.1} deliveries/s at the receiver",
            self.deliveries,
            self.delivery_window.as_secs_f64(),
            per_second(self.deliveries, self.delivery_window)
        )?;
        let p99 = self.percentile(0.99);
        let goal = match p99 {
            Some(p99) if p99 < GOAL_P99 => "met",
            Some(_) => "NOT met",
            None => "-",
        };
        writeln!(
            f,
            "  change -> delivery: p50 {}, p90 {}, p99 {}, max {} (goal at 100 events/s: p99 < 1 s; {goal})",
            ms(self.percentile(0.50)),
            ms(self.percentile(0.90)),
            ms(p99),
            ms(self.latencies.last().copied()),
        )?;
        writeln!(
            f,
            "  not delivered (lost or late) {}, delivered twice {}, unknown ids {}, publishes not accepted {}",
            self.lost,
            self.duplicated,
            self.unknown,
            self.refused.len()
        )?;
        if self.per_process.len() > 1 {
            let shares: Vec<String> = self
                .per_process
                .iter()
                .enumerate()
                .map(|(i, n)| format!("process {}: {}", i + 1, n.map_or_else(|| "?".into(), |n| n.to_string())))
                .collect();
            writeln!(f, "  successful deliveries by process: {}", shares.join(", "))?;
        }
        Ok(())
    }
}

/// Runs the bench, prints the report to stdout (progress to stderr) and returns it.
pub fn run(options: &Options) -> Result<Report, Error> {
    let binary = super::server_binary(if options.debug { Profile::Debug } else { Profile::Release })?;
    let mut scratch = super::Scratch::new(options.backend, "otesse-bench-webhooks", "otesse_bench")?;
    let result = measure(scratch.path(), binary, options, &scratch.server_env());
    scratch.report(&result, Report::failures, "server logs");
    if result.as_ref().is_ok_and(|report| !report.passed()) {
        scratch.keep("server logs");
    }
    result
}

/// What the receiver saw: each `webhook-id` with every arrival.
type Arrivals = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

fn measure(dir: &Path, binary: PathBuf, options: &Options, database: &[(String, String)]) -> Result<Report, Error> {
    let arrivals: Arrivals = Arc::default();
    let received = Arc::new(AtomicU64::new(0));
    let receiver = {
        let (arrivals, received) = (Arc::clone(&arrivals), Arc::clone(&received));
        FakeHttp::start(move |request| {
            let at = Instant::now();
            let id = request.header("webhook-id").unwrap_or("").to_owned();
            arrivals.lock().unwrap_or_else(|e| e.into_inner()).entry(id).or_default().push(at);
            received.fetch_add(1, Ordering::Relaxed);
            (204, String::new())
        })?
    };

    // Every process shares the master key (the endpoint's secret is sealed by one and opened
    // by whichever delivers).
    let master_key = {
        let hex = random_hex(32)?;
        let bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0)).collect();
        format!("v1:{}", base64(&bytes))
    };
    let setup_token = random_hex(24)?;
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for n in 1..=options.processes {
        let port = free_port()?;
        let data = dir.join(format!("process-{n}"));
        std::fs::create_dir_all(&data)?;
        let launch = Launch {
            binary: binary.clone(),
            env: [
                ("OTESSE_LISTEN".into(), format!("127.0.0.1:{port}")),
                ("OTESSE_DATA_DIR".into(), data.display().to_string()),
                ("OTESSE_SETUP_TOKEN".into(), setup_token.clone()),
                ("OTESSE_MASTER_KEYS".into(), master_key.clone()),
                ("OTESSE_LOG_FILTER".into(), "warn".into()),
                ("OTESSE_ALLOW_LOOPBACK_URLS".into(), "true".into()),
                ("OTESSE_SIGN_IN__MAX_FAILURES_PER_IP".into(), "1000".into()),
            ]
            .into_iter()
            .chain(database.iter().cloned())
            .collect(),
            cwd: data.clone(),
            log: dir.join(format!("server-{n}.log")),
        };
        step(format!("starting server {n}/{} on port {port}", options.processes));
        let mut server = ServerProcess::start(&launch)?;
        let client = Client::new(format!("http://127.0.0.1:{port}"));
        server.wait_ready(&client, READY_TIMEOUT)?;
        servers.push(server);
        clients.push(client);
    }

    clients[0].setup(&setup_token, EMAIL, PASSWORD)?;
    let session = clients[0].sign_in(EMAIL, PASSWORD)?;
    let body = json!({
        "url": format!("{}/hooks", receiver.url()),
        "events": ["api_key.created"],
        "description": "bench receiver",
    });
    let (status, endpoint) = clients[0].call("POST /v1/webhook-endpoints", Some(&session), Some(body))?;
    if status != 201 {
        return Err(Error::new(format!("POST /v1/webhook-endpoints: expected 201, got {status}: {endpoint}")));
    }
    let endpoint_id =
        endpoint["id"].as_str().ok_or_else(|| Error::new("POST /v1/webhook-endpoints: no id"))?.to_owned();
    let test_path = format!("POST /v1/webhook-endpoints/{endpoint_id}/test");

    // One delivery through each process first, so connections and caches are warm and a broken
    // set-up fails here rather than as a run of losses.
    let mut warm_up = Vec::new();
    for client in &clients {
        let (status, answer) = client.call(&test_path, Some(&session), None)?;
        let id = answer["message_id"].as_str().unwrap_or("").to_owned();
        if status != 202 || id.is_empty() {
            return Err(Error::new(format!("{test_path}: expected 202 with a message_id, got {status}: {answer}")));
        }
        warm_up.push(id);
    }
    wait_for(&arrivals, &warm_up, Duration::from_secs(30))
        .map_err(|missing| Error::new(format!("the warm-up deliveries did not arrive ({missing} missing)")))?;
    let warm_up_count = received.load(Ordering::Relaxed);
    let baseline: Vec<Option<u64>> = clients.iter().map(successful_deliveries).collect();

    let total = u64::from(options.rate) * options.duration.as_secs();
    step(format!(
        "publishing {total} events at {}/s through {test_path} ({} process{})",
        options.rate,
        options.processes,
        if options.processes == 1 { "" } else { "es" }
    ));
    // Enough publishers that one slow answer does not hold the schedule back.
    let publishers = (options.rate / 20).clamp(2, 64);
    let interval = Duration::from_secs_f64(1.0 / f64::from(options.rate));
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(100);
    let sent: Arc<Mutex<Vec<(String, Instant)>>> = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let refused: Arc<Mutex<Vec<String>>> = Arc::default();
    let last_answer = Arc::new(Mutex::new(start));
    let threads: Vec<_> = (0..publishers)
        .map(|_| {
            let (next, sent, refused, last_answer) =
                (Arc::clone(&next), Arc::clone(&sent), Arc::clone(&refused), Arc::clone(&last_answer));
            // A client (and connection pool) per publisher and process.
            let clients: Vec<Client> = clients.iter().map(|c| Client::new(c.url(""))).collect();
            let (session, path) = (session.clone(), test_path.clone());
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let due = start + interval.mul_f64(i as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let client = &clients[(i % clients.len() as u64) as usize];
                    let at = Instant::now();
                    match client.call(&path, Some(&session), None) {
                        Ok((202, answer)) => match answer["message_id"].as_str() {
                            Some(id) => lock(&sent).push((id.to_owned(), at)),
                            None => lock(&refused).push(format!("202 without a message_id: {answer}")),
                        },
                        Ok((status, answer)) => lock(&refused).push(format!("{status}: {answer}")),
                        Err(err) => lock(&refused).push(err.to_string()),
                    }
                    let now = Instant::now();
                    let mut last = lock(&last_answer);
                    *last = (*last).max(now);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| Error::new("a publishing thread panicked"))?;
    }
    let sent = std::mem::take(&mut *lock(&sent));
    let refused = std::mem::take(&mut *lock(&refused));
    let publish_window = lock(&last_answer).duration_since(start);
    let first_sent = sent.iter().map(|(_, at)| *at).min().unwrap_or(start);

    step(format!("{} events published; waiting for their deliveries", sent.len()));
    let ids: Vec<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    let drained = wait_for(&arrivals, &ids, DRAIN_TIMEOUT);
    if let Err(missing) = drained {
        step(format!("{missing} deliveries still missing after {}s", DRAIN_TIMEOUT.as_secs()));
    }
    // Anything delivered twice would most likely come now (a second worker, a lost lease).
    std::thread::sleep(SETTLE);

    let arrivals = std::mem::take(&mut *lock(&arrivals));
    let deliveries = received.load(Ordering::Relaxed) - warm_up_count;
    let mut latencies = Vec::with_capacity(sent.len());
    let (mut lost, mut duplicated) = (0, 0);
    let mut last_arrival = first_sent;
    for (id, at) in &sent {
        match arrivals.get(id) {
            Some(times) => {
                let first = times.iter().min().copied().unwrap_or(*at);
                latencies.push(first.saturating_duration_since(*at));
                last_arrival = last_arrival.max(times.iter().max().copied().unwrap_or(first));
                if times.len() > 1 {
                    duplicated += 1;
                }
            }
            None => lost += 1,
        }
    }
    latencies.sort();
    let known: std::collections::HashSet<&str> =
        sent.iter().map(|(id, _)| id.as_str()).chain(warm_up.iter().map(String::as_str)).collect();
    let unknown =
        arrivals.iter().filter(|(id, _)| !known.contains(id.as_str())).map(|(_, times)| times.len() as u64).sum();
    let duplicated_warm_up = warm_up.iter().filter(|id| arrivals.get(*id).is_some_and(|t| t.len() > 1)).count();
    let per_process = clients
        .iter()
        .zip(&baseline)
        .map(|(client, before)| Some(successful_deliveries(client)? - (*before)?))
        .collect();

    step("stopping the servers with SIGTERM");
    for server in servers {
        let status = server.stop(STOP_TIMEOUT)?;
        if !status.success() {
            return Err(Error::new(format!("a server exited with {status} after SIGTERM")));
        }
    }
    drop(receiver);

    Ok(Report {
        options: options.clone(),
        published: sent.len() as u64,
        refused,
        publish_window,
        deliveries,
        delivery_window: last_arrival.saturating_duration_since(first_sent),
        latencies,
        lost,
        duplicated: duplicated + duplicated_warm_up as u64,
        unknown,
        per_process,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls until every id has arrived; `Err(missing)` at the deadline.
fn wait_for(arrivals: &Arrivals, ids: &[String], timeout: Duration) -> Result<(), usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let missing = {
            let arrivals = lock(arrivals);
            ids.iter().filter(|id| !arrivals.contains_key(*id)).count()
        };
        if missing == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(missing);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `otesse_webhook_deliveries_total{outcome="success"}` of one process, if it answers.
fn successful_deliveries(client: &Client) -> Option<u64> {
    let text = client.metrics().ok()?;
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key.starts_with("otesse_webhook_deliveries_total{") && key.contains("outcome=\"success\""))
            .then(|| value.trim().parse::<f64>().ok().map(|v| v as u64))
            .flatten()
    })
}

/// Standard base64 with padding (the master key's encoding).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let defaults = Options::parse(&[]).unwrap();
        assert_eq!(
            defaults,
            Options {
                rate: 100,
                duration: Duration::from_secs(20),
                backend: Backend::Sqlite,
                processes: 1,
                debug: false
            }
        );
        let custom = Options::parse(&[
            "--rate",
            "1000",
            "--duration=3s",
            "--database",
            "postgres",
            "--processes",
            "2",
            "--debug",
        ])
        .unwrap();
        assert_eq!(
            custom,
            Options {
                rate: 1000,
                duration: Duration::from_secs(3),
                backend: Backend::Postgres,
                processes: 2,
                debug: true
            }
        );
        assert_eq!(Options::parse(&["--duration", "2m"]).unwrap().duration, Duration::from_secs(120));
        for bad in [
            &["--rate"][..],
            &["--rate", "0"],
            &["--duration", "fast"],
            &["--duration", "0s"],
            &["--processes", "2"],
            &["--debug=yes"],
            &["--database", "postgres", "--processes", "9"],
            &["--verbose"],
        ] {
            assert!(Options::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&values, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&[Duration::from_millis(7)], 0.99), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff; 32]).len(), 44);
    }

    #[test]
    fn losses_duplicates_and_refusals_fail_but_latency_does_not() {
        let report = Report {
            options: Options::parse(&[]).unwrap(),
            published: 10,
            refused: Vec::new(),
            publish_window: Duration::from_secs(1),
            deliveries: 10,
            delivery_window: Duration::from_secs(1),
            latencies: vec![Duration::from_secs(5); 10],
            lost: 0,
            duplicated: 0,
            unknown: 0,
            per_process: vec![Some(10)],
        };
        assert!(report.passed(), "{:?}", report.failures());
        assert!(report.to_string().contains("NOT met"), "{report}");
        for broken in [
            Report { lost: 1, ..report.clone() },
            Report { duplicated: 1, ..report.clone() },
            Report { unknown: 1, ..report.clone() },
            Report { refused: vec!["500".into()], ..report.clone() },
            Report { published: 0, ..report.clone() },
        ] {
            assert!(!broken.passed(), "{broken}");
        }
    }
}
