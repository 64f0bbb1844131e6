//! Integrations end to end (I1-I11, I13) against a local fake of the provider (wiremock).

use otesse_server::config::ProviderSettings;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, captured_logs, spawn_app_with};

pub(crate) const CANARY: &str = "pm-canary-7f3a9c1e-server-token";

/// A fake Postmark answering `GET /server` as the real one does.
pub(crate) async fn fake_postmark(status: u16) -> MockServer {
    let server = MockServer::start().await;
    let body = match status {
        200 => json!({"ID": 1, "Name": "Acme", "ApiTokens": ["..."], "Color": "blue"}),
        401 => json!({"ErrorCode": 10, "Message": "Request does not contain a valid Server token."}),
        429 => json!({"ErrorCode": 429, "Message": "Rate limit exceeded"}),
        _ => json!({"ErrorCode": 500, "Message": "Internal server error"}),
    };
    Mock::given(method("GET"))
        .and(path("/server"))
        .and(header("X-Postmark-Server-Token", CANARY))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(&server)
        .await;
    server
}

pub(crate) async fn app_with_postmark(
    fake: &MockServer,
    adjust: impl FnOnce(&mut otesse_server::config::Settings),
) -> TestApp {
    let uri = fake.uri();
    spawn_app_with(move |s| {
        s.providers.insert("postmark".into(), ProviderSettings { base_url: Some(uri), ..Default::default() });
        s.provider_timeout_ms = 2_000;
        adjust(s);
    })
    .await
}

pub(crate) fn connect_body(key: &str) -> Value {
    json!({"credentials": {"api_key": key}})
}

async fn count(app: &TestApp, table: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let row = app
        .raw
        .query_one_raw(Statement::from_string(
            app.raw.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

#[tokio::test]
async fn the_catalog_lists_the_eight_with_search_and_category() {
    let fake = fake_postmark(200).await;
    let app = app_with_postmark(&fake, |_| {}).await;
    let admin = app.admin().await;
    let viewer = app.user(&admin, "v@acme.test", "viewer").await;
    let all = app.get("/v1/integrations/providers", &viewer).await;
    let all = all.expect(200)["data"].as_array().unwrap().clone();
    let slugs: Vec<_> = all.iter().map(|p| p["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["postmark", "stripe", "mapbox", "google_maps", "geoapify", "anthropic", "quo", "xero"]);
    assert!(all.iter().all(|p| p["connection_status"] == "not_connected"));
    // Xero connects with OAuth2: without the deployment's client registration it cannot be.
    assert!(all[..7].iter().all(|p| p["available"] == true && p["unavailable_reason"].is_null()));
    assert_eq!(all[7]["auth_type"], "oauth2");
    assert_eq!(all[7]["available"], false);
    assert_eq!(
        all[7]["unavailable_reason"],
        "Xero is not available on this deployment: its OAuth client id and secret are not configured."
    );
    let refused = app.post("/v1/integrations/providers/xero/connect", &admin, &json!({})).await;
    refused.expect_error(409, "provider_not_configured");
    assert_eq!(all[0]["fields"][0]["name"], "api_key");
    assert_eq!(all[0]["category"], "communication");
    let mapping = app.get("/v1/integrations/providers?category=Mapping", &viewer).await;
    assert_eq!(mapping.expect(200)["data"].as_array().unwrap().len(), 3);
    let search = app.get("/v1/integrations/providers?q=openphone", &viewer).await;
    assert_eq!(search.expect(200)["data"][0]["slug"], "quo");
    app.get("/v1/integrations/providers?category=food", &viewer).await.expect_error(400, "invalid_parameter");
    let one = app.get("/v1/integrations/providers/anthropic", &viewer).await;
    assert_eq!(one.expect(200)["resource_types"], json!(["model_selection", "usage_monitoring"]));
    app.get("/v1/integrations/providers/myspace", &viewer).await.expect_error(404, "resource_missing");
    // Browsing is settings.view; connecting is settings.edit.
    let refused = app.post("/v1/integrations/providers/postmark/connect", &viewer, &connect_body(CANARY)).await;
    refused.expect_error(403, "permission_denied");
    assert_eq!(fake.received_requests().await.unwrap().len(), 0, "nothing reached the provider");
}

#[tokio::test]
async fn connect_check_inspect_and_disconnect() {
    let fake = fake_postmark(200).await;
    let app = app_with_postmark(&fake, |_| {}).await;
    let admin = app.admin().await;
    let connected = app.post("/v1/integrations/providers/postmark/connect", &admin, &connect_body(CANARY)).await;
    let body = connected.expect(201).clone();
    assert_eq!(body["status"], "connected");
    assert_eq!(body["instance_status"], "active");
    assert_eq!(body["health"]["status"], "healthy");
    assert!(body["health"]["response_time_ms"].is_number());
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(count(&app, "integration_credentials").await, 1);

    let catalog = app.get("/v1/integrations/providers?q=postmark", &admin).await;
    assert_eq!(catalog.expect(200)["data"][0]["connection_status"], "connected");
    let list = app.get("/v1/integrations/connections", &admin).await;
    assert_eq!(list.expect(200)["data"][0]["id"], id.as_str());

    app.send(
        app.request(Method::POST, &format!("/v1/integrations/connections/{id}/health-checks")).bearer_auth(&admin),
    )
    .await
    .expect(201);
    let detail = app.get(&format!("/v1/integrations/connections/{id}"), &admin).await;
    let detail = detail.expect(200);
    assert_eq!(detail["health_history"].as_array().unwrap().len(), 2);
    assert_eq!(fake.received_requests().await.unwrap().len(), 2, "connect and re-check both called the provider");

    // A second connect by the same user is refused; the audit trail holds the connect.
    app.post("/v1/integrations/providers/postmark/connect", &admin, &connect_body(CANARY))
        .await
        .expect_error(409, "already_connected");
    let audit = app.get("/v1/integrations/audit-log?provider=postmark", &admin).await;
    assert_eq!(audit.expect(200)["data"][0]["action"], "integration.connected");

    app.send(app.request(Method::DELETE, &format!("/v1/integrations/connections/{id}")).bearer_auth(&admin))
        .await
        .expect(204);
    assert_eq!(count(&app, "integration_credentials").await, 0, "credentials deleted");
    let after = app.get(&format!("/v1/integrations/connections/{id}"), &admin).await;
    assert_eq!(after.expect(200)["status"], "disconnected");
    let audit = app.get("/v1/integrations/audit-log?action=integration.disconnected", &admin).await;
    assert_eq!(audit.expect(200)["data"].as_array().unwrap().len(), 1);
    // And it can be connected again.
    app.post("/v1/integrations/providers/postmark/connect", &admin, &connect_body(CANARY)).await.expect(201);
}

#[tokio::test]
async fn failed_checks_answer_the_product_messages_and_leave_nothing_behind() {
    for (status, http, code, message) in [
        (
            401,
            422,
            "provider_credentials_invalid",
            "The API key you entered is invalid. Please check your credentials.",
        ),
        (429, 503, "provider_rate_limited", "Connection test was rate limited. Please wait a moment."),
        (500, 502, "provider_unreachable", "Could not reach Postmark. The service may be temporarily unavailable."),
    ] {
        let fake = fake_postmark(status).await;
        let app = app_with_postmark(&fake, |_| {}).await;
        let admin = app.admin().await;
        let answer = app.post("/v1/integrations/providers/postmark/connect", &admin, &connect_body(CANARY)).await;
        assert_eq!(answer.expect_error(http, code), message);
        assert_eq!(count(&app, "integration_credentials").await, 0);
        assert_eq!(count(&app, "integration_connections").await, 0);
        let catalog = app.get("/v1/integrations/providers?q=postmark", &admin).await;
        assert_eq!(catalog.expect(200)["data"][0]["connection_status"], "error");
        let audit = app.get("/v1/integrations/audit-log?action=integration.connect_failed", &admin).await;
        assert_eq!(audit.expect(200)["data"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn an_unreachable_provider_is_reported_and_a_retry_succeeds() {
    let fake = MockServer::start().await;
    let app = app_with_postmark(&fake, |_| {}).await;
    let admin = app.admin().await;
    // Nothing mounted yet: the fake answers 404 — not Postmark's answer.
    let answer = app.post("/v1/integrations/providers/postmark/connect", &admin, &connect_body(CANARY)).await;
    assert_eq!(answer.status, 502, "{}", answer.text);
    Mock::given(method("GET"))
        .and(path("/server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ID": 1, "Name": "Acme"})))
        .mount(&fake)
        .await;
    app.post("/v1/integrations/providers/postmark/connect", &admin, &connect_body(CANARY)).await.expect(201);
}

#[tokio::test]
async fn bad_connect_input_is_refused_before_any_call() {
    let fake = fake_postmark(200).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra.toml");
    std::fs::write(
        &extra,
        r#"[[providers]]
slug = "mailer_plus"
name = "Mailer Plus"
description = "Needs Postmark"
logo_url = "/m.svg"
category = "communication"
auth_type = "api_key"
fields = [{ field = "api_key", label = "Key" }]
dependencies = ["postmark"]
docs_url = "https://example.com/docs"
"#,
    )
    .unwrap();
    let app = app_with_postmark(&fake, |s| {
        s.catalog_file = Some(extra.clone());
        s.providers.insert("stripe".into(), ProviderSettings { active: Some(false), ..Default::default() });
    })
    .await;
    let admin = app.admin().await;
    let post = |slug: &str, body: Value| {
        let path = format!("/v1/integrations/providers/{slug}/connect");
        let admin = admin.clone();
        let app = &app;
        async move { app.post(&path, &admin, &body).await }
    };
    post("nope", connect_body("k")).await.expect_error(404, "resource_missing");
    post("stripe", connect_body("sk_test_x")).await.expect_error(409, "provider_inactive");
    let message = post("mailer_plus", connect_body("k")).await.expect_error(409, "dependency_missing");
    assert!(message.contains("Postmark") && message.contains("/v1/integrations/providers/postmark"), "{message}");
    post("postmark", json!({"credentials": {}})).await.expect_error(400, "invalid_parameter");
    post("postmark", json!({"credentials": {"api_key": "  "}})).await.expect_error(400, "invalid_parameter");
    let message = post("postmark", json!({"credentials": {"api_key": "k", "password": "x"}}))
        .await
        .expect_error(400, "invalid_parameter");
    assert!(message.contains("password"));
    post("postmark", json!({"credentials": {"api_key": "k".repeat(129)}})).await.expect_error(400, "invalid_parameter");
    post("postmark", json!({"credentials": {"api_key": "abc\u{7}def"}})).await.expect_error(400, "invalid_parameter");
    post("postmark", json!({"credentials": {"api_key": "k"}, "extra": 1})).await.expect_error(400, "invalid_body");
    post("postmark", json!({"use_preconfigured": true})).await.expect_error(400, "invalid_parameter");
    assert_eq!(fake.received_requests().await.unwrap().len(), 0, "no bad input reached the provider");
    assert_eq!(count(&app, "integration_instances").await, 0, "and nothing was written");
}

#[tokio::test]
async fn preconfigured_providers_connect_without_a_typed_key() {
    let fake = fake_postmark(200).await;
    let uri = fake.uri();
    let app = spawn_app_with(move |s| {
        s.providers.insert(
            "postmark".into(),
            ProviderSettings { base_url: Some(uri), api_key: Some(CANARY.to_owned().into()), ..Default::default() },
        );
    })
    .await;
    let admin = app.admin().await;
    let catalog = app.get("/v1/integrations/providers/postmark", &admin).await;
    assert_eq!(catalog.expect(200)["preconfigured"], true);
    let connected =
        app.post("/v1/integrations/providers/postmark/connect", &admin, &json!({"use_preconfigured": true})).await;
    let body = connected.expect(201);
    assert_eq!(body["auth_method"], "preconfigured");
    assert!(!connected.text.contains(CANARY));
    assert_eq!(count(&app, "integration_credentials").await, 0, "the deployment's key is not copied into the database");
}

#[tokio::test]
async fn keys_with_integrations_manage_may_connect_and_other_organizations_see_nothing() {
    let fake = fake_postmark(200).await;
    let app = app_with_postmark(&fake, |_| {}).await;
    let admin = app.admin().await;
    let manage = json!({
        "name": "ops", "scope_level": "admin", "scopes": ["integrations.manage"], "expires_in": "30d", "environment": "live",
    });
    let (key, _) = app.key(&admin, manage).await;
    let connected = app.post("/v1/integrations/providers/postmark/connect", &key, &connect_body(CANARY)).await;
    let id = connected.expect(201)["id"].as_str().unwrap().to_owned();
    let audit = app.get("/v1/integrations/audit-log?provider=postmark", &admin).await;
    assert_eq!(audit.expect(200)["data"][0]["actor_type"], "api_key");

    let (plain, _) = app.key(&admin, crate::helpers::key_body("plain", "live")).await;
    app.get("/v1/integrations/connections", &plain).await.expect_error(403, "scope_level_too_low");

    let other = app.other_organization("boss@other.test").await;
    app.get(&format!("/v1/integrations/connections/{id}"), &other).await.expect_error(404, "resource_missing");
    app.send(app.request(Method::DELETE, &format!("/v1/integrations/connections/{id}")).bearer_auth(&other))
        .await
        .expect_error(404, "resource_missing");
    assert_eq!(app.get("/v1/integrations/connections", &other).await.expect(200)["data"].as_array().unwrap().len(), 0);
    assert_eq!(count(&app, "integration_credentials").await, 1, "untouched");
}

#[tokio::test]
async fn the_canary_credential_is_stored_encrypted_and_never_echoed() {
    let fake = fake_postmark(200).await;
    let app = app_with_postmark(&fake, |_| {}).await;
    let admin = app.admin().await;
    let connected = app.post("/v1/integrations/providers/postmark/connect", &admin, &connect_body(CANARY)).await;
    let id = connected.expect(201)["id"].as_str().unwrap().to_owned();
    let mut texts = vec![connected.text.clone()];
    for path in [
        "/v1/integrations/connections".to_owned(),
        format!("/v1/integrations/connections/{id}"),
        "/v1/integrations/audit-log".to_owned(),
        "/v1/integrations/providers".to_owned(),
    ] {
        texts.push(app.get(&path, &admin).await.text);
    }
    for text in &texts {
        assert!(!text.contains(CANARY), "the credential came back: {text}");
    }
    let (_db, _raw, file, _dir) = app.stop().await;
    let logs = captured_logs();
    let lines: Vec<_> = logs.lines().collect();
    let leaks: Vec<_> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains(CANARY))
        .map(|(i, _)| lines[i.saturating_sub(8)..=i].join("\n"))
        .collect();
    assert!(leaks.is_empty(), "the credential reached the logs: {leaks:#?}");
    if let Some(file) = file {
        let mut bytes = std::fs::read(&file).unwrap();
        bytes.extend(std::fs::read(file.with_extension("db-wal")).unwrap_or_default());
        assert!(!bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()), "the credential is stored in plaintext");
    }
}

#[tokio::test]
async fn rewrap_moves_every_credential_to_the_newest_key_and_connections_keep_working() {
    use otesse_domain::ports::IntegrationRepository;
    use otesse_domain::sealed::SealedSecretStore;
    let fake = fake_postmark(200).await;
    let v1 = otesse_crypto::generate_master_key_entry(1);
    let keys_v1 = v1.clone();
    let app = app_with_postmark(&fake, move |s| s.master_keys = Some(keys_v1.into())).await;
    let admin = app.admin().await;
    let connected = app.post("/v1/integrations/providers/postmark/connect", &admin, &connect_body(CANARY)).await;
    let id = connected.expect(201)["id"].as_str().unwrap().to_owned();
    let store = app.db.integrations();
    let sealed = app.db.sealed_secrets();
    assert_eq!(sealed.below_version(2, chrono::Utc::now(), 100).await.unwrap().len(), 1, "sealed with v1");

    // Add v2 and rewrap while this server (which only knows v1) keeps serving.
    let both = format!("{v1},{}", otesse_crypto::generate_master_key_entry(2));
    let settings = otesse_server::config::Settings {
        database_url: Some(app.database_url()),
        database_schema: app.schema.clone(),
        master_keys: Some(both.clone().into()),
        data_dir: app.data_dir().to_owned(),
        ..Default::default()
    };
    assert_eq!(otesse_server::startup::rewrap(settings).await, std::process::ExitCode::SUCCESS);
    assert!(sealed.below_version(2, chrono::Utc::now(), 100).await.unwrap().is_empty(), "none left under v1");
    let stored = store.credentials(uuid::Uuid::parse_str(&id).unwrap()).await.unwrap();
    assert_eq!(stored[0].ciphertext.key_version, 2);

    // A server with both keys decrypts the rewrapped credential and checks it.
    let (url, schema) = (app.database_url(), app.schema.clone());
    let (_, _raw, _file, dir) = app.stop().await;
    // A restart is a new process with a new pool: the old pool's connections may have been
    // opened by the stopped server's workers, whose runtimes are gone.
    let db = otesse_storage::Database::connect(&url, schema.as_deref()).await.unwrap();
    let uri = fake.uri();
    let settings = otesse_server::config::Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_owned(),
        master_keys: Some(both.into()),
        providers: [("postmark".to_owned(), ProviderSettings { base_url: Some(uri), ..Default::default() })].into(),
        ..Default::default()
    };
    let server = otesse_server::startup::Application::build_with(settings, db).await.unwrap();
    let base = format!("http://127.0.0.1:{}", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());
    let client = reqwest::Client::new();
    let session: Value = client
        .post(format!("{base}/v1/sessions"))
        .json(&json!({"email": crate::helpers::ADMIN_EMAIL, "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let check: Value = client
        .post(format!("{base}/v1/integrations/connections/{id}/health-checks"))
        .bearer_auth(session["token"].as_str().unwrap_or_else(|| panic!("sign-in failed: {session}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["status"], "healthy", "{check}");
    let last = fake.received_requests().await.unwrap().pop().unwrap();
    assert_eq!(last.headers["x-postmark-server-token"], CANARY, "the decrypted credential is the original");
    handle.stop(true).await;
}

/// Connects Postmark and a fake Quo, returning `(session, postmark connection, quo connection)`.
async fn connected_postmark_and_quo() -> (TestApp, String, String, String, MockServer, MockServer) {
    let postmark = fake_postmark(200).await;
    let quo = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/phone-numbers"))
        .and(header("Authorization", "quo-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&quo)
        .await;
    let quo_uri = quo.uri();
    let app = app_with_postmark(&postmark, move |s| {
        s.providers.insert("quo".into(), ProviderSettings { base_url: Some(quo_uri), ..Default::default() });
    })
    .await;
    let admin = app.admin().await;
    let pm = app.post("/v1/integrations/providers/postmark/connect", &admin, &connect_body(CANARY)).await;
    let pm = pm.expect(201)["id"].as_str().unwrap().to_owned();
    let q = app.post("/v1/integrations/providers/quo/connect", &admin, &connect_body("quo-key")).await;
    let q = q.expect(201)["id"].as_str().unwrap().to_owned();
    (app, admin, pm, q, postmark, quo)
}

fn defaults(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["is_default"] == true)
        .map(|c| c["value"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sender_emails_keep_exactly_one_default() {
    let (app, admin, pm, _, _p, _q) = connected_postmark_and_quo().await;
    let base = format!("/v1/integrations/connections/{pm}/senders");
    let first = app.post(&base, &admin, &json!({"value": "Billing@Acme.test", "label": "Billing"})).await;
    let first = first.expect(201).clone();
    assert_eq!(first["value"], "billing@acme.test");
    assert_eq!(first["is_default"], true, "the first one is the default");
    let second = app.post(&base, &admin, &json!({"value": "hello@acme.test"})).await;
    let second_id = second.expect(201)["id"].as_str().unwrap().to_owned();
    assert_eq!(second.body["is_default"], false);

    app.post(&base, &admin, &json!({"value": "billing@acme.test"})).await.expect_error(409, "resource_exists");
    app.post(&base, &admin, &json!({"value": "not an email"})).await.expect_error(400, "invalid_parameter");
    app.post(&format!("/v1/integrations/connections/{pm}/phone-numbers"), &admin, &json!({"value": "+14155550123"}))
        .await
        .expect_error(405, "method_not_allowed");

    app.post(&format!("{base}/{second_id}/default"), &admin, &json!({})).await.expect(200);
    assert_eq!(defaults(&app.get(&base, &admin).await.body), ["hello@acme.test"]);

    let patch = app
        .request(Method::PATCH, &format!("{base}/{second_id}"))
        .bearer_auth(&admin)
        .json(&json!({"value": "hi@acme.test", "label": "Front desk"}));
    assert_eq!(app.send(patch).await.expect(200)["label"], "Front desk");

    // Deleting the default promotes the oldest remaining one.
    app.send(app.request(Method::DELETE, &format!("{base}/{second_id}")).bearer_auth(&admin)).await.expect(204);
    assert_eq!(defaults(&app.get(&base, &admin).await.body), ["billing@acme.test"]);

    // Concurrent "make default" calls still leave exactly one.
    let mut ids = Vec::new();
    for n in 0..6 {
        let created = app.post(&base, &admin, &json!({"value": format!("s{n}@acme.test")})).await;
        ids.push(created.expect(201)["id"].as_str().unwrap().to_owned());
    }
    let calls: Vec<_> = ids
        .iter()
        .map(|id| app.request(Method::POST, &format!("{base}/{id}/default")).bearer_auth(&admin).send())
        .collect();
    for response in futures_util::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(defaults(&app.get(&base, &admin).await.body).len(), 1);

    // Every edit is in the audit log, with what changed; refused edits are not.
    let audit =
        app.get("/v1/integrations/audit-log?action=integration.updated&provider=postmark&limit=100", &admin).await;
    let changes: Vec<_> =
        audit.expect(200)["data"].as_array().unwrap().iter().map(|e| e["details"]["change"].clone()).collect();
    let count = |change: &str| changes.iter().filter(|c| *c == change).count();
    assert_eq!(count("sender_email.added"), 8, "{changes:?}");
    assert_eq!(count("sender_email.updated"), 1);
    assert_eq!(count("sender_email.deleted"), 1);
    assert_eq!(count("sender_email.default"), 7);
}

#[tokio::test]
async fn phone_numbers_are_e164_and_other_organizations_cannot_touch_them() {
    let (app, admin, _, quo, _p, _q) = connected_postmark_and_quo().await;
    let base = format!("/v1/integrations/connections/{quo}/phone-numbers");
    for bad in ["4155550123", "+0155550123", "+1 (415) 555-0123", "+1"] {
        app.post(&base, &admin, &json!({"value": bad})).await.expect_error(400, "invalid_parameter");
    }
    let created = app.post(&base, &admin, &json!({"value": "+14155550123", "label": "Main line"})).await;
    let id = created.expect(201)["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["is_default"], true);

    let other = app.other_organization("boss@other.test").await;
    app.get(&base, &other).await.expect_error(404, "resource_missing");
    app.post(&format!("{base}/{id}/default"), &other, &json!({})).await.expect_error(404, "resource_missing");
    app.send(app.request(Method::DELETE, &format!("{base}/{id}")).bearer_auth(&other))
        .await
        .expect_error(404, "resource_missing");
    let viewer = app.user(&admin, "v@acme.test", "viewer").await;
    app.post(&base, &viewer, &json!({"value": "+14155550124"})).await.expect_error(403, "permission_denied");
    assert_eq!(app.get(&base, &viewer).await.expect(200)["data"].as_array().unwrap().len(), 1);
    app.get(&format!("/v1/integrations/connections/{quo}/fax-numbers"), &admin)
        .await
        .expect_error(404, "resource_missing");
}

#[tokio::test]
async fn anthropic_models_are_listed_live_and_only_offered_ones_can_be_selected() {
    let anthropic = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(header("x-api-key", "sk-ant-test"))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [
                {"id": "claude-opus-4-1", "display_name": "Claude Opus 4.1", "created_at": "2025-08-05T00:00:00Z", "type": "model"},
                {"id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z", "type": "model"}
            ],
            "has_more": false, "first_id": "claude-opus-4-1", "last_id": "claude-sonnet-4-5"
        })))
        .mount(&anthropic)
        .await;
    let uri = anthropic.uri();
    let app = spawn_app_with(move |s| {
        s.providers.insert("anthropic".into(), ProviderSettings { base_url: Some(uri), ..Default::default() });
    })
    .await;
    let admin = app.admin().await;
    let connected =
        app.post("/v1/integrations/providers/anthropic/connect", &admin, &connect_body("sk-ant-test")).await;
    let id = connected.expect(201)["id"].as_str().unwrap().to_owned();
    assert!(connected.body["selected_model"].is_null());

    let models = app.get(&format!("/v1/integrations/connections/{id}/models"), &admin).await;
    let ids: Vec<_> = models.expect(200)["data"].as_array().unwrap().iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, [json!("claude-opus-4-1"), json!("claude-sonnet-4-5")]);

    let put = |model: &str| {
        app.request(Method::PUT, &format!("/v1/integrations/connections/{id}/model"))
            .bearer_auth(&admin)
            .json(&json!({"model": model}))
    };
    let message = app.send(put("gpt-5")).await.expect_error(400, "invalid_parameter");
    assert!(message.contains("gpt-5"), "{message}");
    let chosen = app.send(put("claude-sonnet-4-5")).await;
    assert_eq!(chosen.expect(200)["selected_model"], "claude-sonnet-4-5");
    let detail = app.get(&format!("/v1/integrations/connections/{id}"), &admin).await;
    assert_eq!(detail.expect(200)["selected_model"], "claude-sonnet-4-5", "the choice is stored");
}

#[tokio::test]
async fn anthropic_usage_is_read_with_the_admin_key_and_needs_one() {
    let anthropic = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [], "has_more": false})))
        .mount(&anthropic)
        .await;
    let today = chrono::Utc::now().date_naive();
    let since = today - chrono::Days::new(2);
    Mock::given(method("GET"))
        .and(path("/v1/organizations/usage_report/messages"))
        .and(header("x-api-key", "sk-ant-admin-canary"))
        .and(query_param("starting_at", format!("{since}T00:00:00Z")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"starting_at": format!("{today}T00:00:00Z"), "ending_at": format!("{today}T23:59:59Z"),
                      "results": [{"uncached_input_tokens": 1200, "cache_read_input_tokens": 300, "output_tokens": 450,
                                   "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0}}]}],
            "has_more": false, "next_page": null
        })))
        .expect(1)
        .mount(&anthropic)
        .await;
    let uri = anthropic.uri();
    let app = spawn_app_with(move |s| {
        s.providers.insert("anthropic".into(), ProviderSettings { base_url: Some(uri), ..Default::default() });
    })
    .await;
    let admin = app.admin().await;

    // Without an admin key there is nothing to read the usage with.
    let plain = app.post("/v1/integrations/providers/anthropic/connect", &admin, &connect_body("sk-ant-plain")).await;
    let plain = plain.expect(201)["id"].as_str().unwrap().to_owned();
    let message = app
        .get(&format!("/v1/integrations/connections/{plain}/usage"), &admin)
        .await
        .expect_error(409, "admin_key_required");
    assert!(message.contains("admin key"), "{message}");
    app.send(app.request(Method::DELETE, &format!("/v1/integrations/connections/{plain}")).bearer_auth(&admin))
        .await
        .expect(204);

    let body = json!({"credentials": {"api_key": "sk-ant-plain", "api_secret": "sk-ant-admin-canary"}});
    let connected = app.post("/v1/integrations/providers/anthropic/connect", &admin, &body).await;
    let id = connected.expect(201)["id"].as_str().unwrap().to_owned();
    let report = app.get(&format!("/v1/integrations/connections/{id}/usage?days=3"), &admin).await;
    let report = report.expect(200).clone();
    assert!(!report.to_string().contains("sk-ant-admin-canary"));
    assert_eq!(report["days"], 3);
    assert_eq!(report["data"][0]["date"], today.to_string());
    assert_eq!(report["data"][0]["output_tokens"], 450);
    assert_eq!(report["total_input_tokens"], 1500);
    for days in ["0", "32", "x"] {
        app.get(&format!("/v1/integrations/connections/{id}/usage?days={days}"), &admin)
            .await
            .expect_error(400, "invalid_parameter");
    }
    let postmark = app.get(&format!("/v1/integrations/connections/{}/usage", uuid::Uuid::now_v7()), &admin).await;
    postmark.expect_error(404, "resource_missing");
}
