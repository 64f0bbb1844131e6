//! `cargo xtask bench usage-scale`: the usage log at scale (F3). Fills the usage table straight
//! through SQL (a recursive CTE on SQLite, `INSERT ... SELECT generate_series` on PostgreSQL)
//! with `--rows` rows for one key among `--total-rows` spread over `--keys` keys, their times
//! over the last 180 days in id order (ids grow with time, as the writer makes them), then
//! starts the server and measures, one request at a time, the key detail (usage summary and
//! last 50 requests, `GET /v1/api-keys/{id}`) and a deep page of the usage log (`GET
//! /v1/api-keys/{id}/usage`, reached by following the API's cursor `--pages` pages down):
//! p50/p99 client side and from the server's own histogram. Then the retention job: queued as
//! the scheduler queues it (a `usage_retention` job), it deletes the rows older than 90 days
//! while wrk loads `GET /v1/whoami` with the key; the keyed p99 during it is compared with
//! the same load without it, and every keyed request must reach the usage log.
//!
//! The other keys' rows carry key ids with no key row (the usage table has no foreign key):
//! they only make the table and its indexes as large as they would be.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::args::Flags;
use crate::error::{Context, Error};
use crate::http::Client;
use crate::server::{Launch, ServerProcess, free_port, random_hex};
use crate::sql::SqlTarget;
use crate::workspace::{Backend, Profile, step};
use crate::wrk::{self, Load};

const READY_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "bench password 123";
/// The goal (F3) for both reads, at p99.
const GOAL_MS: f64 = 10.0;
/// The rows' times cover this many days back from now; retention keeps the last 90.
const SPAN_DAYS: u64 = 180;
const RETENTION_DAYS: u64 = 90;
/// The keyed load runs in slices of this length, so that those wholly inside the retention
/// job's run can be told from the others.
const SLICE: &str = "2s";
const DETAIL_ROUTE: &str = "/v1/api-keys/{id}";
const USAGE_ROUTE: &str = "/v1/api-keys/{id}/usage";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Rows of the one measured key.
    pub rows: u64,
    /// Keys the rows are spread over, the measured one included.
    pub keys: u64,
    /// Rows in the table in all.
    pub total_rows: u64,
    pub backend: Backend,
    /// How deep the measured page of the usage log is, in pages of 100.
    pub pages: u32,
    /// Requests timed per read.
    pub samples: u32,
    /// Slices of the keyed load without retention (the baseline).
    pub baseline_slices: u32,
    /// The debug server the tests build, not a release build (for CI: no timing is gated).
    pub debug: bool,
}

impl Options {
    /// `[--rows 10000000] [--keys 1000] [--total-rows 50000000] [--database sqlite]
    /// [--pages 1000] [--samples 1000] [--debug]`, also as `--flag=value`.
    pub fn parse(args: &[&str]) -> Result<Self, Error> {
        let mut options = Self {
            rows: 10_000_000,
            keys: 1_000,
            total_rows: 50_000_000,
            backend: Backend::Sqlite,
            pages: 1_000,
            samples: 1_000,
            baseline_slices: 5,
            debug: false,
        };
        let mut flags = Flags::new(args);
        while let Some(flag) = flags.next() {
            if flag.name == "--debug" && flag.is_switch() {
                options.debug = true;
                continue;
            }
            let (name, value) = (flag.name, flags.value(&flag)?);
            let count = || super::positive(name, value);
            let small = |n: u64| u32::try_from(n).map_err(|_| Error::new(format!("{name} `{value}` is too large")));
            match name {
                "--rows" => options.rows = count()?,
                "--keys" => options.keys = count()?,
                "--total-rows" => options.total_rows = count()?,
                "--pages" => options.pages = small(count()?)?,
                "--samples" => options.samples = small(count()?)?,
                "--database" => options.backend = Backend::parse(value)?,
                _ => return Err(flag.unknown()),
            }
        }
        if options.total_rows < options.rows {
            return Err(Error::new("--total-rows cannot be below --rows"));
        }
        if options.total_rows > options.rows && options.keys < 2 {
            return Err(Error::new("--total-rows above --rows needs --keys of at least 2"));
        }
        Ok(options)
    }

    fn other_keys(&self) -> u64 {
        self.keys.saturating_sub(1).max(1)
    }
}

/// Latencies of one read, in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub client_p50: f64,
    pub client_p99: f64,
    /// The server histogram's bucket bounds holding its p50 and p99 (`None` above the last).
    pub server_p50: Option<f64>,
    pub server_p99: Option<f64>,
}

/// Runs the bench; prints its figures (progress on stderr). Fails on a lost usage row, a
/// retention that left old rows, or a failed request; timings are reported against the goal.
pub fn run(options: &Options) -> Result<bool, Error> {
    wrk::ensure_installed()?;
    let binary = super::server_binary(if options.debug { Profile::Debug } else { Profile::Release })?;
    let mut scratch = super::Scratch::new(options.backend, "otesse-bench-usage", "otesse_bench_usage")?;
    let result = measure(scratch.path(), binary, options, &scratch.server_env(), &scratch.sql());
    if result.is_err() {
        scratch.keep("server.log");
    }
    result
}

fn measure(
    dir: &Path,
    binary: PathBuf,
    options: &Options,
    database: &[(String, String)],
    sql: &SqlTarget,
) -> Result<bool, Error> {
    let port = free_port()?;
    let setup_token = random_hex(24)?;
    let launch = |jobs: bool| Launch {
        binary: binary.clone(),
        env: [
            ("OTESSE_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("OTESSE_DATA_DIR".into(), dir.display().to_string()),
            ("OTESSE_SETUP_TOKEN".into(), setup_token.clone()),
            ("OTESSE_LOG_FILTER".into(), "warn,otesse_server::jobs=info".into()),
            ("OTESSE_SIGN_IN__MAX_FAILURES_PER_IP".into(), "1000".into()),
            // As in `bench auth`: rate limiting on, out of the load's reach.
            ("OTESSE_RATE_LIMIT__KEY_REQUESTS".into(), "100000000".into()),
            ("OTESSE_RATE_LIMIT__KEY_PERIOD_SECS".into(), "1000".into()),
            ("OTESSE_JOBS__ENABLED".into(), jobs.to_string()),
            ("OTESSE_JOBS__POLL_INTERVAL_MS".into(), "100".into()),
            ("OTESSE_JOBS__USAGE_RETENTION_DAYS".into(), RETENTION_DAYS.to_string()),
        ]
        .into_iter()
        .chain(database.iter().cloned())
        .collect(),
        cwd: dir.to_owned(),
        log: dir.join("server.log"),
    };
    let client = Client::new(format!("http://127.0.0.1:{port}"));

    step(format!("starting the server on port {port} (migrations, setup, the key)"));
    let first = launch(false);
    let mut server = ServerProcess::start(&first)?;
    server.wait_ready(&client, READY_TIMEOUT)?;
    client.setup(&setup_token, EMAIL, PASSWORD)?;
    let session = client.sign_in(EMAIL, PASSWORD)?;
    let (key, key_id) = client.create_key(&session, "bench")?;
    stopped(server.stop(STOP_TIMEOUT)?, "the first server")?;

    let key_filter = key_match(sql, &key_id);
    let others = if options.total_rows > options.rows {
        format!(", the rest over {} other keys", options.other_keys())
    } else {
        String::new()
    };
    step(format!(
        "filling api_key_usage: {} rows, {} of them for the key{others}, over {SPAN_DAYS} days",
        options.total_rows, options.rows
    ));
    let started = Instant::now();
    fill(sql, options, &key_filter)?;
    let fill_secs = started.elapsed().as_secs_f64();
    let filled_max_id = sql.count("SELECT max(id) FROM api_key_usage")?;
    let key_rows = sql.count(&format!("SELECT count(*) FROM api_key_usage WHERE {key_filter}"))?;
    if key_rows != options.rows {
        return Err(Error::new(format!("the fill wrote {key_rows} rows for the key, not {}", options.rows)));
    }
    let size = database_size(sql)?;
    step(format!("filled in {fill_secs:.1} s ({:.0} rows/s); database {size}", options.total_rows as f64 / fill_secs));
    // The daily retention job of today and tomorrow marked done, so that the server does not
    // start it on its own at start-up: the bench queues it when the load is running.
    suppress_scheduled_retention(sql)?;

    step("restarting the server with its background jobs on");
    let second = launch(true);
    let mut server = ServerProcess::start(&second)?;
    server.wait_ready(&client, READY_TIMEOUT)?;
    let session = client.sign_in(EMAIL, PASSWORD)?;

    // Warm the caches and the prepared statements of both reads.
    let detail_path = format!("/v1/api-keys/{key_id}");
    for _ in 0..20 {
        client.get_json(&detail_path, &session)?;
    }
    let detail = client.get_json(&detail_path, &session)?;
    let total = detail.pointer("/usage/total_requests").and_then(Value::as_u64).unwrap_or(0);
    let recent = detail.pointer("/recent_requests").and_then(Value::as_array).map_or(0, Vec::len);
    if total < options.rows || recent != 50.min(options.rows as usize) {
        return Err(Error::new(format!(
            "the key detail shows {total} requests and {recent} recent ones; expected {} and 50",
            options.rows
        )));
    }
    step(format!("timing {} key detail requests: GET {DETAIL_ROUTE}", options.samples));
    let detail_timing = time_requests(&client, &session, &detail_path, DETAIL_ROUTE, options.samples)?;

    let usage_path = format!("/v1/api-keys/{key_id}/usage?limit=100");
    step(format!("following the usage log's cursor {} pages down (100 rows a page)", options.pages));
    let started = Instant::now();
    let (deep_path, depth) = walk(&client, &session, &usage_path, options.pages)?;
    let walk_secs = started.elapsed().as_secs_f64();
    step(format!("timing {} requests of page {depth}: GET {USAGE_ROUTE}", options.samples));
    let deep_timing = time_requests(&client, &session, &deep_path, USAGE_ROUTE, options.samples)?;
    let plans = explain(sql, &key_filter)?;

    // The keyed load, without and then during retention.
    let keyed = [format!("Authorization: Bearer {key}")];
    let whoami = client.url("/v1/whoami");
    let load = Load { threads: 2, connections: 16, duration: SLICE.into() };
    step("warm-up: wrk GET /v1/whoami (with the key)");
    let mut answered = wrk::run(&whoami, &keyed, &load)?.requests;
    let mut baseline = Vec::new();
    for slice in 1..=options.baseline_slices {
        step(format!("baseline {slice}/{}: wrk -t2 -c16 -d{SLICE} GET /v1/whoami", options.baseline_slices));
        let report = wrk::run(&whoami, &keyed, &load)?;
        answered += report.requests;
        baseline.push(report);
    }

    let cutoff = unix_now() - RETENTION_DAYS * 86_400;
    let old_before =
        sql.count(&format!("SELECT count(*) FROM api_key_usage WHERE occurred_at < {}", at(sql, cutoff)))?;
    let rows_before = sql.count("SELECT count(*) FROM api_key_usage")?;
    step(format!("queueing the usage_retention job ({old_before} rows older than {RETENTION_DAYS} days) under load"));
    let job = queue_retention(sql)?;
    let done = Arc::new(AtomicBool::new(false));
    let retention_started = Instant::now();
    let watcher = {
        let (sql, done, job) = (sql.clone(), Arc::clone(&done), job.clone());
        std::thread::spawn(move || -> Result<(Duration, String), Error> {
            let state_sql = format!("SELECT state FROM jobs WHERE dedupe_key = '{job}'");
            loop {
                let state = sql.query(&state_sql)?.first().and_then(|row| row[0].clone()).unwrap_or_default();
                if state == "succeeded" || state == "failed" {
                    let elapsed = retention_started.elapsed();
                    done.store(true, Ordering::SeqCst);
                    return Ok((elapsed, state));
                }
                if retention_started.elapsed() > Duration::from_secs(3_600) {
                    done.store(true, Ordering::SeqCst);
                    return Err(Error::new("the retention job did not finish within an hour"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut during = Vec::new();
    let mut after_it = None;
    while !done.load(Ordering::SeqCst) {
        let report = wrk::run(&whoami, &keyed, &load)?;
        answered += report.requests;
        // A slice that ended with the job still running ran wholly during it.
        if done.load(Ordering::SeqCst) {
            after_it = Some(report);
        } else {
            during.push(report);
        }
    }
    let (retention, state) = watcher.join().map_err(|_| Error::new("the job watcher panicked"))??;
    if state != "succeeded" {
        let error = sql.query(&format!("SELECT last_error FROM jobs WHERE dedupe_key = '{job}'"))?;
        return Err(Error::new(format!("the retention job {state}: {error:?}")));
    }
    let old_after =
        sql.count(&format!("SELECT count(*) FROM api_key_usage WHERE occurred_at < {}", at(sql, cutoff)))?;
    let counters = super::settled_counters(&client)?;
    let rows_after = sql.count("SELECT count(*) FROM api_key_usage")?;
    let written_now =
        sql.count(&format!("SELECT count(*) FROM api_key_usage WHERE {key_filter} AND id > {filled_max_id}"))?;
    let load_avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    stopped(server.stop(STOP_TIMEOUT)?, "the server")?;

    // Report.
    let mut passed = true;
    let backend = options.backend.name();
    println!(
        "usage-scale on {backend}: {} rows, {} for the key, {} keys, filled in {fill_secs:.1} s ({:.0} rows/s), database {size}",
        options.total_rows,
        options.rows,
        if options.total_rows > options.rows { options.keys } else { 1 },
        options.total_rows as f64 / fill_secs
    );
    print_timing("key detail (summary + last 50)", DETAIL_ROUTE, &detail_timing);
    print_timing(&format!("usage log page {depth} (100 rows)"), USAGE_ROUTE, &deep_timing);
    println!(
        "  (reaching page {depth} through the cursor took {walk_secs:.1} s, {:.2} ms a page)",
        walk_secs * 1e3 / f64::from(depth.max(1))
    );
    for timing in [&detail_timing, &deep_timing] {
        if timing.client_p99 >= GOAL_MS {
            println!("  note: a p99 is not under the {GOAL_MS} ms goal");
        }
    }
    println!("plans:\n{plans}");
    let worst = |runs: &[wrk::Report]| runs.iter().map(|r| r.p99_ms).fold(0.0, f64::max);
    let median = |runs: &[wrk::Report]| {
        let mut p99: Vec<f64> = runs.iter().map(|r| r.p99_ms).collect();
        p99.sort_by(f64::total_cmp);
        p99.get((p99.len().max(1) - 1) / 2).copied().unwrap_or(f64::NAN)
    };
    let rate = |runs: &[wrk::Report]| runs.iter().map(|r| r.requests_per_sec).sum::<f64>() / runs.len().max(1) as f64;
    println!(
        "keyed GET /v1/whoami, wrk -t2 -c16 in {SLICE} slices: without retention p99 median {:.2} ms, worst {:.2} ms, {:.0} req/s ({} slices)",
        median(&baseline),
        worst(&baseline),
        rate(&baseline),
        baseline.len()
    );
    if during.is_empty() {
        let last = after_it.as_slice();
        println!(
            "  during retention: the job ended within the first slice; that slice: p99 {:.2} ms, {:.0} req/s",
            worst(last),
            rate(last)
        );
    } else {
        println!(
            "  during retention: p99 median {:.2} ms, worst {:.2} ms, {:.0} req/s ({} slices wholly inside the job)",
            median(&during),
            worst(&during),
            rate(&during),
            during.len()
        );
    }
    println!(
        "retention: {} rows older than {RETENTION_DAYS} days deleted in {:.1} s ({:.0} rows/s); {old_after} left; table {rows_before} -> {rows_after} rows",
        old_before - old_after,
        retention.as_secs_f64(),
        (old_before - old_after) as f64 / retention.as_secs_f64().max(1e-3)
    );
    let failed_answers: u64 = baseline.iter().chain(&during).chain(after_it.as_slice()).map(|r| r.non_2xx).sum();
    println!(
        "usage writer: {} keyed requests counted ({answered} answers read by wrk), {} rows written by the writer, \
         {written_now} new rows for the key in the table, {} dropped",
        counters.keyed_requests, counters.written, counters.dropped
    );
    println!("load average at the end: {}", load_avg.trim());
    if old_after > 0 {
        println!("FAILED: {old_after} rows older than {RETENTION_DAYS} days are left");
        passed = false;
    }
    if counters.dropped > 0 || written_now != counters.keyed_requests || counters.keyed_requests < answered {
        println!("FAILED: the usage log does not match the keyed requests");
        passed = false;
    }
    if failed_answers > 0 {
        println!("FAILED: {failed_answers} keyed requests were not answered 2xx");
        passed = false;
    }
    Ok(passed)
}

fn stopped(status: std::process::ExitStatus, what: &str) -> Result<(), Error> {
    if status.success() { Ok(()) } else { Err(Error::new(format!("{what} exited with {status} after SIGTERM"))) }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A Unix time as the database compares it with `occurred_at`: on SQLite the RFC 3339 text the
/// server stores, on PostgreSQL a timestamptz.
fn at(sql: &SqlTarget, unix: u64) -> String {
    if sql.is_sqlite() {
        format!("strftime('%Y-%m-%dT%H:%M:%f+00:00', {unix}, 'unixepoch')")
    } else {
        format!("to_timestamp({unix})")
    }
}

/// The SQL condition matching the key's id in `api_key_usage` (SQLite stores UUIDs as blobs).
fn key_match(sql: &SqlTarget, key_id: &str) -> String {
    if sql.is_sqlite() {
        format!("api_key_id = X'{}'", key_id.replace('-', ""))
    } else {
        format!("api_key_id = '{key_id}'")
    }
}

/// Writes the rows: row `n` (1 to total) at `now - 180 days + n * 180 days / total`, the key's
/// when `n * rows / total` steps up (so its rows are evenly spread), else one of the other
/// keys' in turn; 16 client addresses. Then the key's counters and addresses, as the writer
/// keeps them.
fn fill(sql: &SqlTarget, options: &Options, key_filter: &str) -> Result<(), Error> {
    let (rows, total, others) = (options.rows, options.total_rows, options.other_keys());
    let span = SPAN_DAYS * 86_400;
    let start = unix_now() - span;
    let key = key_filter.trim_start_matches("api_key_id = ");
    if sql.is_sqlite() {
        let script = format!(
            "PRAGMA synchronous = OFF;
             -- Each key's rows go to the end of its range of the (api_key_id, id) index: a
             -- page per key is hot, more than the default 2 MB cache holds at 1,000 keys.
             PRAGMA cache_size = -262144;
             CREATE TEMP TABLE bench_keys (n INTEGER PRIMARY KEY, id BLOB NOT NULL);
             WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n + 1 < {others})
             INSERT INTO bench_keys SELECT n, randomblob(16) FROM k;
             BEGIN;
             WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {total}),
             big(id, org) AS (SELECT id, organization_id FROM api_keys WHERE id = {key})
             INSERT INTO api_key_usage
               (api_key_id, organization_id, occurred_at, method, path, status, response_time_ms, client_ip)
             SELECT CASE WHEN s.n * {rows} / {total} > (s.n - 1) * {rows} / {total} THEN big.id ELSE b.id END,
                    big.org,
                    strftime('%Y-%m-%dT%H:%M:%f+00:00', {start} + s.n * {span}.0 / {total}, 'unixepoch'),
                    'GET', '/v1/whoami', 200, s.n % 50, '10.0.0.' || (s.n % 16 + 1)
             FROM s CROSS JOIN big JOIN bench_keys b ON b.n = s.n % {others};
             UPDATE api_keys SET request_count = request_count + {rows},
               last_used_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE id = {key};
             WITH RECURSIVE a(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM a WHERE n < 16)
             INSERT OR IGNORE INTO api_key_ips (api_key_id, ip) SELECT {key}, '10.0.0.' || n FROM a;
             COMMIT;
             ANALYZE;"
        );
        sqlite_script(sql, &script)
    } else {
        psql_script(
            sql,
            &[
                "SET synchronous_commit = off".to_owned(),
                format!(
                    "CREATE TEMP TABLE bench_keys AS SELECT n, gen_random_uuid() AS id FROM generate_series(0, {others} - 1) n;
                     INSERT INTO api_key_usage
                       (api_key_id, organization_id, occurred_at, method, path, status, response_time_ms, client_ip)
                     SELECT CASE WHEN s.n * {rows} / {total} > (s.n - 1) * {rows} / {total} THEN big.id ELSE b.id END,
                            big.organization_id,
                            to_timestamp({start} + s.n * {span}::float8 / {total}),
                            'GET', '/v1/whoami', 200, (s.n % 50)::int, '10.0.0.' || (s.n % 16 + 1)
                     FROM generate_series(1::int8, {total}::int8) s(n)
                     CROSS JOIN (SELECT id, organization_id FROM api_keys WHERE id = {key}) big
                     JOIN bench_keys b ON b.n = s.n % {others}
                     ORDER BY s.n;
                     UPDATE api_keys SET request_count = request_count + {rows}, last_used_at = now() WHERE id = {key};
                     INSERT INTO api_key_ips (api_key_id, ip)
                       SELECT {key}, '10.0.0.' || n FROM generate_series(1, 16) n ON CONFLICT DO NOTHING"
                ),
                "VACUUM ANALYZE api_key_usage".to_owned(),
            ],
        )
    }
}

/// Marks today's and tomorrow's daily `usage_retention` jobs done, by their dedupe keys.
fn suppress_scheduled_retention(sql: &SqlTarget) -> Result<(), Error> {
    let day = unix_now() / 86_400;
    let rows: Vec<String> = [day, day + 1]
        .iter()
        .map(|period| job_row(sql, &format!("usage_retention:{period}"), "succeeded"))
        .collect::<Result<_, _>>()?;
    write(sql, &rows.join(";\n"))
}

/// Queues a `usage_retention` job due now; returns its dedupe key.
fn queue_retention(sql: &SqlTarget) -> Result<String, Error> {
    let key = format!("usage_retention:bench-{}", random_hex(6)?);
    write(sql, &job_row(sql, &key, "queued")?)?;
    Ok(key)
}

/// An INSERT of a `usage_retention` job row in the state given, due a second ago.
fn job_row(sql: &SqlTarget, dedupe_key: &str, state: &str) -> Result<String, Error> {
    let id = random_hex(16)?;
    let (id, now) = if sql.is_sqlite() {
        (format!("X'{id}'"), "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-1 seconds')".to_owned())
    } else {
        (format!("'{id}'::uuid"), "now() - interval '1 second'".to_owned())
    };
    Ok(format!(
        "INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, run_at, dedupe_key, created_at, updated_at) \
         VALUES ({id}, 'usage_retention', 'null', '{state}', 0, 5, {now}, '{dedupe_key}', {now}, {now})"
    ))
}

fn write(sql: &SqlTarget, statements: &str) -> Result<(), Error> {
    if sql.is_sqlite() { sqlite_script(sql, statements) } else { psql_script(sql, &[statements.to_owned()]) }
}

fn sqlite_script(sql: &SqlTarget, script: &str) -> Result<(), Error> {
    let SqlTarget::Sqlite { file } = sql else { return Err(Error::new("not SQLite")) };
    let python = "import sqlite3, sys\n\
                  db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)\n\
                  db.executescript(sys.argv[2])\n";
    let output = Command::new("python3")
        .args(["-c", python])
        .arg(file)
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .context("running python3 for SQLite")?;
    if !output.status.success() {
        return Err(Error::new(format!("SQLite script failed: {}", String::from_utf8_lossy(&output.stderr).trim())));
    }
    Ok(())
}

/// Each entry is sent with its own `-c` (its own transaction: VACUUM needs that).
fn psql_script(sql: &SqlTarget, commands: &[String]) -> Result<(), Error> {
    let SqlTarget::Postgres { url, schema } = sql else { return Err(Error::new("not PostgreSQL")) };
    let mut command = Command::new("psql");
    command.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]).arg(url);
    // One session: a temp table made by one -c is seen by the next.
    for c in commands {
        command.args(["-c", c]);
    }
    let output = command
        .env("PGOPTIONS", format!("-c search_path={schema} --client-min-messages=warning"))
        .stdin(Stdio::null())
        .output()
        .context("running psql")?;
    if !output.status.success() {
        return Err(Error::new(format!("psql failed: {}", String::from_utf8_lossy(&output.stderr).trim())));
    }
    Ok(())
}

fn database_size(sql: &SqlTarget) -> Result<String, Error> {
    let bytes = match sql {
        SqlTarget::Sqlite { file } => {
            let wal = file.with_extension("db-wal");
            file.metadata().map(|m| m.len()).unwrap_or(0) + wal.metadata().map(|m| m.len()).unwrap_or(0)
        }
        SqlTarget::Postgres { .. } => sql.count("SELECT pg_total_relation_size('api_key_usage')")?,
    };
    Ok(format!("{:.2} GB", bytes as f64 / 1e9))
}

/// The plans of the two reads' usage queries, as the database chose them.
fn explain(sql: &SqlTarget, key_filter: &str) -> Result<String, Error> {
    let recent = format!("SELECT * FROM api_key_usage WHERE {key_filter} ORDER BY id DESC LIMIT 51");
    let deep = format!("SELECT * FROM api_key_usage WHERE {key_filter} AND id < 1000000 ORDER BY id DESC LIMIT 101");
    let prefix = if sql.is_sqlite() { "EXPLAIN QUERY PLAN " } else { "EXPLAIN " };
    let mut out = String::new();
    for (name, query) in [("last 50", recent), ("a page after a cursor", deep)] {
        let rows = sql.query(&format!("{prefix}{query}"))?;
        let lines: Vec<String> =
            rows.iter().map(|row| row.iter().flatten().cloned().collect::<Vec<_>>().join(" ")).collect();
        out.push_str(&format!("  {name}: {}\n", lines.join(" / ")));
    }
    Ok(out.trim_end().to_owned())
}

/// Follows `next_cursor` from `first` for up to `pages` pages; the path of the last page
/// reached and its number (1 is the first page).
fn walk(client: &Client, session: &str, first: &str, pages: u32) -> Result<(String, u32), Error> {
    let mut path = first.to_owned();
    let mut page = 1;
    while page < pages {
        let answer = client.get_json(&path, session)?;
        let Some(cursor) = answer.get("next_cursor").and_then(Value::as_str) else { break };
        path = format!("{first}&cursor={cursor}");
        page += 1;
    }
    Ok((path, page))
}

/// `samples` requests of `path` one after the other: client-side percentiles, and the server
/// histogram's for `route` over the same requests.
fn time_requests(client: &Client, session: &str, path: &str, route: &str, samples: u32) -> Result<Timing, Error> {
    let before = client.metrics()?;
    let mut times = Vec::with_capacity(samples as usize);
    for _ in 0..samples {
        let started = Instant::now();
        client.get_json(path, session)?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let after = client.metrics()?;
    times.sort_by(f64::total_cmp);
    let buckets = bucket_delta(&before, &after, route);
    Ok(Timing {
        client_p50: percentile(&times, 0.50),
        client_p99: percentile(&times, 0.99),
        server_p50: bucket_quantile(&buckets, 0.50),
        server_p99: bucket_quantile(&buckets, 0.99),
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The cumulative bucket counts `(le in ms, count)` of `otesse_http_request_duration_seconds`
/// for GET `route`, after minus before.
fn bucket_delta(before: &str, after: &str, route: &str) -> Vec<(f64, f64)> {
    let before = buckets(before, route);
    buckets(after, route)
        .into_iter()
        .map(|(le, count)| {
            let earlier = before.iter().find(|(l, _)| *l == le).map_or(0.0, |(_, c)| *c);
            (le, count - earlier)
        })
        .collect()
}

fn buckets(text: &str, route: &str) -> Vec<(f64, f64)> {
    let route_label = format!("route=\"{route}\"");
    let mut out: Vec<(f64, f64)> = text
        .lines()
        .filter(|line| line.starts_with("otesse_http_request_duration_seconds_bucket{"))
        .filter(|line| line.contains(&route_label) && line.contains("method=\"GET\""))
        .filter_map(|line| {
            let le = line.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse::<f64>().ok()? * 1e3 };
            let count = line.rsplit(' ').next()?.parse().ok()?;
            Some((le, count))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The upper bound of the bucket holding the `q` quantile; `None` past the last finite bound
/// or with no observation.
fn bucket_quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets.iter().find(|(_, count)| *count >= q * total).map(|(le, _)| *le).filter(|le| le.is_finite())
}

fn print_timing(name: &str, route: &str, timing: &Timing) {
    let bound = |ms: Option<f64>| ms.map_or("above the last bucket".to_owned(), |ms| format!("<= {ms} ms"));
    println!(
        "{name}: GET {route}: client p50 {:.2} ms, p99 {:.2} ms; server histogram p50 {}, p99 {} (goal p99 < {GOAL_MS} ms)",
        timing.client_p50,
        timing.client_p99,
        bound(timing.server_p50),
        bound(timing.server_p99)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let defaults = Options::parse(&[]).unwrap();
        assert_eq!((defaults.rows, defaults.keys, defaults.total_rows), (10_000_000, 1_000, 50_000_000));
        assert_eq!(defaults.backend, Backend::Sqlite);
        assert!(!defaults.debug);
        let short = Options::parse(&["--rows", "200000", "--keys=50", "--total-rows", "400_000", "--debug"]).unwrap();
        assert_eq!((short.rows, short.keys, short.total_rows, short.debug), (200_000, 50, 400_000, true));
        assert_eq!(Options::parse(&["--database", "postgres"]).unwrap().backend, Backend::Postgres);
        for bad in [
            &["--rows"][..],
            &["--rows", "0"],
            &["--rows", "10", "--total-rows", "5"],
            &["--keys", "1", "--rows", "5", "--total-rows", "10"],
            &["--database", "mysql"],
            &["--pages", "99999999999"],
            &["--verbose"],
        ] {
            assert!(Options::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    const METRICS: &str = "\
otesse_http_request_duration_seconds_bucket{route=\"/v1/api-keys/{id}\",method=\"GET\",le=\"0.001\"} 10
otesse_http_request_duration_seconds_bucket{route=\"/v1/api-keys/{id}\",method=\"GET\",le=\"0.005\"} 95
otesse_http_request_duration_seconds_bucket{route=\"/v1/api-keys/{id}\",method=\"GET\",le=\"0.01\"} 100
otesse_http_request_duration_seconds_bucket{route=\"/v1/api-keys/{id}\",method=\"GET\",le=\"+Inf\"} 100
otesse_http_request_duration_seconds_bucket{route=\"/v1/api-keys/{id}/usage\",method=\"GET\",le=\"0.001\"} 7
";

    #[test]
    fn reads_the_route_histogram() {
        let none = bucket_delta("", METRICS, DETAIL_ROUTE);
        assert_eq!(none, vec![(1.0, 10.0), (5.0, 95.0), (10.0, 100.0), (f64::INFINITY, 100.0)]);
        assert_eq!(bucket_quantile(&none, 0.5), Some(5.0));
        assert_eq!(bucket_quantile(&none, 0.99), Some(10.0));
        // The same scrape twice: nothing observed in between.
        assert_eq!(bucket_quantile(&bucket_delta(METRICS, METRICS, DETAIL_ROUTE), 0.5), None);
    }

    #[test]
    fn percentiles_take_the_rank() {
        let times: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&times, 0.5), 50.0);
        assert_eq!(percentile(&times, 0.99), 99.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
