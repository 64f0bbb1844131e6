//! Protect an actix-web service's routes with Otesse API keys.
//!
//! A handler names the scope it needs with [`Authorized`] and gets the verified key; a request
//! whose key is missing, unknown, revoked, expired, not allowed from its address, over its rate
//! limit or without the scope is answered the way Otesse answers it: the same status, the same
//! `{"error": {"type", "code", "message"}}` body, the same `Retry-After`.
//!
//! Two ways to check a key:
//! - [`Guard::remote`] asks Otesse's verification API (`POST /v1/keys/verify`) with a platform
//!   service token, for every request: Otesse applies the key's rate limit and writes the call
//!   to the key's usage log, so "Last used" and the usage chart show the whole platform. Keys
//!   verified lately are kept in a bounded local cache that answers only while Otesse cannot be
//!   reached, and that drops a key the moment Otesse says it was revoked or rotated out (the
//!   `GET /v1/keys/invalidations` stream). A key Otesse never confirmed is never let through.
//! - [`Guard::embedded`] (feature `embedded`) opens Otesse's own domain and storage crates on
//!   Otesse's database and checks keys in-process, with the same answers and the same usage log.
//!
//! # Example
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use otesse_guard::scope::BookingsRead;
//! use otesse_guard::{Authorized, Guard, RemoteConfig};
//!
//! async fn list_bookings(key: Authorized<BookingsRead>) -> String {
//!     // Only keys holding `bookings.read` get here; `key` says whose key it is.
//!     format!("bookings of organization {} ({:?})", key.organization_id, key.environment)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = Guard::remote(RemoteConfig::new(
//!     "http://127.0.0.1:8080".parse()?,
//!     std::env::var("OTESSE_SERVICE_TOKEN")?.into(),
//! ))?;
//! let guard = web::Data::new(guard);
//! HttpServer::new(move || {
//!     App::new().app_data(guard.clone()).route("/v1/bookings", web::get().to(list_bookings))
//! })
//! .bind("127.0.0.1:8090")?
//! .run()
//! .await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod answer;
#[cfg(feature = "embedded")]
mod embedded;
mod extract;
mod remote;
pub mod scope;

use std::net::IpAddr;
use std::sync::Arc;

pub use answer::{Environment, Refusal, VerifiedKey};
#[cfg(feature = "embedded")]
pub use embedded::EmbeddedError;
pub use extract::{Authorized, RequiredScope};
pub use remote::{GuardError, RemoteConfig};

/// One request to check: the key presented, the scopes it needs, and the request as the
/// key's usage log in Otesse should show it.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// The key as presented (`erp_live_...` or `erp_test_...`).
    pub key: &'a str,
    /// Scopes the request needs; the key must hold each one.
    pub scopes: &'a [&'a str],
    /// The request's method, e.g. `GET`.
    pub method: &'a str,
    /// The request's path, e.g. `/v1/bookings`.
    pub path: &'a str,
    /// The client's address, for the key's IP allow-list.
    pub ip: Option<IpAddr>,
}

/// Checks keys, remotely or embedded. Cheap to clone; share one per service (as
/// `web::Data<Guard>` for the [`Authorized`] extractor).
#[derive(Clone)]
pub struct Guard {
    mode: Arc<Mode>,
}

enum Mode {
    Remote(remote::Remote),
    #[cfg(feature = "embedded")]
    Embedded(Box<embedded::Embedded>),
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match *self.mode {
            Mode::Remote(_) => "remote",
            #[cfg(feature = "embedded")]
            Mode::Embedded(_) => "embedded",
        };
        f.debug_struct("Guard").field("mode", &mode).finish_non_exhaustive()
    }
}

impl Guard {
    /// A guard that asks Otesse's verification API, and listens to its invalidation stream in
    /// a background task (so it must be made inside a Tokio runtime).
    pub fn remote(config: RemoteConfig) -> Result<Self, GuardError> {
        Ok(Self { mode: Arc::new(Mode::Remote(remote::Remote::start(config)?)) })
    }

    /// A guard that checks keys in-process on Otesse's database, which `settings` name as
    /// Otesse's own settings do (`OTESSE_DATABASE_URL`, `OTESSE_RATE_LIMIT__*`,
    /// `OTESSE_KEY_CACHE__*`). The database must already hold Otesse's current schema.
    #[cfg(feature = "embedded")]
    pub async fn embedded(settings: &otesse_server::config::Settings) -> Result<Self, EmbeddedError> {
        Ok(Self { mode: Arc::new(Mode::Embedded(Box::new(embedded::Embedded::open(settings).await?))) })
    }

    /// Checks one request's key: the verified key, or the answer Otesse gives such a request.
    pub async fn verify(&self, check: &Check<'_>) -> Result<VerifiedKey, Refusal> {
        match &*self.mode {
            Mode::Remote(remote) => remote.verify(check).await,
            #[cfg(feature = "embedded")]
            Mode::Embedded(embedded) => embedded.verify(check).await,
        }
    }

    /// How many keys the remote cache holds (always 0 embedded, whose cache is Otesse's own).
    pub fn cached_keys(&self) -> u64 {
        match &*self.mode {
            Mode::Remote(remote) => remote.cached_keys(),
            #[cfg(feature = "embedded")]
            Mode::Embedded(_) => 0,
        }
    }

    /// Whether the remote guard is listening to Otesse's invalidation stream right now.
    pub fn is_listening(&self) -> bool {
        match &*self.mode {
            Mode::Remote(remote) => remote.is_listening(),
            #[cfg(feature = "embedded")]
            Mode::Embedded(_) => true,
        }
    }

    /// Writes the usage rows an embedded guard still holds in its queue (a no-op remotely,
    /// where Otesse writes them).
    pub async fn flush(&self) {
        #[cfg(feature = "embedded")]
        if let Mode::Embedded(embedded) = &*self.mode {
            embedded.flush().await;
        }
    }
}
