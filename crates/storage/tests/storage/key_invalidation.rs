//! Key invalidations between processes (O2): what one connection publishes, a subscription
//! hears; a subscription whose connection is killed listens again and says so.

use std::time::Duration;

use otesse_domain::api_key::KeyHash;
use otesse_domain::ports::KeyInvalidationBus;
use otesse_storage::{KeyInvalidationSubscription, KeyNotice};
use sea_orm::ConnectionTrait;

use crate::harness::TestDb;

const WAIT: Duration = Duration::from_secs(10);

/// The next notice that is not another test's invalidation (the channel is database-wide).
async fn next_notice(subscription: &mut KeyInvalidationSubscription, mine: &[KeyHash]) -> KeyNotice {
    tokio::time::timeout(WAIT, async {
        loop {
            match subscription.next().await.expect("the subscription answers") {
                KeyNotice::Invalidated(hash) if !mine.contains(&hash) => continue,
                notice => return notice,
            }
        }
    })
    .await
    .expect("a notice arrives in time")
}

/// A hash no other test publishes.
fn unique_hash() -> KeyHash {
    let id = uuid::Uuid::new_v4();
    let mut out = [0; 32];
    out[..16].copy_from_slice(id.as_bytes());
    out[16..].copy_from_slice(id.as_bytes());
    KeyHash(out)
}

#[tokio::test]
async fn sqlite_has_no_subscription_and_publishing_does_nothing() {
    let test_db = TestDb::sqlite().await;
    assert!(KeyInvalidationSubscription::subscribe(&test_db.db).await.unwrap().is_none());
    test_db.db.key_invalidations().publish(&KeyHash([7; 32])).await;
    test_db.finish().await;
}

#[tokio::test]
#[cfg_attr(not(otesse_postgres), ignore = "set OTESSE_TEST_POSTGRES_URL to run on PostgreSQL")]
async fn postgres_subscriptions_hear_invalidations_and_survive_a_lost_connection() {
    let test_db = TestDb::postgres().await;
    let mut subscription = KeyInvalidationSubscription::subscribe(&test_db.db).await.unwrap().expect("PostgreSQL");
    let (before, after) = (unique_hash(), unique_hash());
    let publisher = test_db.db.key_invalidations();

    publisher.publish(&before).await;
    assert_eq!(next_notice(&mut subscription, &[before]).await, KeyNotice::Invalidated(before));

    // Kill the listening connection from the outside, as a restart or a network cut would.
    let killed = subscription.backend_pid().expect("connected");
    let raw = test_db.raw().await;
    raw.execute_unprepared(&format!("SELECT pg_terminate_backend({killed})")).await.unwrap();
    // The notice says so: what was published while disconnected may be lost.
    assert_eq!(next_notice(&mut subscription, &[]).await, KeyNotice::Resubscribed);
    let pid = subscription.backend_pid().expect("connected again");
    assert_ne!(pid, killed);

    publisher.publish(&after).await;
    assert_eq!(next_notice(&mut subscription, &[after]).await, KeyNotice::Invalidated(after));

    // What the owner does when sqlx could not reconnect at once: a fresh connection.
    subscription.resubscribe().await.unwrap();
    assert_ne!(subscription.backend_pid(), Some(pid));
    let last = unique_hash();
    publisher.publish(&last).await;
    assert_eq!(next_notice(&mut subscription, &[last]).await, KeyNotice::Invalidated(last));
    raw.close().await.unwrap();
    test_db.finish().await;
}
