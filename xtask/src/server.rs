//! The server as a child process: started with a given environment, logging to a file, and
//! never outliving the task (the guard kills it when dropped, on every error path).

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Context, Error};
use crate::http::Client;

/// How the server is started: the binary, its environment, and where its output goes.
#[derive(Debug, Clone)]
pub struct Launch {
    pub binary: PathBuf,
    /// `OTESSE_*` variables; those of the calling shell are not passed on.
    pub env: Vec<(String, String)>,
    /// The working directory: the server reads `.env` and `otesse.toml` from it, so this should
    /// be a directory without either.
    pub cwd: PathBuf,
    pub log: PathBuf,
}

impl Launch {
    /// The binary with the launch's environment (and no other `OTESSE_*` variable) in its
    /// directory: the server, or with arguments one of its commands on the same database.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("OTESSE_") {
                command.env_remove(key);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v))).current_dir(&self.cwd);
        command
    }
}

/// A running server. Dropping it kills the process if it is still running.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts the server; its stdout and stderr are appended to the launch's log file.
    pub fn start(launch: &Launch) -> Result<Self, Error> {
        let log = File::options().create(true).append(true).open(&launch.log).context(launch.log.display())?;
        let child = launch
            .command()
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context(format!("starting {}", launch.binary.display()))?;
        Ok(Self { child: Some(child), log: launch.log.clone() })
    }

    /// Polls `GET /readyz` until it answers 200; fails early if the process exits.
    pub fn wait_ready(&mut self, client: &Client, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if client.is_ready() {
                return Ok(());
            }
            if let Some(status) = self.child_mut()?.try_wait()? {
                self.child = None;
                return Err(Error::new(format!("the server exited ({status}) before it was ready{}", self.log_tail())));
            }
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "the server was not ready after {}s{}",
                    timeout.as_secs(),
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM and waits for a graceful exit; past `timeout`, kills it and fails.
    pub fn stop(mut self, timeout: Duration) -> Result<ExitStatus, Error> {
        let pid = self.child_mut()?.id().to_string();
        // `kill` from the command line: std offers only SIGKILL, and libc is not worth a dependency.
        let sent = Command::new("kill").args(["-TERM", &pid]).status().context("running kill -TERM")?;
        if !sent.success() {
            return Err(Error::new(format!("kill -TERM {pid} failed ({sent})")));
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child_mut()?.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(Error::new(format!(
                    "the server did not stop within {}s of SIGTERM and was killed{}",
                    timeout.as_secs(),
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server with SIGKILL (no shutdown of any kind) and waits for it to be gone.
    pub fn kill_hard(&mut self) -> Result<ExitStatus, Error> {
        let child = self.child_mut()?;
        child.kill().context("kill -9 the server")?;
        let status = child.wait().context("waiting for the killed server")?;
        self.child = None;
        Ok(status)
    }

    /// The last lines of the server's log, formatted to follow an error message.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log, 30)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// CPU time the server process has used so far (user + system), from `/proc/<pid>/stat`.
    /// `None` where procfs is not available.
    pub fn cpu_time(&self) -> Option<Duration> {
        let pid = self.child.as_ref()?.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // Linux reports these in USER_HZ, which is 100 on every architecture it supports.
        Some(Duration::from_millis(ticks * 10))
    }

    fn child_mut(&mut self) -> Result<&mut Child, Error> {
        self.child.as_mut().ok_or_else(|| Error::new("the server is no longer running"))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn log_tail(log: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read_to_string(log) else {
        return String::new();
    };
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    format!("\n--- last lines of {} ---\n{tail}", log.display())
}

/// A port that was free a moment ago (bound to port 0, then released for the server to take).
pub fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A fresh directory under the system temp dir, removed when dropped unless kept.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new(prefix: &str) -> Result<Self, Error> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", random_hex(8)?));
        std::fs::create_dir(&path).context(format!("creating {}", path.display()))?;
        Ok(Self { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the directory in place (for its logs, after a failure).
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `bytes` random bytes from the kernel, hex-encoded.
pub fn random_hex(bytes: usize) -> Result<String, Error> {
    use std::io::Read;
    let mut buffer = vec![0u8; bytes];
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buffer)).context("reading /dev/urandom")?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_has_the_asked_length_and_differs() {
        let a = random_hex(16).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(16).unwrap());
    }

    #[test]
    fn temp_dir_is_removed_unless_kept() {
        let dir = TempDir::new("xtask-test").unwrap();
        let path = dir.path().to_owned();
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists());

        let mut kept = TempDir::new("xtask-test").unwrap();
        kept.keep();
        let path = kept.path().to_owned();
        drop(kept);
        assert!(path.is_dir());
        std::fs::remove_dir_all(path).unwrap();
    }

    fn sleeping_child(dir: &TempDir) -> ServerProcess {
        let child = Command::new("sleep").arg("60").spawn().unwrap();
        ServerProcess { child: Some(child), log: dir.path().join("log") }
    }

    #[test]
    fn dropping_the_guard_kills_the_child() {
        let dir = TempDir::new("xtask-test").unwrap();
        let server = sleeping_child(&dir);
        let pid = server.child.as_ref().unwrap().id();
        drop(server);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "process {pid} survived the guard");
    }

    #[test]
    fn stop_sends_sigterm_and_waits() {
        use std::os::unix::process::ExitStatusExt;
        let dir = TempDir::new("xtask-test").unwrap();
        let status = sleeping_child(&dir).stop(Duration::from_secs(10)).unwrap();
        assert_eq!(status.signal(), Some(15), "{status}");
    }
}
