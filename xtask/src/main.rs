//! Project automation, run as `cargo xtask <command>` (the alias lives in `.cargo/config.toml`):
//! benchmarks, the fuzzing runs and the crash runs, the API checks, the client's generated
//! types, and what the README snippets' test needs.
//!
//! Kept to few dependencies (std, serde_json, ureq) so it builds quickly and never drags the
//! server's dependency tree in: it talks to the server over HTTP, like a client would.

mod api_server;
mod args;
mod bench;
mod client_types;
mod crash;
mod error;
mod fake_http;
mod fuzz;
mod http;
mod openapi;
mod python;
mod readme_deps;
mod schemathesis;
mod screenshots;
mod server;
mod sql;
mod workspace;
mod wrk;

use std::process::ExitCode;

use error::Error;

const HELP: &str = "\
cargo xtask <command>

Commands:
  bench auth [--duration 10s] [--connections 32] [--threads 2] [--rounds 5]
             [--database sqlite|postgres]
        Builds the server in release mode, starts it on a fresh SQLite data dir (or a fresh
        schema of the PostgreSQL database at OTESSE_BENCH_POSTGRES_URL, default
        postgres://postgres@127.0.0.1:5432/test, dropped afterwards with psql), creates an
        API key and a platform service token (otesse-server service-token create), and
        load-tests with wrk, in rounds of one run each: GET /healthz, GET /v1/whoami (with the
        key) and POST /v1/keys/verify (the service token checking the key). The median
        round's whoami/healthz ratio counts; verify/whoami is printed beside it. Prints the
        server CPU a keyed request and a verify call cost beyond an unauthenticated request.
        Then stops the server gracefully, restarts it, and checks that every keyed request
        and every verify call reached the usage log. Fails if the median ratio is below 0.65
        (F2's goal, 0.80, is printed beside it), if any response was not 2xx or was refused
        by the rate limit, or if any usage row was dropped or missing. With OTESSE_BENCH_BINARY=<path>, benches that server binary instead of
        building one (to compare two builds).
  bench cold-keys [--keys 1000000] [--requests 5000] [--connections 1]
                  [--database sqlite|postgres] [--quick]
        F1 with many keys: starts the release server on a fresh database (as bench auth), makes
        one key through the API, stops the server and copies that key's row --keys times in
        one bulk INSERT (Python's sqlite3, or INSERT ... SELECT generate_series in psql), each
        copy a valid key with its own SHA-256 hash whose plaintext the bench knows. Checks that
        the lookup by hash uses an index (EXPLAIN), restarts the server (an empty key cache),
        then sends GET /v1/whoami --requests times, each with a key never used before, spread
        over the table, --connections at a time. Prints p50/p99 end to end (client side) and
        server side (otesse_key_lookup_seconds and the route's
        otesse_http_request_duration_seconds, from /metrics before and after) against the
        goal: p99 under 1 ms on SQLite, 3 ms on PostgreSQL (reported, not gated). Fails if
        any answer is not 200 or any check did not miss the cache. --quick: 20,000 keys and
        500 requests on the debug server the tests build (for CI: the figures mean nothing).
  bench memory [--keys 1000000] [--checks 200000] [--cache-capacity N]
               [--database sqlite|postgres] [--quick]
        The server's resident memory (VmRSS and VmHWM from /proc/<pid>/status): idle after
        start, after 10 s of wrk on GET /v1/whoami with one key, restarted with --keys keys
        made in bulk (as bench cold-keys), and after each quarter of --checks distinct keys
        checked (4 connections). The key cache's ttl is set to an hour, so its capacity (the
        server's key_cache.capacity, 100,000, or --cache-capacity) bounds it: prints the
        memory per distinct key while the cache filled and once it was full. --quick: 20,000
        keys, 8,000 checks, a capacity of 2,000, wrk for 2 s, the debug server.
  bench usage-writer [--database sqlite|postgres]
        The usage log's batch writer alone: 500,000 rows (OTESSE_BENCH_ROWS) in batches of
        5,000 into a fresh database, rows per second printed; fails if a row is missing.
  bench usage-scale [--rows 10000000] [--keys 1000] [--total-rows 50000000]
                    [--database sqlite|postgres] [--pages 1000] [--samples 1000] [--debug]
        The usage log at scale (F3): fills the usage table straight through SQL with --rows
        rows for one key among --total-rows over --keys keys, over the last 180 days, then
        times (one request at a time, client side and from the server's histogram) the key
        detail (GET /v1/api-keys/{id}: usage summary and last 50 requests) and the usage log
        page reached by following the cursor --pages pages down; goal p99 < 10 ms for both,
        reported, not gated. Then queues the usage_retention job (rows older than 90 days)
        while wrk loads GET /v1/whoami with the key, in 2 s slices: the keyed p99 during it
        against the same load without it, the delete's duration. Fails if old rows are left,
        or a keyed request did not reach the usage log. --debug benches the debug server the
        tests build (for CI); OTESSE_BENCH_BINARY=<path> a given binary.
  bench webhooks [--rate 100] [--duration 20s] [--database sqlite|postgres] [--processes 1]
                 [--debug]
        Outbound webhook throughput: starts the release server (the debug one the tests build
        with --debug; OTESSE_BENCH_BINARY as for bench auth), or with --processes 2 two of them on one fresh PostgreSQL schema, and a
        local receiver answering 204; subscribes an endpoint and publishes test events
        (POST /v1/webhook-endpoints/{id}/test, the outbox's path) at the given rate, spread
        over the processes. Prints events published/s, deliveries/s at the receiver, p50/p99
        from the request to the delivery's arrival (goal: p99 < 1 s at 100 events/s, not
        gating). Fails if a delivery is lost or arrives twice, or a publish is refused.
  client-types
        Regenerates crates/client/src/generated.rs, the Rust client's request and answer types,
        from the server's OpenAPI document (typify), by running the client's `generated` test
        with OTESSE_CLIENT_TYPES=write. Without it that test fails when the committed file is
        not what the document generates.
  crash [--rounds 20] [--database sqlite|postgres] [--url URL] [--seed N] [--release]
        Builds the server (debug unless --release: the debug binary is the one the tests
        build, and a kill does not care about optimisation), starts it on a fresh SQLite data
        dir or a fresh schema of the PostgreSQL database at --url (default
        OTESSE_BENCH_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/test; dropped
        afterwards with psql), with a local fake provider and a local webhook receiver. Each
        round drives a mixed load (keys created, rotated, revoked and used, a provider
        connected, disconnected and health-checked, webhook endpoints added), kills the server
        with SIGKILL at a moment drawn from the seeded generator (after a random delay, or
        while a provider call is in flight), checks the database with the server down (SQLite
        integrity_check and foreign_key_check, PostgreSQL index validity, no half-written key,
        credential or delivery), restarts the server on the same database and checks it
        through the API (at most 25 active keys, one active successor per key, every key the
        load was shown stored and working or refused as its status says, every key audited,
        every connection's credential opening and passing a health check, every committed
        event delivered). Prints the seed first (repeat a run with --seed) and a summary last;
        fails on the first violation, keeping the data dir and the server logs.
  fuzz <target|all> [--seconds 60]
        Runs the cargo-fuzz targets in fuzz/ (key_parser, stripe_signature,
        webhook_signature, url_guard, ip_allowlist; `all` runs each in turn) for the given
        seconds each, with `cargo +nightly fuzz run <target> -- -max_total_time=N` (the pinned
        toolchain with RUSTC_BOOTSTRAP=1 where no nightly is installed), and prints each
        target's executions, exec/s and crashes. Installs cargo-fuzz with `cargo install
        cargo-fuzz --locked` when it is missing. Seeds come from fuzz/corpus/<target>, what a
        run learns goes to fuzz/target/corpus/<target>, crashing inputs to
        fuzz/artifacts/<target>/, libFuzzer's output to fuzz/target/logs/<target>.log. Fails
        if any target crashed.
  openapi [--out FILE] [--release]
        Builds the server (debug unless --release), starts it, saves the OpenAPI document it
        serves (target/openapi.json by default) and validates it with openapi-spec-validator.
  schemathesis [--max-examples 100] [--database sqlite|postgres] [--release] [--workers 2]
               [--seed N]
        Starts the server on a fresh SQLite data dir, or a fresh schema of the PostgreSQL
        database at OTESSE_BENCH_POSTGRES_URL (as bench auth), with the providers pointed at a
        dead local port and no background jobs, runs setup, signs an admin in, creates an admin-level key with
        every scope and a test-environment key, validates the document, then fuzzes every
        documented operation with schemathesis twice: with the key and as the admin. Fails
        on any 5xx, any answer that does not match the document, any accepted invalid input.
        The Python tools are pinned in xtask/python-requirements.txt and installed into
        target/xtask-python on first use.
  readme-deps
        Installs what the README's Python and TypeScript snippets import, for the test that
        runs them (apps/server/tests/api/readme_snippets.rs): requests and python-dotenv into
        a virtual environment at target/readme-python, dotenv and tsx (which runs the snippet
        on a Node older than 22.18) into target/readme-node with npm ci. Pinned in
        xtask/readme-deps/; installs again only when the pins change. Needs python3 and npm.
  screenshots
        Photographs every dashboard page at 1280 and 375 px into docs/screenshots/, over sample
        data made through the API with fake providers, in headless Chromium (needs chromium and
        chromedriver: apt-get install chromium chromium-driver).
  help  Prints this message.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[&str]) -> Result<ExitCode, Error> {
    match args {
        [] | ["help" | "--help" | "-h", ..] => {
            print!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        ["bench", "auth", rest @ ..] => {
            let options = bench::Options::parse(rest)?;
            Ok(if bench::auth(&options)?.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        ["bench", "cold-keys", rest @ ..] => {
            let report = bench::cold_keys::run(&bench::cold_keys::Options::parse(rest)?)?;
            Ok(if report.failures().is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        ["bench", "memory", rest @ ..] => {
            bench::memory::run(&bench::memory::Options::parse(rest)?)?;
            Ok(ExitCode::SUCCESS)
        }
        ["bench", "usage-writer", rest @ ..] => {
            let backend = match rest {
                [] => workspace::Backend::Sqlite,
                ["--database", name] => workspace::Backend::parse(name)?,
                [arg] if arg.starts_with("--database=") => workspace::Backend::parse(&arg["--database=".len()..])?,
                _ => return Err(Error::new("usage: cargo xtask bench usage-writer [--database sqlite|postgres]")),
            };
            bench::usage_writer(backend)?;
            Ok(ExitCode::SUCCESS)
        }
        ["bench", "usage-scale", rest @ ..] => {
            let options = bench::usage_scale::Options::parse(rest)?;
            Ok(if bench::usage_scale::run(&options)? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        ["bench", "webhooks", rest @ ..] => {
            let options = bench::webhooks::Options::parse(rest)?;
            Ok(if bench::webhooks::run(&options)?.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        ["openapi", rest @ ..] => {
            openapi::run(&openapi::Options::parse(rest)?)?;
            Ok(ExitCode::SUCCESS)
        }
        ["schemathesis", rest @ ..] => {
            let passed = schemathesis::run(&schemathesis::Options::parse(rest)?)?;
            Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        ["bench", ..] => Err(Error::new(
            "unknown bench; available: `cargo xtask bench auth`, `cargo xtask bench cold-keys`, \
                 `cargo xtask bench memory`, `cargo xtask bench usage-writer`, `cargo xtask bench usage-scale`, \
                 `cargo xtask bench webhooks`",
        )),
        ["client-types"] => {
            client_types::run()?;
            Ok(ExitCode::SUCCESS)
        }
        ["crash", rest @ ..] => {
            crash::run(&crash::Options::parse(rest)?)?;
            Ok(ExitCode::SUCCESS)
        }
        ["fuzz", rest @ ..] => {
            let options = fuzz::Options::parse(rest)?;
            Ok(if fuzz::run(&options)? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        ["readme-deps"] => {
            readme_deps::run()?;
            Ok(ExitCode::SUCCESS)
        }
        ["screenshots"] => {
            screenshots::run()?;
            Ok(ExitCode::SUCCESS)
        }
        [other, ..] => Err(Error::new(format!("unknown command `{other}`; see `cargo xtask help`"))),
    }
}
