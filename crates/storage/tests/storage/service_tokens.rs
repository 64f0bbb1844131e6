//! Platform service tokens: stored by hash, found by hash, listed oldest first, and revoked
//! once (a later revocation keeps the first time).

use chrono::Duration;
use otesse_domain::api_key::KeyHash;
use otesse_domain::service_token::{ServiceToken, ServiceTokenId, ServiceTokenRepository};
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::t0;

fn token(name: &str, hash: u8, minutes: i64) -> ServiceToken {
    ServiceToken {
        id: ServiceTokenId(Uuid::now_v7()),
        name: name.into(),
        token_hash: KeyHash([hash; 32]),
        last_four: "s9t0".into(),
        created_at: t0() + Duration::minutes(minutes),
        revoked_at: None,
    }
}

async fn service_tokens_are_found_by_hash_listed_and_revoked_once(db: Database) {
    let tokens = db.service_tokens();
    let bookings = token("bookings", 1, 0);
    let invoices = token("invoices", 2, 1);
    tokens.insert(&invoices).await.unwrap();
    tokens.insert(&bookings).await.unwrap();
    assert!(tokens.insert(&token("twin", 1, 2)).await.is_err(), "two tokens never share a hash");

    assert_eq!(tokens.find_by_hash(&KeyHash([1; 32])).await.unwrap(), Some(bookings.clone()), "read back as written");
    assert_eq!(tokens.find_by_hash(&KeyHash([9; 32])).await.unwrap(), None);
    let names: Vec<_> = tokens.list().await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["bookings", "invoices"], "oldest first");

    let first = t0() + Duration::hours(1);
    let revoked = tokens.revoke(bookings.id, first).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(first));
    let again = tokens.revoke(bookings.id, first + Duration::hours(1)).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(first), "a revoked token keeps its time");
    assert_eq!(tokens.revoke(ServiceTokenId(Uuid::now_v7()), first).await.unwrap(), None);
    assert_eq!(tokens.find_by_hash(&KeyHash([2; 32])).await.unwrap().unwrap().revoked_at, None, "the other one stays");
}

on_both_databases!(service_tokens_are_found_by_hash_listed_and_revoked_once);
