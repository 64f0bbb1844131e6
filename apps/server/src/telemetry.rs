//! Structured logs through `tracing` (O4), and the request-id header (P4).
//!
//! Secrets never reach a log line: the domain's secret types do not print themselves, request
//! bodies and query strings are never logged, and only paths are.

use std::borrow::Cow;
use std::rc::Rc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::metrics::HttpMetrics;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber. Later calls (tests) are no-ops.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// The request id of the current request, for handlers that log.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

fn incoming_id(req: &ServiceRequest) -> Option<HeaderValue> {
    let value = req.headers().get(&REQUEST_ID)?;
    let text = value.to_str().ok()?;
    let ok = !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    ok.then(|| value.clone())
}

/// Gives every request an id (the caller's `X-Request-Id` if sane, else a fresh UUID), runs
/// it inside a span carrying that id, logs its outcome, counts it in the request metrics by
/// route pattern, and echoes the id on the response.
pub async fn request_id(
    http: Rc<HttpMetrics>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = incoming_id(&req).unwrap_or_else(|| {
        let mut buffer = uuid::Uuid::encode_buffer();
        let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
        #[allow(clippy::expect_used)]
        HeaderValue::from_str(text).expect("a UUID is a valid header value")
    });
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %req.method(),
        path = req.path(),
    );
    // Standard methods are copied, not allocated.
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let outcome = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let mut response = match outcome {
        Ok(response) => response,
        Err(err) => {
            // No layer inside answers with an error today; if one did, its route is unknown.
            http.record(None, &method, err.as_response_error().status_code().as_u16(), elapsed);
            return Err(err);
        }
    };
    let status = response.status().as_u16();
    http.record(route_pattern(response.request()).as_deref(), &method, status, elapsed);
    span.in_scope(|| {
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::error!(status, elapsed_ms, "request failed");
        } else {
            tracing::debug!(status, elapsed_ms, "request");
        }
    });
    response.headers_mut().insert(REQUEST_ID, id);
    Ok(response)
}

/// The pattern of the resource that answered: its name (the route table names each resource
/// after its full pattern, read without allocating), else the pattern itself; `None` when no
/// resource matched.
fn route_pattern(req: &HttpRequest) -> Option<Cow<'_, str>> {
    match req.match_name() {
        Some(name) => Some(Cow::Borrowed(name)),
        None => req.match_pattern().map(Cow::Owned),
    }
}
