//! The README's Python and TypeScript snippets ("Use it from your code"), run as written: each
//! block is copied byte for byte into `otesse.py` / `otesse.mts` and run against a fresh server
//! (the real binary) with `OTESSE_API_BASE_URL` and `OTESSE_API_KEY`, as the README says; then
//! the README's claims about what they print and how they fail are checked.
//!
//! The packages the snippets import are installed beforehand by `cargo xtask readme-deps`
//! (pinned in `xtask/readme-deps/`): a virtual environment in `target/readme-python` and
//! `target/readme-node/node_modules`, which the snippets' directory links to. The TypeScript
//! snippet runs with `node` itself on Node 22.18 or later (which strips types, as the README
//! says), with `tsx` on an older one. Without the packages or Node the test says it is skipped
//! and passes, unless `CI` is set: then it fails, naming the install command.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{Value, json};

use crate::readme::{Server, free_port, line_matches, start_server};

const SECTION: &str = "## Use it from your code";
/// What a snippet may take, Node's first start included.
const RUN_DEADLINE: Duration = Duration::from_secs(60);
/// The first Node that runs a `.mts` file without a loader.
const NODE_STRIPS_TYPES: (u32, u32) = (22, 18);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The README's section `## Use it from your code`, up to the next `## ` heading.
fn section(readme: &str) -> &str {
    let start = readme.find(&format!("\n{SECTION}\n")).expect("the README has no section `Use it from your code`");
    let rest = &readme[start + 1..];
    let end = rest[SECTION.len()..].find("\n## ").map_or(rest.len(), |at| at + SECTION.len());
    &rest[..end]
}

/// The first ```` ```lang ```` block of `text`, byte for byte (up to and including the newline
/// before the closing fence), and the text after the block.
fn fenced<'a>(text: &'a str, lang: &str) -> (&'a str, &'a str) {
    let open = format!("\n```{lang}\n");
    let start = text.find(&open).unwrap_or_else(|| panic!("no ```{lang} block in the README's section")) + open.len();
    let end = text[start..].find("\n```").expect("the block is not closed") + start + 1;
    let after = text[end..].split_once('\n').map_or("", |(_, after)| after);
    (&text[start..end], after)
}

/// The first code span after `lead` in `text` (on one line).
fn span_after<'a>(text: &'a str, lead: &str) -> &'a str {
    let (_, rest) = text.split_once(lead).unwrap_or_else(|| panic!("the README no longer says `{lead}`"));
    rest.split_once('`').expect("the code span is not closed").0
}

/// How the TypeScript snippet is run here.
enum TypeScript {
    /// `node otesse.mts`, as the README says.
    Node,
    /// `tsx otesse.mts`, on a Node that cannot strip types.
    Tsx(PathBuf),
}

/// What the snippets need, as `cargo xtask readme-deps` installed it.
struct Tools {
    python: PathBuf,
    node_modules: PathBuf,
    typescript: TypeScript,
}

/// `v20.20.2` as (20, 20).
fn node_version() -> Option<(u32, u32)> {
    let output = Command::new("node").arg("--version").output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let mut parts = text.trim().trim_start_matches('v').split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Whether `dir` holds the copy of the pins at `pins` it was installed from.
fn installed_from(dir: &Path, stamp: &str, pins: &str) -> bool {
    let wanted = std::fs::read_to_string(workspace().join("xtask/readme-deps").join(pins)).unwrap();
    std::fs::read_to_string(dir.join(stamp)).is_ok_and(|installed| installed == wanted)
}

/// `Some` when the snippets can run; `None` (after saying why) when the test is skipped.
fn tools_or_skip() -> Option<Tools> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let (venv, node) = (target.join("readme-python"), target.join("readme-node"));
    let python = venv.join("bin/python");
    let node_modules = node.join("node_modules");
    let version = node_version();
    let mut missing = Vec::new();
    if !python.is_file() || !installed_from(&venv, "installed-requirements.txt", "requirements.txt") {
        missing.push(format!("{} is missing or not up to date", venv.display()));
    }
    if !node_modules.is_dir() || !installed_from(&node, "installed-package-lock.json", "package-lock.json") {
        missing.push(format!("{} is missing or not up to date", node_modules.display()));
    }
    if version.is_none() {
        missing.push("node is not on PATH (install Node.js)".to_owned());
    }
    if missing.is_empty() {
        let typescript = match version {
            Some(version) if version >= NODE_STRIPS_TYPES => TypeScript::Node,
            _ => TypeScript::Tsx(node_modules.join(".bin/tsx")),
        };
        return Some(Tools { python, node_modules, typescript });
    }
    let why = format!("{}; run `cargo xtask readme-deps`", missing.join("; "));
    if std::env::var_os("CI").is_some() {
        panic!("the README snippets cannot run, and CI is set: {why} (.ci/run does)");
    }
    eprintln!("README snippets test skipped: {why}");
    None
}

/// What a snippet did.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "success: {}\n--- stdout\n{}--- stderr\n{}", self.success, self.stdout, self.stderr)
    }
}

/// Runs `program file` in `dir` with only PATH and the README's two variables set.
fn run(dir: &Path, program: &Path, file: &str, base_url: &str, key: &str) -> Run {
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = Command::new(program)
        .arg(file)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("OTESSE_API_BASE_URL", base_url)
        .env("OTESSE_API_KEY", key)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    let deadline = Instant::now() + RUN_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} {file} did not finish within {RUN_DEADLINE:?}", program.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |path: &Path| std::fs::read_to_string(path).unwrap();
    let run = Run { success: status.success(), stdout: read(&out), stderr: read(&err) };
    if std::env::var_os("OTESSE_README_PRINT").is_some() {
        eprintln!("----- {} {file}\n{run}", program.display());
    }
    run
}

/// The snippets in their directory, and how to run each.
struct Snippets {
    dir: tempfile::TempDir,
    tools: Tools,
    base_url: String,
}

impl Snippets {
    fn python(&self, key: &str) -> Run {
        run(self.dir.path(), &self.tools.python, "otesse.py", &self.base_url, key)
    }

    fn typescript(&self, key: &str) -> Run {
        let program = match &self.tools.typescript {
            TypeScript::Node => Path::new("node"),
            TypeScript::Tsx(tsx) => tsx.as_path(),
        };
        run(self.dir.path(), program, "otesse.mts", &self.base_url, key)
    }
}

async fn call(client: &Client, method: reqwest::Method, url: String, token: &str, body: Option<Value>) -> Value {
    let mut request = client.request(method, &url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn the_readme_snippets_run_as_written() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let section = section(&readme);
    let (python, after_python) = fenced(section, "python");
    let (typescript, after_typescript) = fenced(section, "ts");
    let prints = span_after(after_python, "It prints `");
    let node_prints = span_after(after_typescript, "in Node's notation (`");
    let Some(tools) = tools_or_skip() else { return };

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("otesse.py"), python).unwrap();
    std::fs::write(dir.path().join("otesse.mts"), typescript).unwrap();
    // Where Node looks for `dotenv` from the snippet's directory.
    std::os::unix::fs::symlink(&tools.node_modules, dir.path().join("node_modules")).unwrap();

    let server_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_server, token): (Server, _) = start_server(server_dir.path(), port, &[]);
    let token = token.expect("the server printed no setup token");
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    let post = reqwest::Method::POST;

    // Steps 1 to 3 of the walkthrough, and a customer to list.
    let password = "correct horse battery staple";
    let setup = json!({"setup_token": token, "organization_name": "Acme Cleaning",
                       "email": "owner@acme.test", "password": password});
    let answer = client.post(format!("{base}/v1/setup")).json(&setup).send().await.unwrap();
    assert_eq!(answer.status(), 201);
    let signed_in =
        client.post(format!("{base}/v1/sessions")).json(&json!({"email": "owner@acme.test", "password": password}));
    let session: Value = signed_in.send().await.unwrap().json().await.unwrap();
    let session = session["token"].as_str().unwrap().to_owned();
    let body = json!({"name": "Zapier", "scope_level": "read_write", "scopes": ["customers.read", "customers.write"],
                      "expires_in": "90d", "environment": "live", "allowed_ips": []});
    let created = call(&client, post.clone(), format!("{base}/v1/api-keys"), &session, Some(body)).await;
    let (key, key_id) = (created["key"].as_str().unwrap(), created["id"].as_str().unwrap());
    let ada = json!({"name": "Ada Lovelace", "email": "ada@example.com"});
    let customer = call(&client, post.clone(), format!("{base}/v1/customers"), key, Some(ada)).await;
    let customer_id = customer["id"].as_str().expect("a customer was created").to_owned();

    let snippets = Snippets { dir, tools, base_url: format!("{base}/v1") };

    // Python prints the list as the README says, with the customer in it.
    let listed = snippets.python(key);
    assert!(listed.success, "{listed}");
    let printed = listed.stdout.trim_end();
    assert!(line_matches(&prints.replace("...", "[..]"), printed), "the README says it prints `{prints}`:\n{listed}");
    for field in [format!("'id': '{customer_id}'"), "'name': 'Ada Lovelace'".to_owned()] {
        assert!(printed.contains(&field), "{field} not printed:\n{listed}");
    }
    // TypeScript prints the same list in Node's notation, over several lines.
    let listed = snippets.typescript(key);
    assert!(listed.success, "{listed}");
    let printed = listed.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(line_matches(&node_prints.replace("...", "[..]"), &printed), "the README says `{node_prints}`:\n{listed}");
    for field in [format!("id: '{customer_id}'"), "name: 'Ada Lovelace'".to_owned()] {
        assert!(printed.contains(&field), "{field} not printed:\n{listed}");
    }

    // A revoked key: Node throws the server's message, Python's raise_for_status a 401 without it.
    let revoked = call(&client, post, format!("{base}/v1/api-keys/{key_id}/revoke"), &session, None).await;
    assert_eq!(revoked["status"], "revoked");
    let node_error = "Error: Otesse API error: This API key has been revoked.";
    let python_error = "requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: ";
    for claim in [node_error, python_error] {
        assert!(section.contains(&format!("`{claim}")), "the README no longer says `{claim}...`");
    }
    let python_error = format!("{python_error}{base}/v1/customers");
    let failed = snippets.typescript(key);
    assert!(!failed.success && failed.stderr.contains(node_error), "{failed}");
    let failed = snippets.python(key);
    assert!(!failed.success && failed.stderr.contains(&python_error), "{failed}");
    assert!(!failed.stderr.contains("revoked"), "Python's error holds the server's message after all:\n{failed}");

    // A wrong key: the same, with the server's message for it.
    let wrong = format!("erp_live_{}", "0".repeat(40));
    let wrong = wrong.as_str();
    let answer = client.get(format!("{base}/v1/customers")).bearer_auth(wrong).send().await.unwrap();
    assert_eq!(answer.status(), 401);
    let answer: Value = answer.json().await.unwrap();
    let message = answer["error"]["message"].as_str().unwrap();
    let failed = snippets.typescript(wrong);
    assert!(!failed.success && failed.stderr.contains(&format!("Error: Otesse API error: {message}")), "{failed}");
    let failed = snippets.python(wrong);
    assert!(!failed.success && failed.stderr.contains(&python_error), "{failed}");
}

#[test]
fn blocks_are_taken_byte_for_byte_from_the_section() {
    let readme = "# T\n\n## Use it from your code\n\nText.\n\n```python\nprint(1)\n\n  x = 2\n```\n\nIt prints `1`.\n\n```ts\nconsole.log(1);\n```\n\n## Next\n\n```python\nno\n```\n";
    let section = section(readme);
    assert!(section.starts_with("## Use it from your code\n") && section.ends_with("```\n"), "{section:?}");
    let (python, after) = fenced(section, "python");
    assert_eq!(python, "print(1)\n\n  x = 2\n");
    assert_eq!(span_after(after, "It prints `"), "1");
    assert_eq!(fenced(section, "ts").0, "console.log(1);\n");
}
