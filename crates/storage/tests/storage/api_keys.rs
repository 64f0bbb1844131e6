//! API keys: the round trip of every field, the atomic limit and name checks under concurrency
//! (K3, K7), revocation and rotation (K11, K12).

use chrono::Duration;
use otesse_domain::api_key::{
    ApiKeyDescription, ApiKeyId, ApiKeyStatus, Environment, ExpiresIn, Scope, ScopeLevel, parse_allowed_ip,
};
use otesse_domain::audit::AuditFilter;
use otesse_domain::event::{Event, EventKind};
use otesse_domain::organization::OrganizationId;
use otesse_domain::page::PageRequest;
use otesse_domain::ports::{ApiKeyRepository, AuditLog, InsertKeyError, RotateStoredKeyError};
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::{created, entry, key, key_event, random_hash, revoked, setup, t0};

on_both_databases!(
    every_field_survives_the_round_trip,
    concurrent_inserts_never_exceed_the_limit,
    concurrent_inserts_never_duplicate_a_name,
    revoked_and_expired_keys_free_their_name_and_place,
    revocation_only_moves_earlier_and_is_audited,
    rotation_schedules_the_old_key_atomically,
    a_key_has_at_most_one_active_successor,
    concurrent_rotations_of_one_key_make_one_successor,
);

async fn every_field_survives_the_round_trip(db: Database) {
    let (organization, admin) = setup(&db).await;
    let keys = db.api_keys();
    let mut full = key(&admin, "Zapier — production");
    full.description = ApiKeyDescription::parse("Syncs customers to the CRM").unwrap();
    full.environment = Environment::Test;
    full.scope_level = ScopeLevel::Admin;
    full.scopes = vec![Scope::SettingsWrite, Scope::CustomersRead, Scope::IntegrationsManage];
    full.expires_in = ExpiresIn::Days30;
    full.expires_at = ExpiresIn::Days30.expires_at(t0());
    full.allowed_ips = vec![
        parse_allowed_ip("10.1.0.0/16").unwrap(),
        parse_allowed_ip("203.0.113.7").unwrap(),
        parse_allowed_ip("2001:db8::/32").unwrap(),
    ];
    full.revoked_at = Some(t0() + Duration::days(3));
    full.rotated_from = Some(ApiKeyId(Uuid::now_v7()));
    full.last_used_at = Some(t0() - Duration::minutes(5));
    let mut plain = key(&admin, "Backend");
    plain.expires_in = ExpiresIn::Never;
    plain.expires_at = None;

    let full_audit = created(&full);
    let plain_audit = created(&plain);
    keys.insert(&full, &full_audit, 25, t0()).await.unwrap();
    keys.insert(&plain, &plain_audit, 25, t0()).await.unwrap();

    assert_eq!(keys.find(organization.id, full.id).await.unwrap(), Some(full.clone()));
    assert_eq!(keys.find(organization.id, plain.id).await.unwrap(), Some(plain.clone()));
    assert_eq!(keys.find_by_hash(&full.key_hash).await.unwrap(), Some(full.clone()));
    assert_eq!(keys.find_by_hash(&random_hash()).await.unwrap(), None);
    assert_eq!(keys.list(organization.id).await.unwrap(), vec![plain.clone(), full.clone()], "newest first");

    let elsewhere = OrganizationId(Uuid::now_v7());
    assert_eq!(keys.find(elsewhere, full.id).await.unwrap(), None);
    assert_eq!(keys.list(elsewhere).await.unwrap(), vec![]);

    // The event's audit row went in with the key.
    let page = PageRequest::new(None, None).unwrap();
    let trail = db.audit().list(organization.id, &AuditFilter::default(), &page).await.unwrap();
    assert_eq!(trail.items, vec![entry(&plain_audit), entry(&full_audit)]);
}

async fn concurrent_inserts_never_exceed_the_limit(db: Database) {
    let (organization, admin) = setup(&db).await;
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let keys = db.api_keys();
            let key = key(&admin, &format!("key {n}"));
            tokio::spawn(async move { keys.insert(&key, &created(&key), 25, t0()).await })
        })
        .collect();
    let outcomes: Vec<_> =
        futures_util::future::join_all(tasks).await.into_iter().map(|joined| joined.expect("task")).collect();

    let ok = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let refused = outcomes.iter().filter(|outcome| **outcome == Err(InsertKeyError::LimitReached)).count();
    assert_eq!((ok, refused), (25, 25), "{outcomes:?}");
    assert_eq!(db.api_keys().list(organization.id).await.unwrap().len(), 25);
}

async fn concurrent_inserts_never_duplicate_a_name(db: Database) {
    let (organization, admin) = setup(&db).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let keys = db.api_keys();
            let key = key(&admin, "Backend");
            tokio::spawn(async move { keys.insert(&key, &created(&key), 25, t0()).await })
        })
        .collect();
    let outcomes: Vec<_> =
        futures_util::future::join_all(tasks).await.into_iter().map(|joined| joined.expect("task")).collect();

    let ok = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let taken = outcomes.iter().filter(|outcome| **outcome == Err(InsertKeyError::NameTaken)).count();
    assert_eq!((ok, taken), (1, 19), "{outcomes:?}");
    assert_eq!(db.api_keys().list(organization.id).await.unwrap().len(), 1);
}

async fn revoked_and_expired_keys_free_their_name_and_place(db: Database) {
    let (organization, admin) = setup(&db).await;
    let keys = db.api_keys();
    let limit = 2;
    let insert = |key: otesse_domain::api_key::ApiKey, now| {
        let keys = keys.clone();
        async move { keys.insert(&key, &created(&key), limit, now).await }
    };

    let first_a = key(&admin, "A");
    insert(first_a.clone(), t0()).await.unwrap();
    assert_eq!(insert(key(&admin, "A"), t0()).await, Err(InsertKeyError::NameTaken));

    // Once revoked, the name is free again and the key no longer counts.
    keys.revoke(organization.id, first_a.id, t0(), &revoked(&first_a, t0())).await.unwrap().expect("the key exists");
    insert(key(&admin, "A"), t0()).await.unwrap();

    let mut short_lived = key(&admin, "B");
    short_lived.expires_at = Some(t0() + Duration::hours(1));
    insert(short_lived, t0()).await.unwrap();
    assert_eq!(insert(key(&admin, "C"), t0()).await, Err(InsertKeyError::LimitReached));

    // Two hours later "B" has expired: its name and its place are free.
    let later = t0() + Duration::hours(2);
    insert(key(&admin, "B"), later).await.unwrap();
    assert_eq!(insert(key(&admin, "D"), later).await, Err(InsertKeyError::LimitReached));

    let all = keys.list(organization.id).await.unwrap();
    assert_eq!(all.len(), 4, "refused inserts leave no row");
    let active: Vec<_> = all.iter().filter(|key| key.is_active(later)).map(|key| key.name.as_str()).collect();
    assert_eq!(active, vec!["B", "A"]);
}

async fn revocation_only_moves_earlier_and_is_audited(db: Database) {
    let (organization, admin) = setup(&db).await;
    let keys = db.api_keys();
    let backend = key(&admin, "Backend");
    keys.insert(&backend, &created(&backend), 25, t0()).await.unwrap();

    let revoke = |at| {
        let keys = keys.clone();
        let event = revoked(&backend, at);
        async move { keys.revoke(organization.id, backend.id, at, &event).await.unwrap().expect("the key exists") }
    };
    let in_two_hours = t0() + Duration::hours(2);
    let in_one_hour = t0() + Duration::hours(1);
    assert_eq!(revoke(in_two_hours).await.revoked_at, Some(in_two_hours));
    assert_eq!(revoke(in_one_hour).await.revoked_at, Some(in_one_hour));
    let stored = revoke(t0() + Duration::hours(3)).await;
    assert_eq!(stored.revoked_at, Some(in_one_hour), "never moves later");
    assert_eq!(stored.status(in_one_hour), ApiKeyStatus::Revoked);
    assert_eq!(keys.find(organization.id, backend.id).await.unwrap(), Some(stored));

    // Another organization's key, or no key at all: nothing happens, nothing is audited.
    let elsewhere = OrganizationId(Uuid::now_v7());
    let event = revoked(&backend, t0());
    assert_eq!(keys.revoke(elsewhere, backend.id, t0(), &event).await.unwrap(), None);
    assert_eq!(keys.revoke(organization.id, ApiKeyId(Uuid::now_v7()), t0(), &event).await.unwrap(), None);
    assert_eq!(keys.find(organization.id, backend.id).await.unwrap().unwrap().revoked_at, Some(in_one_hour));

    let filter = AuditFilter { action: Some(EventKind::ApiKeyRevoked), ..AuditFilter::default() };
    let page = PageRequest::new(None, None).unwrap();
    let revocations = db.audit().list(organization.id, &filter, &page).await.unwrap();
    assert_eq!(revocations.items.len(), 2, "a revocation that changes nothing records nothing");
    assert!(revocations.items.iter().all(|entry| entry.target_id == backend.id.to_string()));
}

async fn rotation_schedules_the_old_key_atomically(db: Database) {
    let (organization, admin) = setup(&db).await;
    let keys = db.api_keys();
    let limit = 2;
    let old = key(&admin, "Backend");
    keys.insert(&old, &created(&old), limit, t0()).await.unwrap();

    let rotated = |from: &otesse_domain::api_key::ApiKey| {
        let mut new = key(&admin, &format!("{} (rotated)", from.name.as_str()));
        new.rotated_from = Some(from.id);
        new
    };
    let rotation_audit = |new: &otesse_domain::api_key::ApiKey| {
        let event = Event::ApiKeyRotated {
            key: new.clone(),
            rotated_from: new.rotated_from.unwrap(),
            old_key_revoked_at: None,
        };
        key_event(new, event, t0())
    };

    // Rotate with a one-hour grace period.
    let grace_end = t0() + Duration::hours(1);
    let new = rotated(&old);
    keys.rotate(&new, old.id, Some(grace_end), &rotation_audit(&new), limit, t0()).await.unwrap();
    let old_now = keys.find(organization.id, old.id).await.unwrap().unwrap();
    assert_eq!(old_now.revoked_at, Some(grace_end));
    assert!(old_now.is_active(t0()), "the old key works until the grace period ends");
    let stored_new = keys.find(organization.id, new.id).await.unwrap().unwrap();
    assert_eq!(stored_new, new);
    assert_eq!(stored_new.rotated_from, Some(old.id));
    assert_ne!(stored_new.key_hash, old.key_hash, "a rotated key shares no secret");
    assert_ne!(stored_new.last4, old.last4);
    assert_eq!(keys.find_by_hash(&old.key_hash).await.unwrap(), Some(old_now.clone()));

    // Both keys are active until the grace period ends, so the limit of 2 is reached: a
    // rotation that keeps its old key working is refused, and leaves the old key untouched.
    let refused = rotated(&new);
    assert_eq!(
        keys.rotate(&refused, new.id, Some(t0() + Duration::minutes(30)), &rotation_audit(&refused), limit, t0(),)
            .await,
        Err(RotateStoredKeyError::Insert(InsertKeyError::LimitReached))
    );
    assert_eq!(
        keys.find(organization.id, new.id).await.unwrap().unwrap().revoked_at,
        None,
        "a refused rotation rolls back the old key's revocation"
    );
    assert_eq!(keys.find(organization.id, refused.id).await.unwrap(), None);

    // Revoking the old key at once frees its place before the limit is checked.
    let immediate = rotated(&new);
    keys.rotate(&immediate, new.id, Some(t0()), &rotation_audit(&immediate), limit, t0()).await.unwrap();
    assert_eq!(keys.find(organization.id, new.id).await.unwrap().unwrap().status(t0()), ApiKeyStatus::Revoked);

    // Its successor revoked, the old key may be rotated again; scheduling never pushes its
    // earlier revocation later (one more place, since both keys stay active).
    let again = rotated(&old);
    keys.rotate(&again, old.id, Some(t0() + Duration::days(1)), &rotation_audit(&again), limit + 1, t0())
        .await
        .unwrap();
    assert_eq!(keys.find(organization.id, old.id).await.unwrap().unwrap().revoked_at, Some(grace_end));

    // Past its scheduled end the old key is revoked, and a rotation of it is refused.
    let late = rotated(&again);
    assert_eq!(
        keys.rotate(&late, old.id, None, &rotation_audit(&late), 25, t0() + Duration::hours(2)).await,
        Err(RotateStoredKeyError::OldKeyNotActive(ApiKeyStatus::Revoked))
    );
    assert_eq!(keys.find(organization.id, late.id).await.unwrap(), None);

    let filter = AuditFilter { action: Some(EventKind::ApiKeyRotated), ..AuditFilter::default() };
    let page = PageRequest::new(None, None).unwrap();
    let rotations = db.audit().list(organization.id, &filter, &page).await.unwrap();
    assert_eq!(rotations.items.len(), 3, "one entry per successful rotation");
}

fn successor_of(
    admin: &otesse_domain::user::User,
    from: &otesse_domain::api_key::ApiKey,
    name: &str,
) -> otesse_domain::api_key::ApiKey {
    let mut new = key(admin, name);
    new.rotated_from = Some(from.id);
    new
}

fn rotated_event(new: &otesse_domain::api_key::ApiKey) -> otesse_domain::event::DomainEvent {
    let event =
        Event::ApiKeyRotated { key: new.clone(), rotated_from: new.rotated_from.unwrap(), old_key_revoked_at: None };
    key_event(new, event, t0())
}

/// A key is replaced once: while its successor is active, another rotation is refused and
/// leaves nothing behind; once the successor is revoked, the key may be rotated again.
async fn a_key_has_at_most_one_active_successor(db: Database) {
    let (organization, admin) = setup(&db).await;
    let keys = db.api_keys();
    let old = key(&admin, "Backend");
    keys.insert(&old, &created(&old), 25, t0()).await.unwrap();
    let first = successor_of(&admin, &old, "Backend v2");
    keys.rotate(&first, old.id, None, &rotated_event(&first), 25, t0()).await.unwrap();

    let second = successor_of(&admin, &old, "Backend v3");
    let in_an_hour = Some(t0() + Duration::hours(1));
    assert_eq!(
        keys.rotate(&second, old.id, in_an_hour, &rotated_event(&second), 25, t0()).await,
        Err(RotateStoredKeyError::AlreadyRotated)
    );
    assert_eq!(keys.find(organization.id, second.id).await.unwrap(), None);
    assert_eq!(keys.find(organization.id, old.id).await.unwrap().unwrap().revoked_at, None, "nothing scheduled");

    keys.revoke(organization.id, first.id, t0(), &revoked(&first, t0())).await.unwrap().expect("the key exists");
    keys.rotate(&second, old.id, in_an_hour, &rotated_event(&second), 25, t0()).await.unwrap();
    assert_eq!(keys.find(organization.id, old.id).await.unwrap().unwrap().revoked_at, in_an_hour);
}

/// Ten rotations of one key at once, each scheduling the old key's end at its own time:
/// exactly one succeeds, and the old key's end is the winner's.
async fn concurrent_rotations_of_one_key_make_one_successor(db: Database) {
    let (organization, admin) = setup(&db).await;
    let old = key(&admin, "Backend");
    db.api_keys().insert(&old, &created(&old), 25, t0()).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let keys = db.api_keys();
            let new = successor_of(&admin, &old, &format!("Backend v{n}"));
            let at = t0() + Duration::hours(1) + Duration::minutes(n);
            tokio::spawn(async move {
                let outcome =
                    keys.rotate(&new, new.rotated_from.unwrap(), Some(at), &rotated_event(&new), 25, t0()).await;
                (outcome, new.id, at)
            })
        })
        .collect();
    let outcomes: Vec<_> =
        futures_util::future::join_all(tasks).await.into_iter().map(|joined| joined.expect("task")).collect();

    let winners: Vec<_> = outcomes.iter().filter(|(outcome, ..)| outcome.is_ok()).collect();
    let refused = outcomes.iter().filter(|(outcome, ..)| *outcome == Err(RotateStoredKeyError::AlreadyRotated)).count();
    assert_eq!((winners.len(), refused), (1, 9), "{outcomes:?}");
    let (_, winner, scheduled) = winners[0];
    let all = db.api_keys().list(organization.id).await.unwrap();
    assert_eq!(all.len(), 2, "the refused rotations left no key");
    assert!(all.iter().any(|key| key.id == *winner));
    assert_eq!(db.api_keys().find(organization.id, old.id).await.unwrap().unwrap().revoked_at, Some(*scheduled));
}
