//! Racing requests through the HTTP API, on whichever database the run uses (SQLite, or
//! PostgreSQL when `OTESSE_TEST_POSTGRES_URL` is set): creates at the 25-key limit (K7) and
//! rotations of one key (K12). Every racer is a real HTTP request to a server with two workers.

use serde_json::{Value, json};

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

/// Ten rotations of one key at once, each with its own name and the old key's end an hour
/// away: one wins, the others are told the key was already rotated. The old key has one
/// successor and its revocation is scheduled once, at the winner's time.
#[tokio::test]
async fn concurrent_rotations_of_one_key_make_one_successor() {
    let app = spawn_app_with(|s| s.rate_limit.key_creation_requests = 1000).await;
    let admin = app.admin().await;
    let (old_key, old_id) = app.key(&admin, key_body("Backend", "live")).await;
    let path = format!("/v1/api-keys/{old_id}/rotate");
    let in_an_hour = chrono::Utc::now() + chrono::Duration::hours(1);
    let bodies = (0..10)
        .map(|n| {
            let at = in_an_hour + chrono::Duration::seconds(n);
            json!({"name": format!("Backend v{n}"), "revoke_old_at": at.to_rfc3339()})
        })
        .collect();
    let answers = race(&app, &admin, &path, bodies).await;

    assert_eq!(count(&answers, 201, None), 1, "{answers:?}");
    assert_eq!(count(&answers, 409, Some("key_already_rotated")), 9, "{answers:?}");
    let winner = &answers.iter().find(|(status, _)| *status == 201).unwrap().1;
    let winner_name = winner["name"].as_str().unwrap();
    let scheduled = in_an_hour + chrono::Duration::seconds(winner_name["Backend v".len()..].parse().unwrap());

    let listed = keys(&app, &admin).await;
    assert_eq!(listed.len(), 2, "no losing racer left a key: {listed:?}");
    let successors: Vec<_> = listed.iter().filter(|key| key["rotated_from"] == old_id.as_str()).collect();
    assert_eq!(successors.len(), 1);
    assert_eq!(successors[0]["id"], winner["id"]);
    let old = listed.iter().find(|key| key["id"] == old_id.as_str()).unwrap();
    let revoked_at: chrono::DateTime<chrono::Utc> = old["revoked_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(revoked_at.timestamp(), scheduled.timestamp(), "scheduled once, at the winner's time");
    let rotations = app.get("/v1/integrations/audit-log?action=api_key.rotated", &admin).await;
    assert_eq!(rotations.expect(200)["data"].as_array().unwrap().len(), 1);
    // Both keys work until the scheduled end.
    app.get("/v1/whoami", &old_key).await.expect(200);
    app.get("/v1/whoami", winner["key"].as_str().unwrap()).await.expect(200);

    // Once the successor is revoked, the old key may be rotated again (a leaked successor is
    // replaced from the key still in use).
    let successor = winner["id"].as_str().unwrap();
    app.post(&format!("/v1/api-keys/{successor}/revoke"), &admin, &json!({})).await.expect(200);
    let again = app.post(&path, &admin, &json!({"name": "Backend again"})).await;
    assert_eq!(again.expect(201)["rotated_from"], old_id.as_str());
}

/// Ten rotations at once that each end the old key now: one wins; the others are refused as
/// rotating a key already rotated, or no longer active (which one depends on whether a loser
/// read the clock before the winner's end of the old key: both are true).
#[tokio::test]
async fn concurrent_rotations_that_end_the_old_key_now_make_one_successor() {
    let app = spawn_app_with(|s| s.rate_limit.key_creation_requests = 1000).await;
    let admin = app.admin().await;
    let (old_key, old_id) = app.key(&admin, key_body("Backend", "live")).await;
    let path = format!("/v1/api-keys/{old_id}/rotate");
    let bodies =
        (0..10).map(|n| json!({"name": format!("Backend v{n}"), "revoke_old_at": "2000-01-01T00:00:00Z"})).collect();
    let answers = race(&app, &admin, &path, bodies).await;

    assert_eq!(count(&answers, 201, None), 1, "{answers:?}");
    let refused = count(&answers, 409, Some("key_not_active")) + count(&answers, 409, Some("key_already_rotated"));
    assert_eq!(refused, 9, "{answers:?}");
    let listed = keys(&app, &admin).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let active: Vec<_> = listed.iter().filter(|key| key["status"] == "active").collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["rotated_from"], old_id.as_str());
    assert_eq!(
        app.get("/v1/whoami", &old_key).await.expect_error(401, "api_key_revoked"),
        "This API key has been revoked."
    );
}
