//! What happens, said once. Every change worth recording is a typed [`Event`] of one
//! [`EventKind`], which knows whether it goes to the audit log (someone did something), to the
//! webhook endpoints subscribed to it, or both.
//!
//! Services do not publish events after the fact: they hand a [`DomainEvent`] to the repository
//! that stores the change, and storage writes the change, its audit row and its outbound event
//! with the deliveries and their jobs in that one transaction (the outbox). A change that is
//! stored is announced, however the process ends; a change that is refused or rolled back is
//! not. How an event looks on the wire (its webhook payload) is the storage adapter's business.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api_key::{ApiKey, ApiKeyId};
use crate::integration::{AuthMethod, HealthCheck, HealthOutcome, ProviderSlug};
use crate::organization::OrganizationId;
use crate::user::{SessionId, User, UserId};

/// Every kind of event, by the name clients see (`GET /v1/event-types`, the audit log's
/// `action`, a webhook's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `api_key.created`: a key was created (K16). Audited and delivered.
    ApiKeyCreated,
    /// `api_key.rotated`: a key was rotated into a new one (K12). Audited and delivered.
    ApiKeyRotated,
    /// `api_key.revoked`: a key was revoked (K11). Audited and delivered.
    ApiKeyRevoked,
    /// `api_key.expiring`: a key expires in 14, 7 or 1 days (K13). Delivered only.
    ApiKeyExpiring,
    /// `integration.connected`: a provider was connected and its first check passed (I9). Audited
    /// and delivered.
    IntegrationConnected,
    /// `integration.connect_failed`: a connect attempt's health check failed (I8). Audited only.
    IntegrationConnectFailed,
    /// `integration.disconnected`: a connection was removed with its credentials (I10). Audited and
    /// delivered.
    IntegrationDisconnected,
    /// `integration.updated`: a connection's resources or settings changed (I11). Audited only.
    IntegrationUpdated,
    /// `integration.health_check.failed`: a scheduled check failed after passing. Delivered only.
    HealthCheckFailed,
    /// `integration.health_check.recovered`: a scheduled check passed after failing. Delivered
    /// only.
    HealthCheckRecovered,
    /// `integration.needs_reauthorization`: the provider refused a connection's refresh token
    /// (`invalid_grant`); someone must connect it again (I12). Audited and delivered.
    IntegrationNeedsReauthorization,
    /// Sent only by the "send test event" route, to the one endpoint named.
    WebhookTest,
    /// `user.updated`: a user's role or name changed (P8). Audited only.
    UserUpdated,
    /// `user.deactivated`: a user was deactivated and signed out (P8). Audited only.
    UserDeactivated,
    /// `user.reactivated`: a deactivated user may sign in again (P8). Audited only.
    UserReactivated,
    /// `user.deleted`: a user was deleted, leaving a tombstone (P8). Audited only.
    UserDeleted,
    /// `user.password_changed`: a user changed their own password (P8). Audited only.
    UserPasswordChanged,
    /// `user.password_reset_issued`: an admin issued a reset token for a user (P8). Audited only.
    UserPasswordResetIssued,
    /// `user.password_reset`: a reset token was redeemed for a new password (P8). Audited only.
    UserPasswordReset,
    /// `session.revoked`: a user ended one or all of their other sessions (P8). Audited only.
    SessionRevoked,
}

/// Where an event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reach {
    /// Into the audit log: someone (a user, a key, the system) did it.
    audited: bool,
    /// To webhook endpoints subscribed to it.
    delivered: bool,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 20] = [
        EventKind::ApiKeyCreated,
        EventKind::ApiKeyRotated,
        EventKind::ApiKeyRevoked,
        EventKind::ApiKeyExpiring,
        EventKind::IntegrationConnected,
        EventKind::IntegrationConnectFailed,
        EventKind::IntegrationDisconnected,
        EventKind::IntegrationUpdated,
        EventKind::HealthCheckFailed,
        EventKind::HealthCheckRecovered,
        EventKind::IntegrationNeedsReauthorization,
        EventKind::WebhookTest,
        EventKind::UserUpdated,
        EventKind::UserDeactivated,
        EventKind::UserReactivated,
        EventKind::UserDeleted,
        EventKind::UserPasswordChanged,
        EventKind::UserPasswordResetIssued,
        EventKind::UserPasswordReset,
        EventKind::SessionRevoked,
    ];

    /// The one table: name, description, and where each kind goes.
    fn info(self) -> (&'static str, &'static str, Reach) {
        const AUDITED: Reach = Reach { audited: true, delivered: false };
        const DELIVERED: Reach = Reach { audited: false, delivered: true };
        const BOTH: Reach = Reach { audited: true, delivered: true };
        match self {
            EventKind::ApiKeyCreated => ("api_key.created", "An API key was created.", BOTH),
            EventKind::ApiKeyRotated => {
                ("api_key.rotated", "An API key was rotated: a new key replaces it, the old one stops later.", BOTH)
            }
            EventKind::ApiKeyRevoked => ("api_key.revoked", "An API key was revoked and no longer works.", BOTH),
            EventKind::ApiKeyExpiring => ("api_key.expiring", "An API key expires in 14, 7 or 1 days.", DELIVERED),
            EventKind::IntegrationConnected => ("integration.connected", "A provider was connected.", BOTH),
            EventKind::IntegrationConnectFailed => {
                ("integration.connect_failed", "A provider refused a connection attempt.", AUDITED)
            }
            EventKind::IntegrationDisconnected => ("integration.disconnected", "A provider was disconnected.", BOTH),
            EventKind::IntegrationUpdated => {
                ("integration.updated", "A connected provider's settings or resources changed.", AUDITED)
            }
            EventKind::HealthCheckFailed => (
                "integration.health_check.failed",
                "A connected provider's scheduled health check started failing.",
                DELIVERED,
            ),
            EventKind::HealthCheckRecovered => (
                "integration.health_check.recovered",
                "A connected provider's health check passes again after failing.",
                DELIVERED,
            ),
            EventKind::IntegrationNeedsReauthorization => (
                "integration.needs_reauthorization",
                "An OAuth provider no longer honours the access it granted: the connection must be authorized again.",
                BOTH,
            ),
            EventKind::WebhookTest => ("webhook.test", "A test event, sent on request to one endpoint.", DELIVERED),
            // The user lifecycle (P8) is the organization's own business: audited, never sent
            // to webhook endpoints (see docs/api.md).
            EventKind::UserUpdated => ("user.updated", "A user's role or name was changed.", AUDITED),
            EventKind::UserDeactivated => {
                ("user.deactivated", "A user was deactivated: signed out and unable to sign in.", AUDITED)
            }
            EventKind::UserReactivated => ("user.reactivated", "A deactivated user was reactivated.", AUDITED),
            EventKind::UserDeleted => ("user.deleted", "A user was deleted.", AUDITED),
            EventKind::UserPasswordChanged => ("user.password_changed", "A user changed their password.", AUDITED),
            EventKind::UserPasswordResetIssued => {
                ("user.password_reset_issued", "An admin issued a password reset token for a user.", AUDITED)
            }
            EventKind::UserPasswordReset => {
                ("user.password_reset", "A user's password was set with a reset token.", AUDITED)
            }
            EventKind::SessionRevoked => {
                ("session.revoked", "A user ended one or all of their other sessions.", AUDITED)
            }
        }
    }

    /// The name clients see: `api_key.created`, `integration.health_check.failed`, ...
    pub fn as_str(self) -> &'static str {
        self.info().0
    }

    /// One sentence for people, as `GET /v1/event-types` lists it.
    pub fn description(self) -> &'static str {
        self.info().1
    }

    /// Whether it is written to the audit log.
    pub fn audited(self) -> bool {
        self.info().2.audited
    }

    /// Whether webhook endpoints can subscribe to it.
    pub fn delivered(self) -> bool {
        self.info().2.delivered
    }

    /// The kind named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }

    /// The kinds an endpoint can subscribe to (`GET /v1/event-types`).
    pub fn deliverable() -> impl Iterator<Item = EventKind> {
        Self::ALL.into_iter().filter(|kind| kind.delivered())
    }

    /// The kinds the audit log holds.
    pub fn auditable() -> impl Iterator<Item = EventKind> {
        Self::ALL.into_iter().filter(|kind| kind.audited())
    }
}

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditActor {
    /// A signed-in user, through a session.
    User(UserId),
    /// An API key, for what a caller with a key did.
    ApiKey(ApiKeyId),
    /// The server itself: scheduled checks, expiry warnings.
    System,
}

/// The facts of an event: what its audit row and its webhook payload are made of. Never a
/// secret: a key's record holds only its hash and last four characters, and nothing else here
/// comes near a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A key was created: [`EventKind::ApiKeyCreated`].
    ApiKeyCreated {
        /// The new key's record (its hash and last four characters, never the plaintext).
        key: ApiKey,
    },
    /// `key` is the new key.
    ApiKeyRotated {
        /// The new key's record.
        key: ApiKey,
        /// The key it replaces.
        rotated_from: ApiKeyId,
        /// When the old key stops working; `None` when it keeps working until revoked or expired.
        old_key_revoked_at: Option<DateTime<Utc>>,
    },
    /// A key was revoked: [`EventKind::ApiKeyRevoked`].
    ApiKeyRevoked {
        /// The key's record, revoked.
        key: ApiKey,
    },
    /// A key is about to expire: [`EventKind::ApiKeyExpiring`].
    ApiKeyExpiring {
        /// The key's record.
        key: ApiKey,
        /// The warning's threshold in days, 14, 7 or 1: the key expires within it.
        days_left: i64,
    },
    /// A provider was connected: [`EventKind::IntegrationConnected`].
    IntegrationConnected {
        /// The new connection.
        connection_id: Uuid,
        /// The provider connected.
        provider: ProviderSlug,
        /// How the credentials came: typed in, or pre-configured by the deployment (I13).
        auth_method: AuthMethod,
        /// The first health check, which passed.
        check: HealthCheck,
    },
    /// A connect attempt failed its health check: [`EventKind::IntegrationConnectFailed`].
    IntegrationConnectFailed {
        /// The id the connection would have had; nothing is stored under it (I8).
        connection_id: Uuid,
        /// The provider the attempt was for.
        provider: ProviderSlug,
        /// How the credentials came: typed in, or pre-configured by the deployment (I13).
        auth_method: AuthMethod,
        /// Why the check failed (I7).
        outcome: HealthOutcome,
        /// How long the provider took to answer the check, in milliseconds.
        response_time_ms: u32,
    },
    /// A connection was removed: [`EventKind::IntegrationDisconnected`].
    IntegrationDisconnected {
        /// The removed connection.
        connection_id: Uuid,
        /// Its provider.
        provider: ProviderSlug,
    },
    /// A resource edit (I11): what changed (`sender_email.added`, `model`, `enabled`, ...) and
    /// its new value, which is never a secret (emails, phone numbers, model ids, flags, ids).
    IntegrationUpdated {
        /// The connection whose resource changed.
        connection_id: Uuid,
        /// Its provider.
        provider: ProviderSlug,
        /// What changed, as a dotted name: `sender_email.added`, `model`, `enabled`, ...
        change: String,
        /// The new value: an address, a number, a model id, a flag or an id.
        value: String,
    },
    /// A scheduled check failed after passing: [`EventKind::HealthCheckFailed`].
    HealthCheckFailed {
        /// The connection checked.
        connection_id: Uuid,
        /// Its provider.
        provider: ProviderSlug,
        /// The failed check.
        check: HealthCheck,
    },
    /// A scheduled check passed after failing: [`EventKind::HealthCheckRecovered`].
    HealthCheckRecovered {
        /// The connection checked.
        connection_id: Uuid,
        /// Its provider.
        provider: ProviderSlug,
        /// The passing check.
        check: HealthCheck,
    },
    /// The provider answered `invalid_grant` to a token refresh (I12): the connection needs
    /// to be authorized again.
    IntegrationNeedsReauthorization {
        /// The connection whose grant was refused.
        connection_id: Uuid,
        /// Its provider.
        provider: ProviderSlug,
    },
    /// A test event for one endpoint: [`EventKind::WebhookTest`].
    WebhookTest {
        /// The endpoint it is sent to, and only to it.
        endpoint_id: Uuid,
    },
    /// `user` as it is after the change, here and in the other user events.
    UserUpdated {
        /// The user, renamed or re-roled.
        user: User,
    },
    /// A user was deactivated: [`EventKind::UserDeactivated`].
    UserDeactivated {
        /// The user, deactivated.
        user: User,
    },
    /// A user was reactivated: [`EventKind::UserReactivated`].
    UserReactivated {
        /// The user, active again.
        user: User,
    },
    /// A user was deleted: [`EventKind::UserDeleted`].
    UserDeleted {
        /// The user's tombstone.
        user: User,
    },
    /// A user changed their password: [`EventKind::UserPasswordChanged`].
    UserPasswordChanged {
        /// The user.
        user: User,
    },
    /// An admin issued a reset token: [`EventKind::UserPasswordResetIssued`].
    UserPasswordResetIssued {
        /// The user the token is for.
        user: User,
        /// When the token stops working.
        expires_at: DateTime<Utc>,
    },
    /// A reset token set a new password: [`EventKind::UserPasswordReset`].
    UserPasswordReset {
        /// The user.
        user: User,
    },
    /// One session (`Some`), or all the user's sessions but the current one (`None`).
    SessionRevoked {
        /// The user whose sessions ended.
        user: User,
        /// The session ended, or `None` for all of them but the current one.
        session_id: Option<SessionId>,
    },
}

/// What the audit log says of an event: what it was done to, and names and ids (never a
/// secret) to tell it apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFacts {
    /// `api_key`, `integration` or `user`.
    pub target_type: &'static str,
    /// The id of what was acted on (key, connection or user).
    pub target_id: String,
    /// The integration provider concerned, if any.
    pub provider: Option<String>,
    /// Names and ids that tell the entry apart (`name`, `environment`, `outcome`, ...); never a
    /// secret.
    pub details: BTreeMap<String, String>,
}

impl AuditFacts {
    fn new(target_type: &'static str, target_id: String) -> Self {
        Self { target_type, target_id, provider: None, details: BTreeMap::new() }
    }

    fn key(key: &ApiKey) -> Self {
        Self::new("api_key", key.id.to_string())
            .with("name", key.name.as_str())
            .with("environment", key.environment.as_str())
            .with("scope_level", key.scope_level.as_str())
    }

    fn user(user: &User) -> Self {
        Self::new("user", user.id.to_string())
            .with("email", user.email.as_str())
            .with("role", user.role.as_str())
            .with("status", user.status.as_str())
    }

    fn integration(connection_id: Uuid, provider: &ProviderSlug) -> Self {
        Self { provider: Some(provider.as_str().to_owned()), ..Self::new("integration", connection_id.to_string()) }
    }

    fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

impl Event {
    /// Its audit row's facts; `None` for the kinds the audit log does not hold.
    pub fn audit_facts(&self) -> Option<AuditFacts> {
        if !self.kind().audited() {
            return None;
        }
        Some(match self {
            Event::ApiKeyCreated { key } | Event::ApiKeyRevoked { key } => AuditFacts::key(key),
            Event::ApiKeyRotated { key, rotated_from, old_key_revoked_at } => AuditFacts::key(key)
                .with("rotated_from", rotated_from.to_string())
                .with("old_key_revoked_at", old_key_revoked_at.map(|at| at.to_rfc3339()).unwrap_or_default()),
            Event::IntegrationConnected { connection_id, provider, auth_method, check } => {
                AuditFacts::integration(*connection_id, provider)
                    .with("provider", provider.as_str())
                    .with("auth_method", auth_method.as_str())
                    .with("outcome", check.outcome.as_str())
                    .with("response_time_ms", check.response_time_ms.to_string())
            }
            Event::IntegrationConnectFailed { connection_id, provider, auth_method, outcome, response_time_ms } => {
                AuditFacts::integration(*connection_id, provider)
                    .with("provider", provider.as_str())
                    .with("auth_method", auth_method.as_str())
                    .with("outcome", outcome.as_str())
                    .with("response_time_ms", response_time_ms.to_string())
            }
            Event::IntegrationDisconnected { connection_id, provider }
            | Event::IntegrationNeedsReauthorization { connection_id, provider } => {
                AuditFacts::integration(*connection_id, provider).with("provider", provider.as_str())
            }
            Event::IntegrationUpdated { connection_id, provider, change, value } => {
                AuditFacts::integration(*connection_id, provider)
                    .with("change", change.as_str())
                    .with("value", value.as_str())
            }
            Event::UserUpdated { user }
            | Event::UserDeactivated { user }
            | Event::UserReactivated { user }
            | Event::UserDeleted { user }
            | Event::UserPasswordChanged { user }
            | Event::UserPasswordReset { user } => {
                let facts = AuditFacts::user(user);
                match &user.name {
                    Some(name) => facts.with("name", name.as_str()),
                    None => facts,
                }
            }
            Event::UserPasswordResetIssued { user, expires_at } => {
                AuditFacts::user(user).with("expires_at", expires_at.to_rfc3339())
            }
            Event::SessionRevoked { user, session_id } => AuditFacts::user(user).with(
                "sessions",
                session_id.map(|id| id.0.to_string()).unwrap_or_else(|| "all but the current".to_owned()),
            ),
            // Not audited (see the kinds' table): refused above.
            Event::ApiKeyExpiring { .. }
            | Event::HealthCheckFailed { .. }
            | Event::HealthCheckRecovered { .. }
            | Event::WebhookTest { .. } => return None,
        })
    }

    /// Its kind, which says where it goes.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::ApiKeyCreated { .. } => EventKind::ApiKeyCreated,
            Event::ApiKeyRotated { .. } => EventKind::ApiKeyRotated,
            Event::ApiKeyRevoked { .. } => EventKind::ApiKeyRevoked,
            Event::ApiKeyExpiring { .. } => EventKind::ApiKeyExpiring,
            Event::IntegrationConnected { .. } => EventKind::IntegrationConnected,
            Event::IntegrationConnectFailed { .. } => EventKind::IntegrationConnectFailed,
            Event::IntegrationDisconnected { .. } => EventKind::IntegrationDisconnected,
            Event::IntegrationUpdated { .. } => EventKind::IntegrationUpdated,
            Event::HealthCheckFailed { .. } => EventKind::HealthCheckFailed,
            Event::HealthCheckRecovered { .. } => EventKind::HealthCheckRecovered,
            Event::IntegrationNeedsReauthorization { .. } => EventKind::IntegrationNeedsReauthorization,
            Event::WebhookTest { .. } => EventKind::WebhookTest,
            Event::UserUpdated { .. } => EventKind::UserUpdated,
            Event::UserDeactivated { .. } => EventKind::UserDeactivated,
            Event::UserReactivated { .. } => EventKind::UserReactivated,
            Event::UserDeleted { .. } => EventKind::UserDeleted,
            Event::UserPasswordChanged { .. } => EventKind::UserPasswordChanged,
            Event::UserPasswordResetIssued { .. } => EventKind::UserPasswordResetIssued,
            Event::UserPasswordReset { .. } => EventKind::UserPasswordReset,
            Event::SessionRevoked { .. } => EventKind::SessionRevoked,
        }
    }
}

/// An event as it happened: in which organization, by whom, when. Its id is the audit row's id
/// and the webhook event's (`msg_<id>`), so the two can be matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEvent {
    /// A UUID v7, fresh for each event: the audit row's id and the webhook message's.
    pub id: Uuid,
    /// The organization it happened in.
    pub organization_id: OrganizationId,
    /// Who did it.
    pub actor: AuditActor,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// What happened.
    pub event: Event,
}

impl DomainEvent {
    /// `event`, done by `actor` in `organization_id` at `occurred_at`, under a fresh UUID v7 id.
    pub fn new(organization_id: OrganizationId, actor: AuditActor, occurred_at: DateTime<Utc>, event: Event) -> Self {
        Self { id: Uuid::now_v7(), organization_id, actor, occurred_at, event }
    }

    /// The kind of the event inside.
    pub fn kind(&self) -> EventKind {
        self.event.kind()
    }

    /// The webhook's `webhook-id` and the payload's `id`: the same for every attempt, so
    /// receivers can de-duplicate.
    pub fn message_id(&self) -> String {
        message_id(self.id)
    }
}

/// `msg_<uuid without dashes>`.
pub fn message_id(id: Uuid) -> String {
    format!("msg_{}", id.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            assert!(!kind.description().is_empty());
            assert!(kind.audited() || kind.delivered(), "{kind:?} goes nowhere");
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
        assert_eq!(EventKind::parse("api_key.deleted"), None);
    }

    #[test]
    fn audit_log_and_webhooks_each_get_their_kinds() {
        let delivered: Vec<_> = EventKind::deliverable().map(EventKind::as_str).collect();
        assert_eq!(
            delivered,
            [
                "api_key.created",
                "api_key.rotated",
                "api_key.revoked",
                "api_key.expiring",
                "integration.connected",
                "integration.disconnected",
                "integration.health_check.failed",
                "integration.health_check.recovered",
                "integration.needs_reauthorization",
                "webhook.test",
            ]
        );
        let audited: Vec<_> = EventKind::auditable().map(EventKind::as_str).collect();
        assert_eq!(
            audited,
            [
                "api_key.created",
                "api_key.rotated",
                "api_key.revoked",
                "integration.connected",
                "integration.connect_failed",
                "integration.disconnected",
                "integration.updated",
                "integration.needs_reauthorization",
                "user.updated",
                "user.deactivated",
                "user.reactivated",
                "user.deleted",
                "user.password_changed",
                "user.password_reset_issued",
                "user.password_reset",
                "session.revoked",
            ]
        );
    }

    #[test]
    fn a_message_id_is_msg_and_the_uuid() {
        let id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00ab);
        assert_eq!(message_id(id), "msg_019000000000700080000000000000ab");
    }
}
