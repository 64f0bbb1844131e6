//! Users, their roles, and the one table that maps roles to permissions (P1).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::StorageError;
use crate::organization::OrganizationId;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// Identifies a user (P1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub Uuid);

/// A signed-in session (see [`crate::auth`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub Uuid);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A syntactically plausible email address, lower-cased so that one mailbox is one user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Not an email address: empty, over 254 characters, with a space or control character, or not
/// of the shape `local@domain.tld`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("email is not a valid email address")]
pub struct EmailError;

impl Email {
    /// The longest address allowed, in characters.
    pub const MAX_CHARS: usize = 254;

    /// Trims and lower-cases `raw`, then checks its shape: `local@domain.tld`, no spaces, at most
    /// [`Self::MAX_CHARS`] characters. Whether the mailbox exists is not checked.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() || email.chars().count() > Self::MAX_CHARS {
            return Err(EmailError);
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError);
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(EmailError);
        };
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || !domain_ok {
            return Err(EmailError);
        }
        Ok(Self(email))
    }

    /// The address, lower-cased.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a user may do. Closed set: a permission is never a loose string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Browse settings: API keys, integrations, audit log.
    SettingsView,
    /// Change settings: create, rotate and revoke API keys; connect integrations.
    SettingsEdit,
    /// Add, list, re-role, deactivate and delete users; issue password resets.
    UsersManage,
    /// Grant the scopes the catalog marks sensitive.
    GrantSensitiveScopes,
}

/// A user's role. The permission table below is the only place that says what a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything: settings, users, and granting sensitive scopes (K6).
    Admin,
    /// Views and changes settings (keys, integrations, webhooks); no users, no sensitive scopes.
    Manager,
    /// Views settings only.
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Manager, Role::Viewer];

    /// The role/permission table (documented in docs/api.md).
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Admin => &[SettingsView, SettingsEdit, UsersManage, GrantSensitiveScopes],
            Role::Manager => &[SettingsView, SettingsEdit],
            Role::Viewer => &[SettingsView],
        }
    }

    /// Whether the role's row of the table holds `permission`.
    pub fn has(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// The name clients see: `admin`, `manager` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Viewer => "viewer",
        }
    }

    /// The role named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == raw)
    }
}

/// A password as typed. Never printed; only its Argon2id hash is stored.
#[derive(Debug)]
pub struct Password(SecretString);

/// Why a password is refused; it never holds the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than [`Password::MIN_CHARS`] characters.
    #[error("password must be at least {min} characters", min = Password::MIN_CHARS)]
    TooShort,
    /// More than [`Password::MAX_CHARS`] characters.
    #[error("password must be at most {max} characters", max = Password::MAX_CHARS)]
    TooLong,
}

impl Password {
    /// OWASP ASVS asks for at least 8; we ask for 10 since these accounts hold API keys.
    pub const MIN_CHARS: usize = 10;
    /// The longest password accepted, in characters.
    pub const MAX_CHARS: usize = 128;

    /// Checks the length only, in characters: [`Self::MIN_CHARS`] to [`Self::MAX_CHARS`].
    pub fn parse(raw: SecretString) -> Result<Self, PasswordError> {
        let chars = raw.expose_secret().chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(raw))
    }

    /// The password, to hash or verify.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// An encoded password hash (PHC string). Not secret in itself, but never shown to clients.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// A user of one organization (P1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The organization the user belongs to; a user belongs to exactly one.
    pub organization_id: OrganizationId,
    /// A deleted user's is the address they had: their email is free for a new user.
    pub email: Email,
    /// The display name, if one was given.
    pub name: Option<UserName>,
    /// What the user may do (the role/permission table).
    pub role: Role,
    /// Active, deactivated or deleted (P8).
    pub status: UserStatus,
    /// When the user was added (at setup, or by an admin).
    pub created_at: DateTime<Utc>,
}

impl User {
    /// Signs in, holds sessions and counts as an admin of the organization when an admin.
    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Active
    }
}

/// Where a user is in their life (P8). A deactivated user cannot sign in and holds no
/// session; a deleted one is kept as a tombstone so that what they made (API keys, audit
/// entries, connections) still names them, and is otherwise gone: never listed, never found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    /// Signs in and acts by role.
    Active,
    /// Cannot sign in and holds no session, until reactivated.
    Deactivated,
    /// A tombstone: keeps the id and name so that what the user made still names them.
    Deleted,
}

impl UserStatus {
    /// Every status, in life order.
    pub const ALL: [UserStatus; 3] = [UserStatus::Active, UserStatus::Deactivated, UserStatus::Deleted];

    /// The name clients see: `active`, `deactivated` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Deactivated => "deactivated",
            UserStatus::Deleted => "deleted",
        }
    }

    /// The status named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == raw)
    }
}

/// A user's display name: 1 to 100 characters once trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

/// A user name that is empty once trimmed, longer than 100 characters or holds a control
/// character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name must be 1 to 100 characters")]
pub struct UserNameError;

impl UserName {
    /// The longest name allowed, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Trims `raw` and checks it: 1 to [`Self::MAX_CHARS`] characters, no control characters.
    pub fn parse(raw: &str) -> Result<Self, UserNameError> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(UserNameError);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Names users for what they made (a key's creator), whatever became of them since.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// The organization's users among `ids`, whatever their status (tombstones too).
    async fn find_many(&self, organization: OrganizationId, ids: Vec<UserId>) -> Result<Vec<User>, StorageError>;
}

/// A signed-in user's identity, as [`crate::caller::Caller::User`] carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user.
    pub user_id: UserId,
    /// The user's organization.
    pub organization_id: OrganizationId,
    /// The user's role, as it was when the request was identified.
    pub role: Role,
}

impl Actor {
    /// The identity of `user`, as it is now.
    pub fn of(user: &User) -> Self {
        Self { user_id: user.id, organization_id: user.organization_id, role: user.role }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_table_matches_the_product() {
        assert!(Role::Admin.has(Permission::GrantSensitiveScopes));
        assert!(Role::Admin.has(Permission::UsersManage));
        assert!(Role::Manager.has(Permission::SettingsEdit));
        assert!(!Role::Manager.has(Permission::UsersManage));
        assert!(!Role::Manager.has(Permission::GrantSensitiveScopes));
        assert!(Role::Viewer.has(Permission::SettingsView));
        assert!(!Role::Viewer.has(Permission::SettingsEdit));
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("owner"), None);
    }

    #[test]
    fn statuses_round_trip_and_names_are_bounded() {
        for status in UserStatus::ALL {
            assert_eq!(UserStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(UserStatus::parse("suspended"), None);
        assert_eq!(UserName::parse("  Ada Lovelace ").unwrap().as_str(), "Ada Lovelace");
        assert!(UserName::parse(" ").is_err());
        assert!(UserName::parse(&"a".repeat(101)).is_err());
        assert!(UserName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse(" Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "a@b@c.com", "ada@.com"] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn passwords_have_bounds() {
        assert_eq!(Password::parse("short".into()).unwrap_err(), PasswordError::TooShort);
        assert_eq!(Password::parse("x".repeat(129).into()).unwrap_err(), PasswordError::TooLong);
        assert!(Password::parse("correct horse battery".into()).is_ok());
    }
}
