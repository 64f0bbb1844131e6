//! What the fuzz targets share: reading an input as a few text lines and a rest, so that the
//! seed corpus and every crashing input stay readable (`fuzz/corpus/<target>/`).

use std::borrow::Cow;

/// The first `N` lines of `data` (split on `\n`, invalid UTF-8 replaced) and the bytes after
/// them, which may hold further newlines. Missing lines are empty.
pub fn lines<const N: usize>(data: &[u8]) -> ([Cow<'_, str>; N], &[u8]) {
    let mut rest = data;
    let fields = std::array::from_fn(|_| {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = after;
        String::from_utf8_lossy(line)
    });
    (fields, rest)
}

/// A Unix time as written in a seed (`-9223372036854775808`), or, for text that is not one,
/// the bytes' own sum: the fuzzer still moves it around.
pub fn unix_time(raw: &str) -> i64 {
    raw.trim().parse().unwrap_or_else(|_| raw.bytes().fold(0i64, |acc, b| acc.wrapping_mul(31).wrapping_add(b.into())))
}

/// The first `t=` of a `Stripe-Signature`-like header that is a number: what a signed header
/// for the same input is dated.
pub fn first_t(header: &str) -> Option<i64> {
    header
        .split(',')
        .filter_map(|part| part.trim().split_once('='))
        .find_map(|(name, value)| (name == "t").then_some(value))
        .and_then(|value| value.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_keeps_the_rest_whole() {
        let ([a, b, c], rest) = lines::<3>(b"one\ntwo\n\nbody\nwith lines");
        assert_eq!((a.as_ref(), b.as_ref(), c.as_ref()), ("one", "two", ""));
        assert_eq!(rest, b"body\nwith lines");
        let ([a, b], rest) = lines::<2>(b"only");
        assert_eq!((a.as_ref(), b.as_ref(), rest), ("only", "", &b""[..]));
    }

    #[test]
    fn reads_times() {
        assert_eq!(unix_time("-9223372036854775808"), i64::MIN);
        assert_eq!(unix_time(" 1700000000 "), 1_700_000_000);
        assert_eq!(first_t("v1=ab, t=12,t=13"), Some(12));
        assert_eq!(first_t("t=x,t=13"), None, "the first t counts, as in verify");
    }
}
