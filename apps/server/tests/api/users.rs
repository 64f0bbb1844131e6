//! The user lifecycle over HTTP (P8): re-role, deactivate, delete, passwords, resets, sessions.

use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp, key_body, spawn_app, spawn_app_with};
use crate::integrations::{CANARY, app_with_postmark, connect_body, fake_postmark};

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> crate::helpers::Answer {
    app.send(app.request(Method::PATCH, &format!("/v1/users/{id}")).bearer_auth(token).json(&body)).await
}

async fn delete(app: &TestApp, token: &str, path: &str) -> crate::helpers::Answer {
    app.send(app.request(Method::DELETE, path).bearer_auth(token)).await
}

/// The id of the user with `email`, as the admin lists them.
async fn user_id(app: &TestApp, admin: &str, email: &str) -> String {
    let users = app.get("/v1/users", admin).await;
    let user = users.body["data"].as_array().unwrap().iter().find(|u| u["email"] == email).cloned();
    user.unwrap_or_else(|| panic!("{email} is not listed")).get("id").unwrap().as_str().unwrap().to_owned()
}

async fn me_id(app: &TestApp, token: &str) -> String {
    app.get("/v1/me", token).await.expect(200)["user"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn deactivation_ends_sessions_at_once_and_the_users_keys_keep_working() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ops = app.user(&admin, "ops@acme.test", "manager").await;
    let (key, _) = app.key(&ops, key_body("ops sync", "live")).await;
    let id = user_id(&app, &admin, "ops@acme.test").await;

    let changed = patch(&app, &admin, &id, json!({"status": "deactivated"})).await;
    assert_eq!(changed.expect(200)["status"], "deactivated");
    app.get("/v1/me", &ops).await.expect_error(401, "session_invalid");
    app.sign_in("ops@acme.test", PASSWORD).await.expect_error(401, "invalid_credentials");
    app.get("/v1/whoami", &key).await.expect(200);
    let listed = app.get("/v1/users", &admin).await;
    let row = listed.body["data"].as_array().unwrap().iter().find(|u| u["id"] == id.as_str()).unwrap().clone();
    assert_eq!(row["status"], "deactivated", "deactivated users stay listed");

    patch(&app, &admin, &id, json!({"status": "active"})).await.expect(200);
    app.get("/v1/me", &ops).await.expect_error(401, "session_invalid");
    app.session("ops@acme.test").await;
    let audit = app.get("/v1/integrations/audit-log", &admin).await;
    let actions: Vec<_> = audit.body["data"].as_array().unwrap().iter().map(|e| e["action"].clone()).collect();
    assert!(
        actions.contains(&json!("user.deactivated")) && actions.contains(&json!("user.reactivated")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn bad_input_and_the_wrong_caller_change_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let viewer = app.user(&admin, "viewer@acme.test", "viewer").await;
    let manager = app.user(&admin, "manager@acme.test", "manager").await;
    let id = user_id(&app, &admin, "viewer@acme.test").await;

    patch(&app, &admin, &id, json!({"role": "owner"})).await.expect_error(400, "invalid_parameter");
    for status in ["deleted", "suspended", ""] {
        patch(&app, &admin, &id, json!({ "status": status })).await.expect_error(400, "invalid_parameter");
    }
    patch(&app, &admin, &id, json!({})).await.expect_error(400, "invalid_parameter");
    patch(&app, &admin, &id, json!({"role": "admin", "extra": 1})).await.expect_error(400, "invalid_body");
    for caller in [&viewer, &manager] {
        patch(&app, caller, &id, json!({"role": "admin"})).await.expect_error(403, "permission_denied");
        delete(&app, caller, &format!("/v1/users/{id}")).await.expect_error(403, "permission_denied");
        app.post(&format!("/v1/users/{id}/password-reset"), caller, &json!({}))
            .await
            .expect_error(403, "permission_denied");
    }
    // Another organization's user: not found, not forbidden.
    let other_admin = app.other_organization("root@other.test").await;
    let stranger = me_id(&app, &other_admin).await;
    patch(&app, &admin, &stranger, json!({"role": "viewer"})).await.expect_error(404, "resource_missing");
    delete(&app, &admin, &format!("/v1/users/{stranger}")).await.expect_error(404, "resource_missing");
    app.post(&format!("/v1/users/{stranger}/password-reset"), &admin, &json!({}))
        .await
        .expect_error(404, "resource_missing");
    patch(&app, &admin, "not-a-uuid", json!({"role": "viewer"})).await.expect_error(404, "resource_missing");

    // Nothing changed.
    let me = app.get("/v1/me", &viewer).await;
    assert_eq!(me.expect(200)["user"]["role"], "viewer");
    assert_eq!(app.get("/v1/me", &other_admin).await.expect(200)["user"]["role"], "admin");
    let renamed = patch(&app, &admin, &id, json!({"role": "manager", "name": "  Vi Ewer "})).await;
    assert_eq!((renamed.body["role"].clone(), renamed.body["name"].clone()), (json!("manager"), json!("Vi Ewer")));
    // A demotion takes effect on the next request of the same session.
    let promoted = user_id(&app, &admin, "manager@acme.test").await;
    patch(&app, &admin, &promoted, json!({"role": "viewer"})).await.expect(200);
    app.create_key(&manager, key_body("too late", "live")).await.expect_error(403, "permission_denied");
}

#[tokio::test]
async fn the_last_admin_can_be_neither_demoted_deactivated_nor_deleted() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let me = me_id(&app, &admin).await;
    patch(&app, &admin, &me, json!({"role": "manager"})).await.expect_error(409, "last_admin");
    patch(&app, &admin, &me, json!({"status": "deactivated"})).await.expect_error(409, "last_admin");
    delete(&app, &admin, &format!("/v1/users/{me}")).await.expect_error(409, "last_admin");
    assert_eq!(app.get("/v1/me", &admin).await.expect(200)["user"]["role"], "admin");

    // With a second admin, self-demotion works, and then the other is the last one.
    let second = app.user(&admin, "second@acme.test", "admin").await;
    patch(&app, &admin, &me, json!({"role": "viewer"})).await.expect(200);
    let second_id = me_id(&app, &second).await;
    patch(&app, &second, &second_id, json!({"status": "deactivated"})).await.expect_error(409, "last_admin");
    // A deactivated admin does not count as one.
    patch(&app, &second, &me, json!({"role": "admin", "status": "deactivated"})).await.expect(200);
    delete(&app, &second, &format!("/v1/users/{second_id}")).await.expect_error(409, "last_admin");
}

#[tokio::test]
async fn two_concurrent_demotions_of_the_last_two_admins_leave_one_admin() {
    let app = spawn_app().await;
    let first = app.admin().await;
    let second = app.user(&first, "second@acme.test", "admin").await;
    let (first_id, second_id) = (me_id(&app, &first).await, me_id(&app, &second).await);
    // Each demotes the other at the same time.
    let (a, b) = tokio::join!(
        patch(&app, &first, &second_id, json!({"role": "viewer"})),
        patch(&app, &second, &first_id, json!({"role": "viewer"})),
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert!(statuses == [200, 409] || statuses == [200, 403], "{statuses:?}: {} / {}", a.text, b.text);
    let users = app.get("/v1/users", if a.status == 200 { &first } else { &second }).await;
    let admins = users.body["data"].as_array().unwrap().iter().filter(|u| u["role"] == "admin").count();
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn a_deleted_users_keys_keep_working_and_still_name_them() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ops = app.user(&admin, "ops@acme.test", "manager").await;
    let ops_id = me_id(&app, &ops).await;
    patch(&app, &admin, &ops_id, json!({"name": "Olive Ops"})).await.expect(200);
    let (key, key_id) = app.key(&ops, key_body("ops sync", "live")).await;

    delete(&app, &admin, &format!("/v1/users/{ops_id}")).await.expect(204);
    app.get("/v1/me", &ops).await.expect_error(401, "session_invalid");
    app.sign_in("ops@acme.test", PASSWORD).await.expect_error(401, "invalid_credentials");
    app.get("/v1/whoami", &key).await.expect(200);
    let detail = app.get(&format!("/v1/api-keys/{key_id}"), &admin).await;
    let creator = &detail.expect(200)["creator"];
    assert_eq!(creator["email"], "ops@acme.test");
    assert_eq!(creator["name"], "Olive Ops");
    assert_eq!(creator["status"], "deleted");
    assert_eq!(detail.body["created_by"], ops_id.as_str());
    let list = app.get("/v1/api-keys", &admin).await;
    assert_eq!(list.body["data"][0]["creator"]["email"], "ops@acme.test");
    let users = app.get("/v1/users", &admin).await;
    assert!(users.body["data"].as_array().unwrap().iter().all(|u| u["id"] != ops_id.as_str()));
    delete(&app, &admin, &format!("/v1/users/{ops_id}")).await.expect_error(404, "resource_missing");
    // The address is free again.
    app.post("/v1/users", &admin, &json!({"email": "ops@acme.test", "password": PASSWORD, "role": "viewer"}))
        .await
        .expect(201);
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let other = app.session(ADMIN_EMAIL).await;
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    let wrong = app.post("/v1/me/password", &admin, &change("not my password", "a brand new password")).await;
    let message = wrong.expect_error(400, "current_password_invalid");
    assert!(!message.contains("not my password"));
    app.get("/v1/me", &other).await.expect(200);
    app.post("/v1/me/password", &admin, &change(PASSWORD, "short")).await.expect_error(400, "invalid_parameter");
    app.sign_in(ADMIN_EMAIL, PASSWORD).await.expect(201);

    app.send(
        app.request(Method::POST, "/v1/me/password")
            .bearer_auth(&admin)
            .json(&change(PASSWORD, "a brand new password")),
    )
    .await
    .expect(204);
    app.get("/v1/me", &admin).await.expect(200);
    app.get("/v1/me", &other).await.expect_error(401, "session_invalid");
    app.sign_in(ADMIN_EMAIL, PASSWORD).await.expect_error(401, "invalid_credentials");
    app.sign_in(ADMIN_EMAIL, "a brand new password").await.expect(201);
}

#[tokio::test]
async fn a_reset_token_is_shown_once_works_once_and_not_after_it_expires() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ops = app.user(&admin, "ops@acme.test", "viewer").await;
    let id = me_id(&app, &ops).await;
    let issued = app.post(&format!("/v1/users/{id}/password-reset"), &admin, &json!({})).await;
    let body = issued.expect(201).clone();
    assert_eq!(issued.headers["cache-control"], "no-store");
    let token = body["reset_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pwr_") && token.len() == 47, "{token}");
    assert_eq!(body["email"], "not_configured");
    let expires: chrono::DateTime<chrono::Utc> = body["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = expires - chrono::Utc::now();
    assert!(ttl > chrono::Duration::minutes(59) && ttl <= chrono::Duration::minutes(60), "{ttl}");

    let redeem = |token: &str, password: &str| json!({"token": token, "new_password": password});
    let anonymous = |body: Value| app.request(Method::POST, "/v1/password-resets").json(&body);
    app.send(anonymous(redeem(&token, "short"))).await.expect_error(400, "invalid_parameter");
    app.send(anonymous(redeem(&token, "a reset password"))).await.expect(204);
    app.get("/v1/me", &ops).await.expect_error(401, "session_invalid");
    app.sign_in("ops@acme.test", "a reset password").await.expect(201);
    let again = app.send(anonymous(redeem(&token, "another password!"))).await;
    let message = again.expect_error(400, "reset_token_invalid");
    assert!(!message.contains(&token));
    app.sign_in("ops@acme.test", "a reset password").await.expect(201);
    app.send(anonymous(redeem("pwr_garbage", "another password!"))).await.expect_error(400, "reset_token_invalid");

    // Expired: the stored expiry is moved into the past (the app has no test clock).
    let late = app.post(&format!("/v1/users/{id}/password-reset"), &admin, &json!({})).await;
    let late = late.expect(201)["reset_token"].as_str().unwrap().to_owned();
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert_eq!(app.sql("UPDATE password_resets SET expires_at = $1 WHERE used_at IS NULL", vec![past.into()]).await, 1);
    app.send(anonymous(redeem(&late, "another password!"))).await.expect_error(400, "reset_token_invalid");
    app.sign_in("ops@acme.test", "a reset password").await.expect(201);
    let audit = app.get("/v1/integrations/audit-log", &admin).await;
    let actions: Vec<_> = audit.body["data"].as_array().unwrap().iter().map(|e| e["action"].clone()).collect();
    assert!(actions.contains(&json!("user.password_reset")) && actions.contains(&json!("user.password_reset_issued")));
    assert!(!audit.text.contains(&token) && !audit.text.contains(&late), "tokens never reach the audit log");
}

#[tokio::test]
async fn the_reset_endpoint_is_rate_limited_per_network() {
    let app = spawn_app_with(|s| s.rate_limit.sign_in_requests = 3).await;
    let body = json!({"token": format!("pwr_{}", "a".repeat(43)), "new_password": "a reset password"});
    for _ in 0..3 {
        app.send(app.request(Method::POST, "/v1/password-resets").json(&body))
            .await
            .expect_error(400, "reset_token_invalid");
    }
    let limited = app.send(app.request(Method::POST, "/v1/password-resets").json(&body)).await;
    limited.expect_error(429, "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn a_reset_token_is_mailed_through_the_organizations_postmark() {
    let fake = fake_postmark(200).await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .and(body_string_contains("ops@acme.test"))
        .and(body_string_contains("pwr_"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"MessageID": "m-1", "ErrorCode": 0})))
        .expect(1)
        .mount(&fake)
        .await;
    let app = app_with_postmark(&fake, |_| {}).await;
    let admin = app.admin().await;
    let pm = app.post("/v1/integrations/providers/postmark/connect", &admin, &connect_body(CANARY)).await;
    let pm = pm.expect(201)["id"].as_str().unwrap().to_owned();
    app.post(&format!("/v1/integrations/connections/{pm}/senders"), &admin, &json!({"value": "it@acme.test"}))
        .await
        .expect(201);
    let ops = app.user(&admin, "ops@acme.test", "viewer").await;
    let id = me_id(&app, &ops).await;
    let issued = app.post(&format!("/v1/users/{id}/password-reset"), &admin, &json!({})).await;
    assert_eq!(issued.expect(201)["email"], "sent");
    let token = issued.body["reset_token"].as_str().unwrap();
    let sent = fake.received_requests().await.unwrap();
    let mail = sent.iter().find(|r| r.url.path() == "/email").expect("a mail");
    assert!(String::from_utf8_lossy(&mail.body).contains(token), "the mail carries the token");
}

#[tokio::test]
async fn users_list_and_end_their_own_sessions_by_id_never_by_token() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ua = "ExampleBrowser/1.0";
    let browser = app
        .send(
            app.request(Method::POST, "/v1/sessions")
                .header("user-agent", ua)
                .json(&json!({"email": ADMIN_EMAIL, "password": PASSWORD})),
        )
        .await;
    let browser = browser.expect(201)["token"].as_str().unwrap().to_owned();
    let third = app.session(ADMIN_EMAIL).await;

    let listed = app.get("/v1/me/sessions", &admin).await;
    let sessions = listed.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(sessions.iter().any(|s| s["user_agent"] == ua && s["ip"] == "127.0.0.1"));
    for token in [&admin, &browser, &third] {
        assert!(!listed.text.contains(token.as_str()), "no session token is ever shown");
    }
    let browser_id = sessions.iter().find(|s| s["user_agent"] == ua).unwrap()["id"].as_str().unwrap().to_owned();

    // Another user's session id is not theirs to end.
    let viewer = app.user(&admin, "viewer@acme.test", "viewer").await;
    delete(&app, &viewer, &format!("/v1/me/sessions/{browser_id}")).await.expect_error(404, "resource_missing");
    app.get("/v1/me", &browser).await.expect(200);
    delete(&app, &admin, &format!("/v1/me/sessions/{browser_id}")).await.expect(204);
    app.get("/v1/me", &browser).await.expect_error(401, "session_invalid");
    delete(&app, &admin, &format!("/v1/me/sessions/{browser_id}")).await.expect_error(404, "resource_missing");
    delete(&app, &admin, "/v1/me/sessions/garbage").await.expect_error(404, "resource_missing");

    let ended = delete(&app, &admin, "/v1/me/sessions").await;
    assert_eq!(ended.expect(200)["ended"], 1);
    app.get("/v1/me", &third).await.expect_error(401, "session_invalid");
    app.get("/v1/me", &admin).await.expect(200);
    app.get("/v1/me", &viewer).await.expect(200);
    // Keys have no sessions.
    let key = app.customers_key(&admin, "live").await;
    app.get("/v1/me/sessions", &key).await.expect_error(401, "session_required");
}
