//! Idempotency keys (W1) on create routes: replays are byte for byte and run nothing, another
//! request under the same key is refused, keys are scoped to their caller, and a stored answer
//! holding a secret is sealed.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Answer, TestApp, key_body, spawn_app, spawn_app_with};

async fn post(app: &TestApp, path: &str, token: &str, key: &str, body: &Value) -> Answer {
    app.send(app.request(Method::POST, path).bearer_auth(token).header("Idempotency-Key", key).json(body)).await
}

#[tokio::test]
async fn a_retried_create_replays_the_first_answer_and_creates_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customers = app.customers_key(&admin, "live").await;
    let body = json!({"name": "Ada Lovelace", "email": "ada@example.test"});

    let first = post(&app, "/v1/customers", &customers, "create-ada-1", &body).await;
    first.expect(201);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = post(&app, "/v1/customers", &customers, "create-ada-1", &body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.text, first.text, "byte for byte");
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let listed = app.send(app.request(Method::GET, "/v1/customers").bearer_auth(&customers)).await;
    assert_eq!(listed.expect(200)["data"].as_array().unwrap().len(), 1, "one customer");

    // The same key with other parameters is refused, and runs nothing.
    let other = json!({"name": "Grace Hopper"});
    let message =
        post(&app, "/v1/customers", &customers, "create-ada-1", &other).await.expect_error(422, "idempotency_error");
    assert!(message.contains("same parameters"), "{message}");

    // A validation failure is an answer too: replayed as is.
    let bad = json!({"name": ""});
    let refused = post(&app, "/v1/customers", &customers, "bad-one", &bad).await;
    refused.expect_error(400, "invalid_parameter");
    let refused_again = post(&app, "/v1/customers", &customers, "bad-one", &bad).await;
    assert_eq!((refused_again.status, refused_again.text.clone()), (refused.status, refused.text.clone()));

    // Another caller's identical key is its own.
    let second_key = app.customers_key(&admin, "live").await;
    post(&app, "/v1/customers", &second_key, "create-ada-1", &body).await.expect(201);
    let listed = app.send(app.request(Method::GET, "/v1/customers").bearer_auth(&customers)).await;
    assert_eq!(listed.expect(200)["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_replayed_key_creation_returns_the_same_key_which_is_stored_sealed() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let body = key_body("Replayed", "live");
    let first = post(&app, "/v1/api-keys", &admin, "new-key-1", &body).await;
    let plaintext = first.expect(201)["key"].as_str().unwrap().to_owned();
    let again = post(&app, "/v1/api-keys", &admin, "new-key-1", &body).await;
    assert_eq!(again.expect(201)["key"], plaintext.as_str());
    assert_eq!(app.key_count(&admin).await, 1, "one key");

    use sea_orm::{ConnectionTrait, Statement};
    let rows = app
        .raw
        .query_all_raw(Statement::from_string(app.raw.get_database_backend(), "SELECT body FROM idempotency_records"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let sealed: Vec<u8> = rows[0].try_get("", "body").unwrap();
    assert!(!sealed.windows(plaintext.len()).any(|w| w == plaintext.as_bytes()), "the key is stored sealed");
}

#[tokio::test]
async fn bad_keys_and_concurrent_duplicates() {
    let app = spawn_app_with(|s| s.workers = Some(4)).await;
    let admin = app.admin().await;
    let customers = app.customers_key(&admin, "live").await;
    let body = json!({"name": "Concurrent"});
    post(&app, "/v1/customers", &customers, &"k".repeat(256), &body).await.expect_error(400, "invalid_parameter");
    post(&app, "/v1/customers", &customers, "", &body).await.expect_error(400, "invalid_parameter");

    let requests: Vec<_> = (0..10)
        .map(|_| {
            app.request(Method::POST, "/v1/customers")
                .bearer_auth(&customers)
                .header("Idempotency-Key", "same-for-all")
                .json(&body)
                .send()
        })
        .collect();
    let mut created_bodies = Vec::new();
    for response in futures_util::future::join_all(requests).await {
        let answer = Answer::read(response.unwrap()).await;
        match answer.status.as_u16() {
            201 => created_bodies.push(answer.text),
            409 => assert_eq!(answer.error().0, "idempotency_in_progress"),
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert!(!created_bodies.is_empty());
    assert!(created_bodies.windows(2).all(|w| w[0] == w[1]), "every 201 is the one answer, replayed");
    let listed = app.send(app.request(Method::GET, "/v1/customers").bearer_auth(&customers)).await;
    assert_eq!(listed.expect(200)["data"].as_array().unwrap().len(), 1, "the side effect happened once");
}
