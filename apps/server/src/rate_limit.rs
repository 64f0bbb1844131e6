//! Rate limits at the edge (W2): per API key on every keyed request, per client address on
//! sign-in, per user on key creation and rotation. A decision is left in the request's
//! extensions; [`crate::extract::log_key_usage`], which wraps every `/v1` route, turns it into
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
    /// not decide), a 429 otherwise. The decision is left on the request for the headers.
    pub async fn check(&self, req: &HttpRequest, bucket: &str, limit: RateLimit) -> Result<(), ApiError> {
        match self.limiter.check(bucket, limit).await {
            Ok(decision) => {
                req.extensions_mut().insert(decision);
                if decision.allowed {
                    Ok(())
                } else {
                    self.metrics.rate_limited.inc();
                    Err(refused(&decision))
                }
            }
            Err(err) => {
                self.metrics.rate_limiter_errors.inc();
                tracing::warn!(error = %err, "rate limiter unavailable; letting the request through");
                Ok(())
            }
        }
    }
}

fn refused(decision: &RateDecision) -> ApiError {
    let seconds = decision.retry_after_secs().unwrap_or(1);
    ApiError {
        code: ErrorCode::RateLimited,
        message: format!("Too many requests. Retry in {seconds} second{}.", if seconds == 1 { "" } else { "s" }).into(),
        retry_after: Some(seconds),
    }
}

/// Adds the `RateLimit-*` headers of `decision`.
pub fn apply_headers(headers: &mut HeaderMap, decision: &RateDecision) {
    headers.insert(HeaderName::from_static("ratelimit-limit"), HeaderValue::from(decision.limit));
    headers.insert(HeaderName::from_static("ratelimit-remaining"), HeaderValue::from(decision.remaining));
    headers.insert(HeaderName::from_static("ratelimit-reset"), HeaderValue::from(decision.reset_secs()));
}
