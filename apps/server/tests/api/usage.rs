//! Every keyed request is logged (K14) through the batched queue (F1), and nothing queued is
//! lost on graceful shutdown.

use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{key_body, spawn_app};

#[tokio::test]
async fn keyed_requests_are_logged_with_their_outcome() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let read_only = json!({
        "name": "ro", "scope_level": "read_only", "scopes": ["customers.read"], "expires_in": "30d", "environment": "live",
    });
    let (key, id) = app.key(&admin, read_only).await;
    app.get("/v1/whoami", &key).await.expect(200);
    app.get("/v1/customers?limit=5", &key).await.expect(200);
    app.post("/v1/customers", &key, &json!({"name": "x"})).await.expect(403);
    app.get("/v1/customers/00000000-0000-0000-0000-000000000000", &key).await.expect(404);
    app.flush_usage().await;

    let detail = app.get(&format!("/v1/api-keys/{id}"), &admin).await;
    let detail = detail.expect(200).clone();
    assert_eq!(detail["usage"]["total_requests"], 4);
    assert_eq!(detail["usage"]["unique_ips"], 1);
    assert!(detail["usage"]["last_used_at"].is_string());
    assert!(detail["last_used_at"].is_string());
    assert_eq!(detail["used_in_last_24h"], true);
    let recent = detail["recent_requests"].as_array().unwrap();
    assert_eq!(recent.len(), 4);
    assert_eq!(recent[0]["endpoint"], "/v1/customers/00000000-0000-0000-0000-000000000000");
    assert_eq!(recent[0]["status"], 404);
    assert_eq!(recent[1]["method"], "POST");
    assert_eq!(recent[1]["status"], 403);
    assert_eq!(recent[2]["endpoint"], "/v1/customers", "the query string is not logged");
    assert_eq!(recent[3]["endpoint"], "/v1/whoami");
    assert_eq!(recent[3]["ip"], "127.0.0.1");
    assert!(recent[3]["response_time_ms"].is_number());

    let page = app.get(&format!("/v1/api-keys/{id}/usage?limit=3"), &admin).await;
    let page = page.expect(200).clone();
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app.get(&format!("/v1/api-keys/{id}/usage?limit=3&cursor={cursor}"), &admin).await;
    let rest = rest.expect(200);
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["data"][0]["endpoint"], "/v1/whoami");
    assert_eq!(rest["has_more"], false);
}

#[tokio::test]
async fn requests_with_unknown_keys_are_not_attributed_to_any_key() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (_, id) = app.key(&admin, key_body("quiet", "live")).await;
    app.get("/v1/whoami", &format!("erp_live_{}", "Z".repeat(40))).await.expect(401);
    app.flush_usage().await;
    let detail = app.get(&format!("/v1/api-keys/{id}"), &admin).await;
    assert_eq!(detail.expect(200)["usage"]["total_requests"], 0);
}

#[tokio::test]
async fn graceful_shutdown_writes_every_queued_row() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (key, _) = app.key(&admin, key_body("busy", "live")).await;
    let mut handles = Vec::new();
    for _ in 0..40 {
        let request = app.request(Method::GET, "/v1/whoami").bearer_auth(&key);
        handles.push(tokio::spawn(async move { request.send().await.unwrap().status().as_u16() }));
    }
    for handle in handles {
        assert_eq!(handle.await.unwrap(), 200);
    }
    // No flush: stopping the server must write what is queued.
    let (_db, raw, _file, _dir) = app.stop().await;
    let row = raw
        .query_one_raw(Statement::from_string(
            raw.get_database_backend(),
            "SELECT COUNT(*) AS n FROM api_key_usage".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    let count: i64 = row.try_get("", "n").unwrap();
    let writer_failures: Vec<_> =
        crate::helpers::captured_logs().lines().filter(|l| l.contains("usage batch")).map(str::to_owned).collect();
    assert_eq!(count, 40, "usage writer failures logged (by any test): {writer_failures:#?}");
}
