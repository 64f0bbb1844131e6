//! Rate limits at the edge (W2): per API key on every keyed request, per client address on
//! sign-in, per user on key creation and rotation. A decision is left in the request's
//! extensions; [`crate::identify::identify`], which wraps every `/v1` route, turns it into
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers (a 429 adds
//! `Retry-After`).
//!
//! When the limiter cannot decide (Redis unreachable) the request goes through: logged and
//! counted (`otesse_rate_limiter_errors_total`), because refusing all traffic while a limiter is
//! down would turn a small outage into a full one.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpMessage, HttpRequest};
use otesse_domain::api_key::ApiKeyId;
use otesse_domain::rate_limit::{RateDecision, RateLimit, RateLimiter};

use crate::config::RateLimitSettings;
use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;

/// The limiter and the configured limits.
#[derive(Clone)]
pub struct Limits {
    limiter: Arc<dyn RateLimiter>,
    pub per_key: RateLimit,
    pub sign_in: RateLimit,
    pub key_creation: RateLimit,
    metrics: Metrics,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").field("per_key", &self.per_key).finish_non_exhaustive()
    }
}

fn limit(requests: u32, period_secs: u64, what: &str) -> Result<RateLimit, String> {
    RateLimit::new(requests, Duration::from_secs(period_secs)).map_err(|e| format!("rate_limit.{what}: {e}"))
}

impl Limits {
    pub fn new(limiter: Arc<dyn RateLimiter>, settings: &RateLimitSettings, metrics: Metrics) -> Result<Self, String> {
        Ok(Self {
            limiter,
            per_key: limit(settings.key_requests, settings.key_period_secs, "key")?,
            sign_in: limit(settings.sign_in_requests, settings.sign_in_period_secs, "sign_in")?,
            key_creation: limit(settings.key_creation_requests, settings.key_creation_period_secs, "key_creation")?,
            metrics,
        })
    }

    /// Counts the request against `bucket`: Ok when it may go on (also when the limiter could
    /// not decide), a 429 otherwise. The decision is left on the request for the headers. An
    /// in-process limiter answers at once ([`RateLimiter::check_now`]): no boxed future.
    pub async fn check(&self, req: &HttpRequest, bucket: &str, limit: RateLimit) -> Result<(), ApiError> {
        if let Some(decision) = self.limiter.check_now(bucket, limit) {
            return self.decided(req, decision);
        }
        match self.limiter.check(bucket, limit).await {
            Ok(decision) => self.decided(req, decision),
            Err(err) => {
                self.metrics.rate_limiter_errors.inc();
                tracing::warn!(error = %err, "rate limiter unavailable; letting the request through");
                Ok(())
            }
        }
    }

    /// Counts one request against `bucket` and returns the decision, leaving nothing on any
    /// request: for the verification API, which answers a key's state in its body, not in its
    /// own headers. `None` when the limiter could not decide (the request goes through).
    pub async fn decide(&self, bucket: &str, limit: RateLimit) -> Option<RateDecision> {
        let decision = match self.limiter.check_now(bucket, limit) {
            Some(decision) => decision,
            None => match self.limiter.check(bucket, limit).await {
                Ok(decision) => decision,
                Err(err) => {
                    self.metrics.rate_limiter_errors.inc();
                    tracing::warn!(error = %err, "rate limiter unavailable; letting the request through");
                    return None;
                }
            },
        };
        if !decision.allowed {
            self.metrics.rate_limited.inc();
        }
        Some(decision)
    }

    fn decided(&self, req: &HttpRequest, decision: RateDecision) -> Result<(), ApiError> {
        req.extensions_mut().insert(decision);
        if decision.allowed {
            Ok(())
        } else {
            self.metrics.rate_limited.inc();
            Err(refused(&decision))
        }
    }
}

/// The bucket of an API key, `key:<id>`, built on the stack: it is named on every keyed request.
pub struct KeyBucket([u8; KeyBucket::LEN]);

impl KeyBucket {
    const PREFIX: &'static [u8] = b"key:";
    const LEN: usize = Self::PREFIX.len() + uuid::fmt::Hyphenated::LENGTH;

    pub fn new(key: ApiKeyId) -> Self {
        let mut buffer = [0u8; Self::LEN];
        buffer[..Self::PREFIX.len()].copy_from_slice(Self::PREFIX);
        key.0.hyphenated().encode_lower(&mut buffer[Self::PREFIX.len()..]);
        Self(buffer)
    }

    pub fn as_str(&self) -> &str {
        // ASCII by construction; the fallback is unreachable.
        std::str::from_utf8(&self.0).unwrap_or("key:")
    }
}

/// The 429 answer for a refused decision.
pub fn refused(decision: &RateDecision) -> ApiError {
    let seconds = decision.retry_after_secs().unwrap_or(1);
    ApiError {
        code: ErrorCode::RateLimited,
        message: format!("Too many requests. Retry in {seconds} second{}.", if seconds == 1 { "" } else { "s" }).into(),
        retry_after: Some(seconds),
    }
}

/// Adds the `RateLimit-*` headers of `decision`.
pub fn apply_headers(headers: &mut HeaderMap, decision: &RateDecision) {
    let [limit, remaining, reset] =
        header_values([u64::from(decision.limit), u64::from(decision.remaining), decision.reset_secs()]);
    headers.insert(HeaderName::from_static("ratelimit-limit"), limit);
    headers.insert(HeaderName::from_static("ratelimit-remaining"), remaining);
    headers.insert(HeaderName::from_static("ratelimit-reset"), reset);
}

thread_local! {
    /// The values this worker formatted last, per header: the limit of a key's bucket never
    /// changes and its reset rarely does, and a copy of a formatted value shares its bytes
    /// where formatting it again allocates.
    static LAST_VALUES: std::cell::RefCell<[(u64, HeaderValue); 3]> =
        std::cell::RefCell::new(std::array::from_fn(|_| (0, HeaderValue::from_static("0"))));
}

fn header_values(numbers: [u64; 3]) -> [HeaderValue; 3] {
    LAST_VALUES.with_borrow_mut(|last| {
        std::array::from_fn(|i| {
            if last[i].0 != numbers[i] {
                last[i] = (numbers[i], HeaderValue::from(numbers[i]));
            }
            last[i].1.clone()
        })
    })
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn a_key_bucket_is_key_colon_id() {
        let id = Uuid::parse_str("0190a8e4-5b7c-7d1e-9f00-123456789abc").unwrap();
        assert_eq!(KeyBucket::new(ApiKeyId(id)).as_str(), "key:0190a8e4-5b7c-7d1e-9f00-123456789abc");
        assert_eq!(KeyBucket::new(ApiKeyId(id)).as_str(), format!("key:{id}"), "what the buckets were named before");
    }

    fn headers(limit: u32, remaining: u32, reset_after: Duration) -> Vec<(String, String)> {
        let mut map = HeaderMap::new();
        let decision = RateDecision { allowed: true, limit, remaining, reset_after, retry_after: None };
        apply_headers(&mut map, &decision);
        let mut pairs: Vec<_> =
            map.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())).collect();
        pairs.sort();
        pairs
    }

    #[test]
    fn headers_carry_each_decision_s_numbers_whatever_came_before() {
        let expect = |limit: &str, remaining: &str, reset: &str| {
            vec![
                ("ratelimit-limit".to_owned(), limit.to_owned()),
                ("ratelimit-remaining".to_owned(), remaining.to_owned()),
                ("ratelimit-reset".to_owned(), reset.to_owned()),
            ]
        };
        assert_eq!(headers(100, 99, Duration::from_millis(10)), expect("100", "99", "1"));
        assert_eq!(headers(100, 98, Duration::from_millis(20)), expect("100", "98", "1"));
        assert_eq!(headers(100, 98, Duration::from_millis(1_001)), expect("100", "98", "2"));
        assert_eq!(headers(5, 0, Duration::ZERO), expect("5", "0", "0"));
        assert_eq!(
            headers(4_000_000_000, 3_999_999_999, Duration::from_secs(86_400)),
            expect("4000000000", "3999999999", "86400")
        );
    }
}
