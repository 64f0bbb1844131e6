//! Retries against a fake (wiremock): which answers are retried, how long the client waits
//! (recorded through `sleep_with`, so nothing really waits), and the one `Idempotency-Key` a
//! create keeps across its retries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use otesse_client::generated::{CreateCustomerRequest, CustomerView};
use otesse_client::{Client, Error, RetryPolicy};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MS: Duration = Duration::from_millis(1);

fn policy() -> RetryPolicy {
    RetryPolicy { max_retries: 3, base_delay: 100 * MS, max_delay: 5_000 * MS }
}

/// A client of `fake` whose waits are recorded instead of slept.
fn client(fake: &MockServer, policy: RetryPolicy) -> (Client, Arc<Mutex<Vec<Duration>>>) {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let recorded = waits.clone();
    let client = Client::builder(format!("{}/v1", fake.uri()))
        .api_key("erp_live_fake0000000000000000000000000000000000")
        .retry(policy)
        .sleep_with(move |wait| {
            recorded.lock().unwrap().push(wait);
            std::future::ready(())
        })
        .build()
        .unwrap();
    (client, waits)
}

fn error_body(code: &str, kind: &str, message: &str) -> serde_json::Value {
    json!({"error": {"type": kind, "code": code, "message": message}})
}

fn customer_json() -> serde_json::Value {
    json!({
        "id": "0190a3f4-1c2b-7d3e-8f4a-5b6c7d8e9f00", "name": "Ada", "email": null, "phone": null,
        "environment": "live", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    })
}

fn ada() -> CreateCustomerRequest {
    CreateCustomerRequest { name: "Ada".into(), email: None, phone: None }
}

async fn requests(fake: &MockServer) -> Vec<wiremock::Request> {
    fake.received_requests().await.unwrap()
}

#[tokio::test]
async fn a_create_is_retried_after_429_and_503_with_one_idempotency_key() {
    let fake = MockServer::start().await;
    let limited = error_body("rate_limited", "rate_limit_error", "Too many requests.");
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "2").set_body_json(limited))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(503).set_body_json(error_body("service_unavailable", "api_error", "Busy.")))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(201).set_body_json(customer_json()))
        .with_priority(3)
        .mount(&fake)
        .await;
    let (client, waits) = client(&fake, policy());

    let made: CustomerView = client.customers().create(&ada()).await.unwrap();
    assert_eq!(made.name, "Ada");

    let requests = requests(&fake).await;
    assert_eq!(requests.len(), 3, "the 429, the 503, then the success");
    let keys: Vec<&str> =
        requests.iter().map(|r| r.headers.get("idempotency-key").unwrap().to_str().unwrap()).collect();
    let key = uuid::Uuid::parse_str(keys[0]).expect("a UUID");
    assert_eq!(key.get_version_num(), 4);
    assert!(keys.iter().all(|k| *k == keys[0]), "one key for every attempt: {keys:?}");
    assert!(requests.iter().all(|r| r.body == requests[0].body), "the same body every time");

    let waits = waits.lock().unwrap().clone();
    assert_eq!(waits.len(), 2);
    assert_eq!(waits[0], Duration::from_secs(2), "Retry-After: 2 is waited exactly");
    assert!(waits[1] <= 200 * MS, "the second retry's backoff is at most base * 2: {:?}", waits[1]);

    // A second logical create gets a key of its own.
    client.customers().create(&ada()).await.unwrap();
    let last = fake.received_requests().await.unwrap().pop().unwrap();
    assert_ne!(last.headers.get("idempotency-key").unwrap().to_str().unwrap(), keys[0]);
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_waits_the_cap() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120").set_body_json(error_body(
            "rate_limited",
            "rate_limit_error",
            "Slow down.",
        )))
        .mount(&fake)
        .await;
    let (client, waits) = client(&fake, RetryPolicy { max_retries: 1, ..policy() });

    let error = client.customers().get(uuid::Uuid::nil()).await.unwrap_err();
    let api = error.api().expect("the last 429");
    assert_eq!((api.status.as_u16(), api.code.as_str()), (429, "rate_limited"));
    assert_eq!(api.retry_after, Some(Duration::from_secs(120)), "the server's wish is kept in the error");
    assert_eq!(*waits.lock().unwrap(), vec![5_000 * MS]);
    assert_eq!(requests(&fake).await.len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_until_the_retries_run_out() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_json(error_body("internal_error", "api_error", "Oops.")))
        .mount(&fake)
        .await;
    let (client, waits) = client(&fake, policy());

    let error = client.whoami().await.unwrap_err();
    assert_eq!(error.api().map(|e| (e.status.as_u16(), e.code.as_str())), Some((500, "internal_error")));
    assert_eq!(requests(&fake).await.len(), 4, "the first attempt and 3 retries");
    let waits = waits.lock().unwrap().clone();
    assert_eq!(waits.len(), 3);
    for (retry, (wait, ceiling)) in waits.iter().zip([100, 200, 400]).enumerate() {
        assert!(*wait <= ceiling * MS, "retry {retry}: {wait:?} over {ceiling} ms");
    }
}

#[tokio::test]
async fn other_client_errors_are_never_retried() {
    for (status, code, kind) in [
        (400, "invalid_parameter", "invalid_request_error"),
        (401, "api_key_invalid", "authentication_error"),
        (403, "scope_missing", "permission_error"),
        (404, "resource_missing", "invalid_request_error"),
        (409, "idempotency_in_progress", "invalid_request_error"),
        (422, "idempotency_error", "invalid_request_error"),
    ] {
        let fake = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("X-Request-Id", "req-1")
                    .set_body_json(error_body(code, kind, "No.")),
            )
            .mount(&fake)
            .await;
        let (client, waits) = client(&fake, policy());

        let error = client.customers().create(&ada()).await.unwrap_err();
        let Error::Api(api) = error else { panic!("{status}: expected the server's error, got {error:?}") };
        assert_eq!((api.status.as_u16(), api.code.as_str(), api.kind.as_str()), (status, code, kind));
        assert_eq!((api.message.as_str(), api.request_id.as_deref()), ("No.", Some("req-1")));
        assert_eq!(requests(&fake).await.len(), 1, "{status} is not retried");
        assert!(waits.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_secret_already_shown_is_its_own_error_and_not_retried() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(409)
                .insert_header("Location", "/v1/api-keys/0190a3f4-1c2b-7d3e-8f4a-5b6c7d8e9f00")
                .insert_header("Idempotent-Replayed", "true")
                .set_body_json(error_body(
                    "idempotency_secret_shown",
                    "invalid_request_error",
                    "The answer held a secret, shown only once.",
                )),
        )
        .mount(&fake)
        .await;
    let (client, waits) = client(&fake, policy());

    let error = client.api_keys().rotate(uuid::Uuid::nil(), &Default::default()).await.unwrap_err();
    match &error {
        Error::SecretAlreadyShown { location, error } => {
            assert_eq!(location.as_deref(), Some("/v1/api-keys/0190a3f4-1c2b-7d3e-8f4a-5b6c7d8e9f00"));
            assert_eq!(error.status.as_u16(), 409);
        }
        other => panic!("expected SecretAlreadyShown, got {other:?}"),
    }
    assert!(error.to_string().contains("/v1/api-keys/0190a3f4"), "{error}");
    assert_eq!(requests(&fake).await.len(), 1);
    assert!(waits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_answer_outside_the_error_shape_is_retried_then_reported_as_it_is() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .mount(&fake)
        .await;
    let (client, _) = client(&fake, RetryPolicy { max_retries: 2, ..policy() });

    let error = client.whoami().await.unwrap_err();
    assert!(matches!(error, Error::UnexpectedAnswer { .. }), "{error:?}");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(502));
    assert_eq!(requests(&fake).await.len(), 3);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_a_network_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let waits = Arc::new(Mutex::new(Vec::new()));
    let recorded = waits.clone();
    let client = Client::builder(format!("http://127.0.0.1:{port}/v1"))
        .api_key("erp_live_fake0000000000000000000000000000000000")
        .retry(policy())
        .sleep_with(move |wait| {
            recorded.lock().unwrap().push(wait);
            std::future::ready(())
        })
        .build()
        .unwrap();

    let error = client.whoami().await.unwrap_err();
    assert!(matches!(error, Error::Network(_)), "{error:?}");
    assert_eq!(waits.lock().unwrap().len(), 3, "three retries, then the failure");
    assert!(!format!("{error:?}{error}").contains("erp_live_fake"), "no key in the error");
}

#[tokio::test]
async fn no_retries_means_one_attempt() {
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_json(error_body("service_unavailable", "api_error", "Busy.")))
        .mount(&fake)
        .await;
    let (client, waits) = client(&fake, RetryPolicy::none());
    assert!(client.whoami().await.is_err());
    assert_eq!(requests(&fake).await.len(), 1);
    assert!(waits.lock().unwrap().is_empty());
}
