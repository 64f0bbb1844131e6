//! Applies the key invalidations of every process sharing the database to this process's key
//! cache (O2). With PostgreSQL, a key revoked through any process stops working in all of them
//! within about a second, and within the cache window (`key_cache.ttl_secs`) even if a notice is
//! lost. SQLite has one process by design and needs none of this.

use std::sync::Arc;
use std::time::Duration;

use otesse_domain::StorageError;
use otesse_domain::api_key::KeyHash;
use otesse_domain::ports::{CachedKey, KeyCache};
use otesse_storage::{Database, KEY_INVALIDATION_CHANNEL, KeyInvalidationSubscription, KeyNotice};
use tokio::sync::{broadcast, watch};
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

/// What the platform's services hear on `GET /v1/keys/invalidations` (S1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// Cached entries of the key with this hash are stale (revoked, or rotated out).
    Key(KeyHash),
    /// Anything cached may be stale: this process may have missed invalidations.
    Reset,
}

/// Every invalidation this process applies to its key cache, for the services listening on
/// `GET /v1/keys/invalidations`; and the signal that ends their streams when the server stops.
#[derive(Clone)]
pub struct InvalidationFeed {
    sender: broadcast::Sender<Invalidation>,
    closing: watch::Sender<bool>,
}

impl InvalidationFeed {
    /// A listener further behind than this hears [`Invalidation::Reset`] instead.
    const BACKLOG: usize = 1024;

    pub fn new() -> Self {
        Self { sender: broadcast::channel(Self::BACKLOG).0, closing: watch::channel(false).0 }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Invalidation> {
        self.sender.subscribe()
    }

    /// Ends every stream (the server is stopping; the services reconnect to another process).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    fn publish(&self, invalidation: Invalidation) {
        // No listener is not an error.
        let _ = self.sender.send(invalidation);
    }
}

impl Default for InvalidationFeed {
    fn default() -> Self {
        Self::new()
    }
}

/// The process's [`KeyCache`], telling the [`InvalidationFeed`] about every entry it drops:
/// revocations made here (the service drops the entry) and those heard from the other processes
/// (the listener above drops it) alike, so a service listening to any one process hears all.
pub struct BroadcastingKeyCache {
    inner: Arc<dyn KeyCache>,
    feed: InvalidationFeed,
}

impl BroadcastingKeyCache {
    pub fn new(inner: Arc<dyn KeyCache>, feed: InvalidationFeed) -> Self {
        Self { inner, feed }
    }
}

impl KeyCache for BroadcastingKeyCache {
    fn get(&self, hash: &KeyHash) -> Option<CachedKey> {
        self.inner.get(hash)
    }

    fn insert(&self, hash: KeyHash, entry: CachedKey) {
        self.inner.insert(hash, entry);
    }

    fn invalidate(&self, hash: &KeyHash) {
        self.inner.invalidate(hash);
        self.feed.publish(Invalidation::Key(*hash));
    }

    fn invalidate_all(&self) {
        self.inner.invalidate_all();
        self.feed.publish(Invalidation::Reset);
    }
}

#[cfg(test)]
mod tests {
    use otesse_domain::ports::MockKeyCache;

    use super::*;

    #[tokio::test]
    async fn every_entry_the_cache_drops_is_heard_by_the_feed_and_nothing_else_is() {
        let mut inner = MockKeyCache::new();
        inner.expect_invalidate().times(1).return_const(());
        inner.expect_invalidate_all().times(1).return_const(());
        inner.expect_insert().times(1).return_const(());
        inner.expect_get().times(1).return_const(None::<CachedKey>);
        let feed = InvalidationFeed::new();
        let mut heard = feed.subscribe();
        let cache = BroadcastingKeyCache::new(Arc::new(inner), feed.clone());

        cache.insert(KeyHash([1; 32]), None);
        assert!(cache.get(&KeyHash([1; 32])).is_none());
        cache.invalidate(&KeyHash([7; 32]));
        cache.invalidate_all();

        assert_eq!(heard.recv().await.unwrap(), Invalidation::Key(KeyHash([7; 32])));
        assert_eq!(heard.recv().await.unwrap(), Invalidation::Reset);
        assert!(heard.try_recv().is_err(), "reads and inserts are not invalidations");
    }
}
