//! The user lifecycle (P8): admins re-role, deactivate, reactivate and delete users and issue
//! password resets; every user changes their own password and lists and ends their own
//! sessions; anyone holding a reset token sets a new password with it.
//!
//! Rules stated here and enforced by the repository in the transaction of the change:
//! - an organization always keeps an active admin: the last one can be neither demoted,
//!   deactivated nor deleted (by another admin or by themselves), also under concurrency;
//! - deactivating or deleting a user ends all their sessions at once and voids their unused
//!   reset tokens; their API keys keep working until an admin revokes them, and keep naming
//!   them (a deleted user stays as a tombstone);
//! - a password change ends the user's other sessions; a reset ends all of them;
//! - a reset token is random, stored as its SHA-256, works once and for [`RESET_TTL_MINUTES`].

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::StorageError;
use crate::api_key::KeyHash;
use crate::auth::{Session, UserRepository};
use crate::caller::{Caller, Denied, Need};
use crate::event::{DomainEvent, Event};
use crate::notification::{MailError, Mailer};
use crate::organization::OrganizationId;
use crate::ports::{Clock, HashingBusy, KeyHasher, PasswordHasher, SecretGenerator};
use crate::user::{
    Password, PasswordError, PasswordHash, Permission, Role, SessionId, User, UserId, UserName, UserNameError,
    UserStatus,
};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// Reset tokens look like `pwr_` followed by this many base62 characters.
pub const RESET_TOKEN_PREFIX: &str = "pwr_";
/// Reset tokens hold this many base62 characters after the prefix (about 256 bits).
pub const RESET_SECRET_CHARS: usize = 43;
/// How long a reset token works.
pub const RESET_TTL_MINUTES: i64 = 60;

/// What an admin changes of a user; `None` leaves it as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    /// A new role, when `Some`.
    pub role: Option<Role>,
    /// `Active` or `Deactivated`; deletion has its own operation.
    pub status: Option<UserStatus>,
    /// `Some(None)` clears the name.
    pub name: Option<Option<UserName>>,
}

/// What a `PATCH /v1/users/{id}` carries, unparsed.
#[derive(Debug, Clone, Default)]
pub struct UserUpdateInput {
    /// `admin`, `manager` or `viewer`, when given.
    pub role: Option<String>,
    /// `active` or `deactivated`, when given.
    pub status: Option<String>,
    /// A new name (`Some(Some)`), or none any more (`Some(None)`).
    pub name: Option<Option<String>>,
}

/// A stored password reset: only the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordReset {
    /// The reset's id.
    pub id: Uuid,
    /// The organization of the user it is for.
    pub organization_id: OrganizationId,
    /// The user whose password it sets.
    pub user_id: UserId,
    /// SHA-256 of the token: what a presented token is looked up by; the token is never stored.
    pub token_hash: KeyHash,
    /// The admin who issued it.
    pub created_by: UserId,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working: [`RESET_TTL_MINUTES`] after it was issued.
    pub expires_at: DateTime<Utc>,
    /// When it was redeemed; `None` while unused. A token works once.
    pub used_at: Option<DateTime<Utc>>,
}

impl PasswordReset {
    /// Whether the token may still be redeemed at `now`: unused and unexpired.
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        self.used_at.is_none() && now < self.expires_at
    }
}

/// Whether the reset token also went out by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetMail {
    /// Sent through the organization's Postmark to the user's address.
    Sent,
    /// The organization has no Postmark connection with a default sender.
    NotConfigured,
    /// Postmark refused it or could not be reached (the detail is for the admin).
    Failed(String),
}

/// A reset token just issued: the plaintext is answered once and never stored.
#[derive(Debug)]
pub struct IssuedReset {
    /// The reset token, `pwr_` and 43 base62 characters: answered to the admin this once.
    pub token: SecretString,
    /// The stored reset.
    pub reset: PasswordReset,
    /// Whether the token also went out by email to the user.
    pub mail: ResetMail,
}

/// A session of the caller's, and whether it is the one the caller is using.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionListing {
    /// One of the user's active sessions.
    pub session: Session,
    /// Whether the request came through this session.
    pub current: bool,
}

/// Why the store refused a change of a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeUserError {
    /// The organization has no such user, or the user was deleted.
    #[error("No such user.")]
    NotFound,
    /// The change would leave the organization without an active admin.
    #[error("An organization needs an active admin: make another user admin first.")]
    LastAdmin,
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why an admin's change of a user failed (P8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserAdminError {
    /// The caller is not a user with `users.manage` (an admin).
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// `role` is not `admin`, `manager` or `viewer`.
    #[error("role must be one of admin, manager, viewer")]
    InvalidRole,
    /// `status` is not `active` or `deactivated`.
    #[error("status must be active or deactivated")]
    InvalidStatus,
    /// The name is empty, longer than 100 characters, or holds a control character.
    #[error(transparent)]
    Name(#[from] UserNameError),
    /// The update names no role, status or name.
    #[error("Nothing to change: give role, status or name.")]
    NothingToChange,
    /// The organization has no such user, or the user was deleted.
    #[error("No such user.")]
    NotFound,
    /// The change would leave the organization without an active admin: demoting, deactivating
    /// or deleting the last one.
    #[error("An organization needs an active admin: make another user admin first.")]
    LastAdmin,
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<ChangeUserError> for UserAdminError {
    fn from(err: ChangeUserError) -> Self {
        match err {
            ChangeUserError::NotFound => UserAdminError::NotFound,
            ChangeUserError::LastAdmin => UserAdminError::LastAdmin,
            ChangeUserError::Storage(err) => UserAdminError::Storage(err),
        }
    }
}

/// Why a user could not change their password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordChangeError {
    /// The caller is not a signed-in user.
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// `current_password` is not the user's password.
    #[error("The current password is not correct.")]
    WrongCurrentPassword,
    /// The new password is too short or too long.
    #[error("new_password: {0}")]
    Password(#[from] PasswordError),
    /// Too many passwords are being hashed at once; try again in a moment.
    #[error(transparent)]
    Busy(#[from] HashingBusy),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a password reset failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordResetError {
    /// Unknown, malformed, used or expired: one answer for all.
    #[error("This password reset token is invalid, expired or already used. Ask an admin for a new one.")]
    InvalidToken,
    /// The new password is too short or too long.
    #[error("new_password: {0}")]
    Password(#[from] PasswordError),
    /// Too many passwords are being hashed at once; try again in a moment.
    #[error(transparent)]
    Busy(#[from] HashingBusy),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a user's own sessions could not be listed or ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnSessionError {
    /// The caller is not a signed-in user (or, to end the others, has no current session).
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// The user holds no such active session.
    #[error("No such session.")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What an admin's change of `before` into `after` records: `user.updated` for a new role or
/// name, `user.deactivated` or `user.reactivated` for a new status (both when both changed).
pub fn change_events(before: &User, after: &User) -> Vec<Event> {
    let mut events = Vec::new();
    if after.role != before.role || after.name != before.name {
        events.push(Event::UserUpdated { user: after.clone() });
    }
    match (before.status, after.status) {
        (UserStatus::Active, UserStatus::Deactivated) => events.push(Event::UserDeactivated { user: after.clone() }),
        (UserStatus::Deactivated, UserStatus::Active) => events.push(Event::UserReactivated { user: after.clone() }),
        _ => {}
    }
    events
}

/// The lifecycle's writes. Each method is one transaction that also records its events.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait AccountRepository: Send + Sync {
    /// Applies `update` to the organization's user `id` (not deleted; else `NotFound`), behind
    /// the organization's lock: refused with `LastAdmin`, changing nothing, when the user is
    /// an active admin and would no longer be one while no other active admin exists. A change
    /// to `Deactivated` ends all the user's sessions and voids their unused reset tokens.
    /// Writes the events [`change_events`] names for the user as read under the lock and as
    /// changed, by `actor`, with the change.
    async fn update_user(
        &self,
        organization: OrganizationId,
        id: UserId,
        update: &UserUpdate,
        at: DateTime<Utc>,
        actor: crate::event::AuditActor,
    ) -> Result<User, ChangeUserError>;
    /// Deletes the organization's user `id`: a tombstone keeps their id, name and former email
    /// (their email is free again), their password no longer matches anything, their
    /// sessions end and their reset tokens are voided; `LastAdmin` as for [`Self::update_user`].
    async fn delete_user(
        &self,
        organization: OrganizationId,
        id: UserId,
        at: DateTime<Utc>,
        actor: crate::event::AuditActor,
    ) -> Result<User, ChangeUserError>;
    /// The user's password hash, unless they are deleted.
    async fn password_hash(&self, id: UserId) -> Result<Option<PasswordHash>, StorageError>;
    /// Sets the user's password and ends their sessions except `keep`, with `event`.
    async fn set_password(
        &self,
        id: UserId,
        hash: &PasswordHash,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<(), StorageError>;
    /// Stores a reset, voiding the user's earlier unused ones (one works at a time), with
    /// `event`.
    async fn insert_reset(&self, reset: &PasswordReset, event: &DomainEvent) -> Result<(), StorageError>;
    /// The reset with this token hash, used or not.
    async fn find_reset(&self, hash: &KeyHash) -> Result<Option<PasswordReset>, StorageError>;
    /// Uses the reset `id` (only if still unused, unexpired at `at` and its user not deleted:
    /// one conditional update, so two redemptions cannot both pass), sets the password and
    /// ends all the user's sessions, with `event`. False, changing nothing, otherwise.
    async fn redeem_reset(
        &self,
        id: Uuid,
        hash: &PasswordHash,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<bool, StorageError>;
    /// The user's unexpired, unrevoked sessions, newest first.
    async fn sessions(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StorageError>;
    /// Ends the user's own active session `id`, with `event`; false when they hold no such one.
    async fn end_session(
        &self,
        user: UserId,
        id: SessionId,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<bool, StorageError>;
    /// Ends the user's active sessions except `keep`, with `event`; how many ended.
    async fn end_other_sessions(
        &self,
        user: UserId,
        keep: SessionId,
        at: DateTime<Utc>,
        event: &DomainEvent,
    ) -> Result<u64, StorageError>;
}

/// The ports the lifecycle needs.
#[derive(Clone)]
pub struct AccountPorts {
    /// Reads users (their organization, status and name).
    pub users: Arc<dyn UserRepository>,
    /// The lifecycle's writes, each with its events.
    pub accounts: Arc<dyn AccountRepository>,
    /// Argon2id hashing and verification of passwords.
    pub passwords: Arc<dyn PasswordHasher>,
    /// Hashes reset tokens.
    pub hasher: Arc<dyn KeyHasher>,
    /// Draws the reset tokens' random characters.
    pub secrets: Arc<dyn SecretGenerator>,
    /// Mails a reset token to its user through the organization's Postmark.
    pub mailer: Arc<dyn Mailer>,
    /// The time: changes, expiry of reset tokens.
    pub clock: Arc<dyn Clock>,
}

/// The user lifecycle (P8): admins' changes of users, password changes and resets, and a
/// user's own sessions.
#[derive(Clone)]
pub struct AccountService {
    ports: AccountPorts,
}

impl std::fmt::Debug for AccountService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountService")
    }
}

const MANAGE: Need = Need::User(Permission::UsersManage);

impl AccountService {
    /// A service over `ports`.
    pub fn new(ports: AccountPorts) -> Self {
        Self { ports }
    }

    fn event(&self, organization: OrganizationId, caller: &Caller, at: DateTime<Utc>, event: Event) -> DomainEvent {
        DomainEvent::new(organization, caller.audit_actor(), at, event)
    }

    /// The organization's user `id`, unless deleted; another organization's is `NotFound` too.
    async fn member(&self, caller: &Caller, id: UserId) -> Result<User, UserAdminError> {
        match self.ports.users.find(id).await? {
            Some(user) if user.organization_id == caller.organization_id() && user.status != UserStatus::Deleted => {
                Ok(user)
            }
            _ => Err(UserAdminError::NotFound),
        }
    }

    /// Changes a user's role, status or name (admins only).
    pub async fn update_user(
        &self,
        caller: &Caller,
        id: UserId,
        input: UserUpdateInput,
    ) -> Result<User, UserAdminError> {
        caller.require(MANAGE)?;
        let update = UserUpdate {
            role: input.role.as_deref().map(|raw| Role::parse(raw).ok_or(UserAdminError::InvalidRole)).transpose()?,
            status: input
                .status
                .as_deref()
                .map(|raw| match UserStatus::parse(raw) {
                    Some(status @ (UserStatus::Active | UserStatus::Deactivated)) => Ok(status),
                    _ => Err(UserAdminError::InvalidStatus),
                })
                .transpose()?,
            name: input.name.map(|name| name.as_deref().map(UserName::parse).transpose()).transpose()?,
        };
        if update == UserUpdate::default() {
            return Err(UserAdminError::NothingToChange);
        }
        self.member(caller, id).await?;
        let at = self.ports.clock.now();
        Ok(self.ports.accounts.update_user(caller.organization_id(), id, &update, at, caller.audit_actor()).await?)
    }

    /// Deletes a user (admins only; themselves too, unless they are the last admin).
    pub async fn delete_user(&self, caller: &Caller, id: UserId) -> Result<User, UserAdminError> {
        caller.require(MANAGE)?;
        self.member(caller, id).await?;
        let at = self.ports.clock.now();
        Ok(self.ports.accounts.delete_user(caller.organization_id(), id, at, caller.audit_actor()).await?)
    }

    /// Changes the caller's own password; their other sessions end, this one stays.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: &SecretString,
        new: SecretString,
    ) -> Result<(), PasswordChangeError> {
        caller.require(Need::AnyUser)?;
        let new = Password::parse(new)?;
        let me = caller.on_behalf_of();
        let stored = self.ports.accounts.password_hash(me).await?;
        // A tombstone has no hash: the same work and answer as a wrong password.
        let known = stored.is_some();
        if !self.ports.passwords.verify(current, stored).await? || !known {
            return Err(PasswordChangeError::WrongCurrentPassword);
        }
        let user = self.ports.users.find(me).await?.ok_or(PasswordChangeError::WrongCurrentPassword)?;
        let hash = self.ports.passwords.hash(new.secret()).await?;
        let at = self.ports.clock.now();
        let event = self.event(user.organization_id, caller, at, Event::UserPasswordChanged { user });
        self.ports.accounts.set_password(me, &hash, caller.session(), at, &event).await?;
        Ok(())
    }

    /// Issues a one-time reset token for a user (admins only), and mails it to them when the
    /// organization can send mail. Any earlier unused token of theirs stops working.
    pub async fn issue_reset(&self, caller: &Caller, id: UserId) -> Result<IssuedReset, UserAdminError> {
        caller.require(MANAGE)?;
        let user = self.member(caller, id).await?;
        let token: SecretString =
            format!("{RESET_TOKEN_PREFIX}{}", self.ports.secrets.base62(RESET_SECRET_CHARS).expose_secret()).into();
        let now = self.ports.clock.now();
        let reset = PasswordReset {
            id: Uuid::now_v7(),
            organization_id: user.organization_id,
            user_id: user.id,
            token_hash: self.ports.hasher.hash(token.expose_secret()),
            created_by: caller.on_behalf_of(),
            created_at: now,
            expires_at: now + Duration::minutes(RESET_TTL_MINUTES),
            used_at: None,
        };
        let event = self.event(
            user.organization_id,
            caller,
            now,
            Event::UserPasswordResetIssued { user: user.clone(), expires_at: reset.expires_at },
        );
        self.ports.accounts.insert_reset(&reset, &event).await?;
        let body = format!(
            "An admin of your organization issued a password reset for {}.\n\nYour reset token: {}\n\nIt works \
             once, until {}. Set a new password with it by sending {{\"token\", \"new_password\"}} to POST \
             /v1/password-resets on this server.\nIf you did not expect this, tell your admin.",
            user.email.as_str(),
            token.expose_secret(),
            reset.expires_at.format("%Y-%m-%d %H:%M UTC"),
        );
        let mail = match self
            .ports
            .mailer
            .send(user.organization_id, user.email.as_str(), "Reset your Otesse password", &body)
            .await
        {
            Ok(_) => ResetMail::Sent,
            Err(MailError::NotConfigured(_)) => ResetMail::NotConfigured,
            Err(MailError::Failed(detail)) => ResetMail::Failed(detail),
        };
        Ok(IssuedReset { token, reset, mail })
    }

    /// Sets a new password with a reset token (no sign-in needed); all the user's sessions end.
    pub async fn reset_password(&self, token: &SecretString, new: SecretString) -> Result<User, PasswordResetError> {
        let new = Password::parse(new)?;
        let token = token.expose_secret();
        let well_formed = token.strip_prefix(RESET_TOKEN_PREFIX).is_some_and(|secret| {
            secret.len() == RESET_SECRET_CHARS && secret.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !well_formed {
            return Err(PasswordResetError::InvalidToken);
        }
        let now = self.ports.clock.now();
        let reset = self
            .ports
            .accounts
            .find_reset(&self.ports.hasher.hash(token))
            .await?
            .filter(|reset| reset.usable(now))
            .ok_or(PasswordResetError::InvalidToken)?;
        let user = self
            .ports
            .users
            .find(reset.user_id)
            .await?
            .filter(|user| user.status != UserStatus::Deleted)
            .ok_or(PasswordResetError::InvalidToken)?;
        let hash = self.ports.passwords.hash(new.secret()).await?;
        let event = DomainEvent::new(
            user.organization_id,
            crate::event::AuditActor::User(user.id),
            now,
            Event::UserPasswordReset { user: user.clone() },
        );
        if !self.ports.accounts.redeem_reset(reset.id, &hash, now, &event).await? {
            return Err(PasswordResetError::InvalidToken);
        }
        Ok(user)
    }

    /// The caller's own active sessions, newest first, the current one marked.
    pub async fn sessions(&self, caller: &Caller) -> Result<Vec<SessionListing>, OwnSessionError> {
        caller.require(Need::AnyUser)?;
        let now = self.ports.clock.now();
        let current = caller.session();
        Ok(self
            .ports
            .accounts
            .sessions(caller.on_behalf_of(), now)
            .await?
            .into_iter()
            .map(|session| SessionListing { current: Some(session.id) == current, session })
            .collect())
    }

    async fn me(&self, caller: &Caller) -> Result<User, OwnSessionError> {
        self.ports.users.find(caller.on_behalf_of()).await?.ok_or(OwnSessionError::NotFound)
    }

    /// Ends one of the caller's own sessions (the current one too: that signs out).
    pub async fn end_session(&self, caller: &Caller, id: SessionId) -> Result<(), OwnSessionError> {
        caller.require(Need::AnyUser)?;
        let user = self.me(caller).await?;
        let at = self.ports.clock.now();
        let event = self.event(
            user.organization_id,
            caller,
            at,
            Event::SessionRevoked { user: user.clone(), session_id: Some(id) },
        );
        if !self.ports.accounts.end_session(user.id, id, at, &event).await? {
            return Err(OwnSessionError::NotFound);
        }
        Ok(())
    }

    /// Ends all the caller's sessions but the current one; how many ended.
    pub async fn end_other_sessions(&self, caller: &Caller) -> Result<u64, OwnSessionError> {
        caller.require(Need::AnyUser)?;
        let current = caller.session().ok_or(Denied::UsersOnly)?;
        let user = self.me(caller).await?;
        let at = self.ports.clock.now();
        let event = self.event(
            user.organization_id,
            caller,
            at,
            Event::SessionRevoked { user: user.clone(), session_id: None },
        );
        Ok(self.ports.accounts.end_other_sessions(user.id, current, at, &event).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::fixtures;
    use crate::notification::MockMailer;
    use crate::organization::OrganizationId;
    use crate::ports::{MockClock, MockKeyHasher, MockPasswordHasher, MockSecretGenerator, MockUserRepository};
    use crate::user::Email;

    struct Mocks {
        users: MockUserRepository,
        accounts: MockAccountRepository,
        passwords: MockPasswordHasher,
        mailer: MockMailer,
        now: DateTime<Utc>,
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    impl Mocks {
        fn new() -> Self {
            Self {
                users: MockUserRepository::new(),
                accounts: MockAccountRepository::new(),
                passwords: MockPasswordHasher::new(),
                mailer: MockMailer::new(),
                now: at(),
            }
        }

        fn service(self) -> AccountService {
            let now = self.now;
            let mut clock = MockClock::new();
            clock.expect_now().returning(move || now);
            let mut hasher = MockKeyHasher::new();
            hasher.expect_hash().returning(|s| KeyHash([s.len() as u8; 32]));
            let mut secrets = MockSecretGenerator::new();
            secrets.expect_base62().returning(|len| "R".repeat(len).into());
            AccountService::new(AccountPorts {
                users: Arc::new(self.users),
                accounts: Arc::new(self.accounts),
                passwords: Arc::new(self.passwords),
                hasher: Arc::new(hasher),
                secrets: Arc::new(secrets),
                mailer: Arc::new(self.mailer),
                clock: Arc::new(clock),
            })
        }
    }

    /// User `n` of organization 1 (the fixtures' caller is user 2 of organization 1).
    fn member(n: u128, role: Role) -> User {
        User {
            id: UserId(Uuid::from_u128(n)),
            organization_id: fixtures::organization(),
            email: Email::parse(&format!("user{n}@acme.test")).unwrap(),
            name: None,
            role,
            status: UserStatus::Active,
            created_at: at(),
        }
    }

    fn admin() -> Caller {
        fixtures::user(Role::Admin)
    }

    fn input(role: Option<&str>, status: Option<&str>) -> UserUpdateInput {
        UserUpdateInput { role: role.map(str::to_owned), status: status.map(str::to_owned), name: None }
    }

    #[tokio::test]
    async fn only_admins_manage_users_and_change_nothing_otherwise() {
        for role in [Role::Manager, Role::Viewer] {
            let mut mocks = Mocks::new();
            mocks.accounts.expect_update_user().never();
            mocks.accounts.expect_delete_user().never();
            mocks.accounts.expect_insert_reset().never();
            let svc = mocks.service();
            let caller = fixtures::user(role);
            let id = UserId(Uuid::from_u128(7));
            let denied = UserAdminError::Forbidden(Denied::Role(Permission::UsersManage));
            assert_eq!(svc.update_user(&caller, id, input(Some("viewer"), None)).await.unwrap_err(), denied);
            assert_eq!(svc.delete_user(&caller, id).await.unwrap_err(), denied);
            assert_eq!(svc.issue_reset(&caller, id).await.unwrap_err(), denied);
        }
    }

    #[tokio::test]
    async fn unknown_roles_and_statuses_are_refused_before_any_read() {
        let mut mocks = Mocks::new();
        mocks.users.expect_find().never();
        mocks.accounts.expect_update_user().never();
        let svc = mocks.service();
        let id = UserId(Uuid::from_u128(7));
        assert_eq!(svc.update_user(&admin(), id, input(Some("owner"), None)).await, Err(UserAdminError::InvalidRole));
        for status in ["deleted", "suspended", ""] {
            assert_eq!(
                svc.update_user(&admin(), id, input(None, Some(status))).await,
                Err(UserAdminError::InvalidStatus)
            );
        }
        assert_eq!(svc.update_user(&admin(), id, input(None, None)).await, Err(UserAdminError::NothingToChange));
    }

    #[tokio::test]
    async fn another_organizations_user_and_a_deleted_one_are_not_found() {
        let mut mocks = Mocks::new();
        mocks.users.expect_find().returning(|id| {
            let mut user = member(id.0.as_u128(), Role::Viewer);
            if id.0.as_u128() == 7 {
                user.organization_id = OrganizationId(Uuid::from_u128(99));
            } else {
                user.status = UserStatus::Deleted;
            }
            Ok(Some(user))
        });
        mocks.accounts.expect_update_user().never();
        mocks.accounts.expect_delete_user().never();
        let svc = mocks.service();
        for n in [7, 8] {
            let id = UserId(Uuid::from_u128(n));
            assert_eq!(svc.update_user(&admin(), id, input(Some("admin"), None)).await, Err(UserAdminError::NotFound));
            assert_eq!(svc.delete_user(&admin(), id).await.unwrap_err(), UserAdminError::NotFound);
        }
    }

    #[tokio::test]
    async fn the_last_admin_refusal_comes_back_as_it_is() {
        let mut mocks = Mocks::new();
        mocks.users.expect_find().returning(|id| Ok(Some(member(id.0.as_u128(), Role::Admin))));
        mocks
            .accounts
            .expect_update_user()
            .withf(|org, id, update, _, actor| {
                *org == fixtures::organization()
                    && id.0.as_u128() == 2
                    && update.status == Some(UserStatus::Deactivated)
                    && update.role.is_none()
                    && *actor == crate::event::AuditActor::User(UserId(Uuid::from_u128(2)))
            })
            .times(1)
            .returning(|_, _, _, _, _| Err(ChangeUserError::LastAdmin));
        mocks.accounts.expect_delete_user().times(1).returning(|_, _, _, _| Err(ChangeUserError::LastAdmin));
        let svc = mocks.service();
        let me = UserId(Uuid::from_u128(2));
        let err = svc.update_user(&admin(), me, input(None, Some("deactivated"))).await;
        assert_eq!(err, Err(UserAdminError::LastAdmin));
        assert_eq!(svc.delete_user(&admin(), me).await, Err(UserAdminError::LastAdmin));
    }

    #[test]
    fn each_change_records_its_events() {
        use crate::event::EventKind::*;
        let kinds =
            |before: &User, after: &User| change_events(before, after).iter().map(Event::kind).collect::<Vec<_>>();
        let viewer = member(7, Role::Viewer);
        let mut deactivated = viewer.clone();
        deactivated.status = UserStatus::Deactivated;
        let mut manager = viewer.clone();
        manager.role = Role::Manager;
        let mut named = viewer.clone();
        named.name = Some(UserName::parse("Ada").unwrap());
        assert_eq!(kinds(&viewer, &deactivated), [UserDeactivated]);
        assert_eq!(kinds(&deactivated, &manager), [UserUpdated, UserReactivated]);
        assert_eq!(kinds(&viewer, &named), [UserUpdated]);
        assert!(kinds(&viewer, &viewer).is_empty(), "a no-op records nothing");
    }

    #[tokio::test]
    async fn a_wrong_current_password_changes_nothing() {
        let mut mocks = Mocks::new();
        mocks.accounts.expect_password_hash().returning(|_| Ok(Some(PasswordHash("h".into()))));
        mocks.passwords.expect_verify().times(1).returning(|_, _| Ok(false));
        mocks.passwords.expect_hash().never();
        mocks.accounts.expect_set_password().never();
        let err = mocks
            .service()
            .change_password(&admin(), &"not my password".to_owned().into(), "a brand new password".to_owned().into())
            .await;
        assert_eq!(err, Err(PasswordChangeError::WrongCurrentPassword));
    }

    #[tokio::test]
    async fn a_password_change_keeps_the_current_session_only() {
        let mut mocks = Mocks::new();
        mocks.accounts.expect_password_hash().returning(|_| Ok(Some(PasswordHash("h".into()))));
        mocks.passwords.expect_verify().returning(|_, _| Ok(true));
        mocks.passwords.expect_hash().times(1).returning(|_| Ok(PasswordHash("new".into())));
        mocks.users.expect_find().returning(|id| Ok(Some(member(id.0.as_u128(), Role::Admin))));
        let current = admin().session();
        mocks
            .accounts
            .expect_set_password()
            .withf(move |id, hash, keep, _, event| {
                id.0.as_u128() == 2
                    && hash.0 == "new"
                    && *keep == current
                    && event.kind() == crate::event::EventKind::UserPasswordChanged
            })
            .times(1)
            .returning(|_, _, _, _, _| Ok(()));
        let svc = mocks.service();
        svc.change_password(&admin(), &"my password!".to_owned().into(), "a brand new password".to_owned().into())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_short_new_password_is_refused_before_any_work() {
        let mut mocks = Mocks::new();
        mocks.passwords.expect_verify().never();
        mocks.accounts.expect_set_password().never();
        let err = mocks.service().change_password(&admin(), &"x".to_owned().into(), "short".to_owned().into()).await;
        assert_eq!(err, Err(PasswordChangeError::Password(PasswordError::TooShort)));
    }

    #[tokio::test]
    async fn a_reset_token_is_stored_hashed_expires_in_an_hour_and_is_mailed() {
        let mut mocks = Mocks::new();
        mocks.users.expect_find().returning(|id| Ok(Some(member(id.0.as_u128(), Role::Viewer))));
        mocks
            .accounts
            .expect_insert_reset()
            .withf(|reset, event| {
                reset.expires_at - reset.created_at == Duration::hours(1)
                    && reset.token_hash.0 != [0; 32]
                    && reset.used_at.is_none()
                    && event.kind() == crate::event::EventKind::UserPasswordResetIssued
            })
            .times(1)
            .returning(|_, _| Ok(()));
        mocks
            .mailer
            .expect_send()
            .withf(|_, to, _, body| to == "user7@acme.test" && body.contains(&format!("pwr_{}", "R".repeat(43))))
            .times(1)
            .returning(|_, _, _, _| Ok("msg-1".into()));
        let issued = mocks.service().issue_reset(&admin(), UserId(Uuid::from_u128(7))).await.unwrap();
        assert_eq!(issued.token.expose_secret(), &format!("pwr_{}", "R".repeat(43)));
        assert_eq!(issued.mail, ResetMail::Sent);
    }

    #[tokio::test]
    async fn without_postmark_the_token_is_still_answered() {
        let mut mocks = Mocks::new();
        mocks.users.expect_find().returning(|id| Ok(Some(member(id.0.as_u128(), Role::Viewer))));
        mocks.accounts.expect_insert_reset().returning(|_, _| Ok(()));
        mocks.mailer.expect_send().returning(|_, _, _, _| Err(MailError::NotConfigured("no".into())));
        let issued = mocks.service().issue_reset(&admin(), UserId(Uuid::from_u128(7))).await.unwrap();
        assert_eq!(issued.mail, ResetMail::NotConfigured);
    }

    fn reset(expires_at: DateTime<Utc>, used_at: Option<DateTime<Utc>>) -> PasswordReset {
        PasswordReset {
            id: Uuid::from_u128(50),
            organization_id: fixtures::organization(),
            user_id: UserId(Uuid::from_u128(7)),
            token_hash: KeyHash([47; 32]),
            created_by: UserId(Uuid::from_u128(2)),
            created_at: at() - Duration::minutes(10),
            expires_at,
            used_at,
        }
    }

    fn token() -> SecretString {
        format!("pwr_{}", "a".repeat(43)).into()
    }

    #[tokio::test]
    async fn used_expired_unknown_or_malformed_tokens_change_nothing() {
        for stored in
            [None, Some(reset(at() + Duration::minutes(5), Some(at() - Duration::minutes(1)))), Some(reset(at(), None))]
        {
            let mut mocks = Mocks::new();
            mocks.accounts.expect_find_reset().returning(move |_| Ok(stored.clone()));
            mocks.passwords.expect_hash().never();
            mocks.accounts.expect_redeem_reset().never();
            let err = mocks.service().reset_password(&token(), "a brand new password".to_owned().into()).await;
            assert_eq!(err.unwrap_err(), PasswordResetError::InvalidToken);
        }
        let mut mocks = Mocks::new();
        mocks.accounts.expect_find_reset().never();
        let svc = mocks.service();
        for bad in ["", "pwr_short", "ses_aaaa"] {
            let err = svc.reset_password(&bad.to_owned().into(), "a brand new password".to_owned().into()).await;
            assert_eq!(err.unwrap_err(), PasswordResetError::InvalidToken);
        }
    }

    #[tokio::test]
    async fn a_token_that_loses_the_race_to_redeem_is_invalid() {
        let mut mocks = Mocks::new();
        mocks.accounts.expect_find_reset().returning(|_| Ok(Some(reset(at() + Duration::minutes(5), None))));
        mocks.users.expect_find().returning(|id| Ok(Some(member(id.0.as_u128(), Role::Viewer))));
        mocks.passwords.expect_hash().returning(|_| Ok(PasswordHash("new".into())));
        mocks.accounts.expect_redeem_reset().times(1).returning(|_, _, _, _| Ok(false));
        let err = mocks.service().reset_password(&token(), "a brand new password".to_owned().into()).await;
        assert_eq!(err.unwrap_err(), PasswordResetError::InvalidToken);
    }

    #[tokio::test]
    async fn a_valid_token_sets_the_password_as_the_user() {
        let mut mocks = Mocks::new();
        mocks.accounts.expect_find_reset().returning(|_| Ok(Some(reset(at() + Duration::minutes(5), None))));
        mocks.users.expect_find().returning(|id| Ok(Some(member(id.0.as_u128(), Role::Viewer))));
        mocks.passwords.expect_hash().returning(|_| Ok(PasswordHash("new".into())));
        mocks
            .accounts
            .expect_redeem_reset()
            .withf(|id, hash, _, event| {
                id.as_u128() == 50
                    && hash.0 == "new"
                    && event.actor == crate::event::AuditActor::User(UserId(Uuid::from_u128(7)))
            })
            .times(1)
            .returning(|_, _, _, _| Ok(true));
        let user = mocks.service().reset_password(&token(), "a brand new password".to_owned().into()).await.unwrap();
        assert_eq!(user.id, UserId(Uuid::from_u128(7)));
    }

    #[tokio::test]
    async fn sessions_mark_the_current_one_and_keys_have_none() {
        let caller = admin();
        let current = caller.session().unwrap();
        let mut mocks = Mocks::new();
        mocks.accounts.expect_sessions().returning(move |user, _| {
            let session = |id: SessionId| Session {
                id,
                user_id: user,
                token_hash: KeyHash([1; 32]),
                created_at: at(),
                expires_at: at() + Duration::hours(1),
                user_agent: None,
                ip_address: None,
            };
            Ok(vec![session(SessionId(Uuid::from_u128(77))), session(current)])
        });
        let listed = mocks.service().sessions(&caller).await.unwrap();
        assert_eq!(listed.iter().map(|l| l.current).collect::<Vec<_>>(), [false, true]);
    }

    #[tokio::test]
    async fn ending_a_session_that_is_not_yours_is_not_found() {
        let mut mocks = Mocks::new();
        mocks.users.expect_find().returning(|id| Ok(Some(member(id.0.as_u128(), Role::Viewer))));
        mocks.accounts.expect_end_session().times(1).returning(|_, _, _, _| Ok(false));
        let err = mocks.service().end_session(&admin(), SessionId(Uuid::from_u128(88))).await;
        assert_eq!(err, Err(OwnSessionError::NotFound));
    }
}
