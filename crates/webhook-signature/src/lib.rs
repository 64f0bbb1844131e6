//! Signing and verifying webhooks the Standard Webhooks way (<https://www.standardwebhooks.com>),
//! as Otesse signs its outbound deliveries (W3), plus the [`stripe`] scheme for the deliveries
//! Otesse receives. A small crate with no server, HTTP or async dependencies, so that any Rust
//! service receiving Otesse's webhooks can check them with the same code.
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
//! assert!(verify([&secret], "msg_1", "1700000000", &signature, b"{}", 1_700_000_010).is_ok());
//! ```

#![deny(missing_docs)]

pub mod stripe;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretSlice};
use subtle::ConstantTimeEq;

/// How far a timestamp may be from now, either way, by default (the reference libraries' value).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The header carrying the message id (the same on every retry: an idempotency key).
pub const HEADER_ID: &str = "webhook-id";
/// The header carrying the attempt's time, in Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header carrying the space-separated signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

const PREFIX: &str = "whsec_";
const TAG_LEN: usize = 32;
/// The spec's bounds for a symmetric secret: 192 to 512 bits.
const SECRET_LEN: std::ops::RangeInclusive<usize> = 24..=64;

/// Secrets are read with or without their `=` padding, as the Python reference does.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A signing secret: the raw key bytes, zeroed on drop and never printed.
#[derive(Clone)]
pub struct WebhookSecret(SecretSlice<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// Why a string is not a webhook secret. Never holds the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// What follows the optional `whsec_` prefix is not standard base64 (padding is optional).
    #[error("the secret is not base64 (after an optional whsec_ prefix)")]
    NotBase64,
    /// The decoded key is shorter than 24 bytes (192 bits) or longer than 64 (512 bits), the
    /// spec's bounds for a symmetric secret.
    #[error("the secret must hold 24 to 64 bytes")]
    WrongLength,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`, or the bare base64 as the reference libraries accept.
    pub fn parse(raw: &str) -> Result<Self, SecretError> {
        let encoded = raw.strip_prefix(PREFIX).unwrap_or(raw);
        let bytes = SECRET_BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        // Wrapped before the length check so that a refused key is zeroed too.
        let secret = Self(bytes.into());
        if !SECRET_LEN.contains(&secret.0.expose_secret().len()) {
            return Err(SecretError::WrongLength);
        }
        Ok(secret)
    }

    /// 32 fresh random bytes from the operating system.
    ///
    /// # Panics
    /// If the operating system's random source fails, which leaves nothing safe to do.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        SystemRandom::new().fill(&mut bytes).expect("the system CSPRNG is available");
        Self(bytes.into())
    }

    /// The `whsec_...` form: what is shown to the endpoint's owner, once, or stored sealed.
    pub fn expose_whsec(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(self.0.expose_secret()))
    }

    fn key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.0.expose_secret())
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
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

/// The three headers of a delivery as `(name, value)` pairs, signed with every given secret:
/// the new one and the old one while a secret is rotated. With no secret at all the signature
/// header is empty, and every receiver will refuse the delivery.
pub fn signed_headers<'a>(
    secrets: impl IntoIterator<Item = &'a WebhookSecret>,
    msg_id: &str,
    timestamp: i64,
    payload: &[u8],
) -> [(&'static str, String); 3] {
    let signatures: Vec<String> = secrets.into_iter().map(|s| sign(s, msg_id, timestamp, payload)).collect();
    [
        (HEADER_ID, msg_id.to_owned()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_SIGNATURE, signatures.join(" ")),
    ]
}

/// Why a delivery does not verify. Never holds a secret or an expected signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The named header is absent (passed as `""`).
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a whole number of seconds in `i64` range: spaces, fractions
    /// and hexadecimal are refused.
    #[error("webhook-timestamp is not a Unix time in seconds")]
    BadTimestamp,
    /// The timestamp is further in the past than the tolerance allows: a replay or a very late
    /// delivery.
    #[error("the message is older than the tolerance")]
    Stale,
    /// The timestamp is further in the future than the tolerance allows: the sender's clock is
    /// off, or the message was forged ahead of time.
    #[error("the message is dated further in the future than the tolerance")]
    FutureDated,
    /// Not one `v1,<base64 of 32 bytes>` entry: empty, truncated, or only other versions.
    #[error("webhook-signature holds no well-formed v1 signature")]
    MalformedSignature,
    /// Well-formed signatures, none made with a known secret over this id, time and body.
    #[error("no v1 signature matches")]
    NoMatch,
}

/// Checks a delivery against any of `secrets` (several while a secret is rotated; `[&one]` for
/// one), within [`DEFAULT_TOLERANCE`] of `now` (Unix seconds). Pass `""` for an absent header.
pub fn verify<'a>(
    secrets: impl IntoIterator<Item = &'a WebhookSecret>,
    msg_id: &str,
    timestamp: &str,
    signature: &str,
    payload: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    verify_with_tolerance(secrets, msg_id, timestamp, signature, payload, now, DEFAULT_TOLERANCE)
}

/// [`verify`] with another tolerance.
pub fn verify_with_tolerance<'a>(
    secrets: impl IntoIterator<Item = &'a WebhookSecret>,
    msg_id: &str,
    timestamp: &str,
    signature: &str,
    payload: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    for (name, value) in [(HEADER_ID, msg_id), (HEADER_TIMESTAMP, timestamp), (HEADER_SIGNATURE, signature)] {
        if value.trim().is_empty() {
            return Err(VerifyError::MissingHeader(name));
        }
    }
    let timestamp = check_timestamp(timestamp, now, tolerance)?;
    // Entries of other versions (`v1a,` asymmetric) or that do not decode are skipped, as the
    // reference libraries do: one good entry among them is enough.
    let candidates: Vec<[u8; TAG_LEN]> = signature
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .filter_map(|tag| <[u8; TAG_LEN]>::try_from(tag).ok())
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::MalformedSignature);
    }
    let content = signed_content(msg_id, timestamp, payload);
    let matched = secrets.into_iter().any(|secret| {
        let expected = hmac::sign(&secret.key(), &content);
        candidates.iter().any(|candidate| bool::from(expected.as_ref().ct_eq(&candidate[..])))
    });
    if matched { Ok(()) } else { Err(VerifyError::NoMatch) }
}

fn check_timestamp(timestamp: &str, now: i64, tolerance: Duration) -> Result<i64, VerifyError> {
    let timestamp: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    match against_window(timestamp, now, tolerance) {
        Ordering::Less => Err(VerifyError::Stale),
        Ordering::Greater => Err(VerifyError::FutureDated),
        Ordering::Equal => Ok(timestamp),
    }
}

/// Where `timestamp` lies against the window of `tolerance` either side of `now`: `Less` when
/// older, `Greater` when further ahead, `Equal` within it (bounds included). In i128, where the
/// difference of two i64 and any tolerance fit: saturating at i64::MAX would let a timestamp
/// further off than a tolerance of i64::MAX seconds through.
fn against_window(timestamp: i64, now: i64, tolerance: Duration) -> Ordering {
    let age = i128::from(now) - i128::from(timestamp);
    let tolerance = i128::from(tolerance.as_secs());
    if age > tolerance {
        Ordering::Less
    } else if -age > tolerance {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks test vector, from the reference libraries' tests
    // (standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py,
    // `test_sign_function`); also recomputed with openssl.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> WebhookSecret {
        WebhookSecret::parse(SECRET).unwrap()
    }

    fn check(signature: &str, payload: &[u8], now: i64) -> Result<(), VerifyError> {
        verify([&secret()], MSG_ID, &TIMESTAMP.to_string(), signature, payload, now)
    }

    #[test]
    fn the_standard_test_vector_signs_and_verifies() {
        assert_eq!(sign(&secret(), MSG_ID, TIMESTAMP, PAYLOAD), EXPECTED);
        assert_eq!(check(EXPECTED, PAYLOAD, TIMESTAMP), Ok(()));
        let bare = WebhookSecret::parse(&SECRET["whsec_".len()..]).unwrap();
        assert_eq!(sign(&bare, MSG_ID, TIMESTAMP, PAYLOAD), EXPECTED, "the prefix is optional");
    }

    #[test]
    fn a_tampered_body_id_or_timestamp_does_not_match() {
        assert_eq!(check(EXPECTED, br#"{"test": 2432232315}"#, TIMESTAMP), Err(VerifyError::NoMatch));
        let other_id = verify([&secret()], "msg_other", &TIMESTAMP.to_string(), EXPECTED, PAYLOAD, TIMESTAMP);
        assert_eq!(other_id, Err(VerifyError::NoMatch));
        let other_time = verify([&secret()], MSG_ID, &(TIMESTAMP + 1).to_string(), EXPECTED, PAYLOAD, TIMESTAMP);
        assert_eq!(other_time, Err(VerifyError::NoMatch));
        // One flipped bit in the signature (the reference tests' "invalid signature").
        assert_eq!(
            check("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", PAYLOAD, TIMESTAMP),
            Err(VerifyError::NoMatch)
        );
        let stranger = WebhookSecret::generate();
        let wrong_secret = verify([&stranger], MSG_ID, &TIMESTAMP.to_string(), EXPECTED, PAYLOAD, TIMESTAMP);
        assert_eq!(wrong_secret, Err(VerifyError::NoMatch));
        let no_secret = verify([], MSG_ID, &TIMESTAMP.to_string(), EXPECTED, PAYLOAD, TIMESTAMP);
        assert_eq!(no_secret, Err(VerifyError::NoMatch));
    }

    #[test]
    fn empty_truncated_and_foreign_signatures_are_malformed() {
        let truncated_group = &EXPECTED[..EXPECTED.len() - 4]; // still base64, 30 bytes
        let truncated_char = &EXPECTED[..EXPECTED.len() - 1]; // not base64
        let other_version = "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let no_version = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        for bad in ["v1,", "v1", truncated_group, truncated_char, other_version, no_version, "v1,!!!!"] {
            assert_eq!(check(bad, PAYLOAD, TIMESTAMP), Err(VerifyError::MalformedSignature), "{bad:?}");
        }
    }

    #[test]
    fn missing_headers_are_named() {
        let ts = TIMESTAMP.to_string();
        let s = secret();
        assert_eq!(verify([&s], "", &ts, EXPECTED, PAYLOAD, TIMESTAMP), Err(VerifyError::MissingHeader("webhook-id")));
        let no_ts = verify([&s], MSG_ID, "", EXPECTED, PAYLOAD, TIMESTAMP);
        assert_eq!(no_ts, Err(VerifyError::MissingHeader("webhook-timestamp")));
        let no_sig = verify([&s], MSG_ID, &ts, " ", PAYLOAD, TIMESTAMP);
        assert_eq!(no_sig, Err(VerifyError::MissingHeader("webhook-signature")));
    }

    #[test]
    fn stale_and_future_dated_messages_fail() {
        assert_eq!(check(EXPECTED, PAYLOAD, TIMESTAMP + 300), Ok(()), "the bound itself passes");
        assert_eq!(check(EXPECTED, PAYLOAD, TIMESTAMP - 300), Ok(()));
        assert_eq!(check(EXPECTED, PAYLOAD, TIMESTAMP + 301), Err(VerifyError::Stale));
        assert_eq!(check(EXPECTED, PAYLOAD, TIMESTAMP - 301), Err(VerifyError::FutureDated));
        for bad in ["yesterday", "1614265330.5", "0x10", "1614265330 "] {
            let verified = verify([&secret()], MSG_ID, bad, EXPECTED, PAYLOAD, TIMESTAMP);
            assert_eq!(verified, Err(VerifyError::BadTimestamp), "{bad:?}");
        }
        let ts = TIMESTAMP.to_string();
        let wide = verify_with_tolerance([&secret()], MSG_ID, &ts, EXPECTED, PAYLOAD, TIMESTAMP + 3600, Duration::MAX);
        assert_eq!(wide, Ok(()));
        let narrow =
            verify_with_tolerance([&secret()], MSG_ID, &ts, EXPECTED, PAYLOAD, TIMESTAMP + 2, Duration::from_secs(1));
        assert_eq!(narrow, Err(VerifyError::Stale));
        let extreme = verify([&secret()], MSG_ID, &i64::MIN.to_string(), EXPECTED, PAYLOAD, i64::MAX);
        assert_eq!(extreme, Err(VerifyError::Stale), "no overflow");
    }

    #[test]
    fn a_tolerance_past_i64_range_still_refuses_what_is_further_off() {
        // Found by the webhook_signature fuzz target: the age of a message dated i64::MIN,
        // saturated to i64::MAX, never exceeded a tolerance of i64::MAX seconds, so a message
        // older than the tolerance verified.
        let tolerance = Duration::from_secs(i64::MAX as u64);
        let signature = sign(&secret(), MSG_ID, i64::MIN, PAYLOAD);
        let old = verify_with_tolerance([&secret()], MSG_ID, &i64::MIN.to_string(), &signature, PAYLOAD, 1, tolerance);
        assert_eq!(old, Err(VerifyError::Stale));
        let signature = sign(&secret(), MSG_ID, i64::MAX, PAYLOAD);
        let ahead =
            verify_with_tolerance([&secret()], MSG_ID, &i64::MAX.to_string(), &signature, PAYLOAD, -2, tolerance);
        assert_eq!(ahead, Err(VerifyError::FutureDated));
        // Exactly at the bound, it still passes.
        let at_bound =
            verify_with_tolerance([&secret()], MSG_ID, &i64::MAX.to_string(), &signature, PAYLOAD, 0, tolerance);
        assert_eq!(at_bound, Ok(()));
    }

    #[test]
    fn one_valid_signature_among_invalid_ones_is_enough() {
        // The reference tests' multi-signature header, with the valid one in the middle.
        let header = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= \
             v1, {EXPECTED} v1a,xyz v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        );
        assert_eq!(check(&header, PAYLOAD, TIMESTAMP), Ok(()));
    }

    #[test]
    fn both_sides_of_a_rotation_verify() {
        let old = secret();
        let new = WebhookSecret::generate();
        let [id, timestamp, signature] = signed_headers([&new, &old], MSG_ID, TIMESTAMP, PAYLOAD);
        assert_eq!((id.0, timestamp.0, signature.0), ("webhook-id", "webhook-timestamp", "webhook-signature"));
        assert_eq!((id.1.as_str(), timestamp.1.as_str()), (MSG_ID, "1614265330"));
        let entries: Vec<&str> = signature.1.split(' ').collect();
        assert_eq!(entries, [sign(&new, MSG_ID, TIMESTAMP, PAYLOAD).as_str(), EXPECTED]);
        // A receiver that knows only one of the two secrets, either one, accepts the delivery;
        // so does one that holds both while it updates its configuration.
        for receiver in [vec![old.clone()], vec![new.clone()], vec![WebhookSecret::generate(), old.clone()]] {
            let verified = verify(&receiver, &id.1, &timestamp.1, &signature.1, PAYLOAD, TIMESTAMP);
            assert_eq!(verified, Ok(()));
        }
        let retired = verify([&WebhookSecret::generate()], &id.1, &timestamp.1, &signature.1, PAYLOAD, TIMESTAMP);
        assert_eq!(retired, Err(VerifyError::NoMatch));
        let [_, _, unsigned] = signed_headers([], MSG_ID, TIMESTAMP, PAYLOAD);
        assert_eq!(unsigned.1, "");
    }

    #[test]
    fn secrets_round_trip_and_never_print() {
        let secret = WebhookSecret::generate();
        let shown = secret.expose_whsec();
        assert!(shown.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&shown[6..]).unwrap().len(), 32);
        let parsed: WebhookSecret = shown.parse().unwrap();
        assert_eq!(parsed.expose_whsec(), shown);
        assert_ne!(WebhookSecret::generate().expose_whsec(), shown, "fresh randomness each time");
        assert_eq!(format!("{secret:?}"), "WebhookSecret([REDACTED])");
        // The reference vector's key, without padding and with it.
        assert_eq!(WebhookSecret::parse(SECRET).unwrap().expose_whsec(), SECRET);
        let unpadded = WebhookSecret::generate().expose_whsec().trim_end_matches('=').to_owned();
        assert!(WebhookSecret::parse(&unpadded).is_ok(), "unpadded base64, as the Python reference takes");
    }

    #[test]
    fn bad_secrets_are_refused_without_echoing_them() {
        assert_eq!(WebhookSecret::parse("whsec_not base64!").unwrap_err(), SecretError::NotBase64);
        assert_eq!(WebhookSecret::parse("").unwrap_err(), SecretError::WrongLength);
        assert_eq!(WebhookSecret::parse("whsec_AAAA").unwrap_err(), SecretError::WrongLength);
        let too_long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert_eq!(WebhookSecret::parse(&too_long).unwrap_err(), SecretError::WrongLength);
        let error = WebhookSecret::parse("whsec_hunter2!").unwrap_err();
        assert!(!error.to_string().contains("hunter2"));
    }

    #[test]
    fn errors_never_reveal_the_expected_signature() {
        let expected_b64 = &EXPECTED[3..];
        let tampered = check(EXPECTED, b"{}", TIMESTAMP).unwrap_err();
        let shown = format!("{tampered} {tampered:?}");
        assert!(!shown.contains(expected_b64) && !shown.contains("MfKQ9r8"), "{shown}");
    }
}
