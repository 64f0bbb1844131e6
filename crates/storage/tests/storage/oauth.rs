//! OAuth records: a state is taken once, one refresh lease at a time per connection, refreshed
//! tokens stored only by the lease's holder, and a refused grant marking the connection with
//! its notification and event at once.

use chrono::Duration;
use otesse_domain::event::{AuditActor, DomainEvent, Event};
use otesse_domain::integration::{AuthMethod, ConnectionStatus, PendingAuthorization, StoredTokens};
use otesse_domain::notification::{Notification, NotificationKind, NotificationRepository};
use otesse_domain::page::PageRequest;
use otesse_domain::ports::{IntegrationRepository, OAuthRepository, SealedSecretStore};
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::{setup, t0};
use crate::integrations::{connect_as, connected, sealed};

on_both_databases!(
    a_state_is_taken_once_whoever_asks_first,
    one_refresh_lease_at_a_time_and_only_its_holder_stores,
    a_refused_grant_marks_the_connection_with_its_notification_and_event,
    both_tokens_are_rewrapped_each_in_its_column,
    tokens_expiring_before_a_time_come_soonest_first,
);

async fn a_state_is_taken_once_whoever_asks_first(db: Database) {
    let (organization, admin) = setup(&db).await;
    let store = db.oauth();
    let pending = PendingAuthorization {
        id: Uuid::now_v7(),
        state_hash: [7; 32],
        organization_id: organization.id,
        user_id: admin.id,
        provider: otesse_domain::integration::ProviderSlug::parse("xero").unwrap(),
        redirect_uri: "https://otesse.example/v1/integrations/oauth/callback".into(),
        verifier: Some(sealed(1)),
        created_at: t0(),
        expires_at: t0() + Duration::minutes(10),
    };
    store.insert_authorization(&pending).await.unwrap();
    assert_eq!(store.take_authorization(&[8; 32]).await.unwrap(), None, "another state finds nothing");
    let (a, b) = tokio::join!(store.take_authorization(&[7; 32]), store.take_authorization(&[7; 32]));
    let taken: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(taken, vec![pending], "exactly one of two concurrent callbacks gets it, as stored");
    assert_eq!(store.take_authorization(&[7; 32]).await.unwrap(), None, "and never again");
}

/// An OAuth connection of the admin, saved with its tokens; its id.
async fn oauth_connection(db: &Database) -> (Uuid, otesse_domain::user::User) {
    let (_, admin) = setup(db).await;
    let mut new = connect_as(&admin, "xero", 1, t0());
    new.credentials.clear();
    new.connection.auth_method = AuthMethod::OAuth2;
    new.tokens = Some(StoredTokens {
        connection_id: new.connection.id,
        organization_id: admin.organization_id,
        access: sealed(1),
        refresh: Some(sealed(1)),
        access_expires_at: Some(t0() + Duration::minutes(30)),
        updated_at: t0(),
    });
    db.integrations().save_connection(&new, &connected(&new)).await.unwrap();
    assert_eq!(db.oauth().tokens(new.connection.id).await.unwrap(), new.tokens, "stored as sealed");
    (new.connection.id, admin)
}

async fn one_refresh_lease_at_a_time_and_only_its_holder_stores(db: Database) {
    let (id, _) = oauth_connection(&db).await;
    let store = db.oauth();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let now = t0();
    let until = now + Duration::seconds(30);
    let (took_a, took_b) = tokio::join!(store.lease_refresh(id, a, now, until), store.lease_refresh(id, b, now, until));
    let (took_a, took_b) = (took_a.unwrap(), took_b.unwrap());
    assert!(took_a ^ took_b, "exactly one of two concurrent refreshers holds the lease");
    let (holder, other) = if took_a { (a, b) } else { (b, a) };
    let before = store.tokens(id).await.unwrap().unwrap();
    let fresh = StoredTokens {
        access: sealed(1),
        refresh: Some(sealed(1)),
        access_expires_at: Some(now + Duration::minutes(60)),
        updated_at: now + Duration::seconds(1),
        ..before.clone()
    };
    assert!(!store.store_refreshed(&fresh, other).await.unwrap(), "not the holder: nothing written");
    assert_eq!(store.tokens(id).await.unwrap().unwrap(), before);
    assert!(store.store_refreshed(&fresh, holder).await.unwrap());
    assert_eq!(store.tokens(id).await.unwrap().unwrap(), fresh, "the new pair, stored whole");
    // Storing gave the lease up; a lease that lapsed is free too.
    assert!(store.lease_refresh(id, other, now, until).await.unwrap());
    assert!(!store.lease_refresh(id, holder, now + Duration::seconds(29), until).await.unwrap());
    assert!(store.lease_refresh(id, holder, until, until + Duration::seconds(30)).await.unwrap(), "lapsed");
    store.release_refresh(id, holder).await.unwrap();
    let waited = store.wait_for_refresh(id, chrono::Utc::now()).await.unwrap();
    assert_eq!(waited, Some(fresh), "a released lease is not waited for");
}

async fn a_refused_grant_marks_the_connection_with_its_notification_and_event(db: Database) {
    let (id, admin) = oauth_connection(&db).await;
    let store = db.oauth();
    let notification = Notification {
        id: Uuid::now_v7(),
        organization_id: admin.organization_id,
        user_id: admin.id,
        kind: NotificationKind::IntegrationNeedsReauthorization,
        title: "Xero needs to be reconnected".into(),
        body: "Connect it again.".into(),
        subject: format!("integration_connection:{id}"),
        created_at: t0(),
        read_at: None,
    };
    let event = DomainEvent::new(
        admin.organization_id,
        AuditActor::System,
        t0(),
        Event::IntegrationNeedsReauthorization {
            connection_id: id,
            provider: otesse_domain::integration::ProviderSlug::parse("xero").unwrap(),
        },
    );
    assert!(store.mark_needs_reauthorization(id, &notification, &event).await.unwrap());
    assert!(!store.mark_needs_reauthorization(id, &notification, &event).await.unwrap(), "once");
    assert_eq!(store.tokens(id).await.unwrap(), None, "the refused tokens are gone");
    let view = db.integrations().find_connection(admin.organization_id, id).await.unwrap().unwrap();
    assert_eq!(view.connection.status, ConnectionStatus::NeedsReauthorization);
    let page = PageRequest::<Uuid>::new(Some(10), None).unwrap();
    let listed = db.notifications().list(admin.organization_id, admin.id, false, &page).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].kind, NotificationKind::IntegrationNeedsReauthorization);
    // It can still be disconnected.
    let gone = DomainEvent::new(
        admin.organization_id,
        AuditActor::User(admin.id),
        t0(),
        Event::IntegrationDisconnected { connection_id: id, provider: view.connection.provider.clone() },
    );
    assert!(db.integrations().disconnect(admin.organization_id, id, t0(), &gone).await.unwrap());
}

async fn both_tokens_are_rewrapped_each_in_its_column(db: Database) {
    use otesse_domain::integration::TokenKind;
    use otesse_domain::sealed::SecretOwner;
    let (id, admin) = oauth_connection(&db).await;
    let before = db.oauth().tokens(id).await.unwrap().unwrap();
    let store = db.sealed_secrets();
    let old: Vec<_> = store
        .below_version(2, t0(), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| matches!(s.owner, SecretOwner::OAuthToken { .. }))
        .collect();
    let owner = |token| SecretOwner::OAuthToken { organization: admin.organization_id, connection: id, token };
    assert_eq!(old.len(), 2);
    assert!(old.iter().any(|s| s.owner == owner(TokenKind::Access) && s.ciphertext == before.access));
    assert!(old.iter().any(|s| s.owner == owner(TokenKind::Refresh) && Some(&s.ciphertext) == before.refresh.as_ref()));
    let (access, refresh) = (sealed(2), sealed(2));
    for secret in &old {
        let new = if secret.owner == owner(TokenKind::Access) { &access } else { &refresh };
        assert!(store.swap(secret, new).await.unwrap());
        assert!(!store.swap(secret, new).await.unwrap(), "compare-and-swap: the old ciphertext is gone");
    }
    let after = db.oauth().tokens(id).await.unwrap().unwrap();
    assert_eq!((after.access, after.refresh), (access, Some(refresh)), "each in its own column");
}

async fn tokens_expiring_before_a_time_come_soonest_first(db: Database) {
    // The fixture's token expires thirty minutes after t0.
    let (id, _) = oauth_connection(&db).await;
    let store = db.oauth();
    assert!(store.tokens_expiring_before(t0() + Duration::minutes(29), 10).await.unwrap().is_empty());
    let due = store.tokens_expiring_before(t0() + Duration::minutes(30), 10).await.unwrap();
    assert_eq!(due.iter().map(|t| t.connection_id).collect::<Vec<_>>(), vec![id], "at the bound: due");
    assert!(store.tokens_expiring_before(t0() + Duration::minutes(31), 0).await.unwrap().is_empty(), "the limit");
}
