//! Ports: what the services need from the outside world, named by role. The ones every feature
//! uses (the clock, randomness, hashing) are declared here; each feature declares its own
//! (`ApiKeyRepository` in `api_key`, ...), and this module gathers them all for the adapters.
//! Adapters implement them (storage, crypto, the server's cache and queues); tests use the
//! mockall mocks (`MockApiKeyRepository`, ...), also exported under the `mocks` feature.
//!
//! Every method documents what it must do and which errors it may return. `StorageError` always
//! means "not the caller's fault" and becomes a 500 at the edge.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::api_key::KeyHash;
use crate::user::PasswordHash;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// The time. Services never read the system clock themselves.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait Clock: Send + Sync {
    /// The current time, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// Cryptographically secure random material.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait SecretGenerator: Send + Sync {
    /// `len` characters drawn uniformly from `[0-9A-Za-z]` by a CSPRNG.
    fn base62(&self, len: usize) -> SecretString;
}

/// Hashes API keys and session tokens for storage and lookup.
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait KeyHasher: Send + Sync {
    /// SHA-256 of the whole plaintext.
    fn hash(&self, plaintext: &str) -> KeyHash;
    /// Whether `plaintext` hashes to `expected`, compared in constant time.
    fn matches(&self, plaintext: &str, expected: &KeyHash) -> bool;
    /// Whether two hashes are equal, compared in constant time.
    fn same(&self, a: &KeyHash, b: &KeyHash) -> bool;
}

/// Too many passwords are being hashed at once: the work was not started. Answered as "busy,
/// try again in a moment", never as a wrong password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("The server is busy checking passwords. Try again in a moment.")]
pub struct HashingBusy;

/// Argon2id password hashing. Implementations run the work off the async runtime and bound how
/// many hashes run (and wait) at once, since each one takes a large block of memory.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// An Argon2id hash of `password` (P2) with a fresh salt, in PHC string form. Errors:
    /// [`HashingBusy`] when too many hashes are already running or waiting.
    async fn hash(&self, password: &SecretString) -> Result<PasswordHash, HashingBusy>;
    /// Whether `password` matches `hash`. With `hash = None` it does the same work against a
    /// dummy hash and answers false, so an unknown email takes as long as a wrong password.
    async fn verify(&self, password: &SecretString, hash: Option<PasswordHash>) -> Result<bool, HashingBusy>;
}

// The ports of each feature live with the feature; they are gathered here for the adapters.
pub use crate::account::AccountRepository;
pub use crate::api_key::{
    ApiKeyRepository, CachedKey, InsertKeyError, KeyCache, KeyGuessGuard, KeyInvalidationBus, RotateStoredKeyError,
};
pub use crate::audit::AuditLog;
pub use crate::auth::{InsertUserError, SessionRepository, SetupStoreError, SignInThrottle, UserRepository};
pub use crate::customer::CustomerRepository;
pub use crate::integration::{
    ContactRepository, ContactStoreError, IntegrationRepository, OAuthClient, OAuthRepository, OutgoingMessage,
    ProviderClient, ProviderModel, ProviderUsageDay,
};
pub use crate::sealed::{CredentialCipher, DecryptError, SealedSecretStore};
pub use crate::usage::{Backlog, UsageLog, UsageSink};
pub use crate::user::UserDirectory;

#[cfg(any(test, feature = "mocks"))]
pub use crate::account::MockAccountRepository;
#[cfg(any(test, feature = "mocks"))]
pub use crate::api_key::{MockApiKeyRepository, MockKeyCache, MockKeyGuessGuard, MockKeyInvalidationBus};
#[cfg(any(test, feature = "mocks"))]
pub use crate::audit::MockAuditLog;
#[cfg(any(test, feature = "mocks"))]
pub use crate::auth::{MockSessionRepository, MockSignInThrottle, MockUserRepository};
#[cfg(any(test, feature = "mocks"))]
pub use crate::customer::MockCustomerRepository;
#[cfg(any(test, feature = "mocks"))]
pub use crate::integration::{
    MockContactRepository, MockIntegrationRepository, MockOAuthClient, MockOAuthRepository, MockProviderClient,
};
#[cfg(any(test, feature = "mocks"))]
pub use crate::sealed::{MockCredentialCipher, MockSealedSecretStore};
#[cfg(any(test, feature = "mocks"))]
pub use crate::usage::{MockUsageLog, MockUsageSink};
#[cfg(any(test, feature = "mocks"))]
pub use crate::user::MockUserDirectory;
