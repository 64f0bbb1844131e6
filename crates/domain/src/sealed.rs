//! Secrets at rest (I4, I5): every secret the service keeps is sealed with AES-256-GCM under a
//! versioned master key and bound to its owner, named explicitly by a [`SecretOwner`], so a
//! ciphertext copied to another row does not open. The [`Rewrapper`] moves every sealed secret
//! to the newest master key while the server keeps serving.
//!
//! Invariant: the associated data of each kind of owner is byte for byte what the service has
//! always sealed with (pinned by a test of the crypto crate that opens ciphertexts made by
//! earlier code): changing it would make existing databases unreadable.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use crate::StorageError;
use crate::integration::CredentialField;
use crate::organization::OrganizationId;
use crate::ports::Clock;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// An AES-256-GCM ciphertext with the version of the master key that made it.
#[derive(Clone, PartialEq, Eq)]
pub struct Ciphertext {
    /// The master key version that sealed it; any configured version opens (I5).
    pub key_version: u32,
    /// Nonce followed by the sealed bytes and tag.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ciphertext(v{}, {} bytes)", self.key_version, self.bytes.len())
    }
}

/// Which of an outbound webhook endpoint's two secrets: during a rotation's overlap both sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointSlot {
    /// The secret new deliveries are signed with, shown once when made.
    Current,
    /// The secret it replaced, still signing alongside it until the rotation's overlap ends.
    Previous,
}

/// Whose secret a ciphertext is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretOwner {
    /// A field of a provider connection's credentials (I4).
    ConnectionCredential {
        /// The connection's organization.
        organization: OrganizationId,
        /// The connection the credentials were typed into.
        connection: Uuid,
        /// Which field of the connect form it is.
        field: CredentialField,
    },
    /// The signing secret of a Stripe webhook endpoint (W4).
    StripeSigningSecret {
        /// The endpoint's organization.
        organization: OrganizationId,
        /// The Stripe webhook endpoint's id.
        endpoint: Uuid,
    },
    /// One of an outbound webhook endpoint's signing secrets (W3). Both slots are bound alike:
    /// a rotation moves the current secret to the previous slot without re-sealing it.
    OutboundEndpointSecret {
        /// The endpoint's organization.
        organization: OrganizationId,
        /// The outbound endpoint's id.
        endpoint: Uuid,
        /// Which of its two secrets; not part of the associated data.
        slot: EndpointSlot,
    },
    /// A stored idempotent answer (W1), which may hold a secret shown once. `digest` is the
    /// first 16 bytes of SHA-256 over the caller, the idempotency key and the record
    /// ([`crate::idempotency::response_owner`]).
    IdempotentResponse {
        /// The caller's organization.
        organization: OrganizationId,
        /// The first 16 bytes of the record's SHA-256 digest (see above).
        digest: [u8; 16],
    },
    /// An OAuth connection's access or refresh token (I12).
    OAuthToken {
        /// The connection's organization.
        organization: OrganizationId,
        /// The connection.
        connection: Uuid,
        /// Which of its two tokens.
        token: crate::integration::TokenKind,
    },
    /// The PKCE verifier of an authorization in progress (I12); kept for minutes, never rewrapped.
    OAuthVerifier {
        /// The organization connecting.
        organization: OrganizationId,
        /// The authorization in progress.
        authorization: Uuid,
    },
}

impl SecretOwner {
    /// The organization the secret belongs to.
    pub fn organization_id(&self) -> OrganizationId {
        match *self {
            SecretOwner::ConnectionCredential { organization, .. }
            | SecretOwner::StripeSigningSecret { organization, .. }
            | SecretOwner::OutboundEndpointSecret { organization, .. }
            | SecretOwner::IdempotentResponse { organization, .. }
            | SecretOwner::OAuthToken { organization, .. }
            | SecretOwner::OAuthVerifier { organization, .. } => organization,
        }
    }

    /// The associated data sealed with the ciphertext.
    pub fn associated_data(&self) -> Vec<u8> {
        let (organization, id, kind) = match *self {
            SecretOwner::ConnectionCredential { organization, connection, field } => {
                (organization, connection, field.as_str())
            }
            SecretOwner::StripeSigningSecret { organization, endpoint } => {
                (organization, endpoint, "webhook_signing_secret")
            }
            SecretOwner::OutboundEndpointSecret { organization, endpoint, slot: _ } => {
                (organization, endpoint, "outbound_webhook_secret")
            }
            SecretOwner::IdempotentResponse { organization, digest } => {
                (organization, Uuid::from_bytes(digest), "idempotent_response")
            }
            SecretOwner::OAuthToken { organization, connection, token } => (organization, connection, token.as_str()),
            SecretOwner::OAuthVerifier { organization, authorization } => {
                (organization, authorization, "oauth_pkce_verifier")
            }
        };
        format!("otesse/credential/v1|{organization}|{id}|{kind}").into_bytes()
    }
}

/// A sealed secret and its owner, as the rewrap reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Whose secret it is: what it must be opened and sealed again with.
    pub owner: SecretOwner,
    /// The secret as sealed now.
    pub ciphertext: Ciphertext,
}

/// Why a ciphertext does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// It was sealed under a master key version that is no longer configured.
    #[error("no master key has version {0}")]
    UnknownKeyVersion(u32),
    /// Wrong key, altered bytes, or a ciphertext moved to another owner.
    #[error("the ciphertext does not authenticate")]
    Tampered,
}

/// AES-256-GCM with versioned master keys (I4, I5).
#[cfg_attr(any(test, feature = "mocks"), automock)]
pub trait CredentialCipher: Send + Sync {
    /// Seals `plaintext` under the newest master key with a fresh random nonce, bound to
    /// `owner` as associated data.
    fn encrypt(&self, plaintext: &SecretString, owner: &SecretOwner) -> Ciphertext;
    /// Opens a ciphertext made by any configured key version, if it was bound to `owner`.
    fn decrypt(&self, ciphertext: &Ciphertext, owner: &SecretOwner) -> Result<SecretString, DecryptError>;
    /// The version new ciphertexts get.
    fn current_version(&self) -> u32;
}

/// The rows that hold sealed secrets, for the rewrap.
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait SealedSecretStore: Send + Sync {
    /// Up to `limit` secrets in use sealed under a master key version below `version`:
    /// connection credentials, OAuth connections' tokens, Stripe endpoints' signing secrets, outbound endpoints' current
    /// secrets, and their previous secrets while those are still sent at `now` (a rotation's
    /// overlap). Idempotent answers and PKCE verifiers are not included: they are kept for a day
    /// and ten minutes.
    async fn below_version(
        &self,
        version: u32,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SealedSecret>, StorageError>;

    /// Replaces the owner's ciphertext with `new` only if it still is `secret.ciphertext`
    /// (compare-and-swap); false if it changed or vanished meanwhile.
    async fn swap(&self, secret: &SealedSecret, new: &Ciphertext) -> Result<bool, StorageError>;
}

/// What one rewrap pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewrapProgress {
    /// Secrets re-encrypted under the newest key.
    pub rewrapped: u64,
    /// Secrets that changed underneath (disconnected or rotated meanwhile) and were left alone.
    pub skipped: u64,
}

/// Why a rewrap pass stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewrapError {
    /// A secret that none of the configured master keys opens: the key that sealed it was
    /// removed before the rewrap finished.
    #[error("a sealed secret does not decrypt with the configured master keys")]
    Undecryptable,
    /// The sealed rows could not be read or swapped.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Re-encrypts every sealed secret under the newest master key (I5), in batches, while the
/// server keeps serving: each one is swapped only if it still holds the ciphertext read, so a
/// concurrent disconnect, reconnect or rotation is never overwritten.
#[derive(Clone)]
pub struct Rewrapper {
    store: Arc<dyn SealedSecretStore>,
    cipher: Arc<dyn CredentialCipher>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Rewrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rewrapper")
    }
}

impl Rewrapper {
    /// A rewrapper over the sealed rows of `store`, re-sealing with `cipher`'s newest key.
    pub fn new(store: Arc<dyn SealedSecretStore>, cipher: Arc<dyn CredentialCipher>, clock: Arc<dyn Clock>) -> Self {
        Self { store, cipher, clock }
    }

    /// Runs batches until no secret in use under an older key remains. An outbound endpoint's
    /// previous secret counts while it is still sent (its rotation's overlap), so that removing
    /// the old master key afterwards does not cut the overlap short.
    pub async fn run(&self, batch_size: u32) -> Result<RewrapProgress, RewrapError> {
        let current = self.cipher.current_version();
        let now = self.clock.now();
        let mut progress = RewrapProgress::default();
        // What could not be swapped, by owner and ciphertext: an outbound endpoint's current and
        // previous secret share an endpoint, and one changing underneath says nothing of the other.
        let mut stale = HashSet::new();
        loop {
            let batch = self.store.below_version(current, now, batch_size).await?;
            let fresh: Vec<_> =
                batch.into_iter().filter(|s| !stale.contains(&(s.owner, s.ciphertext.bytes.clone()))).collect();
            if fresh.is_empty() {
                return Ok(progress);
            }
            for secret in fresh {
                let plaintext =
                    self.cipher.decrypt(&secret.ciphertext, &secret.owner).map_err(|_| RewrapError::Undecryptable)?;
                let sealed = self.cipher.encrypt(&plaintext, &secret.owner);
                if self.store.swap(&secret, &sealed).await? {
                    progress.rewrapped += 1;
                } else {
                    stale.insert((secret.owner, secret.ciphertext.bytes));
                    progress.skipped += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::ports::MockClock;

    fn org() -> OrganizationId {
        OrganizationId(Uuid::from_u128(1))
    }

    #[test]
    fn every_owner_binds_its_organization_id_and_kind() {
        let endpoint = Uuid::from_u128(7);
        let current =
            SecretOwner::OutboundEndpointSecret { organization: org(), endpoint, slot: EndpointSlot::Current };
        let previous =
            SecretOwner::OutboundEndpointSecret { organization: org(), endpoint, slot: EndpointSlot::Previous };
        assert_eq!(current.associated_data(), previous.associated_data(), "a rotation moves a secret as it is");
        let text = String::from_utf8(current.associated_data()).unwrap();
        assert_eq!(text, format!("otesse/credential/v1|{}|{endpoint}|outbound_webhook_secret", org()));
        let stripe = SecretOwner::StripeSigningSecret { organization: org(), endpoint };
        let credential = SecretOwner::ConnectionCredential {
            organization: org(),
            connection: endpoint,
            field: CredentialField::ApiKey,
        };
        let response = SecretOwner::IdempotentResponse { organization: org(), digest: *endpoint.as_bytes() };
        let access = SecretOwner::OAuthToken {
            organization: org(),
            connection: endpoint,
            token: crate::integration::TokenKind::Access,
        };
        let refresh = SecretOwner::OAuthToken {
            organization: org(),
            connection: endpoint,
            token: crate::integration::TokenKind::Refresh,
        };
        let verifier = SecretOwner::OAuthVerifier { organization: org(), authorization: endpoint };
        let all = [current, stripe, credential, response, access, refresh, verifier].map(|o| o.associated_data());
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b, "owners of different kinds never share associated data");
            }
        }
        assert!(all.iter().all(|ad| String::from_utf8_lossy(ad).contains(&org().to_string())));
    }

    /// A readable fake cipher: version 2, bytes = the owner's associated data, `|`, the plaintext.
    fn cipher() -> MockCredentialCipher {
        let mut cipher = MockCredentialCipher::new();
        cipher.expect_current_version().return_const(2u32);
        cipher.expect_encrypt().returning(|plain, owner| {
            let mut bytes = owner.associated_data();
            bytes.push(b'|');
            bytes.extend(plain.expose_secret().bytes());
            Ciphertext { key_version: 2, bytes }
        });
        cipher.expect_decrypt().returning(|sealed, owner| {
            let prefix = owner.associated_data();
            if !sealed.bytes.starts_with(&prefix) {
                return Err(DecryptError::Tampered);
            }
            Ok(SecretString::from(String::from_utf8(sealed.bytes[prefix.len() + 1..].to_vec()).unwrap()))
        });
        cipher
    }

    fn sealed(owner: SecretOwner, plaintext: &str) -> SealedSecret {
        let mut bytes = owner.associated_data();
        bytes.push(b'|');
        bytes.extend(plaintext.bytes());
        SealedSecret { owner, ciphertext: Ciphertext { key_version: 1, bytes } }
    }

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(Utc::now);
        Arc::new(clock)
    }

    #[tokio::test]
    async fn each_old_secret_is_resealed_for_its_own_owner_and_rows_that_changed_are_skipped() {
        let endpoint = Uuid::from_u128(5);
        let current = sealed(
            SecretOwner::OutboundEndpointSecret { organization: org(), endpoint, slot: EndpointSlot::Current },
            "whsec_new",
        );
        let previous = sealed(
            SecretOwner::OutboundEndpointSecret { organization: org(), endpoint, slot: EndpointSlot::Previous },
            "whsec_old",
        );
        let credential = sealed(
            SecretOwner::ConnectionCredential {
                organization: org(),
                connection: Uuid::from_u128(9),
                field: CredentialField::ApiKey,
            },
            "pm-token",
        );
        let pending = Arc::new(Mutex::new(vec![current.clone(), previous.clone(), credential.clone()]));
        let mut store = MockSealedSecretStore::new();
        let listed = pending.clone();
        store.expect_below_version().returning(move |version, _, limit| {
            assert_eq!(version, 2);
            Ok(listed.lock().unwrap().iter().take(limit as usize).cloned().collect())
        });
        let swapped = pending.clone();
        store.expect_swap().returning(move |secret, new| {
            assert_eq!(new.key_version, 2);
            let plaintext = &new.bytes[secret.owner.associated_data().len() + 1..];
            let expected = &secret.ciphertext.bytes[secret.owner.associated_data().len() + 1..];
            assert_eq!(plaintext, expected, "the same secret, sealed again for the same owner");
            let mut pending = swapped.lock().unwrap();
            // The previous secret changed underneath (a second rotation): it is skipped.
            if secret.owner == previous.owner {
                return Ok(false);
            }
            pending.retain(|s| s != secret);
            Ok(true)
        });
        let rewrapper = Rewrapper::new(Arc::new(store), Arc::new(cipher()), clock());
        let progress = rewrapper.run(2).await.unwrap();
        assert_eq!(progress, RewrapProgress { rewrapped: 2, skipped: 1 });
        assert_eq!(*pending.lock().unwrap(), vec![previous], "only what could not be swapped is left");
    }

    #[tokio::test]
    async fn a_secret_that_changed_underneath_does_not_hold_back_the_other_secret_of_its_endpoint() {
        let endpoint = Uuid::from_u128(7);
        let current = sealed(
            SecretOwner::OutboundEndpointSecret { organization: org(), endpoint, slot: EndpointSlot::Current },
            "whsec_now",
        );
        let previous = sealed(
            SecretOwner::OutboundEndpointSecret { organization: org(), endpoint, slot: EndpointSlot::Previous },
            "whsec_before",
        );
        let mut store = MockSealedSecretStore::new();
        let mut seq = mockall::Sequence::new();
        // Batches of one: the current secret first; it cannot be swapped and is listed again.
        for listed in [vec![current.clone()], vec![current.clone(), previous.clone()], vec![current.clone()]] {
            store.expect_below_version().times(1).in_sequence(&mut seq).returning(move |_, _, _| Ok(listed.clone()));
        }
        let changed = current.clone();
        store.expect_swap().times(2).returning(move |secret, _| Ok(*secret != changed));
        let progress = Rewrapper::new(Arc::new(store), Arc::new(cipher()), clock()).run(1).await.unwrap();
        assert_eq!(progress, RewrapProgress { rewrapped: 1, skipped: 1 }, "the previous secret is still rewrapped");
    }

    #[tokio::test]
    async fn a_secret_no_key_opens_stops_the_rewrap() {
        let mut store = MockSealedSecretStore::new();
        let owner = SecretOwner::StripeSigningSecret { organization: org(), endpoint: Uuid::from_u128(3) };
        store.expect_below_version().returning(move |_, _, _| {
            Ok(vec![SealedSecret { owner, ciphertext: Ciphertext { key_version: 1, bytes: b"garbage".to_vec() } }])
        });
        store.expect_swap().never();
        let rewrapper = Rewrapper::new(Arc::new(store), Arc::new(cipher()), clock());
        assert_eq!(rewrapper.run(10).await.unwrap_err(), RewrapError::Undecryptable);
    }
}
