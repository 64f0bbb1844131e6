//! Uniform base62 strings from the operating system's CSPRNG.

use otesse_domain::ports::SecretGenerator;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The largest multiple of 62 that fits a byte; bytes at or above it are rejected so that
/// every character is equally likely (no modulo bias).
const ACCEPT_BELOW: u8 = 248;

#[derive(Debug, Clone)]
pub struct RandomSecretGenerator {
    rng: SystemRandom,
}

impl RandomSecretGenerator {
    pub fn new() -> Self {
        Self { rng: SystemRandom::new() }
    }

    fn fill(&self, buf: &mut [u8]) {
        // The OS generator failing leaves nothing safe to do: refuse to make a weak key.
        #[allow(clippy::expect_used)]
        self.rng.fill(buf).expect("the operating system's random generator failed");
    }
}

impl Default for RandomSecretGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl SecretGenerator for RandomSecretGenerator {
    fn base62(&self, len: usize) -> SecretString {
        let mut out = String::with_capacity(len);
        let mut buf = [0u8; 64];
        while out.len() < len {
            self.fill(&mut buf);
            for &byte in &buf {
                if byte < ACCEPT_BELOW && out.len() < len {
                    out.push(ALPHABET[usize::from(byte % 62)] as char);
                }
            }
        }
        SecretString::from(out)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn produces_the_requested_length_from_the_alphabet() {
        let generator = RandomSecretGenerator::new();
        for len in [0, 1, 40, 43, 200] {
            let secret = generator.base62(len);
            assert_eq!(secret.expose_secret().len(), len);
            assert!(secret.expose_secret().bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn successive_secrets_differ() {
        let generator = RandomSecretGenerator::new();
        let a = generator.base62(40);
        let b = generator.base62(40);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn every_character_occurs_and_none_dominates() {
        // 62,000 draws: each character is expected ~1,000 times. A modulo bias or a broken
        // alphabet would push some far outside this generous band.
        let text = RandomSecretGenerator::new().base62(62_000);
        let mut counts = [0u32; 128];
        for byte in text.expose_secret().bytes() {
            counts[usize::from(byte)] += 1;
        }
        for &c in ALPHABET {
            let n = counts[usize::from(c)];
            assert!((800..1200).contains(&n), "{} occurred {n} times", c as char);
        }
    }
}
