//! Idempotency keys on create requests (W1), as a middleware on `/v1`.
//!
//! A `POST` with an `Idempotency-Key` header, from an identified caller (API key or signed-in
//! user), is recorded under `(caller, key)` with a fingerprint of its method, path and body:
//! - the first one runs; its answer (status, content type, body) is stored sealed with the
//!   master keyring and replayed byte for byte, with `Idempotent-Replayed: true`, to every retry
//!   with the same request for 24 hours;
//! - the same key with another request answers 422 `idempotency_error`;
//! - a retry while the first still runs answers 409 `idempotency_in_progress`; a first request
//!   that died without answering (a crash, a dropped connection) holds its key for
//!   [`CLAIM_LEASE_MINUTES`](otesse_domain::idempotency::CLAIM_LEASE_MINUTES) only;
//! - a first answer that is not replayable ([`is_replayable`]: 5xx, 401, 403, 409, 429) is
//!   not stored: the retry runs again;
//! - a first answer that carries a secret shown once (marked by its handler with [`shown_once`]:
//!   a new API key, a webhook signing secret, a password-reset token) is not stored either: its
//!   retries get 409 `idempotency_secret_shown` with a `Location` pointing at what the first
//!   request made, so that "shown exactly once" (K5) holds even for a client that retries.
//!
//! It runs inside [`crate::identify::identify`] and keys its records by the caller identified
//! there. A request without a valid credential (or from an address its key does not allow, or
//! past its rate limit) goes through untouched, so the handler refuses it as usual. A keyed
//! request the middleware answers itself (a replay, a 409, a 422) was counted against the key's
//! rate limit and is logged as the key's usage, like any other request of the key.
//!
//! Requests other than a `POST` cost one comparison; a `POST` without the header, one lookup.

use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, LOCATION};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};
use otesse_domain::caller::Caller;
use otesse_domain::idempotency::{
    Begin, CallerScope, Fingerprint, IdempotencyKey, IdempotencyStore, StoredResponse, is_replayable, response_owner,
};
use otesse_domain::organization::OrganizationId;
use otesse_domain::ports::{Clock, CredentialCipher};
use otesse_domain::sealed::SecretOwner;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};
use crate::identify::Identity;

/// What the middleware needs.
#[derive(Clone)]
pub struct Idempotency {
    pub store: Arc<dyn IdempotencyStore>,
    pub cipher: Arc<dyn CredentialCipher>,
    pub clock: Arc<dyn Clock>,
}

const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on replayed answers.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Routes without a caller yet: keys are not honoured there.
const EXEMPT: [&str; 2] = ["/v1/sessions", "/v1/setup"];

/// Marks an answer that carries a secret shown exactly once; see [`shown_once`].
#[derive(Debug, Clone)]
pub struct ShownOnce {
    /// The resource the secret belongs to, e.g. `/v1/api-keys/{id}`.
    location: String,
}

/// Marks `response` as carrying a secret shown exactly once, belonging to the resource at
/// `location`: it gets `Location` and `Cache-Control: no-store`, and the idempotency layer keeps
/// a pointer to `location` instead of the body.
pub fn shown_once(mut response: HttpResponse, location: String) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(ShownOnce { location });
    response
}

/// What a retry of a request whose answer held a secret gets instead of the secret.
fn secret_shown(location: &str) -> ApiError {
    ApiError::new(
        ErrorCode::IdempotencySecretShown,
        format!(
            "A request with this Idempotency-Key already succeeded: see {location}. The secret in its answer was \
             shown once and is not shown again; if it was lost, rotate to get a new one."
        ),
    )
}

/// The caller a record belongs to.
struct Owner {
    scope: CallerScope,
    organization: OrganizationId,
}

impl Owner {
    /// The request's identified caller (see [`crate::identify`]), or `None` when it has none:
    /// no credential, or one that was refused (also a key used from an address it does not
    /// allow, or past its rate limit), which the handler answers.
    fn of(req: &ServiceRequest) -> Option<Self> {
        let extensions = req.extensions();
        let caller = extensions.get::<Identity>()?.caller()?;
        let scope = match caller {
            Caller::User { .. } => CallerScope::user(caller.on_behalf_of()),
            Caller::Key(key) => CallerScope::api_key(key.id),
        };
        Some(Owner { scope, organization: caller.organization_id() })
    }

    fn binding(&self, key: &IdempotencyKey, record: Uuid) -> SecretOwner {
        response_owner(self.organization, &self.scope, key, record, otesse_crypto::sha256)
    }
}

fn answer(req: ServiceRequest, err: ApiError) -> ServiceResponse<BoxBody> {
    req.into_response(err.error_response())
}

/// Puts a body read by the middleware back for the handler.
fn payload(bytes: web::Bytes) -> Payload {
    let (_, mut payload) = actix_http::h1::Payload::create(true);
    payload.unread_data(bytes);
    Payload::from(payload)
}

/// The middleware. Requests it does not apply to (everything but a POST with the header) only
/// pay for a method comparison, and a POST for a header lookup: the work, and its large
/// future, live in [`idempotent`], boxed separately so the common path does not carry them.
pub async fn idempotency(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    // The method first: it is a comparison, where finding a header by name hashes it.
    let raw_key = if req.method() == Method::POST {
        req.headers().get(&HEADER).filter(|_| !EXEMPT.contains(&req.path())).cloned()
    } else {
        None
    };
    match raw_key {
        Some(raw_key) => Box::pin(idempotent(req, next, raw_key)).await,
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

async fn idempotent(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    raw_key: HeaderValue,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(layer) = req.app_data::<web::Data<Idempotency>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let Some(caller) = Owner::of(&req) else {
        // No identified caller: the handler answers 401 (or 403, or 429); nothing to remember.
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let key = match raw_key.to_str().ok().map(IdempotencyKey::parse) {
        Some(Ok(key)) => key,
        _ => {
            let message = "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice).";
            return Ok(answer(req, ApiError::new(ErrorCode::InvalidParameter, message)));
        }
    };
    let body = match req.extract::<web::Bytes>().await {
        Ok(body) => body,
        Err(err) if err.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Ok(answer(req, ApiError::new(ErrorCode::PayloadTooLarge, "The request body is too large.")));
        }
        Err(_) => return Ok(answer(req, ApiError::new(ErrorCode::InvalidBody, "The request body could not be read."))),
    };
    let fingerprint = Fingerprint::from_digest(otesse_crypto::sha256(&Fingerprint::preimage(
        req.method().as_str(),
        req.path(),
        &body,
    )));
    req.set_payload(payload(body));

    let begun = layer.store.begin(&caller.scope, &key, &fingerprint, layer.clock.now()).await;
    let record = match begun {
        Err(err) => return Ok(answer(req, err.into())),
        Ok(Begin::Mismatch) => {
            let message =
                "Keys for idempotent requests can only be used with the same parameters they were first used with.";
            return Ok(answer(req, ApiError::new(ErrorCode::IdempotencyError, message)));
        }
        Ok(Begin::InProgress) => {
            let message = "A request with this Idempotency-Key is still being processed. Retry once it has finished \
                           (a request that was interrupted frees its key 5 minutes after it began).";
            return Ok(answer(req, ApiError::new(ErrorCode::IdempotencyInProgress, message)));
        }
        Ok(Begin::Completed { record, response }) => {
            let Ok(body) = layer.cipher.decrypt(&response.body, &caller.binding(&key, record)) else {
                tracing::error!(%record, "a stored idempotent response does not decrypt");
                return Ok(answer(req, ApiError::internal()));
            };
            let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
            let mut replay = HttpResponse::build(status);
            replay
                .insert_header((CONTENT_TYPE, response.content_type.as_str()))
                .insert_header((REPLAYED, HeaderValue::from_static("true")));
            if let Some(location) = response.location.as_deref().and_then(|l| HeaderValue::from_str(l).ok()) {
                replay.insert_header((LOCATION, location));
            }
            let replay = replay.body(body.expose_secret().to_owned());
            return Ok(req.into_response(replay));
        }
        Ok(Begin::New { record }) => record,
    };

    let response = match next.call(req).await {
        Ok(response) => response,
        Err(err) => {
            forget(&*layer.store, record).await;
            return Err(err);
        }
    };
    let status = response.status();
    let shown_once = response.response().extensions().get::<ShownOnce>().cloned();
    let content_type =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_owned();
    let (request, response) = response.into_parts();
    let (response, body) = response.into_parts();
    let Ok(bytes) = actix_web::body::to_bytes(body).await else {
        forget(&*layer.store, record).await;
        return Ok(ServiceResponse::new(request, ApiError::internal().error_response()));
    };
    // What a retry gets: the answer itself, or where the answer that showed a secret points.
    let kept = match shown_once {
        Some(shown) if status.is_success() => {
            let pointer = secret_shown(&shown.location);
            Some((pointer.code.spec().0, "application/json".to_owned(), pointer.body(), Some(shown.location)))
        }
        _ if !is_replayable(status.as_u16()) => None,
        _ => match std::str::from_utf8(&bytes) {
            Ok(text) => Some((status, content_type, text.to_owned(), None)),
            Err(_) => {
                // Every /v1 answer is JSON; the cipher seals text. Not expected, so said loudly.
                tracing::warn!(%record, "an idempotent response is not UTF-8; it is not stored");
                None
            }
        },
    };
    match kept {
        None => forget(&*layer.store, record).await,
        Some((status, content_type, text, location)) => {
            let sealed = layer.cipher.encrypt(&SecretString::from(text), &caller.binding(&key, record));
            let stored = StoredResponse { status: status.as_u16(), content_type, location, body: sealed };
            if let Err(err) = layer.store.complete(record, &stored).await {
                // The request itself went through; only its replay is lost. Free the key rather
                // than leave it "in progress" for a day.
                tracing::error!(error = %err, "could not store an idempotent response");
                forget(&*layer.store, record).await;
            }
        }
    }
    Ok(ServiceResponse::new(request, response.set_body(BoxBody::new(bytes))))
}

/// Abandons a record; a failure only leaves the key in progress until it expires.
async fn forget(store: &dyn IdempotencyStore, record: Uuid) {
    if let Err(err) = store.abandon(record).await {
        tracing::error!(error = %err, %record, "could not release an idempotency key");
    }
}
