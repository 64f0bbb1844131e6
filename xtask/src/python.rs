//! A Python virtual environment under the target directory holding the tools the API checks
//! run (openapi-spec-validator, schemathesis), pinned in `xtask/python-requirements.txt`. It
//! is made, and the tools installed with pip, the first time and whenever the pins change.

use std::path::PathBuf;
use std::process::Command;

use crate::error::{Context, Error};
use crate::workspace::{step, target_dir, workspace_root};

pub struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// The environment, made or brought up to date first.
    pub fn ensure() -> Result<Self, Error> {
        let dir = target_dir()?.join("xtask-python");
        let requirements = workspace_root().join("xtask").join("python-requirements.txt");
        let wanted = std::fs::read_to_string(&requirements).context(requirements.display())?;
        let stamp = dir.join("installed-requirements.txt");
        let venv = Self { dir };
        if venv.bin("python").is_file() && std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
            return Ok(venv);
        }
        let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
        step(format!("making a Python virtual environment in {}", venv.dir.display()));
        run(Command::new(&python).args(["-m", "venv", "--clear"]).arg(&venv.dir), "python3 -m venv")?;
        step(format!("pip install -r {}", requirements.display()));
        run(
            Command::new(venv.bin("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "--no-input", "-r"])
                .arg(&requirements),
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

fn run(command: &mut Command, what: &str) -> Result<(), Error> {
    let status = command.stdin(std::process::Stdio::null()).status().context(what)?;
    if status.success() { Ok(()) } else { Err(Error::new(format!("{what} failed ({status})"))) }
}
