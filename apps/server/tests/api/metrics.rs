//! `/metrics` end to end (O4): each metric an operator watches appears and moves when the thing
//! it measures happens, labels hold route patterns and closed sets (never a path or an id), and
//! the example Grafana dashboard and Prometheus alert rules in docs/ name only metrics the
//! server exposes, all of them listed in docs/operations.md.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, Utc};
use otesse_domain::jobs::{JobKind, JobQueue, NewJob};
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_with};
use crate::integrations::{CANARY, app_with_postmark, connect_body, fake_postmark};
use crate::webhooks::{create_endpoint, receiver, webhook_settings};

/// One scrape of `/metrics`: its text and every sample, by name and label set.
struct Scraped {
    text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scraped {
    fn parse(text: String) -> Self {
        let samples = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(parse_sample).collect();
        Self { text, samples }
    }

    /// The value of the sample named `name` with exactly `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples.iter().find(|(n, l, _)| n == name && *l == wanted).map(|(_, _, v)| *v)
    }

    /// The metric families (`# TYPE` lines).
    fn families(&self) -> BTreeSet<String> {
        self.text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).map(str::to_owned).collect()
    }

    /// Like [`Scraped::get`], and there must be one.
    #[track_caller]
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{}", self.text))
    }
}

/// `name{a="x",b="y"} 1.5` (label values may hold escaped quotes and backslashes).
fn parse_sample(line: &str) -> (String, BTreeMap<String, String>, f64) {
    let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
    let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
    let Some((name, rest)) = series.split_once('{') else { return (series.to_owned(), BTreeMap::new(), value) };
    let mut labels = BTreeMap::new();
    let mut chars = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}")).chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "{line}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.push(chars.next().unwrap()),
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    (name.to_owned(), labels, value)
}

async fn scrape(app: &TestApp) -> Scraped {
    let answer = app.send(app.request(Method::GET, "/metrics")).await;
    assert_eq!(answer.status, 200);
    Scraped::parse(answer.text)
}

const REQUESTS: &str = "otesse_http_requests_total";
const DURATION_COUNT: &str = "otesse_http_request_duration_seconds_count";

#[tokio::test]
async fn requests_are_counted_and_timed_by_route_pattern_never_by_path() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let before = scrape(&app).await;
    let id = uuid::Uuid::new_v4().to_string();
    for _ in 0..2 {
        app.get(&format!("/v1/api-keys/{id}"), &admin).await.expect_error(404, "resource_missing");
    }
    app.get("/v1/api-keys", &admin).await.expect(200);
    app.send(app.request(Method::GET, "/v1/no-such-route-7f3a")).await.expect_error(404, "resource_missing");
    app.send(app.request(Method::PUT, "/healthz")).await.expect_error(405, "method_not_allowed");
    let after = scrape(&app).await;

    let moved =
        |name: &str, labels: &[(&str, &str)]| after.value(name, labels) - before.get(name, labels).unwrap_or(0.0);
    let detail = [("route", "/v1/api-keys/{id}"), ("method", "GET")];
    assert_eq!(moved(REQUESTS, &[detail[0], detail[1], ("status_class", "4xx")]), 2.0);
    assert_eq!(moved(DURATION_COUNT, &detail), 2.0);
    assert_eq!(moved(REQUESTS, &[("route", "/v1/api-keys"), ("method", "GET"), ("status_class", "2xx")]), 1.0);
    assert_eq!(moved(REQUESTS, &[("route", "unmatched"), ("method", "GET"), ("status_class", "4xx")]), 1.0);
    assert_eq!(moved(REQUESTS, &[("route", "/healthz"), ("method", "PUT"), ("status_class", "4xx")]), 1.0);
    // The first scrape is counted by the time of the second.
    assert!(after.value(REQUESTS, &[("route", "/metrics"), ("method", "GET"), ("status_class", "2xx")]) >= 1.0);
    let latency = after.value("otesse_http_request_duration_seconds_sum", &detail);
    assert!(latency > 0.0 && latency < 30.0, "{latency}");
    assert!(!after.text.contains(&id) && !after.text.contains("no-such-route"), "a path reached a label");
}

#[tokio::test]
async fn key_cache_lookups_are_counted_as_hits_and_misses() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let key = app.customers_key(&admin, "live").await;
    let cache =
        |scraped: &Scraped, result: &str| scraped.value("otesse_key_cache_requests_total", &[("result", result)]);

    let lookups = |scraped: &Scraped| scraped.value("otesse_key_lookup_seconds_count", &[]);

    let before = scrape(&app).await;
    app.get("/v1/whoami", &key).await.expect(200);
    let first = scrape(&app).await;
    assert_eq!(cache(&first, "miss") - cache(&before, "miss"), 1.0, "a new key is looked up in the database");
    assert_eq!(cache(&first, "hit"), cache(&before, "hit"));
    assert_eq!(lookups(&first) - lookups(&before), 1.0, "the database lookup is timed");
    let took = first.value("otesse_key_lookup_seconds_sum", &[]) - before.value("otesse_key_lookup_seconds_sum", &[]);
    assert!(took > 0.0 && took < 30.0, "{took}");
    app.get("/v1/whoami", &key).await.expect(200);
    let second = scrape(&app).await;
    assert_eq!(cache(&second, "hit") - cache(&first, "hit"), 1.0, "then answered from memory");
    assert_eq!(cache(&second, "miss"), cache(&first, "miss"));
    assert_eq!(lookups(&second), lookups(&first), "a cached key is not looked up");
    assert!(!second.text.contains(&key[key.len() - 8..]), "no part of a key reaches the metrics");
}

#[tokio::test]
async fn the_usage_queue_depth_and_its_batch_writes_are_reported() {
    // The writer takes the queue once at start, then only when flushed.
    let app = spawn_app_with(|s| s.usage.flush_interval_ms = 3_600_000).await;
    let admin = app.admin().await;
    let key = app.customers_key(&admin, "live").await;
    let before = scrape(&app).await;
    assert_eq!(before.value("otesse_usage_queue_depth", &[]), 0.0);
    assert_eq!(before.value("otesse_usage_queue_capacity", &[]), 100_000.0);
    for _ in 0..3 {
        app.get("/v1/whoami", &key).await.expect(200);
    }
    let queued = scrape(&app).await;
    assert_eq!(queued.value("otesse_usage_queue_depth", &[]), 3.0, "each keyed request queued its row");

    app.flush_usage().await;
    let written = scrape(&app).await;
    assert_eq!(written.value("otesse_usage_queue_depth", &[]), 0.0);
    let batches = "otesse_usage_batch_write_seconds_count";
    assert!(written.value(batches, &[]) > queued.value(batches, &[]), "the flush wrote a batch and timed it");
    let rows = "otesse_usage_rows_written_total";
    assert_eq!(written.value(rows, &[]) - queued.value(rows, &[]), 3.0);
}

#[tokio::test]
async fn the_job_backlog_is_read_from_the_jobs_table_by_kind() {
    // No worker here: what is queued stays queued.
    let app = spawn_app().await;
    let before = scrape(&app).await;
    for kind in JobKind::ALL {
        assert_eq!(before.value("otesse_jobs_queued", &[("kind", kind.as_str())]), 0.0);
        assert_eq!(before.value("otesse_job_oldest_age_seconds", &[("kind", kind.as_str())]), 0.0);
    }
    let now = Utc::now();
    let jobs = app.db.jobs();
    jobs.enqueue(&NewJob::new(JobKind::Pruning, now - Duration::seconds(90)), now).await.unwrap();
    jobs.enqueue(&NewJob::new(JobKind::Pruning, now - Duration::seconds(5)), now).await.unwrap();
    jobs.enqueue(&NewJob::new(JobKind::Pruning, now + Duration::hours(1)), now).await.unwrap();
    jobs.enqueue(&NewJob::new(JobKind::HealthChecks, now + Duration::hours(1)), now).await.unwrap();

    // A scrape reuses a backlog read less than a second old.
    let after = eventually("the backlog read again", || async {
        let scraped = scrape(&app).await;
        (scraped.value("otesse_jobs_queued", &[("kind", "pruning")]) == 3.0).then_some(scraped)
    })
    .await;
    assert_eq!(after.value("otesse_jobs_queued", &[("kind", "health_checks")]), 1.0);
    assert_eq!(after.value("otesse_jobs_queued", &[("kind", "expiry_warnings")]), 0.0);
    let age = after.value("otesse_job_oldest_age_seconds", &[("kind", "pruning")]);
    assert!((90.0..120.0).contains(&age), "the oldest due job waited 90 s and more: {age}");
    assert_eq!(after.value("otesse_job_oldest_age_seconds", &[("kind", "health_checks")]), 0.0, "none due yet");
}

#[tokio::test]
async fn webhook_deliveries_are_counted_by_outcome_and_timed() {
    let app = spawn_app_with(webhook_settings).await;
    let admin = app.admin().await;
    let deliveries = |s: &Scraped, outcome: &str| s.value("otesse_webhook_deliveries_total", &[("outcome", outcome)]);
    let timed = |s: &Scraped| s.value("otesse_webhook_delivery_duration_seconds_count", &[]);
    let before = scrape(&app).await;
    for outcome in ["success", "http_error", "network_error", "refused"] {
        assert_eq!(deliveries(&before, outcome), 0.0, "{outcome} is there from the start");
    }

    let (ok, failing) = (receiver(204).await, receiver(500).await);
    for (receiver, outcome) in [(&ok, "success"), (&failing, "http_error")] {
        let url = format!("{}/hook", receiver.uri());
        let (endpoint, _) = create_endpoint(&app, &admin, &url, &["api_key.created"]).await;
        let path = format!("/v1/webhook-endpoints/{endpoint}/test");
        app.send(app.request(Method::POST, &path).bearer_auth(&admin)).await.expect(202);
        eventually(outcome, || async { (deliveries(&scrape(&app).await, outcome) == 1.0).then_some(()) }).await;
    }
    let after = scrape(&app).await;
    assert_eq!(timed(&after) - timed(&before), 2.0, "both attempts timed");
    assert_eq!(deliveries(&after, "network_error") + deliveries(&after, "refused"), 0.0);
    assert!(!after.text.contains(&ok.uri()), "no receiver URL reaches the metrics");
}

#[tokio::test]
async fn provider_health_checks_are_timed_by_provider() {
    let fake = fake_postmark(200).await;
    let app = app_with_postmark(&fake, |_| {}).await;
    let admin = app.admin().await;
    let checks = |s: &Scraped| s.get("otesse_provider_health_check_seconds_count", &[("provider", "postmark")]);
    let before = scrape(&app).await;
    assert_eq!(checks(&before), None, "no check yet");

    let connected = app.post("/v1/integrations/providers/postmark/connect", &admin, &connect_body(CANARY)).await;
    let id = connected.expect(201)["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/integrations/connections/{id}/health-checks");
    app.send(app.request(Method::POST, &path).bearer_auth(&admin)).await.expect(201);

    let after = scrape(&app).await;
    assert_eq!(checks(&after), Some(2.0), "the connect's check and the one asked for");
    assert!(after.value("otesse_provider_health_check_seconds_sum", &[("provider", "postmark")]) > 0.0);
    assert!(!after.text.contains(CANARY));
}

#[tokio::test]
async fn the_database_pool_is_reported() {
    let app = spawn_app().await;
    app.admin().await;
    let scraped = scrape(&app).await;
    let max = scraped.value("otesse_db_pool_max_connections", &[]);
    // The pool sizes of docs/operations.md: 8 on SQLite, 10 on PostgreSQL.
    assert_eq!(max, if app.sqlite_file.is_some() { 8.0 } else { 10.0 });
    let idle = scraped.value("otesse_db_pool_connections", &[("state", "idle")]);
    let in_use = scraped.value("otesse_db_pool_connections", &[("state", "in_use")]);
    assert!(idle + in_use >= 1.0, "the pool has opened connections: {idle} idle, {in_use} in use");
    assert!(idle + in_use <= max);
}
/// The files of docs/.
fn doc(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `otesse_...` metric family named in `text` (a histogram's `_bucket`, `_count` and
/// `_sum` series count as their family).
fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("otesse_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        names.insert(family.to_owned());
        rest = &tail[end..];
    }
    names
}

/// docs/prometheus-alerts.yml as JSON, read by PyYAML (python3-yaml): a real YAML parser,
/// which the machines this project builds on have. Without it (outside CI) the file is only
/// checked by its lines.
fn alert_rules() -> Option<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/prometheus-alerts.yml");
    let script = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))";
    let output = std::process::Command::new("python3").args(["-c", script]).arg(&path).output();
    match output {
        Ok(output) if output.status.success() => Some(serde_json::from_slice(&output.stdout).unwrap()),
        Ok(output) if String::from_utf8_lossy(&output.stderr).contains("yaml.") => {
            panic!("docs/prometheus-alerts.yml is not valid YAML: {}", String::from_utf8_lossy(&output.stderr))
        }
        other => {
            assert!(std::env::var_os("CI").is_none(), "CI needs python3 with PyYAML (python3-yaml): {other:?}");
            eprintln!("python3 with PyYAML is missing: the alert rules are checked by their lines only");
            None
        }
    }
}

#[tokio::test]
async fn the_dashboard_and_alert_rules_use_only_exposed_metrics_and_operations_lists_them_all() {
    // Every family exists once something has happened: a request, a provider check.
    let fake = fake_postmark(200).await;
    let app = app_with_postmark(&fake, |_| {}).await;
    let admin = app.admin().await;
    app.post("/v1/integrations/providers/postmark/connect", &admin, &connect_body(CANARY)).await.expect(201);
    let exposed = scrape(&app).await.families();

    let dashboard: Value = serde_json::from_str(&doc("grafana-dashboard.json")).expect("the dashboard is JSON");
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string() && dashboard["schemaVersion"].is_u64());
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut expressions = Vec::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert!(panel["title"].is_string() && panel["gridPos"]["w"].is_u64(), "{panel}");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("a panel without targets: {panel}"));
        for target in targets {
            expressions.push(target["expr"].as_str().unwrap_or_else(|| panic!("no expr: {target}")).to_owned());
        }
    }
    let on_dashboard = referenced(&expressions.join("\n"));

    let rules_text = doc("prometheus-alerts.yml");
    let alert_expressions = match alert_rules() {
        Some(rules) => {
            let groups = rules["groups"].as_array().expect("groups");
            let rules: Vec<&Value> = groups.iter().flat_map(|g| g["rules"].as_array().expect("rules")).collect();
            for rule in &rules {
                assert!(rule["alert"].is_string() && rule["expr"].is_string(), "{rule}");
                assert!(rule["labels"]["severity"].is_string() && rule["annotations"]["summary"].is_string(), "{rule}");
            }
            rules.iter().map(|r| r["expr"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
        None => {
            assert!(rules_text.starts_with("groups:") && rules_text.contains("- alert:"), "not alert rules");
            vec![rules_text.clone()]
        }
    };
    let in_alerts = referenced(&alert_expressions.join("\n"));
    assert!(in_alerts.len() >= 5, "{in_alerts:?}");

    for name in on_dashboard.iter().chain(&in_alerts) {
        assert!(exposed.contains(name), "{name} is in docs/ but not exposed by the server");
    }
    let operations = doc("operations.md");
    for name in exposed.iter().filter(|n| n.starts_with("otesse_")) {
        assert!(operations.contains(&format!("`{name}`")), "{name} is not listed in docs/operations.md");
    }
    // What issue 16 asked the dashboard to show.
    for wanted in [
        "otesse_http_requests_total",
        "otesse_http_request_duration_seconds",
        "otesse_key_cache_requests_total",
        "otesse_usage_queue_depth",
        "otesse_jobs_queued",
        "otesse_job_oldest_age_seconds",
        "otesse_webhook_deliveries_total",
        "otesse_webhook_delivery_duration_seconds",
        "otesse_provider_health_check_seconds",
        "otesse_db_pool_connections",
    ] {
        assert!(on_dashboard.contains(wanted), "the dashboard has no panel on {wanted}");
    }
}
