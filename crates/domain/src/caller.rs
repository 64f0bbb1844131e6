//! Who is calling: a signed-in user or an API key, resolved once per request by the server and
//! handed to every service, which states what an operation needs with one [`Caller::require`].
//!
//! A user acts by role (the permission table in [`crate::user`]); a key acts by its granular
//! scopes within its level (the policy table, [`crate::api_key::authorize`]). Whatever a caller
//! creates belongs to a user: the user, or the user who created the key.

use std::sync::Arc;

use crate::api_key::{AccessDenied, ApiKey, Environment, Scope};
use crate::event::AuditActor;
use crate::organization::OrganizationId;
use crate::user::{Actor, Permission, SessionId, UserId};

/// The data a request may reach: one organization's, in one environment (P5, P7). An API key
/// reaches its own environment's data only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tenant {
    /// The organization whose data it is.
    pub organization_id: OrganizationId,
    /// Live or test data: a key's own environment.
    pub environment: Environment,
}

/// The identified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A user signed in through a session: a bearer token or the dashboard's cookie.
    User {
        /// Who the user is: their id, organization and role.
        actor: Actor,
        /// The session the request came through (what signing out ends).
        session: SessionId,
    },
    /// An API key that was verified, is active and is used from an address it allows.
    Key(Arc<ApiKey>),
}

/// What an operation needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any signed-in user of the organization (their own notifications, the scope catalog).
    AnyUser,
    /// A user whose role has the permission; keys never.
    User(Permission),
    /// A user whose role has the permission, or a key holding the scope (within its level).
    UserOrKey(Permission, Scope),
    /// A key holding the scope; users never (the platform's resources, reached with keys).
    Key(Scope),
}

/// Why a caller may not do something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The user's role lacks this permission (P1).
    #[error("Your role does not allow this action.")]
    Role(Permission),
    /// The key may not do this: scope, level or environment (K4-K6).
    #[error(transparent)]
    Key(AccessDenied),
    /// A key called an operation only users may do (sessions, users, the dashboard's views).
    #[error("This endpoint requires a signed-in user; API keys are not accepted here.")]
    UsersOnly,
    /// A user's session called an operation only keys may do (the platform's resources, P7).
    #[error("This endpoint requires an API key; user session tokens are not accepted here.")]
    KeysOnly,
}

impl Caller {
    /// A user signed in through `session`, however the session token arrived.
    pub fn user(actor: Actor, session: SessionId) -> Self {
        Caller::User { actor, session }
    }

    /// A verified key (the server has checked its status and its IP allow-list).
    pub fn key(key: Arc<ApiKey>) -> Self {
        Caller::Key(key)
    }

    /// The organization the caller belongs to: the user's, or the key's.
    pub fn organization_id(&self) -> OrganizationId {
        match self {
            Caller::User { actor, .. } => actor.organization_id,
            Caller::Key(key) => key.organization_id,
        }
    }

    /// Who the audit log names.
    pub fn audit_actor(&self) -> AuditActor {
        match self {
            Caller::User { actor, .. } => AuditActor::User(actor.user_id),
            Caller::Key(key) => AuditActor::ApiKey(key.id),
        }
    }

    /// The user on whose behalf the caller acts: the user, or the key's creator. What the
    /// caller creates belongs to this user, and notifications about it go to them.
    pub fn on_behalf_of(&self) -> UserId {
        match self {
            Caller::User { actor, .. } => actor.user_id,
            Caller::Key(key) => key.created_by,
        }
    }

    /// The signed-in user, when the caller is one.
    pub fn as_user(&self) -> Option<&Actor> {
        match self {
            Caller::User { actor, .. } => Some(actor),
            Caller::Key(_) => None,
        }
    }

    /// The session a user called through.
    pub fn session(&self) -> Option<SessionId> {
        match self {
            Caller::User { session, .. } => Some(*session),
            Caller::Key(_) => None,
        }
    }

    /// The key, when the caller is one.
    pub fn as_key(&self) -> Option<&Arc<ApiKey>> {
        match self {
            Caller::User { .. } => None,
            Caller::Key(key) => Some(key),
        }
    }

    /// The data a key reaches: its organization's, in its environment (P5, P7).
    pub fn tenant(&self) -> Option<Tenant> {
        self.as_key().map(|key| Tenant { organization_id: key.organization_id, environment: key.environment })
    }

    /// The environment a key works in; users see both.
    pub fn environment(&self) -> Option<Environment> {
        self.as_key().map(|key| key.environment)
    }

    /// The one authorization check of every service.
    pub fn require(&self, need: Need) -> Result<(), Denied> {
        match (self, need) {
            (Caller::User { .. }, Need::AnyUser) => Ok(()),
            (Caller::User { actor, .. }, Need::User(permission) | Need::UserOrKey(permission, _)) => {
                if actor.role.has(permission) { Ok(()) } else { Err(Denied::Role(permission)) }
            }
            (Caller::User { .. }, Need::Key(_)) => Err(Denied::KeysOnly),
            (Caller::Key(_), Need::AnyUser | Need::User(_)) => Err(Denied::UsersOnly),
            (Caller::Key(key), Need::UserOrKey(_, scope) | Need::Key(scope)) => key.holds(scope).map_err(Denied::Key),
        }
    }

    /// Whether [`Caller::require`] would pass.
    pub fn may(&self, need: Need) -> bool {
        self.require(need).is_ok()
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use uuid::Uuid;

    use super::*;
    use crate::user::Role;

    pub fn organization() -> OrganizationId {
        OrganizationId(Uuid::from_u128(1))
    }

    /// A user of organization 1 with `role`, user id 2.
    pub fn user(role: Role) -> Caller {
        Caller::user(
            Actor { user_id: UserId(Uuid::from_u128(2)), organization_id: organization(), role },
            SessionId(Uuid::from_u128(3)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_key::{Resource, ScopeLevel, fixtures as keys};
    use crate::user::Role;

    fn key(level: ScopeLevel, scopes: &[Scope]) -> Caller {
        let mut key = keys::key(chrono::Utc::now());
        key.scope_level = level;
        key.scopes = scopes.to_vec();
        Caller::key(Arc::new(key))
    }

    #[test]
    fn users_act_by_role() {
        let viewer = fixtures::user(Role::Viewer);
        assert_eq!(viewer.require(Need::AnyUser), Ok(()));
        assert_eq!(viewer.require(Need::User(Permission::SettingsView)), Ok(()));
        assert_eq!(
            viewer.require(Need::UserOrKey(Permission::SettingsEdit, Scope::IntegrationsManage)),
            Err(Denied::Role(Permission::SettingsEdit))
        );
        assert!(fixtures::user(Role::Manager).may(Need::User(Permission::SettingsEdit)));
        assert!(!fixtures::user(Role::Manager).may(Need::User(Permission::UsersManage)));
        assert!(fixtures::user(Role::Admin).may(Need::User(Permission::UsersManage)));
        assert_eq!(viewer.require(Need::Key(Scope::CustomersRead)), Err(Denied::KeysOnly));
    }

    #[test]
    fn keys_act_by_scope_within_their_level() {
        let manager = key(ScopeLevel::Admin, &[Scope::IntegrationsManage]);
        assert_eq!(manager.require(Need::UserOrKey(Permission::SettingsEdit, Scope::IntegrationsManage)), Ok(()));
        assert_eq!(
            manager.require(Need::UserOrKey(Permission::SettingsView, Scope::WebhooksManage)),
            Err(Denied::Key(AccessDenied::MissingScope(Scope::WebhooksManage)))
        );
        assert_eq!(manager.require(Need::User(Permission::SettingsView)), Err(Denied::UsersOnly));
        assert_eq!(manager.require(Need::AnyUser), Err(Denied::UsersOnly));
        // A scope stored on a key whose level no longer reaches it does not count.
        let stale = key(ScopeLevel::ReadWrite, &[Scope::IntegrationsManage]);
        assert_eq!(stale.require(Need::Key(Scope::IntegrationsManage)), Err(Denied::Key(AccessDenied::LevelTooLow)));
        let reader = key(ScopeLevel::ReadOnly, &[Scope::CustomersRead]);
        assert_eq!(reader.require(Need::Key(Scope::CustomersRead)), Ok(()));
    }

    #[test]
    fn test_keys_never_reach_live_only_resources() {
        // Held by a test key (one made before these scopes became live-only): refused all the same.
        for scope in [Scope::IntegrationsManage, Scope::WebhooksManage] {
            let mut test = keys::key(chrono::Utc::now());
            test.scope_level = ScopeLevel::Admin;
            test.scopes = vec![scope];
            test.environment = crate::api_key::Environment::Test;
            let method = crate::api_key::RequestMethod::Post;
            let resource = if scope == Scope::WebhooksManage { Resource::Webhooks } else { Resource::Integrations };
            assert_eq!(test.authorize(method, Some(resource)), Err(AccessDenied::LiveOnly(scope)));
            let caller = Caller::key(Arc::new(test.clone()));
            assert_eq!(caller.require(Need::Key(scope)), Err(Denied::Key(AccessDenied::LiveOnly(scope))));
            test.environment = crate::api_key::Environment::Live;
            assert_eq!(test.authorize(method, Some(resource)), Ok(()));
            assert_eq!(Caller::key(Arc::new(test)).require(Need::Key(scope)), Ok(()));
        }
    }

    #[test]
    fn what_a_key_creates_belongs_to_its_creator() {
        let caller = key(ScopeLevel::ReadWrite, &[]);
        let created_by = caller.as_key().unwrap().created_by;
        assert_eq!(caller.on_behalf_of(), created_by);
        assert!(matches!(caller.audit_actor(), AuditActor::ApiKey(_)));
        let tenant = caller.tenant().unwrap();
        assert_eq!(tenant.environment, caller.environment().unwrap());
        let user = fixtures::user(Role::Admin);
        assert_eq!(user.on_behalf_of(), UserId(uuid::Uuid::from_u128(2)));
        assert_eq!(user.tenant(), None);
        assert!(user.session().is_some());
    }
}
