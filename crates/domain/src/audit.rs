//! The audit trail: who did what to which key or integration, and when (K16, I9).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api_key::ApiKeyId;
use crate::organization::OrganizationId;
use crate::user::UserId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    ApiKeyCreated,
    ApiKeyRotated,
    ApiKeyRevoked,
    IntegrationConnected,
    IntegrationConnectFailed,
    IntegrationDisconnected,
    IntegrationUpdated,
}

impl AuditAction {
    pub const ALL: [AuditAction; 7] = [
        AuditAction::ApiKeyCreated,
        AuditAction::ApiKeyRotated,
        AuditAction::ApiKeyRevoked,
        AuditAction::IntegrationConnected,
        AuditAction::IntegrationConnectFailed,
        AuditAction::IntegrationDisconnected,
        AuditAction::IntegrationUpdated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::ApiKeyCreated => "api_key.created",
            AuditAction::ApiKeyRotated => "api_key.rotated",
            AuditAction::ApiKeyRevoked => "api_key.revoked",
            AuditAction::IntegrationConnected => "integration.connected",
            AuditAction::IntegrationConnectFailed => "integration.connect_failed",
            AuditAction::IntegrationDisconnected => "integration.disconnected",
            AuditAction::IntegrationUpdated => "integration.updated",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == raw)
    }
}

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditActor {
    User(UserId),
    ApiKey(ApiKeyId),
    System,
}

/// One audit entry. `details` holds names and identifiers only, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: Uuid,
    pub organization_id: OrganizationId,
    pub actor: AuditActor,
    pub action: AuditAction,
    /// What the action was done to, e.g. `api_key`.
    pub target_type: String,
    pub target_id: String,
    pub occurred_at: DateTime<Utc>,
    /// The integration provider concerned, if any (filterable).
    pub provider: Option<String>,
    pub details: BTreeMap<String, String>,
}

impl AuditEntry {
    pub fn new(
        organization_id: OrganizationId,
        actor: AuditActor,
        action: AuditAction,
        target_type: &str,
        target_id: String,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            organization_id,
            actor,
            action,
            target_type: target_type.to_owned(),
            target_id,
            occurred_at,
            provider: None,
            details: BTreeMap::new(),
        }
    }

    pub fn for_provider(mut self, provider: &str) -> Self {
        self.provider = Some(provider.to_owned());
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// Which entries to list; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<AuditAction>,
    pub actor: Option<AuditActor>,
    pub target_type: Option<String>,
    pub provider: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Reading the audit log (writing happens inside the operations that are audited).
#[derive(Clone)]
pub struct AuditService {
    log: std::sync::Arc<dyn crate::ports::AuditLog>,
}

impl std::fmt::Debug for AuditService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditService")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditQueryError {
    #[error(transparent)]
    Forbidden(#[from] crate::caller::Denied),
    #[error(transparent)]
    Storage(#[from] crate::StorageError),
}

impl AuditService {
    pub fn new(log: std::sync::Arc<dyn crate::ports::AuditLog>) -> Self {
        Self { log }
    }

    /// The caller's organization's entries, newest first; needs a user with `settings.view`.
    pub async fn list(
        &self,
        caller: &crate::caller::Caller,
        filter: &AuditFilter,
        page: &crate::page::PageRequest<Uuid>,
    ) -> Result<crate::page::Page<AuditEntry, Uuid>, AuditQueryError> {
        caller.require(crate::caller::Need::User(crate::user::Permission::SettingsView))?;
        Ok(self.log.list(caller.organization_id(), filter, page).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::page::{Page, PageRequest};
    use crate::ports::MockAuditLog;
    use crate::user::Role;

    fn actor(role: Role) -> crate::caller::Caller {
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

    #[test]
    fn actions_round_trip() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
    }
}
