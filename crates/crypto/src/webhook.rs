//! The domain's [`StripeSignatureVerifier`] (W4) over [`otesse_webhook_signature::stripe`], the
//! one implementation of Stripe's scheme: this adapter only reads the clock's seconds and maps
//! the crate's detailed errors onto the domain's four.

use std::time::Duration;

use chrono::{DateTime, Utc};
use otesse_domain::integration::{SignatureError, StripeSignatureVerifier};
use otesse_webhook_signature::stripe::{self, VerifyError};
use secrecy::{ExposeSecret, SecretString};

/// A `Stripe-Signature` header value for `payload` at `timestamp`: what Stripe sends (for tests
/// and local fakes). The signature crate's [`stripe::sign_stripe`], under the name the server's
/// tests know it by.
pub use otesse_webhook_signature::stripe::sign_stripe as stripe_signature;

/// Checks signatures made within `tolerance` of now, either way (constant-time comparison, in
/// the signature crate).
#[derive(Debug, Clone, Copy)]
pub struct StripeSignatures {
    tolerance: Duration,
}

impl StripeSignatures {
    pub fn new(tolerance: Duration) -> Self {
        Self { tolerance }
    }
}

impl StripeSignatureVerifier for StripeSignatures {
    fn verify(
        &self,
        secret: &SecretString,
        header: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        stripe::verify_with_tolerance(secret.expose_secret(), header, payload, now.timestamp(), self.tolerance).map_err(
            |err| match err {
                // The domain refuses an absent header before asking; an empty one is malformed.
                VerifyError::MissingHeader
                | VerifyError::MissingTimestamp
                | VerifyError::BadTimestamp
                | VerifyError::NoV1Signature
                | VerifyError::BadHex => SignatureError::Malformed,
                VerifyError::Stale | VerifyError::FutureDated => SignatureError::OutsideTolerance,
                VerifyError::NoMatch => SignatureError::Mismatch,
            },
        )
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
        // `now - t` and its absolute value used to overflow (a panic in debug builds, a wrong
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
