//! Both adapters against their real stores: memory always, Redis when `OTESSE_TEST_REDIS_URL`
//! is set (e.g. `OTESSE_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo test -p otesse-ratelimit`).

use std::sync::Arc;
use std::time::Duration;

use otesse_domain::rate_limit::{RateLimit, RateLimiter};
use otesse_ratelimit::{InProcessRateLimiter, RedisRateLimiter};

fn per_minute(n: u32) -> RateLimit {
    RateLimit::new(n, Duration::from_secs(60)).unwrap()
}

#[test]
fn in_process_buckets_are_separate_and_refill() {
    let limiter = InProcessRateLimiter::new();
    let limit = RateLimit::new(3, Duration::from_secs(3)).unwrap();
    let allowed = |bucket: &str, now: f64| limiter.check_at(bucket, limit, now).allowed;
    assert_eq!([allowed("a", 0.0), allowed("a", 0.0), allowed("a", 0.0), allowed("a", 0.0)], [true, true, true, false]);
    assert!(allowed("b", 0.0), "another bucket is untouched");
    let refused = limiter.check_at("a", limit, 10.0);
    assert_eq!(refused.retry_after, Some(Duration::from_millis(990)));
    assert!(allowed("a", 1000.0), "one back after one interval");
    assert!(!allowed("a", 1000.0));
}

#[test]
fn in_process_memory_stays_bounded() {
    let limiter = InProcessRateLimiter::new();
    let limit = RateLimit::new(1, Duration::from_millis(10)).unwrap();
    for n in 0..200_000 {
        limiter.check_at(&format!("bucket-{n}"), limit, f64::from(n));
    }
    assert!(limiter.len() < 32 * 4097, "idle buckets are swept: {}", limiter.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_process_concurrent_checks_allow_exactly_the_limit() {
    let limiter = Arc::new(InProcessRateLimiter::new());
    let checks = (0..300).map(|_| {
        let limiter = limiter.clone();
        tokio::spawn(async move { limiter.check("key:1", per_minute(100)).await.unwrap().allowed })
    });
    let allowed = futures_util::future::join_all(checks).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(allowed, 100);
}

fn redis_url() -> String {
    std::env::var("OTESSE_TEST_REDIS_URL").expect("OTESSE_TEST_REDIS_URL")
}

fn prefix() -> String {
    format!("otesse-test:{}:", uuid::Uuid::new_v4())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(otesse_redis), ignore = "set OTESSE_TEST_REDIS_URL to run against Redis")]
async fn one_limit_holds_across_two_processes_connections() {
    let prefix = prefix();
    // Two limiters with their own connections, as two server processes would have.
    let first = RedisRateLimiter::connect(&redis_url(), &prefix).await.unwrap();
    let second = RedisRateLimiter::connect(&redis_url(), &prefix).await.unwrap();
    let checks = (0..150).map(|n| {
        let limiter = if n % 2 == 0 { first.clone() } else { second.clone() };
        tokio::spawn(async move { limiter.check("key:shared", per_minute(50)).await.unwrap() })
    });
    let decisions: Vec<_> = futures_util::future::join_all(checks).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 50);
    let refused = decisions.iter().find(|d| !d.allowed).unwrap();
    assert_eq!(refused.remaining, 0);
    let retry = refused.retry_after.unwrap();
    assert!(retry > Duration::ZERO && retry <= Duration::from_millis(1200), "{retry:?}");
    assert_eq!(refused.retry_after_secs(), Some(2).filter(|_| retry > Duration::from_secs(1)).or(Some(1)));
}

#[tokio::test]
#[cfg_attr(not(otesse_redis), ignore = "set OTESSE_TEST_REDIS_URL to run against Redis")]
async fn redis_counts_down_like_the_in_process_limiter() {
    let limiter = RedisRateLimiter::connect(&redis_url(), &prefix()).await.unwrap();
    let mut remaining = Vec::new();
    for _ in 0..4 {
        remaining.push(limiter.check("key:countdown", per_minute(3)).await.unwrap().remaining);
    }
    assert_eq!(remaining, [2, 1, 0, 0]);
    let full = limiter.check("key:other", per_minute(3)).await.unwrap();
    assert!(full.allowed);
    assert_eq!(full.reset_after.as_secs(), 20, "one interval of a 3-per-minute limit: {:?}", full.reset_after);
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_refusal() {
    // Port 9 (discard) is closed here; connecting fails fast.
    let result = RedisRateLimiter::connect("redis://127.0.0.1:9", "otesse-test:").await;
    assert!(result.is_err());
}
