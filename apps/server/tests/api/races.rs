//! Racing requests through the HTTP API, on whichever database the run uses (SQLite, or
//! PostgreSQL when `OTESSE_TEST_POSTGRES_URL` is set): creates at the 25-key limit (K7) and
//! rotations of one key (K12). Every racer is a real HTTP request to a server with two workers.

use serde_json::Value;

use crate::helpers::{TestApp, key_body, spawn_app_with};

/// Fires every body at `path` at once; returns each answer's status and body.
async fn race(app: &TestApp, session: &str, path: &str, bodies: Vec<Value>) -> Vec<(u16, Value)> {
    let requests = bodies.into_iter().map(|body| {
        let request = app.client.post(app.url(path)).bearer_auth(session).json(&body);
        async move {
            let response = request.send().await.expect("the server answered");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    });
    futures_util::future::join_all(requests).await
}

/// How many answers have `status` and, for errors, `code`.
fn count(answers: &[(u16, Value)], status: u16, code: Option<&str>) -> usize {
    answers.iter().filter(|(s, body)| *s == status && code.is_none_or(|c| body["error"]["code"] == c)).count()
}

async fn keys(app: &TestApp, session: &str) -> Vec<Value> {
    app.get("/v1/api-keys", session).await.expect(200)["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn fifty_racing_creates_at_the_limit_get_exactly_the_room_left() {
    let app = spawn_app_with(|s| s.rate_limit.key_creation_requests = 1000).await;
    let admin = app.admin().await;
    for n in 0..20 {
        app.create_key(&admin, key_body(&format!("existing {n}"), "live")).await.expect(201);
    }
    let bodies = (0..50).map(|n| key_body(&format!("racer {n}"), "live")).collect();
    let answers = race(&app, &admin, "/v1/api-keys", bodies).await;

    let created = count(&answers, 201, None);
    let refused = count(&answers, 409, Some("api_key_limit_reached"));
    assert_eq!((created, refused), (5, 45), "exactly the room left, the rest refused: {answers:?}");
    let listed = keys(&app, &admin).await;
    assert_eq!(listed.len(), 25, "refused creates left no row");
    assert!(listed.iter().all(|key| key["status"] == "active"));
    let audited = app.get("/v1/integrations/audit-log?action=api_key.created&limit=100", &admin).await;
    assert_eq!(audited.expect(200)["data"].as_array().unwrap().len(), 25, "one audit entry per key made");
}
