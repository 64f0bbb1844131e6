//! Platform service tokens (S1): the credential of the platform's own services (bookings,
//! invoicing, ...) that check organizations' API keys through the verification API.
//!
//! A service serves every organization, so its token belongs to no organization: the operator
//! creates and revokes tokens (a server subcommand), never an organization's user. A token is
//! `ots_svc_` followed by 40 base62 characters, shown once at creation; only its SHA-256 is
//! stored, and it is compared in constant time. An organization's API key is never a service
//! token, nor the reverse: the prefixes differ and each is looked up in its own table.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::StorageError;
use crate::api_key::KeyHash;
use crate::ports::{Clock, KeyHasher, SecretGenerator};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// What every service token starts with.
pub const SERVICE_TOKEN_PREFIX: &str = "ots_svc_";
/// Characters after the prefix (40 base62 characters: 238 bits, as API keys).
pub const SERVICE_TOKEN_CHARS: usize = 40;
/// Longest name of a token (it names the service that holds it).
pub const MAX_NAME_CHARS: usize = 100;

/// Identifies a service token (what the operator revokes it by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceTokenId(pub Uuid);

/// A service token as stored: never its plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceToken {
    /// The token's id.
    pub id: ServiceTokenId,
    /// The service that holds it, e.g. `bookings`.
    pub name: String,
    /// SHA-256 of the whole plaintext, prefix included: what a presented token is looked up by.
    pub token_hash: KeyHash,
    /// The last four characters, to tell tokens apart in a list.
    pub last_four: String,
    /// When the operator created it.
    pub created_at: DateTime<Utc>,
    /// When it stopped (or stops) working; `None` while it works.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ServiceToken {
    /// Whether the token works at `now`: not revoked, or revoked only later.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none_or(|at| at > now)
    }
}

/// Why a token could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateServiceTokenError {
    /// The name is empty once trimmed, longer than [`MAX_NAME_CHARS`], or holds a control
    /// character.
    #[error("A service token's name must be 1 to 100 characters, without control characters.")]
    InvalidName,
    /// The token could not be stored.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a presented token was refused. One message for all: a caller learns nothing about
/// which tokens exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceTokenError {
    /// The token is malformed, unknown or revoked: the caller is not told which.
    #[error("Invalid service token.")]
    Invalid,
    /// The tokens could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Stores service tokens. Every method fails only with [`StorageError`].
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait ServiceTokenRepository: Send + Sync {
    /// Stores a new token.
    async fn insert(&self, token: &ServiceToken) -> Result<(), StorageError>;
    /// The token whose hash is `hash`, revoked or not.
    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ServiceToken>, StorageError>;
    /// Every token, oldest first.
    async fn list(&self) -> Result<Vec<ServiceToken>, StorageError>;
    /// Revokes the token at `at` unless it already is; the token as stored afterwards, or
    /// `None` when there is no such token.
    async fn revoke(&self, id: ServiceTokenId, at: DateTime<Utc>) -> Result<Option<ServiceToken>, StorageError>;
}

/// The ports the service-token service needs.
#[derive(Clone)]
pub struct ServiceTokenPorts {
    /// Where the tokens are stored.
    pub tokens: Arc<dyn ServiceTokenRepository>,
    /// Hashes presented tokens and compares hashes in constant time.
    pub hasher: Arc<dyn KeyHasher>,
    /// Draws the tokens' random characters.
    pub secrets: Arc<dyn SecretGenerator>,
    /// Dates creations and revocations, and tells whether a token is still active.
    pub clock: Arc<dyn Clock>,
}

/// Creates, lists, revokes and checks service tokens.
#[derive(Clone)]
pub struct ServiceTokenService {
    ports: ServiceTokenPorts,
}

impl std::fmt::Debug for ServiceTokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceTokenService")
    }
}

impl ServiceTokenService {
    /// A service over `ports`.
    pub fn new(ports: ServiceTokenPorts) -> Self {
        Self { ports }
    }

    /// A new token for the service `name`; the plaintext is returned this once.
    pub async fn create(&self, name: &str) -> Result<(ServiceToken, SecretString), CreateServiceTokenError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(CreateServiceTokenError::InvalidName);
        }
        let secret = self.ports.secrets.base62(SERVICE_TOKEN_CHARS);
        let plaintext: SecretString = format!("{SERVICE_TOKEN_PREFIX}{}", secret.expose_secret()).into();
        let exposed = plaintext.expose_secret();
        let token = ServiceToken {
            id: ServiceTokenId(Uuid::now_v7()),
            name: name.to_owned(),
            token_hash: self.ports.hasher.hash(exposed),
            last_four: exposed[exposed.len() - 4..].to_owned(),
            created_at: self.ports.clock.now(),
            revoked_at: None,
        };
        self.ports.tokens.insert(&token).await?;
        Ok((token, plaintext))
    }

    /// Every token, revoked ones included, oldest first.
    pub async fn list(&self) -> Result<Vec<ServiceToken>, StorageError> {
        self.ports.tokens.list().await
    }

    /// Revokes a token for good; `None` when there is no such token.
    pub async fn revoke(&self, id: ServiceTokenId) -> Result<Option<ServiceToken>, StorageError> {
        self.ports.tokens.revoke(id, self.ports.clock.now()).await
    }

    /// Whether `presented` has the shape of a service token (no storage read).
    pub fn looks_like_token(presented: &str) -> bool {
        presented.strip_prefix(SERVICE_TOKEN_PREFIX).is_some_and(|secret| {
            secret.len() == SERVICE_TOKEN_CHARS && secret.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    }

    /// The active token `presented` is, or [`ServiceTokenError::Invalid`] (malformed, unknown
    /// or revoked alike).
    pub async fn authenticate(&self, presented: &str) -> Result<ServiceToken, ServiceTokenError> {
        if !Self::looks_like_token(presented) {
            return Err(ServiceTokenError::Invalid);
        }
        let hash = self.ports.hasher.hash(presented);
        let token = self.ports.tokens.find_by_hash(&hash).await?.ok_or(ServiceTokenError::Invalid)?;
        // The lookup was by hash; confirm in constant time before trusting it.
        if !self.ports.hasher.same(&hash, &token.token_hash) || !token.is_active(self.ports.clock.now()) {
            return Err(ServiceTokenError::Invalid);
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockClock, MockKeyHasher, MockSecretGenerator};

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn digest(plaintext: &str) -> KeyHash {
        let mut bytes = [0u8; 32];
        for (i, b) in plaintext.bytes().enumerate() {
            bytes[i % 32] ^= b;
        }
        KeyHash(bytes)
    }

    fn service(tokens: MockServiceTokenRepository, now: DateTime<Utc>) -> ServiceTokenService {
        let mut hasher = MockKeyHasher::new();
        hasher.expect_hash().returning(digest);
        hasher.expect_same().returning(|a, b| a == b);
        let mut secrets = MockSecretGenerator::new();
        secrets.expect_base62().returning(|len| "A1b2".repeat(len / 4).into());
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        ServiceTokenService::new(ServiceTokenPorts {
            tokens: Arc::new(tokens),
            hasher: Arc::new(hasher),
            secrets: Arc::new(secrets),
            clock: Arc::new(clock),
        })
    }

    fn stored(plaintext: &str, revoked_at: Option<DateTime<Utc>>) -> ServiceToken {
        ServiceToken {
            id: ServiceTokenId(Uuid::from_u128(7)),
            name: "bookings".into(),
            token_hash: digest(plaintext),
            last_four: plaintext[plaintext.len() - 4..].into(),
            created_at: at(0),
            revoked_at,
        }
    }

    #[tokio::test]
    async fn a_new_token_is_shown_once_and_only_its_hash_is_stored() {
        let mut tokens = MockServiceTokenRepository::new();
        tokens
            .expect_insert()
            .withf(|token| token.name == "bookings" && token.last_four == "A1b2")
            .times(1)
            .returning(|_| Ok(()));
        let (token, plaintext) = service(tokens, at(0)).create("  bookings ").await.unwrap();
        let plaintext = plaintext.expose_secret();
        assert!(ServiceTokenService::looks_like_token(plaintext), "{plaintext}");
        assert_eq!(token.token_hash, digest(plaintext));
        assert!(!format!("{token:?}").contains(plaintext), "the stored token holds no plaintext");
    }

    #[tokio::test]
    async fn names_are_checked_before_anything_is_stored() {
        let mut tokens = MockServiceTokenRepository::new();
        tokens.expect_insert().never();
        let svc = service(tokens, at(0));
        for bad in ["", "   ", &"x".repeat(101), "tab\there"] {
            assert_eq!(svc.create(bad).await.unwrap_err(), CreateServiceTokenError::InvalidName, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn malformed_unknown_and_revoked_tokens_are_refused_alike() {
        let good = format!("{SERVICE_TOKEN_PREFIX}{}", "A1b2".repeat(10));
        let revoked = format!("{SERVICE_TOKEN_PREFIX}{}", "Zz99".repeat(10));
        let (good_token, revoked_token) = (stored(&good, None), stored(&revoked, Some(at(5))));
        let mut tokens = MockServiceTokenRepository::new();
        tokens.expect_find_by_hash().returning(move |hash| {
            Ok([&good_token, &revoked_token].into_iter().find(|t| t.token_hash == *hash).cloned())
        });
        let svc = service(tokens, at(10));
        assert_eq!(svc.authenticate(&good).await.unwrap().name, "bookings");
        let unknown = format!("{SERVICE_TOKEN_PREFIX}{}", "Qq77".repeat(10));
        let api_key = format!("erp_live_{}", "A1b2".repeat(10));
        for refused in [revoked.as_str(), unknown.as_str(), api_key.as_str(), "ots_svc_short", ""] {
            assert_eq!(svc.authenticate(refused).await.unwrap_err(), ServiceTokenError::Invalid, "{refused}");
        }
    }

    #[test]
    fn a_token_revoked_later_still_works_until_then() {
        let token = stored("ots_svc_x", Some(at(5)));
        assert!(token.is_active(at(4)));
        assert!(!token.is_active(at(5)));
    }
}
