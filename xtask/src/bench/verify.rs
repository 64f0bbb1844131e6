//! The verification API under the bench's load: a platform service token made as an operator
//! makes it (`otesse-server service-token create`, against the running server's database), a
//! check that it and the bench key are accepted, and the wrk script that posts that check.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};

use crate::error::{Context, Error};
use crate::http::Client;
use crate::server::Launch;
use crate::workspace::step;

pub const PATH: &str = "/v1/keys/verify";
const SERVICE: &str = "bench";

/// What a platform service sends: the bench key, a scope it holds, and the service's own
/// request, for the key's usage log.
fn body(key: &str) -> Value {
    json!({"key": key, "scopes": ["customers.read"], "method": "GET", "path": "/v1/bookings"})
}

/// `otesse-server service-token create bench` with the server's environment; the token it printed.
pub fn service_token(launch: &Launch) -> Result<String, Error> {
    step(format!("otesse-server service-token create {SERVICE}"));
    let output = launch
        .command()
        .args(["service-token", "create", SERVICE])
        .stdin(Stdio::null())
        .output()
        .context("running otesse-server service-token create")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Error::new(format!("otesse-server service-token create failed ({}): {stderr}", output.status)));
    }
    token_in(&stdout).ok_or_else(|| Error::new("otesse-server service-token create printed no ots_svc_ token"))
}

fn token_in(printed: &str) -> Option<String> {
    printed.lines().map(str::trim).find(|line| line.starts_with("ots_svc_")).map(str::to_owned)
}

/// One check before the load: the answer must say the key is valid, since a refused check is
/// a 200 too, which wrk would count as a success.
pub fn probe(client: &Client, token: &str, key: &str) -> Result<(), Error> {
    let call = format!("POST {PATH}");
    let (status, answer) = client.call(&call, Some(token), Some(body(key)))?;
    if status != 200 || answer["valid"] != true || answer["code"] != "ok" {
        return Err(Error::new(format!("{call}: expected a valid key, got HTTP {status}: {answer}")));
    }
    Ok(())
}

/// Writes the wrk script into `dir` (the bench's throwaway data dir): every request is the
/// probe's. It defines no `response` function (see [`crate::wrk::run_script`]).
pub fn script(dir: &Path, token: &str, key: &str) -> Result<PathBuf, Error> {
    let path = dir.join("verify.lua");
    std::fs::write(&path, lua(token, &body(key).to_string())).context(path.display())?;
    Ok(path)
}

fn lua(token: &str, body: &str) -> String {
    // Lua's long brackets take the JSON as it is.
    format!(
        "-- POST {PATH} as a platform service (cargo xtask bench auth)\n\
         wrk.method = \"POST\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n\
         wrk.body = [[{body}]]\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_printed_token() {
        let printed = "created service token 0190 for bench\nots_svc_abc123\nIt is shown this once: ...\n";
        assert_eq!(token_in(printed).as_deref(), Some("ots_svc_abc123"));
        assert_eq!(token_in("created service token\n"), None);
    }

    #[test]
    fn the_script_posts_the_check_with_the_token() {
        let script = lua("ots_svc_t0k3n", &body("erp_live_k3y").to_string());
        assert!(script.contains("wrk.method = \"POST\"\n"), "{script}");
        assert!(script.contains("wrk.headers[\"Authorization\"] = \"Bearer ots_svc_t0k3n\"\n"), "{script}");
        let sent = script.split_once("wrk.body = [[").and_then(|(_, rest)| rest.split_once("]]")).unwrap().0;
        let sent: Value = serde_json::from_str(sent).unwrap();
        let expected =
            json!({"key": "erp_live_k3y", "scopes": ["customers.read"], "method": "GET", "path": "/v1/bookings"});
        assert_eq!(sent, expected);
        assert!(!script.contains("function response"), "a response function would slow wrk down");
    }
}
