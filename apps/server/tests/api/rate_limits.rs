//! Rate limits (W2): per key on keyed routes, per address on sign-in, per user on key
//! creation; 429 with `Retry-After` and the `RateLimit-*` headers, never a 5xx, and a limit
//! held in Redis when configured.

use otesse_server::config::RateLimitBackend;
use reqwest::Method;

use crate::helpers::{Answer, TestApp, key_body, spawn_app_with};

fn header(answer: &Answer, name: &str) -> Option<u64> {
    answer.headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

async fn whoami(app: &TestApp, key: &str) -> Answer {
    app.send(app.request(Method::GET, "/v1/whoami").bearer_auth(key)).await
}

#[tokio::test]
async fn a_key_gets_its_limit_then_429s_with_the_headers() {
    let app = spawn_app_with(|s| {
        s.rate_limit.key_requests = 5;
        s.rate_limit.key_period_secs = 60;
    })
    .await;
    let admin = app.admin().await;
    let (key, id) = app.key(&admin, key_body("limited", "live")).await;
    let (other, _) = app.key(&admin, key_body("other", "live")).await;

    let mut remaining = Vec::new();
    for _ in 0..5 {
        let answer = whoami(&app, &key).await;
        answer.expect(200);
        assert_eq!(header(&answer, "ratelimit-limit"), Some(5));
        remaining.push(header(&answer, "ratelimit-remaining").unwrap());
    }
    assert_eq!(remaining, [4, 3, 2, 1, 0]);

    let refused = whoami(&app, &key).await;
    let message = refused.expect_error(429, "rate_limited");
    assert!(message.contains("Retry in"), "{message}");
    let retry_after = header(&refused, "retry-after").expect("Retry-After");
    assert!((1..=12).contains(&retry_after), "one interval of 5 per minute: {retry_after}");
    assert_eq!(header(&refused, "ratelimit-remaining"), Some(0));
    assert!(header(&refused, "ratelimit-reset").unwrap() >= retry_after);

    // Another key has its own bucket.
    whoami(&app, &other).await.expect(200);

    // A burst far over the limit: refused, never a 5xx.
    let burst: Vec<_> = (0..60).map(|_| app.request(Method::GET, "/v1/whoami").bearer_auth(&key).send()).collect();
    for response in futures_util::future::join_all(burst).await {
        assert_eq!(response.unwrap().status(), 429);
    }

    // Refused requests are still requests of this key: they are in its usage log.
    app.flush_usage().await;
    let detail = app.get(&format!("/v1/api-keys/{id}"), &admin).await;
    assert_eq!(detail.expect(200)["usage"]["total_requests"], 66);
}

#[tokio::test]
async fn sign_in_and_key_creation_are_limited_too() {
    let app = spawn_app_with(|s| {
        s.rate_limit.sign_in_requests = 3;
        s.rate_limit.key_creation_requests = 2;
    })
    .await;
    let admin = app.admin().await; // one sign-in
    app.sign_in("admin@acme.test", "wrong password!").await.expect_error(401, "invalid_credentials");
    app.sign_in("nobody@acme.test", "wrong password!").await.expect_error(401, "invalid_credentials");
    let refused = app.sign_in("admin@acme.test", "wrong password!").await;
    refused.expect_error(429, "rate_limited");
    assert!(header(&refused, "retry-after").is_some());

    app.create_key(&admin, key_body("one", "live")).await.expect(201);
    app.create_key(&admin, key_body("two", "live")).await.expect(201);
    let refused = app.create_key(&admin, key_body("three", "live")).await;
    refused.expect_error(429, "rate_limited");
    assert_eq!(app.key_count(&admin).await, 2, "a refused creation creates nothing");
}

#[tokio::test]
#[cfg_attr(not(otesse_redis), ignore = "set OTESSE_TEST_REDIS_URL to run against Redis")]
async fn with_redis_the_limit_is_kept_in_redis() {
    let url = std::env::var("OTESSE_TEST_REDIS_URL").unwrap();
    let app = spawn_app_with(move |s| {
        s.rate_limit.backend = RateLimitBackend::Redis;
        s.rate_limit.redis_url = Some(url);
        s.rate_limit.key_requests = 3;
        s.rate_limit.key_period_secs = 60;
    })
    .await;
    let admin = app.admin().await;
    let (key, _) = app.key(&admin, key_body("redis", "live")).await;
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(whoami(&app, &key).await.status.as_u16());
        }
        statuses
    };
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn an_unreachable_redis_at_start_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let settings = otesse_server::config::Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_owned(),
        database_url: Some(format!("sqlite://{}", dir.path().join("otesse.db").display())),
        setup_token: Some("setup-token-for-this-test".to_owned().into()),
        rate_limit: otesse_server::config::RateLimitSettings {
            backend: RateLimitBackend::Redis,
            redis_url: None,
            ..Default::default()
        },
        ..Default::default()
    };
    let err = otesse_server::startup::Application::build(settings).await.unwrap_err();
    assert!(err.to_string().contains("OTESSE_RATE_LIMIT__REDIS_URL"), "{err}");
}

#[tokio::test]
async fn a_key_used_from_an_address_it_does_not_allow_spends_none_of_its_budget() {
    let app = spawn_app_with(|s| {
        s.rate_limit.key_requests = 2;
        s.rate_limit.key_period_secs = 3600;
    })
    .await;
    let admin = app.admin().await;
    let mut body = key_body("office only", "live");
    body["allowed_ips"] = serde_json::json!(["203.0.113.0/24"]);
    let (key, id) = app.key(&admin, body).await;
    // Five times the budget from the wrong address: refused for the address every time, never
    // for the rate, and nothing was counted against the key's owner.
    for _ in 0..10 {
        let refused = whoami(&app, &key).await;
        refused.expect_error(403, "ip_not_allowed");
        assert_eq!(header(&refused, "ratelimit-remaining"), None, "not charged, so no rate-limit headers");
    }
    // Still logged: they are requests made with the key.
    app.flush_usage().await;
    let detail = app.get(&format!("/v1/api-keys/{id}"), &admin).await;
    assert_eq!(detail.expect(200)["usage"]["total_requests"], 10);
}
