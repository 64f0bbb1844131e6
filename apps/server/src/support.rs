//! Small adapters the server owns: the system clock, the hot-path key cache, the in-process
//! sign-in throttle, and client-address resolution.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use ipnet::IpNet;
use moka::Expiry;
use moka::sync::Cache;
use otesse_domain::api_key::KeyHash;
use otesse_domain::ports::{CachedKey, Clock, KeyCache, SignInThrottle};

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Truncated to microseconds, the precision both databases store, so that what a create
    /// answers is what a later read answers.
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// Known keys live `ttl`, unknown ones `negative_ttl`.
struct KeyExpiry {
    ttl: Duration,
    negative_ttl: Duration,
}

impl Expiry<KeyHash, CachedKey> for KeyExpiry {
    fn expire_after_create(&self, _key: &KeyHash, value: &CachedKey, _now: Instant) -> Option<Duration> {
        Some(if value.is_some() { self.ttl } else { self.negative_ttl })
    }
}

/// How long an invalidated hash refuses new entries (see [`MokaKeyCache::insert`]): longer than
/// any lookup by hash takes.
const RECENTLY_INVALIDATED: Duration = Duration::from_secs(5);

/// The bounded in-memory cache of verified keys by hash (F1).
#[derive(Clone)]
pub struct MokaKeyCache {
    cache: Cache<KeyHash, CachedKey>,
    /// Hashes invalidated within [`RECENTLY_INVALIDATED`].
    invalidated: Cache<KeyHash, ()>,
}

impl std::fmt::Debug for MokaKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MokaKeyCache").field("entries", &self.cache.entry_count()).finish()
    }
}

impl MokaKeyCache {
    pub fn new(capacity: u64, ttl: Duration, negative_ttl: Duration) -> Self {
        let cache = Cache::builder().max_capacity(capacity).expire_after(KeyExpiry { ttl, negative_ttl }).build();
        let invalidated = Cache::builder().max_capacity(10_000).time_to_live(RECENTLY_INVALIDATED).build();
        Self { cache, invalidated }
    }
}

impl KeyCache for MokaKeyCache {
    fn get(&self, hash: &KeyHash) -> Option<CachedKey> {
        self.cache.get(hash)
    }

    /// A key found by a lookup that began before its revocation committed, and ended after the
    /// invalidation arrived, would otherwise stay cached as valid for the whole `ttl`: found keys
    /// whose hash was just invalidated are not cached (the next request reads again).
    fn insert(&self, hash: KeyHash, entry: CachedKey) {
        if entry.is_some() && self.invalidated.contains_key(&hash) {
            return;
        }
        self.cache.insert(hash, entry);
    }

    fn invalidate(&self, hash: &KeyHash) {
        self.invalidated.insert(*hash, ());
        self.cache.invalidate(hash);
    }

    fn invalidate_all(&self) {
        // Takes effect at once: nothing inserted before this call is returned afterwards.
        self.cache.invalidate_all();
    }
}

/// Counts failed sign-ins per subject (email or address) in a fixed window that starts at the
/// first failure. Past the limit, attempts are refused until the window ends.
#[derive(Clone)]
pub struct MemorySignInThrottle {
    failures: Cache<String, Arc<(Instant, AtomicU32)>>,
    max_per_email: u32,
    max_per_ip: u32,
    window: Duration,
}

impl std::fmt::Debug for MemorySignInThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySignInThrottle").field("window", &self.window).finish_non_exhaustive()
    }
}

impl MemorySignInThrottle {
    pub fn new(max_per_email: u32, max_per_ip: u32, window: Duration) -> Self {
        let failures = Cache::builder().max_capacity(100_000).time_to_live(window).build();
        Self { failures, max_per_email, max_per_ip, window }
    }

    fn limit(&self, subject: &str) -> u32 {
        if subject.starts_with("ip:") { self.max_per_ip } else { self.max_per_email }
    }
}

impl SignInThrottle for MemorySignInThrottle {
    fn check(&self, subject: &str) -> Result<(), u64> {
        let Some(entry) = self.failures.get(subject) else { return Ok(()) };
        if entry.1.load(Ordering::Relaxed) < self.limit(subject) {
            return Ok(());
        }
        let left = self.window.saturating_sub(entry.0.elapsed());
        Err(left.as_secs().max(1))
    }

    fn record_failure(&self, subject: &str) {
        let entry = self.failures.get_with(subject.to_owned(), || Arc::new((Instant::now(), AtomicU32::new(0))));
        entry.1.fetch_add(1, Ordering::Relaxed);
    }

    fn reset(&self, subject: &str) {
        self.failures.invalidate(subject);
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

    #[test]
    fn throttle_refuses_after_the_limit_and_resets_on_success() {
        let throttle = MemorySignInThrottle::new(3, 10, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(throttle.check("email:a@b.co").is_ok());
            throttle.record_failure("email:a@b.co");
        }
        let wait = throttle.check("email:a@b.co").unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(throttle.check("email:other@b.co").is_ok(), "subjects are independent");
        throttle.reset("email:a@b.co");
        assert!(throttle.check("email:a@b.co").is_ok());
    }

    #[test]
    fn cache_keeps_known_and_unknown_keys_and_forgets_on_invalidate() {
        let cache = MokaKeyCache::new(10, Duration::from_secs(60), Duration::from_secs(60));
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
        let cache = MokaKeyCache::new(10, Duration::from_secs(60), Duration::from_secs(60));
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
    fn cache_forgets_everything_on_invalidate_all() {
        let cache = MokaKeyCache::new(10, Duration::from_secs(60), Duration::from_secs(60));
        let (a, b) = (KeyHash([1; 32]), KeyHash([2; 32]));
        cache.insert(a, None);
        cache.insert(b, None);
        cache.invalidate_all();
        assert!(cache.get(&a).is_none() && cache.get(&b).is_none());
        cache.insert(a, None);
        assert_eq!(cache.get(&a), Some(None), "entries added afterwards are kept");
    }
}
