//! What does not depend on the provider: oversized bodies, timeouts, refused and dropped
//! connections, redirects, unknown providers, and that the credential reaches no detail and
//! no log line. The broken servers are tiny std TCP listeners on port 0.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otesse_domain::integration::{Credentials, HealthOutcome};
use otesse_domain::ports::ProviderClient;
use otesse_providers::MAX_BODY_BYTES;
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{KEY, check, check_with, client, client_with, slug};

/// Serves the first connection to a fresh port with `serve`, on its own thread.
fn raw_server(serve: impl FnOnce(TcpStream) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            serve(stream);
        }
    });
    format!("http://{address}")
}

/// Reads up to the end of the request head (the requests here have no body).
fn read_request(stream: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
}

#[tokio::test]
async fn a_body_of_several_megabytes_is_refused_without_being_read() {
    let server = MockServer::start().await;
    let huge = vec![b'x'; 5 * 1024 * 1024];
    Mock::given(method("GET"))
        .and(path("/server"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(huge))
        .mount(&server)
        .await;
    let report = check("postmark", &server.uri()).await;
    assert_eq!((report.outcome, report.detail.as_str()), (HealthOutcome::Unreachable, "bad response: body over 1 MiB"));
}

#[tokio::test]
async fn a_chunked_body_is_cut_off_at_the_cap() {
    // No Content-Length: the cap is enforced while reading, and the connection is dropped.
    let base = raw_server(|mut stream| {
        read_request(&mut stream);
        let chunk = vec![b'{'; 64 * 1024];
        let mut out =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..(5 * 1024 * 1024 / chunk.len()) {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(&chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        // The client hangs up after the cap, so this write fails part way; that is the point.
        let _ = stream.write_all(&out);
    });
    let report = check("anthropic", &base).await;
    assert_eq!((report.outcome, report.detail.as_str()), (HealthOutcome::Unreachable, "bad response: body over 1 MiB"));
}

// The oversized bodies above are several times the cap.
const _: () = assert!(MAX_BODY_BYTES * 4 < 5 * 1024 * 1024);

#[tokio::test]
async fn a_server_that_hangs_past_the_timeout_is_unreachable() {
    let server = MockServer::start().await;
    let slow = ResponseTemplate::new(200).set_body_json(json!({"data": []})).set_delay(Duration::from_secs(30));
    Mock::given(method("GET")).and(path("/v1/phone-numbers")).respond_with(slow).mount(&server).await;
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let report = check_with(&client_with("quo", &server.uri(), timeout), "quo").await;
    assert_eq!((report.outcome, report.detail.as_str()), (HealthOutcome::Unreachable, "timed out"));
    assert!(started.elapsed() < Duration::from_secs(5), "the timeout was not applied: {:?}", started.elapsed());
    assert!(report.response_time_ms >= 300, "{report:?}");
}

#[tokio::test]
async fn a_refused_connection_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let report = check("stripe", &base).await;
    assert_eq!((report.outcome, report.detail.as_str()), (HealthOutcome::Unreachable, "connection refused"));
}

#[tokio::test]
async fn a_connection_dropped_before_answering_is_unreachable() {
    let base = raw_server(drop);
    let report = check("postmark", &base).await;
    assert_eq!((report.outcome, report.detail.as_str()), (HealthOutcome::Unreachable, "connection closed"));
}

#[tokio::test]
async fn a_connection_closed_mid_body_is_unreachable() {
    let base = raw_server(|mut stream| {
        read_request(&mut stream);
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ID\": 1,");
    });
    let report = check("postmark", &base).await;
    assert_eq!((report.outcome, report.detail.as_str()), (HealthOutcome::Unreachable, "connection closed"));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    let elsewhere = format!("{}/elsewhere?access_token={KEY}", server.uri());
    Mock::given(path("/tokens/v2"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", elsewhere.as_str()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let report = check("mapbox", &server.uri()).await;
    assert_eq!(
        (report.outcome, report.detail.as_str()),
        (HealthOutcome::Unreachable, "redirect not followed (HTTP 302)")
    );
    server.verify().await;
}

#[tokio::test]
async fn a_provider_without_a_client_is_unreachable() {
    let report = check_with(&client("stripe", "http://127.0.0.1:9"), "sendgrid").await;
    assert_eq!((report.outcome, report.detail.as_str()), (HealthOutcome::Unreachable, "no client for provider"));
    assert_eq!(report.response_time_ms, 0);
}

#[tokio::test]
async fn a_credential_that_cannot_be_a_header_is_invalid_and_not_sent() {
    let server = MockServer::start().await;
    Mock::given(path("/server")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let broken = Credentials {
        api_key: SecretString::from(format!("{KEY}\r\nX-Injected: 1")),
        api_secret: None,
        account_id: None,
    };
    let report = client("postmark", &server.uri()).health_check(&slug("postmark"), &broken).await;
    assert_eq!(report.outcome, HealthOutcome::InvalidCredentials);
    assert!(!report.detail.contains(KEY), "{report:?}");
    server.verify().await;
}

/// Collects formatted log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_hold_the_credential() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // The key travels in the URL here, and the server echoes it back as a "code".
    let server = MockServer::start().await;
    Mock::given(path("/tokens/v2")).respond_with(crate::json(200, json!({"code": KEY}))).mount(&server).await;
    let echoed = check("mapbox", &server.uri()).await;
    assert_eq!(echoed.outcome, HealthOutcome::Unreachable);

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let refused = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    check("google_maps", &refused).await;
    let _ = crate::models("anthropic", &refused).await;

    let logs = String::from_utf8(logs.0.lock().expect("log buffer").clone()).expect("utf-8 logs");
    assert!(logs.contains("provider health check"), "nothing was logged: {logs}");
    assert!(!logs.contains(KEY), "a log line holds the credential: {logs}");
}
