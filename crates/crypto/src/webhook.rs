//! The domain's [`StripeSignatureVerifier`]: checks `Stripe-Signature` headers (W4).
//!
//! Stripe's scheme (<https://docs.stripe.com/webhooks#verify-manually>): the header is
//! `t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=...]`; each `v1` is the hex HMAC-SHA256 of
//! `"{t}.{raw body}"` keyed with the endpoint's whole signing secret (`whsec_...` as bytes).
//! Several `v1` entries appear while Stripe rolls a secret; any one matching is enough. Other
//! schemes (`v0`, test-mode only) are ignored.

use std::time::Duration;

use chrono::{DateTime, Utc};
use otesse_domain::integration::{SignatureError, StripeSignatureVerifier};
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};

/// Checks signatures made within `tolerance` of now, either way.
#[derive(Debug, Clone, Copy)]
pub struct StripeSignatures {
    tolerance: Duration,
}

impl StripeSignatures {
    pub fn new(tolerance: Duration) -> Self {
        Self { tolerance }
    }
}

/// A `Stripe-Signature` header value for `payload` at `timestamp`: what Stripe sends (for tests
/// and local fakes).
pub fn stripe_signature(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, &signed_content(timestamp, payload));
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

fn signed_content(timestamp: i64, payload: &[u8]) -> Vec<u8> {
    let mut content = format!("{timestamp}.").into_bytes();
    content.extend_from_slice(payload);
    content
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

impl StripeSignatureVerifier for StripeSignatures {
    fn verify(
        &self,
        secret: &SecretString,
        header: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            let (name, value) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
            match name {
                "t" => timestamp = Some(value.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
                "v1" => signatures.push(from_hex(value).ok_or(SignatureError::Malformed)?),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
        if signatures.is_empty() {
            return Err(SignatureError::Malformed);
        }
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        // Saturating: the sender chooses t, and `now - t` overflows for t near i64::MIN or MAX.
        let now = now.timestamp();
        if now.saturating_sub(timestamp) > tolerance || timestamp.saturating_sub(now) > tolerance {
            return Err(SignatureError::OutsideTolerance);
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
        let content = signed_content(timestamp, payload);
        // ring's verify compares in constant time.
        if signatures.iter().any(|signature| hmac::verify(&key, &content, signature).is_ok()) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    fn verify(header: &str, payload: &[u8], now: i64) -> Result<(), SignatureError> {
        let now = DateTime::from_timestamp(now, 0).unwrap();
        StripeSignatures::new(Duration::from_secs(300)).verify(&SECRET.to_owned().into(), header, payload, now)
    }

    #[test]
    fn matches_stripes_reference_signature() {
        // HMAC-SHA256 keyed with "whsec_test_secret" over "1614265330.{}", computed
        // independently (Python's hmac module).
        let header = stripe_signature(SECRET, 1_614_265_330, b"{}");
        assert_eq!(header, "t=1614265330,v1=8c1a00c47d6b9f72cbeb1c009e324419d877cb08edb0805dd9fde8dddc59848c");
    }

    #[test]
    fn a_fresh_signature_of_the_body_passes() {
        let header = stripe_signature(SECRET, 1_000_000, b"{\"id\":\"evt_1\"}");
        assert_eq!(verify(&header, b"{\"id\":\"evt_1\"}", 1_000_100), Ok(()));
        // One valid v1 among others (a secret being rolled) is enough; v0 is ignored.
        let (t, v1) = header.split_once(",v1=").unwrap();
        let rolled = format!("{t},v1={},v1={v1},v0=abc", "0".repeat(64));
        assert_eq!(verify(&rolled, b"{\"id\":\"evt_1\"}", 1_000_000), Ok(()));
    }

    #[test]
    fn tampering_staleness_and_garbage_fail() {
        let header = stripe_signature(SECRET, 1_000_000, b"body");
        assert_eq!(verify(&header, b"bodY", 1_000_000), Err(SignatureError::Mismatch));
        assert_eq!(verify(&header, b"body", 1_000_301), Err(SignatureError::OutsideTolerance));
        assert_eq!(verify(&header, b"body", 999_699), Err(SignatureError::OutsideTolerance), "future-dated");
        let other = stripe_signature("whsec_other", 1_000_000, b"body");
        assert_eq!(verify(&other, b"body", 1_000_000), Err(SignatureError::Mismatch));
        let retimed = header.replace("t=1000000", "t=1000001");
        assert_eq!(verify(&retimed, b"body", 1_000_000), Err(SignatureError::Mismatch));
        for bad in ["", "nonsense", "t=1000000", "v1=abcd", "t=x,v1=00", "t=1000000,v1=", "t=1000000,v1=zz"] {
            assert_eq!(verify(bad, b"body", 1_000_000), Err(SignatureError::Malformed), "{bad:?}");
        }
        let truncated = &header[..header.len() - 2];
        assert_eq!(verify(truncated, b"body", 1_000_000), Err(SignatureError::Malformed));
    }

    #[test]
    fn extreme_timestamps_are_outside_the_tolerance_without_overflowing() {
        // `now - t` and its absolute value overflowed here (a panic in debug builds, a wrong
        // answer in release ones): a sender controls t.
        let v1 = "0".repeat(64);
        for (t, now) in [(i64::MIN, 1_000_000), (i64::MAX, 1_000_000), (i64::MIN, 0), (i64::MAX, -1)] {
            let header = format!("t={t},v1={v1}");
            assert_eq!(verify(&header, b"body", now), Err(SignatureError::OutsideTolerance), "{header}");
        }
        let header = stripe_signature(SECRET, -9_223_372_036_854_775_808, b"body");
        assert_eq!(verify(&header, b"body", 1_000_000), Err(SignatureError::OutsideTolerance));
    }
}
