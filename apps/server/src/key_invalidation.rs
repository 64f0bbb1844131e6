//! Applies the key invalidations of every process sharing the database to this process's key
//! cache (O2). With PostgreSQL, a key revoked through any process stops working in all of them
//! within about a second, and within the cache window (`key_cache.ttl_secs`) even if a notice is
//! lost. SQLite has one process by design and needs none of this.

use std::sync::Arc;
use std::time::Duration;

use otesse_domain::StorageError;
use otesse_domain::ports::KeyCache;
use otesse_storage::{Database, KEY_INVALIDATION_CHANNEL, KeyInvalidationSubscription, KeyNotice};
use tokio::task::JoinHandle;

/// The first pause before reconnecting, doubled after each failure up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// The background task listening for key invalidations.
#[derive(Debug)]
pub struct KeyInvalidationListener {
    task: JoinHandle<()>,
}

impl KeyInvalidationListener {
    /// Subscribes, then applies every notice to `cache` in a background task until stopped.
    /// Returns once the subscription listens, so that no revocation committed after start-up is
    /// missed. `None` on SQLite.
    pub async fn start(database: &Database, cache: Arc<dyn KeyCache>) -> Result<Option<Self>, StorageError> {
        let Some(subscription) = KeyInvalidationSubscription::subscribe(database).await? else {
            return Ok(None);
        };
        tracing::info!(
            channel = KEY_INVALIDATION_CHANNEL,
            backend_pid = subscription.backend_pid(),
            "listening for key invalidations"
        );
        Ok(Some(Self { task: tokio::spawn(run(subscription, cache)) }))
    }
}

/// Dropping the listener stops it.
impl Drop for KeyInvalidationListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(mut subscription: KeyInvalidationSubscription, cache: Arc<dyn KeyCache>) {
    loop {
        match subscription.next().await {
            Ok(KeyNotice::Invalidated(hash)) => cache.invalidate(&hash),
            Ok(KeyNotice::Resubscribed) => resubscribed(&subscription, cache.as_ref()),
            Err(err) => {
                tracing::warn!(error = %err, "lost the key invalidation connection; reconnecting");
                let mut pause = FIRST_PAUSE;
                loop {
                    tokio::time::sleep(pause).await;
                    match subscription.resubscribe().await {
                        Ok(()) => break,
                        Err(err) => tracing::warn!(error = %err, "could not reconnect to hear key invalidations"),
                    }
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                resubscribed(&subscription, cache.as_ref());
            }
        }
    }
}

/// Notices sent while disconnected are lost, and a key revoked meanwhile may still be cached
/// as valid: forget every entry (each costs one database read to learn again).
fn resubscribed(subscription: &KeyInvalidationSubscription, cache: &dyn KeyCache) {
    cache.invalidate_all();
    tracing::info!(
        backend_pid = subscription.backend_pid(),
        "listening for key invalidations again; cleared the key cache"
    );
}
