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

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a rate limit needs at least 1 request per period of at least 1 millisecond")]
pub struct InvalidRateLimit;

impl RateLimit {
    pub fn new(limit: u32, period: Duration) -> Result<Self, InvalidRateLimit> {
        if limit == 0 || period < Duration::from_millis(1) {
            return Err(InvalidRateLimit);
        }
        Ok(Self { limit, period })
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn period(&self) -> Duration {
        self.period
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
    pub allowed: bool,
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

/// GCRA: the decision for a request at `now_ms` on a bucket whose stored TAT is `tat_ms` (none
/// for a fresh bucket), and the TAT to store when allowed. Times are milliseconds on any
/// clock, as long as it is the same one for a bucket.
pub fn gcra(limit: RateLimit, tat_ms: Option<f64>, now_ms: f64) -> (RateDecision, Option<f64>) {
    let period = limit.period_ms();
    let interval = limit.interval_ms();
    let tat = tat_ms.unwrap_or(now_ms).max(now_ms);
    let new_tat = tat + interval;
    let allow_at = new_tat - period;
    let ms = |v: f64| Duration::from_micros((v.max(0.0) * 1000.0).ceil() as u64);
    if now_ms < allow_at {
        let decision = RateDecision {
            allowed: false,
            limit: limit.limit,
            remaining: 0,
            reset_after: ms(tat - now_ms),
            retry_after: Some(ms(allow_at - now_ms)),
        };
        return (decision, None);
    }
    // Small epsilon: float rounding must not cost a whole request.
    let remaining = ((period - (new_tat - now_ms)) / interval + 1e-9).floor().max(0.0) as u32;
    let decision = RateDecision {
        allowed: true,
        limit: limit.limit,
        remaining: remaining.min(limit.limit),
        reset_after: ms(new_tat - now_ms),
        retry_after: None,
    };
    (decision, Some(new_tat))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rate limiter is unavailable: {0}")]
pub struct RateLimitError(pub String);

/// Counts requests per bucket (`key:<id>`, `sign-in:<ip>`, ...).
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request against `bucket` and says whether it is allowed. An error means the
    /// limiter could not decide (its store is unreachable); the caller chooses to fail open.
    async fn check(&self, bucket: &str, limit: RateLimit) -> Result<RateDecision, RateLimitError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_second(n: u32) -> RateLimit {
        RateLimit::new(n, Duration::from_secs(1)).unwrap()
    }

    /// Runs `times` requests at `now`, carrying the TAT along.
    fn burst(limit: RateLimit, tat: &mut Option<f64>, now: f64, times: u32) -> Vec<RateDecision> {
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
        let decisions = burst(limit, &mut tat, 1000.0, 7);
        let allowed: Vec<_> = decisions.iter().map(|d| d.allowed).collect();
        assert_eq!(allowed, [true, true, true, true, true, false, false]);
        let remaining: Vec<_> = decisions.iter().map(|d| d.remaining).collect();
        assert_eq!(remaining, [4, 3, 2, 1, 0, 0, 0]);
        assert_eq!(decisions[5].retry_after, Some(Duration::from_millis(200)), "one interval");
        assert_eq!(decisions[4].reset_after, Duration::from_secs(1), "full again after a period");
        assert_eq!(decisions[5].retry_after_secs(), Some(1));
    }

    #[test]
    fn tokens_come_back_one_interval_at_a_time() {
        let limit = per_second(5);
        let mut tat = None;
        burst(limit, &mut tat, 0.0, 5);
        assert!(!gcra(limit, tat, 199.0).0.allowed);
        let (decision, _) = gcra(limit, tat, 200.0);
        assert!(decision.allowed);
        assert_eq!(decision.remaining, 0);
        // After a whole idle period the bucket is full again.
        let later = burst(limit, &mut tat, 5000.0, 6);
        assert_eq!(later.iter().filter(|d| d.allowed).count(), 5);
    }

    #[test]
    fn limits_must_be_positive() {
        assert_eq!(RateLimit::new(0, Duration::from_secs(1)), Err(InvalidRateLimit));
        assert_eq!(RateLimit::new(1, Duration::ZERO), Err(InvalidRateLimit));
        assert!(RateLimit::new(1, Duration::from_millis(1)).is_ok());
    }
}
