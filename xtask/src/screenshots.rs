//! `cargo xtask screenshots`: pictures of every dashboard page at 1280 and 375 px.
//!
//! The pictures are taken by the server's own browser-test harness (an ignored test in
//! `apps/server/tests/api/browser/screenshots.rs`): it spawns the server with fake providers,
//! fills an organization with sample data through the API, and drives headless Chromium through
//! chromedriver. Reusing it keeps xtask free of the server's and the WebDriver client's
//! dependencies.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Error;

const TEST: &str = "browser::screenshots::screenshots";

fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_owned()
}

/// Writes `docs/screenshots/<page>-desktop.png` and `<page>-phone.png`.
pub fn run() -> Result<(), Error> {
    let root = workspace_root();
    let out = root.join("docs").join("screenshots");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("==> screenshots into {}", out.display());
    let status = Command::new(&cargo)
        .args(["test", "-p", "otesse-server", "--test", "api", "--", "--ignored", "--exact", TEST, "--nocapture"])
        .env("OTESSE_SCREENSHOTS_DIR", &out)
        // Without a browser the harness would skip and take no picture: make it fail instead.
        .env("CI", "true")
        .current_dir(&root)
        .status()
        .map_err(|e| Error::new(format!("running cargo test: {e}")))?;
    if !status.success() {
        return Err(Error::new(format!(
            "taking the screenshots failed ({status}); chromium and chromedriver must be installed"
        )));
    }
    Ok(())
}
