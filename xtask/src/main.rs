//! Project automation, run as `cargo xtask <command>` (the alias lives in `.cargo/config.toml`).
//!
//! Kept to few dependencies (std, serde_json, ureq) so it builds quickly and never drags the
//! server's dependency tree in: it talks to the server over HTTP, like a client would.

mod bench;
mod error;
mod http;
mod server;
mod wrk;

use std::process::ExitCode;

use error::Error;

const HELP: &str = "\
cargo xtask <command>

Commands:
  bench auth [--duration 10s] [--connections 32] [--threads 2] [--rounds 3]
        Builds the server in release mode, starts it on a fresh SQLite data dir, creates an
        API key, and load-tests GET /v1/whoami (with the key) against GET /healthz with wrk,
        in rounds of one run each; the median round's ratio counts.
        Then stops the server gracefully, restarts it, and checks that every keyed request
        reached the usage log. Fails if the ratio is below 0.80, if any response was not 2xx,
        or if usage rows were lost. With OTESSE_BENCH_BINARY=<path>, benches that server
        binary instead of building one (to compare two builds).
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
        ["bench", ..] => Err(Error::new("unknown bench; available: `cargo xtask bench auth`")),
        [other, ..] => Err(Error::new(format!("unknown command `{other}`; see `cargo xtask help`"))),
    }
}
