//! When to retry and how long to wait: [`RetryPolicy`].
//!
//! A request is retried after a `429`, a `5xx` or a failed connection (no answer, or a timeout),
//! never after another `4xx`: those answers do not change by asking again. The wait before
//! retry `n` (counted from 0) is the server's `Retry-After` when it sent one, else exponential
//! backoff with full jitter: a uniformly random duration between zero and
//! `min(max_delay, base_delay * 2^n)` (the AWS Architecture Blog's "full jitter", which spreads
//! clients that failed together). Either way the wait is at most `max_delay`. A create is safe
//! to retry because each logical call sends one `Idempotency-Key` on all its attempts.

use std::time::Duration;

use reqwest::StatusCode;

/// How many times to retry, and the bounds of the waits between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `max_retries + 1` requests). Default 3.
    pub max_retries: u32,
    /// The first backoff's upper bound, doubled at every retry. Default 500 ms.
    pub base_delay: Duration,
    /// The longest wait, a `Retry-After` included (a longer one is cut to this). Default 30 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 3, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// No retries: every failure is returned at once.
    pub fn none() -> Self {
        Self { max_retries: 0, ..Self::default() }
    }

    /// The wait before retry `retry` (0 for the first retry), given the server's `Retry-After`
    /// and `unit`, a random number in `[0, 1)` that places the wait inside the jitter's range.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        // 2^retry saturates long before u32's end: past 2^31 the cap has long been reached.
        let ceiling = self.base_delay.saturating_mul(2u32.saturating_pow(retry.min(31))).min(self.max_delay);
        ceiling.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Whether an answer with this status is worth asking again: a rate limit or a server error.
pub(crate) fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Whether a request that got no answer is worth sending again.
pub(crate) fn retryable_failure(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request()
}

/// `Retry-After` in seconds (the only form Otesse sends); an HTTP date is ignored.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy() -> RetryPolicy {
        RetryPolicy { max_retries: 5, base_delay: 100 * MS, max_delay: 2_000 * MS }
    }

    #[test]
    fn full_jitter_spans_zero_to_the_doubling_ceiling() {
        let policy = policy();
        for (retry, ceiling) in [(0, 100), (1, 200), (2, 400), (3, 800), (4, 1_600)] {
            assert_eq!(policy.delay(retry, None, 0.0), Duration::ZERO, "retry {retry}: the floor is zero");
            assert_eq!(policy.delay(retry, None, 0.5), ceiling * MS / 2, "retry {retry}: halfway");
            let top = policy.delay(retry, None, 0.999_999);
            assert!(top < ceiling * MS && top > (ceiling - 1) * MS, "retry {retry}: {top:?} just under {ceiling} ms");
        }
    }

    #[test]
    fn the_ceiling_stops_at_max_delay() {
        let policy = policy();
        assert_eq!(policy.delay(5, None, 0.5), 1_000 * MS, "2^5 * 100 ms is past the 2 s cap");
        assert_eq!(policy.delay(31, None, 0.5), 1_000 * MS);
        assert_eq!(policy.delay(u32::MAX, None, 0.5), 1_000 * MS, "no overflow on absurd counts");
    }

    #[test]
    fn random_draws_stay_inside_the_range() {
        let policy = policy();
        for retry in 0..8 {
            for _ in 0..200 {
                let delay = policy.delay(retry, None, fastrand::f64());
                assert!(delay <= (100 * MS * 2u32.pow(retry)).min(2_000 * MS), "retry {retry}: {delay:?}");
            }
        }
    }

    #[test]
    fn retry_after_is_preferred_and_capped() {
        let policy = policy();
        assert_eq!(policy.delay(0, Some(Duration::from_secs(1)), 0.0), Duration::from_secs(1), "no jitter on it");
        assert_eq!(policy.delay(3, Some(Duration::ZERO), 0.9), Duration::ZERO, "`Retry-After: 0` means now");
        assert_eq!(policy.delay(0, Some(Duration::from_secs(60)), 0.5), 2_000 * MS, "cut to max_delay");
    }

    #[test]
    fn only_rate_limits_and_server_errors_are_retried() {
        for status in [429, 500, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(status).unwrap()), "{status}");
        }
        for status in [200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422] {
            assert!(!retryable(StatusCode::from_u16(status).unwrap()), "{status}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
