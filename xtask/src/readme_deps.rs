//! `cargo xtask readme-deps`: installs what the README's code snippets import, for the test
//! that runs them (`apps/server/tests/api/readme_snippets.rs`), which installs nothing itself.
//!
//! - `target/readme-python`: a virtual environment with `requests` and `python-dotenv`, pinned
//!   in `xtask/readme-deps/requirements.txt`.
//! - `target/readme-node`: `dotenv` and `tsx` (which runs the TypeScript snippet on a Node
//!   older than 22.18, one that cannot strip types itself), pinned by
//!   `xtask/readme-deps/package.json` and its lockfile, installed with `npm ci`.
//!
//! Each directory keeps a copy of the pins it was installed from (`installed-requirements.txt`,
//! `installed-package-lock.json`): the test compares them with the workspace's, and this task
//! installs again only when they differ.

use std::path::Path;
use std::process::Command;

use crate::error::{Context, Error};
use crate::python::Venv;
use crate::workspace::{run_tool, step, target_dir, workspace_root};

/// Where the pins live, relative to the workspace root.
const PINS: &str = "xtask/readme-deps";
/// The copy of the lockfile `target/readme-node` was installed from.
const NODE_STAMP: &str = "installed-package-lock.json";

pub fn run() -> Result<(), Error> {
    let pins = workspace_root().join(PINS);
    let target = target_dir()?;
    let venv = Venv::ensure_at(target.join("readme-python"), &pins.join("requirements.txt"))?;
    step(format!("Python snippet: {} (requests, python-dotenv)", venv.bin("python").display()));
    let node = target.join("readme-node");
    node_modules(&pins, &node)?;
    step(format!("TypeScript snippet: {} (dotenv, tsx)", node.join("node_modules").display()));
    Ok(())
}

/// `npm ci` in `dir` from the pinned package.json and lockfile, unless they are installed already.
fn node_modules(pins: &Path, dir: &Path) -> Result<(), Error> {
    let lock = pins.join("package-lock.json");
    let wanted = std::fs::read_to_string(&lock).context(lock.display())?;
    let stamp = dir.join(NODE_STAMP);
    if dir.join("node_modules").is_dir() && std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).context(dir.display())?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(pins.join(file), dir.join(file)).context(format!("copying {file}"))?;
    }
    step(format!("npm ci in {}", dir.display()));
    let npm = std::env::var_os("NPM").unwrap_or_else(|| "npm".into());
    run_tool(
        Command::new(npm).args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(dir),
        "npm ci (is npm installed? it comes with Node.js)",
    )?;
    std::fs::write(&stamp, wanted).context(stamp.display())?;
    Ok(())
}
