//! Notifications and emails: dedupe keys make each insert happen once (also under concurrent
//! inserts), reads are scoped to the user, and keys expiring in a window are found.

use chrono::{DateTime, Duration, Utc};
use otesse_domain::notification::{EmailRecord, EmailStatus, Notification, NotificationKind, NotificationRepository};
use otesse_domain::organization::OrganizationId;
use otesse_domain::page::PageRequest;
use otesse_domain::ports::ApiKeyRepository;
use otesse_domain::user::{User, UserId};
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::{created, key, setup, t0};

/// An expiry warning's notice carries the key's `api_key.expiring` event: the webhook goes out
/// with the first notice and never with a duplicate one.
async fn a_notice_s_event_is_recorded_with_it_and_only_once(db: Database) {
    use otesse_domain::event::{AuditActor, DomainEvent, Event, EventKind};
    use otesse_domain::sealed::Ciphertext;
    use otesse_domain::webhook::{EndpointId, EndpointStatus, WebhookEndpoint, WebhookRepository};
    let (_, admin) = setup(&db).await;
    let hook = WebhookEndpoint {
        id: EndpointId(Uuid::now_v7()),
        organization_id: admin.organization_id,
        url: "https://hooks.example.com/in".into(),
        description: String::new(),
        events: vec![EventKind::ApiKeyExpiring],
        status: EndpointStatus::Enabled,
        disabled_reason: None,
        consecutive_failures: 0,
        created_by: admin.id,
        created_at: t0(),
        updated_at: t0(),
    };
    db.webhooks().insert_endpoint(&hook, &Ciphertext { key_version: 1, bytes: b"s".to_vec() }, 16).await.unwrap();
    let backend = key(&admin, "Backend");
    let expiring = |n| {
        DomainEvent::new(
            admin.organization_id,
            AuditActor::System,
            at(n),
            Event::ApiKeyExpiring { key: backend.clone(), days_left: 7 },
        )
    };
    let store = db.notifications();
    assert!(
        store
            .insert(&notification(&admin, "expires in 7 days", 1), "api_key.expiring:k:7d", Some(&expiring(1)))
            .await
            .unwrap()
    );
    assert!(
        !store.insert(&notification(&admin, "again", 2), "api_key.expiring:k:7d", Some(&expiring(2))).await.unwrap()
    );
    let page = PageRequest::new(Some(10), None).unwrap();
    let log = db.webhooks().deliveries(admin.organization_id, hook.id, &page).await.unwrap().items;
    assert_eq!(log.len(), 1, "one notice, one delivery");
    assert_eq!(log[0].event_type, EventKind::ApiKeyExpiring);
}

on_both_databases!(
    a_dedupe_key_is_inserted_once_even_concurrently,
    a_notice_s_event_is_recorded_with_it_and_only_once,
    notifications_are_the_users_own_and_read_once,
    emails_are_recorded_once_and_finished,
    keys_expiring_in_a_window_are_found,
);

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

fn notification(user: &User, title: &str, minutes: i64) -> Notification {
    Notification {
        id: Uuid::now_v7(),
        organization_id: user.organization_id,
        user_id: user.id,
        kind: NotificationKind::ApiKeyExpiring,
        title: title.into(),
        body: "body".into(),
        subject: "api_key:1".into(),
        created_at: at(minutes),
        read_at: None,
    }
}

fn page() -> PageRequest<Uuid> {
    PageRequest::new(Some(50), None).unwrap()
}

async fn a_dedupe_key_is_inserted_once_even_concurrently(db: Database) {
    let (_, admin) = setup(&db).await;
    let store = db.notifications();
    let attempts: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            let n = notification(&admin, &format!("try {n}"), n);
            tokio::spawn(async move { store.insert(&n, "api_key.expiring:k:7d", None).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for attempt in attempts {
        won += u32::from(attempt.await.unwrap());
    }
    assert_eq!(won, 1);
    let listed = store.list(admin.organization_id, admin.id, false, &page()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(store.insert(&notification(&admin, "other", 9), "api_key.expiring:k:1d", None).await.unwrap());
}

async fn notifications_are_the_users_own_and_read_once(db: Database) {
    let (organization, admin) = setup(&db).await;
    let store = db.notifications();
    let first = notification(&admin, "first", 1);
    let second = notification(&admin, "second", 2);
    store.insert(&first, "a", None).await.unwrap();
    store.insert(&second, "b", None).await.unwrap();

    let listed = store.list(organization.id, admin.id, false, &page()).await.unwrap();
    let titles: Vec<_> = listed.items.iter().map(|n| n.title.as_str()).collect();
    assert_eq!(titles, ["second", "first"], "newest first");
    let one = store.list(organization.id, admin.id, false, &PageRequest::new(Some(1), None).unwrap()).await.unwrap();
    let next = store.list(organization.id, admin.id, false, &PageRequest::new(Some(1), one.next).unwrap()).await;
    assert_eq!(next.unwrap().items[0].title, "first");

    // Another user (or organization) neither sees nor reads it.
    let stranger = UserId(Uuid::now_v7());
    assert!(store.list(organization.id, stranger, false, &page()).await.unwrap().items.is_empty());
    assert_eq!(store.mark_read(organization.id, stranger, first.id, at(5)).await.unwrap(), None);
    assert_eq!(store.mark_read(OrganizationId(Uuid::now_v7()), admin.id, first.id, at(5)).await.unwrap(), None);

    let read = store.mark_read(organization.id, admin.id, first.id, at(5)).await.unwrap().unwrap();
    assert_eq!(read.read_at, Some(at(5)));
    let again = store.mark_read(organization.id, admin.id, first.id, at(9)).await.unwrap().unwrap();
    assert_eq!(again.read_at, Some(at(5)), "the first read time stays");
    let unread = store.list(organization.id, admin.id, true, &page()).await.unwrap();
    assert_eq!(unread.items.iter().map(|n| n.id).collect::<Vec<_>>(), [second.id]);
}

async fn emails_are_recorded_once_and_finished(db: Database) {
    let (organization, _) = setup(&db).await;
    let store = db.notifications();
    let email = EmailRecord {
        id: Uuid::now_v7(),
        organization_id: organization.id,
        to: "admin@acme.test".into(),
        subject: "Key expires".into(),
        body: "Rotate it".into(),
        status: EmailStatus::Pending,
        detail: String::new(),
        created_at: at(0),
    };
    assert!(store.insert_email(&email, "k:7d:email:u").await.unwrap());
    assert!(!store.insert_email(&EmailRecord { id: Uuid::now_v7(), ..email.clone() }, "k:7d:email:u").await.unwrap());
    store.finish_email(email.id, EmailStatus::Undeliverable, "Postmark is not connected").await.unwrap();
    let emails = store.emails(organization.id, 10).await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(
        (emails[0].status, emails[0].detail.as_str()),
        (EmailStatus::Undeliverable, "Postmark is not connected")
    );
}

async fn keys_expiring_in_a_window_are_found(db: Database) {
    let (_, admin) = setup(&db).await;
    let keys = db.api_keys();
    let soon = key(&admin, "Soon");
    let soon = otesse_domain::api_key::ApiKey { expires_at: Some(at(60 * 24 * 3)), ..soon };
    let later = otesse_domain::api_key::ApiKey { expires_at: Some(at(60 * 24 * 30)), ..key(&admin, "Later") };
    let gone = otesse_domain::api_key::ApiKey { expires_at: Some(at(-60)), ..key(&admin, "Gone") };
    let never = otesse_domain::api_key::ApiKey { expires_at: None, ..key(&admin, "Never") };
    for k in [&soon, &later, &gone, &never] {
        keys.insert(k, &created(k), 25, t0()).await.unwrap();
    }
    let found = keys.expiring_between(t0(), t0() + Duration::days(14)).await.unwrap();
    assert_eq!(found.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["Soon"]);
}
