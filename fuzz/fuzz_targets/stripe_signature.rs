//! The `Stripe-Signature` check (`otesse_webhook_signature::stripe`) on arbitrary headers,
//! bodies, secrets, clocks and tolerances, extremes included.
//!
//! Input, as lines: the secret, the header, now (Unix seconds), the tolerance in seconds
//! (empty: the default), then the body (the rest, newlines and all).
//!
//! Properties: nothing panics or overflows; an arbitrary header verifies only if it carries the
//! v1 signature of its first `t=` and the body under the secret; a header signed with the
//! secret (dated like the input's header, or now) verifies exactly when `t` is within the
//! tolerance of now, reckoned where nothing overflows, and is stale or future-dated otherwise;
//! it never verifies under another secret, over another body or with another `t`.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use otesse_fuzz::{first_t, lines, unix_time};
use otesse_webhook_signature::stripe::{self, VerifyError};

/// The hex of the v1 entry of a header made by `sign_stripe`.
fn v1_of(signed: &str) -> &str {
    signed.split_once(",v1=").expect("sign_stripe writes t=...,v1=...").1
}

fuzz_target!(|data: &[u8]| {
    let ([secret, header, now, tolerance], payload) = lines::<4>(data);
    let now = unix_time(&now);
    let tolerance = tolerance.trim().parse().map_or(stripe::DEFAULT_TOLERANCE, Duration::from_secs);

    // An arbitrary header: accepted only with the right signature in it.
    if stripe::verify_with_tolerance(&secret, &header, payload, now, tolerance).is_ok() {
        let t = first_t(&header).expect("an accepted header has a t");
        let expected = stripe::sign_stripe(&secret, t, payload);
        let expected = v1_of(&expected);
        let carried = header
            .split(',')
            .filter_map(|part| part.trim().split_once('='))
            .any(|(name, value)| name == "v1" && value.eq_ignore_ascii_case(expected));
        assert!(carried, "accepted without the signature: {header:?}");
    }

    // A signed header: the clock alone decides.
    let t = first_t(&header).unwrap_or(now);
    let signed = stripe::sign_stripe(&secret, t, payload);
    let age = i128::from(now) - i128::from(t);
    let tolerance_secs = i128::from(tolerance.as_secs());
    let expected = if age > tolerance_secs {
        Err(VerifyError::Stale)
    } else if -age > tolerance_secs {
        Err(VerifyError::FutureDated)
    } else {
        Ok(())
    };
    assert_eq!(stripe::verify_with_tolerance(&secret, &signed, payload, now, tolerance), expected, "{signed}");
    if expected.is_err() {
        return;
    }
    // Another secret: a character appended changes the HMAC key whatever the secret's length
    // (a NUL would not: short keys are padded with zeros).
    let other_secret = format!("{secret}!");
    let mismatch = stripe::verify_with_tolerance(&other_secret, &signed, payload, now, tolerance);
    assert_eq!(mismatch, Err(VerifyError::NoMatch), "another secret");
    let mut other_payload = payload.to_vec();
    other_payload.push(b' ');
    let tampered = stripe::verify_with_tolerance(&secret, &signed, &other_payload, now, tolerance);
    assert_eq!(tampered, Err(VerifyError::NoMatch), "another body");
    // Towards now, so that only the signature can refuse it.
    if t != now {
        let moved = if t < now { t + 1 } else { t - 1 };
        let retimed = format!("t={moved},v1={}", v1_of(&signed));
        let retimed = stripe::verify_with_tolerance(&secret, &retimed, payload, now, tolerance);
        assert_eq!(retimed, Err(VerifyError::NoMatch), "another t");
    }
});
