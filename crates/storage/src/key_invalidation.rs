//! Key invalidations across the processes that share one PostgreSQL database (O2).
//!
//! Publishing is `pg_notify` on [`KEY_INVALIDATION_CHANNEL`] with the hex of the key's SHA-256
//! (never the key); every process keeps one [`KeyInvalidationSubscription`], a dedicated
//! connection that `LISTEN`s on the channel. PostgreSQL delivers a notice only once it is
//! committed, to every listener, the sender's own process included, within milliseconds.
//!
//! Notices are not durable: one sent while a listener is disconnected is lost. The subscription
//! therefore reports [`KeyNotice::Resubscribed`] after each reconnection, and its owner drops
//! everything it cached (a lost notice then costs at most one database read per key).
//!
//! The channel is database-wide, not per schema: installations sharing a database in separate
//! schemas hear each other's notices, which only evict entries they do not hold.
//!
//! On SQLite, which one process uses by design, publishing does nothing and there is no
//! subscription.

use std::time::Duration;

use async_trait::async_trait;
use otesse_domain::StorageError;
use otesse_domain::api_key::KeyHash;
use otesse_domain::ports::KeyInvalidationBus;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::Database;

/// The PostgreSQL notification channel that carries invalidated key hashes.
pub const KEY_INVALIDATION_CHANNEL: &str = "otesse_key_invalidated";

/// How the listening connection shows in `pg_stat_activity`.
const APPLICATION_NAME: &str = "otesse-key-invalidations";

/// How long one (re)connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes invalidations with `pg_notify`; on SQLite, does nothing.
#[derive(Clone, Debug)]
pub struct KeyInvalidationPublisher {
    conn: DatabaseConnection,
}

impl KeyInvalidationPublisher {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone() }
    }
}

#[async_trait]
impl KeyInvalidationBus for KeyInvalidationPublisher {
    async fn publish(&self, hash: &KeyHash) {
        if self.conn.get_database_backend() != DbBackend::Postgres {
            return;
        }
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [KEY_INVALIDATION_CHANNEL.into(), to_hex(hash).into()],
        );
        if let Err(err) = self.conn.execute_raw(statement).await {
            // The change is committed; other processes now see it when their entry expires.
            tracing::warn!(error = %err, "could not announce a key invalidation to other processes");
        }
    }
}

/// What a subscription hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyNotice {
    /// This key's cached entries are stale.
    Invalidated(KeyHash),
    /// The connection was lost and is listening again; notices sent meanwhile are lost, so
    /// every cached entry may be stale.
    Resubscribed,
}

/// One dedicated PostgreSQL connection listening on [`KEY_INVALIDATION_CHANNEL`].
pub struct KeyInvalidationSubscription {
    options: PgConnectOptions,
    listener: Option<PgListener>,
    backend_pid: Option<i32>,
}

impl std::fmt::Debug for KeyInvalidationSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyInvalidationSubscription").field("backend_pid", &self.backend_pid).finish_non_exhaustive()
    }
}

impl KeyInvalidationSubscription {
    /// Opens the listening connection (with the pool's connection settings, outside the pool)
    /// and starts listening. `None` on SQLite.
    pub async fn subscribe(db: &Database) -> Result<Option<Self>, StorageError> {
        let conn = db.connection();
        if conn.get_database_backend() != DbBackend::Postgres {
            return Ok(None);
        }
        let options =
            (*conn.get_postgres_connection_pool().connect_options()).clone().application_name(APPLICATION_NAME);
        let mut subscription = Self { options, listener: None, backend_pid: None };
        subscription.resubscribe().await?;
        Ok(Some(subscription))
    }

    /// Replaces the connection with a new one and listens on it. After `Ok`, every notice
    /// committed from then on is heard; what was sent before may have been missed.
    pub async fn resubscribe(&mut self) -> Result<(), StorageError> {
        self.listener = None;
        self.backend_pid = None;
        // A pool of one connection, only so that the listener can reconnect by itself.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(CONNECT_TIMEOUT)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(self.options.clone());
        let mut listener = PgListener::connect_with(&pool).await.map_err(sqlx_err)?;
        listener.ignore_pool_close_event(true);
        listener.listen(KEY_INVALIDATION_CHANNEL).await.map_err(sqlx_err)?;
        self.backend_pid = Some(backend_pid(&mut listener).await?);
        self.listener = Some(listener);
        Ok(())
    }

    /// The PostgreSQL backend process serving the subscription, as `pg_stat_activity.pid` shows
    /// it; `None` while disconnected.
    pub fn backend_pid(&self) -> Option<i32> {
        self.backend_pid
    }

    /// Waits for the next notice. A lost connection is re-established at once and reported as
    /// [`KeyNotice::Resubscribed`]; when that fails, the error is returned and the caller
    /// should [`resubscribe`](Self::resubscribe) (after a pause) before waiting again.
    pub async fn next(&mut self) -> Result<KeyNotice, StorageError> {
        loop {
            let Some(listener) = self.listener.as_mut() else {
                return Err(StorageError::new("not subscribed to key invalidations"));
            };
            match listener.try_recv().await {
                Ok(Some(notification)) => match from_hex(notification.payload()) {
                    Some(hash) => return Ok(KeyNotice::Invalidated(hash)),
                    None => tracing::warn!(channel = notification.channel(), "ignored a malformed key invalidation"),
                },
                // sqlx reconnected and listens again before answering `None`.
                Ok(None) => {
                    let pid = backend_pid(listener).await;
                    self.backend_pid = pid.as_ref().ok().copied();
                    pid?;
                    return Ok(KeyNotice::Resubscribed);
                }
                Err(err) => {
                    self.listener = None;
                    self.backend_pid = None;
                    return Err(sqlx_err(err));
                }
            }
        }
    }
}

async fn backend_pid(listener: &mut PgListener) -> Result<i32, StorageError> {
    sea_orm::sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()").fetch_one(listener).await.map_err(sqlx_err)
}

fn sqlx_err(err: sea_orm::sqlx::Error) -> StorageError {
    StorageError::new(format!("key invalidations: {err}"))
}

fn to_hex(hash: &KeyHash) -> String {
    hash.0.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn from_hex(text: &str) -> Option<KeyHash> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *slot = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(KeyHash(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_travel_as_lowercase_hex() {
        let hash = KeyHash(std::array::from_fn(|i| (i * 37) as u8));
        let text = to_hex(&hash);
        assert_eq!(text.len(), 64);
        assert!(text.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_eq!(from_hex(&text), Some(hash));
        assert_eq!(from_hex(&text.to_uppercase()), Some(hash));
        for bad in ["", "00", &"g".repeat(64), &"0".repeat(63), &"0".repeat(65), &"é".repeat(32)] {
            assert_eq!(from_hex(bad), None, "{bad:?}");
        }
    }
}
