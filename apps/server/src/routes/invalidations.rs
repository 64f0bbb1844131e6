//! `GET /v1/keys/invalidations` (S1): the platform's services hear, as Server-Sent Events, every
//! key whose cached entries are stale, so a remote cache drops a revoked key within a second.
//!
//! The events, each one line of JSON data:
//! - `ready` once the stream listens: anything heard before may have been missed, so a service
//!   drops its whole cache on every `ready` (first connection and each reconnection alike).
//! - `invalidated` with `{"key_hash": "<hex SHA-256 of the key>"}`: drop that key's entries. A
//!   key's hash, never the key; the service hashes the keys it caches the same way.
//! - `reset`: drop everything (this process may have missed invalidations, or the service
//!   fell too far behind the stream).
//!
//! A comment line every [`KEEP_ALIVE`] keeps proxies from closing an idle stream and lets the
//! service notice a dead one. The stream ends when the server stops; the service reconnects.

use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use otesse_domain::service_token::ServiceTokenService;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::key_invalidation::{Invalidation, InvalidationFeed};

/// How often an idle stream says it is alive.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Asks clients to reconnect after this many milliseconds (the `retry` field).
const RETRY_MS: u32 = 1000;

/// The stream of key invalidations, for platform services.
#[utoipa::path(get, path = "/v1/keys/invalidations", operation_id = "streamKeyInvalidations", tag = "platform", security(("service_token" = [])), responses((status = 200, description = "Server-Sent Events: `ready`, then `invalidated` (`{\"key_hash\": \"<hex SHA-256>\"}`) and `reset` as they happen, with a comment every 15 seconds.", content_type = "text/event-stream", body = String), crate::openapi::errors::BadRequest, crate::openapi::errors::Unauthorized, crate::openapi::errors::ServerError))]
pub async fn stream(
    req: HttpRequest,
    tokens: web::Data<ServiceTokenService>,
    feed: web::Data<InvalidationFeed>,
) -> Result<HttpResponse, ApiError> {
    super::verify::authenticate(&req, &tokens).await?;
    // Subscribed before `ready` is sent: nothing after it is missed.
    let state = Stream { events: feed.subscribe(), closing: feed.closing(), ticker: None, started: false };
    let body = futures_util::stream::unfold(state, |mut state| async move {
        let chunk = state.next().await?;
        Some((Ok::<_, actix_web::Error>(chunk), state))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Proxies that buffer (nginx) would hold the events back.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

struct Stream {
    events: broadcast::Receiver<Invalidation>,
    closing: watch::Receiver<bool>,
    ticker: Option<tokio::time::Interval>,
    started: bool,
}

impl Stream {
    /// The next chunk to send, `None` to end the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if !self.started {
            self.started = true;
            return Some(Bytes::from(format!("retry: {RETRY_MS}\nevent: ready\ndata: {{}}\n\n")));
        }
        let ticker = self.ticker.get_or_insert_with(|| {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker
        });
        if *self.closing.borrow() {
            return None;
        }
        tokio::select! {
            heard = self.events.recv() => match heard {
                Ok(invalidation) => Some(event(invalidation)),
                Err(RecvError::Lagged(_)) => Some(event(Invalidation::Reset)),
                Err(RecvError::Closed) => None,
            },
            _ = ticker.tick() => Some(Bytes::from_static(b": keep-alive\n\n")),
            _ = self.closing.changed() => None,
        }
    }
}

fn event(invalidation: Invalidation) -> Bytes {
    match invalidation {
        Invalidation::Key(hash) => {
            let mut hex = String::with_capacity(64);
            for byte in hash.0 {
                hex.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
                hex.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
            }
            Bytes::from(format!("event: invalidated\ndata: {{\"key_hash\":\"{hex}\"}}\n\n"))
        }
        Invalidation::Reset => Bytes::from_static(b"event: reset\ndata: {}\n\n"),
    }
}

#[cfg(test)]
mod tests {
    use otesse_domain::api_key::KeyHash;

    use super::*;

    #[test]
    fn an_invalidation_names_the_hash_in_lowercase_hex() {
        let mut hash = [0u8; 32];
        hash[0] = 0xab;
        hash[31] = 0x0f;
        let text = String::from_utf8(event(Invalidation::Key(KeyHash(hash))).to_vec()).unwrap();
        let expected = format!("ab{}0f", "00".repeat(30));
        assert_eq!(text, format!("event: invalidated\ndata: {{\"key_hash\":\"{expected}\"}}\n\n"));
        assert_eq!(&event(Invalidation::Reset)[..], b"event: reset\ndata: {}\n\n");
    }

    #[tokio::test]
    async fn the_stream_starts_ready_then_relays_resets_on_lag_and_ends_when_closing() {
        let feed = InvalidationFeed::new();
        let mut stream = Stream { events: feed.subscribe(), closing: feed.closing(), ticker: None, started: false };
        assert!(String::from_utf8(stream.next().await.unwrap().to_vec()).unwrap().contains("event: ready"));
        // Overflow the backlog: the listener is told to drop everything, not silently skipped.
        let (sender, receiver) = broadcast::channel(2);
        stream.events = receiver;
        for n in 0..5u8 {
            sender.send(Invalidation::Key(KeyHash([n; 32]))).unwrap();
        }
        assert_eq!(&stream.next().await.unwrap()[..], b"event: reset\ndata: {}\n\n");
        feed.close();
        stream.events = feed.subscribe();
        assert!(stream.next().await.is_none());
    }
}
