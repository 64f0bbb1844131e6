//! The audit trail: filters and pages (K16).

use chrono::Duration;
use otesse_domain::api_key::ApiKeyId;
use otesse_domain::audit::{AuditAction, AuditActor, AuditEntry, AuditFilter};
use otesse_domain::organization::OrganizationId;
use otesse_domain::page::PageRequest;
use otesse_domain::ports::AuditLog;
use otesse_domain::user::UserId;
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::t0;

on_both_databases!(filters_narrow_and_pages_walk_newest_first);

async fn filters_narrow_and_pages_walk_newest_first(db: Database) {
    let audit = db.audit();
    let acme = OrganizationId(Uuid::now_v7());
    let ada = AuditActor::User(UserId(Uuid::now_v7()));
    let bob = AuditActor::User(UserId(Uuid::now_v7()));
    let robot = AuditActor::ApiKey(ApiKeyId(Uuid::now_v7()));
    let entry = |actor, action, target_type: &str, hours| {
        AuditEntry::new(acme, actor, action, target_type, Uuid::now_v7().to_string(), t0() + Duration::hours(hours))
    };
    // Oldest first, so that ids and times agree.
    let e1 = entry(ada, AuditAction::ApiKeyCreated, "api_key", 0).with("name", "Backend").with("environment", "live");
    let e2 = entry(bob, AuditAction::ApiKeyRevoked, "api_key", 1);
    let e3 = entry(robot, AuditAction::ApiKeyCreated, "integration", 2);
    let e4 = entry(AuditActor::System, AuditAction::ApiKeyRotated, "api_key", 3);
    let e5 = entry(ada, AuditAction::ApiKeyRevoked, "api_key", 4);
    let elsewhere =
        AuditEntry::new(OrganizationId(Uuid::now_v7()), ada, AuditAction::ApiKeyCreated, "api_key", "x".into(), t0());
    for entry in [&e1, &e2, &e3, &e4, &e5, &elsewhere] {
        audit.record(entry).await.unwrap();
    }

    let all = PageRequest::new(None, None).unwrap();
    let list = |filter: AuditFilter| {
        let audit = audit.clone();
        let all = all.clone();
        async move { audit.list(acme, &filter, &all).await.unwrap().items }
    };
    assert_eq!(list(AuditFilter::default()).await, vec![e5.clone(), e4.clone(), e3.clone(), e2.clone(), e1.clone()]);
    assert_eq!(
        list(AuditFilter { action: Some(AuditAction::ApiKeyRevoked), ..AuditFilter::default() }).await,
        vec![e5.clone(), e2.clone()]
    );
    assert_eq!(list(AuditFilter { actor: Some(ada), ..AuditFilter::default() }).await, vec![e5.clone(), e1.clone()]);
    assert_eq!(list(AuditFilter { actor: Some(robot), ..AuditFilter::default() }).await, vec![e3.clone()]);
    assert_eq!(list(AuditFilter { actor: Some(AuditActor::System), ..AuditFilter::default() }).await, vec![e4.clone()]);
    assert_eq!(
        list(AuditFilter { target_type: Some("integration".into()), ..AuditFilter::default() }).await,
        vec![e3.clone()]
    );
    assert_eq!(
        list(AuditFilter {
            from: Some(t0() + Duration::hours(1)),
            to: Some(t0() + Duration::hours(3)),
            ..AuditFilter::default()
        })
        .await,
        vec![e4.clone(), e3.clone(), e2.clone()],
        "both bounds are inclusive"
    );
    assert_eq!(
        list(AuditFilter { action: Some(AuditAction::ApiKeyRevoked), actor: Some(ada), ..AuditFilter::default() })
            .await,
        vec![e5.clone()]
    );

    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = audit.list(acme, &AuditFilter::default(), &PageRequest::new(Some(2), after).unwrap()).await.unwrap();
        after = page.next;
        pages.push(page.items);
        if after.is_none() {
            break;
        }
    }
    assert_eq!(pages, vec![vec![e5, e4], vec![e3, e2], vec![e1]]);
}
