//! The remote guard: Otesse's verification API for every request, a bounded cache of keys it
//! verified lately for when Otesse cannot be reached, and the invalidation stream that keeps
//! that cache honest.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::task::JoinHandle;
use url::Url;

use crate::Check;
use crate::answer::{Answer, Refusal, VerifiedKey};

/// How long the stream may stay silent before it is taken for dead (Otesse says it is alive
/// every 15 seconds).
const STREAM_IDLE: Duration = Duration::from_secs(45);
/// The first pause before reconnecting to the stream, doubled after each failure up to
/// [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Where Otesse is and how the remote guard behaves.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Otesse's base URL, e.g. `https://api.otesse.com` (the guard adds `/v1/keys/...`).
    pub base_url: Url,
    /// A platform service token (`ots_svc_...`), made by Otesse's operator with
    /// `otesse-server service-token create`.
    pub service_token: SecretString,
    /// How long a key Otesse verified may be admitted from the cache while Otesse cannot be
    /// reached. Default 60 seconds; zero turns the fallback off.
    pub cache_ttl: Duration,
    /// How many keys the cache holds at most. Default 10,000.
    pub cache_capacity: u64,
    /// How long one verification may take before Otesse is taken as unreachable. Default 2 s.
    pub timeout: Duration,
}

impl RemoteConfig {
    /// The defaults, for Otesse at `base_url`.
    pub fn new(base_url: Url, service_token: SecretString) -> Self {
        Self {
            base_url,
            service_token,
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 10_000,
            timeout: Duration::from_secs(2),
        }
    }
}

/// Why a remote guard could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The base URL cannot have the API's paths joined to it.
    #[error("the Otesse base URL cannot be used: {0}")]
    BaseUrl(#[from] url::ParseError),
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built: {0}")]
    Client(#[from] reqwest::Error),
}

/// A key Otesse verified lately, and the scopes it was verified for.
#[derive(Debug)]
struct Cached {
    key: VerifiedKey,
    scopes: BTreeSet<String>,
}

type Cache = moka::sync::Cache<[u8; 32], Arc<Cached>>;

pub(crate) struct Remote {
    http: reqwest::Client,
    verify_url: Url,
    token: SecretString,
    cache: Cache,
    listening: Arc<AtomicBool>,
    listener: JoinHandle<()>,
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

#[derive(Serialize)]
struct VerifyBody<'a> {
    key: &'a str,
    scopes: &'a [&'a str],
    method: &'a str,
    path: &'a str,
    ip: Option<String>,
}

impl Remote {
    pub fn start(config: RemoteConfig) -> Result<Self, GuardError> {
        let base = if config.base_url.path().ends_with('/') {
            config.base_url.clone()
        } else {
            let mut base = config.base_url.clone();
            base.set_path(&format!("{}/", base.path()));
            base
        };
        let verify_url = base.join("v1/keys/verify")?;
        let stream_url = base.join("v1/keys/invalidations")?;
        let http =
            reqwest::Client::builder().timeout(config.timeout).redirect(reqwest::redirect::Policy::none()).build()?;
        // The stream has no overall timeout: it is meant to stay open.
        let streaming = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        // A zero window turns the fallback off: the cache then holds nothing.
        let capacity = if config.cache_ttl.is_zero() { 0 } else { config.cache_capacity };
        let cache: Cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .time_to_live(config.cache_ttl.max(Duration::from_millis(1)))
            .build();
        let listening = Arc::new(AtomicBool::new(false));
        let listener =
            tokio::spawn(listen(streaming, stream_url, config.service_token.clone(), cache.clone(), listening.clone()));
        Ok(Self { http, verify_url, token: config.service_token, cache, listening, listener })
    }

    pub async fn verify(&self, check: &Check<'_>) -> Result<VerifiedKey, Refusal> {
        let hash = hash(check.key);
        match self.ask(check).await {
            Ok(answer) => {
                if answer.valid {
                    if let Some(key) = &answer.key {
                        self.remember(hash, key, check.scopes);
                    }
                } else if answer.key_is_gone() {
                    self.cache.invalidate(&hash);
                }
                answer.into_verdict()
            }
            Err(reason) => {
                let now = chrono::Utc::now();
                let fresh = self.cache.get(&hash).filter(|cached| {
                    !cached.key.ended_at(now) && check.scopes.iter().all(|scope| cached.scopes.contains(*scope))
                });
                match fresh {
                    Some(cached) => {
                        tracing::warn!(%reason, key_id = %cached.key.id, "Otesse could not be asked; admitted a key it verified lately");
                        Ok(cached.key.clone())
                    }
                    None => {
                        tracing::warn!(%reason, "Otesse could not be asked; refused a key it did not verify lately");
                        Err(Refusal::unavailable())
                    }
                }
            }
        }
    }

    /// Otesse's answer, or why there is none.
    async fn ask(&self, check: &Check<'_>) -> Result<Answer, String> {
        let body = VerifyBody {
            key: check.key,
            scopes: check.scopes,
            method: check.method,
            path: check.path,
            ip: check.ip.map(|ip| ip.to_string()),
        };
        let response = self
            .http
            .post(self.verify_url.clone())
            .bearer_auth(self.token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|err| format!("the verification API is unreachable: {}", err.without_url()))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            // 401 here is this service's token, not the key: a deployment mistake, logged.
            return Err(format!("the verification API answered {status}"));
        }
        response
            .json::<Answer>()
            .await
            .map_err(|err| format!("the verification API's answer is unreadable: {}", err.without_url()))
    }

    fn remember(&self, hash: [u8; 32], key: &VerifiedKey, scopes: &[&str]) {
        let mut held: BTreeSet<String> = scopes.iter().map(|scope| (*scope).to_owned()).collect();
        if let Some(cached) = self.cache.get(&hash).filter(|cached| cached.key == *key) {
            held.extend(cached.scopes.iter().cloned());
        }
        self.cache.insert(hash, Arc::new(Cached { key: key.clone(), scopes: held }));
    }

    pub fn cached_keys(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }
}

/// SHA-256 of the key, as Otesse names keys on its invalidation stream.
fn hash(key: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Listens to the invalidation stream for as long as the guard lives, reconnecting with
/// backoff. Every connection starts with `ready`, which clears the cache: invalidations sent
/// while disconnected are lost, so nothing cached before may be trusted past that point.
async fn listen(http: reqwest::Client, url: Url, token: SecretString, cache: Cache, listening: Arc<AtomicBool>) {
    let mut pause = FIRST_PAUSE;
    loop {
        match listen_once(&http, &url, &token, &cache, &listening).await {
            Ok(()) => tracing::info!("Otesse's invalidation stream ended; reconnecting"),
            Err(reason) => tracing::warn!(%reason, "Otesse's invalidation stream is unavailable; reconnecting"),
        }
        if listening.swap(false, Ordering::SeqCst) {
            pause = FIRST_PAUSE;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

async fn listen_once(
    http: &reqwest::Client,
    url: &Url,
    token: &SecretString,
    cache: &Cache,
    listening: &AtomicBool,
) -> Result<(), String> {
    let response = http
        .get(url.clone())
        .bearer_auth(token.expose_secret())
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|err| err.without_url().to_string())?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("answered {}", response.status()));
    }
    let mut events = response.bytes_stream().eventsource();
    loop {
        let event = match tokio::time::timeout(STREAM_IDLE, events.next()).await {
            Err(_) => return Err("silent for too long".into()),
            Ok(None) => return Ok(()),
            Ok(Some(Err(err))) => return Err(err.to_string()),
            Ok(Some(Ok(event))) => event,
        };
        apply(&event.event, &event.data, cache, listening);
    }
}

/// One complete event of the stream (a cut-off event never gets here).
fn apply(name: &str, data: &str, cache: &Cache, listening: &AtomicBool) {
    match name {
        "ready" => {
            cache.invalidate_all();
            listening.store(true, Ordering::SeqCst);
        }
        "invalidated" => {
            let hash = serde_json::from_str::<serde_json::Value>(data)
                .ok()
                .and_then(|value| value.get("key_hash").and_then(|hash| hash.as_str()).and_then(parse_hash));
            match hash {
                Some(hash) => cache.invalidate(&hash),
                // Unreadable: be safe rather than sorry.
                None => cache.invalidate_all(),
            }
        }
        "reset" => cache.invalidate_all(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> VerifiedKey {
        serde_json::from_value(serde_json::json!({
            "id": uuid::Uuid::nil(), "organization_id": uuid::Uuid::nil(), "name": "n", "environment": "live",
            "scope_level": "standard", "scopes": ["bookings.read"], "expires_at": null, "revoked_at": null
        }))
        .unwrap()
    }

    #[test]
    fn hashes_read_back_as_the_stream_writes_them() {
        let hash = hash("erp_live_x");
        let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(parse_hash(&hex), Some(hash));
        assert_eq!(parse_hash(&hex[..62]), None);
        assert_eq!(parse_hash(&"zz".repeat(32)), None);
    }

    #[test]
    fn events_drop_what_they_name_and_ready_or_reset_drop_everything() {
        let cache: Cache = moka::sync::Cache::new(10);
        let listening = AtomicBool::new(false);
        let fill = |cache: &Cache| {
            for n in 0..3u8 {
                cache.insert([n; 32], Arc::new(Cached { key: key(), scopes: BTreeSet::new() }));
            }
        };
        fill(&cache);
        let hex: String = [1u8; 32].iter().map(|byte| format!("{byte:02x}")).collect();
        apply("invalidated", &format!("{{\"key_hash\":\"{hex}\"}}"), &cache, &listening);
        assert!(cache.get(&[1; 32]).is_none() && cache.get(&[0; 32]).is_some() && cache.get(&[2; 32]).is_some());

        apply("ping", "{}", &cache, &listening);
        assert!(cache.get(&[0; 32]).is_some(), "unknown events change nothing");
        apply("invalidated", "{\"key_hash\":\"nonsense\"}", &cache, &listening);
        assert!(cache.get(&[0; 32]).is_none(), "an unreadable invalidation drops everything");

        for name in ["ready", "reset"] {
            fill(&cache);
            apply(name, "{}", &cache, &listening);
            assert!((0..3u8).all(|n| cache.get(&[n; 32]).is_none()), "{name}");
        }
        assert!(listening.load(Ordering::SeqCst));
    }
}
