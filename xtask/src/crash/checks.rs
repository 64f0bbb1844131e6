//! What a crash round checks: the database with the server down ([`offline`]), then the
//! restarted server through its API ([`online`]). A violation is an error naming what broke.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Fakes;
use super::load::State;
use crate::error::Error;
use crate::http::Client;
use crate::sql::SqlTarget;

/// The restarted server's worker must deliver what the killed one left within this time
/// (a claimed job's 5 s lease, then one poll; generous for a loaded 2-core machine).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(90);

/// How many checks passed, over how many items (rows, keys, connections, events).
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    pub checks: u64,
    pub items: u64,
    /// Keys listed by the API, and how many of them are active.
    pub keys: u64,
    pub active: u64,
}

impl Report {
    fn pass(&mut self, items: u64) {
        self.checks += 1;
        self.items += items;
    }
}

fn violation(message: impl Into<String>) -> Error {
    Error::new(format!("VIOLATION: {}", message.into()))
}

/// The database right after the kill, before any server touched it again.
pub fn offline(sql: &SqlTarget) -> Result<Report, Error> {
    let mut report = Report::default();
    if sql.is_sqlite() {
        let rows = sql.query("PRAGMA integrity_check")?;
        if rows != vec![vec![Some("ok".to_owned())]] {
            return Err(violation(format!("SQLite PRAGMA integrity_check: {rows:?}")));
        }
        report.pass(1);
        let rows = sql.query("PRAGMA foreign_key_check")?;
        if !rows.is_empty() {
            return Err(violation(format!("SQLite PRAGMA foreign_key_check: {rows:?}")));
        }
        report.pass(1);
    } else {
        let invalid = sql.count(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relnamespace = current_schema()::regnamespace AND NOT (i.indisvalid AND i.indisready)",
        )?;
        if invalid > 0 {
            return Err(violation(format!("PostgreSQL: {invalid} invalid or unready indexes")));
        }
        report.pass(1);
    }
    let (delivery_id, job_delivery_id) = if sql.is_sqlite() {
        (
            "CASE typeof(d.id) WHEN 'blob' THEN lower(hex(d.id)) ELSE replace(lower(d.id), '-', '') END",
            "replace(lower(json_extract(j.payload, '$.delivery_id')), '-', '')",
        )
    } else {
        ("replace(d.id::text, '-', '')", "replace(lower(j.payload::json->>'delivery_id'), '-', '')")
    };
    // Finished jobs are pruned after 7 days, never within a run: every delivery has its job.
    // (This also proves the id matching below finds what it should.)
    let without_job = format!(
        "SELECT count(*) FROM webhook_deliveries d WHERE NOT EXISTS \
         (SELECT 1 FROM jobs j WHERE j.kind = 'webhook_delivery' AND {job_delivery_id} = {delivery_id})"
    );
    let pending_without_job = format!(
        "SELECT count(*) FROM webhook_deliveries d WHERE d.state = 'pending' AND NOT EXISTS \
         (SELECT 1 FROM jobs j WHERE j.kind = 'webhook_delivery' AND j.state IN ('queued', 'running') \
         AND {job_delivery_id} = {delivery_id})"
    );
    let zero: [(&str, &str); 10] = [
        (
            "keys without their hash, last four or name",
            "SELECT count(*) FROM api_keys WHERE key_hash IS NULL OR length(key_hash) <> 32 \
             OR last4 IS NULL OR length(last4) <> 4 OR length(name) = 0",
        ),
        (
            "credentials of no connection",
            "SELECT count(*) FROM integration_credentials c WHERE NOT EXISTS \
             (SELECT 1 FROM integration_connections n WHERE n.id = c.connection_id)",
        ),
        (
            "credentials left by a connection that is not connected (I8)",
            "SELECT count(*) FROM integration_credentials c JOIN integration_connections n \
             ON n.id = c.connection_id WHERE n.status <> 'connected'",
        ),
        (
            "connected API-key connections without a credential",
            "SELECT count(*) FROM integration_connections n WHERE n.status = 'connected' \
             AND n.auth_method = 'api_key' AND NOT EXISTS \
             (SELECT 1 FROM integration_credentials c WHERE c.connection_id = n.id)",
        ),
        (
            "connections of no instance",
            "SELECT count(*) FROM integration_connections n WHERE NOT EXISTS \
             (SELECT 1 FROM integration_instances i WHERE i.id = n.instance_id)",
        ),
        (
            "health checks of no connection",
            "SELECT count(*) FROM integration_health_checks h WHERE NOT EXISTS \
             (SELECT 1 FROM integration_connections n WHERE n.id = h.connection_id)",
        ),
        (
            "deliveries of no event",
            "SELECT count(*) FROM webhook_deliveries d WHERE NOT EXISTS \
             (SELECT 1 FROM webhook_events e WHERE e.id = d.event_id)",
        ),
        (
            "deliveries to no endpoint",
            "SELECT count(*) FROM webhook_deliveries d WHERE NOT EXISTS \
             (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id)",
        ),
        ("deliveries without their job", &without_job),
        ("pending deliveries without a queued job", &pending_without_job),
    ];
    for (what, query) in zero {
        let found = sql.count(query)?;
        if found > 0 {
            return Err(violation(format!("{found} {what}")));
        }
        report.pass(0);
    }
    report.items += sql.count("SELECT count(*) FROM api_keys")?
        + sql.count("SELECT count(*) FROM integration_credentials")?
        + sql.count("SELECT count(*) FROM webhook_deliveries")?;
    Ok(report)
}

/// The restarted server, through its API: keys, connections, and the deliveries it owes.
pub fn online(client: &Client, session: &str, state: &State, fakes: &Fakes, sql: &SqlTarget) -> Result<Report, Error> {
    let mut report = Report::default();
    let keys: Vec<Value> = list(client, session, "/v1/api-keys")?;
    let by_id: HashMap<&str, &Value> = keys.iter().filter_map(|key| Some((key["id"].as_str()?, key))).collect();
    report.keys = keys.len() as u64;

    // K7: never more than 25 active keys.
    let active: Vec<&Value> = keys.iter().filter(|key| key["status"] == "active").collect();
    report.active = active.len() as u64;
    if active.len() > 25 {
        return Err(violation(format!("{} active keys (at most 25)", active.len())));
    }
    report.pass(keys.len() as u64);

    // K12: a key has at most one active successor.
    let mut successors: HashMap<&str, u32> = HashMap::new();
    for key in &active {
        if let Some(from) = key["rotated_from"].as_str() {
            *successors.entry(from).or_default() += 1;
        }
    }
    if let Some((from, n)) = successors.iter().find(|(_, n)| **n > 1) {
        return Err(violation(format!("key {from} has {n} active successors")));
    }
    report.pass(active.len() as u64);

    // Every key the load was shown is stored, and works or is refused as its status says.
    let known = state.known_keys();
    for (id, plaintext) in &known {
        let Some(listed) = by_id.get(id.as_str()) else {
            return Err(violation(format!("key {id} was answered 201 but is not stored")));
        };
        let (status, answer) = client.call("GET /v1/whoami", Some(plaintext), None)?;
        let code = answer["error"]["code"].as_str().unwrap_or_default();
        let fine = match listed["status"].as_str() {
            Some("active") => status == 200 && answer["id"] == id.as_str(),
            Some("revoked") => status == 401 && code == "api_key_revoked",
            Some("expired") => status == 401 && code == "api_key_expired",
            _ => false,
        };
        if !fine {
            return Err(violation(format!(
                "key {id} is listed {} but GET /v1/whoami answered HTTP {status}: {answer}",
                listed["status"]
            )));
        }
    }
    report.pass(known.len() as u64);

    // Every stored key was recorded with its event (the audit row written in its transaction).
    let mut audited = HashSet::new();
    for action in ["api_key.created", "api_key.rotated"] {
        for entry in pages(client, session, &format!("/v1/integrations/audit-log?action={action}&limit=100"))? {
            if let Some(target) = entry["target_id"].as_str() {
                audited.insert(target.to_owned());
            }
        }
    }
    if let Some(id) = by_id.keys().find(|id| !audited.contains(**id)) {
        return Err(violation(format!("key {id} is stored without its audit entry")));
    }
    report.pass(by_id.len() as u64);

    // Every connection listed as connected opens its credential and passes a health check
    // against the fake provider (a credential that does not decrypt cannot).
    let connections = list(client, session, "/v1/integrations/connections")?;
    let connected: Vec<&Value> = connections.iter().filter(|c| c["status"] == "connected").collect();
    if connected.len() > 1 {
        return Err(violation(format!("{} connections of one user to {}", connected.len(), super::PROVIDER)));
    }
    for connection in &connected {
        let id = connection["id"].as_str().unwrap_or_default();
        let call = format!("POST /v1/integrations/connections/{id}/health-checks");
        let (status, answer) = client.call(&call, Some(session), Some(json!({})))?;
        if status != 201 || answer["status"] != "healthy" {
            return Err(violation(format!("{call}: HTTP {status}: {answer}")));
        }
    }
    report.pass(connections.len() as u64);

    // What was committed is delivered: no delivery stays pending, and the receiver got the
    // created (or rotated) event of every stored key.
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let undelivered = sql.count("SELECT count(*) FROM webhook_deliveries WHERE state <> 'succeeded'")?;
        let missing: Vec<&str> = {
            let received = fakes.received.lock().unwrap();
            by_id
                .keys()
                .copied()
                .filter(|id| {
                    !received.contains(&("api_key.created".to_owned(), (*id).to_owned()))
                        && !received.contains(&("api_key.rotated".to_owned(), (*id).to_owned()))
                })
                .collect()
        };
        if undelivered == 0 && missing.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(violation(format!(
                "{}s after the restart, {undelivered} deliveries are not made and {} keys' events were not \
                 received (e.g. {:?})",
                DELIVERY_TIMEOUT.as_secs(),
                missing.len(),
                missing.first()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    report.pass(by_id.len() as u64 + sql.count("SELECT count(*) FROM webhook_deliveries")?);
    Ok(report)
}

fn list(client: &Client, session: &str, path: &str) -> Result<Vec<Value>, Error> {
    let answer = client.get_json(path, session)?;
    answer["data"].as_array().cloned().ok_or_else(|| Error::new(format!("GET {path}: no data in {answer}")))
}

/// Every entry of a cursor-paginated list.
fn pages(client: &Client, session: &str, path: &str) -> Result<Vec<Value>, Error> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(cursor) => format!("{path}&cursor={cursor}"),
            None => path.to_owned(),
        };
        let answer = client.get_json(&page_path, session)?;
        entries.extend(answer["data"].as_array().cloned().unwrap_or_default());
        match answer["next_cursor"].as_str() {
            Some(next) if answer["has_more"] == true => cursor = Some(next.to_owned()),
            _ => return Ok(entries),
        }
    }
}
