//! The API-key check on keyed routes (K2, K4, K10, K11, IP allow-lists).

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{key_body, spawn_app, spawn_app_with};

#[tokio::test]
async fn keys_work_as_bearer_or_x_api_key() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (key, id) = app.key(&admin, key_body("Backend", "test")).await;
    let bearer = app.get("/v1/whoami", &key).await;
    let me = bearer.expect(200);
    assert_eq!(me["id"], id.as_str());
    assert_eq!(me["environment"], "test");
    assert_eq!(me["scope_level"], "read_write");
    assert_eq!(me["scopes"], json!(["customers.read", "customers.write"]));
    assert!(me["expires_at"].is_string());
    let header = app.send(app.request(Method::GET, "/v1/whoami").header("x-api-key", &key)).await;
    assert_eq!(header.expect(200)["id"], id.as_str());
}

#[tokio::test]
async fn missing_malformed_and_unknown_keys_get_401() {
    let app = spawn_app().await;
    app.send(app.request(Method::GET, "/v1/whoami")).await.expect_error(401, "missing_credentials");
    app.get("/v1/whoami", "erp_live_tooshort").await.expect_error(401, "api_key_malformed");
    let basic = app.send(app.request(Method::GET, "/v1/whoami").header("authorization", "Basic abc")).await;
    basic.expect_error(401, "missing_credentials");
    let unknown = format!("erp_live_{}", "A".repeat(40));
    let answer = app.get("/v1/whoami", &unknown).await;
    answer.expect_error(401, "api_key_invalid");
    assert_eq!(answer.headers["www-authenticate"], "Bearer");
    // A second try is answered from the negative cache, the same way.
    app.get("/v1/whoami", &unknown).await.expect_error(401, "api_key_invalid");
}

#[tokio::test]
async fn expired_keys_get_the_product_message() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (key, id) = app.key(&admin, key_body("Backend", "live")).await;
    let past = Utc::now() - Duration::minutes(1);
    let changed = app
        .sql(
            "UPDATE api_keys SET expires_at = $1 WHERE id = $2",
            vec![past.into(), Uuid::parse_str(&id).unwrap().into()],
        )
        .await;
    assert_eq!(changed, 1);
    let answer = app.get("/v1/whoami", &key).await;
    assert_eq!(answer.expect_error(401, "api_key_expired"), "This API key has expired.");
    let list = app.get("/v1/api-keys", &admin).await;
    assert_eq!(list.expect(200)["data"][0]["status"], "expired");
}

#[tokio::test]
async fn keys_in_the_query_string_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (key, _) = app.key(&admin, key_body("Backend", "live")).await;
    let encoded = key.replace('_', "%5F");
    let queries = [
        format!("api_key={key}"),
        format!("key={key}"),
        format!("q={key}"),
        "token=abc".to_owned(),
        // Percent-encoded, the key and the name are still what a log keeps and a server decodes.
        format!("q={encoded}"),
        format!("q=%65{}", &encoded[1..]),
        "api%5Fkey=x&Api%5FKey=y".to_owned(),
        encoded.clone(),
    ];
    for query in queries {
        let answer = app.send(app.request(Method::GET, &format!("/v1/whoami?{query}")).bearer_auth(&key)).await;
        let message = answer.expect_error(400, "api_key_in_query");
        assert!(!message.contains(&key));
    }
}

#[tokio::test]
async fn a_session_token_is_not_an_api_key() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let message = app.get("/v1/whoami", &admin).await.expect_error(401, "api_key_required");
    assert!(message.contains("session"), "{message}");
}

#[tokio::test]
async fn read_only_keys_cannot_write_and_scopes_are_enforced() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let read_only = json!({
        "name": "reports", "scope_level": "read_only", "scopes": ["customers.read"],
        "expires_in": "never", "environment": "live",
    });
    let (ro_key, _) = app.key(&admin, read_only).await;
    app.get("/v1/customers", &ro_key).await.expect(200);
    let message = app.post("/v1/customers", &ro_key, &json!({"name": "Ada"})).await.expect_error(403, "read_only_key");
    assert!(message.contains("read-only"), "{message}");

    let no_scope = json!({
        "name": "invoices only", "scope_level": "read_write", "scopes": ["invoices.read"],
        "expires_in": "never", "environment": "live",
    });
    let (key, _) = app.key(&admin, no_scope).await;
    let message = app.get("/v1/customers", &key).await.expect_error(403, "scope_missing");
    assert!(message.contains("customers.read"), "{message}");
    // whoami needs no scope.
    app.get("/v1/whoami", &key).await.expect(200);
}

#[tokio::test]
async fn ip_allow_lists_use_forwarded_for_only_from_trusted_proxies() {
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let admin = app.admin().await;
    let mut body = key_body("office only", "live");
    body["allowed_ips"] = json!(["198.51.100.0/24"]);
    let (key, _) = app.key(&admin, body).await;
    let from =
        |ip: &str| app.request(Method::GET, "/v1/whoami").bearer_auth(&key).header("x-forwarded-for", ip.to_owned());
    app.send(from("198.51.100.20")).await.expect(200);
    app.send(from("203.0.113.5")).await.expect_error(403, "ip_not_allowed");
    // The right-most hop added by our proxy counts, not what the client wrote first.
    app.send(from("198.51.100.20, 203.0.113.5")).await.expect_error(403, "ip_not_allowed");
    app.send(app.request(Method::GET, "/v1/whoami").bearer_auth(&key)).await.expect_error(403, "ip_not_allowed");

    // Without trusted proxies, X-Forwarded-For is ignored.
    let plain = spawn_app().await;
    let admin = plain.admin().await;
    let mut body = key_body("office only", "live");
    body["allowed_ips"] = json!(["198.51.100.0/24"]);
    let (key, _) = plain.key(&admin, body).await;
    let spoofed = plain.request(Method::GET, "/v1/whoami").bearer_auth(&key).header("x-forwarded-for", "198.51.100.20");
    plain.send(spoofed).await.expect_error(403, "ip_not_allowed");
    let mut body = key_body("loopback", "live");
    body["allowed_ips"] = json!(["127.0.0.1"]);
    let (key, _) = plain.key(&admin, body).await;
    plain.get("/v1/whoami", &key).await.expect(200);
}

/// A well-formed key nobody issued.
fn guess(n: u32) -> String {
    format!("erp_live_{:0>40}", format!("guess{n}"))
}

#[tokio::test]
async fn a_network_guessing_keys_is_refused_before_the_database() {
    let app = spawn_app_with(|s| s.rate_limit.invalid_key_requests = 3).await;
    let admin = app.admin().await;
    let (real, _) = app.key(&admin, key_body("Backend", "live")).await;
    app.get("/v1/whoami", &real).await.expect(200);
    for n in 0..3 {
        app.get("/v1/whoami", &guess(n)).await.expect_error(401, "api_key_invalid");
    }
    // A fourth new guess is not looked up: 429 until the window ends.
    let refused = app.get("/v1/whoami", &guess(99)).await;
    let message = refused.expect_error(429, "rate_limited");
    assert!(message.contains("invalid API keys"), "{message}");
    let wait: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // A guess already known to be unknown costs nothing and is answered as before.
    app.get("/v1/whoami", &guess(0)).await.expect_error(401, "api_key_invalid");
    // The real key, verified before, still works from the same network.
    app.get("/v1/whoami", &real).await.expect(200);
}
