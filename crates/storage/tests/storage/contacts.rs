//! Contacts: the default of each kind (the first one, moved by `set_default`, promoted on
//! delete), duplicates refused without a trace, organization scoping, and concurrent writes on
//! one instance that still leave exactly one default.

use chrono::{DateTime, Duration, Utc};
use otesse_domain::event::{AuditActor, DomainEvent, Event};
use otesse_domain::integration::{
    AuthMethod, ContactKind, ContactResource, HealthOutcome, InstanceStatus, IntegrationInstance, ProviderSlug,
};
use otesse_domain::organization::OrganizationId;
use otesse_domain::ports::{ContactRepository, ContactStoreError, IntegrationRepository};
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::{setup, t0};

on_both_databases!(
    the_first_of_a_kind_is_the_default,
    a_duplicate_value_is_refused_and_changes_nothing,
    set_default_moves_the_flag,
    deleting_the_default_promotes_the_oldest_remaining,
    deleting_the_last_leaves_none,
    update_changes_value_and_label,
    another_organization_sees_nothing,
    concurrent_set_defaults_leave_one_default,
    concurrent_inserts_leave_one_default,
);

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

/// The organization's Postmark instance, created by a (failed) connect.
async fn postmark(db: &Database, organization: OrganizationId) -> IntegrationInstance {
    let instance = IntegrationInstance {
        id: Uuid::now_v7(),
        organization_id: organization,
        provider: ProviderSlug::parse("postmark").unwrap(),
        status: InstanceStatus::Error,
        enabled: true,
        selected_model: None,
        created_at: at(0),
        updated_at: at(0),
    };
    let failed = Event::IntegrationConnectFailed {
        connection_id: Uuid::now_v7(),
        provider: instance.provider.clone(),
        auth_method: AuthMethod::ApiKey,
        outcome: HealthOutcome::InvalidCredentials,
        response_time_ms: 10,
    };
    let event = DomainEvent::new(organization, AuditActor::System, at(0), failed);
    db.integrations().record_failed_connect(&instance, &event).await.unwrap();
    instance
}

/// The event of a contact change (its audit row; these tests look at the contacts).
fn change() -> DomainEvent {
    let event = Event::IntegrationUpdated {
        connection_id: Uuid::now_v7(),
        provider: ProviderSlug::parse("postmark").unwrap(),
        change: "sender_email.added".into(),
        value: "x".into(),
    };
    DomainEvent::new(OrganizationId(Uuid::now_v7()), AuditActor::System, at(0), event)
}

fn email(instance: &IntegrationInstance, value: &str, minutes: i64) -> ContactResource {
    ContactResource {
        id: Uuid::now_v7(),
        organization_id: instance.organization_id,
        instance_id: instance.id,
        kind: ContactKind::SenderEmail,
        value: value.to_owned(),
        label: String::new(),
        // Ignored by insert.
        is_default: true,
        created_at: at(minutes),
        updated_at: at(minutes),
    }
}

fn phone(instance: &IntegrationInstance, value: &str, minutes: i64) -> ContactResource {
    ContactResource { kind: ContactKind::PhoneNumber, ..email(instance, value, minutes) }
}

async fn emails(db: &Database, instance: &IntegrationInstance) -> Vec<ContactResource> {
    db.contacts().list(instance.organization_id, instance.id, ContactKind::SenderEmail).await.unwrap()
}

fn defaults(list: &[ContactResource]) -> Vec<Uuid> {
    list.iter().filter(|c| c.is_default).map(|c| c.id).collect()
}

async fn the_first_of_a_kind_is_the_default(db: Database) {
    let (organization, _) = setup(&db).await;
    let instance = postmark(&db, organization.id).await;
    let contacts = db.contacts();

    let first = contacts.insert(&email(&instance, "billing@acme.test", 1), &change()).await.unwrap();
    assert!(first.is_default);
    let second = contacts.insert(&email(&instance, "support@acme.test", 2), &change()).await.unwrap();
    assert!(!second.is_default);
    // Each kind has its own default.
    let number = contacts.insert(&phone(&instance, "+14155550123", 3), &change()).await.unwrap();
    assert!(number.is_default);

    assert_eq!(emails(&db, &instance).await, vec![first.clone(), second]);
    assert_eq!(contacts.list(organization.id, instance.id, ContactKind::PhoneNumber).await.unwrap(), vec![number]);
}

async fn a_duplicate_value_is_refused_and_changes_nothing(db: Database) {
    let (organization, _) = setup(&db).await;
    let instance = postmark(&db, organization.id).await;
    let contacts = db.contacts();
    let first = contacts.insert(&email(&instance, "billing@acme.test", 1), &change()).await.unwrap();
    let second = contacts.insert(&email(&instance, "support@acme.test", 2), &change()).await.unwrap();
    let before = db.integrations().find_instance(organization.id, &instance.provider).await.unwrap();

    let again = email(&instance, "billing@acme.test", 3);
    assert_eq!(contacts.insert(&again, &change()).await, Err(ContactStoreError::Duplicate));
    assert_eq!(
        contacts.update(organization.id, second.id, Some("billing@acme.test".into()), None, at(4), &change()).await,
        Err(ContactStoreError::Duplicate)
    );

    assert_eq!(emails(&db, &instance).await, vec![first.clone(), second]);
    assert_eq!(db.integrations().find_instance(organization.id, &instance.provider).await.unwrap(), before);
    // The same value is fine for another kind... and rewriting a resource's own value too.
    let other_kind = ContactResource { kind: ContactKind::PhoneNumber, ..again };
    assert!(contacts.insert(&other_kind, &change()).await.is_ok());
    let same =
        contacts.update(organization.id, first.id, Some(first.value.clone()), None, at(5), &change()).await.unwrap();
    assert_eq!(same.map(|c| c.value), Some(first.value));
}

async fn set_default_moves_the_flag(db: Database) {
    let (organization, _) = setup(&db).await;
    let instance = postmark(&db, organization.id).await;
    let contacts = db.contacts();
    let first = contacts.insert(&email(&instance, "a@acme.test", 1), &change()).await.unwrap();
    let second = contacts.insert(&email(&instance, "b@acme.test", 2), &change()).await.unwrap();
    let number = contacts.insert(&phone(&instance, "+14155550123", 3), &change()).await.unwrap();

    let moved = contacts.set_default(organization.id, second.id, at(10), &change()).await.unwrap().unwrap();
    assert!(moved.is_default);
    assert_eq!(moved.updated_at, at(10));
    let list = emails(&db, &instance).await;
    assert_eq!(defaults(&list), vec![second.id]);
    assert_eq!(list[1], moved);
    // Already the default: unchanged.
    assert_eq!(contacts.set_default(organization.id, second.id, at(11), &change()).await.unwrap(), Some(moved));
    // The other kind keeps its own default.
    let numbers = contacts.list(organization.id, instance.id, ContactKind::PhoneNumber).await.unwrap();
    assert_eq!(defaults(&numbers), vec![number.id]);

    contacts.set_default(organization.id, first.id, at(12), &change()).await.unwrap().unwrap();
    assert_eq!(defaults(&emails(&db, &instance).await), vec![first.id]);
}

async fn deleting_the_default_promotes_the_oldest_remaining(db: Database) {
    let (organization, _) = setup(&db).await;
    let instance = postmark(&db, organization.id).await;
    let contacts = db.contacts();
    let first = contacts.insert(&email(&instance, "a@acme.test", 1), &change()).await.unwrap();
    let second = contacts.insert(&email(&instance, "b@acme.test", 2), &change()).await.unwrap();
    let third = contacts.insert(&email(&instance, "c@acme.test", 3), &change()).await.unwrap();
    contacts.set_default(organization.id, third.id, at(4), &change()).await.unwrap().unwrap();

    // Deleting a non-default leaves the default alone.
    assert!(contacts.delete(organization.id, second.id, &change()).await.unwrap());
    assert_eq!(defaults(&emails(&db, &instance).await), vec![third.id]);

    assert!(contacts.delete(organization.id, third.id, &change()).await.unwrap());
    let list = emails(&db, &instance).await;
    assert_eq!(list.iter().map(|c| c.id).collect::<Vec<_>>(), vec![first.id]);
    assert_eq!(defaults(&list), vec![first.id]);
    assert!(!contacts.delete(organization.id, third.id, &change()).await.unwrap());
}

async fn deleting_the_last_leaves_none(db: Database) {
    let (organization, _) = setup(&db).await;
    let instance = postmark(&db, organization.id).await;
    let contacts = db.contacts();
    let only = contacts.insert(&email(&instance, "a@acme.test", 1), &change()).await.unwrap();
    assert!(contacts.delete(organization.id, only.id, &change()).await.unwrap());
    assert_eq!(emails(&db, &instance).await, vec![]);
    // The next one is the default again.
    let next = contacts.insert(&email(&instance, "a@acme.test", 2), &change()).await.unwrap();
    assert!(next.is_default);
}

async fn update_changes_value_and_label(db: Database) {
    let (organization, _) = setup(&db).await;
    let instance = postmark(&db, organization.id).await;
    let contacts = db.contacts();
    let first = contacts.insert(&email(&instance, "a@acme.test", 1), &change()).await.unwrap();

    let renamed =
        contacts.update(organization.id, first.id, None, Some("Billing".into()), at(5), &change()).await.unwrap();
    let expected = ContactResource { label: "Billing".into(), updated_at: at(5), ..first.clone() };
    assert_eq!(renamed, Some(expected.clone()));

    let moved =
        contacts.update(organization.id, first.id, Some("z@acme.test".into()), None, at(6), &change()).await.unwrap();
    let expected = ContactResource { value: "z@acme.test".into(), updated_at: at(6), ..expected };
    assert_eq!(moved, Some(expected.clone()));
    assert_eq!(emails(&db, &instance).await, vec![expected]);
}

async fn another_organization_sees_nothing(db: Database) {
    let (organization, _) = setup(&db).await;
    let instance = postmark(&db, organization.id).await;
    let contacts = db.contacts();
    let first = contacts.insert(&email(&instance, "a@acme.test", 1), &change()).await.unwrap();
    let second = contacts.insert(&email(&instance, "b@acme.test", 2), &change()).await.unwrap();

    // Only one organization can be set up: another one's id is enough for the reads.
    let other = OrganizationId(Uuid::now_v7());

    assert_eq!(contacts.list(other, instance.id, ContactKind::SenderEmail).await.unwrap(), vec![]);
    assert_eq!(contacts.update(other, first.id, Some("x@x.test".into()), None, at(3), &change()).await, Ok(None));
    assert_eq!(contacts.set_default(other, second.id, at(3), &change()).await.unwrap(), None);
    assert!(!contacts.delete(other, first.id, &change()).await.unwrap());
    // Nor can a resource be filed under another organization's instance.
    let misfiled = ContactResource { organization_id: other, ..email(&instance, "c@acme.test", 4) };
    assert!(matches!(contacts.insert(&misfiled, &change()).await, Err(ContactStoreError::Storage(_))));

    assert_eq!(emails(&db, &instance).await, vec![first, second]);
}

async fn concurrent_set_defaults_leave_one_default(db: Database) {
    let (organization, _) = setup(&db).await;
    let instance = postmark(&db, organization.id).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let resource = email(&instance, &format!("sender{n}@acme.test"), n);
        ids.push(db.contacts().insert(&resource, &change()).await.unwrap().id);
    }

    let tasks: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, &id)| {
            let contacts = db.contacts();
            let organization = organization.id;
            tokio::spawn(async move { contacts.set_default(organization, id, at(100 + n as i64), &change()).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap().is_some());
    }

    let list = emails(&db, &instance).await;
    assert_eq!(list.len(), 20);
    assert_eq!(defaults(&list).len(), 1, "{list:#?}");
}

async fn concurrent_inserts_leave_one_default(db: Database) {
    let (organization, _) = setup(&db).await;
    let instance = postmark(&db, organization.id).await;

    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let contacts = db.contacts();
            let resource = email(&instance, &format!("sender{n}@acme.test"), 1);
            tokio::spawn(async move { contacts.insert(&resource, &change()).await })
        })
        .collect();
    let mut inserted_defaults = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().is_default {
            inserted_defaults += 1;
        }
    }

    assert_eq!(inserted_defaults, 1);
    let list = emails(&db, &instance).await;
    assert_eq!(list.len(), 20);
    assert_eq!(defaults(&list).len(), 1, "{list:#?}");
}
