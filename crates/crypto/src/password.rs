//! Argon2id password hashing with the OWASP-recommended parameters (19 MiB, t=2, p=1), run on
//! tokio's blocking pool so a sign-in never stalls the async workers.
//!
//! Each hash holds 19 MiB while it runs, so a burst of sign-ins could exhaust memory: at most
//! `concurrent` hashes run at once, at most `queued` more wait for a turn, and anything past
//! that is refused at once ([`HashingBusy`]) without doing any work.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash as PhcHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use otesse_domain::ports::{HashingBusy, PasswordHasher};
use otesse_domain::user::PasswordHash;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

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
    /// Turns to run a hash.
    running: Arc<Semaphore>,
    /// Requests waiting for a turn, and how many may.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// Counts a waiting request for as long as it waits.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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

/// Hashes at once by default: one per core, at least two (19 MiB each).
pub fn default_concurrent_hashes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

impl Argon2PasswordHasher {
    /// With [`default_concurrent_hashes`] running and four times as many waiting.
    pub fn new() -> Self {
        let concurrent = default_concurrent_hashes();
        Self::bounded(concurrent, concurrent * 4)
    }

    /// At most `concurrent` hashes at once (at least one) and `queued` more waiting.
    pub fn bounded(concurrent: usize, queued: usize) -> Self {
        #[allow(clippy::expect_used)]
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("OWASP parameters are valid");
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy = hash_with(&argon2, b"no user has this password: it only costs time");
        Self {
            argon2: Arc::new(argon2),
            dummy,
            running: Arc::new(Semaphore::new(concurrent.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: queued,
        }
    }

    /// Runs `work` on the blocking pool when a turn is free, waiting for one if few enough
    /// already wait; refuses otherwise.
    async fn in_turn<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashingBusy> {
        let permit = match self.running.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(HashingBusy);
                }
                let _waiting = Waiting(self.waiting.clone());
                self.running.clone().acquire_owned().await.map_err(|_| HashingBusy)?
            }
        };
        let result = tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await;
        Ok(result.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic())))
    }
}

impl Default for Argon2PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: &SecretString) -> Result<PasswordHash, HashingBusy> {
        let argon2 = self.argon2.clone();
        let password = password.clone();
        self.in_turn(move || hash_with(&argon2, password.expose_secret().as_bytes())).await
    }

    async fn verify(&self, password: &SecretString, hash: Option<PasswordHash>) -> Result<bool, HashingBusy> {
        let known = hash.is_some();
        let encoded = hash.unwrap_or_else(|| self.dummy.clone());
        let argon2 = self.argon2.clone();
        let password = password.clone();
        let matched = self
            .in_turn(move || {
                PhcHash::new(&encoded.0)
                    .map(|parsed| argon2.verify_password(password.expose_secret().as_bytes(), &parsed).is_ok())
                    .unwrap_or(false)
            })
            .await?;
        Ok(known && matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_with_owasp_argon2id_parameters_and_verifies() {
        let hasher = Argon2PasswordHasher::new();
        let password: SecretString = "correct horse battery staple".into();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", hash.0);
        assert!(!hash.0.contains("correct horse"));
        assert_eq!(hasher.verify(&password, Some(hash.clone())).await, Ok(true));
        assert_eq!(hasher.verify(&"correct horse battery stapler".into(), Some(hash)).await, Ok(false));
    }

    #[tokio::test]
    async fn salts_differ_between_hashes_of_one_password() {
        let hasher = Argon2PasswordHasher::new();
        let password: SecretString = "same password twice".into();
        assert_ne!(hasher.hash(&password).await.unwrap(), hasher.hash(&password).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_users_and_garbage_hashes_never_verify() {
        let hasher = Argon2PasswordHasher::new();
        let password: SecretString = "no user has this password: it only costs time".into();
        assert_eq!(hasher.verify(&password, None).await, Ok(false), "the dummy hash must never let anyone in");
        assert_eq!(hasher.verify(&password, Some(PasswordHash("not a phc string".into()))).await, Ok(false));
    }

    #[tokio::test]
    async fn past_the_running_and_waiting_hashes_a_request_is_refused_without_work() {
        // One turn, one waiting place: of three hashes started together, one runs, one waits,
        // and the third is refused at once.
        let hasher = Argon2PasswordHasher::bounded(1, 1);
        let held = hasher.running.clone().try_acquire_owned().unwrap();
        let password: SecretString = "a long enough password".into();
        let waiting = {
            let hasher = hasher.clone();
            let password = password.clone();
            tokio::spawn(async move { hasher.hash(&password).await })
        };
        // The waiter counts itself before it waits; wait for that, not for time.
        while hasher.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(hasher.verify(&password, None).await, Err(HashingBusy));
        assert_eq!(hasher.hash(&password).await, Err(HashingBusy));
        drop(held);
        let hash = waiting.await.unwrap().expect("the waiting hash ran once a turn was free");
        assert_eq!(hasher.verify(&password, Some(hash)).await, Ok(true));
        assert_eq!(hasher.waiting.load(Ordering::Acquire), 0);
    }
}
