//! Stripe's resources (I11) and inbound webhooks (W4): endpoints with sealed signing secrets,
//! the status view, and deliveries checked, de-duplicated and stored.

use otesse_crypto::stripe_signature as sign;
use otesse_server::config::ProviderSettings;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, captured_logs, spawn_app_with};

const SIGNING_SECRET: &str = "whsec_canary0c2d9e41b7a5f3";

/// A fake Stripe answering `GET /v1/balance` as the real one does.
async fn fake_stripe() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .and(header("Authorization", "Bearer sk_test_stripe"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "balance", "available": [], "livemode": false})),
        )
        .mount(&server)
        .await;
    server
}

/// An app with Stripe connected: `(app, admin session, connection id, fake)`.
async fn connected_stripe() -> (TestApp, String, String, MockServer) {
    let fake = fake_stripe().await;
    let uri = fake.uri();
    let app = spawn_app_with(move |s| {
        s.providers.insert("stripe".into(), ProviderSettings { base_url: Some(uri), ..Default::default() });
        s.public_url = Some("https://hooks.example.test/".into());
    })
    .await;
    let admin = app.admin().await;
    let body = json!({"credentials": {"api_key": "sk_test_stripe"}});
    let connected = app.post("/v1/integrations/providers/stripe/connect", &admin, &body).await;
    let id = connected.expect(201)["id"].as_str().unwrap().to_owned();
    (app, admin, id, fake)
}

fn event(id: &str) -> String {
    json!({"id": id, "object": "event", "type": "charge.succeeded", "livemode": false, "created": 1_764_000_000,
           "data": {"object": {"id": "ch_1", "amount": 2000}}})
    .to_string()
}

async fn deliver(app: &TestApp, endpoint: &str, body: &str, signature: Option<String>) -> crate::helpers::Answer {
    let mut request = app
        .request(Method::POST, &format!("/v1/integrations/stripe/webhooks/{endpoint}"))
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    app.send(request).await
}

/// The stored secret columns, as bytes.
async fn sealed_secrets(app: &TestApp) -> Vec<Vec<u8>> {
    use sea_orm::{ConnectionTrait, Statement};
    let rows = app
        .raw
        .query_all_raw(Statement::from_string(
            app.raw.get_database_backend(),
            "SELECT secret_ciphertext FROM stripe_webhook_endpoints",
        ))
        .await
        .unwrap();
    assert!(!rows.is_empty());
    rows.iter().map(|row| row.try_get::<Vec<u8>>("", "secret_ciphertext").unwrap()).collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn add_endpoint(app: &TestApp, admin: &str, connection: &str) -> Value {
    let base = format!("/v1/integrations/connections/{connection}/webhook-endpoints");
    let body = json!({"events": ["charge.succeeded", "invoice.paid"], "signing_secret": SIGNING_SECRET,
                      "description": "Payments"});
    app.post(&base, admin, &body).await.expect(201).clone()
}

#[tokio::test]
async fn endpoints_keep_their_secret_sealed_and_deliveries_are_verified_and_stored_once() {
    let (app, admin, connection, _fake) = connected_stripe().await;
    let endpoint = add_endpoint(&app, &admin, &connection).await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    assert_eq!(endpoint["url"], format!("https://hooks.example.test/v1/integrations/stripe/webhooks/{id}"));
    assert_eq!(endpoint["events"], json!(["charge.succeeded", "invoice.paid"]));
    assert!(!endpoint.to_string().contains(SIGNING_SECRET), "the secret is never shown");

    // A signed delivery is stored; Stripe's retry of it is acknowledged, not stored again.
    let body = event("evt_1");
    let signature = sign(SIGNING_SECRET, now(), body.as_bytes());
    let first = deliver(&app, &id, &body, Some(signature.clone())).await;
    assert_eq!(first.expect(200)["duplicate"], false);
    let retry = deliver(&app, &id, &body, Some(signature)).await;
    assert_eq!(retry.expect(200)["duplicate"], true);

    let events = app.get(&format!("/v1/integrations/connections/{connection}/webhook-events"), &admin).await;
    let events = events.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_id"], "evt_1");
    assert_eq!(events[0]["type"], "charge.succeeded");
    assert_eq!(events[0]["payload"]["data"]["object"]["amount"], 2000);

    let status = app.get(&format!("/v1/integrations/connections/{connection}/status"), &admin).await;
    let status = status.expect(200).clone();
    assert_eq!(status["webhook_endpoints"], 1);
    assert_eq!(status["connection"]["health"]["status"], "healthy");
    assert!(status["last_event_at"].is_string());

    let listed = app.get(&format!("/v1/integrations/connections/{connection}/webhook-endpoints"), &admin).await;
    assert_eq!(listed.expect(200)["data"][0]["last_event_at"], status["last_event_at"]);

    // The secret is in the database only sealed, and in no log line.
    assert!(
        !sealed_secrets(&app)
            .await
            .iter()
            .any(|s| s.windows(SIGNING_SECRET.len()).any(|w| w == SIGNING_SECRET.as_bytes())),
        "the signing secret is stored encrypted"
    );
    assert!(!captured_logs().contains(SIGNING_SECRET));

    let audit = app.get("/v1/integrations/audit-log?provider=stripe&action=integration.updated", &admin).await;
    assert_eq!(audit.expect(200)["data"][0]["details"]["change"], "webhook_endpoint.added");
}

#[tokio::test]
async fn bad_deliveries_are_refused_and_store_nothing() {
    let (app, admin, connection, _fake) = connected_stripe().await;
    let id = add_endpoint(&app, &admin, &connection).await["id"].as_str().unwrap().to_owned();
    let body = event("evt_bad");
    let good = sign(SIGNING_SECRET, now(), body.as_bytes());
    let cases = [
        ("missing", None),
        ("garbage", Some("nonsense".to_owned())),
        ("wrong secret", Some(sign("whsec_other", now(), body.as_bytes()))),
        ("stale", Some(sign(SIGNING_SECRET, now() - 600, body.as_bytes()))),
        ("future", Some(sign(SIGNING_SECRET, now() + 600, body.as_bytes()))),
        ("other body", Some(sign(SIGNING_SECRET, now(), event("evt_other").as_bytes()))),
    ];
    for (case, signature) in cases {
        let message = deliver(&app, &id, &body, signature).await.expect_error(400, "webhook_signature_invalid");
        assert!(!message.contains(SIGNING_SECRET), "{case}: {message}");
    }
    deliver(&app, &id, "not json", Some(good.clone())).await.expect_error(400, "invalid_body");
    deliver(&app, &uuid::Uuid::now_v7().to_string(), &body, Some(good.clone()))
        .await
        .expect_error(404, "resource_missing");
    deliver(&app, "nope", &body, Some(good.clone())).await.expect_error(404, "resource_missing");
    // Over the body limit: the one error shape, not actix's plain-text answer (fixed when the
    // document's 413 was checked against the handler).
    let huge = format!(r#"{{"id": "evt_huge", "type": "charge.succeeded", "pad": "{}"}}"#, "x".repeat(70 * 1024));
    let message = deliver(&app, &id, &huge, Some(good)).await.expect_error(413, "payload_too_large");
    assert!(!message.contains("xxxx"), "{message}");

    let events = app.get(&format!("/v1/integrations/connections/{connection}/webhook-events"), &admin).await;
    assert_eq!(events.expect(200)["data"], json!([]), "nothing unverified is stored");
}

#[tokio::test]
async fn endpoint_input_is_checked_and_endpoints_go_with_the_connection() {
    let (app, admin, connection, _fake) = connected_stripe().await;
    let base = format!("/v1/integrations/connections/{connection}/webhook-endpoints");
    let bad = [
        json!({"events": [], "signing_secret": SIGNING_SECRET}),
        json!({"events": ["Charge.Succeeded"], "signing_secret": SIGNING_SECRET}),
        json!({"events": ["charge.succeeded"], "signing_secret": "sk_test_not_a_secret"}),
        json!({"events": ["charge.succeeded"], "signing_secret": SIGNING_SECRET, "description": "a\u{7}b"}),
    ];
    for body in bad {
        let message = app.post(&base, &admin, &body).await.expect_error(400, "invalid_parameter");
        assert!(!message.contains("sk_test_not_a_secret"), "{message}");
    }
    app.post(&base, &admin, &json!({"events": ["*"], "signing_secret": SIGNING_SECRET, "url": "https://x"}))
        .await
        .expect_error(400, "invalid_body");
    let listed = app.get(&base, &admin).await;
    assert_eq!(listed.expect(200)["data"], json!([]), "refused input leaves nothing");

    // Only Stripe has webhook endpoints.
    let unknown = format!("/v1/integrations/connections/{}/webhook-endpoints", uuid::Uuid::now_v7());
    app.get(&unknown, &admin).await.expect_error(404, "resource_missing");

    let id = add_endpoint(&app, &admin, &connection).await["id"].as_str().unwrap().to_owned();
    app.send(app.request(Method::DELETE, &format!("{base}/{}", uuid::Uuid::now_v7())).bearer_auth(&admin))
        .await
        .expect_error(404, "resource_missing");
    let second = add_endpoint(&app, &admin, &connection).await["id"].as_str().unwrap().to_owned();
    app.send(app.request(Method::DELETE, &format!("{base}/{id}")).bearer_auth(&admin)).await.expect(204);
    assert_eq!(app.get(&base, &admin).await.expect(200)["data"].as_array().unwrap().len(), 1);

    // Disconnecting deletes the endpoints and their secrets: deliveries find nothing.
    app.send(app.request(Method::DELETE, &format!("/v1/integrations/connections/{connection}")).bearer_auth(&admin))
        .await
        .expect(204);
    let body = event("evt_after");
    deliver(&app, &second, &body, Some(sign(SIGNING_SECRET, now(), body.as_bytes())))
        .await
        .expect_error(404, "resource_missing");
}
