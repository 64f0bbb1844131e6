//! The README's walkthrough, run as written: every `sh` block in order in one bash session
//! against a fresh server (the real binary), each answer checked against the `text` block that
//! follows it, so the README cannot drift from the product.
//!
//! Conventions the README follows: a block after `<!-- readme-test: skip -->` is not run (nor
//! one after `<!-- readme-test: bookings -->`, which the bookings service's tests run); a
//! block holding `cargo run --release -p otesse-server` (re)starts the server, here the test's
//! binary, with the variables set on that command; `[..]` in an answer matches anything within
//! a line, and the answer's lines must appear in order in what the block printed. The ports the
//! README names (8080 for the server, 9098 and 9099 for its fakes) become free ones, and the
//! setup-token placeholder becomes the token the server printed.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const START: &str = "cargo run --release -p otesse-server";
const END: &str = "@@readme-block-end@@";

struct Block {
    code: String,
    expected: Option<String>,
}

/// The runnable `sh` blocks, each with the `text` block right after it, if any.
fn blocks(readme: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut lines = readme.lines();
    let mut skip = false;
    let mut last_was_sh = false;
    while let Some(line) = lines.next() {
        let fence = line.trim_start();
        if fence.starts_with("<!-- readme-test: skip") || fence.starts_with("<!-- readme-test: bookings") {
            skip = true;
            continue;
        }
        let Some(lang) = fence.strip_prefix("```") else {
            if !line.trim().is_empty() {
                last_was_sh = false;
            }
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| !l.trim_start().starts_with("```")).collect();
        let body = body.join("\n");
        match lang.trim() {
            "sh" if !skip => {
                blocks.push(Block { code: body, expected: None });
                last_was_sh = true;
                skip = false;
                continue;
            }
            "text" if last_was_sh => blocks.last_mut().unwrap().expected = Some(body),
            _ => {}
        }
        skip = false;
        last_was_sh = false;
    }
    blocks
}

/// Whether `actual` holds every line of `expected`, in order (`[..]` matches anything).
fn matches(expected: &str, actual: &str) -> bool {
    let mut actual = actual.lines();
    expected.lines().all(|want| actual.any(|line| line_matches(want.trim_end(), line.trim_end())))
}

pub(crate) fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let Some(mut rest) = line.strip_prefix(parts[0]) else { return false };
    for (index, part) in parts.iter().enumerate().skip(1) {
        if index == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The server process, stopped (SIGTERM, by its id) when replaced or dropped.
pub(crate) struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// Starts the server in `dir` on `port` with `env`; returns it and the setup token it printed.
pub(crate) fn start_server(dir: &std::path::Path, port: u16, env: &[(String, String)]) -> (Server, Option<String>) {
    let mut child = crate::cli::server_command(dir)
        .env("OTESSE_LISTEN", format!("127.0.0.1:{port}"))
        .env("OTESSE_LOG_FILTER", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, printed) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let server = Server { child };
    wait_for_port(port);
    // The announcement is printed right after the port opens: read what is there.
    let mut token = None;
    let mut after_prompt = false;
    while let Ok(line) = printed.recv_timeout(Duration::from_millis(500)) {
        if after_prompt && !line.trim().is_empty() && token.is_none() {
            token = Some(line.trim().to_owned());
        }
        after_prompt |= line.contains("paste this setup token");
    }
    (server, token)
}

/// Polls until something listens on `port` (at most a minute).
fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `A=1 B=2 \ cargo run ...`: the variables set on the start command.
fn start_env(code: &str) -> Vec<(String, String)> {
    let joined = code.replace("\\\n", " ");
    let line = joined.lines().find(|l| l.contains(START)).unwrap();
    line.split_whitespace()
        .take_while(|word| *word != "cargo")
        .filter_map(|word| word.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// A bash session that runs the blocks one after another, keeping their variables.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    output: Receiver<String>,
}

impl Shell {
    fn start(dir: &std::path::Path) -> Self {
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        writeln!(stdin, "exec 2>&1").unwrap();
        Self { child, stdin, output }
    }

    fn run(&mut self, code: &str) -> String {
        writeln!(self.stdin, "{code}\necho {END}").unwrap();
        self.stdin.flush().unwrap();
        let mut printed = String::new();
        loop {
            let line = self
                .output
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("the block hung or the shell died:\n{code}\nprinted:\n{printed}"));
            if line == END {
                return printed;
            }
            printed.push_str(&line);
            printed.push('\n');
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // The fakes the README started in the background, then the shell itself.
        let _ = writeln!(self.stdin, "kill $(jobs -p) 2>/dev/null; exit");
        let _ = self.child.wait();
    }
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    for tool in ["bash", "curl", "jq", "python3"] {
        assert!(
            Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap().status.success(),
            "{tool} is needed"
        );
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let ports = [("127.0.0.1:8080", free_port()), ("127.0.0.1:9099", free_port()), ("127.0.0.1:9098", free_port())];
    // Both spellings: `127.0.0.1:9099` in URLs, `("127.0.0.1", 9099)` in the Python fakes.
    let local = |text: &str| {
        ports.iter().fold(text.to_owned(), |text, (from, to)| {
            let python = format!("\"127.0.0.1\", {}", &from["127.0.0.1:".len()..]);
            text.replace(from, &format!("127.0.0.1:{to}")).replace(&python, &format!("\"127.0.0.1\", {to}"))
        })
    };
    let server_port = ports[0].1;
    let dir = tempfile::tempdir().unwrap();
    let mut shell = Shell::start(dir.path());
    let mut server: Option<Server> = None;
    let mut token = None;
    let blocks = blocks(&readme);
    assert!(blocks.len() >= 10, "the walkthrough's blocks were not found");
    let print = std::env::var_os("OTESSE_README_PRINT").is_some();
    let mut checked = 0;
    for block in &blocks {
        let code = local(&block.code);
        let printed = if code.contains(START) {
            // The lines before the start command (the fakes), then the server itself.
            let before: String = code
                .lines()
                .take_while(|l| !l.starts_with("OTESSE_") && !l.contains(START))
                .collect::<Vec<_>>()
                .join("\n");
            let printed = shell.run(&before);
            // The fakes it started in the background take a moment to listen.
            for (_, port) in &ports[1..] {
                if before.contains(&format!("127.0.0.1:{port}")) || before.contains(&format!("\"127.0.0.1\", {port})"))
                {
                    wait_for_port(*port);
                }
            }
            drop(server.take());
            let (started, printed_token) = start_server(dir.path(), server_port, &start_env(&code));
            server = Some(started);
            token = token.or(printed_token);
            printed
        } else {
            let token = token.as_deref().expect("the server printed no setup token before the walkthrough");
            shell.run(&code.replace("paste-the-printed-token-here", token))
        };
        if print {
            eprintln!("----- block\n{}\n----- printed\n{printed}", block.code);
        }
        if let Some(expected) = &block.expected {
            let expected = local(expected);
            assert!(
                matches(&expected, &printed),
                "block:\n{}\n\nexpected:\n{expected}\n\nprinted:\n{printed}",
                block.code
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} answers checked");
}

#[test]
fn answers_match_with_wildcards_and_in_order() {
    assert!(line_matches("a [..] c", "a b c"));
    assert!(line_matches("[..]...", "abcd1234..."));
    assert!(!line_matches("a [..] c", "a b d"));
    assert!(matches("one\nthree", "one\ntwo\nthree\n"));
    assert!(!matches("three\none", "one\ntwo\nthree\n"));
}

/// The workspace folders a path in the docs may start from; `tests/...` is a crate's.
const ROOTS: [&str; 9] = ["crates/", "apps/", "docs/", "xtask/", "migrations/", "fuzz/", ".ci/", ".cargo/", "tests/"];

/// The file paths named in a Markdown text: code spans and link targets that start at a
/// workspace folder, without placeholders (`<target>`) or what builds and runs make.
fn named_paths(markdown: &str) -> Vec<String> {
    let mut candidates: Vec<&str> = markdown.split('`').skip(1).step_by(2).collect();
    candidates.extend(markdown.split("](").skip(1).filter_map(|rest| rest.split(')').next()));
    let mut paths: Vec<String> = candidates
        .into_iter()
        .map(|c| c.trim().trim_end_matches([',', '.', ':', ';']))
        .filter(|c| ROOTS.iter().any(|root| c.starts_with(root)))
        .filter(|c| !c.contains(char::is_whitespace) && !c.contains(['<', '*', '{', '$']))
        .filter(|c| !c.starts_with("fuzz/target/") && !c.starts_with("fuzz/artifacts/"))
        .map(str::to_owned)
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

#[test]
fn every_file_path_named_in_the_docs_exists() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut documents = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            documents.push(path);
        }
    }
    let crates: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .chain([root.join("apps/server"), root.join("migrations"), root.join("xtask")])
        .collect();
    let mut missing = Vec::new();
    let mut checked = 0;
    for document in &documents {
        let text = std::fs::read_to_string(document).unwrap();
        for path in named_paths(&text) {
            checked += 1;
            let exists = if path.starts_with("tests/") {
                crates.iter().any(|krate| krate.join(&path).exists())
            } else {
                root.join(&path).exists()
            };
            if !exists {
                missing.push(format!("{}: {path}", document.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    assert!(checked > 30, "only {checked} paths found: the extraction broke");
    assert!(missing.is_empty(), "paths named in the docs that do not exist:\n{}", missing.join("\n"));
}

#[test]
fn named_paths_are_found_in_code_spans_and_links() {
    let text = "See `crates/domain/src/lib.rs`, [shots](docs/screenshots/) and `tests/api/cli.rs`; not `fuzz/corpus/<target>` nor `config.rs`.";
    assert_eq!(named_paths(text), ["crates/domain/src/lib.rs", "docs/screenshots/", "tests/api/cli.rs"]);
}
