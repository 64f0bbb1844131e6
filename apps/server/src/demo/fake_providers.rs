//! The demo's fake providers: one local HTTP server that answers each provider's documented
//! health call (and Postmark's send) for the demo's credentials, plus a webhook receiver.
//! Only `otesse-server demo` starts it; the product's normal path never does.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::json;

/// The credential each fake accepts (`demo-<slug>`).
pub fn credential(slug: &str) -> String {
    format!("demo-{slug}")
}

/// A running fake: its base URL and the switch that makes Mapbox fail.
pub struct FakeProviders {
    pub base_url: String,
    mapbox_down: Arc<AtomicBool>,
    handle: ServerHandle,
}

impl FakeProviders {
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let mapbox_down = Arc::new(AtomicBool::new(false));
        let state = web::Data::new(State { mapbox_down: mapbox_down.clone() });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/server", web::get().to(postmark_server))
                .route("/email", web::post().to(postmark_email))
                .route("/v1/balance", web::get().to(stripe_balance))
                .route("/tokens/v2", web::get().to(mapbox_token))
                .route("/maps/api/geocode/json", web::get().to(google_geocode))
                .route("/v1/geocode/search", web::get().to(geoapify_search))
                .route("/v1/models", web::get().to(anthropic_models))
                .route("/v1/phone-numbers", web::get().to(quo_numbers))
                .route("/hook", web::post().to(webhook_receiver))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self { base_url: format!("http://127.0.0.1:{port}"), mapbox_down, handle })
    }

    /// From now on Mapbox answers 503, as an outage would.
    pub fn break_mapbox(&self) {
        self.mapbox_down.store(true, Ordering::SeqCst);
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

struct State {
    mapbox_down: Arc<AtomicBool>,
}

fn header_is(req: &HttpRequest, name: &str, expected: &str) -> bool {
    req.headers().get(name).and_then(|v| v.to_str().ok()) == Some(expected)
}

fn query_is(req: &HttpRequest, name: &str, expected: &str) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes()).any(|(k, v)| k == name && v == expected)
}

fn unauthorized(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Unauthorized().json(body)
}

async fn postmark_server(req: HttpRequest) -> HttpResponse {
    if header_is(&req, "X-Postmark-Server-Token", &credential("postmark")) {
        HttpResponse::Ok().json(json!({"ID": 1, "Name": "Acme Cleaning (demo)"}))
    } else {
        unauthorized(
            json!({"ErrorCode": 10, "Message": "The Server Token you provided in the X-Postmark-Server-Token request header was invalid."}),
        )
    }
}

async fn postmark_email(req: HttpRequest) -> HttpResponse {
    if header_is(&req, "X-Postmark-Server-Token", &credential("postmark")) {
        HttpResponse::Ok().json(json!({"ErrorCode": 0, "Message": "OK", "MessageID": uuid::Uuid::now_v7()}))
    } else {
        unauthorized(json!({"ErrorCode": 10, "Message": "invalid token"}))
    }
}

async fn stripe_balance(req: HttpRequest) -> HttpResponse {
    if header_is(&req, "Authorization", &format!("Bearer {}", credential("stripe"))) {
        HttpResponse::Ok().json(json!({"object": "balance", "available": [], "livemode": false, "pending": []}))
    } else {
        unauthorized(json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}))
    }
}

async fn mapbox_token(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if state.mapbox_down.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().json(json!({"message": "Service Unavailable"}));
    }
    if query_is(&req, "access_token", &credential("mapbox")) {
        HttpResponse::Ok()
            .json(json!({"code": "TokenValid", "token": {"usage": "pk", "user": "acme", "authorization": "demo"}}))
    } else {
        unauthorized(json!({"code": "TokenInvalid"}))
    }
}

async fn google_geocode(req: HttpRequest) -> HttpResponse {
    if query_is(&req, "key", &credential("google_maps")) {
        HttpResponse::Ok().json(json!({"status": "OK", "results": []}))
    } else {
        HttpResponse::Ok()
            .json(json!({"status": "REQUEST_DENIED", "error_message": "The provided API key is invalid."}))
    }
}

async fn geoapify_search(req: HttpRequest) -> HttpResponse {
    if query_is(&req, "apiKey", &credential("geoapify")) {
        HttpResponse::Ok().json(json!({"type": "FeatureCollection", "features": []}))
    } else {
        unauthorized(json!({"statusCode": 401, "error": "Unauthorized", "message": "Invalid apiKey"}))
    }
}

async fn anthropic_models(req: HttpRequest) -> HttpResponse {
    if header_is(&req, "x-api-key", &credential("anthropic")) {
        let model = |id: &str, name: &str| json!({"id": id, "display_name": name, "created_at": "2025-02-19T00:00:00Z", "type": "model"});
        HttpResponse::Ok().json(json!({
            "data": [model("claude-demo-1", "Claude Demo"), model("claude-demo-2", "Claude Demo Two")],
            "has_more": false, "first_id": "claude-demo-1", "last_id": "claude-demo-2"
        }))
    } else {
        unauthorized(
            json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
        )
    }
}

async fn quo_numbers(req: HttpRequest) -> HttpResponse {
    if header_is(&req, "Authorization", &credential("quo")) {
        HttpResponse::Ok().json(json!({"data": []}))
    } else {
        unauthorized(json!({"message": "Unauthorized"}))
    }
}

async fn webhook_receiver() -> HttpResponse {
    HttpResponse::NoContent().finish()
}
