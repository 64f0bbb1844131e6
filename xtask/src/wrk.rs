//! Running the `wrk` load generator and reading its text report.
//!
//! wrk has no machine-readable output (short of a Lua script), so the parser reads the fixed
//! lines of its report; the tests pin it to reports captured from wrk 4.1 on this machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Context, Error};

/// What wrk reported for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub requests_per_sec: f64,
    /// "N requests in 10.00s".
    pub requests: u64,
    /// "Non-2xx or 3xx responses: N", zero when the line is absent.
    pub non_2xx: u64,
    /// The "Socket errors: ..." line as wrk printed it, when present.
    pub socket_errors: Option<String>,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// How hard to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    pub threads: u32,
    pub connections: u32,
    /// In wrk's syntax: `10s`, `1m`.
    pub duration: String,
}

/// Makes sure `wrk` is on the PATH, installing it with apt-get if it is not.
pub fn ensure_installed() -> Result<(), Error> {
    if find_on_path("wrk").is_some() {
        return Ok(());
    }
    eprintln!("==> wrk is not installed; trying `apt-get install -y wrk`");
    let install = || apt_get(&["install", "-y", "wrk"]);
    if !install() {
        eprintln!("==> install failed; running `apt-get update` and trying again");
        if !(apt_get(&["update"]) && install()) {
            return Err(Error::new(
                "wrk is not installed and `apt-get install -y wrk` failed (are you root?). \
                 Install wrk (https://github.com/wg/wrk) and run the bench again",
            ));
        }
    }
    match find_on_path("wrk") {
        Some(_) => Ok(()),
        None => Err(Error::new("apt-get reported success but `wrk` is still not on the PATH")),
    }
}

fn apt_get(args: &[&str]) -> bool {
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Runs wrk against `url` (GET, with `headers`) and parses its report. wrk's own output is not
/// echoed.
pub fn run(url: &str, headers: &[String], load: &Load) -> Result<Report, Error> {
    let mut command = command(load);
    for header in headers {
        command.arg("-H").arg(header);
    }
    report(command.arg(url))
}

/// Runs wrk against `url` with a Lua script that makes its request (a POST with a body, say).
/// The script should define no `response` function: wrk would read every answer's body for it,
/// and so measure itself more than the server.
pub fn run_script(url: &str, script: &Path, load: &Load) -> Result<Report, Error> {
    report(command(load).arg("-s").arg(script).arg(url))
}

fn command(load: &Load) -> Command {
    let mut command = Command::new("wrk");
    command
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}", load.duration))
        .arg("--latency");
    command
}

fn report(command: &mut Command) -> Result<Report, Error> {
    let output = command.stdin(Stdio::null()).output().context("running wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(Error::new(format!(
            "wrk failed ({}):\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    parse(&stdout).map_err(|err| err.context(format!("reading wrk's report\n{stdout}")))
}

/// Parses wrk's text report (run with `--latency`).
pub fn parse(output: &str) -> Result<Report, Error> {
    let mut requests_per_sec = None;
    let mut requests = None;
    let mut non_2xx = 0;
    let mut socket_errors = None;
    let mut p50_ms = None;
    let mut p99_ms = None;
    let mut in_distribution = false;
    for line in output.lines().map(str::trim) {
        if line == "Latency Distribution" {
            in_distribution = true;
            continue;
        }
        if in_distribution {
            match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["50%", value] => p50_ms = Some(duration_ms(value)?),
                ["99%", value] => p99_ms = Some(duration_ms(value)?),
                [percent, _] if percent.ends_with('%') => {}
                _ => in_distribution = false,
            }
            if in_distribution {
                continue;
            }
        }
        if let Some(value) = line.strip_prefix("Requests/sec:") {
            requests_per_sec = Some(number::<f64>(value.trim(), "Requests/sec")?);
        } else if let Some(value) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = number(value.trim(), "Non-2xx or 3xx responses")?;
        } else if line.starts_with("Socket errors:") {
            socket_errors = Some(line.to_owned());
        } else if let Some((count, rest)) = line.split_once(" requests in ")
            && rest.contains(" read")
        {
            requests = Some(number(count, "requests")?);
        }
    }
    let missing = |what: &str| Error::new(format!("no {what} in wrk's output"));
    Ok(Report {
        requests_per_sec: requests_per_sec.ok_or_else(|| missing("Requests/sec line"))?,
        requests: requests.ok_or_else(|| missing("\"N requests in\" line"))?,
        non_2xx,
        socket_errors,
        p50_ms: p50_ms.ok_or_else(|| missing("50% latency (was --latency passed?)"))?,
        p99_ms: p99_ms.ok_or_else(|| missing("99% latency (was --latency passed?)"))?,
    })
}

fn number<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, Error> {
    raw.parse().map_err(|_| Error::new(format!("{what}: `{raw}` is not a number")))
}

/// wrk prints times as `449.00us`, `2.00ms`, `1.02s`, `1.50m`, `1.00h`.
fn duration_ms(raw: &str) -> Result<f64, Error> {
    let digits = raw.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(raw.len());
    let (value, unit) = raw.split_at(digits);
    let value: f64 = number(value, "latency")?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return Err(Error::new(format!("latency `{raw}`: unknown unit"))),
    };
    Ok(value * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
    }

    /// `wrk -t2 -c32 -d3s --latency http://127.0.0.1:<port>/healthz` against a release build.
    const HEALTHZ: &str = include_str!("../testdata/wrk-healthz.txt");
    /// Same, against `GET /v1/whoami` with no key: every answer is a 401.
    const NON_2XX: &str = include_str!("../testdata/wrk-non-2xx.txt");
    /// `wrk -t2 -c8 -d5s --timeout 1s --latency` against a one-at-a-time HTTP/1.0 server that
    /// takes 600 ms per answer: most requests time out.
    const SOCKET_ERRORS: &str = include_str!("../testdata/wrk-socket-errors.txt");

    #[test]
    fn reads_a_clean_run() {
        let report = parse(HEALTHZ).unwrap();
        assert_close(report.requests_per_sec, 103_733.59);
        assert_eq!(report.requests, 311_916);
        assert_eq!(report.non_2xx, 0);
        assert_eq!(report.socket_errors, None);
        assert_close(report.p50_ms, 0.128);
        assert_close(report.p99_ms, 6.56);
    }

    #[test]
    fn reads_non_2xx_responses() {
        let report = parse(NON_2XX).unwrap();
        assert_close(report.requests_per_sec, 105_374.65);
        assert_eq!(report.requests, 316_458);
        assert_eq!(report.non_2xx, 316_458);
        assert_close(report.p50_ms, 0.201);
        assert_close(report.p99_ms, 3.72);
    }

    #[test]
    fn reads_socket_errors() {
        let report = parse(SOCKET_ERRORS).unwrap();
        assert_eq!(report.socket_errors.as_deref(), Some("Socket errors: connect 0, read 0, write 0, timeout 7"));
        assert_eq!(report.requests, 8);
        assert_eq!(report.non_2xx, 0);
        assert_close(report.requests_per_sec, 1.6);
        assert_close(report.p50_ms, 601.01);
        assert_close(report.p99_ms, 601.01);
    }

    #[test]
    fn converts_every_unit_to_milliseconds() {
        assert_close(duration_ms("449.00us").unwrap(), 0.449);
        assert_close(duration_ms("2.10ms").unwrap(), 2.1);
        assert_close(duration_ms("1.02s").unwrap(), 1020.0);
        assert_close(duration_ms("1.50m").unwrap(), 90_000.0);
        assert_close(duration_ms("1.00h").unwrap(), 3_600_000.0);
        assert!(duration_ms("3.00parsecs").is_err());
        assert!(duration_ms("ms").is_err());
    }

    #[test]
    fn refuses_output_without_latency_distribution() {
        let without: String =
            HEALTHZ.lines().filter(|line| !line.trim_start().starts_with("99%")).map(|l| format!("{l}\n")).collect();
        let err = parse(&without).unwrap_err();
        assert!(err.to_string().contains("99%"), "{err}");
        assert!(parse("").is_err());
    }
}
