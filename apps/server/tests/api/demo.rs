//! `otesse-server demo`: the real binary on a fresh directory fills an organization and says
//! where to sign in; it serves the same data again, and refuses what is not its own.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::server_command;

const PASSWORD: &str = "demo password 1234";

/// A demo process, stopped (SIGTERM, by its id) when dropped.
struct Demo {
    child: Child,
    printout: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// Starts the demo in `dir` and waits (at most two minutes) for its printout to end.
fn start_demo(dir: &std::path::Path) -> Demo {
    let mut child = server_command(dir)
        .args(["demo", "--data-dir", "demo", "--listen", "127.0.0.1:0"])
        .env("OTESSE_LOG_FILTER", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("demo-stderr.log")).map(Stdio::from).unwrap_or_else(|_| Stdio::null()))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut demo = Demo { child, printout: String::new() };
    loop {
        let line = received.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| {
            let stderr = std::fs::read_to_string(dir.join("demo-stderr.log")).unwrap_or_default();
            let tail: String = stderr.chars().rev().take(4000).collect::<Vec<_>>().into_iter().rev().collect();
            panic!("the demo stopped or hung; printed so far:\n{}\nits log ends:\n{tail}", demo.printout)
        });
        demo.printout.push_str(&line);
        demo.printout.push('\n');
        if line.contains("to start over") {
            return demo;
        }
    }
}

fn base_of(printout: &str) -> String {
    let start = printout.find("http://127.0.0.1:").expect("no address printed");
    printout[start..].split('/').take(3).collect::<Vec<_>>().join("/")
}

async fn sign_in(http: &reqwest::Client, base: &str, email: &str) -> String {
    let answer: Value = http
        .post(format!("{base}/v1/sessions"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["token"].as_str().unwrap_or_else(|| panic!("{email} cannot sign in: {answer}")).to_owned()
}

async fn get(http: &reqwest::Client, base: &str, session: &str, path: &str) -> Value {
    let response = http.get(format!("{base}{path}")).bearer_auth(session).send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_demo_fills_an_organization_and_prints_where_to_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let demo = start_demo(dir.path());
    let printout = demo.printout.clone();
    for expected in ["owner@acme.test", "manager@acme.test", "viewer@acme.test", PASSWORD, "Mapbox failing"] {
        assert!(printout.contains(expected), "{expected} missing from\n{printout}");
    }
    let base = base_of(&printout);
    let http = reqwest::Client::new();
    for email in ["manager@acme.test", "viewer@acme.test"] {
        sign_in(&http, &base, email).await;
    }
    let session = sign_in(&http, &base, "owner@acme.test").await;

    // Every level in both environments, one about to expire, one revoked, all used.
    let keys = get(&http, &base, &session, "/v1/api-keys").await["data"].as_array().unwrap().clone();
    for level in ["read_only", "read_write", "admin"] {
        for environment in ["live", "test"] {
            assert!(
                keys.iter()
                    .any(|k| k["scope_level"] == level && k["environment"] == environment && k["status"] == "active"),
                "no active {level} {environment} key"
            );
        }
    }
    assert!(keys.iter().any(|k| k["status"] == "revoked"));
    let expiring = keys.iter().find(|k| k["expires_soon"] == true).expect("a key expiring soon");
    let detail = get(&http, &base, &session, &format!("/v1/api-keys/{}", expiring["id"].as_str().unwrap())).await;
    assert!(detail["usage"]["total_requests"].as_u64().unwrap() > 20, "{}", detail["usage"]);
    let oldest = keys.iter().filter_map(|k| k["created_at"].as_str()).min().unwrap();
    let newest_use = keys.iter().filter_map(|k| k["last_used_at"].as_str()).max().unwrap();
    let span = chrono::DateTime::parse_from_rfc3339(newest_use).unwrap()
        - chrono::DateTime::parse_from_rfc3339(oldest).unwrap();
    assert!(span > chrono::Duration::days(4), "usage spread over days: {oldest} .. {newest_use}");

    // The 14-, 7- and 1-day warnings, each when it was due.
    let notifications = get(&http, &base, &session, "/v1/notifications").await;
    let titles: Vec<&str> =
        notifications["data"].as_array().unwrap().iter().filter_map(|n| n["title"].as_str()).collect();
    for days in ["14 days", "7 days", "1 day"] {
        assert!(titles.iter().any(|t| t.ends_with(&format!("expires in {days}"))), "{days}: {titles:?}");
    }

    // Connected providers: healthy ones and Mapbox failing, with a history.
    let connections = get(&http, &base, &session, "/v1/integrations/connections").await;
    let connections = connections["data"].as_array().unwrap();
    assert!(connections.len() >= 3);
    let mapbox = connections.iter().find(|c| c["provider"] == "mapbox").expect("mapbox connected");
    assert_eq!(mapbox["health"]["status"], "unreachable", "{mapbox}");
    let postmark = connections.iter().find(|c| c["provider"] == "postmark").expect("postmark connected");
    assert_eq!(postmark["health"]["status"], "healthy");
    let history =
        get(&http, &base, &session, &format!("/v1/integrations/connections/{}", postmark["id"].as_str().unwrap()))
            .await;
    assert!(history["health_history"].as_array().unwrap().len() >= 3);

    // A webhook endpoint with deliveries, the expiry events among them.
    let endpoints = get(&http, &base, &session, "/v1/webhook-endpoints").await;
    let endpoint = endpoints["data"][0]["id"].as_str().expect("an endpoint").to_owned();
    let deliveries = get(&http, &base, &session, &format!("/v1/webhook-endpoints/{endpoint}/deliveries")).await;
    let events: Vec<&str> =
        deliveries["data"].as_array().unwrap().iter().filter_map(|d| d["event_type"].as_str()).collect();
    for event in ["api_key.expiring", "api_key.revoked", "integration.connected", "webhook.test"] {
        assert!(events.contains(&event), "{event}: {events:?}");
    }

    // The printed key works, once the printout says so.
    let key = printout.split("Bearer ").nth(1).unwrap().split('"').next().unwrap();
    let customers = http.get(format!("{base}/v1/customers")).bearer_auth(key).send().await.unwrap();
    assert_eq!(customers.status(), 200);
    drop(demo);

    // Again: the same data, served as it was left, no key printed.
    let again = start_demo(dir.path());
    assert!(again.printout.contains("as it was left"), "{}", again.printout);
    assert!(!again.printout.contains("erp_live_"));
    let base = base_of(&again.printout);
    let session = sign_in(&http, &base, "owner@acme.test").await;
    let keys_again = get(&http, &base, &session, "/v1/api-keys").await;
    assert_eq!(keys_again["data"].as_array().unwrap().len(), keys.len());
}

#[test]
fn the_demo_refuses_a_real_installation_and_production_mode() {
    let dir = tempfile::tempdir().unwrap();
    let migrated = server_command(dir.path()).args(["migrate", "up", "--data-dir", "real"]).output().unwrap();
    assert!(migrated.status.success());
    let before = std::fs::read(dir.path().join("real/otesse.db")).unwrap();
    let refused = server_command(dir.path()).args(["demo", "--data-dir", "real"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("holds an installation that is not a demo"), "{stderr}");
    assert_eq!(std::fs::read(dir.path().join("real/otesse.db")).unwrap(), before, "the database was touched");
    assert!(!dir.path().join("real/master.key").exists());

    let production = server_command(dir.path()).args(["demo"]).env("OTESSE_MODE", "production").output().unwrap();
    assert_eq!(production.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&production.stderr).contains("development mode only"));
    assert!(!dir.path().join("demo-data").exists(), "nothing was created");
}
