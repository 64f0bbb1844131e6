//! The SSRF guard's client against local servers: loopback is refused unless allowed (by the
//! IP-literal check and by the resolver), nothing reaches the server when it is, a redirect is
//! handed back and never followed, and a refusal is told apart from an ordinary network error.

use std::net::{IpAddr, TcpListener};
use std::time::Duration;

use otesse_providers::guard::{GuardError, GuardedClient, UrlPolicy, UrlRefused};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, Request, Url};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(allow_loopback: bool) -> GuardedClient {
    let policy = UrlPolicy { allow_loopback, require_https: false };
    GuardedClient::new(policy, Duration::from_secs(2), Duration::from_secs(5)).unwrap()
}

fn url(raw: &str) -> Url {
    raw.parse().unwrap()
}

fn json_headers() -> HeaderMap {
    HeaderMap::from_iter([(CONTENT_TYPE, HeaderValue::from_static("application/json"))])
}

async fn post(client: &GuardedClient, raw: &str) -> Result<reqwest::Response, GuardError> {
    client.post(url(raw), json_headers(), "{}").await
}

async fn assert_untouched(server: &MockServer) {
    let received = server.received_requests().await.expect("request recording is on");
    assert!(received.is_empty(), "the server was reached: {received:?}");
}

#[tokio::test]
async fn a_post_carries_its_headers_and_body_when_allowed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("content-type", "application/json"))
        .and(body_string(r#"{"event":"ping"}"#))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let hook = url(&format!("{}/hook", server.uri()));
    let response = client(true).post(hook, json_headers(), r#"{"event":"ping"}"#).await.unwrap();
    assert_eq!(response.status(), 204);
    server.verify().await;
}

#[tokio::test]
async fn redirects_come_back_unfollowed() {
    let target = MockServer::start().await;
    Mock::given(path("/internal")).respond_with(ResponseTemplate::new(200)).mount(&target).await;
    let elsewhere = format!("{}/internal", target.uri());
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", elsewhere.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    let response = post(&client(true), &format!("{}/hook", server.uri())).await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()[LOCATION], elsewhere.as_str());
    server.verify().await;
    assert_untouched(&target).await;
}

#[tokio::test]
async fn loopback_is_refused_before_any_request_unless_allowed() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let strict = client(false);
    // An IP literal: reqwest does not resolve it, so the client checks it before sending.
    let err = post(&strict, &format!("{}/hook", server.uri())).await.unwrap_err();
    assert!(matches!(err, GuardError::Refused(UrlRefused::Forbidden(ip)) if ip.is_loopback()), "{err:?}");
    // A name: the resolver drops its loopback addresses at connection time, and none remain.
    let by_name = server.uri().replace("127.0.0.1", "localhost");
    let err = post(&strict, &format!("{by_name}/hook")).await.unwrap_err();
    assert!(matches!(err, GuardError::Refused(UrlRefused::Forbidden(ip)) if ip.is_loopback()), "{err:?}");
    assert!(err.to_string().contains("private or internal address"), "{err}");
    // IPv4-mapped, spelled as IPv6.
    let port = server.address().port();
    let err = post(&strict, &format!("http://[::ffff:127.0.0.1]:{port}/hook")).await.unwrap_err();
    assert!(matches!(err, GuardError::Refused(UrlRefused::Forbidden(_))), "{err:?}");
    assert_untouched(&server).await;
    // The same server by name, once loopback is allowed.
    assert_eq!(post(&client(true), &format!("{by_name}/hook")).await.unwrap().status(), 204);
}

#[tokio::test]
async fn allowing_loopback_does_not_allow_private_or_metadata_addresses() {
    // Refused before any connection is attempted, so nothing needs to listen there.
    let relaxed = client(true);
    for (raw, address) in
        [("http://10.0.0.1/hook", "10.0.0.1"), ("http://169.254.169.254/latest/meta-data", "169.254.169.254")]
    {
        let expected: IpAddr = address.parse().unwrap();
        let err = post(&relaxed, raw).await.unwrap_err();
        assert!(matches!(err, GuardError::Refused(UrlRefused::Forbidden(ip)) if ip == expected), "{raw}: {err:?}");
    }
}

#[tokio::test]
async fn the_url_is_checked_again_when_sending() {
    let production = GuardedClient::new(UrlPolicy::PRODUCTION, Duration::from_secs(2), Duration::from_secs(5)).unwrap();
    let err = post(&production, "http://93.184.216.34/hook").await.unwrap_err();
    assert!(matches!(err, GuardError::Refused(UrlRefused::HttpsRequired)), "{err:?}");
    let err = post(&client(true), "http://user:pass@127.0.0.1:9/hook").await.unwrap_err();
    assert!(matches!(err, GuardError::Refused(UrlRefused::Credentials)), "{err:?}");
    let ftp = Request::new(Method::GET, url("ftp://127.0.0.1/file"));
    let err = client(true).execute(ftp).await.unwrap_err();
    assert!(matches!(err, GuardError::Refused(UrlRefused::UnsupportedScheme)), "{err:?}");
}

#[tokio::test]
async fn a_network_failure_is_not_a_refusal_and_does_not_print_the_url() {
    // A server that accepts one connection and closes it without answering.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || drop(listener.accept()));
    let err = post(&client(true), &format!("http://{address}/hook?token=secret-in-url")).await.unwrap_err();
    let GuardError::Http(inner) = &err else { panic!("expected a network error, got {err:?}") };
    assert!(inner.url().is_none());
    assert!(!err.to_string().contains("secret-in-url") && !format!("{err:?}").contains("secret-in-url"), "{err:?}");
}
