//! `cargo xtask bench memory`: the server's resident memory (`VmRSS`, and its peak `VmHWM`, from
//! `/proc/<pid>/status`) at idle after start, after a short auth load (wrk on `GET /v1/whoami`
//! with one key), and with a million keys in the table while ever more distinct keys are
//! checked: the key cache holds at most `key_cache.capacity` keys, so once that many were
//! checked the memory stops growing.
//!
//! The keys are made in bulk as for `bench cold-keys`. The cache's time to live is set to an
//! hour, so that its capacity, not its expiry, is what bounds it during the run.

use std::fmt;

use crate::error::{Context, Error};
use crate::server::ServerProcess;
use crate::workspace::{Backend, Profile, step};
use crate::wrk::{self, Load};

use super::cold_keys::{Fixture, KeyTable, bench_key, check_keys, load_average, spread};
use super::server_binary;

/// The server's default `key_cache.capacity`.
const DEFAULT_CAPACITY: u64 = 100_000;
/// Distinct keys checked at once.
const CONNECTIONS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub keys: u64,
    /// Distinct keys checked, in four steps.
    pub checks: u64,
    /// `key_cache.capacity`; the server's default unless given (a quarter of the checks with
    /// `--quick`).
    pub capacity: Option<u64>,
    pub backend: Backend,
    pub quick: bool,
}

impl Options {
    /// `[--keys 1000000] [--checks 200000] [--cache-capacity N] [--database sqlite] [--quick]`.
    pub fn parse(args: &[&str]) -> Result<Self, Error> {
        let (KeyTable { keys, backend, quick }, [checks, capacity]) =
            KeyTable::parse(args, ["--checks", "--cache-capacity"])?;
        let checks = checks.unwrap_or(if quick { 8_000 } else { 200_000 });
        if checks > keys {
            return Err(Error::new("--checks cannot exceed --keys: each check uses another key"));
        }
        let capacity = capacity.or(quick.then_some(checks / 4).filter(|c| *c > 0));
        Ok(Self { keys, checks, capacity, backend, quick })
    }

    pub fn capacity(&self) -> u64 {
        self.capacity.unwrap_or(DEFAULT_CAPACITY)
    }
}

/// Resident memory, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Memory {
    /// From `/proc/<pid>/status`.
    pub fn read(server: &ServerProcess) -> Result<Self, Error> {
        let pid = server.pid().ok_or_else(|| Error::new("the server is not running"))?;
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).context(&path)?;
        Self::parse(&status).ok_or_else(|| Error::new(format!("no VmRSS and VmHWM in {path}")))
    }

    fn parse(status: &str) -> Option<Self> {
        let field = |name: &str| {
            status.lines().find_map(|line| line.strip_prefix(name)?.trim().strip_suffix("kB")?.trim().parse().ok())
        };
        Some(Self { rss_kib: field("VmRSS:")?, hwm_kib: field("VmHWM:")? })
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One reading, with what had happened by then.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub label: String,
    pub memory: Memory,
    /// Distinct keys checked by then (in the table of many keys).
    pub checked: Option<u64>,
    pub load: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub backend: Backend,
    pub keys: u64,
    pub capacity: u64,
    pub readings: Vec<Reading>,
    pub quick: bool,
}

impl Report {
    /// KiB per distinct key checked between consecutive readings while the cache filled, and
    /// once it was full (the first reading at or past the capacity on).
    pub fn growth_per_key(&self) -> Option<(f64, f64)> {
        let checked: Vec<(u64, u64)> =
            self.readings.iter().filter_map(|r| Some((r.checked?, r.memory.rss_kib))).collect();
        let full = checked.iter().position(|(n, _)| *n >= self.capacity)?;
        let slope = |a: (u64, u64), b: (u64, u64)| (b.1 as f64 - a.1 as f64) / (b.0 as f64 - a.0 as f64).max(1.0);
        let filling = slope(*checked.first()?, checked[full]);
        let full_on = slope(checked[full], *checked.last()?);
        (checked.len() > full + 1 && full > 0).then_some((filling, full_on))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let build = if self.quick { "a quick run: the figures mean nothing" } else { "release build" };
        writeln!(
            f,
            "memory on {}: key_cache.capacity {} keys (ttl 1 h), {} keys in the table for the last readings, {build}",
            self.backend.name(),
            self.capacity,
            self.keys + 1,
        )?;
        for reading in &self.readings {
            writeln!(
                f,
                "{:<44} VmRSS {:>7.1} MiB  VmHWM {:>7.1} MiB  (load {})",
                reading.label,
                mib(reading.memory.rss_kib),
                mib(reading.memory.hwm_kib),
                reading.load
            )?;
        }
        if let Some((filling, full)) = self.growth_per_key() {
            let bounded = match (self.quick, full < filling / 4.0) {
                (true, _) => "no verdict on a quick run",
                (false, true) => "bounded",
                (false, false) => "NOT flat: look again",
            };
            writeln!(
                f,
                "growth per distinct key: {:.2} KiB while the cache filled, {:.2} KiB once it was full: {bounded}",
                filling, full
            )?;
        }
        Ok(())
    }
}

/// Runs the bench; prints the report on stdout, progress on stderr.
pub fn run(options: &Options) -> Result<Report, Error> {
    wrk::ensure_installed()?;
    let binary = server_binary(if options.quick { Profile::Debug } else { Profile::Release })?;
    let mut env = vec![("OTESSE_KEY_CACHE__TTL_SECS", "3600".to_owned())];
    if let Some(capacity) = options.capacity {
        env.push(("OTESSE_KEY_CACHE__CAPACITY", capacity.to_string()));
    }
    let (mut fixture, server) = Fixture::start(binary, options.backend, &env)?;
    let result = measure(&fixture, server, options);
    fixture.scratch.report(&result, |_| Vec::new(), "server.log");
    result
}

fn measure(fixture: &Fixture, server: ServerProcess, options: &Options) -> Result<Report, Error> {
    let mut readings = Vec::new();
    let mut read = |server: &ServerProcess, label: String, checked: Option<u64>| -> Result<(), Error> {
        let memory = Memory::read(server)?;
        step(format!("{label}: VmRSS {:.1} MiB", mib(memory.rss_kib)));
        readings.push(Reading { label, memory, checked, load: load_average() });
        Ok(())
    };
    read(&server, "idle after start (set up, one key)".into(), None)?;

    let load = Load { threads: 2, connections: 32, duration: if options.quick { "2s" } else { "10s" }.into() };
    step(format!("wrk -t2 -c32 -d{} GET /v1/whoami (one key)", load.duration));
    let keyed = [format!("Authorization: Bearer {}", fixture.template_key)];
    let run = wrk::run(&fixture.client.url("/v1/whoami"), &keyed, &load)?;
    if run.non_2xx > 0 {
        return Err(Error::new(format!("{} whoami answers were not 2xx", run.non_2xx)));
    }
    read(&server, format!("after wrk on whoami ({:.0} req/s)", run.requests_per_sec), None)?;

    let (server, _) = fixture.fill(server, options.keys)?;
    read(&server, format!("idle, restarted with {} keys", options.keys + 1), Some(0))?;
    let keys: Vec<String> = spread(options.keys, options.checks).map(|i| bench_key(&fixture.seed, i)).collect();
    let steps = 4;
    let per_step = keys.len().div_ceil(steps);
    for (n, chunk) in keys.chunks(per_step).enumerate() {
        let done = (n * per_step + chunk.len()) as u64;
        step(format!("checking distinct keys {}..{done} ({CONNECTIONS} at a time)", n * per_step));
        check_keys(&fixture.client.url(""), chunk, CONNECTIONS)?;
        read(&server, format!("after {done} distinct keys checked"), Some(done))?;
    }
    let status = server.stop(super::STOP_TIMEOUT)?;
    if !status.success() {
        return Err(Error::new(format!("the server exited with {status} after SIGTERM")));
    }
    Ok(Report {
        backend: options.backend,
        keys: options.keys,
        capacity: options.capacity(),
        readings,
        quick: options.quick,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let defaults = Options::parse(&[]).unwrap();
        assert_eq!((defaults.keys, defaults.checks, defaults.capacity), (1_000_000, 200_000, None));
        assert_eq!(defaults.capacity(), 100_000);
        let quick = Options::parse(&["--quick"]).unwrap();
        assert_eq!((quick.keys, quick.checks, quick.capacity), (20_000, 8_000, Some(2_000)));
        let custom = Options::parse(&["--keys", "500", "--checks=400", "--cache-capacity", "100"]).unwrap();
        assert_eq!((custom.keys, custom.checks, custom.capacity()), (500, 400, 100));
        for bad in [&["--checks", "0"][..], &["--keys", "10", "--checks", "20"], &["--cache-capacity"], &["--x"]] {
            assert!(Options::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn reads_proc_status() {
        let status = "Name:\totesse-server\nVmPeak:\t 900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(Memory::parse(status), Some(Memory { rss_kib: 40_960, hwm_kib: 51_234 }));
        assert_eq!(Memory::parse("VmRSS:\t 1 kB\n"), None);
    }

    fn reading(checked: Option<u64>, rss_kib: u64) -> Reading {
        Reading {
            label: format!("after {checked:?}"),
            memory: Memory { rss_kib, hwm_kib: rss_kib },
            checked,
            load: "1.00, 1.00, 1.00".into(),
        }
    }

    #[test]
    fn growth_per_key_before_and_after_the_cache_is_full() {
        let report = Report {
            backend: Backend::Sqlite,
            keys: 1_000,
            capacity: 400,
            readings: vec![
                reading(None, 10_000),
                reading(Some(0), 20_000),
                reading(Some(200), 20_200),
                reading(Some(400), 20_400),
                reading(Some(600), 20_410),
                reading(Some(800), 20_420),
            ],
            quick: false,
        };
        let (filling, full) = report.growth_per_key().unwrap();
        assert!((filling - 1.0).abs() < 1e-9 && (full - 0.05).abs() < 1e-9, "{filling} {full}");
        let text = report.to_string();
        assert!(text.contains("1.00 KiB while the cache filled, 0.05 KiB once it was full: bounded"), "{text}");
        assert!(text.contains("VmRSS    19.5 MiB"), "{text}");
        let growing =
            Report { readings: vec![reading(Some(0), 0), reading(Some(400), 400), reading(Some(800), 800)], ..report };
        assert!(growing.to_string().contains("NOT flat"));
        let quick = Report { quick: true, ..growing };
        assert!(quick.to_string().contains("once it was full: no verdict on a quick run"));
    }
}
