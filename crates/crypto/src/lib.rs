//! Crypto adapters for the domain's ports: CSPRNG key material in base62, SHA-256 key hashing
//! with constant-time comparison, Argon2id password hashing run off the async runtime, and the
//! versioned AES-256-GCM keyring that encrypts integration credentials, and the domain's
//! Stripe signature port over `otesse-webhook-signature`.

mod keyring;
mod password;
mod random;
mod webhook;

pub use keyring::{
    DEV_KEY_FILE, EntryProblem, Keyring, KeyringError, generate_master_key_entry, load_or_create_dev_key,
};
pub use password::{Argon2PasswordHasher, default_concurrent_hashes};
pub use random::RandomSecretGenerator;
pub use webhook::{StripeSignatures, stripe_signature};

use otesse_domain::api_key::KeyHash;
use otesse_domain::ports::KeyHasher;
use ring::digest;
use subtle::ConstantTimeEq;

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// SHA-256 of arbitrary bytes (request fingerprints).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// SHA-256 (ring) for API keys and session tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sha256KeyHasher;

impl KeyHasher for Sha256KeyHasher {
    fn hash(&self, plaintext: &str) -> KeyHash {
        let digest = digest::digest(&digest::SHA256, plaintext.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        KeyHash(out)
    }

    fn matches(&self, plaintext: &str, expected: &KeyHash) -> bool {
        self.same(&self.hash(plaintext), expected)
    }

    fn same(&self, a: &KeyHash, b: &KeyHash) -> bool {
        constant_time_eq(&a.0, &b.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_vector() {
        let hash = Sha256KeyHasher.hash("abc");
        let hex: String = hash.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn matches_only_the_right_plaintext() {
        let hash = Sha256KeyHasher.hash("erp_live_secret");
        assert!(Sha256KeyHasher.matches("erp_live_secret", &hash));
        assert!(!Sha256KeyHasher.matches("erp_live_secreT", &hash));
        assert!(!Sha256KeyHasher.matches("", &hash));
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
