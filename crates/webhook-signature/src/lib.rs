//! Signing and verifying webhooks the Standard Webhooks way (<https://www.standardwebhooks.com>),
//! as Otesse signs its outbound deliveries (W3). A small crate with no server dependencies, so
//! that any Rust service receiving Otesse's webhooks can check them with the same code.
//!
//! The scheme: a secret `whsec_<base64 of the key bytes>`; three headers, `webhook-id`,
//! `webhook-timestamp` (Unix seconds) and `webhook-signature`, the last holding one or more
//! space-separated `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. Several signatures
//! appear while a secret is being rotated; any one that matches is enough.
//!
//! ```
//! use otesse_webhook_signature::{WebhookSecret, sign, verify};
//! let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! let signature = sign(&secret, "msg_1", 1_700_000_000, b"{}");
//! assert!(verify(&[secret], "msg_1", "1700000000", &signature, b"{}", 1_700_000_010).is_ok());
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// How far a timestamp may be from now, either way, by default (the reference libraries' value).
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;

const PREFIX: &str = "whsec_";

/// A signing secret: the raw key bytes. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the secret is not base64 (after an optional whsec_ prefix)")]
    NotBase64,
    #[error("the secret must hold 24 to 64 bytes")]
    WrongLength,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (or the bare base64, as the reference libraries accept).
    pub fn parse(raw: &str) -> Result<Self, SecretError> {
        let encoded = raw.strip_prefix(PREFIX).unwrap_or(raw);
        let bytes = STANDARD.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SecretError::WrongLength);
        }
        Ok(Self(bytes))
    }

    /// 32 fresh random bytes.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        SystemRandom::new().fill(&mut bytes).expect("the system CSPRNG is available");
        Self(bytes)
    }

    /// The `whsec_...` form: what is shown to the endpoint's owner, once.
    pub fn expose_whsec(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.0)
    }
}

fn signed_content(msg_id: &str, timestamp: i64, payload: &[u8]) -> Vec<u8> {
    let mut content = format!("{msg_id}.{timestamp}.").into_bytes();
    content.extend_from_slice(payload);
    content
}

/// `v1,<base64>`: the signature of one message under one secret.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
    let tag = hmac::sign(&secret.key(), &signed_content(msg_id, timestamp, payload));
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

/// The three headers of a delivery, signed with every given secret (the new one and the old
/// one while a secret is rotated), as `(name, value)` pairs.
pub fn headers(secrets: &[WebhookSecret], msg_id: &str, timestamp: i64, payload: &[u8]) -> [(&'static str, String); 3] {
    let signatures: Vec<String> = secrets.iter().map(|s| sign(s, msg_id, timestamp, payload)).collect();
    [
        ("webhook-id", msg_id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signatures.join(" ")),
    ]
}

/// Why a delivery does not verify. Never holds a secret or an expected signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("a webhook header is missing or empty")]
    MissingHeader,
    #[error("webhook-timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("the message is too old")]
    Stale,
    #[error("the message is dated in the future")]
    FutureDated,
    #[error("no v1 signature matches")]
    NoMatch,
}

/// Checks a delivery against any of `secrets`, within [`DEFAULT_TOLERANCE_SECS`] of `now`.
pub fn verify(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    payload: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    verify_with_tolerance(secrets, msg_id, timestamp, signature_header, payload, now, DEFAULT_TOLERANCE_SECS)
}

/// [`verify`] with another tolerance, in seconds.
pub fn verify_with_tolerance(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    payload: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    if msg_id.is_empty() || timestamp.is_empty() || signature_header.trim().is_empty() {
        return Err(VerifyError::MissingHeader);
    }
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if now.saturating_sub(timestamp) > tolerance_secs {
        return Err(VerifyError::Stale);
    }
    if timestamp.saturating_sub(now) > tolerance_secs {
        return Err(VerifyError::FutureDated);
    }
    let content = signed_content(msg_id, timestamp, payload);
    let candidates: Vec<Vec<u8>> = signature_header
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .filter(|tag| !tag.is_empty())
        .collect();
    // ring's verify compares in constant time.
    let matched =
        secrets.iter().any(|secret| candidates.iter().any(|tag| hmac::verify(&secret.key(), &content, tag).is_ok()));
    if matched { Ok(()) } else { Err(VerifyError::NoMatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks test vector (the reference libraries' tests).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> WebhookSecret {
        WebhookSecret::parse(SECRET).unwrap()
    }

    fn check(signature: &str, payload: &[u8], now: i64) -> Result<(), VerifyError> {
        verify(&[secret()], MSG_ID, &TIMESTAMP.to_string(), signature, payload, now)
    }

    #[test]
    fn the_standard_test_vector_signs_and_verifies() {
        assert_eq!(sign(&secret(), MSG_ID, TIMESTAMP, PAYLOAD), EXPECTED);
        assert_eq!(check(EXPECTED, PAYLOAD, TIMESTAMP), Ok(()));
    }

    #[test]
    fn tampered_empty_and_truncated_signatures_fail() {
        assert_eq!(check(EXPECTED, br#"{"test": 2432232315}"#, TIMESTAMP), Err(VerifyError::NoMatch));
        assert_eq!(
            verify(&[secret()], "msg_other", &TIMESTAMP.to_string(), EXPECTED, PAYLOAD, TIMESTAMP),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&[secret()], MSG_ID, &(TIMESTAMP + 1).to_string(), EXPECTED, PAYLOAD, TIMESTAMP),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(check("v1,", PAYLOAD, TIMESTAMP), Err(VerifyError::NoMatch));
        assert_eq!(check(&EXPECTED[..EXPECTED.len() - 4], PAYLOAD, TIMESTAMP), Err(VerifyError::NoMatch));
        assert_eq!(
            check("v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", PAYLOAD, TIMESTAMP),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(check("", PAYLOAD, TIMESTAMP), Err(VerifyError::MissingHeader));
        let other = WebhookSecret::generate();
        assert_eq!(
            verify(&[other], MSG_ID, &TIMESTAMP.to_string(), EXPECTED, PAYLOAD, TIMESTAMP),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn stale_and_future_dated_messages_fail() {
        assert_eq!(check(EXPECTED, PAYLOAD, TIMESTAMP + 301), Err(VerifyError::Stale));
        assert_eq!(check(EXPECTED, PAYLOAD, TIMESTAMP - 301), Err(VerifyError::FutureDated));
        assert_eq!(check(EXPECTED, PAYLOAD, TIMESTAMP + 300), Ok(()));
        assert_eq!(
            verify(&[secret()], MSG_ID, "yesterday", EXPECTED, PAYLOAD, TIMESTAMP),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn one_match_among_several_signatures_is_enough_during_a_rotation() {
        let old = secret();
        let new = WebhookSecret::generate();
        let [id, timestamp, signature] = headers(&[new.clone(), old.clone()], MSG_ID, TIMESTAMP, PAYLOAD);
        assert_eq!((id.0, timestamp.0, signature.0), ("webhook-id", "webhook-timestamp", "webhook-signature"));
        assert_eq!(signature.1.split(' ').count(), 2);
        assert!(signature.1.contains(EXPECTED), "the old secret's signature is still sent");
        for receiver_knows in [old, new] {
            let verified = verify(&[receiver_knows], MSG_ID, &timestamp.1, &signature.1, PAYLOAD, TIMESTAMP);
            assert_eq!(verified, Ok(()));
        }
        let noisy = format!("v1,AAAA v1a,xyz {EXPECTED}");
        assert_eq!(check(&noisy, PAYLOAD, TIMESTAMP), Ok(()));
    }

    #[test]
    fn secrets_round_trip_and_never_print() {
        let secret = WebhookSecret::generate();
        let shown = secret.expose_whsec();
        assert!(shown.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&shown).unwrap(), secret);
        assert_eq!(WebhookSecret::parse(&shown["whsec_".len()..]).unwrap(), secret, "bare base64 too");
        assert!(!format!("{secret:?}").contains(&shown[6..]));
        assert_eq!(WebhookSecret::parse("whsec_not base64!"), Err(SecretError::NotBase64));
        assert_eq!(WebhookSecret::parse("whsec_AAAA"), Err(SecretError::WrongLength));
    }
}
