//! The background worker (O5) and expiry warnings (K13), end to end: a key nearing expiry gets
//! its warning once, also when two servers share the database; the email without Postmark is
//! recorded as undeliverable; notifications are listed and read by their user only.

use chrono::Utc;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, eventually, key_body, spawn_app_with};

fn fast_jobs(s: &mut otesse_server::config::Settings) {
    s.jobs.enabled = true;
    s.jobs.poll_interval_ms = 20;
    s.jobs.expiry_warning_interval_secs = 1;
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let row = app
        .raw
        .query_one_raw(Statement::from_string(app.raw.get_database_backend(), sql.to_owned()))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// Makes the key expire `hours` from now.
async fn expire_in(app: &TestApp, key_id: &str, hours: i64) {
    let at = Utc::now() + chrono::Duration::hours(hours);
    let id: uuid::Uuid = key_id.parse().unwrap();
    app.sql("UPDATE api_keys SET expires_at = $1 WHERE id = $2", vec![at.into(), id.into()]).await;
}

async fn notifications(app: &TestApp, session: &str) -> Vec<Value> {
    app.get("/v1/notifications", session).await.expect(200)["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_key_nearing_expiry_warns_once_and_emails_are_recorded_undeliverable_without_postmark() {
    let app = spawn_app_with(fast_jobs).await;
    let admin = app.admin().await;
    let (_, id) = app.key(&admin, key_body("Billing sync", "live")).await;
    expire_in(&app, &id, 30).await;

    let listed = eventually("the warning", || async {
        let listed = notifications(&app, &admin).await;
        (!listed.is_empty()).then_some(listed)
    })
    .await;
    assert_eq!(listed[0]["kind"], "api_key.expiring");
    assert!(listed[0]["title"].as_str().unwrap().contains("Billing sync"), "{}", listed[0]);
    assert_eq!(listed[0]["subject"], format!("api_key:{id}"));

    // The 7-day window emails the admins: there is no Postmark, so it is recorded undeliverable.
    let undeliverable = "SELECT COUNT(*) AS n FROM emails WHERE status = 'undeliverable' \
                         AND detail = 'Postmark is not connected'";
    eventually("the undeliverable email", || async { (count(&app, undeliverable).await == 1).then_some(()) }).await;

    // Later passes (a new one every second here) do not repeat it.
    let passes = "SELECT COUNT(*) AS n FROM jobs WHERE kind = 'expiry_warnings' AND state = 'succeeded'";
    let before = count(&app, passes).await;
    eventually("two more passes", || async { (count(&app, passes).await >= before + 2).then_some(()) }).await;
    assert_eq!(notifications(&app, &admin).await.len(), 1);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM emails").await, 1);
    let metrics = app.send(app.request(Method::GET, "/metrics")).await.text;
    let succeeded = metrics
        .lines()
        .find_map(|l| l.strip_prefix("otesse_jobs_succeeded_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("the job counter is exported");
    assert!(succeeded >= 2, "{succeeded}");

    // Read it; another user neither sees nor reads it.
    let note = listed[0]["id"].as_str().unwrap().to_owned();
    let viewer = app.user(&admin, "viewer@acme.test", "viewer").await;
    assert!(notifications(&app, &viewer).await.is_empty());
    let path = format!("/v1/notifications/{note}/read");
    app.send(app.request(Method::POST, &path).bearer_auth(&viewer)).await.expect_error(404, "resource_missing");
    let read = app.send(app.request(Method::POST, &path).bearer_auth(&admin)).await;
    assert!(read.expect(200)["read_at"].is_string());
    let unread = app.get("/v1/notifications?unread=true", &admin).await;
    assert_eq!(unread.expect(200)["data"], serde_json::json!([]));
    app.send(app.request(Method::POST, "/v1/notifications/nope/read").bearer_auth(&admin))
        .await
        .expect_error(404, "resource_missing");
}

#[tokio::test]
async fn two_servers_on_one_database_warn_once() {
    let first = spawn_app_with(fast_jobs).await;
    let admin = first.admin().await;
    let (_, id) = first.key(&admin, key_body("Shared", "live")).await;
    let (url, schema) = (first.database_url(), first.schema.clone());
    let second = spawn_app_with(move |s| {
        fast_jobs(s);
        s.database_url = Some(url);
        s.database_schema = schema;
    })
    .await;
    expire_in(&first, &id, 24 * 10).await;

    eventually("the warning", || async { (!notifications(&second, &admin).await.is_empty()).then_some(()) }).await;
    let passes = "SELECT COUNT(*) AS n FROM jobs WHERE kind = 'expiry_warnings' AND state = 'succeeded'";
    let before = count(&first, passes).await;
    eventually("more passes by both", || async { (count(&first, passes).await >= before + 3).then_some(()) }).await;
    assert_eq!(notifications(&first, &admin).await.len(), 1, "one warning, whichever server ran it");
    let dupes = "SELECT COUNT(*) AS n FROM (SELECT dedupe_key FROM jobs GROUP BY dedupe_key HAVING COUNT(*) > 1) d";
    assert_eq!(count(&first, dupes).await, 0, "each period's job exists once");
}
