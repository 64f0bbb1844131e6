//! `PresentedKey::parse` and `PresentedKey::looks_like_key` on arbitrary text.
//!
//! Properties: `parse` accepts exactly `erp_live_`/`erp_test_` followed by 40 ASCII letters or
//! digits, and an accepted key is the input itself with the environment its prefix names;
//! `looks_like_key` recognises every well-formed key wherever it sits in a longer string (the
//! query-string check, K2): here one made from the input's own bytes, put in its middle.

#![no_main]

use libfuzzer_sys::fuzz_target;
use otesse_domain::api_key::{Environment, KEY_PREFIX, PresentedKey, SECRET_CHARS};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fuzz_target!(|raw: &str| {
    let parsed = PresentedKey::parse(raw);
    let expected = Environment::ALL.into_iter().find(|env| {
        raw.strip_prefix(env.key_prefix())
            .is_some_and(|secret| secret.len() == SECRET_CHARS && secret.bytes().all(|b| b.is_ascii_alphanumeric()))
    });
    assert_eq!(parsed.ok().map(|key| key.environment()), expected, "{raw:?}");
    if let Ok(key) = parsed {
        assert_eq!(key.as_str(), raw);
        assert!(raw.starts_with(KEY_PREFIX) && raw.starts_with(key.environment().key_prefix()));
        assert!(PresentedKey::looks_like_key(raw), "a key that parses must look like one: {raw:?}");
    }

    // A well-formed key, anywhere in a longer string, is seen.
    let environment = if raw.len().is_multiple_of(2) { Environment::Live } else { Environment::Test };
    let secret: String = (0..SECRET_CHARS)
        .map(|i| raw.as_bytes().get(i).map_or(b'k', |b| BASE62[usize::from(*b) % 62]))
        .map(char::from)
        .collect();
    let key = format!("{}{secret}", environment.key_prefix());
    assert_eq!(PresentedKey::parse(&key).map(|k| k.environment()), Ok(environment), "{key}");
    let mut at = raw.len() / 2;
    while !raw.is_char_boundary(at) {
        at -= 1;
    }
    let around = format!("{}{key}{}", &raw[..at], &raw[at..]);
    assert!(PresentedKey::looks_like_key(&around), "{around:?}");
});
