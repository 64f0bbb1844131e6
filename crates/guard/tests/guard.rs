//! The guard against a fake Otesse whose answers and stream the test controls: the cache's
//! window when Otesse is down, a stream cut mid-event, and the guard's own refusals held to
//! Otesse's tables. (The real Otesse is exercised end to end by the bookings service's tests.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_web::{App, HttpResponse, HttpServer, web};
use otesse_guard::{Check, Guard, RemoteConfig};
use serde_json::json;
use tokio::sync::mpsc;

/// What the fake answers: whether verify works, and a channel per stream connection.
#[derive(Clone, Default)]
struct Fake {
    verify_up: Arc<Mutex<bool>>,
    streams: Arc<Mutex<Vec<mpsc::UnboundedSender<Bytes>>>>,
}

async fn verify(fake: web::Data<Fake>) -> HttpResponse {
    if !*fake.verify_up.lock().unwrap() {
        return HttpResponse::ServiceUnavailable().finish();
    }
    HttpResponse::Ok().json(json!({
        "valid": true, "code": "ok", "message": "The API key is valid.", "ratelimit": null, "error": null,
        "key": {"id": uuid::Uuid::nil(), "organization_id": uuid::Uuid::nil(), "name": "k", "environment": "live",
                "scope_level": "read_write", "scopes": ["bookings.read"], "expires_at": null, "revoked_at": null}
    }))
}

async fn stream(fake: web::Data<Fake>) -> HttpResponse {
    let (sender, receiver) = mpsc::unbounded_channel::<Bytes>();
    fake.streams.lock().unwrap().push(sender);
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, actix_web::Error>(chunk), receiver))
    });
    HttpResponse::Ok().content_type("text/event-stream").streaming(body)
}

async fn start_fake() -> (Fake, String) {
    let fake = Fake { verify_up: Arc::new(Mutex::new(true)), ..Fake::default() };
    let data = web::Data::new(fake.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/v1/keys/verify", web::post().to(verify))
            .route("/v1/keys/invalidations", web::get().to(stream))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    (fake, address)
}

async fn until(what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !probe() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn check(key: &str) -> Check<'_> {
    Check { key, scopes: &["bookings.read"], method: "GET", path: "/v1/bookings", ip: None }
}

fn config(address: &str, ttl: Duration) -> RemoteConfig {
    let mut config = RemoteConfig::new(address.parse().unwrap(), "ots_svc_test".to_owned().into());
    config.cache_ttl = ttl;
    config
}

#[actix_web::test]
async fn a_stream_cut_mid_event_leaves_nothing_trusted_that_it_may_have_named() {
    let (fake, address) = start_fake().await;
    let guard = Guard::remote(config(&address, Duration::from_secs(600))).unwrap();
    until("the guard connects", || fake.streams.lock().unwrap().len() == 1).await;
    fake.streams.lock().unwrap()[0].send(Bytes::from_static(b"event: ready\ndata: {}\n\n")).unwrap();
    until("the guard listens", || guard.is_listening()).await;

    let key = format!("erp_live_{}", "K".repeat(40));
    guard.verify(&check(&key)).await.unwrap();
    assert_eq!(guard.cached_keys(), 1);

    // Half an invalidation, then the connection drops.
    let first = fake.streams.lock().unwrap().remove(0);
    first.send(Bytes::from_static(b"event: invalidated\ndata: {\"key_ha")).unwrap();
    drop(first);
    until("the guard reconnects", || fake.streams.lock().unwrap().len() == 1).await;
    assert!(!guard.is_listening(), "not listening until the new stream is ready");
    fake.streams.lock().unwrap()[0].send(Bytes::from_static(b"event: ready\ndata: {}\n\n")).unwrap();
    until("the new stream's ready clears the cache", || guard.cached_keys() == 0).await;
    assert!(guard.is_listening());

    // With nothing cached, Otesse down means the key is refused, never admitted.
    *fake.verify_up.lock().unwrap() = false;
    let refused = guard.verify(&check(&key)).await.unwrap_err();
    assert_eq!((refused.status, refused.code.as_str()), (503, "service_unavailable"));
}

#[actix_web::test]
async fn with_otesse_down_a_verified_key_passes_only_within_the_cache_window_and_for_its_scopes() {
    let (fake, address) = start_fake().await;
    let window = Duration::from_millis(400);
    let guard = Guard::remote(config(&address, window)).unwrap();
    let key = format!("erp_live_{}", "W".repeat(40));
    guard.verify(&check(&key)).await.unwrap();
    let verified_at = Instant::now();

    *fake.verify_up.lock().unwrap() = false;
    // Within the window: admitted for the scope Otesse confirmed, not for another.
    let admitted = guard.verify(&check(&key)).await;
    if verified_at.elapsed() < window {
        assert!(admitted.is_ok(), "{admitted:?}");
    }
    let other = Check { scopes: &["bookings.write"], ..check(&key) };
    assert_eq!(guard.verify(&other).await.unwrap_err().status, 503, "a scope Otesse never confirmed");
    // After the window: refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match guard.verify(&check(&key)).await {
            Err(refused) => {
                assert_eq!(refused.status, 503);
                assert!(verified_at.elapsed() >= window, "refused before the window ended");
                break;
            }
            Ok(_) => assert!(Instant::now() < deadline, "still admitted 10 s after the window"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn the_guard_s_scopes_are_otesse_s_catalog() {
    let catalog: Vec<&str> = otesse_domain::api_key::Scope::ALL.iter().map(|scope| scope.as_str()).collect();
    assert_eq!(otesse_guard::scope::ALL.to_vec(), catalog);
}

#[test]
fn the_guard_s_own_refusals_are_in_otesse_s_error_table() {
    use otesse_server::error::ErrorCode;
    // The three answers the guard makes itself (no key; Otesse unreachable; a wiring mistake).
    let own = [
        ("missing_credentials", 401, "authentication_error"),
        ("service_unavailable", 503, "api_error"),
        ("internal_error", 500, "api_error"),
    ];
    for (code, status, kind) in own {
        let known = ErrorCode::ALL
            .iter()
            .find(|known| serde_json::to_value(known).unwrap() == code)
            .unwrap_or_else(|| panic!("{code} is not one of Otesse's codes"));
        let (known_status, known_kind) = known.spec();
        assert_eq!(known_status.as_u16(), status, "{code}");
        assert_eq!(serde_json::to_value(known_kind).unwrap(), kind, "{code}");
    }
}
