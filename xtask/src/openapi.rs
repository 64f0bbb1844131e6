//! `cargo xtask openapi [--out FILE] [--release]`: starts the server, saves the OpenAPI
//! document it serves at `/v1/openapi.json`, and validates it with openapi-spec-validator.

use std::path::PathBuf;

use crate::api_server::ApiServer;
use crate::error::{Context, Error};
use crate::python::Venv;
use crate::workspace::{Backend, Profile, build_server, step, target_dir};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub out: Option<PathBuf>,
    pub profile: Profile,
}

impl Options {
    pub fn parse(args: &[&str]) -> Result<Self, Error> {
        let mut options = Options { out: None, profile: Profile::Debug };
        let mut args = args.iter().copied();
        while let Some(arg) = args.next() {
            match arg {
                "--release" => options.profile = Profile::Release,
                "--out" => {
                    options.out = Some(args.next().ok_or_else(|| Error::new("--out needs a file name"))?.into());
                }
                _ => return Err(Error::new(format!("unknown option `{arg}`; see `cargo xtask help`"))),
            }
        }
        Ok(options)
    }
}

pub fn run(options: &Options) -> Result<(), Error> {
    let venv = Venv::ensure()?;
    let server = ApiServer::start(build_server(options.profile)?, Backend::Sqlite, "otesse-openapi")?;
    let document = server.client.get_text("/v1/openapi.json")?;
    server.stop()?;
    let out = match &options.out {
        Some(out) => out.clone(),
        None => target_dir()?.join("openapi.json"),
    };
    std::fs::write(&out, &document).context(out.display())?;
    validate(&venv, &out)?;
    println!("{}: valid", out.display());
    Ok(())
}

/// openapi-spec-validator on a saved document.
pub fn validate(venv: &Venv, document: &std::path::Path) -> Result<(), Error> {
    step(format!("openapi-spec-validator {}", document.display()));
    let output = std::process::Command::new(venv.bin("openapi-spec-validator"))
        .arg(document)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running openapi-spec-validator")?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::new(format!(
        "openapi-spec-validator refused {}:\n{}{}",
        document.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}
