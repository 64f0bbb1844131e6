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
}

impl AuditAction {
    pub const ALL: [AuditAction; 3] = [
        AuditAction::ApiKeyCreated,
        AuditAction::ApiKeyRotated,
        AuditAction::ApiKeyRevoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::ApiKeyCreated => "api_key.created",
            AuditAction::ApiKeyRotated => "api_key.rotated",
            AuditAction::ApiKeyRevoked => "api_key.revoked",
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
            details: BTreeMap::new(),
        }
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
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}
