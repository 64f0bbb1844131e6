//! Both adapters against their real stores: memory always, Redis when `OTESSE_TEST_REDIS_URL`
//! is set at build time (e.g. `OTESSE_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo test -p
//! otesse-ratelimit`); without it the Redis tests are listed as ignored, with the reason.
//! Nothing sleeps: the in-process limiter runs on a test clock, and Redis's own clock is read
//! with `TIME` where a test needs to know it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otesse_domain::rate_limit::{RateDecision, RateLimit, RateLimitError, RateLimiter, gcra};
use otesse_ratelimit::{DEFAULT_TIMEOUT, InProcessRateLimiter, RedisRateLimiter};

fn per_minute(n: u32) -> RateLimit {
    RateLimit::new(n, Duration::from_secs(60)).unwrap()
}

fn per_hour(n: u32) -> RateLimit {
    RateLimit::new(n, Duration::from_secs(3600)).unwrap()
}

/// A clock the test moves by hand.
#[derive(Clone, Default)]
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn advance(&self, by: Duration) {
        self.0.fetch_add(u64::try_from(by.as_micros()).unwrap(), Ordering::SeqCst);
    }

    fn limiter(&self) -> InProcessRateLimiter {
        let micros = self.0.clone();
        InProcessRateLimiter::with_clock(move || Duration::from_micros(micros.load(Ordering::SeqCst)))
    }
}

#[tokio::test]
async fn in_process_buckets_are_separate_and_refill_on_the_injected_clock() {
    let clock = TestClock::default();
    let limiter = clock.limiter();
    let limit = RateLimit::new(3, Duration::from_secs(3)).unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(limiter.check("a", limit).await.unwrap());
    }
    let summary: Vec<_> = seen.iter().map(|d| (d.allowed, d.remaining, d.reset_after.as_secs())).collect();
    assert_eq!(summary, [(true, 2, 1), (true, 1, 2), (true, 0, 3), (false, 0, 3)]);
    assert_eq!(seen[3].retry_after, Some(Duration::from_secs(1)));
    assert!(limiter.check("b", limit).await.unwrap().allowed, "another bucket is untouched");

    clock.advance(Duration::from_millis(990));
    let refused = limiter.check("a", limit).await.unwrap();
    assert_eq!(refused.retry_after, Some(Duration::from_millis(10)));
    clock.advance(Duration::from_millis(10));
    assert!(limiter.check("a", limit).await.unwrap().allowed, "one back after one interval");
    assert!(!limiter.check("a", limit).await.unwrap().allowed);

    clock.advance(Duration::from_secs(3));
    let full = limiter.check("a", limit).await.unwrap();
    assert_eq!((full.allowed, full.remaining), (true, 2), "full again after a period");
}

/// The hot path asks without awaiting: the same buckets, counted the same way.
#[tokio::test]
async fn in_process_answers_at_once_from_the_same_buckets() {
    let clock = TestClock::default();
    let limiter = clock.limiter();
    let limit = RateLimit::new(2, Duration::from_secs(2)).unwrap();
    let first = limiter.check_now("a", limit).expect("an in-process limiter always answers at once");
    assert_eq!((first.allowed, first.remaining), (true, 1));
    assert_eq!(limiter.check("a", limit).await.unwrap().remaining, 0, "check sees what check_now counted");
    let refused = limiter.check_now("a", limit).unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
    assert!(limiter.check_now("b", limit).unwrap().allowed, "another bucket is untouched");
}

#[test]
fn in_process_memory_stays_bounded() {
    let limiter = InProcessRateLimiter::new();
    let limit = RateLimit::new(1, Duration::from_millis(10)).unwrap();
    for n in 0..200_000u32 {
        limiter.check_at(&format!("bucket-{n}"), limit, Duration::from_millis(n.into()));
    }
    assert!(limiter.len() < 32 * 4096, "idle buckets are swept: {}", limiter.len());
}

#[test]
fn in_process_sweeps_never_forget_a_busy_bucket() {
    // 100k buckets, all busy for an hour: sweeps find nothing to drop, must not rescan the
    // shard on every insert (this would take minutes), and must keep "hot" drained.
    let limiter = InProcessRateLimiter::new();
    let now = Duration::from_secs(10);
    assert!(limiter.check_at("hot", per_hour(1), now).allowed);
    for n in 0..100_000 {
        limiter.check_at(&format!("busy-{n}"), per_hour(1), now);
    }
    assert_eq!(limiter.len(), 100_001);
    assert!(!limiter.check_at("hot", per_hour(1), now).allowed);
    // An hour later every bucket is full; new buckets sweep them away.
    let later = now + Duration::from_secs(3600);
    for n in 0..32 * 4096 {
        limiter.check_at(&format!("new-{n}"), per_hour(1), later);
    }
    assert!(limiter.len() <= 32 * 4096 + 32, "{}", limiter.len());
    assert!(limiter.check_at("hot", per_hour(1), later).allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_process_concurrent_checks_allow_exactly_the_limit() {
    let limiter = Arc::new(InProcessRateLimiter::new());
    let checks = (0..300).map(|_| {
        let limiter = limiter.clone();
        tokio::spawn(async move { limiter.check("key:1", per_hour(100)).await.unwrap() })
    });
    let decisions: Vec<_> = futures_util::future::join_all(checks).await.into_iter().map(Result::unwrap).collect();
    assert_allowed_exactly(&decisions, 100);
}

/// Exactly `limit` allowed, each telling a different `remaining` from `limit - 1` down to 0
/// (so the count went down one by one, atomically); every refusal says wait.
fn assert_allowed_exactly(decisions: &[RateDecision], limit: u32) {
    let mut remaining: Vec<_> = decisions.iter().filter(|d| d.allowed).map(|d| d.remaining).collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..limit).collect::<Vec<_>>());
    for refused in decisions.iter().filter(|d| !d.allowed) {
        assert_eq!((refused.limit, refused.remaining), (limit, 0));
        let retry = refused.retry_after.expect("a refusal says when to retry");
        assert!(retry > Duration::ZERO && retry <= per_hour(limit).interval(), "{retry:?}");
        assert!(refused.reset_after > Duration::from_secs(3500) && refused.reset_after <= Duration::from_secs(3600));
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_refusal() {
    // A port that was just free: nothing listens there, so connecting is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let result = RedisRateLimiter::connect(&format!("redis://127.0.0.1:{port}"), "otesse-test:").await;
    assert!(matches!(result, Err(RateLimitError::Unavailable(_))));
}

fn redis_url() -> String {
    std::env::var("OTESSE_TEST_REDIS_URL").expect("OTESSE_TEST_REDIS_URL is set when otesse_redis is")
}

/// A fresh prefix per test, so tests never share a bucket (and runs never see old ones).
fn prefix() -> String {
    format!("otesse-test:{}:", uuid::Uuid::new_v4())
}

async fn redis_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Redis's clock, as a duration since 1970.
async fn redis_now(connection: &mut redis::aio::MultiplexedConnection) -> Duration {
    let (secs, micros): (u64, u32) = redis::cmd("TIME").query_async(connection).await.unwrap();
    Duration::new(secs, micros * 1000)
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
        tokio::spawn(async move { limiter.check("key:shared", per_hour(50)).await.unwrap() })
    });
    let decisions: Vec<_> = futures_util::future::join_all(checks).await.into_iter().map(Result::unwrap).collect();
    assert_allowed_exactly(&decisions, 50);
    let refused = decisions.iter().find(|d| !d.allowed).unwrap();
    assert_eq!(refused.retry_after_secs(), Some(72), "one interval of 50 per hour: {:?}", refused.retry_after);
}

#[tokio::test]
#[cfg_attr(not(otesse_redis), ignore = "set OTESSE_TEST_REDIS_URL to run against Redis")]
async fn redis_counts_down_and_its_keys_expire_when_the_bucket_is_full() {
    let prefix = prefix();
    let limiter = RedisRateLimiter::connect(&redis_url(), &prefix).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(limiter.check("key:countdown", per_minute(3)).await.unwrap());
    }
    let summary: Vec<_> = seen.iter().map(|d| (d.allowed, d.limit, d.remaining, d.reset_secs())).collect();
    assert_eq!(summary, [(true, 3, 2, 20), (true, 3, 1, 40), (true, 3, 0, 60), (false, 3, 0, 60)]);
    assert_eq!(seen[3].retry_after_secs(), Some(20));
    assert!(seen[3].retry_after.unwrap() > Duration::from_secs(19));

    let mut connection = redis_connection().await;
    let ttl: i64 = redis::cmd("PTTL").arg(format!("{prefix}key:countdown")).query_async(&mut connection).await.unwrap();
    assert!(ttl > 59_000 && ttl <= 60_000, "the key lives until the bucket is full again: {ttl} ms");
}

#[tokio::test]
#[cfg_attr(not(otesse_redis), ignore = "set OTESSE_TEST_REDIS_URL to run against Redis")]
async fn redis_refills_like_the_domain_gcra() {
    // Rather than wait for tokens to come back, put the bucket where a drained 5-per-second
    // bucket is 250 ms later (a token and a quarter back), written in the script's format.
    let prefix = prefix();
    let limiter = RedisRateLimiter::connect(&redis_url(), &prefix).await.unwrap();
    let limit = RateLimit::new(5, Duration::from_secs(1)).unwrap();
    let mut connection = redis_connection().await;
    let started = Instant::now();
    let now = redis_now(&mut connection).await;
    let tat = now + Duration::from_millis(750);
    let stored = format!("{}:{}", tat.as_millis(), f64::from(tat.subsec_micros() % 1000) / 1000.0);
    let key = format!("{prefix}key:refill");
    let _: () = redis::cmd("SET").arg(&key).arg(stored).arg("PX").arg(750).query_async(&mut connection).await.unwrap();
    let allowed = limiter.check("key:refill", limit).await.unwrap();
    let refused = limiter.check("key:refill", limit).await.unwrap();
    // Redis's clock moved on by at most `drift` since `now`; the durations shrink by as much.
    let drift = started.elapsed();

    let (expected_allowed, new_tat) = gcra(limit, Some(tat), now);
    let (expected_refused, _) = gcra(limit, new_tat, now);
    assert_eq!((allowed.allowed, allowed.remaining), (true, 0));
    assert_eq!((refused.allowed, refused.remaining), (false, 0));
    assert_eq!(expected_refused.retry_after, Some(Duration::from_millis(150)));
    let slack = Duration::from_micros(1);
    let close = |got: Duration, want: Duration| got <= want + slack && got + drift + slack >= want;
    assert!(close(allowed.reset_after, expected_allowed.reset_after), "{allowed:?} vs {expected_allowed:?}");
    assert!(close(refused.reset_after, expected_refused.reset_after), "{refused:?} vs {expected_refused:?}");
    let (retry, expected_retry) = (refused.retry_after.unwrap(), expected_refused.retry_after.unwrap());
    assert!(close(retry, expected_retry), "{retry:?} vs {expected_retry:?}");
}

#[tokio::test]
#[cfg_attr(not(otesse_redis), ignore = "set OTESSE_TEST_REDIS_URL to run against Redis")]
async fn redis_counts_limits_that_do_not_divide_their_period_exactly() {
    // These lost a request or a unit of `remaining` to float rounding on epoch milliseconds.
    // Per 10 s: intervals short enough for the rounding to show, long enough (0.77 s and up)
    // that no token comes back while the test runs.
    let limiter = RedisRateLimiter::connect(&redis_url(), &prefix()).await.unwrap();
    for requests in [3, 6, 7, 11, 13] {
        let limit = RateLimit::new(requests, Duration::from_secs(10)).unwrap();
        let bucket = format!("key:{requests}");
        let mut seen = Vec::new();
        for _ in 0..=requests {
            let decision = limiter.check(&bucket, limit).await.unwrap();
            seen.push((decision.allowed, decision.remaining));
        }
        let expected: Vec<_> = (0..requests).rev().map(|r| (true, r)).chain([(false, 0)]).collect();
        assert_eq!(seen, expected, "{requests} per 10 s");
    }
}

/// A TCP proxy in front of Redis that can stall the connections it holds (they stay open,
/// nothing passes) or go away altogether, as a network partition or a restarting Redis would.
struct Proxy {
    addr: SocketAddr,
    stalls: Arc<Mutex<Vec<tokio::sync::watch::Sender<bool>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(listen: SocketAddr, upstream: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stalls = Arc::new(Mutex::new(Vec::new()));
        let registry = stalls.clone();
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it closes every proxied connection.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { continue };
                let (stall, stalled) = tokio::sync::watch::channel(false);
                registry.lock().unwrap().push(stall);
                let ((client_read, client_write), (server_read, server_write)) =
                    (client.into_split(), server.into_split());
                connections.spawn(async move {
                    tokio::join!(
                        pipe(client_read, server_write, stalled.clone()),
                        pipe(server_read, client_write, stalled)
                    );
                });
            }
        });
        Self { addr, stalls, task }
    }

    /// Every connection open now stops passing bytes; new ones work.
    fn stall_open_connections(&self) {
        for stall in self.stalls.lock().unwrap().iter() {
            stall.send_replace(true);
        }
    }

    /// Closes the listener and every connection.
    async fn stop(self) -> SocketAddr {
        self.task.abort();
        let _ = self.task.await;
        self.addr
    }

    fn url(&self) -> String {
        let mut url = url::Url::parse(&redis_url()).unwrap();
        url.set_ip_host(self.addr.ip()).unwrap();
        url.set_port(Some(self.addr.port())).unwrap();
        url.to_string()
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0; 16 * 1024];
    loop {
        let stall = *stalled.borrow_and_update();
        tokio::select! {
            read = from.read(&mut buf), if !stall => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => if to.write_all(&buf[..n]).await.is_err() { return },
            },
            // Stalled for good: hold both sockets open and pass nothing.
            changed = stalled.changed() => if changed.is_err() { std::future::pending::<()>().await },
        }
    }
}

async fn redis_addr() -> SocketAddr {
    let url = url::Url::parse(&redis_url()).unwrap();
    let host = url.host_str().unwrap().to_owned();
    tokio::net::lookup_host((host, url.port().unwrap_or(6379))).await.unwrap().next().unwrap()
}

/// Checks until one is answered, at most `attempts` times (no waiting in between: each check
/// waits at most the limiter's timeout). Returns the errors seen before the answer.
async fn errors_until_answered(limiter: &RedisRateLimiter, bucket: &str, attempts: usize) -> usize {
    for errors in 0..attempts {
        if limiter.check(bucket, per_hour(100)).await.is_ok() {
            return errors;
        }
    }
    panic!("no answer in {attempts} checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(otesse_redis), ignore = "set OTESSE_TEST_REDIS_URL to run against Redis")]
async fn a_stalled_redis_is_an_error_within_the_timeout_then_a_fresh_connection_answers() {
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), redis_addr().await).await;
    let limiter = RedisRateLimiter::connect(&proxy.url(), &prefix()).await.unwrap();
    assert!(limiter.check("key:stall", per_hour(100)).await.unwrap().allowed);

    proxy.stall_open_connections();
    let started = Instant::now();
    let result = limiter.check("key:stall", per_hour(100)).await;
    let took = started.elapsed();
    assert!(matches!(result, Err(RateLimitError::Unavailable(_))), "{result:?}");
    assert!(took >= DEFAULT_TIMEOUT - Duration::from_millis(5), "it waited for the answer: {took:?}");
    assert!(took < DEFAULT_TIMEOUT + Duration::from_millis(500), "then gave up: {took:?}");

    // The stalled connection stays open for good; the limiter must not keep using it.
    assert_eq!(errors_until_answered(&limiter, "key:stall", 3).await, 0, "the next check uses a new connection");
    let _ = proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(otesse_redis), ignore = "set OTESSE_TEST_REDIS_URL to run against Redis")]
async fn a_redis_that_goes_away_is_an_error_and_the_limiter_reconnects_when_it_is_back() {
    let upstream = redis_addr().await;
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), upstream).await;
    let limiter = RedisRateLimiter::connect(&proxy.url(), &prefix()).await.unwrap();
    assert!(limiter.check("key:away", per_hour(100)).await.unwrap().allowed);

    let addr = proxy.stop().await;
    for _ in 0..3 {
        let started = Instant::now();
        let result = limiter.check("key:away", per_hour(100)).await;
        assert!(matches!(result, Err(RateLimitError::Unavailable(_))), "{result:?}");
        assert!(started.elapsed() < DEFAULT_TIMEOUT + Duration::from_millis(500), "{:?}", started.elapsed());
    }

    // Back on the same address: answered again within a few checks, the same bucket intact.
    let proxy = Proxy::start(addr, upstream).await;
    errors_until_answered(&limiter, "key:away", 5).await;
    let decision = limiter.check("key:away", per_hour(100)).await.unwrap();
    assert_eq!(decision.remaining, 97, "the two checks before and the one above were counted");
    let _ = proxy.stop().await;
}
