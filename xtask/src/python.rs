//! Python virtual environments under the target directory, each holding tools pinned in a
//! requirements file: the API checks' (openapi-spec-validator, schemathesis; pinned in
//! `xtask/python-requirements.txt`, in `target/xtask-python`) and the README snippets' (see
//! `readme_deps`). An environment is made, and its tools installed with pip, the first time
//! and whenever its pins change.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Error};
use crate::workspace::{run_tool, step, target_dir, workspace_root};

/// The copy of the requirements file the environment was made from: it is up to date while
/// the two are equal.
const STAMP: &str = "installed-requirements.txt";

pub struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// The API checks' environment, made or brought up to date first.
    pub fn ensure() -> Result<Self, Error> {
        let requirements = workspace_root().join("xtask").join("python-requirements.txt");
        Self::ensure_at(target_dir()?.join("xtask-python"), &requirements)
    }

    /// The environment in `dir` with the pins of `requirements`, made or brought up to date.
    pub fn ensure_at(dir: PathBuf, requirements: &Path) -> Result<Self, Error> {
        let wanted = std::fs::read_to_string(requirements).context(requirements.display())?;
        let stamp = dir.join(STAMP);
        let venv = Self { dir };
        if venv.bin("python").is_file() && std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
            return Ok(venv);
        }
        let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
        step(format!("making a Python virtual environment in {}", venv.dir.display()));
        run_tool(Command::new(&python).args(["-m", "venv", "--clear"]).arg(&venv.dir), "python3 -m venv")?;
        step(format!("pip install -r {}", requirements.display()));
        run_tool(
            Command::new(venv.bin("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "--no-input", "-r"])
                .arg(requirements),
            "pip install",
        )?;
        std::fs::write(&stamp, wanted).context(stamp.display())?;
        Ok(venv)
    }

    /// A program of the environment, e.g. `schemathesis`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }
}
