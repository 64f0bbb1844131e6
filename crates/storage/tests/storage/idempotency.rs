//! Idempotency records: one winner per key and caller, replays of the stored answer, mismatches,
//! expiry and pruning.

use chrono::{DateTime, Duration, Utc};
use otesse_domain::idempotency::{Begin, IdempotencyKey, IdempotencyStore, StoredResponse};
use otesse_domain::integration::Ciphertext;
use otesse_storage::Database;

use crate::fixtures::t0;

on_both_databases!(
    a_key_runs_once_then_replays,
    concurrent_first_requests_have_one_winner,
    expired_records_are_replaced_and_pruned
);

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

fn key(raw: &str) -> IdempotencyKey {
    IdempotencyKey::parse(raw).unwrap()
}

fn day_before(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::hours(24)
}

async fn a_key_runs_once_then_replays(db: Database) {
    let store = db.idempotency();
    let Begin::New { record } = store.begin("user:1", &key("k1"), &[1; 32], at(0), day_before(at(0))).await.unwrap()
    else {
        panic!("a new key")
    };
    assert_eq!(store.begin("user:1", &key("k1"), &[1; 32], at(1), day_before(at(1))).await.unwrap(), Begin::InProgress);
    assert_eq!(store.begin("user:1", &key("k1"), &[2; 32], at(1), day_before(at(1))).await.unwrap(), Begin::Mismatch);
    let response = StoredResponse {
        status: 201,
        content_type: "application/json".into(),
        body: Ciphertext { key_version: 1, bytes: b"sealed".to_vec() },
    };
    store.complete(record, &response).await.unwrap();
    let replay = store.begin("user:1", &key("k1"), &[1; 32], at(2), day_before(at(2))).await.unwrap();
    assert_eq!(replay, Begin::Completed { record, response });
    // Another caller's same key is theirs alone.
    assert!(matches!(
        store.begin("key:9", &key("k1"), &[1; 32], at(2), day_before(at(2))).await.unwrap(),
        Begin::New { .. }
    ));
    // An abandoned key may run again.
    let Begin::New { record } = store.begin("user:1", &key("k2"), &[3; 32], at(3), day_before(at(3))).await.unwrap()
    else {
        panic!()
    };
    store.abandon(record).await.unwrap();
    assert!(matches!(
        store.begin("user:1", &key("k2"), &[3; 32], at(4), day_before(at(4))).await.unwrap(),
        Begin::New { .. }
    ));
}

async fn concurrent_first_requests_have_one_winner(db: Database) {
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let store = db.idempotency();
            tokio::spawn(async move { store.begin("user:1", &key("race"), &[7; 32], at(0), day_before(at(0))).await })
        })
        .collect();
    let mut new = 0;
    for attempt in attempts {
        match attempt.await.unwrap().unwrap() {
            Begin::New { .. } => new += 1,
            Begin::InProgress => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(new, 1);
}

async fn expired_records_are_replaced_and_pruned(db: Database) {
    let store = db.idempotency();
    store.begin("user:1", &key("old"), &[1; 32], at(0), day_before(at(0))).await.unwrap();
    store.begin("user:1", &key("recent"), &[1; 32], at(60 * 20), day_before(at(60 * 20))).await.unwrap();
    let later = at(60 * 25);
    // More than 24 hours on, the old key is new again, even with another request.
    assert!(matches!(
        store.begin("user:1", &key("old"), &[9; 32], later, day_before(later)).await.unwrap(),
        Begin::New { .. }
    ));
    assert_eq!(store.prune(at(60 * 20)).await.unwrap(), 0, "nothing older than that: the old one was replaced");
    assert_eq!(store.prune(at(60 * 26)).await.unwrap(), 2);
}
