//! Outbound webhooks (W3, W5) end to end: endpoints and their bad input, deliveries signed the
//! Standard Webhooks way and verified here with the signature crate, the delivery log, secret
//! rotation, retries, disabling after failures, and receivers that fail, hang or redirect.
//! Receivers are local wiremock servers (loopback is allowed for these tests only).

use std::time::Duration;

use otesse_domain::jobs::{JobFilter, JobKind, JobQueue, JobState};
use otesse_domain::page::PageRequest;
use otesse_webhook_signature::{WebhookSecret, verify};
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, eventually, key_body, spawn_app_with};

pub(crate) fn webhook_settings(s: &mut otesse_server::config::Settings) {
    s.allow_loopback_urls = true;
    s.jobs.enabled = true;
    s.jobs.poll_interval_ms = 20;
    s.webhooks.timeout_secs = 1;
    s.webhooks.disable_after_failures = 2;
}

pub(crate) async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(status)).mount(&server).await;
    server
}

pub(crate) async fn create_endpoint(app: &TestApp, session: &str, url: &str, events: &[&str]) -> (String, String) {
    let body = app.post("/v1/webhook-endpoints", session, &json!({"url": url, "events": events})).await;
    let body = body.expect(201);
    (body["id"].as_str().unwrap().to_owned(), body["secret"].as_str().unwrap().to_owned())
}

async fn deliveries(app: &TestApp, session: &str, endpoint: &str) -> Vec<Value> {
    let answer = app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries"), session).await;
    answer.expect(200)["data"].as_array().unwrap().clone()
}

/// Waits until the endpoint's newest delivery has had `attempts` attempts.
async fn attempted(app: &TestApp, session: &str, endpoint: &str, attempts: u64) -> Value {
    eventually("a delivery attempt", || async {
        let log = deliveries(app, session, endpoint).await;
        log.first().filter(|d| d["attempts"].as_u64() == Some(attempts)).cloned()
    })
    .await
}

async fn count(app: &TestApp, table: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let row =
        app.raw.query_one_raw(Statement::from_string(app.raw.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

/// Checks a received request's signature headers against `secrets` (each must verify).
fn assert_signed(request: &wiremock::Request, secrets: &[&str]) -> Value {
    let header = |name: &str| request.headers.get(name).unwrap().to_str().unwrap().to_owned();
    let (id, timestamp, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let now = chrono::Utc::now().timestamp();
    for secret in secrets {
        let secret = WebhookSecret::parse(secret).unwrap();
        verify([&secret], &id, &timestamp, &signature, &request.body, now).unwrap();
    }
    let wrong = WebhookSecret::generate();
    assert!(verify([&wrong], &id, &timestamp, &signature, &request.body, now).is_err(), "another secret fails");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["id"], id.as_str(), "webhook-id names the event");
    body
}

#[tokio::test]
async fn endpoints_refuse_bad_input_and_store_nothing() {
    let app = spawn_app_with(|s| s.allow_loopback_urls = false).await;
    let admin = app.admin().await;
    let create = |body: Value| {
        let app = &app;
        let admin = admin.clone();
        async move { app.post("/v1/webhook-endpoints", &admin, &body).await }
    };
    let cases = [
        (json!({"url": "https://example.com/h", "events": ["api_key.deleted"]}), 400, "invalid_parameter"),
        (json!({"url": "https://example.com/h", "events": []}), 400, "invalid_parameter"),
        (json!({"url": "http://10.0.0.7/h", "events": ["api_key.revoked"]}), 400, "url_not_allowed"),
        (json!({"url": "http://169.254.169.254/latest", "events": ["api_key.revoked"]}), 400, "url_not_allowed"),
        (json!({"url": "http://127.0.0.1:9/h", "events": ["api_key.revoked"]}), 400, "url_not_allowed"),
        (json!({"url": "http://[fd00::1]/h", "events": ["api_key.revoked"]}), 400, "url_not_allowed"),
        (json!({"url": "ftp://example.com/h", "events": ["api_key.revoked"]}), 400, "url_not_allowed"),
        (json!({"url": "", "events": ["api_key.revoked"]}), 400, "invalid_parameter"),
        (json!({"events": ["api_key.revoked"]}), 400, "invalid_body"),
        (json!({"url": "https://example.com/h", "events": ["api_key.revoked"], "secret": "x"}), 400, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let message = create(body.clone()).await.expect_error(status, code);
        assert!(!message.is_empty(), "{body}");
    }
    // A name that resolves inside: refused without saying what it resolves to.
    let inside = json!({"url": "http://localhost:9/h", "events": ["api_key.revoked"]});
    let message = create(inside).await.expect_error(400, "url_not_allowed");
    assert!(message.contains("private or internal address"), "{message}");
    assert!(!message.contains("127.0.0.1") && !message.contains("::1"), "{message}");
    let long = json!({"url": "https://example.com/h", "events": ["webhook.test"], "description": "x".repeat(501)});
    create(long).await.expect_error(400, "invalid_parameter");
    assert_eq!(count(&app, "webhook_endpoints").await, 0, "nothing stored");

    // The catalog, readable by any signed-in user with settings.view.
    let viewer = app.user(&admin, "viewer@acme.test", "viewer").await;
    let types = app.get("/v1/event-types", &viewer).await;
    let names: Vec<String> =
        types.expect(200)["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect();
    for expected in [
        "api_key.created",
        "api_key.rotated",
        "api_key.revoked",
        "api_key.expiring",
        "integration.connected",
        "integration.disconnected",
        "integration.health_check.failed",
        "integration.health_check.recovered",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
    // Viewers read; they cannot create.
    let refused = app
        .post("/v1/webhook-endpoints", &viewer, &json!({"url": "https://example.com/h", "events": ["webhook.test"]}))
        .await;
    refused.expect_error(403, "permission_denied");
    app.get("/v1/webhook-endpoints", &viewer).await.expect(200);
    app.get(&format!("/v1/webhook-endpoints/{}", uuid::Uuid::new_v4()), &admin)
        .await
        .expect_error(404, "resource_missing");
}

#[tokio::test]
async fn keys_need_webhooks_manage_and_see_only_their_organization() {
    let app = spawn_app_with(webhook_settings).await;
    let admin = app.admin().await;
    let hooks_key = app
        .key(
            &admin,
            json!({
                "name": "hooks", "description": "", "scope_level": "admin", "scopes": ["webhooks.manage"],
                "expires_in": "30d", "environment": "live", "allowed_ips": [],
            }),
        )
        .await
        .0;
    let customers_key = app.customers_key(&admin, "live").await;
    let receiver = receiver(200).await;
    let url = format!("{}/hook", receiver.uri());
    let (id, _) = create_endpoint(&app, &hooks_key, &url, &["webhook.test"]).await;
    // A read-write key never reaches webhooks; an admin key needs the scope.
    app.get("/v1/webhook-endpoints", &customers_key).await.expect_error(403, "scope_level_too_low");
    let admin_key = app
        .key(
            &admin,
            json!({"name": "admin without hooks", "scope_level": "admin", "scopes": ["customers.read"],
                   "expires_in": "30d", "environment": "live"}),
        )
        .await
        .0;
    app.get("/v1/webhook-endpoints", &admin_key).await.expect_error(403, "scope_missing");
    let listed = app.get("/v1/webhook-endpoints", &admin).await;
    assert_eq!(listed.expect(200)["data"][0]["id"], id.as_str());
    let other = app.other_organization("owner@other.test").await;
    app.get(&format!("/v1/webhook-endpoints/{id}"), &other).await.expect_error(404, "resource_missing");
    assert!(app.get("/v1/webhook-endpoints", &other).await.expect(200)["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn key_events_are_delivered_signed_and_logged() {
    let app = spawn_app_with(webhook_settings).await;
    let admin = app.admin().await;
    let receiver = receiver(200).await;
    let url = format!("{}/hook", receiver.uri());
    let (endpoint, secret) = create_endpoint(&app, &admin, &url, &["api_key.created", "api_key.revoked"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    // The secret is shown once: not in reads, not stored in the clear.
    let shown = app.get(&format!("/v1/webhook-endpoints/{endpoint}"), &admin).await;
    assert!(!shown.expect(200).to_string().contains(&secret));
    let listed = app.get("/v1/webhook-endpoints", &admin).await;
    assert!(!listed.expect(200).to_string().contains(&secret));

    let (plaintext, key_id) = app.key(&admin, key_body("Billing sync", "live")).await;
    app.send(app.request(Method::POST, &format!("/v1/api-keys/{key_id}/revoke")).bearer_auth(&admin)).await.expect(200);

    let received = eventually("two deliveries", || async {
        let got = receiver.received_requests().await.unwrap();
        (got.len() >= 2).then_some(got)
    })
    .await;
    let mut types = Vec::new();
    for request in &received {
        let body = assert_signed(request, &[&secret]);
        assert_eq!(body["data"]["id"], key_id.as_str());
        assert_eq!(body["data"]["name"], "Billing sync");
        assert!(!String::from_utf8_lossy(&request.body).contains(&plaintext), "the key itself is never sent");
        assert_eq!(request.headers.get("content-type").unwrap(), "application/json");
        types.push(body["type"].as_str().unwrap().to_owned());
    }
    types.sort();
    assert_eq!(types, ["api_key.created", "api_key.revoked"]);

    let log = eventually("both deliveries succeeded", || async {
        let log = deliveries(&app, &admin, &endpoint).await;
        (log.len() == 2 && log.iter().all(|d| d["state"] == "succeeded")).then_some(log)
    })
    .await;
    assert!(log.iter().all(|d| d["response_status"] == 200 && d["attempts"] == 1), "{log:?}");
    assert_eq!(count(&app, "webhook_deliveries").await, 2, "one per subscribed event");
}

#[tokio::test]
async fn a_rotated_secret_signs_alongside_the_old_one_and_the_test_event_reaches_the_endpoint() {
    let app = spawn_app_with(webhook_settings).await;
    let admin = app.admin().await;
    let receiver = receiver(204).await;
    let url = format!("{}/hook", receiver.uri());
    let (endpoint, old) = create_endpoint(&app, &admin, &url, &["api_key.revoked"]).await;
    let rotated = app
        .send(app.request(Method::POST, &format!("/v1/webhook-endpoints/{endpoint}/rotate-secret")).bearer_auth(&admin))
        .await;
    let new = rotated.expect(200)["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    let test = app
        .send(app.request(Method::POST, &format!("/v1/webhook-endpoints/{endpoint}/test")).bearer_auth(&admin))
        .await;
    let queued = test.expect(202).clone();
    assert_eq!(queued["event_type"], "webhook.test");
    assert_eq!(queued["state"], "pending");
    let received = eventually("the test event", || async {
        let got = receiver.received_requests().await.unwrap();
        got.into_iter().next()
    })
    .await;
    let signature = received.headers.get("webhook-signature").unwrap().to_str().unwrap().to_owned();
    assert_eq!(signature.split(' ').count(), 2, "both secrets sign during the rotation: {signature}");
    let body = assert_signed(&received, &[&old, &new]);
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["id"], queued["message_id"]);
    let done = attempted(&app, &admin, &endpoint, 1).await;
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["response_status"], 204);
}

#[tokio::test]
async fn a_master_key_rotation_keeps_both_signatures_of_a_secret_rotation_in_progress() {
    let v1 = otesse_crypto::generate_master_key_entry(1);
    let only_v1 = v1.clone();
    let app = spawn_app_with(move |s| {
        webhook_settings(s);
        s.master_keys = Some(only_v1.into());
    })
    .await;
    let admin = app.admin().await;
    let receiver = receiver(204).await;
    let (endpoint, old) =
        create_endpoint(&app, &admin, &format!("{}/hook", receiver.uri()), &["api_key.revoked"]).await;
    let rotated = app
        .send(app.request(Method::POST, &format!("/v1/webhook-endpoints/{endpoint}/rotate-secret")).bearer_auth(&admin))
        .await;
    let new = rotated.expect(200)["secret"].as_str().unwrap().to_owned();

    // The operator's procedure (docs/operations.md): add v2, rewrap, then drop v1.
    let v2 = otesse_crypto::generate_master_key_entry(2);
    let rewrap = otesse_server::config::Settings {
        database_url: Some(app.database_url()),
        database_schema: app.schema.clone(),
        master_keys: Some(format!("{v1},{v2}").into()),
        data_dir: app.data_dir().to_owned(),
        ..Default::default()
    };
    assert_eq!(otesse_server::startup::rewrap(rewrap).await, std::process::ExitCode::SUCCESS);
    let (url, schema) = (app.database_url(), app.schema.clone());
    let (_, _raw, _file, dir) = app.stop().await;
    // A restart is a new process with a new pool: the old pool's connections may have been
    // opened by the stopped server's workers, whose runtimes are gone.
    let db = otesse_storage::Database::connect(&url, schema.as_deref()).await.unwrap();
    let mut settings = otesse_server::config::Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_owned(),
        master_keys: Some(v2.into()),
        ..Default::default()
    };
    webhook_settings(&mut settings);
    let server = otesse_server::startup::Application::build_with(settings, db).await.unwrap();
    let base = format!("http://127.0.0.1:{}", server.port());
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());

    let test = reqwest::Client::new()
        .post(format!("{base}/v1/webhook-endpoints/{endpoint}/test"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let status = test.status();
    let problems: Vec<_> = crate::helpers::captured_logs()
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains(" WARN"))
        .map(str::to_owned)
        .collect();
    assert_eq!(status, 202, "{}; warnings and errors logged (by any test): {problems:#?}", test.text().await.unwrap());
    let received = eventually("the test event", || async { receiver.received_requests().await.unwrap().pop() }).await;
    let signature = received.headers.get("webhook-signature").unwrap().to_str().unwrap().to_owned();
    assert_eq!(signature.split(' ').count(), 2, "both secrets still sign, under the new master key only: {signature}");
    assert_signed(&received, &[&old, &new]);
    handle.stop(true).await;
}

#[tokio::test]
async fn failing_receivers_are_retried_with_backoff_then_the_endpoint_is_disabled_and_its_owner_notified() {
    let app = spawn_app_with(webhook_settings).await;
    let admin = app.admin().await;
    let receiver = receiver(500).await;
    let url = format!("{}/hook", receiver.uri());
    let (endpoint, _) = create_endpoint(&app, &admin, &url, &["api_key.created"]).await;
    let send_test =
        || app.send(app.request(Method::POST, &format!("/v1/webhook-endpoints/{endpoint}/test")).bearer_auth(&admin));

    send_test().await.expect(202);
    let first = attempted(&app, &admin, &endpoint, 1).await;
    assert_eq!(first["state"], "pending", "retried later: {first}");
    assert_eq!(first["response_status"], 500);
    assert_eq!(first["error"], "the receiver answered 500");
    let last: chrono::DateTime<chrono::Utc> = first["last_attempt_at"].as_str().unwrap().parse().unwrap();
    let next: chrono::DateTime<chrono::Utc> = first["next_attempt_at"].as_str().unwrap().parse().unwrap();
    let wait = (next - last).num_seconds();
    assert!((29..=38).contains(&wait), "30 s plus up to a quarter of jitter, got {wait}");
    let shown = app.get(&format!("/v1/webhook-endpoints/{endpoint}"), &admin).await;
    assert_eq!(shown.expect(200)["consecutive_failures"], 1);
    assert_eq!(shown.expect(200)["status"], "enabled");

    // The second consecutive failure reaches the threshold (2 here): disabled, owner notified.
    send_test().await.expect(202);
    eventually("the endpoint disabled", || async {
        let shown = app.get(&format!("/v1/webhook-endpoints/{endpoint}"), &admin).await;
        (shown.expect(200)["status"] == "disabled").then_some(())
    })
    .await;
    let notes = app.get("/v1/notifications", &admin).await;
    let notes = notes.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["kind"], "webhook_endpoint.disabled");
    assert_eq!(notes[0]["subject"], format!("webhook_endpoint:{endpoint}"));

    // Events are not delivered to a disabled endpoint...
    app.key(&admin, key_body("after disable", "live")).await;
    assert_eq!(count(&app, "webhook_deliveries").await, 2, "no delivery queued for a disabled endpoint");
    // ...until it is enabled again, which resets the failures.
    let enabled = app
        .send(
            app.request(Method::PATCH, &format!("/v1/webhook-endpoints/{endpoint}"))
                .bearer_auth(&admin)
                .json(&json!({"status": "enabled"})),
        )
        .await;
    assert_eq!(enabled.expect(200)["consecutive_failures"], 0);
    assert_eq!(enabled.expect(200)["disabled_reason"], Value::Null);
}

#[tokio::test]
async fn a_receiver_that_redirects_or_hangs_is_a_failed_attempt_and_the_redirect_is_not_followed() {
    let app = spawn_app_with(webhook_settings).await;
    let admin = app.admin().await;
    let target = receiver(200).await;
    let redirecting = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", format!("{}/hook", target.uri())))
        .mount(&redirecting)
        .await;
    let (endpoint, _) = create_endpoint(&app, &admin, &format!("{}/hook", redirecting.uri()), &["webhook.test"]).await;
    app.send(app.request(Method::POST, &format!("/v1/webhook-endpoints/{endpoint}/test")).bearer_auth(&admin))
        .await
        .expect(202);
    let redirected = attempted(&app, &admin, &endpoint, 1).await;
    assert_eq!(redirected["response_status"], 302);
    assert!(redirected["error"].as_str().unwrap().contains("redirects are not followed"), "{redirected}");
    assert!(target.received_requests().await.unwrap().is_empty(), "the Location was not visited");

    let hanging = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&hanging)
        .await;
    let (slow, _) = create_endpoint(&app, &admin, &format!("{}/hook", hanging.uri()), &["webhook.test"]).await;
    app.send(app.request(Method::POST, &format!("/v1/webhook-endpoints/{slow}/test")).bearer_auth(&admin))
        .await
        .expect(202);
    let timed_out = attempted(&app, &admin, &slow, 1).await;
    assert_eq!(timed_out["state"], "pending");
    assert_eq!(timed_out["response_status"], Value::Null);
    assert_eq!(timed_out["error"], "the receiver did not answer in time");
}

#[tokio::test]
async fn integration_events_are_published_without_credentials() {
    let fake = crate::integrations::fake_postmark(200).await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(200)).mount(&fake).await;
    let app = crate::integrations::app_with_postmark(&fake, webhook_settings).await;
    let admin = app.admin().await;
    let url = format!("{}/hook", fake.uri());
    let (endpoint, secret) =
        create_endpoint(&app, &admin, &url, &["integration.connected", "integration.disconnected"]).await;
    let canary = crate::integrations::CANARY;
    let connected = app
        .post("/v1/integrations/providers/postmark/connect", &admin, &crate::integrations::connect_body(canary))
        .await;
    let connection = connected.expect(201)["id"].as_str().unwrap().to_owned();
    app.send(app.request(Method::DELETE, &format!("/v1/integrations/connections/{connection}")).bearer_auth(&admin))
        .await
        .expect(204);
    let hooks = eventually("both integration events", || async {
        let got: Vec<_> =
            fake.received_requests().await.unwrap().into_iter().filter(|r| r.url.path() == "/hook").collect();
        (got.len() >= 2).then_some(got)
    })
    .await;
    let mut types = Vec::new();
    for request in &hooks {
        let body = assert_signed(request, &[&secret]);
        assert_eq!(body["data"]["connection_id"], connection.as_str());
        assert_eq!(body["data"]["provider"], "postmark");
        assert!(!String::from_utf8_lossy(&request.body).contains(canary), "credentials never leave");
        types.push(body["type"].as_str().unwrap().to_owned());
    }
    types.sort();
    assert_eq!(types, ["integration.connected", "integration.disconnected"]);
    let connected_event = hooks.iter().find(|r| String::from_utf8_lossy(&r.body).contains("integration.connected"));
    let body: Value = serde_json::from_slice(&connected_event.unwrap().body).unwrap();
    assert_eq!(body["data"]["health_check"]["outcome"], "healthy");
    attempted(&app, &admin, &endpoint, 1).await;
}

#[tokio::test]
async fn a_refused_update_changes_nothing_and_deleting_an_endpoint_removes_its_log() {
    let app = spawn_app_with(webhook_settings).await;
    let admin = app.admin().await;
    let receiver = receiver(200).await;
    let (endpoint, _) =
        create_endpoint(&app, &admin, &format!("{}/hook", receiver.uri()), &["integration.connected"]).await;
    for body in [
        json!({"events": ["api_key.created", "nope"]}),
        json!({"url": "http://10.1.2.3/", "events": ["api_key.created"]}),
        json!({"status": "paused"}),
    ] {
        let refused = app
            .send(
                app.request(Method::PATCH, &format!("/v1/webhook-endpoints/{endpoint}"))
                    .bearer_auth(&admin)
                    .json(&body),
            )
            .await;
        assert_eq!(refused.status.as_u16(), 400, "{body}");
    }
    let shown = app.get(&format!("/v1/webhook-endpoints/{endpoint}"), &admin).await;
    assert_eq!(shown.expect(200)["events"], json!(["integration.connected"]), "a refused update changes nothing");

    app.send(app.request(Method::POST, &format!("/v1/webhook-endpoints/{endpoint}/test")).bearer_auth(&admin))
        .await
        .expect(202);
    attempted(&app, &admin, &endpoint, 1).await;
    app.send(app.request(Method::DELETE, &format!("/v1/webhook-endpoints/{endpoint}")).bearer_auth(&admin))
        .await
        .expect(204);
    assert_eq!(count(&app, "webhook_deliveries").await, 0);
    app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries"), &admin)
        .await
        .expect_error(404, "resource_missing");
}

/// Mounts Postmark's `GET /server` answering `status` and the webhook receiver, replacing
/// whatever the fake answered before.
async fn postmark_answers(fake: &MockServer, status: u16) {
    fake.reset().await;
    let token = wiremock::matchers::header("X-Postmark-Server-Token", crate::integrations::CANARY);
    let body = json!({"ErrorCode": 10, "Message": "Request does not contain a valid Server token."});
    let answer = if status == 200 {
        ResponseTemplate::new(200).set_body_json(json!({"ID": 1, "Name": "Acme"}))
    } else {
        ResponseTemplate::new(status).set_body_json(body)
    };
    Mock::given(method("GET")).and(path("/server")).and(token).respond_with(answer).mount(fake).await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(200)).mount(fake).await;
}

async fn hook_types(fake: &MockServer, secret: &str) -> Vec<String> {
    let requests = fake.received_requests().await.unwrap();
    let hooks = requests.iter().filter(|r| r.url.path() == "/hook");
    hooks.map(|r| assert_signed(r, &[secret])["type"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn scheduled_health_checks_announce_a_failure_and_the_recovery_once_each() {
    let fake = MockServer::start().await;
    postmark_answers(&fake, 200).await;
    let app = crate::integrations::app_with_postmark(&fake, |s| {
        webhook_settings(s);
        s.jobs.health_check_interval_secs = 1;
    })
    .await;
    let admin = app.admin().await;
    let url = format!("{}/hook", fake.uri());
    let events = ["integration.health_check.failed", "integration.health_check.recovered"];
    let (_, secret) = create_endpoint(&app, &admin, &url, &events).await;
    let body = crate::integrations::connect_body(crate::integrations::CANARY);
    let connection = app.post("/v1/integrations/providers/postmark/connect", &admin, &body).await;
    let connection = connection.expect(201)["id"].as_str().unwrap().to_owned();

    // The provider starts refusing the token: the next scheduled check fails, once announced.
    postmark_answers(&fake, 401).await;
    let failed = eventually("the failure event", || async {
        let requests = fake.received_requests().await.unwrap();
        requests.into_iter().find(|r| r.url.path() == "/hook")
    })
    .await;
    let body = assert_signed(&failed, &[&secret]);
    assert_eq!(body["type"], "integration.health_check.failed");
    assert_eq!(body["data"]["connection_id"], connection.as_str());
    assert_eq!(body["data"]["health_check"]["outcome"], "invalid_credentials");

    // It works again: one recovery event, and no repeat of the failure in between.
    postmark_answers(&fake, 200).await;
    eventually("the recovery event", || async {
        let types = hook_types(&fake, &secret).await;
        (!types.is_empty()).then_some(())
    })
    .await;
    let seen = count(&app, "integration_health_checks").await;
    eventually("two more healthy checks", || async {
        (count(&app, "integration_health_checks").await >= seen + 2).then_some(())
    })
    .await;
    assert_eq!(hook_types(&fake, &secret).await, ["integration.health_check.recovered"], "announced once");
}

#[tokio::test]
async fn a_queued_delivery_wakes_the_worker_without_waiting_for_its_poll() {
    // The worker looks on its own once at start and then not for an hour: only the wake that
    // queuing a delivery sends (in-process on SQLite, `pg_notify` at commit on PostgreSQL) can
    // get these out within the test's deadline.
    let app = spawn_app_with(|s| {
        webhook_settings(s);
        s.jobs.poll_interval_ms = 3_600_000;
    })
    .await;
    let admin = app.admin().await;
    let receiver = receiver(204).await;
    let url = format!("{}/hook", receiver.uri());
    let (endpoint, _) = create_endpoint(&app, &admin, &url, &["api_key.created"]).await;

    let test =
        app.send(app.request(Method::POST, &format!("/v1/webhook-endpoints/{endpoint}/test")).bearer_auth(&admin));
    let id = test.await.expect(202)["message_id"].as_str().unwrap().to_owned();
    // A change's event, from the outbox of another store, wakes it too.
    app.key(&admin, key_body("Wakes the worker", "live")).await;
    let received = eventually("both deliveries", || async {
        let received = receiver.received_requests().await.unwrap();
        (received.len() >= 2).then_some(received)
    })
    .await;
    let ids: Vec<String> =
        received.iter().map(|r| r.headers.get("webhook-id").unwrap().to_str().unwrap().to_owned()).collect();
    assert!(ids.contains(&id), "{ids:?}");
    let kinds: Vec<Value> =
        received.iter().map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["type"].clone()).collect();
    assert!(kinds.contains(&json!("api_key.created")), "{kinds:?}");
    assert_eq!(received.len(), 2, "each once");
}

/// A receiver that holds every request until `wanted` are in flight at once (or `hold` has
/// passed), then answers 204; it reports the most it saw in flight together.
async fn gathering_receiver(wanted: usize, hold: Duration) -> (String, tokio::sync::watch::Receiver<usize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (peak, peak_seen) = tokio::sync::watch::channel(0usize);
    let peak = std::sync::Arc::new(peak);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            tokio::spawn(async move {
                // The request: headers, then a body of content-length bytes.
                let mut seen = Vec::new();
                let mut buffer = [0u8; 4096];
                let header_end = loop {
                    let n = stream.read(&mut buffer).await.unwrap();
                    assert!(n > 0, "the request ended early");
                    seen.extend_from_slice(&buffer[..n]);
                    if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                };
                let head = String::from_utf8_lossy(&seen[..header_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                while seen.len() < header_end + length {
                    let n = stream.read(&mut buffer).await.unwrap();
                    assert!(n > 0, "the body ended early");
                    seen.extend_from_slice(&buffer[..n]);
                }
                let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                peak.send_modify(|p| *p = (*p).max(now));
                let mut watching = peak.subscribe();
                let _ = tokio::time::timeout(hold, watching.wait_for(|p| *p >= wanted)).await;
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                let answer = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                stream.write_all(answer).await.unwrap();
            });
        }
    });
    (url, peak_seen)
}

#[tokio::test]
async fn the_worker_delivers_several_at_once() {
    // With one delivery at a time, the receiver would hold the first for 10 s and never see a
    // second while it waits.
    let app = spawn_app_with(|s| {
        webhook_settings(s);
        s.jobs.concurrency = 3;
        s.webhooks.timeout_secs = 30;
    })
    .await;
    let admin = app.admin().await;
    let (url, peak) = gathering_receiver(3, Duration::from_secs(10)).await;
    let (endpoint, _) = create_endpoint(&app, &admin, &url, &["api_key.created"]).await;
    for _ in 0..3 {
        let test = app.request(Method::POST, &format!("/v1/webhook-endpoints/{endpoint}/test")).bearer_auth(&admin);
        app.send(test).await.expect(202);
    }
    let log = eventually("three deliveries", || async {
        let log = deliveries(&app, &admin, &endpoint).await;
        (log.iter().filter(|d| d["state"] == "succeeded").count() == 3).then_some(log)
    })
    .await;
    assert!(log.iter().all(|d| d["attempts"] == 1), "{log:#?}");
    assert_eq!(*peak.borrow(), 3, "the three deliveries were in flight together");
}

#[tokio::test]
async fn a_delivery_that_outlives_its_jobs_lease_is_sent_once() {
    // The receiver holds the delivery for four leases. Without the worker's heartbeat the job
    // would be claimed again when its lease ended, and a second copy would reach the receiver
    // while it holds the first (which then answers at once).
    let app = spawn_app_with(|s| {
        webhook_settings(s);
        s.jobs.lease_secs = 1;
        s.jobs.poll_interval_ms = 50;
        s.webhooks.timeout_secs = 30;
    })
    .await;
    let admin = app.admin().await;
    let (url, peak) = gathering_receiver(2, Duration::from_secs(4)).await;
    let (endpoint, _) = create_endpoint(&app, &admin, &url, &["api_key.created"]).await;
    let test = app.request(Method::POST, &format!("/v1/webhook-endpoints/{endpoint}/test")).bearer_auth(&admin);
    app.send(test).await.expect(202);
    let log = eventually("the delivery", || async {
        let log = deliveries(&app, &admin, &endpoint).await;
        (log.iter().any(|d| d["state"] == "succeeded")).then_some(log)
    })
    .await;
    assert_eq!(*peak.borrow(), 1, "one copy in flight, never two");
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["attempts"], 1, "one attempt: {log:#?}");
    let filter = JobFilter { kind: Some(JobKind::WebhookDelivery), ..JobFilter::default() };
    let jobs = app.db.jobs().list(&filter, &PageRequest::new(Some(10), None).unwrap()).await.unwrap().items;
    assert_eq!(
        jobs.iter().map(|j| (j.attempts, j.state)).collect::<Vec<_>>(),
        [(1, JobState::Succeeded)],
        "claimed once"
    );
}
