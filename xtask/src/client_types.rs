//! `cargo xtask client-types`: regenerates `crates/client/src/generated.rs`, the Rust client's
//! request and answer types, from the server's OpenAPI document.
//!
//! The generator needs the document in-process (`otesse_server::openapi::document()`) and
//! typify, neither of which xtask should build: it lives in the client's test binary
//! (`crates/client/tests/client/generated.rs`), whose test fails when the committed file
//! differs from what it generates. This runs that test with `OTESSE_CLIENT_TYPES=write`, which
//! makes it write the file instead.

use std::process::Command;

use crate::error::{Context, Error};
use crate::workspace::{step, workspace_root};

const TEST: &str = "generated::generated_types_match_the_servers_openapi_document";

pub fn run() -> Result<(), Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let args = ["test", "-p", "otesse-client", "--test", "client", "--", TEST, "--exact"];
    step(format!("OTESSE_CLIENT_TYPES=write cargo {}", args.join(" ")));
    let status = Command::new(cargo)
        .args(args)
        .env("OTESSE_CLIENT_TYPES", "write")
        .current_dir(workspace_root())
        .status()
        .context("running cargo test")?;
    if !status.success() {
        return Err(Error::new(format!("the generator failed ({status})")));
    }
    println!("crates/client/src/generated.rs: written from the server's OpenAPI document");
    Ok(())
}
