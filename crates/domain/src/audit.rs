//! The audit trail: who did what to which key or integration, and when (K16, I9). An entry is
//! the audit log's view of a recorded [`DomainEvent`]; storage writes it in the transaction of
//! the change (see [`crate::event`]). This module says what an entry holds and lets users read
//! them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StorageError;
use crate::caller::{Caller, Denied, Need};
pub use crate::event::AuditActor;
use crate::event::{DomainEvent, EventKind};
use crate::organization::OrganizationId;
use crate::page::{Page, PageRequest};
use crate::user::Permission;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// One audit entry. `details` holds names and identifiers only, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The event's id.
    pub id: Uuid,
    /// The organization it happened in; users read only their own organization's entries.
    pub organization_id: OrganizationId,
    /// Who did it: a user, a key, or the system.
    pub actor: AuditActor,
    /// One of the audited kinds ([`EventKind::audited`]).
    pub action: EventKind,
    /// What the action was done to: `api_key`, `integration` or `user`.
    pub target_type: String,
    /// The id of what was acted on (key, connection or user).
    pub target_id: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The integration provider concerned, if any (filterable).
    pub provider: Option<String>,
    /// Names and ids that tell the entry apart (`name`, `environment`, `outcome`, ...); never a
    /// secret.
    pub details: BTreeMap<String, String>,
}

impl AuditEntry {
    /// The audit log's entry for an event, if its kind is audited.
    pub fn of(event: &DomainEvent) -> Option<AuditEntry> {
        let facts = event.event.audit_facts()?;
        Some(AuditEntry {
            id: event.id,
            organization_id: event.organization_id,
            actor: event.actor,
            action: event.kind(),
            target_type: facts.target_type.to_owned(),
            target_id: facts.target_id,
            occurred_at: event.occurred_at,
            provider: facts.provider,
            details: facts.details,
        })
    }
}

/// Which entries to list; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this action.
    pub action: Option<EventKind>,
    /// Only what this actor did.
    pub actor: Option<AuditActor>,
    /// Only entries about this kind of target (`api_key`, `integration`, `user`).
    pub target_type: Option<String>,
    /// Only entries about this provider's connections (its slug).
    pub provider: Option<String>,
    /// Only entries that happened at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only entries that happened at or before this time.
    pub to: Option<DateTime<Utc>>,
}

/// Reading the audit log. Entries are written by storage with the change they record.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Newest first; the cursor is the id of the last entry of the previous page.
    async fn list(
        &self,
        organization: OrganizationId,
        filter: &AuditFilter,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<AuditEntry, Uuid>, StorageError>;
}

/// Why the audit log could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditQueryError {
    /// The caller is not a user with `settings.view`.
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// The log could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Reading the audit log (writing happens inside the operations that are audited).
#[derive(Clone)]
pub struct AuditService {
    log: Arc<dyn AuditLog>,
}

impl std::fmt::Debug for AuditService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditService")
    }
}

impl AuditService {
    /// A service reading `log`.
    pub fn new(log: Arc<dyn AuditLog>) -> Self {
        Self { log }
    }

    /// The caller's organization's entries, newest first; needs a user with `settings.view`.
    pub async fn list(
        &self,
        caller: &Caller,
        filter: &AuditFilter,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<AuditEntry, Uuid>, AuditQueryError> {
        caller.require(Need::User(Permission::SettingsView))?;
        Ok(self.log.list(caller.organization_id(), filter, page).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_key::ApiKeyId;
    use crate::event::Event;
    use crate::integration::{AuthMethod, HealthCheck, HealthOutcome, ProviderSlug};
    use crate::user::Role;

    fn actor(role: Role) -> Caller {
        crate::caller::fixtures::user(role)
    }

    #[tokio::test]
    async fn lists_only_the_actors_organization() {
        let mut log = MockAuditLog::new();
        log.expect_list()
            .withf(|org, _, _| *org == OrganizationId(Uuid::from_u128(1)))
            .times(1)
            .returning(|_, _, _| Ok(Page { items: vec![], next: None }));
        let page = PageRequest::new(None, None).unwrap();
        let listed = AuditService::new(Arc::new(log)).list(&actor(Role::Viewer), &AuditFilter::default(), &page).await;
        assert!(listed.unwrap().items.is_empty());
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn recorded(event: Event) -> DomainEvent {
        DomainEvent::new(
            OrganizationId(Uuid::from_u128(1)),
            AuditActor::User(crate::user::UserId(Uuid::from_u128(2))),
            at(),
            event,
        )
    }

    #[test]
    fn key_events_name_the_key_and_never_its_secret() {
        let key = crate::api_key::fixtures::key(at());
        let rotated = recorded(Event::ApiKeyRotated {
            key: key.clone(),
            rotated_from: ApiKeyId(Uuid::from_u128(9)),
            old_key_revoked_at: Some(at()),
        });
        let entry = AuditEntry::of(&rotated).unwrap();
        assert_eq!((entry.id, entry.action), (rotated.id, EventKind::ApiKeyRotated));
        assert_eq!((entry.target_type.as_str(), entry.target_id.clone()), ("api_key", key.id.to_string()));
        assert_eq!(entry.details["name"], key.name.as_str());
        assert_eq!(entry.details["scope_level"], "read_write");
        assert_eq!(entry.details["rotated_from"], Uuid::from_u128(9).to_string());
        assert_eq!(entry.details["old_key_revoked_at"], at().to_rfc3339());
        assert_eq!(entry.provider, None);
        let created = AuditEntry::of(&recorded(Event::ApiKeyCreated { key })).unwrap();
        assert!(!created.details.contains_key("rotated_from"));
    }

    #[test]
    fn integration_events_carry_their_provider_and_system_events_are_not_audited() {
        let postmark = ProviderSlug::parse("postmark").unwrap();
        let check = HealthCheck {
            id: Uuid::from_u128(5),
            connection_id: Uuid::from_u128(4),
            outcome: HealthOutcome::Healthy,
            response_time_ms: 42,
            detail: "HTTP 200".into(),
            checked_at: at(),
        };
        let connected = recorded(Event::IntegrationConnected {
            connection_id: Uuid::from_u128(4),
            provider: postmark.clone(),
            auth_method: AuthMethod::ApiKey,
            check: check.clone(),
        });
        let entry = AuditEntry::of(&connected).unwrap();
        assert_eq!(entry.provider.as_deref(), Some("postmark"));
        assert_eq!(entry.target_id, Uuid::from_u128(4).to_string());
        assert_eq!(
            entry.details,
            BTreeMap::from([
                ("auth_method".into(), "api_key".into()),
                ("outcome".into(), "healthy".into()),
                ("provider".into(), "postmark".into()),
                ("response_time_ms".into(), "42".into()),
            ])
        );
        let updated = recorded(Event::IntegrationUpdated {
            connection_id: Uuid::from_u128(4),
            provider: postmark.clone(),
            change: "sender_email.added".into(),
            value: "billing@acme.test".into(),
        });
        assert_eq!(AuditEntry::of(&updated).unwrap().details["value"], "billing@acme.test");
        let failed =
            recorded(Event::HealthCheckFailed { connection_id: Uuid::from_u128(4), provider: postmark, check });
        assert_eq!(AuditEntry::of(&failed), None);
        assert_eq!(AuditEntry::of(&recorded(Event::WebhookTest { endpoint_id: Uuid::nil() })), None);
    }
}
