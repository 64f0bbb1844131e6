//! The SSRF guard's client against a local server: loopback is refused unless allowed, and a
//! redirect is handed back, never followed.

use std::time::Duration;

use otesse_providers::guard::{GuardError, GuardedClient, UrlPolicy, UrlRefused};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(allow_loopback: bool) -> GuardedClient {
    let policy = UrlPolicy { allow_loopback, require_https: false };
    GuardedClient::new(policy, Duration::from_secs(2), Duration::from_secs(5)).unwrap()
}

async fn post(client: &GuardedClient, url: &str) -> Result<reqwest::Response, GuardError> {
    let request = client.post(url.parse().unwrap()).body("{}").build().unwrap();
    client.send(request).await
}

#[tokio::test]
async fn redirects_come_back_unfollowed() {
    let server = MockServer::start().await;
    let elsewhere = format!("{}/internal", server.uri());
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", elsewhere.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/internal")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let response = post(&client(true), &format!("{}/hook", server.uri())).await.unwrap();
    assert_eq!(response.status(), 302);
    server.verify().await;
}

#[tokio::test]
async fn loopback_is_refused_before_any_request_unless_allowed() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).expect(0).mount(&server).await;
    let strict = client(false);
    // An IP literal, checked before sending.
    let err = post(&strict, &format!("{}/hook", server.uri())).await.unwrap_err();
    assert!(matches!(err, GuardError::Refused(UrlRefused::Forbidden(_))), "{err:?}");
    // A name, checked by the resolver at connection time.
    let by_name = server.uri().replace("127.0.0.1", "localhost");
    let err = post(&strict, &format!("{by_name}/hook")).await.unwrap_err();
    assert!(matches!(err, GuardError::Refused(_)), "{err:?}");
    server.verify().await;
}
