//! `otesse-server demo` (filled in by the next change).

use std::process::ExitCode;

use crate::config::Settings;

#[allow(clippy::print_stderr)]
pub async fn run(_settings: Settings, _dir_given: bool) -> ExitCode {
    eprintln!("otesse-server: the demo is not available in this build");
    ExitCode::FAILURE
}
