//! Small adapters the server owns: the system clock, the hot-path key cache, the in-process
//! sign-in throttle, and client-address resolution.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use ipnet::IpNet;
use moka::sync::Cache;
use otesse_domain::api_key::KeyHash;
use otesse_domain::ports::{CachedKey, Clock, KeyCache, KeyGuessGuard, SignInThrottle};

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Truncated to microseconds, the precision both databases store, so that what a create
    /// answers is what a later read answers.
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// How long an invalidated hash refuses new entries (see [`MokaKeyCache::insert`]): longer than
/// any lookup by hash takes.
const RECENTLY_INVALIDATED: Duration = Duration::from_secs(5);

/// The bounded in-memory cache of verified keys by hash (F1). Known keys and unknown ones are
/// kept apart, each with its own capacity and time to live, so a flood of garbage keys fills
/// only the unknown side and never evicts a real key.
#[derive(Clone)]
pub struct MokaKeyCache {
    known: Cache<KeyHash, Arc<otesse_domain::api_key::ApiKey>>,
    unknown: Cache<KeyHash, ()>,
    /// Hashes invalidated within [`RECENTLY_INVALIDATED`].
    invalidated: Cache<KeyHash, ()>,
}

impl std::fmt::Debug for MokaKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MokaKeyCache")
            .field("known", &self.known.entry_count())
            .field("unknown", &self.unknown.entry_count())
            .finish()
    }
}

impl MokaKeyCache {
    /// `capacity` known keys for `ttl`, and `negative_capacity` unknown ones for `negative_ttl`.
    pub fn new(capacity: u64, ttl: Duration, negative_capacity: u64, negative_ttl: Duration) -> Self {
        let known = Cache::builder().max_capacity(capacity).time_to_live(ttl).build();
        let unknown = Cache::builder().max_capacity(negative_capacity).time_to_live(negative_ttl).build();
        let invalidated = Cache::builder().max_capacity(10_000).time_to_live(RECENTLY_INVALIDATED).build();
        Self { known, unknown, invalidated }
    }
}

impl KeyCache for MokaKeyCache {
    fn get(&self, hash: &KeyHash) -> Option<CachedKey> {
        if let Some(key) = self.known.get(hash) {
            return Some(Some(key));
        }
        self.unknown.get(hash).map(|()| None)
    }

    /// A key found by a lookup that began before its revocation committed, and ended after the
    /// invalidation arrived, would otherwise stay cached as valid for the whole `ttl`: found keys
    /// whose hash was just invalidated are not cached (the next request reads again).
    fn insert(&self, hash: KeyHash, entry: CachedKey) {
        match entry {
            Some(key) => {
                if !self.invalidated.contains_key(&hash) {
                    self.unknown.invalidate(&hash);
                    self.known.insert(hash, key);
                }
            }
            None => self.unknown.insert(hash, ()),
        }
    }

    fn invalidate(&self, hash: &KeyHash) {
        self.invalidated.insert(*hash, ());
        self.known.invalidate(hash);
        self.unknown.invalidate(hash);
    }

    fn invalidate_all(&self) {
        // Takes effect at once: nothing inserted before this call is returned afterwards.
        self.known.invalidate_all();
        self.unknown.invalidate_all();
    }
}

/// Unknown keys per client network in a fixed window from the first ([`KeyGuessGuard`]); past
/// `max` the network's uncached keys are not looked up until the window ends. In this process.
#[derive(Clone)]
pub struct MemoryKeyGuessGuard {
    failures: Cache<String, Arc<Mutex<NetworkRecord>>>,
    max: u32,
    window: Duration,
    now: Arc<dyn Fn() -> Instant + Send + Sync>,
}

impl std::fmt::Debug for MemoryKeyGuessGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKeyGuessGuard").field("max", &self.max).field("window", &self.window).finish()
    }
}

impl MemoryKeyGuessGuard {
    pub fn new(max: u32, window: Duration) -> Self {
        Self::with_time(max, window, Arc::new(Instant::now))
    }

    pub fn with_time(max: u32, window: Duration, now: Arc<dyn Fn() -> Instant + Send + Sync>) -> Self {
        let failures = Cache::builder().max_capacity(100_000).time_to_live(window).build();
        Self { failures, max, window, now }
    }
}

#[allow(clippy::unwrap_used)] // A poisoned lock means a panic while counting: nothing to recover.
impl KeyGuessGuard for MemoryKeyGuessGuard {
    fn may_look_up(&self, network: &str) -> Result<(), u64> {
        let Some(record) = self.failures.get(network) else { return Ok(()) };
        let record = record.lock().unwrap();
        let now = (self.now)();
        if record.attempts < self.max || now.saturating_duration_since(record.since) >= self.window {
            return Ok(());
        }
        Err(seconds_until(record.since + self.window, now))
    }

    fn failed(&self, network: &str) {
        let now = (self.now)();
        let record = self
            .failures
            .get_with(network.to_owned(), || Arc::new(Mutex::new(NetworkRecord { since: now, attempts: 0 })));
        let mut record = record.lock().unwrap();
        if now.saturating_duration_since(record.since) >= self.window {
            *record = NetworkRecord { since: now, attempts: 0 };
        }
        record.attempts = record.attempts.saturating_add(1);
    }
}

/// Sign-in attempts per email and per client network ([`SignInThrottle`]), in this process.
///
/// An email gets `free_failures` attempts without delay; from then on each attempt that is let
/// through sets the next one's earliest time, one second after the first, doubling up to
/// `max_delay`. A success forgets the email's count. An email's record is kept while attempts
/// keep coming and dropped after `window` of quiet. A network gets `max_per_network` attempts
/// per `window` from its first (a success gives its attempt back).
///
/// Both are decided under one lock per record, so concurrent attempts are counted one by one
/// and no burst gets past a check together.
#[derive(Clone)]
pub struct MemorySignInThrottle {
    emails: Cache<String, Arc<Mutex<EmailRecord>>>,
    networks: Cache<String, Arc<Mutex<NetworkRecord>>>,
    limits: ThrottleLimits,
    now: Arc<dyn Fn() -> Instant + Send + Sync>,
}

/// The throttle's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    pub free_failures: u32,
    pub max_delay: Duration,
    pub max_per_network: u32,
    pub window: Duration,
}

#[derive(Debug, Default)]
struct EmailRecord {
    /// Attempts since the last success.
    attempts: u32,
    /// The earliest time of the next attempt, once past the free ones.
    next: Option<Instant>,
}

#[derive(Debug)]
struct NetworkRecord {
    since: Instant,
    attempts: u32,
}

impl std::fmt::Debug for MemorySignInThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySignInThrottle").field("limits", &self.limits).finish_non_exhaustive()
    }
}

/// Whole seconds to wait until `at`, at least one.
fn seconds_until(at: Instant, now: Instant) -> u64 {
    at.saturating_duration_since(now).as_secs_f64().ceil().max(1.0) as u64
}

impl MemorySignInThrottle {
    pub fn new(limits: ThrottleLimits) -> Self {
        Self::with_time(limits, Arc::new(Instant::now))
    }

    /// With a source of time of its own (tests move it by hand).
    pub fn with_time(limits: ThrottleLimits, now: Arc<dyn Fn() -> Instant + Send + Sync>) -> Self {
        let emails = Cache::builder().max_capacity(100_000).time_to_idle(limits.window).build();
        let networks = Cache::builder().max_capacity(100_000).time_to_live(limits.window).build();
        Self { emails, networks, limits, now }
    }

    /// The delay after the `n`th attempt past the free ones (n >= 1): 1 s, 2 s, 4 s, ...
    fn delay(&self, n: u32) -> Duration {
        let seconds = 1u64.checked_shl(n.saturating_sub(1).min(62)).unwrap_or(u64::MAX);
        Duration::from_secs(seconds).min(self.limits.max_delay)
    }
}

#[allow(clippy::unwrap_used)] // A poisoned lock means a panic while counting: nothing to recover.
impl SignInThrottle for MemorySignInThrottle {
    fn attempt(&self, email: &str, network: Option<String>) -> Result<(), u64> {
        let now = (self.now)();
        let record = self.emails.get_with(email.to_owned(), Default::default);
        let mut record = record.lock().unwrap();
        if let Some(next) = record.next
            && now < next
        {
            return Err(seconds_until(next, now));
        }
        // The network is checked (and counted) while the email's record is held, so the two
        // are one step; records are always taken email first, then network.
        if let Some(network) = network {
            let entry =
                self.networks.get_with(network, || Arc::new(Mutex::new(NetworkRecord { since: now, attempts: 0 })));
            let mut entry = entry.lock().unwrap();
            if now.saturating_duration_since(entry.since) >= self.limits.window {
                *entry = NetworkRecord { since: now, attempts: 0 };
            }
            if entry.attempts >= self.limits.max_per_network {
                return Err(seconds_until(entry.since + self.limits.window, now));
            }
            entry.attempts += 1;
        }
        record.attempts = record.attempts.saturating_add(1);
        if record.attempts >= self.limits.free_failures {
            record.next = Some(now + self.delay(record.attempts + 1 - self.limits.free_failures));
        }
        Ok(())
    }

    fn succeeded(&self, email: &str, network: Option<String>) {
        self.emails.invalidate(email);
        if let Some(entry) = network.and_then(|network| self.networks.get(&network)) {
            let mut entry = entry.lock().unwrap();
            entry.attempts = entry.attempts.saturating_sub(1);
        }
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy (K14).
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer?;
    if trusted.is_empty() || !is_trusted(&peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else { return Some(peer) };
    let mut client = peer;
    for hop in header.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else { return Some(client) };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(client_ip(Some(ip("203.0.113.9")), Some("1.2.3.4"), &trusted), Some(ip("203.0.113.9")));
        assert_eq!(client_ip(Some(ip("203.0.113.9")), Some("1.2.3.4"), &[]), Some(ip("203.0.113.9")));
    }

    #[test]
    fn forwarded_for_is_honoured_from_trusted_proxies_right_to_left() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // A client may prepend anything; only the hop our proxy appended counts.
        let header = "6.6.6.6, 198.51.100.7, 10.0.0.3";
        assert_eq!(client_ip(Some(ip("10.0.0.2")), Some(header), &trusted), Some(ip("198.51.100.7")));
        assert_eq!(client_ip(Some(ip("10.0.0.2")), None, &trusted), Some(ip("10.0.0.2")));
        assert_eq!(client_ip(Some(ip("10.0.0.2")), Some("garbage"), &trusted), Some(ip("10.0.0.2")));
    }

    /// A throttle on a clock the test moves.
    fn throttle(limits: ThrottleLimits) -> (MemorySignInThrottle, Arc<Mutex<Instant>>) {
        let clock = Arc::new(Mutex::new(Instant::now()));
        let now = clock.clone();
        (MemorySignInThrottle::with_time(limits, Arc::new(move || *now.lock().unwrap())), clock)
    }

    const LIMITS: ThrottleLimits = ThrottleLimits {
        free_failures: 3,
        max_delay: Duration::from_secs(8),
        max_per_network: 100,
        window: Duration::from_secs(900),
    };

    #[test]
    fn past_the_free_failures_an_email_waits_a_growing_delay_not_a_lock() {
        let (throttle, clock) = throttle(LIMITS);
        let email = "email:a@b.co";
        for _ in 0..3 {
            assert_eq!(throttle.attempt(email, None), Ok(()));
        }
        // The third attempt set a delay of one second, then 2, 4, 8, 8 (capped).
        for expected in [1, 2, 4, 8, 8] {
            assert_eq!(throttle.attempt(email, None), Err(expected));
            *clock.lock().unwrap() += Duration::from_secs(expected);
            // The owner, whose attempt comes once the delay has passed, is let through.
            assert_eq!(throttle.attempt(email, None), Ok(()));
        }
        assert!(throttle.attempt("email:other@b.co", None).is_ok(), "emails are independent");
        // A success forgets the count: the next failures are free again.
        throttle.succeeded(email, None);
        for _ in 0..3 {
            assert_eq!(throttle.attempt(email, None), Ok(()));
        }
    }

    #[test]
    fn a_network_gets_its_attempts_per_window_and_successes_give_theirs_back() {
        let limits = ThrottleLimits { max_per_network: 4, free_failures: 100, ..LIMITS };
        let (throttle, clock) = throttle(limits);
        let network = || Some("ip:203.0.113.7".to_owned());
        for n in 0..4 {
            assert_eq!(throttle.attempt(&format!("email:{n}@b.co"), network()), Ok(()));
        }
        assert_eq!(throttle.attempt("email:9@b.co", network()), Err(900));
        throttle.succeeded("email:0@b.co", network());
        assert_eq!(throttle.attempt("email:9@b.co", network()), Ok(()), "a success gave its attempt back");
        assert!(throttle.attempt("email:9@b.co", network()).is_err());
        assert!(throttle.attempt("email:9@b.co", Some("ip:198.51.100.1".into())).is_ok());
        *clock.lock().unwrap() += Duration::from_secs(900);
        assert_eq!(throttle.attempt("email:10@b.co", network()), Ok(()), "a new window");
    }

    #[test]
    fn a_parallel_burst_is_counted_one_by_one() {
        let (throttle, _clock) = throttle(LIMITS);
        let barrier = Arc::new(std::sync::Barrier::new(50));
        let passed: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..50)
                .map(|_| {
                    let (throttle, barrier) = (&throttle, barrier.clone());
                    scope.spawn(move || {
                        barrier.wait();
                        throttle.attempt("email:a@b.co", Some("ip:203.0.113.7".into())).is_ok()
                    })
                })
                .collect();
            handles.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
        });
        assert_eq!(passed, 3, "exactly the free attempts, however they interleave");
    }

    #[test]
    fn cache_keeps_known_and_unknown_keys_and_forgets_on_invalidate() {
        let cache = MokaKeyCache::new(10, Duration::from_secs(60), 10, Duration::from_secs(60));
        let hash = KeyHash([1; 32]);
        assert!(cache.get(&hash).is_none());
        cache.insert(hash, None);
        assert_eq!(cache.get(&hash), Some(None), "negative entries are cached");
        cache.invalidate(&hash);
        assert!(cache.get(&hash).is_none());
    }

    fn key() -> otesse_domain::api_key::ApiKey {
        use otesse_domain::api_key::*;
        use otesse_domain::organization::OrganizationId;
        use otesse_domain::user::UserId;
        ApiKey {
            id: ApiKeyId(uuid::Uuid::now_v7()),
            organization_id: OrganizationId(uuid::Uuid::from_u128(1)),
            name: ApiKeyName::parse("Backend").unwrap(),
            description: ApiKeyDescription::default(),
            environment: Environment::Live,
            scope_level: ScopeLevel::ReadOnly,
            scopes: vec![],
            expires_in: ExpiresIn::Never,
            allowed_ips: vec![],
            key_hash: KeyHash([1; 32]),
            last4: "abcd".into(),
            created_by: UserId(uuid::Uuid::from_u128(2)),
            created_at: Utc::now(),
            expires_at: None,
            revoked_at: None,
            rotated_from: None,
            last_used_at: None,
        }
    }

    #[test]
    fn cache_does_not_keep_a_key_found_just_before_its_invalidation() {
        let cache = MokaKeyCache::new(10, Duration::from_secs(60), 10, Duration::from_secs(60));
        let (hash, other) = (KeyHash([1; 32]), KeyHash([2; 32]));
        let key = Arc::new(key());
        cache.invalidate(&hash);
        // A lookup that raced the revocation comes back with the old row.
        cache.insert(hash, Some(key.clone()));
        assert!(cache.get(&hash).is_none(), "the next request reads the database again");
        cache.insert(other, Some(key));
        assert!(cache.get(&other).is_some(), "other keys are cached as usual");
    }

    #[test]
    fn a_flood_of_unknown_keys_never_evicts_a_known_one() {
        let cache = MokaKeyCache::new(8, Duration::from_secs(60), 16, Duration::from_secs(60));
        let known: Vec<KeyHash> = (0..8u8).map(|n| KeyHash([n; 32])).collect();
        let key = Arc::new(key());
        for hash in &known {
            cache.insert(*hash, Some(key.clone()));
        }
        for n in 0..5_000u32 {
            let mut bytes = [0xff; 32];
            bytes[..4].copy_from_slice(&n.to_le_bytes());
            cache.insert(KeyHash(bytes), None);
        }
        cache.known.run_pending_tasks();
        cache.unknown.run_pending_tasks();
        for hash in &known {
            assert!(matches!(cache.get(hash), Some(Some(_))), "a real key was evicted by garbage");
        }
        assert!(cache.unknown.entry_count() <= 16, "the unknown side is bounded on its own");
    }

    #[test]
    fn a_network_past_its_unknown_keys_gets_no_lookups_until_its_window_ends() {
        let clock = Arc::new(Mutex::new(Instant::now()));
        let now = clock.clone();
        let guard = MemoryKeyGuessGuard::with_time(3, Duration::from_secs(60), Arc::new(move || *now.lock().unwrap()));
        let network = "ip:203.0.113.7";
        for _ in 0..3 {
            assert_eq!(guard.may_look_up(network), Ok(()));
            guard.failed(network);
        }
        assert_eq!(guard.may_look_up(network), Err(60));
        assert_eq!(guard.may_look_up("ip:198.51.100.1"), Ok(()), "networks are independent");
        *clock.lock().unwrap() += Duration::from_secs(45);
        assert_eq!(guard.may_look_up(network), Err(15));
        *clock.lock().unwrap() += Duration::from_secs(15);
        assert_eq!(guard.may_look_up(network), Ok(()), "a new window");
        guard.failed(network);
        assert_eq!(guard.may_look_up(network), Ok(()), "counting starts again");
    }

    #[test]
    fn cache_forgets_everything_on_invalidate_all() {
        let cache = MokaKeyCache::new(10, Duration::from_secs(60), 10, Duration::from_secs(60));
        let (a, b) = (KeyHash([1; 32]), KeyHash([2; 32]));
        cache.insert(a, None);
        cache.insert(b, None);
        cache.invalidate_all();
        assert!(cache.get(&a).is_none() && cache.get(&b).is_none());
        cache.insert(a, None);
        assert_eq!(cache.get(&a), Some(None), "entries added afterwards are kept");
    }
}
