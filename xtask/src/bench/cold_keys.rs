//! `cargo xtask bench cold-keys`: what a key check costs when the key is not cached (F1), with
//! a million keys in the table.
//!
//! The keys are made fast, straight in the database: the server creates one key through the
//! API (the template, so every column holds what the server writes), stops, and the bench
//! copies that row N times with a new id, name, hash and last four characters, in one bulk
//! INSERT (Python's `sqlite3` on SQLite, `INSERT ... SELECT generate_series` through `psql` on
//! PostgreSQL). Each key's plaintext is `erp_live_` followed by a random seed and the key's
//! number in hex, so the bench knows every key it made and the database holds only their
//! SHA-256 hashes, as for keys the server makes. The lookup by hash must use an index (the
//! query plan is checked on both databases).
//!
//! The server is then started again (an empty key cache) and `GET /v1/whoami` is sent with a
//! different key each time, spread over the whole table, so every check misses the cache:
//! end to end from the client, and server side from the server's own histograms
//! (`otesse_key_lookup_seconds`, the database read of a miss, and
//! `otesse_http_request_duration_seconds` of the route), the difference between a scrape of
//! `/metrics` before and after.

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::args::Flags;
use crate::error::{Context, Error};
use crate::http::Client;
use crate::server::{Launch, ServerProcess, free_port, random_hex};
use crate::sql::SqlTarget;
use crate::workspace::{Backend, Profile, step};

use super::{Scratch, positive, server_binary};

/// F1's goals for the p99 of a key check that misses the cache, in ms.
pub const SQLITE_GOAL_MS: f64 = 1.0;
pub const POSTGRES_GOAL_MS: f64 = 3.0;
/// The name of the key the server makes through the API, whose row the bulk insert copies.
const TEMPLATE: &str = "cold-keys template";
const WHOAMI: &str = "/v1/whoami";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub keys: u64,
    pub requests: u64,
    /// Clients sending at once, each on its own connection.
    pub connections: usize,
    pub backend: Backend,
    /// The debug server (what the tests build) and small defaults: to catch a broken bench.
    pub quick: bool,
}

impl Options {
    /// `[--keys 1000000] [--requests 5000] [--connections 1] [--database sqlite] [--quick]`.
    pub fn parse(args: &[&str]) -> Result<Self, Error> {
        let (KeyTable { keys, backend, quick }, [requests, connections]) =
            KeyTable::parse(args, ["--requests", "--connections"])?;
        let requests = requests.unwrap_or(if quick { 500 } else { 5_000 });
        let connections = connections.unwrap_or(1) as usize;
        if requests > keys {
            return Err(Error::new("--requests cannot exceed --keys: each request uses a key never used before"));
        }
        Ok(Self { keys, requests, connections, backend, quick })
    }
}

/// What `bench cold-keys` and `bench memory` both take: `--keys`, `--database`, `--quick`.
pub(super) struct KeyTable {
    pub keys: u64,
    pub backend: Backend,
    pub quick: bool,
}

impl KeyTable {
    /// Parses the shared flags and the bench's own `counts` (each a positive number), whose
    /// values come back in the same order. `--keys` defaults to a million, 20,000 with `--quick`.
    pub fn parse<const N: usize>(args: &[&str], counts: [&str; N]) -> Result<(Self, [Option<u64>; N]), Error> {
        let (mut keys, mut values) = (None, [None; N]);
        let (mut backend, mut quick) = (Backend::Sqlite, false);
        let mut flags = Flags::new(args);
        while let Some(flag) = flags.next() {
            match flag.name {
                "--keys" => keys = Some(positive(flag.name, flags.value(&flag)?)?),
                "--database" => backend = Backend::parse(flags.value(&flag)?)?,
                "--quick" if flag.is_switch() => quick = true,
                name => match counts.iter().position(|count| *count == name) {
                    Some(i) => values[i] = Some(positive(name, flags.value(&flag)?)?),
                    None => return Err(flag.unknown()),
                },
            }
        }
        let keys = keys.unwrap_or(if quick { 20_000 } else { 1_000_000 });
        Ok((Self { keys, backend, quick }, values))
    }
}

/// The plaintext of the bench's key number `index`: `erp_live_`, 24 hex characters of seed, 16
/// of index (40 characters of base62, as K1 wants).
pub fn bench_key(seed: &str, index: u64) -> String {
    format!("erp_live_{seed}{index:016x}")
}

/// `count` indices spread evenly over `0..keys`.
pub fn spread(keys: u64, count: u64) -> impl Iterator<Item = u64> {
    let stride = (keys / count.max(1)).max(1);
    (0..count).map(move |j| j * stride)
}

/// A server on a fresh database holding `keys` valid keys of one organization, made in bulk.
pub(super) struct Fixture {
    pub scratch: Scratch,
    pub launch: Launch,
    pub client: Client,
    pub sql: SqlTarget,
    /// The bench keys' seed (see [`bench_key`]).
    pub seed: String,
    /// The template key, made through the API (its plaintext).
    pub template_key: String,
    pub backend: Backend,
}

impl Fixture {
    /// Starts the server on a fresh database, sets it up, makes the template key. `extra_env`
    /// goes to the server (cache settings).
    pub fn start(
        binary: PathBuf,
        backend: Backend,
        extra_env: &[(&str, String)],
    ) -> Result<(Self, ServerProcess), Error> {
        let scratch = Scratch::new(backend, "otesse-bench-keys", "otesse_bench")?;
        let (dir, sql) = (scratch.path(), scratch.sql());
        let port = free_port()?;
        let setup_token = random_hex(24)?;
        let env = [
            ("OTESSE_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
            ("OTESSE_DATA_DIR".to_owned(), dir.display().to_string()),
            ("OTESSE_SETUP_TOKEN".to_owned(), setup_token.clone()),
            ("OTESSE_LOG_FILTER".to_owned(), "warn".to_owned()),
            // Out of the load's reach: what is measured is the check, not a refusal.
            ("OTESSE_RATE_LIMIT__KEY_REQUESTS".to_owned(), "100000000".to_owned()),
            ("OTESSE_RATE_LIMIT__KEY_PERIOD_SECS".to_owned(), "1000".to_owned()),
        ]
        .into_iter()
        .chain(scratch.server_env())
        .chain(extra_env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
        .collect();
        let launch = Launch { binary, env, cwd: dir.to_owned(), log: dir.join("server.log") };
        let client = Client::new(format!("http://127.0.0.1:{port}"));
        step(format!("starting the server on port {port} with data in {}", dir.display()));
        let mut server = ServerProcess::start(&launch)?;
        server.wait_ready(&client, super::READY_TIMEOUT)?;
        client.setup(&setup_token, super::EMAIL, super::PASSWORD)?;
        let session = client.sign_in(super::EMAIL, super::PASSWORD)?;
        let (template_key, _) = client.create_key(&session, TEMPLATE)?;
        let fixture = Self { scratch, launch, client, sql, seed: random_hex(12)?, template_key, backend };
        Ok((fixture, server))
    }

    /// Stops the server, copies the template key's row `keys` times, checks that the lookup by
    /// hash uses an index, and starts the server again (with an empty key cache). Returns the
    /// new server and the seconds the insert took.
    pub fn fill(&self, server: ServerProcess, keys: u64) -> Result<(ServerProcess, f64), Error> {
        let status = server.stop(super::STOP_TIMEOUT)?;
        if !status.success() {
            return Err(Error::new(format!("the server exited with {status} after SIGTERM")));
        }
        step(format!("inserting {keys} keys into {} in bulk", self.backend.name()));
        let started = Instant::now();
        match &self.sql {
            SqlTarget::Sqlite { file } => insert_sqlite(file, &self.seed, keys)?,
            SqlTarget::Postgres { .. } => insert_postgres(&self.sql, &self.seed, keys)?,
        }
        let took = started.elapsed().as_secs_f64();
        let stored = self.sql.count("SELECT count(*) FROM api_keys")?;
        if stored != keys + 1 {
            return Err(Error::new(format!("{stored} keys stored, expected {}", keys + 1)));
        }
        step(format!("{keys} keys inserted in {took:.1}s; starting the server again"));
        let mut server = ServerProcess::start(&self.launch)?;
        server.wait_ready(&self.client, super::READY_TIMEOUT)?;
        Ok((server, took))
    }

    /// The plan of the lookup by hash; fails unless it uses an index.
    pub fn lookup_plan(&self) -> Result<String, Error> {
        let hash = "ab".repeat(32);
        let (sql, uses_index): (String, fn(&str) -> bool) = match self.sql {
            SqlTarget::Sqlite { .. } => {
                (format!("EXPLAIN QUERY PLAN SELECT * FROM api_keys WHERE key_hash = X'{hash}' LIMIT 1"), |plan| {
                    plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX")
                })
            }
            SqlTarget::Postgres { .. } => {
                (format!("EXPLAIN SELECT * FROM api_keys WHERE key_hash = '\\x{hash}'::bytea LIMIT 1"), |plan| {
                    plan.contains("Index") && !plan.contains("Seq Scan")
                })
            }
        };
        let rows = self.sql.query(&sql)?;
        let plan = rows
            .iter()
            .map(|row| {
                row.iter()
                    .flatten()
                    .last()
                    .map_or(String::new(), |d| d.split_whitespace().collect::<Vec<_>>().join(" "))
            })
            .collect::<Vec<_>>()
            .join(" / ");
        if !uses_index(&plan) {
            return Err(Error::new(format!("the lookup by key hash does not use an index: {plan}")));
        }
        Ok(plan)
    }
}

/// Copies the template row with Python's `sqlite3` in one transaction, with the server down.
fn insert_sqlite(file: &std::path::Path, seed: &str, keys: u64) -> Result<(), Error> {
    const SCRIPT: &str = r#"
import hashlib, sqlite3, sys, uuid
db = sqlite3.connect(sys.argv[1], timeout=30)
seed, count, template = sys.argv[2], int(sys.argv[3]), sys.argv[4]
db.row_factory = sqlite3.Row
row = db.execute("SELECT * FROM api_keys WHERE name = ?", (template,)).fetchone()
cols = row.keys()
text_id = isinstance(row["id"], str)
def rows():
    for i in range(count):
        key = f"erp_live_{seed}{i:016x}"
        new = {"id": str(uuid.uuid4()) if text_id else uuid.uuid4().bytes, "name": f"bench {i}",
               "key_hash": hashlib.sha256(key.encode()).digest(), "last4": key[-4:]}
        yield tuple(new.get(c, row[c]) for c in cols)
sql = f"INSERT INTO api_keys ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
with db:
    db.executemany(sql, rows())
"#;
    let output = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(file)
        .args([seed, &keys.to_string(), TEMPLATE])
        .stdin(Stdio::null())
        .output()
        .context("running python3 for SQLite")?;
    if !output.status.success() {
        return Err(Error::new(format!("the bulk insert failed: {}", String::from_utf8_lossy(&output.stderr).trim())));
    }
    Ok(())
}

/// One `INSERT ... SELECT` over `generate_series`, hashing with PostgreSQL's `sha256`, then
/// `ANALYZE` (what autovacuum would do soon after such an insert).
fn insert_postgres(sql: &SqlTarget, seed: &str, keys: u64) -> Result<(), Error> {
    let columns: Vec<String> = sql
        .query(
            "SELECT column_name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'api_keys' ORDER BY ordinal_position",
        )?
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .collect();
    let select: Vec<String> = columns
        .iter()
        .map(|column| match column.as_str() {
            "id" => "gen_random_uuid()".to_owned(),
            "name" => "'bench ' || g.i".to_owned(),
            "key_hash" => "sha256(convert_to(g.k, 'UTF8'))".to_owned(),
            "last4" => "right(g.k, 4)".to_owned(),
            other => format!("t.{other}"),
        })
        .collect();
    let statement = format!(
        "INSERT INTO api_keys ({}) SELECT {} FROM api_keys t, \
         (SELECT i, 'erp_live_{seed}' || lpad(to_hex(i), 16, '0') AS k FROM generate_series(0::bigint, {}) AS i) g \
         WHERE t.name = '{TEMPLATE}'; ANALYZE api_keys",
        columns.join(", "),
        select.join(", "),
        keys - 1
    );
    sql.query(&statement)?;
    Ok(())
}

/// Sends `GET /v1/whoami` once with each key from `connections` threads (each on its own
/// keep-alive connection); answers each request's time, in the order they finished. Fails on
/// any answer but 200.
pub(super) fn check_keys(base: &str, keys: &[String], connections: usize) -> Result<Vec<Duration>, Error> {
    let next = AtomicUsize::new(0);
    let times = Mutex::new(Vec::with_capacity(keys.len()));
    let url = format!("{base}{WHOAMI}");
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..connections.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<(), Error> {
                    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
                    let mut mine = Vec::new();
                    while let Some(key) = keys.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let started = Instant::now();
                        let answer = agent.get(&url).set("Authorization", &format!("Bearer {key}")).call();
                        let answer = match answer {
                            Ok(response) => response.into_string().map(|_| ()).map_err(Error::from),
                            Err(err) => Err(Error::from(err)),
                        };
                        mine.push(started.elapsed());
                        answer.map_err(|e| e.context(format!("GET {WHOAMI} with a bench key")))?;
                    }
                    times.lock().map_err(|_| Error::new("a client thread panicked"))?.extend(mine);
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| Error::new("a client thread panicked"))?)
    })?;
    times.into_inner().map_err(|_| Error::new("a client thread panicked"))
}

/// The `q` quantile (0..1) of exact samples, in ms.
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

/// The `{k="v",...}` labels of a sample line's label set.
fn label_pairs(set: &str) -> Vec<(&str, &str)> {
    set.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k, v.trim_matches('"')))
        })
        .collect()
}

/// The value of the sample of `name` whose labels include every one of `labels`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let prefix = format!("{name}{{");
    text.lines().find_map(|line| {
        let (set, value) = line.strip_prefix(&prefix)?.split_once("} ")?;
        let pairs = label_pairs(set);
        labels.iter().all(|wanted| pairs.contains(wanted)).then(|| value.trim().parse().ok()).flatten()
    })
}

/// A Prometheus histogram's cumulative buckets `(le, count)`, `le` ascending, `+Inf` last.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Buckets(pub Vec<(f64, f64)>);

impl Buckets {
    /// The buckets of `name` whose labels include every one of `labels`.
    pub fn read(text: &str, name: &str, labels: &[(&str, &str)]) -> Self {
        let prefix = format!("{name}_bucket{{");
        let mut buckets: Vec<(f64, f64)> = text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(&prefix)?;
                let (set, value) = rest.split_once("} ")?;
                let pairs = label_pairs(set);
                if !labels.iter().all(|wanted| pairs.contains(wanted)) {
                    return None;
                }
                let le = pairs.iter().find(|(k, _)| *k == "le")?.1;
                let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                Some((le, value.trim().parse().ok()?))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self(buckets)
    }

    /// What was observed between `before` and this scrape.
    pub fn since(&self, before: &Buckets) -> Buckets {
        Buckets(
            self.0
                .iter()
                .map(|&(le, count)| {
                    let earlier = before.0.iter().find(|(l, _)| *l == le).map_or(0.0, |(_, c)| *c);
                    (le, count - earlier)
                })
                .collect(),
        )
    }

    pub fn count(&self) -> f64 {
        self.0.last().map_or(0.0, |(_, c)| *c)
    }

    /// The share of observations at or under `le` (one of the bounds).
    pub fn share_within(&self, le: f64) -> Option<f64> {
        let within = self.0.iter().find(|(l, _)| (*l - le).abs() < 1e-12)?.1;
        (self.count() > 0.0).then(|| within / self.count())
    }

    /// The `q` quantile in ms, interpolated linearly inside its bucket (as Prometheus's
    /// `histogram_quantile` does); `None` without observations or when it falls in `+Inf`.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, count) in &self.0 {
            if count >= rank {
                if le.is_infinite() {
                    return None;
                }
                let width = count - lower.1;
                let within = if width > 0.0 { (rank - lower.1) / width } else { 1.0 };
                return Some((lower.0 + (le - lower.0) * within) * 1e3);
            }
            lower = (le, count);
        }
        None
    }
}

/// Load average over 1, 5 and 15 minutes, as `uptime` prints it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// What the bench measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub backend: Backend,
    pub keys: u64,
    pub requests: u64,
    pub connections: usize,
    pub insert_secs: f64,
    pub plan: String,
    /// Client-side times of every request, sorted.
    pub client: Vec<Duration>,
    /// `otesse_key_lookup_seconds` during the requests.
    pub lookup: Buckets,
    /// `otesse_http_request_duration_seconds{route="/v1/whoami"}` during the requests.
    pub whoami: Buckets,
    /// Key-cache misses during the requests.
    pub misses: f64,
    pub load_before: String,
    pub load_after: String,
    /// `--quick`: small, on the debug server unless told otherwise; the figures mean little.
    pub quick: bool,
}

impl Report {
    pub fn goal_ms(&self) -> f64 {
        match self.backend {
            Backend::Sqlite => SQLITE_GOAL_MS,
            Backend::Postgres => POSTGRES_GOAL_MS,
        }
    }

    /// Why the bench fails: a check that hit the cache, or a lookup the histogram did not see.
    /// The timings are reported against the goal, never gated (they move with the machine).
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        let requests = self.requests as f64;
        if self.misses < requests {
            failures.push(format!("only {} of {} checks missed the key cache", self.misses, self.requests));
        }
        if self.lookup.count() < requests {
            failures.push(format!("only {} of {} lookups were timed", self.lookup.count(), self.requests));
        }
        if self.whoami.count() < requests {
            failures.push(format!("only {} of {} requests were timed", self.whoami.count(), self.requests));
        }
        failures
    }
}

fn or_over(value: Option<f64>, buckets: &Buckets) -> String {
    if buckets.count() <= 0.0 {
        return "none observed".to_owned();
    }
    match value {
        Some(ms) => format!("{ms:.3} ms"),
        None => {
            let last = buckets.0.iter().rev().find(|(le, _)| le.is_finite()).map_or(0.0, |(le, _)| *le);
            format!("> {:.0} ms", last * 1e3)
        }
    }
}

fn verdict(p99: Option<f64>, goal: f64) -> &'static str {
    match p99 {
        Some(ms) if ms < goal => "met",
        _ => "NOT met",
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let goal = self.goal_ms();
        let build = if self.quick { "a quick run: the figures mean nothing" } else { "release build" };
        writeln!(
            f,
            "cold keys on {}: {} keys in the table ({} inserted in {:.1}s), {} requests GET {WHOAMI}, \
             each with a key never used before, {} connection(s), {build}",
            self.backend.name(),
            self.keys + 1,
            self.keys,
            self.insert_secs,
            self.requests,
            self.connections,
        )?;
        writeln!(f, "lookup by hash: {}", self.plan)?;
        writeln!(
            f,
            "key-cache misses: {} of {} requests; load average before {}, after {}",
            self.misses, self.requests, self.load_before, self.load_after
        )?;
        let client_p99 = quantile_ms(&self.client, 0.99);
        writeln!(
            f,
            "end to end (client)            : p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            quantile_ms(&self.client, 0.5),
            client_p99,
            self.client.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        )?;
        let lookup_p99 = self.lookup.quantile_ms(0.99);
        writeln!(
            f,
            "server, key lookup (database)  : p50 {}  p99 {}  (otesse_key_lookup_seconds, interpolated)",
            or_over(self.lookup.quantile_ms(0.5), &self.lookup),
            or_over(lookup_p99, &self.lookup),
        )?;
        let whoami_p99 = self.whoami.quantile_ms(0.99);
        let within = |le: f64| self.whoami.share_within(le).map_or("?".to_owned(), |s| format!("{:.1}%", s * 100.0));
        writeln!(
            f,
            "server, GET {WHOAMI} (answer) : p50 {}  p99 {}  ({} within 1 ms, {} within 2.5 ms; \
             otesse_http_request_duration_seconds, coarse buckets)",
            or_over(self.whoami.quantile_ms(0.5), &self.whoami),
            or_over(whoami_p99, &self.whoami),
            within(0.001),
            within(0.0025),
        )?;
        writeln!(
            f,
            "goal (F1): p99 under {goal} ms on {}: server lookup {}, server answer {}, end to end {}",
            self.backend.name(),
            verdict(lookup_p99, goal),
            verdict(whoami_p99, goal),
            verdict(Some(client_p99), goal),
        )
    }
}

/// Runs the bench; prints the report on stdout, progress on stderr.
pub fn run(options: &Options) -> Result<Report, Error> {
    let binary = server_binary(if options.quick { Profile::Debug } else { Profile::Release })?;
    let (mut fixture, server) = Fixture::start(binary, options.backend, &[])?;
    let result = measure(&fixture, server, options);
    fixture.scratch.report(&result, Report::failures, "server.log");
    result
}

fn measure(fixture: &Fixture, server: ServerProcess, options: &Options) -> Result<Report, Error> {
    let (server, insert_secs) = fixture.fill(server, options.keys)?;
    let plan = fixture.lookup_plan()?;
    let keys: Vec<String> = spread(options.keys, options.requests).map(|i| bench_key(&fixture.seed, i)).collect();
    let client = &fixture.client;
    let route = [("route", WHOAMI), ("method", "GET")];
    let before = client.metrics()?;
    let load_before = load_average();
    step(format!("GET {WHOAMI} with {} keys never used before, {} at a time", keys.len(), options.connections));
    let mut times = check_keys(&client.url(""), &keys, options.connections)?;
    let load_after = load_average();
    let after = client.metrics()?;
    times.sort();
    let misses = |text: &str| sample(text, "otesse_key_cache_requests_total", &[("result", "miss")]).unwrap_or(0.0);
    let report = Report {
        backend: options.backend,
        keys: options.keys,
        requests: options.requests,
        connections: options.connections,
        insert_secs,
        plan,
        client: times,
        lookup: Buckets::read(&after, "otesse_key_lookup_seconds", &[]).since(&Buckets::read(
            &before,
            "otesse_key_lookup_seconds",
            &[],
        )),
        whoami: Buckets::read(&after, "otesse_http_request_duration_seconds", &route).since(&Buckets::read(
            &before,
            "otesse_http_request_duration_seconds",
            &route,
        )),
        misses: misses(&after) - misses(&before),
        load_before,
        load_after,
        quick: options.quick,
    };
    let status = server.stop(super::STOP_TIMEOUT)?;
    if !status.success() {
        return Err(Error::new(format!("the server exited with {status} after SIGTERM")));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let defaults = Options::parse(&[]).unwrap();
        assert_eq!((defaults.keys, defaults.requests, defaults.connections), (1_000_000, 5_000, 1));
        assert_eq!(defaults.backend, Backend::Sqlite);
        assert!(!defaults.quick);
        let quick = Options::parse(&["--quick", "--database", "postgres"]).unwrap();
        assert_eq!((quick.keys, quick.requests, quick.backend, quick.quick), (20_000, 500, Backend::Postgres, true));
        let custom = Options::parse(&["--keys=1_000", "--requests", "100", "--connections", "4"]).unwrap();
        assert_eq!((custom.keys, custom.requests, custom.connections), (1_000, 100, 4));
        for bad in [
            &["--keys"][..],
            &["--keys", "0"],
            &["--requests", "-3"],
            &["--keys", "10", "--requests", "11"],
            &["--quick=yes"],
            &["--database", "mysql"],
        ] {
            assert!(Options::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn bench_keys_have_the_shape_of_real_keys_and_differ() {
        let seed = "0123456789abcdef01234567";
        let key = bench_key(seed, 255);
        assert_eq!(key, "erp_live_0123456789abcdef0123456700000000000000ff");
        assert_eq!(key.len() - "erp_live_".len(), 40);
        assert_ne!(bench_key(seed, 1), bench_key(seed, 2));
        let picked: Vec<u64> = spread(1_000, 4).collect();
        assert_eq!(picked, [0, 250, 500, 750]);
        assert_eq!(spread(3, 3).collect::<Vec<_>>(), [0, 1, 2]);
    }

    const SCRAPE: &str = r#"# TYPE otesse_key_lookup_seconds histogram
otesse_key_lookup_seconds_bucket{le="0.0005"} 90
otesse_key_lookup_seconds_bucket{le="0.001"} 99
otesse_key_lookup_seconds_bucket{le="0.002"} 100
otesse_key_lookup_seconds_bucket{le="+Inf"} 100
otesse_key_lookup_seconds_sum 0.03
otesse_key_lookup_seconds_count 100
otesse_http_request_duration_seconds_bucket{method="GET",route="/v1/whoami",le="0.001"} 7
otesse_http_request_duration_seconds_bucket{method="GET",route="/v1/whoami",le="+Inf"} 8
otesse_http_request_duration_seconds_bucket{method="GET",route="/healthz",le="0.001"} 50
otesse_http_request_duration_seconds_bucket{method="GET",route="/healthz",le="+Inf"} 50
"#;

    #[test]
    fn reads_histogram_buckets_by_labels_and_interpolates_quantiles() {
        let lookup = Buckets::read(SCRAPE, "otesse_key_lookup_seconds", &[]);
        assert_eq!(lookup.count(), 100.0);
        // The 50th of 90 in [0, 0.5 ms].
        assert!((lookup.quantile_ms(0.5).unwrap() - 0.5 * 50.0 / 90.0).abs() < 1e-9);
        // The 99th is the 9th of 9 in (0.5, 1] ms.
        assert!((lookup.quantile_ms(0.99).unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(lookup.share_within(0.001), Some(0.99));

        let whoami = Buckets::read(SCRAPE, "otesse_http_request_duration_seconds", &[("route", "/v1/whoami")]);
        assert_eq!(whoami.0, [(0.001, 7.0), (f64::INFINITY, 8.0)]);
        assert_eq!(whoami.quantile_ms(0.99), None, "in +Inf: no bound to interpolate to");

        let earlier = Buckets(vec![(0.0005, 80.0), (0.001, 80.0), (0.002, 80.0), (f64::INFINITY, 80.0)]);
        let since = lookup.since(&earlier);
        assert_eq!(since.0, [(0.0005, 10.0), (0.001, 19.0), (0.002, 20.0), (f64::INFINITY, 20.0)]);
        assert_eq!(Buckets::default().quantile_ms(0.5), None);
        let counters =
            "otesse_key_cache_requests_total{result=\"hit\"} 3\notesse_key_cache_requests_total{result=\"miss\"} 5\n";
        assert_eq!(sample(counters, "otesse_key_cache_requests_total", &[("result", "miss")]), Some(5.0));
        assert_eq!(sample(counters, "otesse_key_cache_requests_total", &[("result", "other")]), None);
    }

    #[test]
    fn exact_quantiles_of_client_times() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&times, 0.5), 50.0);
        assert_eq!(quantile_ms(&times, 0.99), 99.0);
        assert_eq!(quantile_ms(&[], 0.99), 0.0);
    }

    fn report(misses: f64) -> Report {
        let buckets = Buckets(vec![(0.0005, 90.0), (0.001, 100.0), (f64::INFINITY, 100.0)]);
        Report {
            backend: Backend::Sqlite,
            keys: 1_000,
            requests: 100,
            connections: 1,
            insert_secs: 1.0,
            plan: "SEARCH api_keys USING INDEX sqlite_autoindex_api_keys_2 (key_hash=?)".into(),
            client: (1..=100).map(|n| Duration::from_micros(n * 10)).collect(),
            lookup: buckets.clone(),
            whoami: buckets,
            misses,
            load_before: "1.00, 1.00, 1.00".into(),
            load_after: "1.10, 1.00, 1.00".into(),
            quick: false,
        }
    }

    #[test]
    fn reports_the_goal_and_fails_only_when_the_cache_was_hit() {
        let text = report(100.0).to_string();
        assert!(text.contains("end to end (client)            : p50 0.500 ms  p99 0.990 ms  max 1.000 ms"), "{text}");
        assert!(text.contains("goal (F1): p99 under 1 ms on SQLite: server lookup met, server answer met"), "{text}");
        assert!(text.contains("(100.0% within 1 ms"), "{text}");
        assert!(report(100.0).failures().is_empty());
        assert_eq!(report(60.0).failures(), ["only 60 of 100 checks missed the key cache"]);
        let slow = Report { backend: Backend::Postgres, client: vec![Duration::from_millis(4)], ..report(100.0) };
        assert!(
            slow.to_string()
                .contains("under 3 ms on PostgreSQL: server lookup met, server answer met, end to end NOT met")
        );
        assert!(slow.failures().is_empty(), "timings are reported, not gated");
    }
}
