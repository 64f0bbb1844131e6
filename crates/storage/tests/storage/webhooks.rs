//! Outbound webhooks: publishing queues exactly one delivery and one job per subscribed enabled
//! endpoint, atomically; attempts are recorded; an endpoint is disabled by exactly one failure
//! however many race; concurrent creates never exceed the endpoint limit; a rotation keeps the old secret, which
//! the master-key rewrap covers while it is still sent; deleting an endpoint deletes its log.

use chrono::Duration;
use otesse_domain::integration::{Ciphertext, CredentialField};
use otesse_domain::jobs::{JobFilter, JobKind, JobQueue};
use otesse_domain::page::PageRequest;
use otesse_domain::ports::IntegrationRepository;
use otesse_domain::user::User;
use otesse_domain::webhook::{
    Attempt, DeliveryState, EndpointId, EndpointInsert, EndpointStatus, EventType, WebhookEndpoint, WebhookEvent,
    WebhookRepository,
};
use otesse_storage::Database;
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::{setup, t0};

on_both_databases!(
    publishing_queues_one_delivery_and_job_per_subscribed_enabled_endpoint,
    attempts_are_recorded_and_one_failure_disables,
    a_rotation_keeps_the_previous_secret_and_deleting_removes_the_log,
    endpoint_secrets_are_rewrapped_like_credentials,
    a_rotated_endpoint_s_previous_secret_is_rewrapped_while_it_is_still_sent,
    concurrent_creates_never_exceed_the_endpoint_limit,
);

fn endpoint(owner: &User, events: &[EventType], status: EndpointStatus) -> WebhookEndpoint {
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

async fn publishing_queues_one_delivery_and_job_per_subscribed_enabled_endpoint(db: Database) {
    let (_, admin) = setup(&db).await;
    let store = db.webhooks();
    let revoked = endpoint(&admin, &[EventType::ApiKeyRevoked], EndpointStatus::Enabled);
    let other = endpoint(&admin, &[EventType::ApiKeyCreated], EndpointStatus::Enabled);
    let disabled = endpoint(&admin, &[EventType::ApiKeyRevoked], EndpointStatus::Disabled);
    for e in [&revoked, &other, &disabled] {
        assert_eq!(store.insert_endpoint(e, &sealed(b"s"), 16).await.unwrap(), EndpointInsert::Inserted);
    }
    assert_eq!(store.endpoints(admin.organization_id).await.unwrap().len(), 3);
    let event = WebhookEvent::new(admin.organization_id, EventType::ApiKeyRevoked, json!({"id": "k"}), t0());
    let made = store.publish(&event, None, 4).await.unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].endpoint_id, revoked.id);
    let jobs = db
        .jobs()
        .list(
            &JobFilter { kind: Some(JobKind::WebhookDelivery), ..Default::default() },
            &PageRequest::new(Some(50), None).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(jobs.items.len(), 1);
    assert_eq!(jobs.items[0].max_attempts, 4);
    assert!(jobs.items[0].payload.contains(&made[0].id.to_string()));

    // Only the named endpoint, subscribed or not, enabled or not (the test event).
    let test = WebhookEvent::new(admin.organization_id, EventType::Test, json!({}), t0());
    let made = store.publish(&test, Some(disabled.id), 4).await.unwrap();
    assert_eq!(made.len(), 1);
    let (delivery, target, stored) = store.delivery(made[0].id).await.unwrap().unwrap();
    assert_eq!(target.id, disabled.id);
    assert_eq!(stored.payload, test.payload);
    assert_eq!(delivery.state, DeliveryState::Pending);
}

async fn attempts_are_recorded_and_one_failure_disables(db: Database) {
    let (_, admin) = setup(&db).await;
    let store = db.webhooks();
    let target = endpoint(&admin, &[EventType::Test], EndpointStatus::Enabled);
    store.insert_endpoint(&target, &sealed(b"s"), 16).await.unwrap();
    let event = WebhookEvent::new(admin.organization_id, EventType::Test, json!({}), t0());
    let delivery = store.publish(&event, Some(target.id), 3).await.unwrap().remove(0);
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
    let target = endpoint(&admin, &[EventType::Test], EndpointStatus::Enabled);
    store.insert_endpoint(&target, &sealed(b"old"), 16).await.unwrap();
    assert_eq!(store.secrets(target.id).await.unwrap().unwrap().previous, None);
    let until = t0() + Duration::hours(24);
    store.rotate_secret(target.id, &sealed(b"new"), until).await.unwrap();
    let secrets = store.secrets(target.id).await.unwrap().unwrap();
    assert_eq!(secrets.current, sealed(b"new"));
    assert_eq!(secrets.previous, Some((sealed(b"old"), until)));

    let event = WebhookEvent::new(admin.organization_id, EventType::Test, json!({}), t0());
    store.publish(&event, Some(target.id), 3).await.unwrap();
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
    store.publish(&event, Some(target.id), 3).await.unwrap();
    assert!(store.delete_endpoint(admin.organization_id, target.id).await.unwrap());
    assert!(!store.delete_endpoint(admin.organization_id, target.id).await.unwrap());
    assert!(store.deliveries(admin.organization_id, target.id, &page()).await.unwrap().items.is_empty());
    assert!(store.endpoint(admin.organization_id, target.id).await.unwrap().is_none());
}

async fn endpoint_secrets_are_rewrapped_like_credentials(db: Database) {
    let (_, admin) = setup(&db).await;
    let store = db.webhooks();
    let target = endpoint(&admin, &[EventType::Test], EndpointStatus::Enabled);
    let old = Ciphertext { key_version: 1, bytes: b"under key 1".to_vec() };
    store.insert_endpoint(&target, &old, 16).await.unwrap();
    let integrations = db.integrations();
    let stale = integrations.credentials_below_version(2, chrono::Utc::now(), 10).await.unwrap();
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert_eq!(stale[0].id, target.id.0);
    assert_eq!(stale[0].binding.field, CredentialField::OutboundWebhookSecret);
    assert_eq!(stale[0].binding.organization_id, admin.organization_id);
    assert_eq!(stale[0].ciphertext, old);
    let fresh = Ciphertext { key_version: 2, bytes: b"under key 2".to_vec() };
    assert!(!integrations.replace_ciphertext(target.id.0, &fresh, &fresh).await.unwrap(), "not what was read");
    assert!(integrations.replace_ciphertext(target.id.0, &old, &fresh).await.unwrap());
    assert_eq!(store.secrets(target.id).await.unwrap().unwrap().current, fresh);
    assert!(integrations.credentials_below_version(2, chrono::Utc::now(), 10).await.unwrap().is_empty());
}

async fn a_rotated_endpoint_s_previous_secret_is_rewrapped_while_it_is_still_sent(db: Database) {
    let (_, admin) = setup(&db).await;
    let store = db.webhooks();
    let integrations = db.integrations();
    let target = endpoint(&admin, &[EventType::Test], EndpointStatus::Enabled);
    let before = Ciphertext { key_version: 1, bytes: b"the secret before, under key 1".to_vec() };
    let after = Ciphertext { key_version: 1, bytes: b"the secret after, under key 1".to_vec() };
    store.insert_endpoint(&target, &before, 16).await.unwrap();
    let until = t0() + Duration::hours(24);
    store.rotate_secret(target.id, &after, until).await.unwrap();

    let listed = |at| {
        let integrations = integrations.clone();
        async move {
            let mut found: Vec<_> = integrations
                .credentials_below_version(2, at, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|c| {
                    assert_eq!((c.id, c.binding.connection_id), (target.id.0, target.id.0));
                    assert_eq!(c.binding.field, CredentialField::OutboundWebhookSecret);
                    c.ciphertext
                })
                .collect();
            found.sort_by(|a, b| a.bytes.cmp(&b.bytes));
            found
        }
    };
    // Within the overlap both secrets are listed; once it is over, only the current one.
    assert_eq!(listed(t0() + Duration::hours(1)).await, vec![after.clone(), before.clone()]);
    assert_eq!(listed(until).await, vec![after.clone()], "an expired previous secret is never sent again");

    let rewrapped = |bytes: &[u8]| Ciphertext { key_version: 2, bytes: bytes.to_vec() };
    let (new_before, new_after) =
        (rewrapped(b"the secret before, under key 2"), rewrapped(b"the secret after, under key 2"));
    assert!(
        !integrations.replace_ciphertext(target.id.0, &new_before, &new_before).await.unwrap(),
        "not what was read"
    );
    assert!(integrations.replace_ciphertext(target.id.0, &before, &new_before).await.unwrap(), "the previous secret");
    assert!(integrations.replace_ciphertext(target.id.0, &after, &new_after).await.unwrap(), "the current secret");
    let secrets = store.secrets(target.id).await.unwrap().unwrap();
    assert_eq!(secrets.current, new_after);
    assert_eq!(secrets.previous, Some((new_before, until)), "the overlap keeps its end");
    assert!(listed(t0() + Duration::hours(1)).await.is_empty(), "nothing left under key 1");
}

async fn concurrent_creates_never_exceed_the_endpoint_limit(db: Database) {
    let (_, admin) = setup(&db).await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (store, e) = (db.webhooks(), endpoint(&admin, &[EventType::Test], EndpointStatus::Enabled));
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
