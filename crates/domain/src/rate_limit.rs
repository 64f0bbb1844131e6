//! Rate limits (W2): the limit, the decision with what the `RateLimit-*` headers report, the
//! [`RateLimiter`] port, and the algorithm both adapters share.
//!
//! The algorithm is GCRA (the generic cell rate algorithm, as in redis-cell and governor): a
//! bucket stores one number, its *theoretical arrival time* (TAT). Each allowed request moves
//! it one emission interval (`period / limit`) later; a request is refused while the TAT would
//! run more than one `period` ahead of now. That allows `limit` requests in a burst, then one
//! per interval, with no edge effects at window boundaries, and it tells exactly how long to
//! wait. The in-process adapter runs [`gcra`]; the Redis adapter runs the same arithmetic in a
//! Lua script, so both answer the same.

use std::time::Duration;

use async_trait::async_trait;

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// At most `limit` requests per `period`, in bursts of up to `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    limit: u32,
    period: Duration,
}

/// A [`RateLimit`] that could never let a request through, or finer than [`gcra`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a rate limit needs at least 1 request per period of at least 1 millisecond, and at most 1 request per 10 \
     microseconds"
)]
pub struct InvalidRateLimit;

impl RateLimit {
    /// `limit` requests per `period`. Refuses a zero limit, a period under 1 ms, and more than
    /// one request per 10 µs (100,000 a second), where [`GCRA_EPSILON_MS`] would blur the count.
    pub fn new(limit: u32, period: Duration) -> Result<Self, InvalidRateLimit> {
        if limit == 0 || period < Duration::from_millis(1) || period / limit < Duration::from_micros(10) {
            return Err(InvalidRateLimit);
        }
        Ok(Self { limit, period })
    }

    /// Requests per period, which is also the largest burst (`RateLimit-Limit`).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The time a drained bucket takes to fill again.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The time one request's token takes to come back: `period / limit`.
    pub fn interval(&self) -> Duration {
        self.period / self.limit
    }

    fn period_ms(&self) -> f64 {
        self.period.as_secs_f64() * 1000.0
    }

    fn interval_ms(&self) -> f64 {
        self.period_ms() / f64::from(self.limit)
    }
}

/// The answer for one request, with what the `RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may go ahead; a refused one gets a 429 with `Retry-After`.
    pub allowed: bool,
    /// The limit's requests per period (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests that could still be made at once.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset_after: Duration,
    /// When refused: how long until one request is allowed.
    pub retry_after: Option<Duration>,
}

impl RateDecision {
    /// Whole seconds for `RateLimit-Reset`, rounded up.
    pub fn reset_secs(&self) -> u64 {
        ceil_secs(self.reset_after)
    }

    /// Whole seconds for `Retry-After`, rounded up (at least 1 when refused).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(|d| ceil_secs(d).max(1))
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Times closer than this (1 µs, in milliseconds) count as equal, so that floating-point
/// rounding (the interval is rarely a whole number) never costs a request, a unit of
/// `remaining` or a second of `Retry-After`.
pub const GCRA_EPSILON_MS: f64 = 0.001;

/// GCRA: the decision for a request at `now` on a bucket whose stored TAT is `tat` (none for a
/// fresh bucket), and the TAT to store when allowed. Times are durations since any fixed
/// origin, the same one for a bucket.
///
/// The arithmetic works on how far the TAT is ahead of now (exact: integer nanoseconds), in
/// floating-point milliseconds no larger than the period, never on absolute times: at the
/// magnitude of milliseconds since 1970 one rounding is about 0.1 µs, and a few of them made a
/// 6-per-second bucket report 4 remaining after its first request. Reported durations are
/// rounded to the nearest microsecond; a refusal's `retry_after` is at least 1 µs. The Redis
/// adapter's Lua script repeats this arithmetic step for step: change both together.
pub fn gcra(limit: RateLimit, tat: Option<Duration>, now: Duration) -> (RateDecision, Option<Duration>) {
    let period = limit.period_ms();
    let interval = limit.interval_ms();
    // 0 for a fresh or full bucket: a TAT in the past means the same as none.
    let ahead = tat.map_or(0.0, |tat| tat.saturating_sub(now).as_secs_f64() * 1000.0);
    let new_ahead = ahead + interval;
    if new_ahead > period + GCRA_EPSILON_MS {
        let decision = RateDecision {
            allowed: false,
            limit: limit.limit,
            remaining: 0,
            reset_after: micros(ahead),
            retry_after: Some(micros(new_ahead - period).max(Duration::from_micros(1))),
        };
        return (decision, None);
    }
    let remaining = ((period - new_ahead + GCRA_EPSILON_MS) / interval).floor().max(0.0) as u32;
    let decision = RateDecision {
        allowed: true,
        limit: limit.limit,
        remaining: remaining.min(limit.limit - 1),
        reset_after: micros(new_ahead),
        retry_after: None,
    };
    (decision, Some(now + Duration::from_nanos((new_ahead * 1e6).round() as u64)))
}

/// Milliseconds to a duration, to the nearest microsecond.
fn micros(ms: f64) -> Duration {
    Duration::from_micros((ms.max(0.0) * 1000.0).round() as u64)
}

/// Why a [`RateLimiter`] could not decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// Its store did not answer in time (unreachable, reconnecting, too slow). The detail is
    /// for logs; it never holds a credential.
    #[error("the rate limiter is unavailable: {0}")]
    Unavailable(String),
}

/// Counts requests per bucket (`key:<id>`, `sign-in:<ip>`, ...).
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request against `bucket` under `limit` and says whether it is allowed, with
    /// the numbers for the `RateLimit-*` headers. A refused request is not counted. A bucket
    /// should always be checked with the same limit; a changed limit applies from the next
    /// request on, against the bucket's current state.
    ///
    /// Errors: [`RateLimitError::Unavailable`] when the limiter could not decide within its
    /// time budget. Callers fail open on it (let the request through, log, count), because
    /// refusing all traffic while a limiter is down would turn a small outage into a full one.
    async fn check(&self, bucket: &str, limit: RateLimit) -> Result<RateDecision, RateLimitError>;

    /// What [`Self::check`] would answer, when the limiter can tell without waiting (its
    /// buckets are in this process's memory); `None` when the caller must await `check`. Counts
    /// the request exactly like `check` does. The hot path calls this first, so an in-process
    /// limiter costs no boxed future.
    fn check_now(&self, _bucket: &str, _limit: RateLimit) -> Option<RateDecision> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_second(n: u32) -> RateLimit {
        RateLimit::new(n, Duration::from_secs(1)).unwrap()
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// Runs `times` requests at `now`, carrying the TAT along.
    fn burst(limit: RateLimit, tat: &mut Option<Duration>, now: Duration, times: u32) -> Vec<RateDecision> {
        (0..times)
            .map(|_| {
                let (decision, new_tat) = gcra(limit, *tat, now);
                if let Some(new_tat) = new_tat {
                    *tat = Some(new_tat);
                }
                decision
            })
            .collect()
    }

    #[test]
    fn a_burst_of_the_limit_passes_then_requests_are_refused() {
        let limit = per_second(5);
        let mut tat = None;
        let decisions = burst(limit, &mut tat, ms(1000), 7);
        let allowed: Vec<_> = decisions.iter().map(|d| d.allowed).collect();
        assert_eq!(allowed, [true, true, true, true, true, false, false]);
        let remaining: Vec<_> = decisions.iter().map(|d| d.remaining).collect();
        assert_eq!(remaining, [4, 3, 2, 1, 0, 0, 0]);
        assert!(decisions.iter().all(|d| d.limit == 5));
        assert_eq!(decisions[5].retry_after, Some(ms(200)), "one interval");
        assert_eq!(decisions[4].reset_after, ms(1000), "full again after a period");
        assert_eq!(decisions[5].retry_after_secs(), Some(1));
        assert_eq!(decisions[4].retry_after, None);
        assert_eq!(tat, Some(ms(2000)), "refusals do not move the TAT");
    }

    #[test]
    fn tokens_come_back_one_interval_at_a_time() {
        let limit = per_second(5);
        let mut tat = None;
        burst(limit, &mut tat, ms(0), 5);
        assert!(!gcra(limit, tat, ms(199)).0.allowed);
        let (decision, _) = gcra(limit, tat, ms(200));
        assert!(decision.allowed);
        assert_eq!(decision.remaining, 0);
        // After a whole idle period the bucket is full again.
        let later = burst(limit, &mut tat, ms(5000), 6);
        assert_eq!(later.iter().filter(|d| d.allowed).count(), 5);
    }

    #[test]
    fn reset_after_grows_by_one_interval_per_request_and_shrinks_with_time() {
        let limit = per_second(4);
        let mut tat = None;
        let resets: Vec<_> = burst(limit, &mut tat, ms(0), 4).iter().map(|d| d.reset_after.as_millis()).collect();
        assert_eq!(resets, [250, 500, 750, 1000]);
        let refused = gcra(limit, tat, ms(100)).0;
        assert_eq!(refused.reset_after, ms(900));
        assert_eq!(refused.retry_after, Some(ms(150)));
        // Half a period later two tokens are back.
        let later = burst(limit, &mut tat, ms(500), 3);
        assert_eq!(
            later.iter().map(|d| (d.allowed, d.remaining)).collect::<Vec<_>>(),
            [(true, 1), (true, 0), (false, 0)]
        );
    }

    #[test]
    fn a_limit_that_does_not_divide_its_period_still_counts_exactly() {
        let limit = per_second(3);
        let mut tat = None;
        let decisions = burst(limit, &mut tat, ms(0), 4);
        let seen: Vec<_> = decisions.iter().map(|d| (d.allowed, d.remaining)).collect();
        assert_eq!(seen, [(true, 2), (true, 1), (true, 0), (false, 0)]);
        assert_eq!(decisions[2].reset_after, ms(1000));
        assert_eq!(decisions[2].reset_secs(), 1, "float noise does not make it 2");
        assert_eq!(decisions[3].retry_after, Some(Duration::from_micros(333_333)));
        assert!(!gcra(limit, tat, ms(333)).0.allowed);
        assert!(gcra(limit, tat, Duration::from_micros(333_334)).0.allowed);
    }

    /// Redis's clock is milliseconds since 1970: counts and headers come out exact there too
    /// (with absolute floating-point times they did not).
    #[test]
    fn counts_are_exact_at_epoch_magnitudes() {
        for requests in [3, 6, 7, 11, 13, 60, 99, 101, 997] {
            let limit = per_second(requests);
            for step in 0..200 {
                let now = Duration::from_micros(1_760_000_000_000_000 + step * 7_123);
                let mut tat = None;
                let decisions = burst(limit, &mut tat, now, requests + 1);
                let remaining: Vec<_> = decisions.iter().map(|d| d.remaining).collect();
                let expected: Vec<_> = (0..requests).rev().chain([0]).collect();
                assert_eq!(remaining, expected, "{requests}/s at {now:?}");
                assert!(decisions[..requests as usize].iter().all(|d| d.allowed), "{requests}/s at {now:?}");
                let (last, refused) = (&decisions[requests as usize - 1], &decisions[requests as usize]);
                assert!(!refused.allowed);
                assert_eq!(last.reset_after, ms(1000), "{requests}/s at {now:?}");
                assert_eq!(last.reset_secs(), 1);
            }
        }
    }

    #[test]
    fn one_per_day_refuses_for_the_rest_of_the_day() {
        let limit = RateLimit::new(1, Duration::from_secs(86_400)).unwrap();
        let mut tat = None;
        let decisions = burst(limit, &mut tat, ms(1_700_000_000_000), 2);
        assert_eq!((decisions[0].allowed, decisions[0].remaining), (true, 0));
        assert_eq!(decisions[1].retry_after_secs(), Some(86_400));
        assert_eq!(decisions[1].reset_secs(), 86_400);
    }

    /// Over an irregular stream of requests: no window of length `d` lets more than
    /// `limit + d / interval` through, and `retry_after` is exactly when the next one would pass.
    #[test]
    fn the_limit_holds_over_any_window_and_retry_after_is_exact() {
        let limit = RateLimit::new(7, ms(700)).unwrap();
        let interval = 100.0;
        let mut tat = None;
        let mut now = ms(0);
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut allowed_at = Vec::new();
        for _ in 0..5000 {
            // A small LCG: gaps of 0-63 ms a quarter of the time, so bursts and trickles alternate.
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            if seed & 3 == 0 {
                now += ms(seed >> 58);
            }
            let (decision, new_tat) = gcra(limit, tat, now);
            assert!(decision.remaining < 7 && decision.reset_after <= limit.period());
            match new_tat {
                Some(new_tat) => {
                    tat = Some(new_tat);
                    allowed_at.push(now.as_secs_f64() * 1000.0);
                }
                None => {
                    let wait = decision.retry_after.unwrap();
                    assert!(wait > Duration::ZERO);
                    assert!(gcra(limit, tat, now + wait).0.allowed, "allowed after retry_after");
                    let early = now + wait - Duration::from_micros(10);
                    assert!(!gcra(limit, tat, early).0.allowed, "not before");
                }
            }
        }
        assert!(allowed_at.len() > 100, "the stream exercised refills: {}", allowed_at.len());
        for (i, start) in allowed_at.iter().enumerate() {
            for (j, end) in allowed_at.iter().enumerate().skip(i) {
                let most = 7.0 + (end - start) / interval;
                assert!((j - i + 1) as f64 <= most + 1e-6, "{} requests in {} ms", j - i + 1, end - start);
            }
        }
    }

    /// A limiter with a remote store: it cannot answer without waiting.
    struct Remote;

    #[async_trait]
    impl RateLimiter for Remote {
        async fn check(&self, _bucket: &str, _limit: RateLimit) -> Result<RateDecision, RateLimitError> {
            Err(RateLimitError::Unavailable("not connected".into()))
        }
    }

    #[test]
    fn a_limiter_answers_at_once_only_if_it_says_so() {
        assert_eq!(Remote.check_now("key:a", per_second(1)), None);
    }

    #[test]
    fn limits_must_be_positive_and_not_finer_than_10_microseconds() {
        assert_eq!(RateLimit::new(0, Duration::from_secs(1)), Err(InvalidRateLimit));
        assert_eq!(RateLimit::new(1, Duration::ZERO), Err(InvalidRateLimit));
        assert!(RateLimit::new(1, ms(1)).is_ok());
        assert!(RateLimit::new(100_000, Duration::from_secs(1)).is_ok());
        assert_eq!(RateLimit::new(100_001, Duration::from_secs(1)), Err(InvalidRateLimit));
        assert_eq!(per_second(4).interval(), ms(250));
    }
}
