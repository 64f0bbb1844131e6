//! The verification API for the platform's services (S1): `POST /v1/keys/verify` with a
//! service token answers 200 with `valid`, a `code` and Otesse's own message for any
//! well-formed request, describes a known key, and writes a verified call to the key's usage
//! log with the method and path the service names. Refused: no token, an organization's key or
//! session in its place, a revoked token, unknown scopes, malformed fields.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Answer, TestApp, key_body, spawn_app, spawn_app_with};

async fn verify(app: &TestApp, token: &str, body: Value) -> Answer {
    app.send(app.request(Method::POST, "/v1/keys/verify").bearer_auth(token).json(&body)).await
}

async fn check(app: &TestApp, token: &str, body: Value) -> Value {
    verify(app, token, body).await.expect(200).clone()
}

#[tokio::test]
async fn a_service_checks_keys_and_each_answer_says_why_in_otesse_s_words() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (service, _) = app.service_token("bookings").await;
    let (key, id) = app.key(&admin, key_body("Bookings backend", "live")).await;

    let ok = check(
        &app,
        &service,
        json!({"key": key, "scopes": ["customers.read"], "method": "get", "path": "/v1/bookings", "ip": "203.0.113.7"}),
    )
    .await;
    assert_eq!((ok["valid"].as_bool(), ok["code"].as_str()), (Some(true), Some("ok")));
    assert_eq!(ok["key"]["id"], id.as_str());
    assert_eq!(ok["key"]["name"], "Bookings backend");
    assert_eq!(ok["key"]["environment"], "live");
    assert_eq!(ok["key"]["scopes"], json!(["customers.read", "customers.write"]));
    let me = app.get("/v1/me", &admin).await;
    assert_eq!(ok["key"]["organization_id"], me.expect(200)["organization"]["id"]);
    assert_eq!(ok["ratelimit"]["limit"], 100);
    assert_eq!(ok["ratelimit"]["remaining"], 99, "a check is one request of the key");

    let scope = check(&app, &service, json!({"key": key, "scopes": ["bookings.read"], "path": "/v1/bookings"})).await;
    assert_eq!((scope["valid"].as_bool(), scope["code"].as_str()), (Some(false), Some("insufficient_scope")));
    assert_eq!(scope["message"], "This API key is missing the bookings.read scope.");
    assert_eq!(scope["key"]["id"], id.as_str(), "a known key is described");

    let unknown = format!("erp_live_{}", "Q".repeat(40));
    for presented in [unknown.as_str(), "not a key"] {
        let answer = check(&app, &service, json!({"key": presented})).await;
        assert_eq!((answer["valid"].as_bool(), answer["code"].as_str()), (Some(false), Some("not_found")));
        assert!(answer["key"].is_null() && answer["ratelimit"].is_null());
    }
    let answer = check(&app, &service, json!({"key": unknown})).await;
    assert_eq!(answer["message"], "Invalid API key provided.");

    // Expired (before anything cached it), then revoked.
    let (expiring, expiring_id) = app.key(&admin, key_body("Expiring", "live")).await;
    let past = Utc::now() - Duration::minutes(1);
    let changed = app
        .sql(
            "UPDATE api_keys SET expires_at = $1 WHERE id = $2",
            vec![past.into(), Uuid::parse_str(&expiring_id).unwrap().into()],
        )
        .await;
    assert_eq!(changed, 1);
    let expired = check(&app, &service, json!({"key": expiring})).await;
    assert_eq!(
        (expired["code"].as_str(), expired["message"].as_str()),
        (Some("expired"), Some("This API key has expired."))
    );
    assert_eq!(expired["key"]["id"], expiring_id.as_str());

    let (revoking, revoking_id) = app.key(&admin, key_body("Revoked", "live")).await;
    assert_eq!(check(&app, &service, json!({"key": revoking})).await["code"], "ok", "cached as active first");
    app.post(&format!("/v1/api-keys/{revoking_id}/revoke"), &admin, &json!({})).await.expect(200);
    let revoked = check(&app, &service, json!({"key": revoking})).await;
    assert_eq!(
        (revoked["valid"].as_bool(), revoked["code"].as_str(), revoked["message"].as_str()),
        (Some(false), Some("revoked"), Some("This API key has been revoked."))
    );
    // The answer Otesse itself gives that key, for the service to relay as it is.
    let own = app.get("/v1/whoami", &revoking).await;
    assert_eq!(own.status, 401);
    let relayed = &revoked["error"];
    assert_eq!(relayed["status"], 401);
    assert_eq!(
        json!({"error": {"type": relayed["type"], "code": relayed["code"], "message": relayed["message"]}}),
        own.body
    );
    assert!(relayed["retry_after"].is_null());
    assert!(ok["error"].is_null(), "a valid key has no error");

    // The service's calls are in the key's usage log, as the service's requests.
    app.flush_usage().await;
    let detail = app.get(&format!("/v1/api-keys/{id}"), &admin).await.expect(200).clone();
    let recent = detail["recent_requests"].as_array().unwrap();
    assert_eq!(recent.len(), 2, "{recent:?}");
    assert_eq!((recent[0]["method"].as_str(), recent[0]["endpoint"].as_str()), (Some("POST"), Some("/v1/bookings")));
    assert_eq!(recent[0]["status"], 403);
    assert_eq!((recent[1]["method"].as_str(), recent[1]["endpoint"].as_str()), (Some("GET"), Some("/v1/bookings")));
    assert_eq!((recent[1]["status"].as_u64(), recent[1]["ip"].as_str()), (Some(200), Some("203.0.113.7")));
    assert!(detail["last_used_at"].is_string(), "Last used shows use across the platform");
}

#[tokio::test]
async fn the_key_s_allow_list_and_rate_limit_apply_as_they_do_at_otesse() {
    let app = spawn_app_with(|s| {
        s.rate_limit.key_requests = 2;
        s.rate_limit.key_period_secs = 3600;
    })
    .await;
    let admin = app.admin().await;
    let (service, _) = app.service_token("bookings").await;
    let mut body = key_body("Office only", "live");
    // The office, and this test's own address (to call Otesse with the key at the end).
    body["allowed_ips"] = json!(["198.51.100.0/24", "127.0.0.1"]);
    let (key, id) = app.key(&admin, body).await;

    for ip in [Some("203.0.113.7"), None] {
        let answer = check(&app, &service, json!({"key": key, "ip": ip})).await;
        assert_eq!(answer["code"], "ip_not_allowed", "{ip:?}");
        assert_eq!(answer["message"], "This API key may not be used from this IP address.");
        assert!(answer["ratelimit"].is_null(), "a refused address spends nothing");
    }
    let from_office = json!({"key": key, "ip": "198.51.100.20"});
    assert_eq!(check(&app, &service, from_office.clone()).await["ratelimit"]["remaining"], 1);
    assert_eq!(check(&app, &service, from_office.clone()).await["ratelimit"]["remaining"], 0);
    let limited = check(&app, &service, from_office).await;
    assert_eq!((limited["valid"].as_bool(), limited["code"].as_str()), (Some(false), Some("rate_limited")));
    assert!(limited["message"].as_str().unwrap().starts_with("Too many requests. Retry in "), "{limited}");
    assert_eq!(limited["key"]["id"], id.as_str());
    // The budget is the key's own, at Otesse too.
    app.get("/v1/whoami", &key).await.expect_error(429, "rate_limited");
}

#[tokio::test]
async fn only_an_active_service_token_may_ask_and_bad_input_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (service, tokens) = app.service_token("bookings").await;
    let (key, id) = app.key(&admin, key_body("Backend", "live")).await;
    let body = json!({"key": key});

    let anonymous = app.send(app.request(Method::POST, "/v1/keys/verify").json(&body)).await;
    anonymous.expect_error(401, "missing_credentials");
    for wrong in [key.as_str(), admin.as_str(), &format!("ots_svc_{}", "x".repeat(40)), "ots_svc_short"] {
        let message = verify(&app, wrong, body.clone()).await.expect_error(401, "service_token_invalid");
        assert!(!message.contains(wrong), "{message}");
    }
    // Revoked before the server ever saw it.
    let (revoked, _) = app.service_token("retired").await;
    let listed = tokens.list().await.unwrap();
    let retired = listed.iter().find(|t| t.name == "retired").unwrap();
    tokens.revoke(retired.id).await.unwrap();
    verify(&app, &revoked, body.clone()).await.expect_error(401, "service_token_invalid");
    assert!(listed.iter().all(|t| !format!("{t:?}").contains(&service)), "listed without their secret");

    let cases = [
        (json!({"key": key, "scopes": ["bookings.fly"]}), "bookings.fly"),
        (json!({"key": key, "ip": "300.1.1.1"}), "300.1.1.1"),
        (json!({"key": key, "path": "relative"}), "relative"),
        (json!({"key": key, "method": "GE T"}), "GE T"),
        (json!({"key": key, "extra": 1}), "extra"),
        (json!({"scopes": []}), "scopes"),
        (json!([key]), "["),
    ];
    for (bad, sent) in cases {
        let answer = verify(&app, &service, bad.clone()).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.text);
        assert!(!answer.text.contains(&key), "the key is echoed: {}", answer.text);
        // Field names are the document's own words; values are never repeated.
        if !["[", "scopes", "extra"].contains(&sent) {
            assert!(!answer.error().1.contains(sent), "{}", answer.text);
        }
    }
    app.flush_usage().await;
    let detail = app.get(&format!("/v1/api-keys/{id}"), &admin).await.expect(200).clone();
    // Only the requests made with the key itself in place of a service token are its use.
    assert_eq!(detail["usage"]["total_requests"], 1, "{detail}");
    assert_eq!(detail["recent_requests"][0]["endpoint"], "/v1/keys/verify");
}

/// Reads the stream until an event named `name` arrives (or the deadline passes), returning
/// its data line.
async fn next_event(response: &mut reqwest::Response, buffer: &mut String, name: &str) -> String {
    next_event_with(response, buffer, name, |_| true).await
}

/// Reads the stream until an event named `name` whose data `wanted` accepts arrives.
async fn next_event_with(
    response: &mut reqwest::Response,
    buffer: &mut String,
    name: &str,
    wanted: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if event.lines().any(|line| line == format!("event: {name}")) {
                let data = event.lines().find_map(|line| line.strip_prefix("data: ")).unwrap_or_default();
                if wanted(data) {
                    return data.to_owned();
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no `{name}` event within 10 s; heard so far: {buffer:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended before a `{name}` event"));
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

fn key_hash(key: &str) -> String {
    use otesse_domain::ports::KeyHasher;
    otesse_crypto::Sha256KeyHasher.hash(key).0.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test]
async fn services_hear_each_revoked_and_rotated_out_key_as_it_happens() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (service, _) = app.service_token("bookings").await;
    let (revoking, revoking_id) = app.key(&admin, key_body("Revoked", "live")).await;
    let (rotating, rotating_id) = app.key(&admin, key_body("Rotated", "test")).await;

    let mut stream = app.request(Method::GET, "/v1/keys/invalidations").bearer_auth(&service).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    assert_eq!(next_event(&mut stream, &mut buffer, "ready").await, "{}");

    app.post(&format!("/v1/api-keys/{revoking_id}/revoke"), &admin, &json!({})).await.expect(200);
    let heard: Value = serde_json::from_str(&next_event(&mut stream, &mut buffer, "invalidated").await).unwrap();
    assert_eq!(heard, json!({"key_hash": key_hash(&revoking)}));
    // On PostgreSQL the process hears its own notice too and relays the hash once more: a
    // service may hear an invalidation twice, which costs it nothing. Skip to the next key's.
    let revoked_hash = key_hash(&revoking);

    // Rotated with a grace period: cached copies of the old key must learn its revocation time.
    let later = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let rotate = json!({"revoke_old_at": later});
    app.post(&format!("/v1/api-keys/{rotating_id}/rotate"), &admin, &rotate).await.expect(201);
    let not_the_revoked = |data: &str| !data.contains(&revoked_hash);
    let heard = next_event_with(&mut stream, &mut buffer, "invalidated", not_the_revoked).await;
    let heard: Value = serde_json::from_str(&heard).unwrap();
    assert_eq!(heard, json!({"key_hash": key_hash(&rotating)}));
    // The verification API tells when the old key stops.
    let old = check(&app, &service, json!({"key": rotating})).await;
    assert_eq!(old["code"], "ok");
    assert!(old["key"]["revoked_at"].as_str().is_some(), "{old}");
    assert!(!buffer.contains(&rotating) && !buffer.contains(&revoking), "the stream names hashes, never keys");
}

#[tokio::test]
async fn the_invalidation_stream_is_for_service_tokens_only() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (key, _) = app.key(&admin, key_body("Org key", "live")).await;
    let (_, tokens) = app.service_token("bookings").await;

    let anonymous = app.send(app.request(Method::GET, "/v1/keys/invalidations")).await;
    anonymous.expect_error(401, "missing_credentials");
    for (credential, code) in [(key.as_str(), "service_token_invalid"), (admin.as_str(), "service_token_invalid")] {
        let refused = app.send(app.request(Method::GET, "/v1/keys/invalidations").bearer_auth(credential)).await;
        refused.expect_error(401, code);
    }
    let in_query = app.send(app.request(Method::GET, &format!("/v1/keys/invalidations?api_key={key}"))).await;
    assert_eq!(in_query.status, 400, "a key in the query string is refused as everywhere");

    // Revoked before the server ever saw it.
    let (retired, _) = app.service_token("retired").await;
    let listed = tokens.list().await.unwrap();
    tokens.revoke(listed.iter().find(|t| t.name == "retired").unwrap().id).await.unwrap();
    let refused = app.send(app.request(Method::GET, "/v1/keys/invalidations").bearer_auth(&retired)).await;
    refused.expect_error(401, "service_token_invalid");
}
