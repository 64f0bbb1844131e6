//! First-run setup, sign-in, sessions and user management (P1, P2, P3).

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::StorageError;
use crate::api_key::KeyHash;
use crate::caller::{Caller, Need};
use crate::organization::{Organization, OrganizationId, OrganizationName, OrganizationNameError};
use crate::ports::{Clock, HashingBusy, KeyHasher, PasswordHasher, SecretGenerator};
use crate::user::{Actor, Email, EmailError, Password, PasswordError, PasswordHash, Permission, Role, User, UserId};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// Session tokens look like `ses_` followed by this many base62 characters.
pub const SESSION_TOKEN_PREFIX: &str = "ses_";
/// Session tokens hold this many base62 characters after the prefix (about 256 bits).
pub const SESSION_SECRET_CHARS: usize = 43;

pub use crate::user::SessionId;

/// A stored session: only the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session's id: what a user lists and ends their sessions by.
    pub id: SessionId,
    /// The user signed in.
    pub user_id: UserId,
    /// SHA-256 of the token: what a presented token is looked up by; the token is never stored.
    pub token_hash: KeyHash,
    /// When the user signed in.
    pub created_at: DateTime<Utc>,
    /// When the session stops working on its own.
    pub expires_at: DateTime<Utc>,
    /// What the client said it was at sign-in (`User-Agent`, cut to 255 characters).
    pub user_agent: Option<String>,
    /// The client's address at sign-in.
    pub ip_address: Option<IpAddr>,
}

impl Session {
    /// The longest `User-Agent` kept, in characters.
    pub const USER_AGENT_MAX_CHARS: usize = 255;
}

/// A session just created: the plaintext token is returned to the client once.
#[derive(Debug)]
pub struct NewSession {
    /// The session token, `ses_` and 43 base62 characters: returned to the client this once.
    pub token: SecretString,
    /// The stored session.
    pub session: Session,
    /// The user who signed in.
    pub user: User,
}

/// The signed-in user of a request, with the session it came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The session the request came through.
    pub session_id: SessionId,
    /// The user, active: a deactivated or deleted user's sessions never authenticate.
    pub user: User,
}

impl SignedIn {
    /// The user's identity for the services.
    pub fn actor(&self) -> Actor {
        Actor::of(&self.user)
    }

    /// The caller of a request made through this session.
    pub fn caller(&self) -> Caller {
        Caller::user(self.actor(), self.session_id)
    }
}

/// Why first-run setup failed (P3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// The setup token presented is not the deployment's.
    #[error("The setup token is not valid.")]
    InvalidToken,
    /// An organization and its admin exist already: setup is closed for good.
    #[error("Setup has already been completed.")]
    AlreadyDone,
    /// The organization name is empty or longer than 200 characters.
    #[error(transparent)]
    OrganizationName(#[from] OrganizationNameError),
    /// The admin's email is not an email address.
    #[error(transparent)]
    Email(#[from] EmailError),
    /// The admin's password is too short or too long.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// Too many passwords are being hashed at once; try again in a moment.
    #[error(transparent)]
    Busy(#[from] HashingBusy),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a sign-in failed (P2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// Same answer for an unknown email and a wrong password.
    #[error("Invalid email or password.")]
    InvalidCredentials,
    /// Too many attempts for this email or from this network: try again in this many seconds.
    #[error("Too many failed sign-in attempts. Try again in {0} seconds.")]
    Throttled(u64),
    /// Too many passwords are being hashed at once; try again in a moment.
    #[error(transparent)]
    Busy(#[from] HashingBusy),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a session token does not authenticate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Malformed, unknown, expired or signed out, or its user is no longer active.
    #[error("Invalid or expired session.")]
    Invalid,
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a user could not be added or users listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddUserError {
    /// The caller is not a user with `users.manage` (an admin).
    #[error(transparent)]
    Forbidden(#[from] crate::caller::Denied),
    /// The email is not an email address.
    #[error(transparent)]
    Email(#[from] EmailError),
    /// The password is too short or too long.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// `role` is not `admin`, `manager` or `viewer`.
    #[error("role must be one of admin, manager, viewer")]
    InvalidRole,
    /// The name is empty, longer than 100 characters, or holds a control character.
    #[error(transparent)]
    Name(#[from] crate::user::UserNameError),
    /// Another user already has this address (in any organization); a deleted user's is free.
    #[error("A user with this email already exists.")]
    EmailTaken,
    /// Too many passwords are being hashed at once; try again in a moment.
    #[error(transparent)]
    Busy(#[from] HashingBusy),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<InsertUserError> for AddUserError {
    fn from(err: InsertUserError) -> Self {
        match err {
            InsertUserError::EmailTaken => AddUserError::EmailTaken,
            InsertUserError::Storage(err) => AddUserError::Storage(err),
        }
    }
}

/// Why the store refused the first-run setup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupStoreError {
    /// Setup was completed already, perhaps by a concurrent request.
    #[error("setup has already been completed")]
    AlreadyDone,
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why the store refused a new user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertUserError {
    /// Another user already has this address.
    #[error("a user with this email already exists")]
    EmailTaken,
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Stores users, their password hashes and organizations. Every method fails only with
/// [`StorageError`] unless it says otherwise.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Creates the first organization and its admin, atomically, only if setup was never done.
    async fn complete_setup(
        &self,
        organization: &Organization,
        admin: &User,
        hash: &PasswordHash,
    ) -> Result<(), SetupStoreError>;
    /// Whether first-run setup has been completed (its one-time record exists).
    async fn is_setup_done(&self) -> Result<bool, StorageError>;
    /// Stores a new user with their password hash; [`InsertUserError::EmailTaken`] when the
    /// address is in use.
    async fn insert(&self, user: &User, hash: &PasswordHash) -> Result<(), InsertUserError>;
    /// The user with this address (any status but deleted), with their password hash.
    async fn find_by_email(&self, email: &Email) -> Result<Option<(User, PasswordHash)>, StorageError>;
    /// The user with this id, whatever their status (a deleted user's tombstone too).
    async fn find(&self, id: UserId) -> Result<Option<User>, StorageError>;
    /// The organization's users, deactivated ones included, deleted ones not.
    async fn list(&self, organization: OrganizationId) -> Result<Vec<User>, StorageError>;
    /// The organization with this id.
    async fn organization(&self, id: OrganizationId) -> Result<Option<Organization>, StorageError>;
}

/// Stores sessions by token hash. Every method fails only with [`StorageError`].
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Stores a new session.
    async fn insert(&self, session: &Session) -> Result<(), StorageError>;
    /// The unexpired, unrevoked session with this token hash, with its user, if that user is
    /// active (a deactivated or deleted user's sessions never authenticate).
    async fn find_active(&self, hash: &KeyHash, now: DateTime<Utc>) -> Result<Option<(Session, User)>, StorageError>;
    /// Ends the session; ending an ended session is not an error.
    async fn revoke(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), StorageError>;
}

/// Sign-in attempts (P2), per email and per client network. In-process by default.
///
/// An attempt is counted when it begins, before the password is checked, in one step with the
/// check that lets it through: concurrent attempts cannot all pass one check. Past a few free
/// failures an email waits a delay that doubles with each further failure (capped), rather
/// than being locked: its owner signs in as soon as the delay has passed, however many
/// guesses an attacker made. A network has a plain limit of attempts per window.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait SignInThrottle: Send + Sync {
    /// Lets an attempt for `email` from `network` through and counts it, or refuses it:
    /// `Err(seconds)` to wait before trying again.
    fn attempt(&self, email: &str, network: Option<String>) -> Result<(), u64>;
    /// The attempt signed in: the email's failures are forgotten and the network's attempt is
    /// given back.
    fn succeeded(&self, email: &str, network: Option<String>);
}

pub use crate::client::network_subject;

/// What a first-run setup request carries.
#[derive(Debug)]
pub struct SetupInput {
    /// The deployment's one-time setup token, as typed.
    pub setup_token: SecretString,
    /// The new organization's name.
    pub organization_name: String,
    /// The first admin's email address.
    pub email: String,
    /// The first admin's password.
    pub password: SecretString,
}

/// The ports the auth service needs.
#[derive(Clone)]
pub struct AuthPorts {
    /// Users, their password hashes and organizations.
    pub users: Arc<dyn UserRepository>,
    /// Sessions, by token hash.
    pub sessions: Arc<dyn SessionRepository>,
    /// Argon2id hashing, off the async runtime.
    pub passwords: Arc<dyn PasswordHasher>,
    /// Hashes session tokens and compares the setup token in constant time.
    pub hasher: Arc<dyn KeyHasher>,
    /// Draws the session tokens' random characters.
    pub secrets: Arc<dyn SecretGenerator>,
    /// Slows down repeated failed sign-ins (P2).
    pub throttle: Arc<dyn SignInThrottle>,
    /// The time: sessions' creation and expiry.
    pub clock: Arc<dyn Clock>,
}

/// First-run setup, sign-in, sessions and adding users (P1-P3).
#[derive(Clone)]
pub struct AuthService {
    ports: AuthPorts,
    session_ttl: Duration,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("session_ttl", &self.session_ttl).finish_non_exhaustive()
    }
}

impl AuthService {
    /// A service over `ports`; sessions last `session_ttl`.
    pub fn new(ports: AuthPorts, session_ttl: Duration) -> Self {
        Self { ports, session_ttl }
    }

    /// Whether first-run setup was completed.
    pub async fn is_setup_done(&self) -> Result<bool, StorageError> {
        self.ports.users.is_setup_done().await
    }

    /// Creates the first organization and its admin (P3). `expected_token` is the deployment's
    /// one-time token; the comparison is constant-time.
    pub async fn setup(&self, expected_token: &SecretString, input: SetupInput) -> Result<User, SetupError> {
        let hasher = &self.ports.hasher;
        let presented = input.setup_token.expose_secret();
        if !hasher.matches(presented, &hasher.hash(expected_token.expose_secret())) {
            return Err(SetupError::InvalidToken);
        }
        if self.ports.users.is_setup_done().await? {
            return Err(SetupError::AlreadyDone);
        }
        let name = OrganizationName::parse(&input.organization_name)?;
        let email = Email::parse(&input.email)?;
        let password = Password::parse(input.password)?;
        let now = self.ports.clock.now();
        let organization = Organization { id: OrganizationId(Uuid::now_v7()), name, created_at: now };
        let admin = User {
            id: UserId(Uuid::now_v7()),
            organization_id: organization.id,
            email,
            name: None,
            role: Role::Admin,
            status: crate::user::UserStatus::Active,
            created_at: now,
        };
        let hash = self.ports.passwords.hash(password.secret()).await?;
        match self.ports.users.complete_setup(&organization, &admin, &hash).await {
            Ok(()) => Ok(admin),
            Err(SetupStoreError::AlreadyDone) => Err(SetupError::AlreadyDone),
            Err(SetupStoreError::Storage(err)) => Err(err.into()),
        }
    }

    /// Signs a user in (P2). Each attempt is counted per email and per client network before
    /// any password work; past the throttle's limits it is refused without that work. A
    /// deactivated user gets the answer a wrong password gets, after the same work (P8).
    pub async fn sign_in(
        &self,
        email: &str,
        password: &SecretString,
        client_ip: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> Result<NewSession, SignInError> {
        let email_subject = format!("email:{}", email.trim().to_lowercase());
        let network = client_ip.map(network_subject);
        let throttle = &self.ports.throttle;
        throttle.attempt(&email_subject, network.clone()).map_err(SignInError::Throttled)?;

        let found = match Email::parse(email) {
            Ok(email) => self.ports.users.find_by_email(&email).await?,
            Err(_) => None,
        };
        let verified = self.ports.passwords.verify(password, found.as_ref().map(|(_, hash)| hash.clone())).await?;
        let user = match (found, verified) {
            (Some((user, _)), true) if user.is_active() => user,
            _ => return Err(SignInError::InvalidCredentials),
        };
        throttle.succeeded(&email_subject, network);

        let token: SecretString =
            format!("{SESSION_TOKEN_PREFIX}{}", self.ports.secrets.base62(SESSION_SECRET_CHARS).expose_secret()).into();
        let now = self.ports.clock.now();
        let session = Session {
            id: SessionId(Uuid::now_v7()),
            user_id: user.id,
            token_hash: self.ports.hasher.hash(token.expose_secret()),
            created_at: now,
            expires_at: now + self.session_ttl,
            user_agent: user_agent
                .map(|agent| agent.chars().filter(|c| !c.is_control()).take(Session::USER_AGENT_MAX_CHARS).collect()),
            ip_address: client_ip,
        };
        self.ports.sessions.insert(&session).await?;
        Ok(NewSession { token, session, user })
    }

    /// Resolves a presented session token to its signed-in user.
    pub async fn authenticate(&self, token: &str) -> Result<SignedIn, SessionError> {
        if !Self::looks_like_session_token(token) {
            return Err(SessionError::Invalid);
        }
        let hash = self.ports.hasher.hash(token);
        let now = self.ports.clock.now();
        let (session, user) = self.ports.sessions.find_active(&hash, now).await?.ok_or(SessionError::Invalid)?;
        Ok(SignedIn { session_id: session.id, user })
    }

    /// Whether `token` has a session token's shape (`ses_` and 43 base62 characters); nothing is
    /// looked up.
    pub fn looks_like_session_token(token: &str) -> bool {
        token.strip_prefix(SESSION_TOKEN_PREFIX).is_some_and(|secret| {
            secret.len() == SESSION_SECRET_CHARS && secret.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    }

    /// Ends the session; ending an ended session is not an error.
    pub async fn sign_out(&self, session: SessionId) -> Result<(), StorageError> {
        self.ports.sessions.revoke(session, self.ports.clock.now()).await
    }

    /// Adds a user to the actor's organization (admins only).
    pub async fn add_user(
        &self,
        caller: &Caller,
        email: &str,
        password: SecretString,
        role: &str,
        name: Option<&str>,
    ) -> Result<User, AddUserError> {
        caller.require(Need::User(Permission::UsersManage))?;
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        let role = Role::parse(role).ok_or(AddUserError::InvalidRole)?;
        let name = name.map(crate::user::UserName::parse).transpose()?;
        let user = User {
            id: UserId(Uuid::now_v7()),
            organization_id: caller.organization_id(),
            email,
            name,
            role,
            status: crate::user::UserStatus::Active,
            created_at: self.ports.clock.now(),
        };
        let hash = self.ports.passwords.hash(password.secret()).await?;
        self.ports.users.insert(&user, &hash).await?;
        Ok(user)
    }

    /// The organization's users, deactivated ones included; needs `users.manage` (an admin).
    pub async fn list_users(&self, caller: &Caller) -> Result<Vec<User>, AddUserError> {
        caller.require(Need::User(Permission::UsersManage))?;
        Ok(self.ports.users.list(caller.organization_id()).await?)
    }

    /// The organization with this id.
    pub async fn organization(&self, id: OrganizationId) -> Result<Option<Organization>, StorageError> {
        self.ports.users.organization(id).await
    }

    /// The signed-in caller's own record and organization; `None` when either is gone.
    pub async fn me(&self, caller: &Caller) -> Result<Option<(User, Organization)>, AddUserError> {
        caller.require(Need::AnyUser)?;
        let Some(user) = self.ports.users.find(caller.on_behalf_of()).await? else { return Ok(None) };
        Ok(self.ports.users.organization(user.organization_id).await?.map(|organization| (user, organization)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        MockClock, MockKeyHasher, MockPasswordHasher, MockSecretGenerator, MockSessionRepository, MockSignInThrottle,
        MockUserRepository,
    };
    use crate::user::PasswordHash;

    struct Mocks {
        users: MockUserRepository,
        sessions: MockSessionRepository,
        passwords: MockPasswordHasher,
        throttle: MockSignInThrottle,
    }

    impl Mocks {
        fn new() -> Self {
            Self {
                users: MockUserRepository::new(),
                sessions: MockSessionRepository::new(),
                passwords: MockPasswordHasher::new(),
                throttle: MockSignInThrottle::new(),
            }
        }

        fn service(self) -> AuthService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(Utc::now);
            let mut hasher = MockKeyHasher::new();
            // A transparent "hash" so tests can see what is compared.
            hasher.expect_hash().returning(fake_hash);
            hasher.expect_matches().returning(|s, expected| fake_hash(s) == *expected);
            let mut secrets = MockSecretGenerator::new();
            secrets.expect_base62().returning(|len| "S".repeat(len).into());
            AuthService::new(
                AuthPorts {
                    users: Arc::new(self.users),
                    sessions: Arc::new(self.sessions),
                    passwords: Arc::new(self.passwords),
                    hasher: Arc::new(hasher),
                    secrets: Arc::new(secrets),
                    throttle: Arc::new(self.throttle),
                    clock: Arc::new(clock),
                },
                Duration::hours(12),
            )
        }
    }

    fn fake_hash(s: &str) -> KeyHash {
        let mut out = [0u8; 32];
        for (i, b) in s.bytes().enumerate() {
            out[i % 32] ^= b.wrapping_add(i as u8);
        }
        KeyHash(out)
    }

    fn setup_input(token: &str) -> SetupInput {
        SetupInput {
            setup_token: token.to_owned().into(),
            organization_name: "Acme Cleaning".into(),
            email: "owner@acme.test".into(),
            password: "a long enough password".to_owned().into(),
        }
    }

    fn user(role: Role) -> User {
        User {
            id: UserId(Uuid::now_v7()),
            organization_id: OrganizationId(Uuid::from_u128(9)),
            email: Email::parse("ada@acme.test").unwrap(),
            name: None,
            role,
            status: crate::user::UserStatus::Active,
            created_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn setup_with_the_right_token_creates_an_admin() {
        let mut mocks = Mocks::new();
        mocks.users.expect_is_setup_done().returning(|| Ok(false));
        mocks
            .users
            .expect_complete_setup()
            .withf(|_, admin, _| admin.role == Role::Admin)
            .times(1)
            .returning(|_, _, _| Ok(()));
        mocks.passwords.expect_hash().returning(|_| Ok(PasswordHash("$argon2id$...".into())));
        let admin = mocks.service().setup(&"tok-123".to_owned().into(), setup_input("tok-123")).await.unwrap();
        assert_eq!(admin.email.as_str(), "owner@acme.test");
    }

    #[tokio::test]
    async fn setup_with_a_wrong_token_changes_nothing() {
        let mut mocks = Mocks::new();
        mocks.users.expect_complete_setup().never();
        let err = mocks.service().setup(&"tok-123".to_owned().into(), setup_input("tok-124")).await.unwrap_err();
        assert_eq!(err, SetupError::InvalidToken);
    }

    #[tokio::test]
    async fn setup_twice_is_refused() {
        let mut mocks = Mocks::new();
        mocks.users.expect_is_setup_done().returning(|| Ok(true));
        mocks.users.expect_complete_setup().never();
        let err = mocks.service().setup(&"t".to_owned().into(), setup_input("t")).await.unwrap_err();
        assert_eq!(err, SetupError::AlreadyDone);
    }

    #[tokio::test]
    async fn setup_losing_a_race_reports_already_done() {
        let mut mocks = Mocks::new();
        mocks.users.expect_is_setup_done().returning(|| Ok(false));
        mocks.users.expect_complete_setup().returning(|_, _, _| Err(SetupStoreError::AlreadyDone));
        mocks.passwords.expect_hash().returning(|_| Ok(PasswordHash("h".into())));
        let err = mocks.service().setup(&"t".to_owned().into(), setup_input("t")).await.unwrap_err();
        assert_eq!(err, SetupError::AlreadyDone);
    }

    #[tokio::test]
    async fn unknown_email_and_wrong_password_get_the_same_answer_and_both_do_the_password_work() {
        for known in [false, true] {
            let mut mocks = Mocks::new();
            // Counted once, as it began, for the email and the client's network.
            mocks
                .throttle
                .expect_attempt()
                .withf(|email, network| email == "email:ada@acme.test" && network.as_deref() == Some("ip:10.0.0.1"))
                .times(1)
                .returning(|_, _| Ok(()));
            mocks.throttle.expect_succeeded().never();
            mocks
                .users
                .expect_find_by_email()
                .returning(move |_| Ok(known.then(|| (user(Role::Viewer), PasswordHash("h".into())))));
            mocks
                .passwords
                .expect_verify()
                .withf(move |_, hash| hash.is_some() == known)
                .times(1)
                .returning(|_, _| Ok(false));
            mocks.sessions.expect_insert().never();
            let err = mocks
                .service()
                .sign_in("ada@acme.test", &"wrong password!".to_owned().into(), Some("10.0.0.1".parse().unwrap()), None)
                .await
                .unwrap_err();
            assert_eq!(err, SignInError::InvalidCredentials);
        }
    }

    #[tokio::test]
    async fn throttled_sign_ins_do_no_password_work() {
        let mut mocks = Mocks::new();
        mocks.throttle.expect_attempt().returning(|_, _| Err(42));
        mocks.passwords.expect_verify().never();
        let err = mocks.service().sign_in("ada@acme.test", &"pw".to_owned().into(), None, None).await.unwrap_err();
        assert_eq!(err, SignInError::Throttled(42));
    }

    #[tokio::test]
    async fn a_busy_hasher_is_busy_not_a_wrong_password() {
        let mut mocks = Mocks::new();
        mocks.throttle.expect_attempt().returning(|_, _| Ok(()));
        mocks.throttle.expect_succeeded().never();
        mocks.users.expect_find_by_email().returning(|_| Ok(Some((user(Role::Admin), PasswordHash("h".into())))));
        mocks.passwords.expect_verify().returning(|_, _| Err(HashingBusy));
        mocks.sessions.expect_insert().never();
        let err = mocks
            .service()
            .sign_in("ada@acme.test", &"right password".to_owned().into(), None, None)
            .await
            .unwrap_err();
        assert_eq!(err, SignInError::Busy(HashingBusy));
    }

    #[tokio::test]
    async fn sign_in_stores_only_the_token_hash() {
        let mut mocks = Mocks::new();
        mocks.throttle.expect_attempt().times(1).returning(|_, _| Ok(()));
        mocks.throttle.expect_succeeded().times(1).return_const(());
        mocks.users.expect_find_by_email().returning(|_| Ok(Some((user(Role::Admin), PasswordHash("h".into())))));
        mocks.passwords.expect_verify().returning(|_, _| Ok(true));
        mocks.sessions.expect_insert().times(1).returning(|_| Ok(()));
        let new = mocks
            .service()
            .sign_in("ADA@acme.test", &"right password".to_owned().into(), None, Some("Firefox\n/1"))
            .await
            .unwrap();
        let token = new.token.expose_secret().to_owned();
        assert!(AuthService::looks_like_session_token(&token));
        assert_ne!(new.session.token_hash.0, [0; 32]);
        assert!(new.session.expires_at > new.session.created_at);
        assert_eq!(new.session.user_agent.as_deref(), Some("Firefox/1"), "control characters are dropped");
    }

    #[tokio::test]
    async fn a_deactivated_user_with_the_right_password_is_refused_like_a_wrong_one() {
        let mut mocks = Mocks::new();
        mocks.throttle.expect_attempt().returning(|_, _| Ok(()));
        mocks.throttle.expect_succeeded().never();
        mocks.users.expect_find_by_email().returning(|_| {
            let mut user = user(Role::Admin);
            user.status = crate::user::UserStatus::Deactivated;
            Ok(Some((user, PasswordHash("h".into()))))
        });
        mocks.passwords.expect_verify().times(1).returning(|_, _| Ok(true));
        mocks.sessions.expect_insert().never();
        let err = mocks
            .service()
            .sign_in("ada@acme.test", &"right password".to_owned().into(), None, None)
            .await
            .unwrap_err();
        assert_eq!(err, SignInError::InvalidCredentials);
    }

    #[tokio::test]
    async fn malformed_session_tokens_never_reach_storage() {
        let mut mocks = Mocks::new();
        mocks.sessions.expect_find_active().never();
        let svc = mocks.service();
        for token in ["", "ses_short", &format!("erp_live_{}", "a".repeat(40))] {
            assert_eq!(svc.authenticate(token).await.unwrap_err(), SessionError::Invalid);
        }
    }

    #[tokio::test]
    async fn only_admins_add_users() {
        let mut mocks = Mocks::new();
        mocks.users.expect_insert().never();
        let svc = mocks.service();
        let manager = Caller::user(Actor::of(&user(Role::Manager)), SessionId(Uuid::nil()));
        let err = svc
            .add_user(&manager, "bo@acme.test", "long password 1".to_owned().into(), "viewer", None)
            .await
            .unwrap_err();
        assert_eq!(err, AddUserError::Forbidden(crate::caller::Denied::Role(Permission::UsersManage)));
    }

    #[tokio::test]
    async fn add_user_validates_role_and_reports_duplicates() {
        let mut mocks = Mocks::new();
        mocks.passwords.expect_hash().returning(|_| Ok(PasswordHash("h".into())));
        mocks.users.expect_insert().times(1).returning(|_, _| Err(InsertUserError::EmailTaken));
        let svc = mocks.service();
        let admin = Caller::user(Actor::of(&user(Role::Admin)), SessionId(Uuid::nil()));
        let err =
            svc.add_user(&admin, "bo@acme.test", "long password 1".to_owned().into(), "owner", None).await.unwrap_err();
        assert_eq!(err, AddUserError::InvalidRole);
        let err = svc
            .add_user(&admin, "bo@acme.test", "long password 1".to_owned().into(), "viewer", None)
            .await
            .unwrap_err();
        assert_eq!(err, AddUserError::EmailTaken);
    }
}
