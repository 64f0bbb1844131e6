//! Integrations: a connect's records in one transaction, the instance shared by an
//! organization's connections of a provider, failed connects, disconnects, health checks,
//! and audit entries by provider. (The rewrap's compare-and-swap is in `sealed.rs`.)

use chrono::{DateTime, Duration, Utc};
use otesse_domain::audit::{AuditEntry, AuditFilter};
use otesse_domain::event::{AuditActor, DomainEvent, Event, EventKind};
use otesse_domain::integration::{
    AuthMethod, ConnectionStatus, ConnectionView, CredentialField, HealthCheck, HealthOutcome, InstanceStatus,
    IntegrationConnection, IntegrationInstance, NewConnection, ProviderSlug, ProviderState, SaveConnectionError,
    StoredCredential, StripeEvent, StripeWebhookEndpoint, StripeWebhookRepository,
};
use otesse_domain::organization::OrganizationId;
use otesse_domain::page::PageRequest;
use otesse_domain::ports::{ApiKeyRepository, AuditLog, IntegrationRepository, SealedSecretStore, UserRepository};
use otesse_domain::sealed::Ciphertext;
use otesse_domain::user::{Role, User};
use otesse_storage::Database;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::fixtures::{created, entry as row, key, password_hash, setup, t0, user};
use crate::harness::TestDb;

on_both_databases!(
    a_connect_writes_everything_in_one_go,
    a_second_connect_reuses_the_instance,
    a_failed_connect_leaves_only_the_status_and_the_audit,
    disconnect_deletes_credentials_and_frees_the_instance_last,
    health_checks_come_back_newest_first,
    audit_entries_filter_by_provider,
    concurrent_connects_and_disconnects_keep_one_consistent_instance,
    one_user_s_concurrent_connects_of_one_provider_save_one,
    stripe_endpoints_are_scoped_deduplicate_events_and_go_with_the_connection,
    concurrent_stripe_endpoint_adds_never_exceed_the_limit,
);

fn slug(raw: &str) -> ProviderSlug {
    ProviderSlug::parse(raw).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

fn instance(
    organization: OrganizationId,
    provider: &str,
    status: InstanceStatus,
    now: DateTime<Utc>,
) -> IntegrationInstance {
    IntegrationInstance {
        id: Uuid::now_v7(),
        organization_id: organization,
        provider: slug(provider),
        status,
        enabled: true,
        selected_model: None,
        created_at: now,
        updated_at: now,
    }
}

/// Stand-in ciphertext bytes, different for every call.
pub(crate) fn sealed(version: u32) -> Ciphertext {
    let mut bytes = Uuid::new_v4().as_bytes().to_vec();
    bytes.extend_from_slice(b"sealed bytes and tag");
    Ciphertext { key_version: version, bytes }
}

fn check(connection: Uuid, outcome: HealthOutcome, now: DateTime<Utc>) -> HealthCheck {
    HealthCheck {
        id: Uuid::now_v7(),
        connection_id: connection,
        outcome,
        response_time_ms: 184,
        detail: format!("HTTP 200 at {now}"),
        checked_at: now,
    }
}

/// What the service writes for `user` connecting `provider` with an API key and secret sealed
/// under master key `version`; the instance is a fresh one, as if none existed.
pub(crate) fn connect_as(user: &User, provider: &str, version: u32, now: DateTime<Utc>) -> NewConnection {
    let instance = instance(user.organization_id, provider, InstanceStatus::Active, now);
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
    NewConnection {
        connection: IntegrationConnection {
            id,
            instance_id: instance.id,
            organization_id: user.organization_id,
            provider: slug(provider),
            user_id: user.id,
            auth_method: AuthMethod::ApiKey,
            status: ConnectionStatus::Connected,
            created_at: now,
            disconnected_at: None,
        },
        instance,
        credentials,
        tokens: None,
        health: check(id, HealthOutcome::Healthy, now),
    }
}

/// `user`'s event of `kind` about connection `target` of `provider`, as the service records it.
fn audit(user: &User, kind: EventKind, provider: &str, target: Uuid, now: DateTime<Utc>) -> DomainEvent {
    let (connection_id, provider) = (target, slug(provider));
    let event = match kind {
        EventKind::IntegrationConnectFailed => Event::IntegrationConnectFailed {
            connection_id,
            provider,
            auth_method: AuthMethod::ApiKey,
            outcome: HealthOutcome::InvalidCredentials,
            response_time_ms: 40,
        },
        EventKind::IntegrationDisconnected => Event::IntegrationDisconnected { connection_id, provider },
        EventKind::IntegrationUpdated => {
            Event::IntegrationUpdated { connection_id, provider, change: "enabled".into(), value: "false".into() }
        }
        other => panic!("not an integration change: {other:?}"),
    };
    DomainEvent::new(user.organization_id, AuditActor::User(user.id), now, event)
}

/// The event of a successful connect, as the service records it.
pub(crate) fn connected(new: &NewConnection) -> DomainEvent {
    let connection = &new.connection;
    let event = Event::IntegrationConnected {
        connection_id: connection.id,
        provider: connection.provider.clone(),
        auth_method: connection.auth_method,
        check: new.health.clone(),
    };
    DomainEvent::new(connection.organization_id, AuditActor::User(connection.user_id), connection.created_at, event)
}

/// An `integration.updated` event of `new`'s connection.
fn updated(new: &NewConnection, now: DateTime<Utc>) -> DomainEvent {
    let user = user(new.connection.organization_id, "x@acme.test", Role::Admin);
    DomainEvent::new(
        new.connection.organization_id,
        AuditActor::User(user.id),
        now,
        Event::IntegrationUpdated {
            connection_id: new.connection.id,
            provider: new.connection.provider.clone(),
            change: "enabled".into(),
            value: "toggled".into(),
        },
    )
}

/// The view of a freshly saved connection, as the store should return it.
fn view_of(new: &NewConnection, instance: &IntegrationInstance) -> ConnectionView {
    ConnectionView {
        connection: IntegrationConnection { instance_id: instance.id, ..new.connection.clone() },
        instance: instance.clone(),
        latest_health: Some(new.health.clone()),
    }
}

async fn member(db: &Database, organization: OrganizationId, email: &str) -> User {
    let member = user(organization, email, Role::Manager);
    db.users().insert(&member, &password_hash()).await.unwrap();
    member
}

async fn audit_trail(db: &Database, organization: OrganizationId, filter: AuditFilter) -> Vec<AuditEntry> {
    let page = PageRequest::new(None, None).unwrap();
    db.audit().list(organization, &filter, &page).await.unwrap().items
}

async fn a_connect_writes_everything_in_one_go(db: Database) {
    let (organization, admin) = setup(&db).await;
    let integrations = db.integrations();
    let new = connect_as(&admin, "postmark", 1, at(0));
    let entry = connected(&new);
    integrations.save_connection(&new, &entry).await.unwrap();

    let stored = integrations.find_instance(organization.id, &slug("postmark")).await.unwrap();
    assert_eq!(stored, Some(new.instance.clone()));
    assert_eq!(integrations.find_instance(organization.id, &slug("mapbox")).await.unwrap(), None);
    let view = view_of(&new, &new.instance);
    assert_eq!(integrations.list_connections(organization.id).await.unwrap(), vec![view.clone()]);
    assert_eq!(integrations.find_connection(organization.id, new.connection.id).await.unwrap(), Some(view));
    assert_eq!(integrations.credentials(new.connection.id).await.unwrap(), new.credentials);
    assert_eq!(integrations.health_history(new.connection.id, 20).await.unwrap(), vec![new.health.clone()]);
    assert_eq!(
        integrations.provider_states(organization.id).await.unwrap(),
        vec![ProviderState { provider: slug("postmark"), instance_status: InstanceStatus::Active, connected: true }]
    );
    assert_eq!(audit_trail(&db, organization.id, AuditFilter::default()).await, vec![row(&entry)]);

    // Another organization sees none of it.
    let elsewhere = OrganizationId(Uuid::now_v7());
    assert_eq!(integrations.find_connection(elsewhere, new.connection.id).await.unwrap(), None);
    assert_eq!(integrations.list_connections(elsewhere).await.unwrap(), vec![]);
    assert_eq!(integrations.provider_states(elsewhere).await.unwrap(), vec![]);
    assert_eq!(integrations.find_instance(elsewhere, &slug("postmark")).await.unwrap(), None);

    // A failing re-check: recorded, the instance turns to error, the view shows the new check.
    let failed = check(new.connection.id, HealthOutcome::InvalidCredentials, at(5));
    integrations.record_health(&failed, new.instance.id, InstanceStatus::Error, None).await.unwrap();
    let view = integrations.find_connection(organization.id, new.connection.id).await.unwrap().unwrap();
    assert_eq!(view.latest_health, Some(failed));
    assert_eq!(view.instance.status, InstanceStatus::Error);
    assert_eq!(view.instance.updated_at, at(5));
    assert_eq!(view.instance.created_at, at(0));

    // The active/inactive toggle.
    integrations.set_enabled(new.instance.id, false, at(6), &updated(&new, at(6))).await.unwrap();
    let instance = integrations.find_instance(organization.id, &slug("postmark")).await.unwrap().unwrap();
    assert!(!instance.enabled);
    assert_eq!(instance.updated_at, at(6));
    integrations.set_enabled(new.instance.id, true, at(7), &updated(&new, at(7))).await.unwrap();
    assert!(integrations.find_instance(organization.id, &slug("postmark")).await.unwrap().unwrap().enabled);

    // A pre-configured connection stores no credential.
    let mut mapbox = connect_as(&admin, "mapbox", 1, at(8));
    mapbox.connection.auth_method = AuthMethod::Preconfigured;
    mapbox.credentials.clear();
    integrations.save_connection(&mapbox, &connected(&mapbox)).await.unwrap();
    assert_eq!(integrations.credentials(mapbox.connection.id).await.unwrap(), vec![]);
    let listed = integrations.list_connections(organization.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], view_of(&mapbox, &mapbox.instance), "newest first");
    assert_eq!(listed[1].connection.id, new.connection.id);
}

async fn a_second_connect_reuses_the_instance(db: Database) {
    let (organization, admin) = setup(&db).await;
    let other = member(&db, organization.id, "manager@acme.test").await;
    let integrations = db.integrations();
    let first = connect_as(&admin, "postmark", 1, at(0));
    integrations.save_connection(&first, &connected(&first)).await.unwrap();
    integrations.set_enabled(first.instance.id, false, at(1), &updated(&first, at(1))).await.unwrap();
    let failed = check(first.connection.id, HealthOutcome::Unreachable, at(2));
    integrations.record_health(&failed, first.instance.id, InstanceStatus::Error, None).await.unwrap();

    // The second connect made up its own instance id, as a connect racing the first would.
    let second = connect_as(&other, "postmark", 1, at(10));
    assert_ne!(second.instance.id, first.instance.id);
    integrations.save_connection(&second, &connected(&second)).await.unwrap();

    let instance = integrations.find_instance(organization.id, &slug("postmark")).await.unwrap().unwrap();
    let expected = IntegrationInstance {
        status: InstanceStatus::Active,
        enabled: false,
        updated_at: at(10),
        ..first.instance.clone()
    };
    assert_eq!(instance, expected, "the first row, updated: id, created_at and the toggle kept");
    let states = integrations.provider_states(organization.id).await.unwrap();
    assert_eq!(states.len(), 1, "one instance row");
    let listed = integrations.list_connections(organization.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], view_of(&second, &instance), "newest first, pointing at the stored instance");
    assert_eq!(listed[1].connection, first.connection);
    assert_eq!(listed[1].instance, instance);
    assert_eq!(listed[1].latest_health, Some(failed));
}

async fn a_failed_connect_leaves_only_the_status_and_the_audit(db: Database) {
    let (organization, admin) = setup(&db).await;
    let integrations = db.integrations();
    let attempt = instance(organization.id, "postmark", InstanceStatus::Error, at(0));
    let entry = audit(&admin, EventKind::IntegrationConnectFailed, "postmark", Uuid::now_v7(), at(0));
    integrations.record_failed_connect(&attempt, &entry).await.unwrap();

    assert_eq!(
        integrations.provider_states(organization.id).await.unwrap(),
        vec![ProviderState { provider: slug("postmark"), instance_status: InstanceStatus::Error, connected: false }]
    );
    assert_eq!(integrations.find_instance(organization.id, &slug("postmark")).await.unwrap(), Some(attempt.clone()));
    assert_eq!(integrations.list_connections(organization.id).await.unwrap(), vec![]);
    assert_eq!(
        db.sealed_secrets().below_version(u32::MAX, chrono::Utc::now(), 100).await.unwrap(),
        vec![],
        "no credential"
    );
    let trail = audit_trail(&db, organization.id, AuditFilter::default()).await;
    assert_eq!(trail, vec![row(&entry)]);
    assert_eq!(trail[0].details["outcome"], "invalid_credentials");

    // Retrying succeeds: the same instance becomes active.
    let retry = connect_as(&admin, "postmark", 1, at(1));
    integrations.save_connection(&retry, &connected(&retry)).await.unwrap();
    let instance = integrations.find_instance(organization.id, &slug("postmark")).await.unwrap().unwrap();
    assert_eq!(instance.id, attempt.id);
    assert_eq!(instance.status, InstanceStatus::Active);
    assert_eq!(
        integrations.provider_states(organization.id).await.unwrap(),
        vec![ProviderState { provider: slug("postmark"), instance_status: InstanceStatus::Active, connected: true }]
    );

    // A failed connect writes the status it is given (here: another connection still works).
    let still_active = IntegrationInstance { updated_at: at(2), ..instance.clone() };
    let entry = audit(&admin, EventKind::IntegrationConnectFailed, "postmark", Uuid::now_v7(), at(2));
    integrations.record_failed_connect(&still_active, &entry).await.unwrap();
    let after = integrations.find_instance(organization.id, &slug("postmark")).await.unwrap().unwrap();
    assert_eq!(after, still_active);
    assert_eq!(integrations.list_connections(organization.id).await.unwrap().len(), 1);
}

async fn disconnect_deletes_credentials_and_frees_the_instance_last(db: Database) {
    let (organization, admin) = setup(&db).await;
    let other = member(&db, organization.id, "manager@acme.test").await;
    let integrations = db.integrations();
    let mine = connect_as(&admin, "postmark", 1, at(0));
    let theirs = connect_as(&other, "postmark", 1, at(1));
    integrations.save_connection(&mine, &connected(&mine)).await.unwrap();
    integrations.save_connection(&theirs, &connected(&theirs)).await.unwrap();
    let disconnected =
        |user: &User, id: Uuid, minutes| audit(user, EventKind::IntegrationDisconnected, "postmark", id, at(minutes));

    let elsewhere = OrganizationId(Uuid::now_v7());
    let refused = disconnected(&admin, mine.connection.id, 5);
    assert!(!integrations.disconnect(elsewhere, mine.connection.id, at(5), &refused).await.unwrap());
    assert!(!integrations.disconnect(organization.id, Uuid::now_v7(), at(5), &refused).await.unwrap());
    let instance = integrations.find_instance(organization.id, &slug("postmark")).await.unwrap().unwrap();
    assert_eq!(instance.updated_at, at(1), "a refused disconnect changes nothing");
    assert_eq!(integrations.credentials(mine.connection.id).await.unwrap(), mine.credentials);

    let first = disconnected(&admin, mine.connection.id, 10);
    assert!(integrations.disconnect(organization.id, mine.connection.id, at(10), &first).await.unwrap());
    let view = integrations.find_connection(organization.id, mine.connection.id).await.unwrap().unwrap();
    assert_eq!(view.connection.status, ConnectionStatus::Disconnected);
    assert_eq!(view.connection.disconnected_at, Some(at(10)));
    assert_eq!(view.latest_health, Some(mine.health.clone()), "the history stays");
    assert_eq!(view.instance.status, InstanceStatus::Active, "another connection is still connected");
    assert_eq!(integrations.credentials(mine.connection.id).await.unwrap(), vec![]);
    assert_eq!(integrations.credentials(theirs.connection.id).await.unwrap(), theirs.credentials);
    assert_eq!(
        integrations.provider_states(organization.id).await.unwrap(),
        vec![ProviderState { provider: slug("postmark"), instance_status: InstanceStatus::Active, connected: true }]
    );

    let again = disconnected(&admin, mine.connection.id, 11);
    assert!(!integrations.disconnect(organization.id, mine.connection.id, at(11), &again).await.unwrap());
    let view = integrations.find_connection(organization.id, mine.connection.id).await.unwrap().unwrap();
    assert_eq!(view.connection.disconnected_at, Some(at(10)), "the first disconnect's time stays");

    let last = disconnected(&other, theirs.connection.id, 12);
    assert!(integrations.disconnect(organization.id, theirs.connection.id, at(12), &last).await.unwrap());
    let instance = integrations.find_instance(organization.id, &slug("postmark")).await.unwrap().unwrap();
    assert_eq!(instance.status, InstanceStatus::Disconnected);
    assert_eq!(instance.updated_at, at(12));
    assert_eq!(
        integrations.provider_states(organization.id).await.unwrap(),
        vec![ProviderState {
            provider: slug("postmark"),
            instance_status: InstanceStatus::Disconnected,
            connected: false
        }]
    );
    let listed = integrations.list_connections(organization.id).await.unwrap();
    assert!(listed.iter().all(|view| view.connection.status == ConnectionStatus::Disconnected));
    assert_eq!(listed.len(), 2, "disconnected connections are still listed");

    let only_disconnects = AuditFilter { action: Some(EventKind::IntegrationDisconnected), ..AuditFilter::default() };
    assert_eq!(
        audit_trail(&db, organization.id, only_disconnects).await,
        vec![row(&last), row(&first)],
        "refused disconnects record nothing"
    );
}

async fn health_checks_come_back_newest_first(db: Database) {
    let (organization, admin) = setup(&db).await;
    let integrations = db.integrations();
    let postmark = connect_as(&admin, "postmark", 1, at(0));
    let mapbox = connect_as(&admin, "mapbox", 1, at(1));
    integrations.save_connection(&postmark, &connected(&postmark)).await.unwrap();
    integrations.save_connection(&mapbox, &connected(&mapbox)).await.unwrap();

    let mut checks = vec![postmark.health.clone()];
    for (minutes, outcome) in
        [(2, HealthOutcome::RateLimited), (3, HealthOutcome::Unreachable), (4, HealthOutcome::Healthy)]
    {
        let check = check(postmark.connection.id, outcome, at(minutes));
        integrations.record_health(&check, postmark.instance.id, InstanceStatus::Active, None).await.unwrap();
        checks.push(check);
    }
    let mapbox_check = check(mapbox.connection.id, HealthOutcome::InvalidCredentials, at(5));
    integrations.record_health(&mapbox_check, mapbox.instance.id, InstanceStatus::Error, None).await.unwrap();

    let newest_first: Vec<_> = checks.iter().rev().cloned().collect();
    assert_eq!(integrations.health_history(postmark.connection.id, 20).await.unwrap(), newest_first);
    assert_eq!(integrations.health_history(postmark.connection.id, 2).await.unwrap(), newest_first[..2]);
    assert_eq!(
        integrations.health_history(mapbox.connection.id, 20).await.unwrap(),
        vec![mapbox_check.clone(), mapbox.health]
    );
    assert_eq!(integrations.health_history(Uuid::now_v7(), 20).await.unwrap(), vec![]);

    // Each listed connection carries its own latest check.
    let listed = integrations.list_connections(organization.id).await.unwrap();
    assert_eq!(listed[0].connection.id, mapbox.connection.id);
    assert_eq!(listed[0].latest_health, Some(mapbox_check));
    assert_eq!(listed[0].instance.status, InstanceStatus::Error);
    assert_eq!(listed[1].latest_health, checks.last().cloned());
    assert_eq!(listed[1].instance.status, InstanceStatus::Active);
}

async fn audit_entries_filter_by_provider(db: Database) {
    let (organization, admin) = setup(&db).await;
    let integrations = db.integrations();
    let backend = key(&admin, "Backend");
    let key_entry = created(&backend);
    db.api_keys().insert(&backend, &key_entry, 25, t0()).await.unwrap();
    let postmark = connect_as(&admin, "postmark", 1, at(1));
    let mapbox = connect_as(&admin, "mapbox", 1, at(2));
    let postmark_entry = connected(&postmark);
    let mapbox_entry = connected(&mapbox);
    integrations.save_connection(&postmark, &postmark_entry).await.unwrap();
    integrations.save_connection(&mapbox, &mapbox_entry).await.unwrap();
    // The column, not the details, is what counts: a mapbox change whose value names postmark.
    let mismatched = DomainEvent::new(
        organization.id,
        AuditActor::User(admin.id),
        at(3),
        Event::IntegrationUpdated {
            connection_id: mapbox.connection.id,
            provider: slug("mapbox"),
            change: "enabled".into(),
            value: "postmark".into(),
        },
    );
    integrations.set_enabled(mapbox.instance.id, false, at(3), &mismatched).await.unwrap();

    let by = |provider: &str| AuditFilter { provider: Some(provider.to_owned()), ..AuditFilter::default() };
    assert_eq!(audit_trail(&db, organization.id, by("postmark")).await, vec![row(&postmark_entry)]);
    assert_eq!(audit_trail(&db, organization.id, by("mapbox")).await, vec![row(&mismatched), row(&mapbox_entry)]);
    assert_eq!(audit_trail(&db, organization.id, by("twilio")).await, vec![]);
    let everything = audit_trail(&db, organization.id, AuditFilter::default()).await;
    assert_eq!(everything, vec![row(&mismatched), row(&mapbox_entry), row(&postmark_entry), row(&key_entry)]);
    assert_eq!(everything[3].provider, None, "a key's entry concerns no provider");
    let combined = AuditFilter { action: Some(EventKind::IntegrationUpdated), ..by("postmark") };
    assert_eq!(audit_trail(&db, organization.id, combined).await, vec![]);
}

async fn concurrent_connects_and_disconnects_keep_one_consistent_instance(db: Database) {
    const USERS: usize = 8;
    let (organization, _) = setup(&db).await;
    let mut users = Vec::new();
    for n in 0..USERS {
        users.push(member(&db, organization.id, &format!("user{n}@acme.test")).await);
    }
    let connects: Vec<_> = users.iter().map(|user| connect_as(user, "postmark", 1, at(0))).collect();
    let tasks: Vec<_> = connects
        .iter()
        .cloned()
        .map(|new| {
            let integrations = db.integrations();
            tokio::spawn(async move { integrations.save_connection(&new, &connected(&new)).await })
        })
        .collect();
    for joined in futures_util::future::join_all(tasks).await {
        joined.expect("task").expect("every connect is saved");
    }
    let integrations = db.integrations();
    let instance = integrations.find_instance(organization.id, &slug("postmark")).await.unwrap().unwrap();
    assert!(connects.iter().any(|new| new.instance.id == instance.id), "one of the made-up ids won");
    let listed = integrations.list_connections(organization.id).await.unwrap();
    assert_eq!(listed.len(), USERS);
    assert!(listed.iter().all(|view| view.connection.instance_id == instance.id && view.instance == instance));
    assert_eq!(integrations.provider_states(organization.id).await.unwrap().len(), 1);

    let tasks: Vec<_> = users
        .iter()
        .zip(&connects)
        .map(|(user, new)| {
            let integrations = db.integrations();
            let id = new.connection.id;
            let entry = audit(user, EventKind::IntegrationDisconnected, "postmark", id, at(1));
            let organization = organization.id;
            tokio::spawn(async move { integrations.disconnect(organization, id, at(1), &entry).await })
        })
        .collect();
    for joined in futures_util::future::join_all(tasks).await {
        assert!(joined.expect("task").expect("disconnect"), "every connection was connected");
    }
    assert_eq!(
        integrations.provider_states(organization.id).await.unwrap(),
        vec![ProviderState {
            provider: slug("postmark"),
            instance_status: InstanceStatus::Disconnected,
            connected: false
        }],
        "the last disconnect, whichever it was, saw no connection left"
    );
}

async fn one_user_s_concurrent_connects_of_one_provider_save_one(db: Database) {
    let (organization, admin) = setup(&db).await;
    let attempts: Vec<_> = (0..6).map(|_| connect_as(&admin, "postmark", 1, at(0))).collect();
    let tasks: Vec<_> = attempts
        .iter()
        .cloned()
        .map(|new| {
            let integrations = db.integrations();
            tokio::spawn(async move { integrations.save_connection(&new, &connected(&new)).await })
        })
        .collect();
    let outcomes: Vec<_> = futures_util::future::join_all(tasks).await.into_iter().map(|t| t.expect("task")).collect();
    let saved = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(saved, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Ok(()) | Err(SaveConnectionError::AlreadyConnected))), "{outcomes:?}");
    let integrations = db.integrations();
    let listed = integrations.list_connections(organization.id).await.unwrap();
    assert_eq!(listed.len(), 1, "the refused ones left no connection");
    let winner = listed[0].connection.id;
    for new in &attempts {
        let stored = integrations.credentials(new.connection.id).await.unwrap();
        assert_eq!(stored.len(), if new.connection.id == winner { 2 } else { 0 }, "no orphan credentials");
    }
    let trail = audit_trail(&db, organization.id, AuditFilter::default()).await;
    assert_eq!(trail.len(), 1, "one connect announced");

    // Once disconnected, the same user connects the provider again.
    let entry = audit(&admin, EventKind::IntegrationDisconnected, "postmark", winner, at(1));
    assert!(integrations.disconnect(organization.id, winner, at(1), &entry).await.unwrap());
    let again = connect_as(&admin, "postmark", 1, at(2));
    integrations.save_connection(&again, &connected(&again)).await.unwrap();
}

#[tokio::test]
async fn sqlite_unmappable_integration_rows_are_storage_errors() {
    unmappable_integration_rows_are_storage_errors(TestDb::sqlite().await).await;
}

#[tokio::test]
#[cfg_attr(not(otesse_postgres), ignore = "set OTESSE_TEST_POSTGRES_URL to run on PostgreSQL")]
async fn postgres_unmappable_integration_rows_are_storage_errors() {
    unmappable_integration_rows_are_storage_errors(TestDb::postgres().await).await;
}

async fn unmappable_integration_rows_are_storage_errors(test_db: TestDb) {
    let db = &test_db.db;
    let (organization, admin) = setup(db).await;
    let integrations = db.integrations();
    let new = connect_as(&admin, "postmark", 1, at(0));
    integrations.save_connection(&new, &connected(&new)).await.unwrap();

    let raw = test_db.raw().await;
    let cases = [
        ("integration_instances", "status", "'paused'", "'active'"),
        ("integration_instances", "provider", "'Post Mark'", "'postmark'"),
        ("integration_connections", "auth_method", "'saml'", "'api_key'"),
        ("integration_connections", "status", "'pending'", "'connected'"),
        ("integration_health_checks", "outcome", "'degraded'", "'healthy'"),
        ("integration_health_checks", "response_time_ms", "-1", "184"),
        ("integration_credentials", "field", "'password'", "'api_secret'"),
        ("integration_credentials", "key_version", "-1", "1"),
    ];
    for (table, column, bad, good) in cases {
        let set = |from: &str, to: &str| format!("UPDATE {table} SET {column} = {to} WHERE {column} = {from}");
        raw.execute_unprepared(&set(good, bad)).await.unwrap();
        let failures = [
            integrations.provider_states(organization.id).await.err(),
            integrations.list_connections(organization.id).await.err(),
            integrations.find_connection(organization.id, new.connection.id).await.err(),
            integrations.credentials(new.connection.id).await.err(),
            integrations.health_history(new.connection.id, 20).await.err(),
        ];
        let expected = format!("{table}.{column}");
        assert!(failures.iter().flatten().any(|err| err.0.contains(&expected)), "{expected}: {failures:?}");
        // One defect at a time.
        raw.execute_unprepared(&set(bad, good)).await.unwrap();
    }
    raw.close().await.unwrap();
    test_db.finish().await;
}

fn stripe_endpoint(new: &NewConnection, now: DateTime<Utc>) -> StripeWebhookEndpoint {
    StripeWebhookEndpoint {
        id: Uuid::now_v7(),
        organization_id: new.connection.organization_id,
        connection_id: new.connection.id,
        description: "Billing".into(),
        events: vec!["charge.succeeded".into(), "invoice.paid".into()],
        created_at: now,
        last_event_at: None,
    }
}

fn stripe_event(endpoint: &StripeWebhookEndpoint, event_id: &str, now: DateTime<Utc>) -> StripeEvent {
    StripeEvent {
        id: Uuid::now_v7(),
        endpoint_id: endpoint.id,
        organization_id: endpoint.organization_id,
        event_id: event_id.into(),
        event_type: "charge.succeeded".into(),
        livemode: false,
        payload: format!(r#"{{"id":"{event_id}"}}"#),
        received_at: now,
    }
}

async fn stripe_endpoints_are_scoped_deduplicate_events_and_go_with_the_connection(db: Database) {
    let (organization, admin) = setup(&db).await;
    // Only one organization can be set up: another one's id is enough.
    let other_org = OrganizationId(Uuid::now_v7());
    let integrations = db.integrations();
    let webhooks = db.stripe_webhooks();
    let new = connect_as(&admin, "stripe", 1, at(0));
    integrations.save_connection(&new, &connected(&new)).await.unwrap();
    let endpoint = stripe_endpoint(&new, at(1));
    let secret = sealed(1);
    assert!(webhooks.insert(&endpoint, &secret, 16, &updated(&new, at(1))).await.unwrap());

    let (found, found_secret) = webhooks.find(endpoint.id).await.unwrap().expect("stored");
    assert_eq!((found, found_secret), (endpoint.clone(), secret));
    assert_eq!(webhooks.list(organization.id, new.connection.id).await.unwrap(), std::slice::from_ref(&endpoint));
    assert!(webhooks.list(other_org, new.connection.id).await.unwrap().is_empty(), "scoped to its organization");

    // Stripe retries: one stored event per Stripe id.
    assert!(webhooks.record_event(&stripe_event(&endpoint, "evt_1", at(2))).await.unwrap());
    assert!(!webhooks.record_event(&stripe_event(&endpoint, "evt_1", at(3))).await.unwrap());
    assert!(webhooks.record_event(&stripe_event(&endpoint, "evt_2", at(4))).await.unwrap());
    let page =
        webhooks.events(organization.id, new.connection.id, &PageRequest::new(Some(10), None).unwrap()).await.unwrap();
    let ids: Vec<_> = page.items.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_2", "evt_1"], "newest first");
    let first =
        webhooks.events(organization.id, new.connection.id, &PageRequest::new(Some(1), None).unwrap()).await.unwrap();
    let rest = webhooks
        .events(organization.id, new.connection.id, &PageRequest::new(Some(1), first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(rest.items[0].event_id, "evt_1", "the cursor pages on");
    let other_page = webhooks.events(other_org, new.connection.id, &PageRequest::new(Some(10), None).unwrap()).await;
    assert!(other_page.unwrap().items.is_empty());
    let listed = webhooks.list(organization.id, new.connection.id).await.unwrap();
    assert_eq!(listed[0].last_event_at, Some(at(4)));

    // Another organization cannot delete it; the owner can, with its events.
    assert!(!webhooks.delete(other_org, new.connection.id, endpoint.id, &updated(&new, at(5))).await.unwrap());
    let second = stripe_endpoint(&new, at(5));
    assert!(webhooks.insert(&second, &sealed(1), 16, &updated(&new, at(1))).await.unwrap());
    assert!(webhooks.delete(organization.id, new.connection.id, endpoint.id, &updated(&new, at(5))).await.unwrap());
    assert!(webhooks.find(endpoint.id).await.unwrap().is_none());
    assert!(!webhooks.delete(organization.id, new.connection.id, endpoint.id, &updated(&new, at(5))).await.unwrap());

    // Disconnecting deletes the connection's endpoints (their secrets) too.
    let bye = audit(&admin, EventKind::IntegrationDisconnected, "stripe", new.connection.id, at(6));
    assert!(integrations.disconnect(organization.id, new.connection.id, at(6), &bye).await.unwrap());
    assert!(webhooks.find(second.id).await.unwrap().is_none());
}

async fn concurrent_stripe_endpoint_adds_never_exceed_the_limit(db: Database) {
    let (_, admin) = setup(&db).await;
    let new = connect_as(&admin, "stripe", 1, at(0));
    db.integrations().save_connection(&new, &connected(&new)).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (webhooks, endpoint, event) =
                (db.stripe_webhooks(), stripe_endpoint(&new, at(1)), updated(&new, at(1)));
            tokio::spawn(async move { webhooks.insert(&endpoint, &sealed(1), 4, &event).await })
        })
        .collect();
    let added: Vec<bool> =
        futures_util::future::join_all(tasks).await.into_iter().map(|joined| joined.expect("task").unwrap()).collect();
    assert_eq!(added.iter().filter(|added| **added).count(), 4, "{added:?}");
    let listed = db.stripe_webhooks().list(admin.organization_id, new.connection.id).await.unwrap();
    assert_eq!(listed.len(), 4);
}

#[tokio::test]
async fn sqlite_twins_from_before_the_unique_index_are_resolved_by_its_migration() {
    twins_from_before_the_unique_index_are_resolved_by_its_migration(TestDb::sqlite().await).await;
}

#[tokio::test]
#[cfg_attr(not(otesse_postgres), ignore = "set OTESSE_TEST_POSTGRES_URL to run on PostgreSQL")]
async fn postgres_twins_from_before_the_unique_index_are_resolved_by_its_migration() {
    twins_from_before_the_unique_index_are_resolved_by_its_migration(TestDb::postgres().await).await;
}

/// A database from before the index may hold one user's two connected connections of one
/// provider (the race it closes): the migration keeps the newest connected and disconnects the
/// older one, then the index holds.
async fn twins_from_before_the_unique_index_are_resolved_by_its_migration(test_db: TestDb) {
    use otesse_migration::MigratorTrait;
    let db = &test_db.db;
    let (organization, admin) = setup(db).await;
    let raw = test_db.raw().await;
    // Back to the schema before the index.
    raw.execute_unprepared("DROP INDEX idx_integration_connections_one_connected").await.unwrap();
    raw.execute_unprepared("DELETE FROM seaql_migrations WHERE version = 'm20261206_000010_one_connection_per_user'")
        .await
        .unwrap();
    let integrations = db.integrations();
    let older = connect_as(&admin, "postmark", 1, at(0));
    let newer = connect_as(&admin, "postmark", 1, at(1));
    integrations.save_connection(&older, &connected(&older)).await.unwrap();
    integrations.save_connection(&newer, &connected(&newer)).await.unwrap();

    otesse_migration::Migrator::up(&raw, None).await.unwrap();
    raw.close().await.unwrap();
    let listed = integrations.list_connections(organization.id).await.unwrap();
    let status = |id: Uuid| listed.iter().find(|v| v.connection.id == id).unwrap().connection.status;
    assert_eq!(status(newer.connection.id), ConnectionStatus::Connected);
    assert_eq!(status(older.connection.id), ConnectionStatus::Disconnected);
    let third = connect_as(&admin, "postmark", 1, at(2));
    assert_eq!(
        integrations.save_connection(&third, &connected(&third)).await,
        Err(SaveConnectionError::AlreadyConnected),
        "the index holds from then on"
    );
    test_db.finish().await;
}
