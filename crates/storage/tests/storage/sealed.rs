//! The sealed secrets of every table, as the master-key rewrap sees them: each listed with its
//! owner, oldest first, and swapped only if it is still what was read (compare-and-swap).

use chrono::{DateTime, Duration, Utc};
use otesse_domain::event::{AuditActor, DomainEvent, Event};
use otesse_domain::integration::{
    AuthMethod, ConnectionStatus, CredentialField, HealthCheck, HealthOutcome, InstanceStatus, IntegrationConnection,
    IntegrationInstance, NewConnection, ProviderSlug, StoredCredential, StripeWebhookEndpoint, StripeWebhookRepository,
};
use otesse_domain::ports::{IntegrationRepository, SealedSecretStore};
use otesse_domain::sealed::{Ciphertext, EndpointSlot, SealedSecret, SecretOwner};
use otesse_domain::user::User;
use otesse_domain::webhook::{EndpointId, EndpointStatus, WebhookEndpoint, WebhookRepository};
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::{setup, t0};

on_both_databases!(
    credentials_are_listed_by_owner_and_swapped_only_if_unchanged,
    stripe_signing_secrets_are_rewrapped_like_credentials,
    an_outbound_endpoint_s_secrets_are_rewrapped_each_in_its_slot,
);

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

/// Stand-in ciphertext bytes, different for every call.
fn sealed(version: u32) -> Ciphertext {
    let mut bytes = Uuid::new_v4().as_bytes().to_vec();
    bytes.extend_from_slice(b"sealed bytes and tag");
    Ciphertext { key_version: version, bytes }
}

/// `user`'s connection of `provider`, with an API key and secret sealed under `version`.
async fn connect(db: &Database, user: &User, provider: &str, version: u32, now: DateTime<Utc>) -> NewConnection {
    let provider = ProviderSlug::parse(provider).unwrap();
    let instance = IntegrationInstance {
        id: Uuid::now_v7(),
        organization_id: user.organization_id,
        provider: provider.clone(),
        status: InstanceStatus::Active,
        enabled: true,
        selected_model: None,
        created_at: now,
        updated_at: now,
    };
    let id = Uuid::now_v7();
    let credentials = [CredentialField::ApiKey, CredentialField::ApiSecret]
        .into_iter()
        .map(|field| StoredCredential {
            id: Uuid::now_v7(),
            organization_id: user.organization_id,
            connection_id: id,
            field,
            ciphertext: sealed(version),
            created_at: now,
        })
        .collect();
    let health = HealthCheck {
        id: Uuid::now_v7(),
        connection_id: id,
        outcome: HealthOutcome::Healthy,
        response_time_ms: 10,
        detail: String::new(),
        checked_at: now,
    };
    let new = NewConnection {
        connection: IntegrationConnection {
            id,
            instance_id: instance.id,
            organization_id: user.organization_id,
            provider: provider.clone(),
            user_id: user.id,
            auth_method: AuthMethod::ApiKey,
            status: ConnectionStatus::Connected,
            created_at: now,
            disconnected_at: None,
        },
        instance,
        credentials,
        tokens: None,
        health: health.clone(),
    };
    let event = DomainEvent::new(
        user.organization_id,
        AuditActor::User(user.id),
        now,
        Event::IntegrationConnected { connection_id: id, provider, auth_method: AuthMethod::ApiKey, check: health },
    );
    db.integrations().save_connection(&new, &event).await.unwrap();
    new
}

fn secrets_of(new: &NewConnection) -> Vec<SealedSecret> {
    new.credentials.iter().map(|c| SealedSecret { owner: c.owner(), ciphertext: c.ciphertext.clone() }).collect()
}

async fn credentials_are_listed_by_owner_and_swapped_only_if_unchanged(db: Database) {
    let (_, admin) = setup(&db).await;
    let old = connect(&db, &admin, "postmark", 1, at(0)).await;
    let _current = connect(&db, &admin, "mapbox", 2, at(1)).await;
    let older = connect(&db, &admin, "twilio", 1, at(2)).await;
    let store = db.sealed_secrets();

    let below: Vec<_> = secrets_of(&old).into_iter().chain(secrets_of(&older)).collect();
    assert_eq!(store.below_version(2, Utc::now(), 100).await.unwrap(), below, "oldest first, each with its owner");
    assert_eq!(store.below_version(2, Utc::now(), 1).await.unwrap(), below[..1]);
    assert_eq!(store.below_version(1, Utc::now(), 100).await.unwrap(), vec![]);
    assert_eq!(store.below_version(3, Utc::now(), 100).await.unwrap().len(), 6);

    let target = below[0].clone();
    let rewrapped = sealed(2);
    // A stale read: another version, or other bytes under the same version, or another owner.
    let stale = |ciphertext: Ciphertext| SealedSecret { ciphertext, ..target.clone() };
    for read in [
        stale(Ciphertext { key_version: 2, ..target.ciphertext.clone() }),
        stale(sealed(1)),
        stale(rewrapped.clone()),
        SealedSecret {
            owner: SecretOwner::ConnectionCredential {
                organization: admin.organization_id,
                connection: old.connection.id,
                field: CredentialField::AccountId,
            },
            ciphertext: target.ciphertext.clone(),
        },
    ] {
        assert!(!store.swap(&read, &rewrapped).await.unwrap(), "{read:?}");
    }
    let credentials = db.integrations().credentials(old.connection.id).await.unwrap();
    assert_eq!(credentials, old.credentials, "nothing changed");

    assert!(store.swap(&target, &rewrapped).await.unwrap());
    let expected = StoredCredential { ciphertext: rewrapped.clone(), ..old.credentials[0].clone() };
    let stored = db.integrations().credentials(old.connection.id).await.unwrap();
    assert_eq!(stored, vec![expected, old.credentials[1].clone()], "same row and owner, new ciphertext");
    // The swap happens once.
    assert!(!store.swap(&target, &sealed(2)).await.unwrap());
    assert_eq!(store.below_version(2, Utc::now(), 100).await.unwrap(), below[1..]);
}

async fn stripe_signing_secrets_are_rewrapped_like_credentials(db: Database) {
    let (_, admin) = setup(&db).await;
    let new = connect(&db, &admin, "stripe", 2, at(0)).await;
    let endpoint = StripeWebhookEndpoint {
        id: Uuid::now_v7(),
        organization_id: admin.organization_id,
        connection_id: new.connection.id,
        description: "Billing".into(),
        events: vec!["charge.succeeded".into()],
        created_at: at(1),
        last_event_at: None,
    };
    let old = sealed(1);
    let added = DomainEvent::new(
        admin.organization_id,
        AuditActor::User(admin.id),
        at(1),
        Event::IntegrationUpdated {
            connection_id: new.connection.id,
            provider: new.connection.provider.clone(),
            change: "webhook_endpoint.added".into(),
            value: endpoint.id.to_string(),
        },
    );
    assert!(db.stripe_webhooks().insert(&endpoint, &old, 16, &added).await.unwrap());

    let store = db.sealed_secrets();
    let stale = store.below_version(2, Utc::now(), 10).await.unwrap();
    assert_eq!(stale, vec![SealedSecret { owner: endpoint.secret_owner(), ciphertext: old.clone() }]);

    let fresh = sealed(2);
    let not_read = SealedSecret { ciphertext: sealed(1), ..stale[0].clone() };
    assert!(!store.swap(&not_read, &fresh).await.unwrap(), "not what was read");
    assert!(store.swap(&stale[0], &fresh).await.unwrap());
    assert_eq!(db.stripe_webhooks().find(endpoint.id).await.unwrap().unwrap().1, fresh);
    assert!(store.below_version(2, Utc::now(), 10).await.unwrap().is_empty());
}

async fn an_outbound_endpoint_s_secrets_are_rewrapped_each_in_its_slot(db: Database) {
    let (_, admin) = setup(&db).await;
    let webhooks = db.webhooks();
    let target = WebhookEndpoint {
        id: EndpointId(Uuid::now_v7()),
        organization_id: admin.organization_id,
        url: "https://hooks.example.com/in".into(),
        description: String::new(),
        events: vec![],
        status: EndpointStatus::Enabled,
        disabled_reason: None,
        consecutive_failures: 0,
        created_by: admin.id,
        created_at: t0(),
        updated_at: t0(),
    };
    let before = Ciphertext { key_version: 1, bytes: b"the secret before, under key 1".to_vec() };
    let after = Ciphertext { key_version: 1, bytes: b"the secret after, under key 1".to_vec() };
    webhooks.insert_endpoint(&target, &before, 16).await.unwrap();
    let until = t0() + Duration::hours(24);
    webhooks.rotate_secret(target.id, &after, until).await.unwrap();

    let store = db.sealed_secrets();
    let current = SealedSecret { owner: target.secret_owner(EndpointSlot::Current), ciphertext: after.clone() };
    let previous = SealedSecret { owner: target.secret_owner(EndpointSlot::Previous), ciphertext: before.clone() };
    // Within the overlap both secrets are listed; once it is over, only the current one.
    assert_eq!(
        store.below_version(2, t0() + Duration::hours(1), 10).await.unwrap(),
        vec![current.clone(), previous.clone()]
    );
    assert_eq!(
        store.below_version(2, until, 10).await.unwrap(),
        vec![current.clone()],
        "an expired previous secret is never sent again"
    );

    let rewrapped = |bytes: &[u8]| Ciphertext { key_version: 2, bytes: bytes.to_vec() };
    let (new_before, new_after) =
        (rewrapped(b"the secret before, under key 2"), rewrapped(b"the secret after, under key 2"));
    // Each slot by its own ciphertext: the current secret's bytes do not swap the previous one.
    let crossed = SealedSecret { owner: previous.owner, ciphertext: after.clone() };
    assert!(!store.swap(&crossed, &new_before).await.unwrap(), "not what the slot holds");
    assert!(store.swap(&previous, &new_before).await.unwrap(), "the previous secret");
    assert!(store.swap(&current, &new_after).await.unwrap(), "the current secret");
    let secrets = webhooks.secrets(target.id).await.unwrap().unwrap();
    assert_eq!(secrets.current, new_after);
    assert_eq!(secrets.previous, Some((new_before, until)), "the overlap keeps its end");
    assert!(
        store.below_version(2, t0() + Duration::hours(1), 10).await.unwrap().is_empty(),
        "nothing left under key 1"
    );
}
