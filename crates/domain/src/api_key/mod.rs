//! API keys: their format, the rules on their fields, their status, and the service that
//! creates, lists, rotates, revokes and verifies them (K1-K12, K14-K16).

mod ports;
mod scope;
mod service;

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use ipnet::{IpNet, Ipv4Net};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::organization::OrganizationId;
use crate::user::UserId;

pub use ports::{
    ApiKeyRepository, CachedKey, InsertKeyError, KeyCache, KeyGuessGuard, KeyInvalidationBus, RotateStoredKeyError,
};
#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockApiKeyRepository, MockKeyCache, MockKeyGuessGuard, MockKeyInvalidationBus};
pub use scope::{
    Access, AccessDenied, RequestMethod, Resource, ResourceClass, Scope, ScopeInfo, ScopeLevel, authorize,
};
pub use service::{
    ApiKeyDetail, ApiKeyPorts, ApiKeyService, CreateKeyError, CreateKeyInput, CreatedKey, KeyAccessError, KeyListing,
    RECENT_REQUESTS, RevokeKeyError, RotateKeyError, RotateKeyInput, VerifyError,
};

/// At most this many active keys per organization (K7).
pub const MAX_ACTIVE_KEYS: usize = 25;
/// Every key starts with this.
pub const KEY_PREFIX: &str = "erp_";
/// Number of base62 characters after the environment prefix (K1).
pub const SECRET_CHARS: usize = 40;
/// The list view flags keys that expire within this many days (K8).
pub const EXPIRES_SOON_DAYS: i64 = 7;
/// At most this many entries in an IP allow-list.
pub const MAX_ALLOWED_IPS: usize = 100;

/// Identifies a key record (not the key itself, which is secret): what the routes and the audit
/// log name it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKeyId(pub Uuid);

impl std::fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Live or test: which data a key reaches (P5, P7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Environment {
    /// Real data; the only environment that may manage integrations and webhooks.
    Live,
    /// Test data, kept apart from live data; live-only scopes are never usable here.
    Test,
}

impl Environment {
    /// Both environments.
    pub const ALL: [Environment; 2] = [Environment::Live, Environment::Test];

    /// The name clients see: `live` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }

    /// The environment named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|env| env.as_str() == raw)
    }

    /// `erp_live_` or `erp_test_`.
    pub fn key_prefix(self) -> &'static str {
        match self {
            Environment::Live => "erp_live_",
            Environment::Test => "erp_test_",
        }
    }
}

/// A key's name: 1 to 100 characters once trimmed, no control characters (K3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyName(String);

/// Why a key name is refused (K3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing is left once trimmed.
    #[error("name must not be empty")]
    Empty,
    /// More than 100 characters once trimmed.
    #[error("name must be at most 100 characters")]
    TooLong,
    /// It holds a control character (a line break, a tab, ...).
    #[error("name must not contain control characters")]
    ControlCharacter,
}

impl ApiKeyName {
    /// The longest name allowed, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Trims `raw` and checks it: not empty, at most [`Self::MAX_CHARS`] characters, no control
    /// characters. Uniqueness among the organization's active keys is checked when the key is
    /// stored.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(NameError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key's description: 0 to 500 characters (K3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiKeyDescription(String);

/// A description longer than 500 characters once trimmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("description must be at most 500 characters")]
pub struct DescriptionError;

impl ApiKeyDescription {
    /// The longest description allowed, in characters.
    pub const MAX_CHARS: usize = 500;

    /// Trims `raw` and checks its length; an empty description is allowed.
    pub fn parse(raw: &str) -> Result<Self, DescriptionError> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(DescriptionError);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The trimmed description, possibly empty.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The four expiration choices (K3). Expiration is fixed at creation and never extended (K10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiresIn {
    /// 30 days after creation.
    Days30,
    /// 90 days after creation.
    Days90,
    /// 365 days after creation.
    Year1,
    /// The key never expires; it works until revoked.
    Never,
}

impl ExpiresIn {
    /// Every choice, shortest first.
    pub const ALL: [ExpiresIn; 4] = [ExpiresIn::Days30, ExpiresIn::Days90, ExpiresIn::Year1, ExpiresIn::Never];

    /// The name clients send: `30d`, `90d`, `1y` or `never`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiresIn::Days30 => "30d",
            ExpiresIn::Days90 => "90d",
            ExpiresIn::Year1 => "1y",
            ExpiresIn::Never => "never",
        }
    }

    /// The choice named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|choice| choice.as_str() == raw)
    }

    /// When a key created at `now` with this choice expires. A year is 365 days.
    pub fn expires_at(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let days = match self {
            ExpiresIn::Days30 => 30,
            ExpiresIn::Days90 => 90,
            ExpiresIn::Year1 => 365,
            ExpiresIn::Never => return None,
        };
        Some(now + Duration::days(days))
    }
}

/// An IP allow-list entry: an address (stored as a host network) or a CIDR range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allowed_ips entry {0:?} is not an IP address or CIDR range")]
pub struct InvalidIp(pub String);

/// An IPv4-mapped entry (`::ffff:10.0.0.0/104`) becomes its IPv4 form (`10.0.0.0/8`): requests
/// are compared in their IPv4 form ([`ApiKey::allows_ip`]), so the mapped form would never match.
pub fn parse_allowed_ip(raw: &str) -> Result<IpNet, InvalidIp> {
    let trimmed = raw.trim();
    if let Ok(net) = trimmed.parse::<IpNet>() {
        // `10.0.0.1/8` is almost certainly a typo for the network; refuse rather than guess.
        if net.network() != net.addr() {
            return Err(InvalidIp(raw.to_owned()));
        }
        return Ok(canonical_net(net));
    }
    trimmed.parse::<IpAddr>().map(|ip| canonical_net(IpNet::from(ip))).map_err(|_| InvalidIp(raw.to_owned()))
}

/// The IPv4 network an IPv4-mapped IPv6 network (within `::ffff:0:0/96`) stands for; any other
/// network as it is.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) => match (v6.network().to_ipv4_mapped(), v6.prefix_len().checked_sub(96)) {
            (Some(v4), Some(prefix)) => Ipv4Net::new(v4, prefix).map_or(net, IpNet::V4),
            _ => net,
        },
        IpNet::V4(_) => net,
    }
}

/// SHA-256 of a key's full plaintext. The only form in which a key is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

/// A full key in plaintext, as shown once at creation. Never printed, never stored.
#[derive(Debug)]
pub struct PlaintextKey(SecretString);

impl PlaintextKey {
    /// The full key: the environment's prefix followed by `secret` (40 base62 characters, K1).
    pub fn new(environment: Environment, secret: &SecretString) -> Self {
        Self(format!("{}{}", environment.key_prefix(), secret.expose_secret()).into())
    }

    /// The full key, to show once and to hash.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    fn last4(&self) -> String {
        let key = self.0.expose_secret();
        key[key.len() - 4..].to_owned()
    }
}

/// A key as presented by a client, checked for shape before anything is looked up.
#[derive(Debug, Clone, Copy)]
pub struct PresentedKey<'a> {
    full: &'a str,
    environment: Environment,
}

/// A presented string that is not `erp_live_` or `erp_test_` followed by 40 base62 characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed API key")]
pub struct MalformedKey;

impl<'a> PresentedKey<'a> {
    /// Checks the shape only (K1): the prefix names the environment, then exactly 40 ASCII letters
    /// and digits. Whether such a key exists is the verifier's business.
    pub fn parse(raw: &'a str) -> Result<Self, MalformedKey> {
        let environment = if raw.starts_with(Environment::Live.key_prefix()) {
            Environment::Live
        } else if raw.starts_with(Environment::Test.key_prefix()) {
            Environment::Test
        } else {
            return Err(MalformedKey);
        };
        let secret = &raw[environment.key_prefix().len()..];
        if secret.len() != SECRET_CHARS || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedKey);
        }
        Ok(Self { full: raw, environment })
    }

    /// Whether a string looks like a key at all (used to refuse keys in query strings).
    pub fn looks_like_key(raw: &str) -> bool {
        raw.contains(Environment::Live.key_prefix()) || raw.contains(Environment::Test.key_prefix())
    }

    /// The key as presented, whole.
    pub fn as_str(&self) -> &'a str {
        self.full
    }

    /// The environment its prefix names.
    pub fn environment(&self) -> Environment {
        self.environment
    }
}

/// Active, expired or revoked, always computed against a clock, never stored (K8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiKeyStatus {
    /// Works: neither revoked nor past its expiry.
    Active,
    /// Past its expiry; refused with "This API key has expired." (K10).
    Expired,
    /// Revoked, at a time that has come; refused with "This API key has been revoked." (K11).
    Revoked,
}

impl ApiKeyStatus {
    /// The name clients see: `active`, `expired` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyStatus::Active => "active",
            ApiKeyStatus::Expired => "expired",
            ApiKeyStatus::Revoked => "revoked",
        }
    }
}

/// A stored API key: its configuration, never its plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The record's id.
    pub id: ApiKeyId,
    /// The organization the key belongs to and acts for.
    pub organization_id: OrganizationId,
    /// The name its creator gave it, unique among the organization's active keys (K3).
    pub name: ApiKeyName,
    /// What the key is for, possibly empty.
    pub description: ApiKeyDescription,
    /// Live or test: the data the key reaches, and the prefix of its plaintext.
    pub environment: Environment,
    /// Read-Only, Read-Write or Admin: the methods and resources the key may reach (K4).
    pub scope_level: ScopeLevel,
    /// The granular scopes granted, each fitting the level when granted (K5).
    pub scopes: Vec<Scope>,
    /// The expiry chosen at creation; a rotated key keeps its predecessor's choice.
    pub expires_in: ExpiresIn,
    /// Addresses and CIDR ranges the key may be used from; empty allows every address.
    pub allowed_ips: Vec<IpNet>,
    /// SHA-256 of the plaintext: what a presented key is looked up by.
    pub key_hash: KeyHash,
    /// Last four characters of the secret, for the masked display.
    pub last4: String,
    /// The user who created it: what the key creates belongs to them, and its in-app expiry
    /// warnings go to them (K13).
    pub created_by: UserId,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
    /// When the key stops working on its own; `None` for a key that never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key stops (or stopped) working by revocation. May lie in the future when a
    /// rotation scheduled it (K12).
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key this one was rotated from, if any.
    pub rotated_from: Option<ApiKeyId>,
    /// Coalesced from the usage log by the usage writer; never written per request.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Active, expired or revoked at `now`; revocation wins over expiry.
    pub fn status(&self, now: DateTime<Utc>) -> ApiKeyStatus {
        if self.revoked_at.is_some_and(|at| at <= now) {
            ApiKeyStatus::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            ApiKeyStatus::Expired
        } else {
            ApiKeyStatus::Active
        }
    }

    /// Whether the key works at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.status(now) == ApiKeyStatus::Active
    }

    /// `erp_live_...s9t0`
    pub fn masked_key(&self) -> String {
        format!("{}...{}", self.environment.key_prefix(), self.last4)
    }

    /// True while active and expiring within seven days (K8's red flag).
    pub fn expires_soon(&self, now: DateTime<Utc>) -> bool {
        self.is_active(now) && self.expires_at.is_some_and(|at| at - now <= Duration::days(EXPIRES_SOON_DAYS))
    }

    /// Whether a request from `ip` passes the allow-list; an empty list allows every address.
    pub fn allows_ip(&self, ip: Option<IpAddr>) -> bool {
        if self.allowed_ips.is_empty() {
            return true;
        }
        let Some(ip) = ip else { return false };
        let ip = canonical_ip(ip);
        // Entries are canonical when parsed; one stored in the IPv4-mapped form before that
        // was so is compared in its IPv4 form too.
        self.allowed_ips.iter().any(|net| canonical_net(*net).contains(&ip))
    }

    /// The K4 check of a request made with this key, and a test key kept off live-only
    /// resources.
    pub fn authorize(&self, method: RequestMethod, resource: Option<Resource>) -> Result<(), AccessDenied> {
        authorize(self.scope_level, &self.scopes, method, resource)?;
        match resource.and_then(|r| r.required_scope(method.access())) {
            Some(scope) => self.may_use_in_its_environment(scope),
            None => Ok(()),
        }
    }

    /// Whether the key holds `scope`, its level reaches it (a scope granted under a level that
    /// no longer allows it does not count) and its environment may use it.
    pub fn holds(&self, scope: Scope) -> Result<(), AccessDenied> {
        if !self.scopes.contains(&scope) {
            return Err(AccessDenied::MissingScope(scope));
        }
        if !self.scope_level.allows_scope(scope) {
            return Err(AccessDenied::LevelTooLow);
        }
        self.may_use_in_its_environment(scope)
    }

    /// Test keys never use a live-only scope, even one granted before it became live-only.
    fn may_use_in_its_environment(&self, scope: Scope) -> Result<(), AccessDenied> {
        if self.environment == Environment::Test && scope.info().live_only {
            Err(AccessDenied::LiveOnly(scope))
        } else {
            Ok(())
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are compared as the IPv4 address they carry.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn key(now: DateTime<Utc>) -> ApiKey {
        ApiKey {
            id: ApiKeyId(Uuid::now_v7()),
            organization_id: OrganizationId(Uuid::from_u128(1)),
            name: ApiKeyName::parse("Backend").unwrap(),
            description: ApiKeyDescription::default(),
            environment: Environment::Live,
            scope_level: ScopeLevel::ReadWrite,
            scopes: vec![Scope::CustomersRead, Scope::CustomersWrite],
            expires_in: ExpiresIn::Days90,
            allowed_ips: vec![],
            key_hash: KeyHash([7; 32]),
            last4: "s9t0".into(),
            created_by: UserId(Uuid::from_u128(2)),
            created_at: now,
            expires_at: ExpiresIn::Days90.expires_at(now),
            revoked_at: None,
            rotated_from: None,
            last_used_at: None,
        }
    }

    /// A fresh 90-day key that expires at `expires_at` instead.
    pub fn key_expiring(expires_at: DateTime<Utc>) -> ApiKey {
        ApiKey { expires_at: Some(expires_at), ..key(expires_at - chrono::Duration::days(90)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn names_follow_k3() {
        assert_eq!(ApiKeyName::parse("").unwrap_err(), NameError::Empty);
        assert_eq!(ApiKeyName::parse("   \t").unwrap_err(), NameError::Empty);
        assert_eq!(ApiKeyName::parse(&"n".repeat(101)).unwrap_err(), NameError::TooLong);
        assert_eq!(ApiKeyName::parse(&"n".repeat(100)).unwrap().as_str().len(), 100);
        assert_eq!(ApiKeyName::parse("a\nb").unwrap_err(), NameError::ControlCharacter);
        assert_eq!(ApiKeyName::parse(" Zapier ").unwrap().as_str(), "Zapier");
        // Characters, not bytes.
        assert!(ApiKeyName::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn descriptions_follow_k3() {
        assert!(ApiKeyDescription::parse("").is_ok());
        assert!(ApiKeyDescription::parse(&"d".repeat(500)).is_ok());
        assert!(ApiKeyDescription::parse(&"d".repeat(501)).is_err());
    }

    #[test]
    fn expiration_has_exactly_four_choices() {
        assert_eq!(ExpiresIn::parse("30d").unwrap().expires_at(now()), Some(now() + Duration::days(30)));
        assert_eq!(ExpiresIn::parse("90d").unwrap().expires_at(now()), Some(now() + Duration::days(90)));
        assert_eq!(ExpiresIn::parse("1y").unwrap().expires_at(now()), Some(now() + Duration::days(365)));
        assert_eq!(ExpiresIn::parse("never").unwrap().expires_at(now()), None);
        for bad in ["7d", "", "1Y", "forever"] {
            assert_eq!(ExpiresIn::parse(bad), None);
        }
    }

    #[test]
    fn presented_keys_are_checked_for_shape() {
        let good = format!("erp_live_{}", "a".repeat(40));
        assert_eq!(PresentedKey::parse(&good).unwrap().environment(), Environment::Live);
        let test = format!("erp_test_{}", "Z9".repeat(20));
        assert_eq!(PresentedKey::parse(&test).unwrap().environment(), Environment::Test);
        for bad in [
            format!("erp_live_{}", "a".repeat(39)),
            format!("erp_live_{}", "a".repeat(41)),
            format!("erp_prod_{}", "a".repeat(40)),
            format!("erp_live_{}-", "a".repeat(39)),
            "ses_abc".to_owned(),
            String::new(),
        ] {
            assert!(PresentedKey::parse(&bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn allowed_ips_accept_addresses_and_ranges() {
        assert_eq!(parse_allowed_ip("203.0.113.7").unwrap().to_string(), "203.0.113.7/32");
        assert_eq!(parse_allowed_ip("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_allowed_ip("2001:db8::/32").unwrap().to_string(), "2001:db8::/32");
        for bad in ["10.0.0.256", "10.0.0.0/33", "banana", "", "10.0.0.1/8"] {
            assert!(parse_allowed_ip(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn ipv4_mapped_entries_admit_their_ipv4_clients() {
        // Found by the ip_allowlist fuzz target: `::ffff:10.0.0.1` was kept as an IPv6 /128
        // while requests are compared in their IPv4 form, so the entry admitted no one.
        let mut key = fixtures::key(now());
        key.allowed_ips = vec![parse_allowed_ip("::ffff:10.0.0.1").unwrap()];
        assert!(key.allows_ip(Some("10.0.0.1".parse().unwrap())));
        assert!(key.allows_ip(Some("::ffff:10.0.0.1".parse().unwrap())));
        assert!(!key.allows_ip(Some("10.0.0.2".parse().unwrap())));
        assert_eq!(parse_allowed_ip("::ffff:10.0.0.1").unwrap().to_string(), "10.0.0.1/32");
        assert_eq!(parse_allowed_ip("::ffff:10.0.0.0/104").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_allowed_ip("::ffff:0:0/96").unwrap().to_string(), "0.0.0.0/0");
        // An entry stored in the IPv6 form before entries were parsed this way works too.
        key.allowed_ips = vec!["::ffff:10.1.0.0/112".parse().unwrap()];
        assert!(key.allows_ip(Some("10.1.2.3".parse().unwrap())));
        assert!(!key.allows_ip(Some("10.2.0.1".parse().unwrap())));
        // Other IPv6 ranges are left as they are.
        assert_eq!(parse_allowed_ip("::/0").unwrap().to_string(), "::/0");
        assert_eq!(parse_allowed_ip("::a00:1").unwrap().to_string(), "::a00:1/128");
    }

    #[test]
    fn status_is_derived_from_the_clock() {
        let mut key = fixtures::key(now());
        assert_eq!(key.status(now()), ApiKeyStatus::Active);
        assert_eq!(key.status(now() + Duration::days(90)), ApiKeyStatus::Expired);
        key.revoked_at = Some(now() + Duration::hours(1));
        assert_eq!(key.status(now()), ApiKeyStatus::Active, "a scheduled revocation is not yet in force");
        assert_eq!(key.status(now() + Duration::hours(1)), ApiKeyStatus::Revoked);
        // Revoked wins over expired: a revoked key says so even after its expiry.
        assert_eq!(key.status(now() + Duration::days(400)), ApiKeyStatus::Revoked);
    }

    #[test]
    fn masked_key_and_expiry_flag() {
        let key = fixtures::key(now());
        assert_eq!(key.masked_key(), "erp_live_...s9t0");
        assert!(!key.expires_soon(now()));
        assert!(key.expires_soon(now() + Duration::days(84)));
        assert!(!key.expires_soon(now() + Duration::days(91)), "expired keys are not 'expiring soon'");
    }

    #[test]
    fn allow_list_checks_addresses_and_ranges() {
        let mut key = fixtures::key(now());
        assert!(key.allows_ip(None), "empty list allows everyone");
        key.allowed_ips = vec![parse_allowed_ip("10.1.0.0/16").unwrap(), parse_allowed_ip("203.0.113.7").unwrap()];
        assert!(key.allows_ip(Some("10.1.2.3".parse().unwrap())));
        assert!(key.allows_ip(Some("203.0.113.7".parse().unwrap())));
        assert!(key.allows_ip(Some("::ffff:10.1.9.9".parse().unwrap())));
        assert!(!key.allows_ip(Some("203.0.113.8".parse().unwrap())));
        assert!(!key.allows_ip(None), "an unknown address cannot pass a list");
    }
}
