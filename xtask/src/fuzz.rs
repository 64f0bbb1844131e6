//! `cargo xtask fuzz <target|all> [--seconds N]`: runs the cargo-fuzz targets of `fuzz/` for a
//! bounded time each, one after the other, and reads libFuzzer's own account of each run.
//!
//! cargo-fuzz needs nightly (libFuzzer's instrumentation and the address sanitizer are unstable
//! rustc flags). Where no nightly toolchain is installed, the pinned one runs with
//! `RUSTC_BOOTSTRAP=1`, which cargo-fuzz supports, so that a fresh machine can fuzz too; the
//! cargo-fuzz binary itself is installed from crates.io when it is missing.
//!
//! Each run writes what it learns to `fuzz/target/corpus/<target>` (kept between runs, never
//! committed) and reads the seeds in `fuzz/corpus/<target>` (committed, kept small). A crash is
//! saved under `fuzz/artifacts/<target>/`. libFuzzer's output goes to
//! `fuzz/target/logs/<target>.log`; its last lines are printed when a target fails.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::args::Flags;
use crate::error::{Context, Error};

/// How long each target runs unless `--seconds` says otherwise.
const DEFAULT_SECONDS: u64 = 60;
/// How much of a failing run's log is shown.
const TAIL_LINES: usize = 40;

/// Which targets to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    One(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub selection: Selection,
    /// libFuzzer's `-max_total_time`, per target.
    pub seconds: u64,
}

impl Options {
    /// `<target|all> [--seconds N]`, also as `--seconds=N`.
    pub fn parse(args: &[&str]) -> Result<Self, Error> {
        let mut selection = None;
        let mut seconds = DEFAULT_SECONDS;
        let mut flags = Flags::new(args);
        while let Some(flag) = flags.next() {
            let arg = flag.arg;
            match flag.name {
                "--seconds" => {
                    let raw = flags.value(&flag)?;
                    seconds = match raw.parse::<u64>() {
                        Ok(n) if n > 0 => n,
                        _ => return Err(Error::new(format!("--seconds `{raw}`: expected a positive whole number"))),
                    };
                }
                _ if arg.starts_with('-') => return Err(flag.unknown()),
                _ if selection.is_some() => {
                    return Err(Error::new(format!("`{arg}`: one target (or `all`) at a time")));
                }
                "all" => selection = Some(Selection::All),
                _ => selection = Some(Selection::One(arg.to_owned())),
            }
        }
        let selection = selection.ok_or_else(|| Error::new("usage: cargo xtask fuzz <target|all> [--seconds N]"))?;
        Ok(Self { selection, seconds })
    }
}

/// What libFuzzer reported for one run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    /// Inputs executed.
    pub executions: u64,
    /// libFuzzer's average executions per second.
    pub exec_per_sec: u64,
    /// Crashing inputs written (crash, timeout, out-of-memory, leak).
    pub crashes: u32,
    /// Where the crashing inputs were written.
    pub artifacts: Vec<String>,
    /// libFuzzer's or the sanitizer's error line, and a panic's message, if any.
    pub errors: Vec<String>,
}

/// Reads libFuzzer's output (run with `-print_final_stats=1`): the `stat::` lines when present,
/// else the last `#N ... exec/s: M` status line; crashes are the inputs it says it wrote.
pub fn parse(output: &str) -> Result<Stats, Error> {
    let mut stats = Stats::default();
    let (mut executed, mut per_sec) = (None, None);
    let (mut status_executed, mut status_per_sec) = (None, None);
    let mut lines = output.lines().peekable();
    while let Some(line) = lines.next() {
        let line = line.trim_end();
        if let Some(value) = line.strip_prefix("stat::number_of_executed_units:") {
            executed = Some(number(value.trim(), "stat::number_of_executed_units")?);
        } else if let Some(value) = line.strip_prefix("stat::average_exec_per_sec:") {
            per_sec = Some(number(value.trim(), "stat::average_exec_per_sec")?);
        } else if let Some((count, exec_s)) = status_line(line) {
            status_executed = Some(count);
            status_per_sec = exec_s.or(status_per_sec);
        } else if let Some(path) = line.split_once("Test unit written to ").map(|(_, path)| path.trim()) {
            let name = Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if ["crash-", "timeout-", "oom-", "leak-"].iter().any(|kind| name.starts_with(kind)) {
                stats.crashes += 1;
                stats.artifacts.push(path.to_owned());
            }
        } else if line.contains("ERROR: libFuzzer:") || line.contains("ERROR: AddressSanitizer:") {
            stats.errors.push(line.trim_start_matches(|c: char| c == '=' || c.is_ascii_digit()).trim().to_owned());
        } else if line.starts_with("thread '") && line.contains(" panicked at ") {
            // `thread '<unnamed>' (25156) panicked at src.rs:1:2:`, the message on the next line.
            let message = lines.next_if(|next| !next.starts_with("note:")).unwrap_or_default();
            stats.errors.push(format!("{line} {}", message.trim()).trim().to_owned());
        }
    }
    stats.executions = executed.or(status_executed).ok_or_else(|| Error::new("no executions in libFuzzer's output"))?;
    stats.exec_per_sec = per_sec.or(status_per_sec).unwrap_or(0);
    Ok(stats)
}

/// `#1234\tDONE   cov: 56 ft: 78 corp: 9/10b exec/s: 411 rss: 50Mb`: the count, and exec/s
/// when the line has it (the first lines, `INITED` and the like, may not).
fn status_line(line: &str) -> Option<(u64, Option<u64>)> {
    let rest = line.strip_prefix('#')?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let count = rest[..digits].parse().ok()?;
    if !rest[digits..].starts_with(char::is_whitespace) {
        return None;
    }
    let exec_s = rest.split_once("exec/s: ").and_then(|(_, after)| after.split_whitespace().next()?.parse().ok());
    Some((count, exec_s))
}

fn number(raw: &str, what: &str) -> Result<u64, Error> {
    raw.parse().map_err(|_| Error::new(format!("{what}: `{raw}` is not a number")))
}

/// One target's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub target: String,
    pub seconds: u64,
    pub stats: Stats,
    /// libFuzzer exited with an error (a crash, or a failure it did not write an input for).
    pub failed: bool,
}

impl Run {
    /// Crashes found: the inputs written, or one for a failed run that wrote none.
    pub fn crashes(&self) -> u32 {
        if self.failed { self.stats.crashes.max(1) } else { self.stats.crashes }
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<18} {:>12} executions in {:>4} s  {:>8} exec/s  {} crash{}",
            self.target,
            self.stats.executions,
            self.seconds,
            self.stats.exec_per_sec,
            self.crashes(),
            if self.crashes() == 1 { "" } else { "es" }
        )?;
        for artifact in &self.stats.artifacts {
            write!(f, "\n    input: {artifact}")?;
        }
        for error in &self.stats.errors {
            write!(f, "\n    {error}")?;
        }
        Ok(())
    }
}

/// Builds the targets, runs the selected ones, prints a line each; false if any crashed.
pub fn run(options: &Options) -> Result<bool, Error> {
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    let toolchain = Toolchain::find();
    ensure_cargo_fuzz(&root)?;
    let available = list_targets(&fuzz_dir, &toolchain)?;
    let targets = match &options.selection {
        Selection::All => available,
        Selection::One(name) if available.contains(name) => vec![name.clone()],
        Selection::One(name) => {
            return Err(Error::new(format!("no fuzz target `{name}`; there are: {}", available.join(", "))));
        }
    };
    step(format!("cargo{} fuzz build ({})", toolchain.plus(), toolchain.describe()));
    let status = toolchain
        .cargo_fuzz(&fuzz_dir)
        .arg("build")
        .status()
        .context("running cargo fuzz build (is g++ installed?)")?;
    if !status.success() {
        return Err(Error::new(format!("cargo fuzz build failed ({status})")));
    }
    let mut runs = Vec::new();
    for target in &targets {
        let started = Instant::now();
        let run = run_target(&fuzz_dir, &toolchain, target, options.seconds)?;
        step(format!("{target}: done in {:.0} s", started.elapsed().as_secs_f64()));
        runs.push(run);
    }
    println!("fuzzing, {} s per target:", options.seconds);
    for run in &runs {
        println!("{run}");
    }
    let crashed: Vec<&str> = runs.iter().filter(|run| run.crashes() > 0).map(|run| run.target.as_str()).collect();
    if crashed.is_empty() {
        return Ok(true);
    }
    eprintln!(
        "FAILED: {} crashed; reproduce with `cargo +nightly fuzz run <target> <input>` in fuzz/",
        crashed.join(", ")
    );
    Ok(false)
}

fn run_target(fuzz_dir: &Path, toolchain: &Toolchain, target: &str, seconds: u64) -> Result<Run, Error> {
    let work_corpus = fuzz_dir.join("target").join("corpus").join(target);
    std::fs::create_dir_all(&work_corpus).context(format!("creating {}", work_corpus.display()))?;
    let logs = fuzz_dir.join("target").join("logs");
    std::fs::create_dir_all(&logs).context(format!("creating {}", logs.display()))?;
    let log_path = logs.join(format!("{target}.log"));
    step(format!(
        "cargo{} fuzz run {target} -- -max_total_time={seconds} (log: {})",
        toolchain.plus(),
        log_path.display()
    ));
    // New inputs go to the first corpus directory: the work one, not the committed seeds.
    let mut child = toolchain
        .cargo_fuzz(fuzz_dir)
        .args(["run", target])
        .arg(&work_corpus)
        .arg(Path::new("corpus").join(target))
        .args(["--", &format!("-max_total_time={seconds}"), "-print_final_stats=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running cargo fuzz run")?;
    // stdout (cargo-fuzz's own lines) is small; read it on a thread while stderr is streamed.
    let stdout =
        child.stdout.take().map(|out| std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default()));
    let mut log = File::create(&log_path).context(format!("creating {}", log_path.display()))?;
    let mut output = String::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading libFuzzer's output")?;
            writeln!(log, "{line}").context("writing the log")?;
            output.push_str(&line);
            output.push('\n');
        }
    }
    let status = child.wait().context("waiting for cargo fuzz run")?;
    let stdout = stdout.and_then(|reader| reader.join().ok()).unwrap_or_default();
    write!(log, "{stdout}").context("writing the log")?;
    output.push_str(&stdout);
    let stats = parse(&output).map_err(|err| err.context(format!("{target} ({status}):\n{}", tail(&output))))?;
    let run = Run { target: target.to_owned(), seconds, stats, failed: !status.success() };
    if run.crashes() > 0 {
        eprintln!("--- the end of {} ---\n{}", log_path.display(), tail(&output));
    }
    Ok(run)
}

fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// `cargo fuzz list`: the targets `fuzz/Cargo.toml` declares.
fn list_targets(fuzz_dir: &Path, toolchain: &Toolchain) -> Result<Vec<String>, Error> {
    let output = toolchain.cargo_fuzz(fuzz_dir).arg("list").output().context("running cargo fuzz list")?;
    if !output.status.success() {
        return Err(Error::new(format!("cargo fuzz list failed: {}", String::from_utf8_lossy(&output.stderr))));
    }
    let targets: Vec<String> = String::from_utf8_lossy(&output.stdout).split_whitespace().map(str::to_owned).collect();
    if targets.is_empty() {
        return Err(Error::new("cargo fuzz list found no target in fuzz/"));
    }
    Ok(targets)
}

/// Installs cargo-fuzz with `cargo install cargo-fuzz --locked` when `cargo fuzz` is missing.
fn ensure_cargo_fuzz(root: &Path) -> Result<(), Error> {
    let cargo = cargo();
    let installed = |cargo: &std::ffi::OsStr| {
        Command::new(cargo)
            .args(["fuzz", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if installed(&cargo) {
        return Ok(());
    }
    eprintln!("==> cargo-fuzz is not installed; running `cargo install cargo-fuzz --locked`");
    let status = Command::new(&cargo)
        .args(["install", "cargo-fuzz", "--locked"])
        .current_dir(root)
        .stdin(Stdio::null())
        .status()
        .context("running cargo install")?;
    if !status.success() || !installed(&cargo) {
        return Err(Error::new(format!("`cargo install cargo-fuzz --locked` failed ({status})")));
    }
    Ok(())
}

/// The toolchain cargo-fuzz builds with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Toolchain {
    /// `cargo +nightly`.
    Nightly,
    /// The pinned stable toolchain with `RUSTC_BOOTSTRAP=1`, where no nightly is installed.
    Bootstrapped,
}

impl Toolchain {
    fn find() -> Self {
        let nightly = Command::new("cargo")
            .args(["+nightly", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if nightly {
            Toolchain::Nightly
        } else {
            eprintln!(
                "==> no nightly toolchain (`cargo +nightly` fails); fuzzing with the pinned toolchain and \
                 RUSTC_BOOTSTRAP=1 instead"
            );
            Toolchain::Bootstrapped
        }
    }

    fn plus(self) -> &'static str {
        match self {
            Toolchain::Nightly => " +nightly",
            Toolchain::Bootstrapped => "",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Toolchain::Nightly => "nightly",
            Toolchain::Bootstrapped => "pinned toolchain, RUSTC_BOOTSTRAP=1",
        }
    }

    /// `cargo [+nightly] fuzz` in `fuzz/`. Through rustup's `cargo` rather than `$CARGO`: the
    /// `+toolchain` argument is rustup's.
    fn cargo_fuzz(self, fuzz_dir: &Path) -> Command {
        let mut command = Command::new("cargo");
        if self == Toolchain::Nightly {
            command.arg("+nightly");
        } else {
            command.env("RUSTC_BOOTSTRAP", "1");
        }
        // What `cargo xtask`'s own cargo set for this process: the toolchain, which cargo-fuzz
        // must pick afresh, and the package's variables, which build scripts watch (ring's
        // watches CARGO_MANIFEST_DIR: left set, every run by hand would rebuild half the tree).
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let set_by_cargo_run = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_", "CARGO_CRATE_", "CARGO_PRIMARY_"]
                .iter()
                .any(|prefix| name.starts_with(prefix));
            if set_by_cargo_run || ["CARGO", "RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC"].contains(&name.as_ref()) {
                command.env_remove(name.as_ref());
            }
        }
        command.arg("fuzz").current_dir(fuzz_dir);
        command
    }
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_owned()
}

fn step(message: impl fmt::Display) {
    eprintln!("==> {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo +nightly fuzz run key_parser <work corpus> <seeds> -- -max_total_time=10
    /// -print_final_stats=1`, its status lines and dictionary shortened.
    const CLEAN: &str = include_str!("../testdata/fuzz-clean.txt");
    /// The same for `ip_allowlist` before its fix: a panic on a seed, stack traces left out.
    const CRASH: &str = include_str!("../testdata/fuzz-crash.txt");

    #[test]
    fn parses_options() {
        assert_eq!(Options::parse(&["all"]).unwrap(), Options { selection: Selection::All, seconds: 60 });
        let one = Options::parse(&["key_parser", "--seconds", "15"]).unwrap();
        assert_eq!(one, Options { selection: Selection::One("key_parser".into()), seconds: 15 });
        let before = Options::parse(&["--seconds=600", "url_guard"]).unwrap();
        assert_eq!(before, Options { selection: Selection::One("url_guard".into()), seconds: 600 });
        for bad in [
            &[][..],
            &["--seconds", "5"],
            &["all", "--seconds"],
            &["all", "--seconds", "0"],
            &["all", "--seconds", "-5"],
            &["all", "--seconds=1m"],
            &["all", "--verbose"],
            &["key_parser", "url_guard"],
        ] {
            assert!(Options::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn reads_a_clean_run() {
        let stats = parse(CLEAN).unwrap();
        assert_eq!(stats, Stats { executions: 667_248, exec_per_sec: 60_658, ..Stats::default() });
        let run = Run { target: "key_parser".into(), seconds: 10, stats, failed: false };
        assert_eq!(run.to_string(), "key_parser               667248 executions in   10 s     60658 exec/s  0 crashes");
    }

    #[test]
    fn reads_a_crash() {
        let stats = parse(CRASH).unwrap();
        assert_eq!((stats.executions, stats.exec_per_sec, stats.crashes), (8, 0, 1));
        assert_eq!(stats.artifacts, ["artifacts/ip_allowlist/crash-71a1c6583217fa7486b6ea30654ed71689e2bee3"]);
        assert_eq!(
            stats.errors,
            [
                "thread '<unnamed>' (25156) panicked at fuzz_targets/ip_allowlist.rs:49:9: \
                 an allow-list of ::ffff:10.0.0.1/128 refuses ::ffff:10.0.0.1",
                "ERROR: libFuzzer: deadly signal",
            ]
        );
        let run = Run { target: "ip_allowlist".into(), seconds: 10, stats, failed: true };
        assert_eq!(run.crashes(), 1);
        let text = run.to_string();
        assert!(text.contains("1 crash\n    input: artifacts/ip_allowlist/crash-71a1"), "{text}");
    }

    #[test]
    fn falls_back_on_the_status_lines() {
        let output = "INFO: Seed: 1\n#2\tINITED cov: 10 ft: 10 corp: 1/1b exec/s: 0 rss: 30Mb\n\
                      #4096\tpulse  cov: 12 ft: 14 corp: 3/9b lim: 43 exec/s: 2048 rss: 31Mb\n\
                      #51234\tDONE   cov: 12 ft: 14 corp: 3/9b lim: 43 exec/s: 10246 rss: 31Mb\n\
                      Done 51234 runs in 5 second(s)\n";
        let stats = parse(output).unwrap();
        assert_eq!((stats.executions, stats.exec_per_sec, stats.crashes), (51_234, 10_246, 0));
        assert!(parse("error: could not compile `otesse-fuzz`\n").is_err());
        assert_eq!(status_line("#12 NEW cov: 1"), Some((12, None)));
        assert_eq!(status_line("#12abc"), None);
        assert_eq!(status_line("# comment"), None);
    }

    #[test]
    fn a_failed_run_counts_as_a_crash_even_without_an_input() {
        let stats = Stats { executions: 10, exec_per_sec: 5, ..Stats::default() };
        let run = Run { target: "ip_allowlist".into(), seconds: 15, stats, failed: true };
        assert_eq!(run.crashes(), 1);
        assert!(run.to_string().starts_with("ip_allowlist"), "{run}");
        assert!(run.to_string().contains("10 executions in   15 s         5 exec/s  1 crash"), "{run}");
        let clean = Run { failed: false, ..run };
        assert!(clean.to_string().ends_with("0 crashes"), "{clean}");
    }
}
