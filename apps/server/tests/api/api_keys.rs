//! Key management through the API: create, list, detail, rotate, revoke, and every bad input
//! of K3-K7 refused without changing anything.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, key_body, spawn_app, spawn_app_with};

#[tokio::test]
async fn create_shows_the_key_once_and_lists_it_masked() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let mut body = key_body("Zapier", "live");
    body["allowed_ips"] = json!(["203.0.113.7", "10.0.0.0/8"]);
    body["scopes"] = json!(["customers:read", "customers.write"]);
    let created = app.create_key(&admin, body).await;
    let created = created.expect(201);
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("erp_live_") && key.len() == 49, "{key}");
    assert!(key["erp_live_".len()..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(created["scopes"], json!(["customers.read", "customers.write"]));
    assert_eq!(created["status"], "active");
    assert_eq!(created["allowed_ips"], json!(["203.0.113.7/32", "10.0.0.0/8"]));

    let list = app.get("/v1/api-keys", &admin).await;
    let entry = &list.expect(200)["data"][0];
    assert_eq!(entry["masked_key"], format!("erp_live_...{}", &key[key.len() - 4..]));
    for field in
        ["id", "name", "scope_level", "scopes", "environment", "status", "created_at", "expires_at", "last_used_at"]
    {
        assert!(entry.get(field).is_some(), "{field} missing");
    }
    assert!(!list.text.contains(key), "the plaintext never comes back");
    assert_eq!(entry["expires_soon"], false);

    let detail = app.get(&format!("/v1/api-keys/{}", created["id"].as_str().unwrap()), &admin).await;
    let detail = detail.expect(200);
    assert_eq!(detail["scope_details"][0]["name"], "customers.read");
    assert!(detail["scope_details"][0]["description"].is_string());
    assert_eq!(detail["usage"]["total_requests"], 0);
    assert_eq!(detail["used_in_last_24h"], false);
    assert!(!detail.to_string().contains(key));
}

/// Sends `body` and asserts a 4xx with `code`, and that the key count did not change.
async fn refused(app: &TestApp, session: &str, body: Value, status: u16, code: &str) -> String {
    let before = app.key_count(session).await;
    let message = app.create_key(session, body).await.expect_error(status, code);
    assert_eq!(app.key_count(session).await, before, "a refused create changed the key list");
    message
}

#[tokio::test]
async fn bad_names_descriptions_scopes_expirations_and_ips_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let with = |field: &str, value: Value| {
        let mut body = key_body("valid", "live");
        body[field] = value;
        body
    };
    for (body, needle) in [
        (with("name", json!("")), "name"),
        (with("name", json!("   ")), "name"),
        (with("name", json!("n".repeat(101))), "100"),
        (with("description", json!("d".repeat(501))), "500"),
        (with("scopes", json!(["customers.destroy"])), "customers.destroy"),
        (with("scope_level", json!("god_mode")), "scope_level"),
        (with("expires_in", json!("7d")), "30d, 90d, 1y, never"),
        (with("environment", json!("prod")), "environment"),
        (with("allowed_ips", json!(["10.0.0.256"])), "10.0.0.256"),
        (with("allowed_ips", json!(["10.0.0.0/33"])), "10.0.0.0/33"),
    ] {
        let message = refused(&app, &admin, body, 400, "invalid_parameter").await;
        assert!(message.contains(needle), "{message:?} should mention {needle:?}");
    }
    let mut read_only = key_body("ro", "live");
    read_only["scope_level"] = json!("read_only");
    let message = refused(&app, &admin, read_only, 400, "invalid_parameter").await;
    assert!(message.contains("customers.write") && message.contains("read_only"), "{message}");
    // Exactly 100 characters is fine.
    app.create_key(&admin, with("name", json!("n".repeat(100)))).await.expect(201);
}

#[tokio::test]
async fn webhooks_manage_is_admin_level_and_live_only_scopes_are_refused_on_test_keys() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let body = |level: &str, scope: &str, environment: &str| {
        json!({"name": format!("{level} {scope} {environment}"), "scope_level": level, "scopes": [scope],
               "expires_in": "never", "environment": environment})
    };
    let message = refused(&app, &admin, body("read_write", "webhooks.manage", "live"), 400, "invalid_parameter").await;
    assert!(message.contains("webhooks.manage") && message.contains("read_write"), "{message}");
    for scope in ["webhooks.manage", "integrations.manage"] {
        let message = refused(&app, &admin, body("admin", scope, "test"), 400, "invalid_parameter").await;
        assert!(message.contains(scope) && message.contains("test keys"), "{message}");
        app.create_key(&admin, body("admin", scope, "live")).await.expect(201);
    }
    let scopes = app.get("/v1/scopes", &admin).await.expect(200).clone();
    let row = |name: &str| scopes["data"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone();
    assert_eq!(row("webhooks.manage")["levels"], json!(["admin"]));
    assert_eq!(row("webhooks.manage")["sensitive"], true);
    assert_eq!(row("webhooks.manage")["live_only"], true);
    assert_eq!(row("customers.read")["live_only"], false);
}

#[tokio::test]
async fn malformed_json_unknown_fields_and_oversized_bodies_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let raw = |body: &str| {
        app.request(Method::POST, "/v1/api-keys")
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    app.send(raw("{\"name\": ")).await.expect_error(400, "invalid_json");
    app.send(raw("not json")).await.expect_error(400, "invalid_json");
    let mut unknown = key_body("x", "live");
    unknown["color"] = json!("blue");
    let message = app.create_key(&admin, unknown).await.expect_error(400, "invalid_body");
    assert!(message.contains("color"), "{message}");
    let mut huge = key_body("x", "live");
    huge["description"] = json!("d".repeat(70 * 1024));
    app.create_key(&admin, huge).await.expect_error(413, "payload_too_large");
    let wrong_type = app
        .send(raw(r#"{"name": 12345678901, "scope_level": "read_only", "expires_in": "never", "environment": "live"}"#))
        .await;
    let message = wrong_type.expect_error(400, "invalid_body");
    assert!(!message.contains("12345678901"), "values are not echoed: {message}");
    assert_eq!(app.key_count(&admin).await, 0);
}

#[tokio::test]
async fn names_are_unique_among_active_keys_only() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (_, id) = app.key(&admin, key_body("Backend", "live")).await;
    refused(&app, &admin, key_body("Backend", "test"), 409, "name_taken").await;
    app.post(&format!("/v1/api-keys/{id}/revoke"), &admin, &json!({})).await.expect(200);
    app.create_key(&admin, key_body("Backend", "live")).await.expect(201);
}

#[tokio::test]
async fn the_26th_active_key_is_refused() {
    // More creations than the default creation rate limit allows in a minute.
    let app = spawn_app_with(|s| s.rate_limit.key_creation_requests = 100).await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for n in 0..25 {
        ids.push(app.key(&admin, key_body(&format!("key {n}"), "live")).await.1);
    }
    let message = refused(&app, &admin, key_body("key 25", "live"), 409, "api_key_limit_reached").await;
    assert!(message.contains("25"), "{message}");
    // Revoking one makes room.
    app.post(&format!("/v1/api-keys/{}/revoke", ids[0]), &admin, &json!({})).await.expect(200);
    app.create_key(&admin, key_body("key 25", "live")).await.expect(201);
}

#[tokio::test]
async fn permissions_decide_who_creates_and_who_grants_sensitive_scopes() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let manager = app.user(&admin, "m@acme.test", "manager").await;
    let viewer = app.user(&admin, "v@acme.test", "viewer").await;
    refused(&app, &viewer, key_body("v", "live"), 403, "permission_denied").await;
    let sensitive = json!({
        "name": "hr", "scope_level": "read_write", "scopes": ["employees.write"],
        "expires_in": "30d", "environment": "live",
    });
    let message = refused(&app, &manager, sensitive.clone(), 403, "permission_denied").await;
    assert!(message.contains("employees.write"), "{message}");
    app.create_key(&admin, sensitive).await.expect(201);
    app.create_key(&manager, key_body("m", "live")).await.expect(201);
    // Viewers may look.
    assert_eq!(app.key_count(&viewer).await, 2);
    let id = app.get("/v1/api-keys", &viewer).await.body["data"][0]["id"].as_str().unwrap().to_owned();
    app.post(&format!("/v1/api-keys/{id}/revoke"), &viewer, &json!({})).await.expect_error(403, "permission_denied");
}

#[tokio::test]
async fn rotation_makes_a_twin_and_can_schedule_the_old_keys_end() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let mut body = key_body("Backend", "test");
    body["allowed_ips"] = json!(["127.0.0.1"]);
    let (old_key, old_id) = app.key(&admin, body).await;

    let rotated = app.post(&format!("/v1/api-keys/{old_id}/rotate"), &admin, &json!({})).await;
    let rotated = rotated.expect(201).clone();
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    assert!(new_key.starts_with("erp_test_"));
    assert_eq!(rotated["name"], "Backend (rotated)");
    assert_eq!(rotated["scopes"], json!(["customers.read", "customers.write"]));
    assert_eq!(rotated["allowed_ips"], json!(["127.0.0.1/32"]));
    assert_eq!(rotated["rotated_from"], old_id.as_str());

    // Both work during the transition.
    app.get("/v1/whoami", &old_key).await.expect(200);
    app.get("/v1/whoami", &new_key).await.expect(200);

    // Never later than the old key's own expiry.
    let too_late = json!({"name": "again", "revoke_old_at": "2999-01-01T00:00:00Z"});
    app.post(&format!("/v1/api-keys/{old_id}/rotate"), &admin, &too_late).await.expect_error(400, "invalid_parameter");

    // A key is replaced once: rotating it again while its replacement is active is refused.
    let again = app.post(&format!("/v1/api-keys/{old_id}/rotate"), &admin, &json!({"name": "Backend v3"})).await;
    assert!(again.expect_error(409, "key_already_rotated").contains("rotate its replacement"));

    // A time in the past means now: the old key stops at once.
    let new_id = rotated["id"].as_str().unwrap();
    let now = json!({"name": "Backend v3", "revoke_old_at": "2000-01-01T00:00:00Z"});
    app.post(&format!("/v1/api-keys/{new_id}/rotate"), &admin, &now).await.expect(201);
    let refused = app.get("/v1/whoami", &new_key).await;
    assert_eq!(refused.expect_error(401, "api_key_revoked"), "This API key has been revoked.");
    app.post(&format!("/v1/api-keys/{new_id}/rotate"), &admin, &json!({})).await.expect_error(409, "key_not_active");
}

#[tokio::test]
async fn revocation_is_immediate_even_for_a_cached_key_and_the_key_stays_listed() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (key, id) = app.key(&admin, key_body("Backend", "live")).await;
    app.get("/v1/whoami", &key).await.expect(200); // now cached
    let revoked = app.post(&format!("/v1/api-keys/{id}/revoke"), &admin, &json!({})).await;
    assert_eq!(revoked.expect(200)["status"], "revoked");
    let answer = app.get("/v1/whoami", &key).await;
    assert_eq!(answer.expect_error(401, "api_key_revoked"), "This API key has been revoked.");
    let list = app.get("/v1/api-keys", &admin).await;
    assert_eq!(list.expect(200)["data"][0]["status"], "revoked");
    // Revoking again changes nothing and is not an error.
    app.post(&format!("/v1/api-keys/{id}/revoke"), &admin, &json!({})).await.expect(200);
}

#[tokio::test]
async fn another_organizations_keys_are_invisible() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (_, id) = app.key(&admin, key_body("Backend", "live")).await;
    let other = app.other_organization("boss@other.test").await;
    assert_eq!(app.key_count(&other).await, 0);
    app.get(&format!("/v1/api-keys/{id}"), &other).await.expect_error(404, "resource_missing");
    app.post(&format!("/v1/api-keys/{id}/revoke"), &other, &json!({})).await.expect_error(404, "resource_missing");
    app.get("/v1/api-keys/not-a-uuid", &admin).await.expect_error(404, "resource_missing");
}

#[tokio::test]
async fn key_operations_are_audited_with_actor_and_time() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (_, id) = app.key(&admin, key_body("Backend", "live")).await;
    app.post(&format!("/v1/api-keys/{id}/rotate"), &admin, &json!({})).await.expect(201);
    app.post(&format!("/v1/api-keys/{id}/revoke"), &admin, &json!({})).await.expect(200);
    let log = app.get("/v1/integrations/audit-log", &admin).await;
    let entries = log.expect(200)["data"].as_array().unwrap().clone();
    let actions: Vec<_> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["api_key.revoked", "api_key.rotated", "api_key.created"]);
    assert!(entries.iter().all(|e| e["actor_type"] == "user" && e["occurred_at"].is_string()));
    let revoked = app.get("/v1/integrations/audit-log?action=api_key.revoked", &admin).await;
    assert_eq!(revoked.expect(200)["data"].as_array().unwrap().len(), 1);
    app.get("/v1/integrations/audit-log?action=nope", &admin).await.expect_error(400, "invalid_parameter");
}

/// A rotate body is optional, but one that is sent must be right: a malformed body used to be
/// taken for a missing one (`Option<web::Json<_>>`), and the key was rotated with the defaults.
#[tokio::test]
async fn a_malformed_rotate_body_is_refused_and_rotates_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (_, id) = app.key(&admin, key_body("Backend", "live")).await;
    let path = format!("/v1/api-keys/{id}/rotate");
    app.post(&path, &admin, &json!({"nmae": "typo"})).await.expect_error(400, "invalid_body");
    app.post(&path, &admin, &json!({"revoke_old_at": "tomorrow"})).await.expect_error(400, "invalid_body");
    app.post(&path, &admin, &json!(["name"])).await.expect_error(400, "invalid_body");
    // Found by schemathesis: serde builds a struct from an array of its fields in order.
    app.post(&path, &admin, &json!([null, null])).await.expect_error(400, "invalid_body");
    let send = |content_type: &'static str, body: &'static str| {
        app.send(app.request(Method::POST, &path).bearer_auth(&admin).header("content-type", content_type).body(body))
    };
    send("application/json", "{\"name\": ").await.expect_error(400, "invalid_json");
    send("text/plain", "{\"name\": \"x\"}").await.expect_error(415, "unsupported_media_type");
    assert_eq!(app.key_count(&admin).await, 1, "nothing was rotated");

    // No body at all, or an empty object, still rotates with the defaults.
    let rotated = app.send(app.request(Method::POST, &path).bearer_auth(&admin)).await;
    assert_eq!(rotated.expect(201)["name"], "Backend (rotated)");
    let (_, other) = app.key(&admin, key_body("Other", "live")).await;
    let rotated = app.post(&format!("/v1/api-keys/{other}/rotate"), &admin, &json!({"name": "Other 2"})).await;
    assert_eq!(rotated.expect(201)["name"], "Other 2");
}
