//! The Standard Webhooks check (`otesse_webhook_signature`): secrets, and the
//! `webhook-id`/`-timestamp`/`-signature` headers, on arbitrary input with extreme clocks.
//!
//! Input, as lines: a secret (`whsec_...`), webhook-id, webhook-timestamp, webhook-signature,
//! now (Unix seconds), the tolerance in seconds (empty: the default), then the body (the rest).
//!
//! Properties: nothing panics or overflows; a secret that parses prints back (`whsec_...`) to
//! one that parses to the same; arbitrary headers verify only if the signature header holds
//! exactly the v1 signature of the id, the timestamp and the body under the secret; a delivery
//! signed during a rotation (dated like the input's timestamp, or now) verifies under either
//! secret exactly within the tolerance, and never under another secret, over another body, id
//! or time.

#![no_main]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use otesse_fuzz::{lines, unix_time};
use otesse_webhook_signature::{
    DEFAULT_TOLERANCE, VerifyError, WebhookSecret, sign, signed_headers, verify_with_tolerance,
};

fn secret_of(key: &[u8]) -> WebhookSecret {
    WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode(key))).expect("24 to 64 bytes make a secret")
}

fuzz_target!(|data: &[u8]| {
    let ([raw_secret, msg_id, timestamp, signature, now, tolerance], payload) = lines::<6>(data);
    let now = unix_time(&now);
    let tolerance = tolerance.trim().parse().map_or(DEFAULT_TOLERANCE, Duration::from_secs);

    // The secret: parsed if it is one, else made of the line's bytes (24 to 64 of them).
    let secret = match WebhookSecret::parse(&raw_secret) {
        Ok(parsed) => {
            let shown = parsed.expose_whsec();
            let again = WebhookSecret::parse(&shown).expect("a printed secret parses");
            assert_eq!(again.expose_whsec(), shown);
            parsed
        }
        Err(_) => {
            let mut key = raw_secret.as_bytes().to_vec();
            key.resize(key.len().clamp(24, 64), 0x5a);
            secret_of(&key)
        }
    };
    let key = STANDARD.decode(&secret.expose_whsec()["whsec_".len()..]).expect("whsec_ holds base64");

    // Arbitrary headers: accepted only with the exact signature among the entries.
    if verify_with_tolerance([&secret], &msg_id, &timestamp, &signature, payload, now, tolerance).is_ok() {
        let t: i64 = timestamp.parse().expect("an accepted timestamp is a number");
        let expected = sign(&secret, &msg_id, t, payload);
        assert!(signature.split_whitespace().any(|entry| entry == expected), "{signature:?}");
    }

    // Signed headers, as a rotation sends them: the new secret's signature and the old one's.
    // Same length, another byte: two keys that never make the same HMAC key (zero padding).
    let with_first_byte = |flip: u8| {
        let mut other = key.clone();
        other[0] ^= flip;
        secret_of(&other)
    };
    let old = with_first_byte(0x80);
    let t = timestamp.parse().unwrap_or(now);
    let [(_, id), (_, timestamp), (_, signature)] = signed_headers([&secret, &old], &msg_id, t, payload);
    let age = i128::from(now) - i128::from(t);
    let tolerance_secs = i128::from(tolerance.as_secs());
    let expected = if msg_id.trim().is_empty() {
        Err(VerifyError::MissingHeader("webhook-id"))
    } else if age > tolerance_secs {
        Err(VerifyError::Stale)
    } else if -age > tolerance_secs {
        Err(VerifyError::FutureDated)
    } else {
        Ok(())
    };
    for receiver in [&secret, &old] {
        let verified = verify_with_tolerance([receiver], &id, &timestamp, &signature, payload, now, tolerance);
        assert_eq!(verified, expected, "{id:?} {timestamp} {signature}");
    }
    if expected.is_err() {
        return;
    }
    let stranger = with_first_byte(0x01);
    let refused = verify_with_tolerance([&stranger], &id, &timestamp, &signature, payload, now, tolerance);
    assert_eq!(refused, Err(VerifyError::NoMatch), "another secret");
    let mut other_payload = payload.to_vec();
    other_payload.push(b' ');
    let refused = verify_with_tolerance([&secret], &id, &timestamp, &signature, &other_payload, now, tolerance);
    assert_eq!(refused, Err(VerifyError::NoMatch), "another body");
    let other_id = format!("{id}_");
    let refused = verify_with_tolerance([&secret], &other_id, &timestamp, &signature, payload, now, tolerance);
    assert_eq!(refused, Err(VerifyError::NoMatch), "another id");
    // Towards now, so that only the signature can refuse it.
    if t != now {
        let moved = if t < now { t + 1 } else { t - 1 };
        let refused = verify_with_tolerance([&secret], &id, &moved.to_string(), &signature, payload, now, tolerance);
        assert_eq!(refused, Err(VerifyError::NoMatch), "another time");
    }
    // One matching entry is enough: this secret's signature alone verifies.
    let own = sign(&secret, &msg_id, t, payload);
    assert_eq!(verify_with_tolerance([&secret], &id, &timestamp, &own, payload, now, tolerance), Ok(()));
});
