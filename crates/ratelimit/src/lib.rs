//! Rate-limit adapters for the domain's [`RateLimiter`] port (W2).
//!
//! - [`InProcessRateLimiter`], the default: buckets in this process's memory. Cheap enough for
//!   every keyed request (one hash, one short lock on one of 32 shards). Each process counts on
//!   its own, so with N processes a key may make up to N times its limit.
//! - [`RedisRateLimiter`]: the same GCRA run atomically in Redis by a Lua script, so one limit
//!   holds across every process. The script reads Redis's own clock (`TIME`), so processes
//!   with skewed clocks still agree. Keys are `otesse:rl:<bucket>` and expire when the bucket
//!   is full again, so idle buckets cost nothing. When Redis cannot be reached, `check` fails;
//!   the server then lets the request through (fail open, logged and counted) rather than
//!   refusing all traffic because a limiter is down.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use otesse_domain::rate_limit::{RateDecision, RateLimit, RateLimitError, RateLimiter, gcra};

const SHARDS: usize = 32;
/// A shard is swept of full (idle) buckets when it holds more than this.
const SWEEP_ABOVE: usize = 4096;

/// Buckets in memory, sharded to keep lock contention low.
pub struct InProcessRateLimiter {
    shards: Vec<Mutex<HashMap<String, f64>>>,
    hasher: RandomState,
    started: Instant,
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
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            started: Instant::now(),
        }
    }

    /// The decision at `now_ms` (milliseconds on this limiter's clock): what [`RateLimiter::check`]
    /// does with the current time, exposed so tests can drive time.
    pub fn check_at(&self, bucket: &str, limit: RateLimit, now_ms: f64) -> RateDecision {
        let shard = &self.shards[(self.hasher.hash_one(bucket) as usize) % SHARDS];
        let mut buckets = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (decision, new_tat) = gcra(limit, buckets.get(bucket).copied(), now_ms);
        if let Some(new_tat) = new_tat {
            if let Some(tat) = buckets.get_mut(bucket) {
                *tat = new_tat;
            } else {
                if buckets.len() >= SWEEP_ABOVE {
                    // A TAT in the past is a full bucket: forgetting it changes nothing.
                    buckets.retain(|_, tat| *tat > now_ms);
                }
                buckets.insert(bucket.to_owned(), new_tat);
            }
        }
        decision
    }

    /// Buckets held (for tests of the sweep).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|b| b.len()).unwrap_or(0)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }
}

#[async_trait]
impl RateLimiter for InProcessRateLimiter {
    async fn check(&self, bucket: &str, limit: RateLimit) -> Result<RateDecision, RateLimitError> {
        Ok(self.check_at(bucket, limit, self.now_ms()))
    }
}

/// GCRA in Lua, the same arithmetic as the domain's `gcra`. KEYS[1] the bucket; ARGV[1] the
/// period and ARGV[2] the limit. Returns {allowed, remaining, reset_after_us, retry_after_us}.
const SCRIPT: &str = r"
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local interval = period / limit
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if now < allow_at then
  return {0, 0, math.ceil((tat - now) * 1000), math.ceil((allow_at - now) * 1000)}
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
local remaining = math.floor((period - (new_tat - now)) / interval + 1e-9)
if remaining < 0 then remaining = 0 end
return {1, remaining, math.ceil((new_tat - now) * 1000), 0}
";

/// Buckets in Redis: one limit across every process.
#[derive(Clone)]
pub struct RedisRateLimiter {
    connection: redis::aio::ConnectionManager,
    script: redis::Script,
    prefix: String,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// Connects to `url` (`redis://host:port/db`); keys start with `prefix` (`otesse:rl:`).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url).map_err(|e| RateLimitError(e.to_string()))?;
        // Bounded: a limiter that cannot answer quickly is worse than none (callers fail open).
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(200))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_millis(500)));
        let connection =
            client.get_connection_manager_with_config(config).await.map_err(|e| RateLimitError(e.to_string()))?;
        Ok(Self { connection, script: redis::Script::new(SCRIPT), prefix: prefix.to_owned() })
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, bucket: &str, limit: RateLimit) -> Result<RateDecision, RateLimitError> {
        let mut connection = self.connection.clone();
        let period_ms = limit.period().as_secs_f64() * 1000.0;
        let (allowed, remaining, reset_us, retry_us): (i64, i64, i64, i64) = self
            .script
            .key(format!("{}{bucket}", self.prefix))
            .arg(period_ms)
            .arg(limit.limit())
            .invoke_async(&mut connection)
            .await
            .map_err(|e| RateLimitError(e.to_string()))?;
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
