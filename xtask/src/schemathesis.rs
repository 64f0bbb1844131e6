//! `cargo xtask schemathesis`: fuzzes the running server against its own OpenAPI document.
//!
//! Starts the server (debug build by default) on a fresh database with every provider pointed
//! at a dead local port and the background worker off ([`ApiServer`]), runs first-run setup,
//! signs the admin in, creates an admin-level live key holding every scope and a test-environment
//! key, validates the served document with openapi-spec-validator, then runs schemathesis
//! twice against `/v1/openapi.json`: with the live key, then as the signed-in admin (the key
//! pass first: the admin pass may revoke keys). Each pass checks that no answer is a 5xx, that
//! every status, content type, header and body is the documented one, that invalid input is
//! refused with a 4xx, that methods not documented answer 405 with `Allow`, that documented
//! authentication is enforced, and that created resources can be read back and deleted ones are
//! gone. Positive-data acceptance is not checked: the document cannot say every rule (a key's
//! scopes must fit its level, a name must be unique), so valid-looking input can rightly fail.
//! Signing out (`deleteCurrentSession`) is left out of the admin pass: it would end the session
//! the rest of the pass runs with.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::api_server::ApiServer;
use crate::args::Flags;
use crate::error::{Context, Error};
use crate::openapi::validate;
use crate::python::Venv;
use crate::workspace::{Backend, Profile, build_server, step, workspace_root};

const EMAIL: &str = "schemathesis@example.com";
const PASSWORD: &str = "schemathesis password 123";
/// Where a pass's credential is handed to schemathesis.
const TOKEN_VAR: &str = "OTESSE_SCHEMATHESIS_TOKEN";
/// Checks left out, and why: see the module documentation.
const EXCLUDED_CHECKS: &str = "positive_data_acceptance,object_level_authorization";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub max_examples: u32,
    pub backend: Backend,
    pub profile: Profile,
    pub workers: u32,
    pub seed: Option<u64>,
}

impl Options {
    /// `[--max-examples 100] [--database sqlite|postgres] [--release] [--workers 2] [--seed N]`.
    pub fn parse(args: &[&str]) -> Result<Self, Error> {
        let mut options =
            Options { max_examples: 100, backend: Backend::Sqlite, profile: Profile::Debug, workers: 2, seed: None };
        let mut flags = Flags::new(args);
        while let Some(flag) = flags.next() {
            let number = |flag: &str, raw: &str| match raw.parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(Error::new(format!("{flag} `{raw}`: expected a positive whole number"))),
            };
            match flag.name {
                "--max-examples" => {
                    options.max_examples = number(flag.name, flags.value(&flag)?)?.try_into().unwrap_or(u32::MAX)
                }
                "--workers" => options.workers = number(flag.name, flags.value(&flag)?)?.min(64) as u32,
                "--seed" => options.seed = Some(number(flag.name, flags.value(&flag)?)?),
                "--database" => options.backend = Backend::parse(flags.value(&flag)?)?,
                "--release" if flag.is_switch() => options.profile = Profile::Release,
                _ => return Err(flag.unknown()),
            }
        }
        Ok(options)
    }
}

/// What one pass found, from schemathesis's JSON report.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    pub name: &'static str,
    pub operations_selected: u64,
    pub operations_tested: u64,
    pub test_cases: u64,
    pub failures: Vec<String>,
    pub errors: Vec<String>,
    pub exit_code: i64,
    pub seconds: f64,
}

impl Pass {
    pub fn from_report(name: &'static str, report: &Value, seconds: f64) -> Result<Self, Error> {
        let number = |pointer: &str| {
            report
                .pointer(pointer)
                .and_then(Value::as_u64)
                .ok_or_else(|| Error::new(format!("no {pointer} in the report")))
        };
        let groups = |key: &str, describe: &dyn Fn(&Value) -> String| -> Vec<String> {
            report.get(key).and_then(Value::as_array).into_iter().flatten().map(describe).collect()
        };
        let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).unwrap_or("?").to_owned();
        Ok(Self {
            name,
            operations_selected: number("/operations/selected")?,
            operations_tested: number("/operations/tested")?,
            test_cases: number("/test_cases/generated")?,
            failures: groups("failures", &|group| {
                let operations: Vec<&str> =
                    group["operations"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                format!("{} ({} x) in {}", text(group, "title"), group["count"], operations.join(", "))
            }),
            errors: groups("errors", &|group| format!("{} ({} x)", text(group, "title"), group["count"])),
            exit_code: report.get("exit_code").and_then(Value::as_i64).unwrap_or(-1),
            seconds,
        })
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.errors.is_empty() && self.exit_code == 0
    }

    pub fn summary(&self) -> String {
        let mut text = format!(
            "{}: {} of {} operations tested, {} test cases, {} failures, {} errors, {:.0}s",
            self.name,
            self.operations_tested,
            self.operations_selected,
            self.test_cases,
            self.failures.len(),
            self.errors.len(),
            self.seconds
        );
        for line in self
            .failures
            .iter()
            .map(|f| format!("FAILURE: {f}"))
            .chain(self.errors.iter().map(|e| format!("ERROR: {e}")))
        {
            text.push_str("\n  ");
            text.push_str(&line);
        }
        text
    }
}

/// Runs both passes; prints their summaries; true when both passed.
pub fn run(options: &Options) -> Result<bool, Error> {
    let started = Instant::now();
    let venv = Venv::ensure()?;
    let binary = build_server(options.profile)?;
    let mut server = ApiServer::start(binary, options.backend, "otesse-schemathesis")?;
    let result = passes(&venv, &server, options);
    match &result {
        Ok(passes) if passes.iter().all(Pass::passed) => {}
        _ => {
            server.dir.keep();
            eprintln!(
                "==> kept {} (server.log, the reports) for inspection{}",
                server.dir.path().display(),
                server.log_tail()
            );
        }
    }
    let passes = result?;
    server.stop()?;
    println!("schemathesis on {} ({} examples per operation at most):", options.backend.name(), options.max_examples);
    for pass in &passes {
        println!("{}", pass.summary());
    }
    println!("total: {:.0}s", started.elapsed().as_secs_f64());
    Ok(passes.iter().all(Pass::passed))
}

fn passes(venv: &Venv, server: &ApiServer, options: &Options) -> Result<Vec<Pass>, Error> {
    let client = &server.client;
    client.setup(&server.setup_token, EMAIL, PASSWORD)?;
    let session = client.sign_in(EMAIL, PASSWORD)?;
    let catalog = client.get_json("/v1/scopes", &session)?;
    let catalog = catalog["data"].as_array().ok_or_else(|| Error::new("GET /v1/scopes: no data"))?;
    // Every scope for the live key; a test key cannot hold the live-only ones.
    let scopes = |live: bool| -> Vec<Value> {
        catalog
            .iter()
            .filter(|scope| live || scope["live_only"] != Value::Bool(true))
            .filter_map(|scope| scope.get("name").cloned())
            .collect()
    };
    let key_body = |name: &str, environment: &str| {
        json!({
            "name": name,
            "description": "cargo xtask schemathesis",
            "scope_level": "admin",
            "scopes": scopes(environment == "live"),
            "expires_in": "never",
            "environment": environment,
            "allowed_ips": [],
        })
    };
    let (live_key, _) = client.create_key_with(&session, key_body("schemathesis live", "live"))?;
    client.create_key_with(&session, key_body("schemathesis test", "test"))?;

    let document = server.dir.path().join("openapi.json");
    std::fs::write(&document, client.get_text("/v1/openapi.json")?).context(document.display())?;
    validate(venv, &document)?;

    let key =
        pass(venv, server, options, "with the admin-level API key", &["api_key", "api_key_header"], &live_key, &[])?;
    let admin =
        pass(venv, server, options, "as the signed-in admin", &["session"], &session, &["deleteCurrentSession"])?;
    Ok(vec![key, admin])
}

fn pass(
    venv: &Venv,
    server: &ApiServer,
    options: &Options,
    name: &'static str,
    schemes: &[&str],
    token: &str,
    excluded_operations: &[&str],
) -> Result<Pass, Error> {
    let slug: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let report = server.dir.path().join(format!("schemathesis-{slug}.json"));
    // The credential goes by security scheme, so that schemathesis knows it for what it is
    // (it leaves it out to test refusals, and a header set for every request would not be);
    // the token itself stays in the environment, out of the file and the command line.
    let config = server.dir.path().join(format!("schemathesis-{slug}.toml"));
    let auth: String = schemes
        .iter()
        .map(|scheme| {
            let field = if scheme.ends_with("_header") { "api_key" } else { "bearer" };
            format!("[auth.openapi.{scheme}]\n{field} = \"${{{TOKEN_VAR}}}\"\n")
        })
        .collect();
    std::fs::write(&config, auth).context(config.display())?;
    let mut command = Command::new(venv.bin("schemathesis"));
    command
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(server.client.url("/v1/openapi.json"))
        .args(["--url", &server.client.url("")])
        .env(TOKEN_VAR, token)
        .args(["--checks", "all", "--exclude-checks", EXCLUDED_CHECKS])
        .args(["--max-examples", &options.max_examples.to_string()])
        .args(["--workers", &options.workers.to_string()])
        .args(["--request-timeout", "30", "--generation-database", "none", "--no-color"])
        .args(["--report", "json", "--report-json-path"])
        .arg(&report)
        .args(["--report-dir"])
        .arg(server.dir.path().join(format!("reports-{slug}")))
        // The run's working files (and nothing else) go to the server's temporary directory.
        .current_dir(server.dir.path())
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("PYTHONPATH", hooks_dir())
        .stdin(std::process::Stdio::null());
    for operation in excluded_operations {
        command.args(["--exclude-operation-id", operation]);
    }
    if let Some(seed) = options.seed {
        command.args(["--seed", &seed.to_string()]);
    }
    step(format!("schemathesis {name} (--max-examples {})", options.max_examples));
    let started = Instant::now();
    // Its own output (progress, failures with reproduction commands) goes to the terminal.
    let status = command.status().context("running schemathesis")?;
    let seconds = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&report)
        .map_err(|err| Error::new(format!("schemathesis ({status}) wrote no report at {}: {err}", report.display())))?;
    let report: Value =
        serde_json::from_str(&text).map_err(|err| Error::new(format!("{}: not JSON: {err}", report.display())))?;
    let pass = Pass::from_report(name, &report, seconds)?;
    if status.success() != pass.passed() {
        return Err(Error::new(format!(
            "schemathesis exited with {status}, its report says otherwise: {}",
            pass.summary()
        )));
    }
    Ok(pass)
}

fn hooks_dir() -> PathBuf {
    workspace_root().join("xtask")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let defaults = Options::parse(&[]).unwrap();
        assert_eq!(defaults.max_examples, 100);
        assert_eq!(defaults.backend, Backend::Sqlite);
        assert_eq!(defaults.profile, Profile::Debug);
        let custom =
            Options::parse(&["--max-examples", "20", "--database=postgres", "--release", "--seed", "7"]).unwrap();
        assert_eq!(
            custom,
            Options {
                max_examples: 20,
                backend: Backend::Postgres,
                profile: Profile::Release,
                workers: 2,
                seed: Some(7)
            }
        );
        for bad in [&["--max-examples"][..], &["--max-examples", "0"], &["--database", "mysql"], &["--fast"]] {
            assert!(Options::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn reads_the_json_report() {
        let report = json!({
            "exit_code": 1,
            "operations": {"selected": 58, "tested": 57},
            "test_cases": {"generated": 1234},
            "failures": [{"title": "Server error", "count": 2, "operations": ["POST /v1/customers"]}],
            "errors": [],
        });
        let pass = Pass::from_report("with the key", &report, 61.2).unwrap();
        assert_eq!((pass.operations_selected, pass.operations_tested, pass.test_cases), (58, 57, 1234));
        assert!(!pass.passed());
        assert_eq!(
            pass.summary(),
            "with the key: 57 of 58 operations tested, 1234 test cases, 1 failures, 0 errors, 61s\n  \
             FAILURE: Server error (2 x) in POST /v1/customers"
        );
        let clean = json!({"exit_code": 0, "operations": {"selected": 58, "tested": 58}, "test_cases": {"generated": 9}, "failures": [], "errors": []});
        assert!(Pass::from_report("x", &clean, 1.0).unwrap().passed());
    }
}
