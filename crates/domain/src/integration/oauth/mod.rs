//! OAuth2 providers (I12): what a catalog entry declares about its authorization server, the
//! deployment's client registrations, the records of an authorization in progress and of a
//! connection's tokens, and the ports that reach the authorization server and storage.
//!
//! The flow lives in `flow.rs` (authorization code with PKCE S256 and a single-use `state`),
//! refreshing and revoking in `refresh.rs`.
//!
//! Invariants: a token or a PKCE verifier is sealed with the keyring before it is stored
//! (bound to its owner, like a credential); a `state` is stored only as its SHA-256; a state
//! is consumed by the first callback that presents it, expired or not.

mod flow;
mod refresh;
mod spec;

use std::collections::HashMap;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use super::ProviderSlug;
use crate::StorageError;
use crate::event::DomainEvent;
use crate::notification::Notification;
use crate::organization::OrganizationId;
use crate::ports::{KeyHasher, SecretGenerator};
use crate::sealed::{Ciphertext, SecretOwner};
use crate::user::{UserDirectory, UserId};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

pub use flow::{AUTHORIZATION_TTL_SECS, Authorization, CallbackAnswer, CallbackError, ConnectStart};
pub use refresh::{REFRESH_AHEAD_SECS, REFRESH_BATCH, REFRESH_LEASE_SECS, TokenRefreshRun};
pub use spec::{OAuthSpec, RefreshTokens, TokenKind};

/// The deployment's registration at one provider (`OTESSE_PROVIDERS__<SLUG>__CLIENT_ID` and
/// `__CLIENT_SECRET`).
#[derive(Clone)]
pub struct OAuthApp {
    /// The client id the provider issued to this deployment.
    pub client_id: String,
    /// Its client secret; never printed.
    pub client_secret: SecretString,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// Every provider's registration, by slug. Never printed beyond the slugs.
#[derive(Clone, Default)]
pub struct OAuthApps(HashMap<String, OAuthApp>);

impl std::fmt::Debug for OAuthApps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl OAuthApps {
    /// The registrations, keyed by provider slug.
    pub fn new(by_slug: HashMap<String, OAuthApp>) -> Self {
        Self(by_slug)
    }

    /// The deployment's registration at `slug`, if it has one.
    pub fn get(&self, slug: &ProviderSlug) -> Option<&OAuthApp> {
        self.0.get(slug.as_str())
    }
}

/// What the OAuth operations of the integration service need besides its own ports.
#[derive(Clone)]
pub struct OAuthPorts {
    /// The deployment's registrations.
    pub apps: OAuthApps,
    /// Talks to the authorization servers.
    pub client: Arc<dyn OAuthClient>,
    /// Authorizations in progress and connections' tokens.
    pub repository: Arc<dyn OAuthRepository>,
    /// Draws each `state` and PKCE verifier.
    pub secrets: Arc<dyn SecretGenerator>,
    /// SHA-256: the stored form of a state, and the PKCE S256 challenge.
    pub hasher: Arc<dyn KeyHasher>,
    /// The users who start authorizations: the callback checks theirs again.
    pub users: Arc<dyn UserDirectory>,
    /// How long a refresher holds a connection's lease before another process may take it
    /// (longer than a token request may take): [`REFRESH_LEASE_SECS`] unless the deployment
    /// says otherwise.
    pub refresh_lease_secs: u32,
}

/// An authorization in progress: created by connect, consumed by the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    /// Its id (the sealed verifier's owner).
    pub id: Uuid,
    /// SHA-256 of the `state` sent to the provider; the state itself is never stored.
    pub state_hash: [u8; 32],
    /// The organization connecting.
    pub organization_id: OrganizationId,
    /// The user who started it; the connection is theirs.
    pub user_id: UserId,
    /// The provider being connected.
    pub provider: ProviderSlug,
    /// Sent again with the code exchange, as OAuth requires.
    pub redirect_uri: String,
    /// The PKCE verifier, sealed to this authorization; none for a provider without PKCE.
    pub verifier: Option<Ciphertext>,
    /// When connect started it.
    pub created_at: DateTime<Utc>,
    /// When its state stops being accepted (ten minutes on).
    pub expires_at: DateTime<Utc>,
}

impl PendingAuthorization {
    /// The owner its verifier is sealed to.
    pub fn verifier_owner(&self) -> SecretOwner {
        SecretOwner::OAuthVerifier { organization: self.organization_id, authorization: self.id }
    }
}

/// A connection's tokens as stored: both sealed to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTokens {
    /// The connection they authorize.
    pub connection_id: Uuid,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// The access token, sealed.
    pub access: Ciphertext,
    /// The refresh token, sealed, when the provider issued one.
    pub refresh: Option<Ciphertext>,
    /// When the access token stops working; `None` when the provider did not say.
    pub access_expires_at: Option<DateTime<Utc>>,
    /// When they were last stored.
    pub updated_at: DateTime<Utc>,
}

impl StoredTokens {
    /// The owner `token` is sealed to.
    pub fn owner(&self, token: TokenKind) -> SecretOwner {
        SecretOwner::OAuthToken { organization: self.organization_id, connection: self.connection_id, token }
    }
}

/// A token endpoint's successful answer, in memory only.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// The new access token.
    pub access_token: SecretString,
    /// Absent when the provider keeps the old one (non-rotating refresh).
    pub refresh_token: Option<SecretString>,
    /// The access token's lifetime, when the provider says.
    pub expires_in_secs: Option<u64>,
}

/// Why a token endpoint call failed. Details are status codes and OAuth error codes only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// `invalid_grant`: the code or refresh token is spent, expired or revoked.
    #[error("invalid_grant")]
    InvalidGrant,
    /// The deployment's client id or secret was refused (`invalid_client`, 401).
    #[error("the provider refused the client registration ({0})")]
    InvalidClient(String),
    /// The provider rate-limited the call.
    #[error("rate limited")]
    RateLimited,
    /// No usable answer: a timeout, a refused connection, a 5xx or an unreadable body.
    #[error("{0}")]
    Unreachable(String),
}

/// Talks to authorization servers (RFC 6749 token requests, RFC 7009 revocation).
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait OAuthClient: Send + Sync {
    /// `grant_type=authorization_code`, with the verifier when PKCE is used, client
    /// authentication by HTTP Basic.
    async fn exchange_code<'a>(
        &self,
        spec: &OAuthSpec,
        app: &OAuthApp,
        code: &SecretString,
        redirect_uri: &str,
        verifier: Option<&'a SecretString>,
    ) -> Result<TokenGrant, TokenError>;
    /// `grant_type=refresh_token`.
    async fn refresh(
        &self,
        spec: &OAuthSpec,
        app: &OAuthApp,
        refresh_token: &SecretString,
    ) -> Result<TokenGrant, TokenError>;
    /// Revokes `token` at `spec.revocation_url` (callers check there is one).
    async fn revoke(&self, spec: &OAuthSpec, app: &OAuthApp, token: &SecretString) -> Result<(), TokenError>;
}

/// Authorizations in progress and connections' tokens.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait OAuthRepository: Send + Sync {
    /// Stores an authorization in progress.
    async fn insert_authorization(&self, pending: &PendingAuthorization) -> Result<(), StorageError>;

    /// Deletes the authorization with this state hash and returns it (expired or not): a state
    /// is used once. `None` when there is none (unknown, or already used).
    async fn take_authorization(&self, state_hash: &[u8; 32]) -> Result<Option<PendingAuthorization>, StorageError>;

    /// The connection's tokens, if it has any.
    async fn tokens(&self, connection: Uuid) -> Result<Option<StoredTokens>, StorageError>;

    /// Takes the connection's refresh lease for `holder` until `until`, unless another holder
    /// has it beyond `now`. True if taken. Works across processes (one conditional UPDATE).
    async fn lease_refresh(
        &self,
        connection: Uuid,
        holder: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// Stores refreshed tokens and gives the lease up, only while `holder` holds it; false
    /// (nothing written) when it does not.
    async fn store_refreshed(&self, tokens: &StoredTokens, holder: Uuid) -> Result<bool, StorageError>;

    /// Connections' tokens whose access token expires at or before `before`, soonest first,
    /// at most `limit` of them (the background refresh's work).
    async fn tokens_expiring_before(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<StoredTokens>, StorageError>;

    /// Gives the lease up (if `holder` holds it).
    async fn release_refresh(&self, connection: Uuid, holder: Uuid) -> Result<(), StorageError>;

    /// Waits, up to `deadline`, for the connection's lease to be given up or to lapse, and
    /// answers its tokens then (`None`: still leased at the deadline, or gone).
    async fn wait_for_refresh(
        &self,
        connection: Uuid,
        deadline: DateTime<Utc>,
    ) -> Result<Option<StoredTokens>, StorageError>;

    /// In one transaction: the connection becomes `needs_reauthorization`, its tokens are
    /// deleted, `notification` (to the connecting user) and `event` are recorded. False
    /// (nothing written) if it is no longer connected.
    async fn mark_needs_reauthorization(
        &self,
        connection: Uuid,
        notification: &Notification,
        event: &DomainEvent,
    ) -> Result<bool, StorageError>;
}

/// RFC 4648 base64url without padding (PKCE's encoding of the challenge).
pub(crate) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// `application/x-www-form-urlencoded` value encoding (RFC 3986 unreserved characters kept).
pub(crate) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_7636_appendix_b() {
        // The verifier of RFC 7636 Appendix B and its S256 challenge's SHA-256 bytes.
        let digest = [
            19, 211, 30, 150, 26, 26, 216, 236, 47, 22, 177, 12, 76, 152, 46, 8, 118, 168, 120, 173, 109, 241, 68, 86,
            110, 225, 137, 74, 203, 112, 249, 195,
        ];
        assert_eq!(base64url(&digest), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
    }

    #[test]
    fn form_encoding_keeps_only_unreserved_characters() {
        assert_eq!(form_encode("a b/c?d=e&f~_.-"), "a%20b%2Fc%3Fd%3De%26f~_.-");
    }
}
