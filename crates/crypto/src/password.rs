//! Argon2id password hashing with the OWASP-recommended parameters (19 MiB, t=2, p=1), run on
//! tokio's blocking pool so a sign-in never stalls the async workers.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash as PhcHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use otesse_domain::ports::PasswordHasher;
use otesse_domain::user::PasswordHash;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

/// OWASP Password Storage Cheat Sheet: Argon2id, m=19456 KiB, t=2, p=1.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

#[derive(Clone)]
pub struct Argon2PasswordHasher {
    argon2: Arc<Argon2<'static>>,
    /// A hash of a random password, verified against when the email is unknown so that both
    /// failures cost the same.
    dummy: PasswordHash,
}

impl std::fmt::Debug for Argon2PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Argon2PasswordHasher")
    }
}

fn salt() -> SaltString {
    let mut bytes = [0u8; 16];
    #[allow(clippy::expect_used)]
    SystemRandom::new().fill(&mut bytes).expect("the operating system's random generator failed");
    #[allow(clippy::expect_used)]
    SaltString::encode_b64(&bytes).expect("16 bytes is a valid salt length")
}

fn hash_with(argon2: &Argon2<'_>, password: &[u8]) -> PasswordHash {
    #[allow(clippy::expect_used)]
    let salt = salt();
    #[allow(clippy::expect_used)]
    let phc = argon2.hash_password(password, &salt).expect("argon2 accepts any password with valid params");
    PasswordHash(phc.to_string())
}

impl Argon2PasswordHasher {
    pub fn new() -> Self {
        #[allow(clippy::expect_used)]
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("OWASP parameters are valid");
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy = hash_with(&argon2, b"no user has this password: it only costs time");
        Self { argon2: Arc::new(argon2), dummy }
    }
}

impl Default for Argon2PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: &SecretString) -> PasswordHash {
        let argon2 = self.argon2.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash_with(&argon2, password.expose_secret().as_bytes()))
            .await
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))
    }

    async fn verify(&self, password: &SecretString, hash: Option<PasswordHash>) -> bool {
        let known = hash.is_some();
        let encoded = hash.unwrap_or_else(|| self.dummy.clone());
        let argon2 = self.argon2.clone();
        let password = password.clone();
        let matched = tokio::task::spawn_blocking(move || {
            PhcHash::new(&encoded.0)
                .map(|parsed| argon2.verify_password(password.expose_secret().as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        known && matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_with_owasp_argon2id_parameters_and_verifies() {
        let hasher = Argon2PasswordHasher::new();
        let password: SecretString = "correct horse battery staple".into();
        let hash = hasher.hash(&password).await;
        assert!(hash.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", hash.0);
        assert!(!hash.0.contains("correct horse"));
        assert!(hasher.verify(&password, Some(hash.clone())).await);
        assert!(!hasher.verify(&"correct horse battery stapler".into(), Some(hash)).await);
    }

    #[tokio::test]
    async fn salts_differ_between_hashes_of_one_password() {
        let hasher = Argon2PasswordHasher::new();
        let password: SecretString = "same password twice".into();
        assert_ne!(hasher.hash(&password).await, hasher.hash(&password).await);
    }

    #[tokio::test]
    async fn unknown_users_and_garbage_hashes_never_verify() {
        let hasher = Argon2PasswordHasher::new();
        let password: SecretString = "no user has this password: it only costs time".into();
        assert!(!hasher.verify(&password, None).await, "the dummy hash must never let anyone in");
        assert!(!hasher.verify(&password, Some(PasswordHash("not a phc string".into()))).await);
    }
}
