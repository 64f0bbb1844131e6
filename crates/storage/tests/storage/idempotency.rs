//! Idempotency records: one winner per key and caller, replays of the stored answer, mismatches,
//! expiry and pruning.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use otesse_domain::api_key::ApiKeyId;
use otesse_domain::idempotency::{
    Begin, CLAIM_LEASE_MINUTES, CallerScope, Fingerprint, IdempotencyKey, IdempotencyStore, KEEP_FOR_HOURS,
    StoredResponse,
};
use otesse_domain::sealed::Ciphertext;
use otesse_domain::user::UserId;
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::t0;

on_both_databases!(
    a_key_runs_once_then_replays,
    an_abandoned_key_runs_again,
    concurrent_first_requests_have_one_winner,
    expired_records_are_absent_and_pruned,
    a_claim_whose_request_died_is_free_once_its_lease_ends
);

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

fn key(raw: &str) -> IdempotencyKey {
    IdempotencyKey::parse(raw).unwrap()
}

fn user(n: u128) -> CallerScope {
    CallerScope::user(UserId(Uuid::from_u128(n)))
}

fn print(n: u8) -> Fingerprint {
    Fingerprint::from_digest([n; 32])
}

fn answer(status: u16, sealed: &[u8]) -> StoredResponse {
    StoredResponse {
        status,
        content_type: "application/json".into(),
        location: (status == 409).then(|| "/v1/api-keys/0195".to_owned()),
        body: Ciphertext { key_version: 3, bytes: sealed.to_vec() },
    }
}

async fn a_key_runs_once_then_replays(db: Database) {
    let store = db.idempotency();
    let Begin::New { record } = store.begin(&user(1), &key("k1"), &print(1), at(0)).await.unwrap() else {
        panic!("a new key")
    };
    assert_eq!(store.begin(&user(1), &key("k1"), &print(1), at(1)).await.unwrap(), Begin::InProgress);
    assert_eq!(store.begin(&user(1), &key("k1"), &print(2), at(1)).await.unwrap(), Begin::Mismatch);

    let response = answer(201, b"sealed \x00\xff bytes");
    store.complete(record, &response).await.unwrap();
    let replay = store.begin(&user(1), &key("k1"), &print(1), at(2)).await.unwrap();
    assert_eq!(replay, Begin::Completed { record, response: response.clone() }, "read back as written");
    assert_eq!(store.begin(&user(1), &key("k1"), &print(2), at(2)).await.unwrap(), Begin::Mismatch);
    // Still there just before the keep time ends.
    let last_minute = at(60 * KEEP_FOR_HOURS - 1);
    assert_eq!(
        store.begin(&user(1), &key("k1"), &print(1), last_minute).await.unwrap(),
        Begin::Completed { record, response }
    );

    // The same key of another caller (another user, or a key with the same id) is theirs alone.
    for other in [user(2), CallerScope::api_key(ApiKeyId(Uuid::from_u128(1)))] {
        assert!(matches!(store.begin(&other, &key("k1"), &print(2), at(3)).await.unwrap(), Begin::New { .. }));
    }
    // Keys are compared exactly.
    assert!(matches!(store.begin(&user(1), &key("K1"), &print(1), at(3)).await.unwrap(), Begin::New { .. }));

    // An answer that points somewhere (a secret shown once) keeps its location.
    let Begin::New { record } = store.begin(&user(1), &key("k2"), &print(1), at(4)).await.unwrap() else {
        panic!("a new key")
    };
    let pointing = answer(409, b"sealed pointer");
    assert!(pointing.location.is_some());
    store.complete(record, &pointing).await.unwrap();
    let replay = store.begin(&user(1), &key("k2"), &print(1), at(5)).await.unwrap();
    assert_eq!(replay, Begin::Completed { record, response: pointing });
}

async fn an_abandoned_key_runs_again(db: Database) {
    let store = db.idempotency();
    let Begin::New { record } = store.begin(&user(1), &key("k2"), &print(3), at(0)).await.unwrap() else {
        panic!("a new key")
    };
    store.abandon(record).await.unwrap();
    let Begin::New { record: again } = store.begin(&user(1), &key("k2"), &print(4), at(1)).await.unwrap() else {
        panic!("free again, for any request")
    };
    assert_ne!(again, record);
    // An answer for a record that is gone is an error, not a silent loss.
    assert!(store.complete(record, &answer(200, b"x")).await.is_err());
    store.complete(again, &answer(400, b"y")).await.unwrap();
    assert!(matches!(
        store.begin(&user(1), &key("k2"), &print(4), at(2)).await.unwrap(),
        Begin::Completed { response, .. } if response.status == 400
    ));
}

async fn concurrent_first_requests_have_one_winner(db: Database) {
    let store = Arc::new(db.idempotency());
    let start = Arc::new(tokio::sync::Barrier::new(12));
    let attempts: Vec<_> = (0..12)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            // Two in three send the same request; the rest another one under the same key.
            let fingerprint = if i % 3 == 2 { print(8) } else { print(7) };
            tokio::spawn(async move {
                start.wait().await;
                (fingerprint, store.begin(&user(1), &key("race"), &fingerprint, at(0)).await.unwrap())
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(attempt.await.unwrap());
    }
    let winners: Vec<_> = outcomes.iter().filter(|(_, begun)| matches!(begun, Begin::New { .. })).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let winning_print = winners[0].0;
    for (fingerprint, begun) in &outcomes {
        match begun {
            Begin::New { .. } => {}
            Begin::InProgress => assert_eq!(*fingerprint, winning_print),
            Begin::Mismatch => assert_ne!(*fingerprint, winning_print),
            Begin::Completed { .. } => panic!("nothing completed"),
        }
    }
}

async fn expired_records_are_absent_and_pruned(db: Database) {
    let store = db.idempotency();
    let day = 60 * KEEP_FOR_HOURS;
    let Begin::New { record: old } = store.begin(&user(1), &key("old"), &print(1), at(0)).await.unwrap() else {
        panic!()
    };
    store.complete(old, &answer(201, b"old answer")).await.unwrap();
    // Left in progress (its process died), then forgotten with the rest.
    store.begin(&user(1), &key("stuck"), &print(1), at(0)).await.unwrap();
    let Begin::New { record: recent } = store.begin(&user(1), &key("recent"), &print(1), at(day - 60)).await.unwrap()
    else {
        panic!()
    };
    store.complete(recent, &answer(201, b"recent answer")).await.unwrap();

    // A day on, the old keys are new again, even for another request.
    let later = at(day + 1);
    let Begin::New { record: renewed } = store.begin(&user(1), &key("old"), &print(9), later).await.unwrap() else {
        panic!("an expired answer is not replayed")
    };
    assert_ne!(renewed, old);
    assert!(matches!(store.begin(&user(1), &key("stuck"), &print(1), later).await.unwrap(), Begin::New { .. }));
    assert!(matches!(store.begin(&user(1), &key("recent"), &print(1), later).await.unwrap(), Begin::Completed { .. }));

    assert_eq!(store.prune(at(day - 60)).await.unwrap(), 0, "the expired ones were replaced already");
    assert_eq!(store.prune(at(day)).await.unwrap(), 1, "`recent`, strictly before");
    assert_eq!(store.prune(at(day + 2)).await.unwrap(), 2, "the renewed two");
    assert_eq!(store.prune(at(10 * day)).await.unwrap(), 0);
}

async fn a_claim_whose_request_died_is_free_once_its_lease_ends(db: Database) {
    let store = db.idempotency();
    let lease = Duration::minutes(CLAIM_LEASE_MINUTES);
    let Begin::New { record: dead } = store.begin(&user(1), &key("k3"), &print(1), t0()).await.unwrap() else {
        panic!("a new key")
    };
    // Its request never answers. Within the lease, retries wait for it.
    let almost = t0() + lease - Duration::seconds(1);
    assert_eq!(store.begin(&user(1), &key("k3"), &print(1), almost).await.unwrap(), Begin::InProgress);
    // Past it, the key is free again, for the same request or another one.
    let past = t0() + lease + Duration::seconds(1);
    let Begin::New { record: retry } = store.begin(&user(1), &key("k3"), &print(2), past).await.unwrap() else {
        panic!("a dead claim no longer holds the key")
    };
    assert_ne!(retry, dead);
    assert!(store.complete(dead, &answer(201, b"late")).await.is_err(), "the dead claim's answer has no home");
    store.complete(retry, &answer(201, b"retry")).await.unwrap();
    // A finished answer is not subject to the lease: it is replayed for the whole day.
    let hours_later = past + Duration::hours(2);
    assert!(matches!(
        store.begin(&user(1), &key("k3"), &print(2), hours_later).await.unwrap(),
        Begin::Completed { record, .. } if record == retry
    ));
}
