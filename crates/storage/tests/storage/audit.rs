//! The audit trail: filters and pages (K16), over entries written by real changes.

use chrono::Duration;
use otesse_domain::api_key::{ApiKey, ApiKeyId};
use otesse_domain::audit::{AuditActor, AuditFilter};
use otesse_domain::event::{DomainEvent, Event, EventKind};
use otesse_domain::integration::{AuthMethod, HealthOutcome, InstanceStatus, IntegrationInstance, ProviderSlug};
use otesse_domain::page::PageRequest;
use otesse_domain::ports::{ApiKeyRepository, AuditLog, IntegrationRepository, UserRepository};
use otesse_domain::user::Role;
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::{key, password_hash, setup, t0, user};

on_both_databases!(filters_narrow_and_pages_walk_newest_first);

async fn filters_narrow_and_pages_walk_newest_first(db: Database) {
    let (acme, ada) = setup(&db).await;
    let bob = user(acme.id, "bob@acme.test", Role::Admin);
    db.users().insert(&bob, &password_hash()).await.unwrap();
    let (ada_actor, bob_actor) = (AuditActor::User(ada.id), AuditActor::User(bob.id));
    let robot = AuditActor::ApiKey(ApiKeyId(Uuid::now_v7()));
    let keys = db.api_keys();
    let at = |hours| t0() + Duration::hours(hours);
    let event = |actor, hours, event: Event| DomainEvent::new(acme.id, actor, at(hours), event);

    // Oldest first, so that ids and times agree.
    let backend = key(&ada, "Backend");
    let e1 = event(ada_actor, 0, Event::ApiKeyCreated { key: backend.clone() });
    keys.insert(&backend, &e1, 25, at(0)).await.unwrap();
    // Revoked for later (at 5), so that the key is still active when it is rotated at 3.
    let e2 = event(bob_actor, 1, Event::ApiKeyRevoked { key: ApiKey { revoked_at: Some(at(5)), ..backend.clone() } });
    keys.revoke(acme.id, backend.id, at(5), &e2).await.unwrap();
    let instance = IntegrationInstance {
        id: Uuid::now_v7(),
        organization_id: acme.id,
        provider: ProviderSlug::parse("postmark").unwrap(),
        status: InstanceStatus::Error,
        enabled: true,
        selected_model: None,
        created_at: at(2),
        updated_at: at(2),
    };
    let e3 = event(
        robot,
        2,
        Event::IntegrationConnectFailed {
            connection_id: Uuid::now_v7(),
            provider: instance.provider.clone(),
            auth_method: AuthMethod::ApiKey,
            outcome: HealthOutcome::InvalidCredentials,
            response_time_ms: 40,
        },
    );
    db.integrations().record_failed_connect(&instance, &e3).await.unwrap();
    let mut rotated = key(&ada, "Backend (rotated)");
    rotated.rotated_from = Some(backend.id);
    let e4 = event(
        AuditActor::System,
        3,
        Event::ApiKeyRotated { key: rotated.clone(), rotated_from: backend.id, old_key_revoked_at: None },
    );
    keys.rotate(&rotated, backend.id, None, &e4, 25, at(3)).await.unwrap();
    let e5 = event(ada_actor, 4, Event::ApiKeyRevoked { key: ApiKey { revoked_at: Some(at(4)), ..rotated.clone() } });
    keys.revoke(acme.id, rotated.id, at(4), &e5).await.unwrap();

    let all = PageRequest::new(None, None).unwrap();
    let list = |filter: AuditFilter| {
        let audit = db.audit();
        let all = all.clone();
        async move { audit.list(acme.id, &filter, &all).await.unwrap().items.into_iter().map(|e| e.id).collect::<Vec<_>>() }
    };
    assert_eq!(list(AuditFilter::default()).await, vec![e5.id, e4.id, e3.id, e2.id, e1.id]);
    // Only one organization can be set up: another one's id is enough to see its trail is its own.
    let elsewhere = otesse_domain::organization::OrganizationId(Uuid::now_v7());
    assert!(db.audit().list(elsewhere, &AuditFilter::default(), &all).await.unwrap().items.is_empty());
    assert_eq!(
        list(AuditFilter { action: Some(EventKind::ApiKeyRevoked), ..AuditFilter::default() }).await,
        vec![e5.id, e2.id]
    );
    assert_eq!(list(AuditFilter { actor: Some(ada_actor), ..AuditFilter::default() }).await, vec![e5.id, e1.id]);
    assert_eq!(list(AuditFilter { actor: Some(robot), ..AuditFilter::default() }).await, vec![e3.id]);
    assert_eq!(list(AuditFilter { actor: Some(AuditActor::System), ..AuditFilter::default() }).await, vec![e4.id]);
    assert_eq!(
        list(AuditFilter { target_type: Some("integration".into()), ..AuditFilter::default() }).await,
        vec![e3.id]
    );
    assert_eq!(
        list(AuditFilter { from: Some(at(1)), to: Some(at(3)), ..AuditFilter::default() }).await,
        vec![e4.id, e3.id, e2.id],
        "both bounds are inclusive"
    );
    assert_eq!(
        list(AuditFilter { action: Some(EventKind::ApiKeyRevoked), actor: Some(ada_actor), ..AuditFilter::default() })
            .await,
        vec![e5.id]
    );

    // Each entry is what its event says, details included.
    let first = db.audit().list(acme.id, &AuditFilter::default(), &all).await.unwrap().items.pop().unwrap();
    assert_eq!(first, otesse_domain::audit::AuditEntry::of(&e1).unwrap());
    assert_eq!(first.details["name"], "Backend");

    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = db
            .audit()
            .list(acme.id, &AuditFilter::default(), &PageRequest::new(Some(2), after).unwrap())
            .await
            .unwrap();
        after = page.next;
        pages.push(page.items.into_iter().map(|e| e.id).collect::<Vec<_>>());
        if after.is_none() {
            break;
        }
    }
    assert_eq!(pages, vec![vec![e5.id, e4.id], vec![e3.id, e2.id], vec![e1.id]]);
}
