//! Rate-limit adapters for the domain's [`RateLimiter`] port (W2). Both run the domain's GCRA
//! ([`gcra`]), so they answer the same for the same history.
//!
//! - [`InProcessRateLimiter`], the default: buckets in this process's memory. Cheap enough for
//!   every keyed request (one hash, one short lock on one of 32 shards, no allocation once a
//!   bucket exists). Each process counts on its own, so with N processes a key may make up to
//!   N times its limit.
//! - [`RedisRateLimiter`]: the same GCRA run atomically in Redis by one Lua script, so one limit
//!   holds across every process. Keys are `<prefix><bucket>` (the server uses
//!   [`DEFAULT_PREFIX`]) and expire when their bucket is full again, so idle buckets cost
//!   nothing.
//!
//! Failure: when Redis does not answer within the limiter's timeout (unreachable, reconnecting,
//! stalled), `check` returns [`RateLimitError::Unavailable`]. The caller fails open: the server
//! lets the request through, logs a warning and counts it (`otesse_rate_limiter_errors_total`),
//! as Stripe or Unkey would, rather than refuse all traffic because a limiter is down. The
//! timeout bounds what a Redis outage adds to each request.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use otesse_domain::rate_limit::{RateDecision, RateLimit, RateLimitError, RateLimiter, gcra};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

const SHARDS: usize = 32;
/// A shard is first swept of full (idle) buckets when it holds this many.
const SWEEP_ABOVE: usize = 4096;

/// Buckets in memory, sharded to keep lock contention low.
pub struct InProcessRateLimiter {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    now: Box<dyn Fn() -> Duration + Send + Sync>,
}

struct Shard {
    /// Bucket → TAT on the limiter's clock.
    buckets: HashMap<String, Duration>,
    /// The size at which the next sweep runs: twice what the last one kept, so a shard full
    /// of busy buckets is not rescanned on every insert (amortised O(1)).
    sweep_at: usize,
}

impl std::fmt::Debug for InProcessRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcessRateLimiter")
    }
}

impl Default for InProcessRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessRateLimiter {
    /// A limiter on the monotonic clock ([`Instant`]), what the server uses.
    pub fn new() -> Self {
        let started = Instant::now();
        Self::with_clock(move || started.elapsed())
    }

    /// A limiter reading the time from `now`: the time since any fixed origin, never going
    /// backwards. Tests drive time with it. (Not the domain's wall-clock `Clock`: a wall clock
    /// stepped back or forward would freeze or refill every bucket.)
    pub fn with_clock(now: impl Fn() -> Duration + Send + Sync + 'static) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard { buckets: HashMap::new(), sweep_at: SWEEP_ABOVE })).collect(),
            hasher: RandomState::new(),
            now: Box::new(now),
        }
    }

    /// The decision at `now` (on this limiter's clock): what [`RateLimiter::check`] does, with
    /// the time passed in.
    pub fn check_at(&self, bucket: &str, limit: RateLimit, now: Duration) -> RateDecision {
        let shard = &self.shards[(self.hasher.hash_one(bucket) as usize) % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(tat) = shard.buckets.get_mut(bucket) {
            let (decision, new_tat) = gcra(limit, Some(*tat), now);
            if let Some(new_tat) = new_tat {
                *tat = new_tat;
            }
            return decision;
        }
        let (decision, new_tat) = gcra(limit, None, now);
        if let Some(new_tat) = new_tat {
            if shard.buckets.len() >= shard.sweep_at {
                // A TAT in the past is a full bucket: forgetting it changes no decision.
                shard.buckets.retain(|_, tat| *tat > now);
                shard.sweep_at = (shard.buckets.len() * 2).max(SWEEP_ABOVE);
            }
            shard.buckets.insert(bucket.to_owned(), new_tat);
        }
        decision
    }

    /// Buckets held, full ones not yet swept included (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).buckets.len()).sum()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl RateLimiter for InProcessRateLimiter {
    /// Never fails.
    async fn check(&self, bucket: &str, limit: RateLimit) -> Result<RateDecision, RateLimitError> {
        Ok(self.check_at(bucket, limit, (self.now)()))
    }

    /// Always answers: the buckets are in memory.
    fn check_now(&self, bucket: &str, limit: RateLimit) -> Option<RateDecision> {
        Some(self.check_at(bucket, limit, (self.now)()))
    }
}

/// The key prefix the server uses for its buckets in Redis.
pub const DEFAULT_PREFIX: &str = "otesse:rl:";

/// The default for [`RedisRateLimiter::connect_with_timeout`]: generous for a Redis on the
/// same network (a check takes well under a millisecond there), short enough that an outage
/// adds little to each request before the caller fails open.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// The domain's `gcra`, step for step, in Lua. KEYS[1] the bucket; ARGV[1] the period in ms
/// and ARGV[2] the limit. Returns {allowed, remaining, reset_after_us, retry_after_us}.
///
/// Time is Redis's `TIME`, not the caller's: every process then measures every bucket on one
/// clock, and a process whose clock is skewed cannot refill or freeze buckets for the others.
/// (Reading `TIME` before a write needs script effects replication: the default since Redis 5,
/// the only mode since 7.)
///
/// The TAT is stored as `<whole ms since 1970>:<offset ms>`, and the script only ever does
/// floating-point arithmetic on offsets no larger than the period: on a plain float of
/// milliseconds since 1970 each rounding costs about 0.1 µs, enough to lose a request or
/// misreport `remaining` (see the domain's `gcra`). The key expires when its bucket is full.
const SCRIPT: &str = r"
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local interval = period / limit
local epsilon = 0.001
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_frac = (tonumber(t[2]) % 1000) / 1000
local ahead = 0
local stored = redis.call('GET', KEYS[1])
if stored then
  local whole, offset = string.match(stored, '^(%d+):(.+)$')
  if whole then
    ahead = (tonumber(whole) - now_ms) + (tonumber(offset) - now_frac)
    if ahead < 0 then ahead = 0 end
  end
end
local new_ahead = ahead + interval
local function us(ms) return math.floor(ms * 1000 + 0.5) end
if new_ahead > period + epsilon then
  return {0, 0, us(ahead), math.max(1, us(new_ahead - period))}
end
redis.call('SET', KEYS[1], string.format('%.0f:%.17g', now_ms, now_frac + new_ahead), 'PX', math.ceil(new_ahead))
local remaining = math.floor((period - new_ahead + epsilon) / interval)
if remaining > limit - 1 then remaining = limit - 1 end
return {1, remaining, us(new_ahead), 0}
";

/// Buckets in Redis: one limit across every process. Clones share one connection.
#[derive(Clone)]
pub struct RedisRateLimiter {
    shared: Arc<Shared>,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
}

struct Shared {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// The connection and its generation. The `ConnectionManager` reconnects by itself when a
    /// connection drops, but not when one stalls (its timeouts are not "dropped"): a check
    /// that times out replaces the connection of the generation it used.
    current: RwLock<(u64, ConnectionManager)>,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds the URL, which may hold a password: never printed.
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn unavailable(err: impl std::fmt::Display) -> RateLimitError {
    RateLimitError::Unavailable(err.to_string())
}

impl RedisRateLimiter {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`, or `rediss://`) with
    /// [`DEFAULT_TIMEOUT`]; keys start with `prefix` ([`DEFAULT_PREFIX`]). Fails when Redis
    /// cannot be reached now, so a misconfigured deployment is caught at start-up; later
    /// outages are reconnected from.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RateLimitError> {
        Self::connect_with_timeout(url, prefix, DEFAULT_TIMEOUT).await
    }

    /// [`Self::connect`] with a timeout for each `check`, waiting for a reconnection included.
    pub async fn connect_with_timeout(url: &str, prefix: &str, timeout: Duration) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(200))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(timeout));
        let connection = client.get_connection_manager_with_config(config.clone()).await.map_err(unavailable)?;
        Ok(Self {
            shared: Arc::new(Shared { client, config, current: RwLock::new((0, connection)) }),
            script: redis::Script::new(SCRIPT),
            prefix: prefix.to_owned(),
            timeout,
        })
    }

    fn connection(&self) -> (u64, ConnectionManager) {
        self.shared.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces a stalled connection, once per generation however many checks saw it stall.
    fn replace(&self, generation: u64) {
        let mut current = self.shared.current.write().unwrap_or_else(|p| p.into_inner());
        if current.0 != generation {
            return;
        }
        // Lazy: connects on the next check, which waits for it at most `timeout`.
        if let Ok(fresh) = self.shared.client.get_connection_manager_lazy(self.shared.config.clone()) {
            *current = (generation + 1, fresh);
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    /// One `EVALSHA` (the script is loaded again if Redis has forgotten it).
    async fn check(&self, bucket: &str, limit: RateLimit) -> Result<RateDecision, RateLimitError> {
        let (generation, mut connection) = self.connection();
        let mut invocation = self.script.key(format!("{}{bucket}", self.prefix));
        invocation.arg(limit.period().as_secs_f64() * 1000.0).arg(limit.limit());
        let reply: Result<(i64, i64, i64, i64), _> =
            match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection)).await {
                Ok(reply) => reply,
                Err(_) => {
                    self.replace(generation);
                    return Err(RateLimitError::Unavailable(format!("no answer from Redis within {:?}", self.timeout)));
                }
            };
        let (allowed, remaining, reset_us, retry_us) = reply.map_err(|e| {
            if e.is_timeout() {
                self.replace(generation);
            }
            unavailable(e)
        })?;
        let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        Ok(RateDecision {
            allowed: allowed == 1,
            limit: limit.limit(),
            remaining: u32::try_from(remaining).unwrap_or(0).min(limit.limit()),
            reset_after: micros(reset_us),
            retry_after: (allowed != 1).then(|| micros(retry_us)),
        })
    }
}
