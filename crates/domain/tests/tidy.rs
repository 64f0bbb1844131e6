//! Tidy: the domain stays pure. Its normal (non-dev) dependency graph, transitively, holds no
//! adapter: no sea-orm, sqlx, actix, reqwest, hyper, and no tokio (runtime) at all.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "sea-orm",
    "sea-query",
    "sqlx",
    "actix-web",
    "actix-rt",
    "reqwest",
    "hyper",
    "tokio",
    "ring",
    "aes-gcm",
    "argon2",
];

#[test]
fn domain_depends_on_no_adapter_or_runtime() {
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())).arg("-vV").output().unwrap();
    let rustc = String::from_utf8(rustc.stdout).unwrap();
    let host = rustc.lines().find_map(|l| l.strip_prefix("host: ")).expect("rustc -vV names the host").to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--filter-platform", &host, "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");

    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &serde_json::Value> =
        metadata["resolve"]["nodes"].as_array().unwrap().iter().map(|n| (n["id"].as_str().unwrap(), n)).collect();
    let root = names.iter().find(|(_, name)| **name == "otesse-domain").map(|(id, _)| *id).unwrap();

    // Walk normal dependencies only (dev and build dependencies do not ship).
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap();
            if normal && seen.insert(names[dep_id]) {
                stack.push(dep_id);
            }
        }
    }
    let found: Vec<_> = seen.iter().filter(|name| FORBIDDEN.contains(name)).collect();
    assert!(found.is_empty(), "crates/domain depends (transitively) on {found:?}");
    assert!(seen.contains("uuid"), "the walk found the domain's real dependencies: {seen:?}");
}
