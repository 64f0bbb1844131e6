//! First-run setup, sign-in, sessions and users (P1-P3).

use reqwest::Method;
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, SETUP_TOKEN, key_body, spawn_app, spawn_app_with};

#[tokio::test]
async fn setup_with_a_wrong_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let body = json!({"setup_token": "wrong", "organization_name": "Acme", "email": ADMIN_EMAIL, "password": PASSWORD});
    app.send(app.request(Method::POST, "/v1/setup").json(&body)).await.expect_error(403, "setup_token_invalid");
    app.sign_in(ADMIN_EMAIL, PASSWORD).await.expect_error(401, "invalid_credentials");
    // The right token still works afterwards.
    app.setup().await.expect(201);
}

#[tokio::test]
async fn setup_runs_once() {
    let app = spawn_app().await;
    let first = app.setup().await;
    let body = first.expect(201);
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["organization"]["name"], "Acme Cleaning");
    app.setup().await.expect_error(409, "setup_already_completed");
}

#[tokio::test]
async fn setup_validates_its_fields_before_creating_anything() {
    let app = spawn_app().await;
    for (field, value) in [("email", "not-an-email"), ("password", "short"), ("organization_name", "  ")] {
        let mut body = json!({"setup_token": SETUP_TOKEN, "organization_name": "Acme", "email": ADMIN_EMAIL, "password": PASSWORD});
        body[field] = json!(value);
        app.send(app.request(Method::POST, "/v1/setup").json(&body)).await.expect_error(400, "invalid_parameter");
    }
    let body = json!({"setup_token": SETUP_TOKEN, "organization_name": "Acme", "email": ADMIN_EMAIL, "password": PASSWORD, "extra": 1});
    app.send(app.request(Method::POST, "/v1/setup").json(&body)).await.expect_error(400, "invalid_body");
    app.setup().await.expect(201);
}

#[tokio::test]
async fn production_refuses_to_start_without_a_setup_token_before_setup() {
    let dir = tempfile::tempdir().unwrap();
    let settings = otesse_server::config::Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_owned(),
        mode: otesse_server::config::Mode::Production,
        master_keys: Some(otesse_crypto::generate_master_key_entry(1).into()),
        ..Default::default()
    };
    let err = otesse_server::startup::Application::build(settings).await.unwrap_err();
    assert!(err.to_string().contains("OTESSE_SETUP_TOKEN"), "{err}");
}

#[tokio::test]
async fn production_refuses_to_start_without_master_keys() {
    let dir = tempfile::tempdir().unwrap();
    let settings = otesse_server::config::Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_owned(),
        mode: otesse_server::config::Mode::Production,
        setup_token: Some("preset".to_owned().into()),
        ..Default::default()
    };
    let err = otesse_server::startup::Application::build(settings).await.unwrap_err();
    assert!(err.to_string().contains("OTESSE_MASTER_KEYS"), "{err}");
    assert!(!dir.path().join("master.key").exists(), "production never generates a key");
}

#[tokio::test]
async fn development_generates_a_private_master_key_once() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let key = app.data_dir().join("master.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[tokio::test]
async fn a_generated_setup_token_is_random_and_only_handed_out_before_setup() {
    let app = spawn_app_with(|s| s.setup_token = None).await;
    // The token was generated (and printed by main); a guess does not work.
    let body = json!({"setup_token": "", "organization_name": "Acme", "email": ADMIN_EMAIL, "password": PASSWORD});
    app.send(app.request(Method::POST, "/v1/setup").json(&body)).await.expect_error(403, "setup_token_invalid");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    app.setup().await.expect(201);
    let wrong = app.sign_in(ADMIN_EMAIL, "not the password").await;
    let unknown = app.sign_in("nobody@acme.test", PASSWORD).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.error().0, "invalid_credentials");
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_refused_for_a_while() {
    let app = spawn_app().await;
    app.setup().await.expect(201);
    for _ in 0..5 {
        app.sign_in(ADMIN_EMAIL, "guess guess guess").await.expect_error(401, "invalid_credentials");
    }
    let refused = app.sign_in(ADMIN_EMAIL, PASSWORD).await;
    refused.expect_error(429, "rate_limited");
    let retry: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0);
}

#[tokio::test]
async fn setup_token_guesses_are_rate_limited_per_network() {
    let app = spawn_app_with(|s| s.rate_limit.sign_in_requests = 3).await;
    let guess =
        json!({"setup_token": "guess", "organization_name": "Acme", "email": ADMIN_EMAIL, "password": PASSWORD});
    for _ in 0..3 {
        app.send(app.request(Method::POST, "/v1/setup").json(&guess)).await.expect_error(403, "setup_token_invalid");
    }
    let refused = app.send(app.request(Method::POST, "/v1/setup").json(&guess)).await;
    refused.expect_error(429, "rate_limited");
    assert!(refused.headers.contains_key("retry-after"));
    // Counted apart from sign-ins.
    app.sign_in(ADMIN_EMAIL, PASSWORD).await.expect_error(401, "invalid_credentials");
}

#[tokio::test]
async fn sessions_sign_in_identify_and_sign_out() {
    let app = spawn_app().await;
    app.setup().await.expect(201);
    let answer = app.sign_in(" ADMIN@acme.test ", PASSWORD).await;
    let body = answer.expect(201);
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ses_"));
    assert!(body["expires_at"].is_string());

    let me = app.get("/v1/me", &token).await;
    let me = me.expect(200);
    assert_eq!(me["user"]["email"], ADMIN_EMAIL);
    assert!(me["permissions"].as_array().unwrap().iter().any(|p| p == "settings.edit"));

    app.send(app.request(Method::DELETE, "/v1/sessions/current").bearer_auth(&token)).await.expect(204);
    app.get("/v1/me", &token).await.expect_error(401, "session_invalid");
    app.send(app.request(Method::GET, "/v1/me")).await.expect_error(401, "missing_credentials");
}

#[tokio::test]
async fn an_api_key_is_not_a_session() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let key = app.customers_key(&admin, "live").await;
    let answer = app.get("/v1/api-keys", &key).await;
    let message = answer.expect_error(401, "session_required");
    assert!(message.contains("API keys are not accepted"), "{message}");
    let via_header = app.send(app.request(Method::GET, "/v1/me").header("x-api-key", &key)).await;
    via_header.expect_error(401, "session_required");
}

#[tokio::test]
async fn admins_manage_users_and_roles_limit_what_others_do() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager@acme.test", "manager").await;
    let viewer = app.user(&admin, "viewer@acme.test", "viewer").await;

    let users = app.get("/v1/users", &admin).await;
    assert_eq!(users.expect(200)["data"].as_array().unwrap().len(), 3);

    let body = json!({"email": "new@acme.test", "password": PASSWORD, "role": "viewer"});
    app.post("/v1/users", &manager, &body).await.expect_error(403, "permission_denied");
    app.get("/v1/users", &viewer).await.expect_error(403, "permission_denied");
    let dup = json!({"email": "MANAGER@acme.test", "password": PASSWORD, "role": "viewer"});
    app.post("/v1/users", &admin, &dup).await.expect_error(409, "email_taken");
    let bad_role = json!({"email": "x@acme.test", "password": PASSWORD, "role": "owner"});
    app.post("/v1/users", &admin, &bad_role).await.expect_error(400, "invalid_parameter");
    assert_eq!(app.get("/v1/users", &admin).await.expect(200)["data"].as_array().unwrap().len(), 3, "nothing added");
}

#[tokio::test]
async fn the_scope_catalog_has_descriptions_and_sensitive_flags() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let catalog = app.get("/v1/scopes", &admin).await;
    let scopes = catalog.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(scopes.len(), 21);
    let find = |name: &str| scopes.iter().find(|s| s["name"] == name).unwrap().clone();
    assert_eq!(find("settings.write")["sensitive"], true);
    assert_eq!(find("employees.write")["sensitive"], true);
    assert_eq!(find("customers.read")["sensitive"], false);
    assert!(find("customers.read")["description"].as_str().unwrap().len() > 5);
    assert_eq!(find("customers.write")["levels"], json!(["read_write", "admin"]));
}

/// The dashboard's session cookie identifies its user like a bearer token does, and any
/// change made through it needs the session's CSRF token.
#[tokio::test]
async fn a_session_cookie_identifies_the_user_and_changes_need_its_csrf_token() {
    use otesse_server::identify::{CSRF_HEADER, SESSION_COOKIE, csrf_token};
    let app = spawn_app().await;
    let token = app.admin().await;
    let cookie = format!("{SESSION_COOKIE}={token}");
    let me = app.send(app.request(Method::GET, "/v1/me").header("cookie", &cookie)).await;
    assert_eq!(me.expect(200)["user"]["email"], ADMIN_EMAIL);

    let body = key_body("from the dashboard", "live");
    let forged = app.send(app.request(Method::POST, "/v1/api-keys").header("cookie", &cookie).json(&body)).await;
    forged.expect_error(403, "csrf_token_invalid");
    let wrong = app
        .send(
            app.request(Method::POST, "/v1/api-keys")
                .header("cookie", &cookie)
                .header(CSRF_HEADER, csrf_token("ses_someone_else"))
                .json(&body),
        )
        .await;
    wrong.expect_error(403, "csrf_token_invalid");
    assert_eq!(app.key_count(&token).await, 0, "refused changes change nothing");

    let made = app
        .send(
            app.request(Method::POST, "/v1/api-keys")
                .header("cookie", &cookie)
                .header(CSRF_HEADER, csrf_token(&token))
                .json(&body),
        )
        .await;
    made.expect(201);
    assert_eq!(app.key_count(&token).await, 1);

    // A signed-out session's cookie is refused like its token.
    app.send(
        app.request(Method::DELETE, "/v1/sessions/current")
            .header("cookie", &cookie)
            .header(CSRF_HEADER, csrf_token(&token)),
    )
    .await
    .expect(204);
    app.send(app.request(Method::GET, "/v1/me").header("cookie", &cookie)).await.expect_error(401, "session_invalid");
}
