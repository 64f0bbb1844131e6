//! Idempotency keys (W1): a create request carrying `Idempotency-Key` runs once; a retry with
//! the same key and the same request gets the first answer back, byte for byte.
//!
//! Records are scoped to the caller ([`CallerScope`]: an API key or a user), so two callers
//! never share a key's answer; kept at least 24 hours ([`KEEP_FOR_HOURS`]), then pruned. The
//! first response's body may hold a secret shown once (a created key), so it is stored sealed
//! with the master keyring, bound to its caller, key and record ([`response_owner`]).
//!
//! The HTTP side (reading the header, hashing, replaying) lives in the server; this module holds
//! the rules it applies and the [`IdempotencyStore`] port.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::StorageError;
use crate::api_key::ApiKeyId;
use crate::organization::OrganizationId;
use crate::sealed::{Ciphertext, SecretOwner};
use crate::user::UserId;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// How long an answer is replayed. An older record counts as absent and may be pruned.
pub const KEEP_FOR_HOURS: i64 = 24;

/// Records created before this instant are expired at `now`.
pub fn expiry_cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::hours(KEEP_FOR_HOURS)
}

/// How long a claim holds its key without an answer. A request that dies while running (its
/// process crashed, its future was dropped) leaves its claim unfinished; once the lease has
/// run out the key is free again, so retries are refused for minutes, not a day. Far longer
/// than any request takes (provider calls time out after seconds).
pub const CLAIM_LEASE_MINUTES: i64 = 5;

/// Unfinished claims made before this instant are free again at `now`.
pub fn lease_cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::minutes(CLAIM_LEASE_MINUTES)
}

/// A client's idempotency key: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// An `Idempotency-Key` that is empty, longer than 255 bytes, or holds a space or a non-ASCII
/// or control character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    /// The longest key allowed, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Takes `raw` as it is, untrimmed: 1 to [`Self::MAX_LEN`] visible ASCII characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidIdempotencyKey> {
        let ok = (1..=Self::MAX_LEN).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        if ok { Ok(Self(raw.to_owned())) } else { Err(InvalidIdempotencyKey) }
    }

    /// The key as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose key it is: `key:<api key id>` or `user:<user id>`. Only these two shapes exist.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallerScope(String);

impl CallerScope {
    /// The scope of requests made with the key `id`.
    pub fn api_key(id: ApiKeyId) -> Self {
        Self(format!("key:{}", id.0))
    }

    /// The scope of requests made by the user `id` (through a session).
    pub fn user(id: UserId) -> Self {
        Self(format!("user:{}", id.0))
    }

    /// The stored form, `key:<id>` or `user:<id>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What identifies "the same request": SHA-256 of [`Fingerprint::preimage`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The bytes hashed: method and path on one line, then the body as received. A method has
    /// no space and a path no line break, so two different requests never share a preimage.
    pub fn preimage(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(method.len() + path.len() + 2 + body.len());
        bytes.extend_from_slice(method.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(path.as_bytes());
        bytes.push(b'\n');
        bytes.extend_from_slice(body);
        bytes
    }

    /// The SHA-256 digest of the preimage.
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// The 32 digest bytes, as stored.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint(")?;
        self.0[..4].iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        write!(f, "..)")
    }
}

/// Whether an answer with this status is kept and replayed. Not kept, so that a retry runs
/// again: server failures (5xx), conflicts and rate limits (409, 429: the state or the budget
/// may have changed by the retry), and refusals about the credential rather than the request
/// (401, 403: an IP allow-list refusal must not be replayed to the same key from an allowed
/// address). Everything else, validation failures included, is the request's answer.
pub fn is_replayable(status: u16) -> bool {
    !matches!(status, 401 | 403 | 409 | 429 | 500..)
}

/// What a stored body is sealed to (AES-GCM associated data): the caller's organization and a
/// 128-bit digest of the caller scope, the idempotency key and the record, so a ciphertext
/// moved to another row, key or caller no longer opens. `sha256` is the adapter's hash (the
/// domain does no cryptography itself).
pub fn response_owner(
    organization: OrganizationId,
    scope: &CallerScope,
    key: &IdempotencyKey,
    record: Uuid,
    sha256: impl FnOnce(&[u8]) -> [u8; 32],
) -> SecretOwner {
    // Neither a scope nor a key holds a line break: the fields cannot run into each other.
    let preimage = format!("otesse/idempotency/v1\n{}\n{}\n{record}", scope.as_str(), key.as_str());
    let digest = sha256(preimage.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    SecretOwner::IdempotentResponse { organization, digest: first }
}

/// The first answer, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status of the first answer.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: String,
    /// The answer's `Location`, where it has one worth replaying (see the server's `ShownOnce`).
    pub location: Option<String>,
    /// The body, sealed (see [`response_owner`]).
    pub body: Ciphertext,
}

/// What `begin` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key is new for this caller: run the request, then `complete` or `abandon`.
    New {
        /// The record claimed for this request: the id to `complete` or `abandon`.
        record: Uuid,
    },
    /// The same request is still running (or its process died while running it).
    InProgress,
    /// The same key was used with another request.
    Mismatch,
    /// Done before: replay this.
    Completed {
        /// The record that holds the answer.
        record: Uuid,
        /// The first answer, to send again.
        response: StoredResponse,
    },
}

/// Stores idempotency records: claims, first answers and pruning. Every method fails only with
/// [`StorageError`].
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `(scope, key)` for a request with this fingerprint, or reports what holds it:
    /// `Mismatch` when the holder's fingerprint differs (whatever its state), else `InProgress`
    /// or `Completed`. A record created before [`expiry_cutoff`]`(now)`, or an unfinished one
    /// claimed before [`lease_cutoff`]`(now)`, counts as absent and is replaced. Of concurrent
    /// calls with one scope and key, exactly one gets `New`.
    async fn begin(
        &self,
        scope: &CallerScope,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        now: DateTime<Utc>,
    ) -> Result<Begin, StorageError>;

    /// Stores the answer of the request that got `New`; later `begin`s replay it.
    async fn complete(&self, record: Uuid, response: &StoredResponse) -> Result<(), StorageError>;

    /// Forgets a `New` record (no answer worth keeping): a retry may run again.
    async fn abandon(&self, record: Uuid) -> Result<(), StorageError>;

    /// Deletes records created before `before`; how many.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse("9f1c2d34-5e6f-4a7b-8c9d-0e1f2a3b4c5d").is_ok());
        assert!(IdempotencyKey::parse("!~").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in [
            String::new(),
            "k".repeat(256),
            "with space".into(),
            "tab\t".into(),
            "nul\0".into(),
            "del\x7f".into(),
            "line\n".into(),
            "é".into(),
        ] {
            assert_eq!(IdempotencyKey::parse(&bad), Err(InvalidIdempotencyKey), "{bad:?}");
        }
    }

    #[test]
    fn scopes_name_the_kind_of_caller() {
        let id = Uuid::nil();
        assert_eq!(CallerScope::api_key(ApiKeyId(id)).as_str(), format!("key:{id}"));
        assert_eq!(CallerScope::user(UserId(id)).as_str(), format!("user:{id}"));
        assert_ne!(CallerScope::api_key(ApiKeyId(id)), CallerScope::user(UserId(id)));
    }

    #[test]
    fn the_preimage_covers_method_path_and_body_unambiguously() {
        let base = Fingerprint::preimage("POST", "/v1/customers", br#"{"name":"Ada"}"#);
        assert_eq!(base, b"POST /v1/customers\n{\"name\":\"Ada\"}");
        assert_ne!(base, Fingerprint::preimage("PUT", "/v1/customers", br#"{"name":"Ada"}"#));
        assert_ne!(base, Fingerprint::preimage("POST", "/v1/api-keys", br#"{"name":"Ada"}"#));
        assert_ne!(base, Fingerprint::preimage("POST", "/v1/customers", br#"{"name":"Ada" }"#));
        // Moving bytes between the path and the body changes the preimage.
        assert_ne!(Fingerprint::preimage("POST", "/v1/a", b"b"), Fingerprint::preimage("POST", "/v1/ab", b""));
        assert_eq!(format!("{:?}", Fingerprint::from_digest([0xab; 32])), "Fingerprint(abababab..)");
    }

    #[test]
    fn only_answers_about_the_request_are_replayed() {
        for kept in [200, 201, 204, 400, 404, 405, 413, 415, 422] {
            assert!(is_replayable(kept), "{kept}");
        }
        for not_kept in [401, 403, 409, 429, 500, 502, 503, 504, 599] {
            assert!(!is_replayable(not_kept), "{not_kept}");
        }
    }

    #[test]
    fn records_expire_after_a_day_and_unfinished_claims_after_minutes() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(expiry_cutoff(now), now - Duration::hours(24));
        assert_eq!(lease_cutoff(now), now - Duration::minutes(5));
    }

    /// A stand-in digest (the real one is SHA-256): the preimage's bytes, folded.
    fn fold(bytes: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in bytes.iter().enumerate() {
            out[i % 32] = out[i % 32].rotate_left(3) ^ b;
        }
        out
    }

    #[test]
    fn a_sealed_answer_is_bound_to_its_organization_caller_key_and_record() {
        let org = OrganizationId(Uuid::from_u128(1));
        let scope = CallerScope::user(UserId(Uuid::from_u128(2)));
        let key = IdempotencyKey::parse("k1").unwrap();
        let record = Uuid::from_u128(3);
        let binding = response_owner(org, &scope, &key, record, fold);
        assert_eq!(binding, response_owner(org, &scope, &key, record, fold), "deterministic");
        assert!(matches!(binding, SecretOwner::IdempotentResponse { organization, .. } if organization == org));
        let mut seen = None;
        response_owner(org, &scope, &key, record, |bytes| {
            seen = Some(bytes.to_vec());
            fold(bytes)
        });
        assert_eq!(seen.unwrap(), format!("otesse/idempotency/v1\n{}\nk1\n{record}", scope.as_str()).into_bytes());

        let others = [
            response_owner(OrganizationId(Uuid::from_u128(9)), &scope, &key, record, fold),
            response_owner(org, &CallerScope::api_key(ApiKeyId(Uuid::from_u128(2))), &key, record, fold),
            response_owner(org, &scope, &IdempotencyKey::parse("k2").unwrap(), record, fold),
            response_owner(org, &scope, &key, Uuid::from_u128(4), fold),
        ];
        for other in others {
            assert_ne!(other.associated_data(), binding.associated_data());
        }
    }
}
