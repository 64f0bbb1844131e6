//! Domain values for the scenarios. Times are fixed and whole microseconds, the precision both
//! databases keep.

use chrono::{DateTime, Duration, TimeZone, Utc};
use otesse_domain::api_key::{
    ApiKey, ApiKeyDescription, ApiKeyId, ApiKeyName, Environment, ExpiresIn, KeyHash, Scope, ScopeLevel,
};
use otesse_domain::audit::AuditEntry;
use otesse_domain::event::{AuditActor, DomainEvent, Event};
use otesse_domain::organization::{Organization, OrganizationId, OrganizationName};
use otesse_domain::ports::UserRepository;
use otesse_domain::user::{Email, PasswordHash, Role, User, UserId};
use otesse_storage::Database;
use uuid::Uuid;

/// The scenarios' "now".
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + Duration::microseconds(123_456)
}

pub fn organization(name: &str) -> Organization {
    Organization {
        id: OrganizationId(Uuid::now_v7()),
        name: OrganizationName::parse(name).unwrap(),
        created_at: t0() - Duration::days(30),
    }
}

pub fn user(organization: OrganizationId, email: &str, role: Role) -> User {
    User {
        id: UserId(Uuid::now_v7()),
        organization_id: organization,
        email: Email::parse(email).unwrap(),
        name: None,
        role,
        status: otesse_domain::user::UserStatus::Active,
        created_at: t0() - Duration::days(30),
    }
}

pub fn password_hash() -> PasswordHash {
    PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into())
}

/// The first organization and its admin, through the first-run setup.
pub async fn setup(db: &Database) -> (Organization, User) {
    let organization = organization("Acme");
    let admin = user(organization.id, "admin@acme.test", Role::Admin);
    db.users().complete_setup(&organization, &admin, &password_hash()).await.expect("first setup");
    (organization, admin)
}

/// 32 random bytes: a stand-in for SHA-256 of a fresh key.
pub fn random_hash() -> KeyHash {
    let mut bytes = [0; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    KeyHash(bytes)
}

/// A live, read-write key named `name`, created at `t0`, expiring after 90 days.
pub fn key(admin: &User, name: &str) -> ApiKey {
    let id = Uuid::now_v7();
    ApiKey {
        id: ApiKeyId(id),
        organization_id: admin.organization_id,
        name: ApiKeyName::parse(name).unwrap(),
        description: ApiKeyDescription::default(),
        environment: Environment::Live,
        scope_level: ScopeLevel::ReadWrite,
        scopes: vec![Scope::CustomersRead, Scope::CustomersWrite],
        expires_in: ExpiresIn::Days90,
        allowed_ips: vec![],
        key_hash: random_hash(),
        last4: id.simple().to_string()[28..].to_owned(),
        created_by: admin.id,
        created_at: t0(),
        expires_at: ExpiresIn::Days90.expires_at(t0()),
        revoked_at: None,
        rotated_from: None,
        last_used_at: None,
    }
}

/// An event of `key`'s organization, by its creator, at `at`.
pub fn key_event(key: &ApiKey, event: Event, at: DateTime<Utc>) -> DomainEvent {
    DomainEvent::new(key.organization_id, AuditActor::User(key.created_by), at, event)
}

/// The event of `key`'s creation, as the service records it.
pub fn created(key: &ApiKey) -> DomainEvent {
    key_event(key, Event::ApiKeyCreated { key: key.clone() }, key.created_at)
}

/// The event of `key`'s revocation at `at`.
pub fn revoked(key: &ApiKey, at: DateTime<Utc>) -> DomainEvent {
    key_event(key, Event::ApiKeyRevoked { key: ApiKey { revoked_at: Some(at), ..key.clone() } }, at)
}

/// The audit row an event writes.
pub fn entry(event: &DomainEvent) -> AuditEntry {
    AuditEntry::of(event).expect("an audited event")
}
