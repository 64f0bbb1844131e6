//! Outbound webhooks: a recorded event queues exactly one delivery and one job per subscribed
//! enabled endpoint, with the change that caused it (the outbox); attempts are recorded; an
//! endpoint is disabled by exactly one failure however many race; concurrent creates never
//! exceed the endpoint limit; a rotation keeps the old secret; deleting an endpoint deletes its
//! log; queuing a delivery wakes the job worker (on PostgreSQL through the listener, at commit).
//! (The rewrap of endpoint secrets is in `sealed.rs`.)

use chrono::Duration;
use otesse_domain::api_key::ApiKey;
use otesse_domain::event::{AuditActor, DomainEvent, Event, EventKind};
use otesse_domain::jobs::{JobFilter, JobKind, JobQueue};
use otesse_domain::page::PageRequest;
use otesse_domain::ports::{ApiKeyRepository, InsertKeyError};
use otesse_domain::sealed::Ciphertext;
use otesse_domain::user::User;
use otesse_domain::webhook::{
    Attempt, Delivery, DeliveryState, EndpointId, EndpointInsert, EndpointStatus, WebhookEndpoint, WebhookRepository,
};
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::{created, key, revoked, setup, t0};

on_both_databases!(
    a_recorded_event_queues_one_delivery_and_job_per_subscribed_enabled_endpoint,
    a_refused_change_announces_nothing,
    attempts_are_recorded_and_one_failure_disables,
    a_rotation_keeps_the_previous_secret_and_deleting_removes_the_log,
    concurrent_creates_never_exceed_the_endpoint_limit,
    a_queued_delivery_wakes_the_job_worker,
);

fn endpoint(owner: &User, events: &[EventKind], status: EndpointStatus) -> WebhookEndpoint {
    WebhookEndpoint {
        id: EndpointId(Uuid::now_v7()),
        organization_id: owner.organization_id,
        url: "https://hooks.example.com/in".into(),
        description: "d".into(),
        events: events.to_vec(),
        status,
        disabled_reason: None,
        consecutive_failures: 0,
        created_by: owner.id,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn sealed(tag: &[u8]) -> Ciphertext {
    Ciphertext { key_version: 1, bytes: tag.to_vec() }
}

fn page() -> PageRequest<Uuid> {
    PageRequest::new(Some(50), None).unwrap()
}

async fn delivery_jobs(db: &Database) -> Vec<otesse_domain::jobs::Job> {
    db.jobs()
        .list(
            &JobFilter { kind: Some(JobKind::WebhookDelivery), ..Default::default() },
            &PageRequest::new(Some(50), None).unwrap(),
        )
        .await
        .unwrap()
        .items
}

/// The `webhook.test` event of `endpoint`, as the service records it.
fn test_event(owner: &User, endpoint: &WebhookEndpoint) -> DomainEvent {
    DomainEvent::new(
        owner.organization_id,
        AuditActor::User(owner.id),
        t0(),
        Event::WebhookTest { endpoint_id: endpoint.id.0 },
    )
}

async fn test_delivery(db: &Database, owner: &User, endpoint: &WebhookEndpoint) -> Delivery {
    db.webhooks().send_test(&test_event(owner, endpoint), endpoint.id).await.unwrap().expect("the endpoint exists")
}

async fn a_recorded_event_queues_one_delivery_and_job_per_subscribed_enabled_endpoint(db: Database) {
    let db = db.with_delivery_attempts(4);
    let (organization, admin) = setup(&db).await;
    let store = db.webhooks();
    let subscribed = endpoint(&admin, &[EventKind::ApiKeyRevoked], EndpointStatus::Enabled);
    let other = endpoint(&admin, &[EventKind::ApiKeyCreated], EndpointStatus::Enabled);
    let disabled = endpoint(&admin, &[EventKind::ApiKeyRevoked], EndpointStatus::Disabled);
    for e in [&subscribed, &other, &disabled] {
        assert_eq!(store.insert_endpoint(e, &sealed(b"s"), 16).await.unwrap(), EndpointInsert::Inserted);
    }
    assert_eq!(store.endpoints(admin.organization_id).await.unwrap().len(), 3);

    // The revocation of a key: its delivery goes in with it.
    let backend = key(&admin, "Backend");
    db.api_keys().insert(&backend, &created(&backend), 25, t0()).await.unwrap();
    assert_eq!(delivery_jobs(&db).await.len(), 1, "the creation's delivery to the endpoint subscribed to it");
    let revocation = revoked(&backend, t0());
    db.api_keys().revoke(organization.id, backend.id, t0(), &revocation).await.unwrap();
    let log = store.deliveries(admin.organization_id, subscribed.id, &page()).await.unwrap().items;
    assert_eq!(log.len(), 1, "one delivery to the subscribed endpoint; none to the disabled one");
    assert_eq!((log[0].event_id, log[0].event_type), (revocation.id, EventKind::ApiKeyRevoked));
    assert!(store.deliveries(admin.organization_id, disabled.id, &page()).await.unwrap().items.is_empty());
    let jobs = delivery_jobs(&db).await;
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|job| job.max_attempts == 4), "the deployment's attempts");
    assert!(jobs.iter().any(|job| job.payload.contains(&log[0].id.to_string())));
    // What is delivered: the payload, shaped once, with the event's id.
    let (_, target, stored) = store.delivery(log[0].id).await.unwrap().unwrap();
    assert_eq!(target.id, subscribed.id);
    let body: serde_json::Value = serde_json::from_str(&stored.payload).unwrap();
    assert_eq!(body["id"], revocation.message_id());
    assert_eq!(body["type"], "api_key.revoked");
    assert_eq!(body["data"]["id"], serde_json::json!(backend.id.0));
    assert!(body["data"]["revoked_at"].is_string());

    // An audited-only change reaches no endpoint (a rotation of a key still active).
    let front = key(&admin, "Front");
    db.api_keys().insert(&front, &created(&front), 25, t0()).await.unwrap();
    let before = delivery_jobs(&db).await.len();
    let rotated = ApiKey { rotated_from: Some(front.id), ..key(&admin, "Front 2") };
    let rotation = DomainEvent::new(
        organization.id,
        AuditActor::User(admin.id),
        t0(),
        Event::ApiKeyRotated { key: rotated.clone(), rotated_from: front.id, old_key_revoked_at: None },
    );
    db.api_keys().rotate(&rotated, front.id, None, &rotation, 25, t0()).await.unwrap();
    assert_eq!(delivery_jobs(&db).await.len(), before, "nobody subscribed to rotations");

    // The test event: only the named endpoint, subscribed or not, enabled or not.
    let delivery = test_delivery(&db, &admin, &disabled).await;
    let (delivery, target, stored) = store.delivery(delivery.id).await.unwrap().unwrap();
    assert_eq!(target.id, disabled.id);
    assert_eq!(delivery.state, DeliveryState::Pending);
    assert!(stored.payload.contains("This is a test event from Otesse."));
    let elsewhere = endpoint(&admin, &[EventKind::WebhookTest], EndpointStatus::Enabled);
    assert_eq!(store.send_test(&test_event(&admin, &elsewhere), elsewhere.id).await.unwrap(), None, "no such endpoint");
}

async fn a_refused_change_announces_nothing(db: Database) {
    let (_, admin) = setup(&db).await;
    let store = db.webhooks();
    let created_hook = endpoint(&admin, &[EventKind::ApiKeyCreated], EndpointStatus::Enabled);
    store.insert_endpoint(&created_hook, &sealed(b"s"), 16).await.unwrap();
    let first = key(&admin, "Backend");
    db.api_keys().insert(&first, &created(&first), 25, t0()).await.unwrap();
    let twin = key(&admin, "Backend");
    assert_eq!(db.api_keys().insert(&twin, &created(&twin), 25, t0()).await, Err(InsertKeyError::NameTaken));
    let over = key(&admin, "Frontend");
    assert_eq!(db.api_keys().insert(&over, &created(&over), 1, t0()).await, Err(InsertKeyError::LimitReached));
    let log = store.deliveries(admin.organization_id, created_hook.id, &page()).await.unwrap().items;
    assert_eq!(log.len(), 1, "only the stored key was announced");
    assert_eq!(delivery_jobs(&db).await.len(), 1);
}

async fn attempts_are_recorded_and_one_failure_disables(db: Database) {
    let (_, admin) = setup(&db).await;
    let store = db.webhooks();
    let target = endpoint(&admin, &[EventKind::WebhookTest], EndpointStatus::Enabled);
    store.insert_endpoint(&target, &sealed(b"s"), 16).await.unwrap();
    let delivery = test_delivery(&db, &admin, &target).await;
    let attempt = Attempt {
        state: DeliveryState::Pending,
        status: Some(503),
        error: Some("the receiver answered 503".into()),
        response_ms: Some(12),
        at: t0(),
        next_attempt_at: Some(t0() + Duration::seconds(30)),
    };
    store.record_attempt(delivery.id, &attempt).await.unwrap();
    let log = store.deliveries(admin.organization_id, target.id, &page()).await.unwrap();
    assert_eq!(log.items[0].attempts, 1);
    assert_eq!(log.items[0].last_status, Some(503));
    assert_eq!(log.items[0].next_attempt_at, Some(t0() + Duration::seconds(30)));

    // Ten failures race against a threshold of 3: exactly one of them disables it.
    let racers: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.endpoint_failed(target.id, 3, "too many failures", t0()).await.unwrap() })
        })
        .collect();
    let mut disabled = 0;
    for racer in racers {
        disabled += u32::from(racer.await.unwrap());
    }
    assert_eq!(disabled, 1);
    let now = store.endpoint(admin.organization_id, target.id).await.unwrap().unwrap();
    assert_eq!(now.status, EndpointStatus::Disabled);
    assert_eq!(now.consecutive_failures, 10);
    assert_eq!(now.disabled_reason.as_deref(), Some("too many failures"));
    store.endpoint_succeeded(target.id).await.unwrap();
    let now = store.endpoint(admin.organization_id, target.id).await.unwrap().unwrap();
    assert_eq!(now.consecutive_failures, 0);
}

async fn a_rotation_keeps_the_previous_secret_and_deleting_removes_the_log(db: Database) {
    let (_, admin) = setup(&db).await;
    let store = db.webhooks();
    let target = endpoint(&admin, &[EventKind::WebhookTest], EndpointStatus::Enabled);
    store.insert_endpoint(&target, &sealed(b"old"), 16).await.unwrap();
    assert_eq!(store.secrets(target.id).await.unwrap().unwrap().previous, None);
    let until = t0() + Duration::hours(24);
    store.rotate_secret(target.id, &sealed(b"new"), until).await.unwrap();
    let secrets = store.secrets(target.id).await.unwrap().unwrap();
    assert_eq!(secrets.current, sealed(b"new"));
    assert_eq!(secrets.previous, Some((sealed(b"old"), until)));

    let event = test_event(&admin, &target);
    store.send_test(&event, target.id).await.unwrap();
    // Pruning keeps what is pending or recent, and deletes finished deliveries with their events.
    assert_eq!(store.prune(t0() + Duration::days(1)).await.unwrap(), 0, "still pending");
    let done = store.deliveries(admin.organization_id, target.id, &page()).await.unwrap().items[0].id;
    let attempt = Attempt {
        state: DeliveryState::Succeeded,
        status: Some(200),
        error: None,
        response_ms: Some(3),
        at: t0(),
        next_attempt_at: None,
    };
    store.record_attempt(done, &attempt).await.unwrap();
    assert_eq!(store.prune(t0()).await.unwrap(), 0, "not older than the cut");
    assert_eq!(store.prune(t0() + Duration::days(1)).await.unwrap(), 1);
    assert!(store.delivery(done).await.unwrap().is_none());
    // The event went with its last delivery: its id can be stored again.
    store.send_test(&event, target.id).await.unwrap();
    assert!(store.delete_endpoint(admin.organization_id, target.id).await.unwrap());
    assert!(!store.delete_endpoint(admin.organization_id, target.id).await.unwrap());
    assert!(store.deliveries(admin.organization_id, target.id, &page()).await.unwrap().items.is_empty());
    assert!(store.endpoint(admin.organization_id, target.id).await.unwrap().is_none());
}

async fn concurrent_creates_never_exceed_the_endpoint_limit(db: Database) {
    let (_, admin) = setup(&db).await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (store, e) = (db.webhooks(), endpoint(&admin, &[EventKind::WebhookTest], EndpointStatus::Enabled));
            tokio::spawn(async move { store.insert_endpoint(&e, &sealed(b"s"), 5).await })
        })
        .collect();
    let outcomes: Vec<_> =
        futures_util::future::join_all(tasks).await.into_iter().map(|joined| joined.expect("task").unwrap()).collect();
    let inserted = outcomes.iter().filter(|o| **o == EndpointInsert::Inserted).count();
    assert_eq!(inserted, 5, "{outcomes:?}");
    assert_eq!(outcomes.len() - inserted, 7);
    assert_eq!(db.webhooks().endpoints(admin.organization_id).await.unwrap().len(), 5);
}

async fn a_queued_delivery_wakes_the_job_worker(db: Database) {
    let (_, admin) = setup(&db).await;
    let wakeup = db.job_wakeup();
    // PostgreSQL: a listener on its own connection hears the outbox's notice once committed.
    // SQLite: the outbox wakes the process's worker itself.
    let listener = wakeup.listen(&db).await.unwrap();
    assert_eq!(listener.is_some(), db.backend_name() == "postgres");
    let target = endpoint(&admin, &[EventKind::WebhookTest], EndpointStatus::Enabled);
    db.webhooks().insert_endpoint(&target, &sealed(b"s"), 16).await.unwrap();
    test_delivery(&db, &admin, &target).await;
    tokio::time::timeout(std::time::Duration::from_secs(10), wakeup.woken())
        .await
        .expect("the worker is woken when a delivery is queued");
    if let Some(listener) = listener {
        listener.abort();
    }
}
