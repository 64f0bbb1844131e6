//! Stripe's webhook signatures (<https://docs.stripe.com/webhooks#verify-manually>), for the
//! deliveries Stripe sends to Otesse and for fakes of Stripe in tests.
//!
//! The `Stripe-Signature` header is `t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]`; each
//! `v1` is the hex HMAC-SHA256 of `"{t}.{raw body}"`. Unlike Standard Webhooks, the key is the
//! endpoint's whole signing secret as text, `whsec_` included, not base64-decoded. Several `v1`
//! entries appear while Stripe rolls a secret; any one matching is enough. Other entries (`v0`,
//! test mode only) are ignored.
//!
//! ```
//! use otesse_webhook_signature::stripe;
//! let header = stripe::sign_stripe("whsec_test", 1_700_000_000, b"{}");
//! assert!(stripe::verify("whsec_test", &header, b"{}", 1_700_000_030).is_ok());
//! ```

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::time::Duration;

use ring::hmac;
use subtle::ConstantTimeEq;

/// The header Stripe signs its deliveries in.
pub const HEADER: &str = "Stripe-Signature";

/// How far `t` may be from now, either way, by default (Stripe's libraries' value).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

const TAG_LEN: usize = 32;

/// Why a `Stripe-Signature` does not verify. Never holds the secret or an expected signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header is absent (passed as `""`).
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    /// The header holds no `t=` entry.
    #[error("Stripe-Signature has no t= timestamp")]
    MissingTimestamp,
    /// The first `t=` entry is not a whole number of seconds in `i64` range.
    #[error("Stripe-Signature's t= is not a Unix time in seconds")]
    BadTimestamp,
    /// No `v1=` entry (only `v0`, say, which is never accepted).
    #[error("Stripe-Signature has no v1= signature")]
    NoV1Signature,
    /// A `v1=` entry is not exactly 64 hexadecimal digits (one bad entry refuses the header).
    #[error("a v1= signature is not 64 hexadecimal digits")]
    BadHex,
    /// `t` is further in the past than the tolerance allows: a replay or a very late delivery.
    #[error("the signature is older than the tolerance")]
    Stale,
    /// `t` is further in the future than the tolerance allows: a clock is off, or the header was
    /// forged ahead of time.
    #[error("the signature is dated further in the future than the tolerance")]
    FutureDated,
    /// Well-formed signatures, none made with this secret over this time and body.
    #[error("no v1 signature matches")]
    NoMatch,
}

/// A `Stripe-Signature` header value for `payload` at `timestamp` (Unix seconds), as Stripe
/// sends it: for tests and local fakes of Stripe.
pub fn sign_stripe(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let tag = hmac::sign(&key(secret), &signed_content(timestamp, payload));
    let mut header = format!("t={timestamp},v1=");
    for byte in tag.as_ref() {
        write!(header, "{byte:02x}").expect("writing to a String cannot fail");
    }
    header
}

/// Checks a `Stripe-Signature` header against the endpoint's signing secret, within
/// [`DEFAULT_TOLERANCE`] of `now` (Unix seconds). Pass `""` for an absent header.
pub fn verify(secret: &str, header: &str, payload: &[u8], now: i64) -> Result<(), VerifyError> {
    verify_with_tolerance(secret, header, payload, now, DEFAULT_TOLERANCE)
}

/// [`verify`] with another tolerance.
pub fn verify_with_tolerance(
    secret: &str,
    header: &str,
    payload: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    if header.trim().is_empty() {
        return Err(VerifyError::MissingHeader);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for (name, value) in header.split(',').filter_map(|part| part.trim().split_once('=')) {
        match name {
            // The first t counts, as in Stripe's libraries; it is signed, so a second gains nothing.
            "t" if timestamp.is_none() => {
                timestamp = Some(value.parse::<i64>().map_err(|_| VerifyError::BadTimestamp)?);
            }
            "v1" => signatures.push(decode_hex(value).ok_or(VerifyError::BadHex)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::MissingTimestamp)?;
    if signatures.is_empty() {
        return Err(VerifyError::NoV1Signature);
    }
    match crate::against_window(timestamp, now, tolerance) {
        Ordering::Less => return Err(VerifyError::Stale),
        Ordering::Greater => return Err(VerifyError::FutureDated),
        Ordering::Equal => {}
    }
    let expected = hmac::sign(&key(secret), &signed_content(timestamp, payload));
    if signatures.iter().any(|signature| bool::from(expected.as_ref().ct_eq(&signature[..]))) {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

fn key(secret: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())
}

fn signed_content(timestamp: i64, payload: &[u8]) -> Vec<u8> {
    let mut content = format!("{timestamp}.").into_bytes();
    content.extend_from_slice(payload);
    content
}

/// Exactly 64 hex digits. Digit by digit, because `u8::from_str_radix` would take a `+`.
fn decode_hex(hex: &str) -> Option<[u8; TAG_LEN]> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * TAG_LEN {
        return None;
    }
    let mut tag = [0u8; TAG_LEN];
    for (byte, pair) in tag.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high << 4 | low).ok()?;
    }
    Some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const T: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1"}"#;
    // Computed independently: printf '%s' '1700000000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test_secret
    const V1: &str = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";

    fn header() -> String {
        format!("t={T},v1={V1}")
    }

    fn check(header: &str, now: i64) -> Result<(), VerifyError> {
        verify(SECRET, header, BODY, now)
    }

    #[test]
    fn signs_like_stripe() {
        assert_eq!(sign_stripe(SECRET, T, BODY), header());
        // HMAC-SHA256 keyed with "whsec_test_secret" over "1614265330.{}", computed
        // independently (Python's hmac module).
        let other = "t=1614265330,v1=8c1a00c47d6b9f72cbeb1c009e324419d877cb08edb0805dd9fde8dddc59848c";
        assert_eq!(sign_stripe(SECRET, 1_614_265_330, b"{}"), other);
    }

    #[test]
    fn a_fresh_signature_of_the_body_passes() {
        assert_eq!(check(&header(), T), Ok(()));
        assert_eq!(check(&header(), T + 300), Ok(()), "the bound itself passes");
        assert_eq!(check(&header(), T - 300), Ok(()));
        assert_eq!(check(&header().to_uppercase().replace("T=", "t=").replace("V1=", "v1="), T), Ok(()));
    }

    #[test]
    fn any_v1_matching_is_enough_and_v0_is_ignored() {
        // What Stripe sends while an endpoint secret is being rolled: one v1 per secret.
        let rolled = format!("t={T},v1={},v1={V1},v0={}", "0".repeat(64), "1".repeat(64));
        assert_eq!(check(&rolled, T), Ok(()));
        assert_eq!(check(&format!("v0=abc,t={T},v1={V1},x"), T), Ok(()), "order and other entries don't matter");
    }

    #[test]
    fn the_whole_whsec_string_is_the_key() {
        assert_eq!(verify("test_secret", &header(), BODY, T), Err(VerifyError::NoMatch));
        assert_eq!(verify("whsec_other", &header(), BODY, T), Err(VerifyError::NoMatch));
    }

    #[test]
    fn tampering_fails() {
        assert_eq!(verify(SECRET, &header(), br#"{"id":"evt_2"}"#, T), Err(VerifyError::NoMatch));
        let retimed = header().replace(&format!("t={T}"), &format!("t={}", T + 1));
        assert_eq!(check(&retimed, T), Err(VerifyError::NoMatch));
        let flipped = header().replace("9c9a", "9c9b");
        assert_eq!(check(&flipped, T), Err(VerifyError::NoMatch));
        let v0_only_valid = format!("t={T},v1={},v0={V1}", "0".repeat(64));
        assert_eq!(check(&v0_only_valid, T), Err(VerifyError::NoMatch), "v0 never counts");
    }

    #[test]
    fn stale_and_future_dated_signatures_fail() {
        assert_eq!(check(&header(), T + 301), Err(VerifyError::Stale));
        assert_eq!(check(&header(), T - 301), Err(VerifyError::FutureDated));
        let narrow = verify_with_tolerance(SECRET, &header(), BODY, T + 61, Duration::from_secs(60));
        assert_eq!(narrow, Err(VerifyError::Stale));
        let wide = verify_with_tolerance(SECRET, &header(), BODY, T + 3600, Duration::from_secs(3600));
        assert_eq!(wide, Ok(()));
        let far = format!("t={},v1={V1}", i64::MIN);
        assert_eq!(check(&far, i64::MAX), Err(VerifyError::Stale), "no overflow");
    }

    #[test]
    fn a_tolerance_past_i64_range_still_refuses_what_is_further_off() {
        // As in the Standard Webhooks check: a difference saturated to i64::MAX never exceeded
        // a tolerance of i64::MAX seconds.
        let tolerance = Duration::from_secs(i64::MAX as u64);
        let old = sign_stripe(SECRET, i64::MIN, BODY);
        assert_eq!(verify_with_tolerance(SECRET, &old, BODY, 1, tolerance), Err(VerifyError::Stale));
        let ahead = sign_stripe(SECRET, i64::MAX, BODY);
        assert_eq!(verify_with_tolerance(SECRET, &ahead, BODY, -2, tolerance), Err(VerifyError::FutureDated));
        assert_eq!(verify_with_tolerance(SECRET, &ahead, BODY, 0, tolerance), Ok(()), "exactly at the bound");
    }

    #[test]
    fn malformed_headers_each_have_their_error() {
        let cases = [
            ("", VerifyError::MissingHeader),
            ("  ", VerifyError::MissingHeader),
            (&format!("v1={V1}"), VerifyError::MissingTimestamp),
            ("nonsense", VerifyError::MissingTimestamp),
            (&format!("t=yesterday,v1={V1}"), VerifyError::BadTimestamp),
            (&format!("t=,v1={V1}"), VerifyError::BadTimestamp),
            (&format!("t={T}"), VerifyError::NoV1Signature),
            (&format!("t={T},v0={V1}"), VerifyError::NoV1Signature),
            (&format!("t={T},v1="), VerifyError::BadHex),
            (&format!("t={T},v1=zz"), VerifyError::BadHex),
            (&format!("t={T},v1={}", &V1[..62]), VerifyError::BadHex),
            (&format!("t={T},v1={V1}00"), VerifyError::BadHex),
            (&format!("t={T},v1=+{}", &V1[1..]), VerifyError::BadHex),
            (&format!("t={T},v1={},v1={V1}", "g".repeat(64)), VerifyError::BadHex),
        ];
        for (bad, error) in cases {
            assert_eq!(check(bad, T), Err(error), "{bad:?}");
        }
    }

    #[test]
    fn errors_never_reveal_the_secret_or_expected_signature() {
        for error in [check(&header(), T + 301), verify(SECRET, &header(), b"x", T)] {
            let error = error.unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("test_secret") && !shown.contains(&V1[..16]), "{shown}");
        }
    }
}
