//! The API-key service: every key operation, with its rules, over the ports.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::ports::{
    ApiKeyRepository, InsertKeyError, KeyCache, KeyGuessGuard, KeyInvalidationBus, RotateStoredKeyError,
};
use super::{
    ApiKey, ApiKeyDescription, ApiKeyId, ApiKeyName, ApiKeyStatus, DescriptionError, Environment, ExpiresIn, InvalidIp,
    MAX_ACTIVE_KEYS, MAX_ALLOWED_IPS, NameError, PlaintextKey, PresentedKey, SECRET_CHARS, Scope, ScopeLevel,
    parse_allowed_ip,
};
use crate::StorageError;
use crate::caller::{Caller, Denied, Need};
use crate::client::network_subject;
use crate::event::{DomainEvent, Event};
use crate::organization::OrganizationId;
use crate::page::{Page, PageRequest};
use crate::ports::{Clock, KeyHasher, SecretGenerator};
use crate::usage::{UsageEntry, UsageLog, UsageSummary};
use crate::user::{Permission, User, UserDirectory, UserId};

/// Managing keys is for users: keys never manage keys.
const VIEW: Need = Need::User(Permission::SettingsView);
const EDIT: Need = Need::User(Permission::SettingsEdit);

/// The detail view holds this many recent requests (K9).
pub const RECENT_REQUESTS: u32 = 50;

/// What a client sends to create a key; every field is validated by [`ApiKeyService::create`].
#[derive(Debug, Clone, Default)]
pub struct CreateKeyInput {
    /// The key's name (K3), trimmed; 1-100 characters, unique among the organization's active keys.
    pub name: String,
    /// What the key is for, up to 500 characters; none is the same as empty.
    pub description: Option<String>,
    /// `read_only`, `read_write` or `admin` (K4).
    pub scope_level: String,
    /// The granular scopes, in either spelling (`customers.read` or `customers:read`); duplicates
    /// count once.
    pub scopes: Vec<String>,
    /// `30d`, `90d`, `1y` or `never`.
    pub expires_in: String,
    /// `live` or `test`.
    pub environment: String,
    /// Addresses and CIDR ranges the key may be used from; none allows every address.
    pub allowed_ips: Vec<String>,
}

/// What a client sends to rotate a key.
#[derive(Debug, Clone, Default)]
pub struct RotateKeyInput {
    /// The new key's name; by default the old name with " (rotated)" appended.
    pub name: Option<String>,
    /// When the old key stops working; by default it keeps working until revoked by hand.
    /// A time in the past means now.
    pub revoke_old_at: Option<DateTime<Utc>>,
}

/// A key just created: the record and, once, its plaintext.
#[derive(Debug)]
pub struct CreatedKey {
    /// The stored record.
    pub key: ApiKey,
    /// The key itself, to show this once and never again (K1).
    pub plaintext: PlaintextKey,
    /// The user it belongs to (the caller, or the calling key's creator).
    pub creator: Option<User>,
}

/// A key with what the list view derives from the clock (K8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyListing {
    /// The stored record.
    pub key: ApiKey,
    /// Active, expired or revoked, at the time of the listing.
    pub status: ApiKeyStatus,
    /// Active and expiring within [`super::EXPIRES_SOON_DAYS`] days (K8's warning).
    pub expires_soon: bool,
    /// Who created it, also once deactivated or deleted (`None` only if the record is gone).
    pub creator: Option<User>,
}

/// The detail view (K9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyDetail {
    /// The key as the list shows it.
    pub listing: KeyListing,
    /// Totals over the key's whole history: requests, distinct addresses, last use.
    pub usage: UsageSummary,
    /// The newest [`RECENT_REQUESTS`] requests, newest first.
    pub recent_requests: Vec<UsageEntry>,
    /// Whether the key was used in the last 24 hours: the dashboard warns before revoking it (K9).
    pub used_in_last_24h: bool,
}

/// Why a key could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateKeyError {
    /// The caller is a key, or a user without `settings.edit`.
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// The name is empty, too long, or holds a control character.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The description is longer than 500 characters.
    #[error(transparent)]
    Description(#[from] DescriptionError),
    /// `scope_level` is not `read_only`, `read_write` or `admin`.
    #[error("scope_level must be one of read_only, read_write, admin")]
    InvalidScopeLevel,
    /// A scope is not in the catalog, in either spelling.
    #[error("unknown scope {0:?}; GET /v1/scopes lists them")]
    UnknownScope(String),
    /// A scope the level does not reach (K4): a `.write` scope on a Read-Only key, say.
    #[error("the {} scope does not fit the {} scope level", .scope.as_str(), .level.as_str())]
    ScopeNotAllowed {
        /// The scope asked for.
        scope: Scope,
        /// The level asked for.
        level: ScopeLevel,
    },
    /// A sensitive scope (K6) was asked for by a user who is not an admin.
    #[error("the {} scope is sensitive and can only be granted by an admin", .0.as_str())]
    SensitiveScope(Scope),
    /// A live-only scope (integrations, webhooks) was asked for on a test key.
    #[error(
        "the {} scope reaches the organization's live integrations and webhooks; test keys cannot hold it",
        .0.as_str()
    )]
    LiveOnlyScope(Scope),
    /// `expires_in` is not `30d`, `90d`, `1y` or `never`.
    #[error("expires_in must be one of 30d, 90d, 1y, never")]
    InvalidExpiration,
    /// `environment` is not `live` or `test`.
    #[error("environment must be live or test")]
    InvalidEnvironment,
    /// An allow-list entry is not an address or a CIDR range (or has host bits set).
    #[error(transparent)]
    InvalidIp(#[from] InvalidIp),
    /// The allow-list holds more than [`MAX_ALLOWED_IPS`] entries.
    #[error("allowed_ips may hold at most {MAX_ALLOWED_IPS} entries")]
    TooManyIps,
    /// The organization has an active key with this name already (K3).
    #[error("An active API key with this name already exists.")]
    NameTaken,
    /// The organization has [`MAX_ACTIVE_KEYS`] active keys already (K7).
    #[error("This organization already has {MAX_ACTIVE_KEYS} active API keys; revoke one first.")]
    LimitReached,
    /// The key could not be stored.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<InsertKeyError> for CreateKeyError {
    fn from(err: InsertKeyError) -> Self {
        match err {
            InsertKeyError::NameTaken => CreateKeyError::NameTaken,
            InsertKeyError::LimitReached => CreateKeyError::LimitReached,
            InsertKeyError::Storage(err) => CreateKeyError::Storage(err),
        }
    }
}

/// Errors of the read operations and of revocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyAccessError {
    /// The caller is a key, or a user without the permission the operation needs (`settings.view`
    /// to read, `settings.edit` to revoke).
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// No key with this id in the caller's organization.
    #[error("No such API key.")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a key could not be revoked: the same reasons as reading it.
pub type RevokeKeyError = KeyAccessError;

/// Why a key could not be rotated (K12).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotateKeyError {
    /// The key could not be reached: no permission, not found, or the store failed.
    #[error(transparent)]
    Access(#[from] KeyAccessError),
    /// The key is expired or revoked: only an active key is rotated.
    #[error("Only an active key can be rotated; this one is {}.", .0.as_str())]
    NotActive(ApiKeyStatus),
    /// `revoke_old_at` is later than the old key's own expiry.
    #[error("revoke_old_at must not be later than the key's own expiry")]
    RevokeAfterExpiry,
    /// The key already has an active successor: a key is replaced once. Rotate the successor,
    /// or revoke it first to rotate this key again.
    #[error("This API key was already rotated; rotate its replacement instead, or revoke the replacement first.")]
    AlreadyRotated,
    /// The new key could not be made: its name, a scope the caller may no longer grant, the
    /// name or count limit, or the store.
    #[error(transparent)]
    Create(#[from] CreateKeyError),
}

impl From<RotateStoredKeyError> for RotateKeyError {
    fn from(err: RotateStoredKeyError) -> Self {
        match err {
            RotateStoredKeyError::Insert(err) => RotateKeyError::Create(err.into()),
            RotateStoredKeyError::OldKeyNotActive(status) => RotateKeyError::NotActive(status),
            RotateStoredKeyError::AlreadyRotated => RotateKeyError::AlreadyRotated,
        }
    }
}

/// Why a presented key was refused (K10, K11). The messages are the product's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not `erp_live_` or `erp_test_` followed by 40 base62 characters; nothing was looked up.
    #[error("Malformed API key. Keys start with erp_live_ or erp_test_ followed by 40 letters and digits.")]
    Malformed,
    /// Well-formed, but no key has this hash.
    #[error("Invalid API key provided.")]
    Unknown,
    /// The key was revoked (K11).
    #[error("This API key has been revoked.")]
    Revoked,
    /// The key is past its expiry (K10).
    #[error("This API key has expired.")]
    Expired,
    /// Too many unknown keys came from this client's network lately; uncached keys are not
    /// looked up for this many seconds.
    #[error("Too many invalid API keys from this network. Try again in {0} seconds.")]
    TooManyGuesses(u64),
    /// The key could not be looked up.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The ports the API-key service needs.
#[derive(Clone)]
pub struct ApiKeyPorts {
    /// Where keys are stored.
    pub keys: Arc<dyn ApiKeyRepository>,
    /// The usage log, for the detail view (K9).
    pub usage: Arc<dyn UsageLog>,
    /// The in-process cache of known and unknown keys (F1).
    pub cache: Arc<dyn KeyCache>,
    /// Carries revocations to the other processes' caches (O2).
    pub invalidations: Arc<dyn KeyInvalidationBus>,
    /// Counts unknown keys per client network and stops the database reads of a guessing one.
    pub guesses: Arc<dyn KeyGuessGuard>,
    /// Hashes presented keys and compares hashes in constant time.
    pub hasher: Arc<dyn KeyHasher>,
    /// Draws the keys' 40 random characters.
    pub secrets: Arc<dyn SecretGenerator>,
    /// The time: creation, expiry and status.
    pub clock: Arc<dyn Clock>,
    /// Names each key's creator in the list and detail views.
    pub users: Arc<dyn UserDirectory>,
}

/// Creates, lists, shows, rotates, revokes and verifies API keys: every key operation, with its
/// rules (K1-K16).
#[derive(Clone)]
pub struct ApiKeyService {
    ports: ApiKeyPorts,
}

impl std::fmt::Debug for ApiKeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyService")
    }
}

/// A validated key configuration, before it has a secret.
struct KeySpec {
    name: ApiKeyName,
    description: ApiKeyDescription,
    scope_level: ScopeLevel,
    scopes: Vec<Scope>,
    expires_in: ExpiresIn,
    environment: Environment,
    allowed_ips: Vec<ipnet::IpNet>,
}

impl ApiKeyService {
    /// A service over `ports`.
    pub fn new(ports: ApiKeyPorts) -> Self {
        Self { ports }
    }

    /// The time on the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
    }

    fn validate(caller: &Caller, input: &CreateKeyInput) -> Result<KeySpec, CreateKeyError> {
        let name = ApiKeyName::parse(&input.name)?;
        let description = ApiKeyDescription::parse(input.description.as_deref().unwrap_or(""))?;
        let scope_level = ScopeLevel::parse(&input.scope_level).ok_or(CreateKeyError::InvalidScopeLevel)?;
        let mut scopes = BTreeSet::new();
        for raw in &input.scopes {
            let scope = Scope::parse(raw).ok_or_else(|| CreateKeyError::UnknownScope(raw.clone()))?;
            scopes.insert(scope);
        }
        let scopes: Vec<Scope> = scopes.into_iter().collect();
        let expires_in = ExpiresIn::parse(&input.expires_in).ok_or(CreateKeyError::InvalidExpiration)?;
        let environment = Environment::parse(&input.environment).ok_or(CreateKeyError::InvalidEnvironment)?;
        Self::check_scopes(caller, scope_level, environment, &scopes)?;
        if input.allowed_ips.len() > MAX_ALLOWED_IPS {
            return Err(CreateKeyError::TooManyIps);
        }
        let mut allowed_ips = Vec::with_capacity(input.allowed_ips.len());
        for raw in &input.allowed_ips {
            let net = parse_allowed_ip(raw)?;
            if !allowed_ips.contains(&net) {
                allowed_ips.push(net);
            }
        }
        Ok(KeySpec { name, description, scope_level, scopes, expires_in, environment, allowed_ips })
    }

    /// K4 (scopes fit the level), K6 (sensitive scopes need an admin), and no live-only scope
    /// on a test key.
    fn check_scopes(
        caller: &Caller,
        level: ScopeLevel,
        environment: Environment,
        scopes: &[Scope],
    ) -> Result<(), CreateKeyError> {
        for &scope in scopes {
            if !level.allows_scope(scope) {
                return Err(CreateKeyError::ScopeNotAllowed { scope, level });
            }
            if environment == Environment::Test && scope.info().live_only {
                return Err(CreateKeyError::LiveOnlyScope(scope));
            }
            if scope.info().sensitive && !caller.may(Need::User(Permission::GrantSensitiveScopes)) {
                return Err(CreateKeyError::SensitiveScope(scope));
            }
        }
        Ok(())
    }

    /// Builds the record and plaintext for a new key. The plaintext leaves this function only
    /// inside [`CreatedKey`]; the record holds its SHA-256 and last four characters.
    fn mint(&self, caller: &Caller, spec: KeySpec, rotated_from: Option<ApiKeyId>, now: DateTime<Utc>) -> CreatedKey {
        let secret = self.ports.secrets.base62(SECRET_CHARS);
        let plaintext = PlaintextKey::new(spec.environment, &secret);
        let key = ApiKey {
            id: ApiKeyId(Uuid::now_v7()),
            organization_id: caller.organization_id(),
            name: spec.name,
            description: spec.description,
            environment: spec.environment,
            scope_level: spec.scope_level,
            scopes: spec.scopes,
            expires_in: spec.expires_in,
            allowed_ips: spec.allowed_ips,
            key_hash: self.ports.hasher.hash(plaintext.secret().expose_secret()),
            last4: plaintext.last4(),
            created_by: caller.on_behalf_of(),
            created_at: now,
            expires_at: spec.expires_in.expires_at(now),
            revoked_at: None,
            rotated_from,
            last_used_at: None,
        };
        CreatedKey { key, plaintext, creator: None }
    }

    /// What a key operation records: its audit row and its webhook event, stored with the
    /// change itself. The key's public fields only: its record holds no secret.
    fn event(caller: &Caller, event: Event, now: DateTime<Utc>) -> DomainEvent {
        DomainEvent::new(caller.organization_id(), caller.audit_actor(), now, event)
    }

    /// Creates a key (K1, K3-K7, K16).
    pub async fn create(&self, caller: &Caller, input: CreateKeyInput) -> Result<CreatedKey, CreateKeyError> {
        caller.require(EDIT)?;
        let spec = Self::validate(caller, &input)?;
        let now = self.now();
        let created = self.mint(caller, spec, None, now);
        let event = Self::event(caller, Event::ApiKeyCreated { key: created.key.clone() }, now);
        self.ports.keys.insert(&created.key, &event, MAX_ACTIVE_KEYS, now).await?;
        Ok(self.with_creator(created).await?)
    }

    fn listing(&self, key: ApiKey, now: DateTime<Utc>) -> KeyListing {
        KeyListing { status: key.status(now), expires_soon: key.expires_soon(now), key, creator: None }
    }

    /// Fills in each listing's creator, with one read for all of them.
    async fn with_creators(
        &self,
        organization: OrganizationId,
        mut listings: Vec<KeyListing>,
    ) -> Result<Vec<KeyListing>, StorageError> {
        let mut ids: Vec<UserId> = listings.iter().map(|l| l.key.created_by).collect();
        ids.sort();
        ids.dedup();
        let users: HashMap<UserId, User> =
            self.ports.users.find_many(organization, ids).await?.into_iter().map(|u| (u.id, u)).collect();
        for listing in &mut listings {
            listing.creator = users.get(&listing.key.created_by).cloned();
        }
        Ok(listings)
    }

    async fn with_creator(&self, mut created: CreatedKey) -> Result<CreatedKey, StorageError> {
        let ids = vec![created.key.created_by];
        created.creator = self.ports.users.find_many(created.key.organization_id, ids).await?.into_iter().next();
        Ok(created)
    }

    async fn one_with_creator(&self, listing: KeyListing) -> Result<KeyListing, StorageError> {
        let organization = listing.key.organization_id;
        Ok(self.with_creators(organization, vec![listing]).await?.pop().expect("one in, one out"))
    }

    /// Every key of the organization, newest first, revoked ones included (K8, K11).
    pub async fn list(&self, caller: &Caller) -> Result<Vec<KeyListing>, KeyAccessError> {
        caller.require(VIEW)?;
        let now = self.now();
        let keys = self.ports.keys.list(caller.organization_id()).await?;
        let listings = keys.into_iter().map(|key| self.listing(key, now)).collect();
        Ok(self.with_creators(caller.organization_id(), listings).await?)
    }

    async fn find(&self, caller: &Caller, id: ApiKeyId) -> Result<ApiKey, KeyAccessError> {
        self.ports.keys.find(caller.organization_id(), id).await?.ok_or(KeyAccessError::NotFound)
    }

    /// One key with its usage (K9).
    pub async fn detail(&self, caller: &Caller, id: ApiKeyId) -> Result<ApiKeyDetail, KeyAccessError> {
        caller.require(VIEW)?;
        let key = self.find(caller, id).await?;
        let usage = self.ports.usage.summary(key.id).await?;
        let page = PageRequest::new(Some(RECENT_REQUESTS), None).map_err(|_| StorageError::new("page size"))?;
        let recent = self.ports.usage.recent(key.id, &page).await?;
        let now = self.now();
        let last_used = usage.last_used_at.or(key.last_used_at);
        let used_in_last_24h = last_used.is_some_and(|at| now - at < Duration::hours(24));
        let listing = self.one_with_creator(self.listing(key, now)).await?;
        Ok(ApiKeyDetail { listing, usage, recent_requests: recent.items, used_in_last_24h })
    }

    /// A page of the key's usage log, newest first.
    pub async fn usage(
        &self,
        caller: &Caller,
        id: ApiKeyId,
        page: &PageRequest<i64>,
    ) -> Result<Page<UsageEntry, i64>, KeyAccessError> {
        caller.require(VIEW)?;
        let key = self.find(caller, id).await?;
        Ok(self.ports.usage.recent(key.id, page).await?)
    }

    /// Revokes a key at once and for good (K11, K16). Revoking a revoked key changes nothing.
    pub async fn revoke(&self, caller: &Caller, id: ApiKeyId) -> Result<KeyListing, RevokeKeyError> {
        caller.require(EDIT)?;
        let key = self.find(caller, id).await?;
        let now = self.now();
        if key.status(now) == ApiKeyStatus::Revoked {
            return Ok(self.one_with_creator(self.listing(key, now)).await?);
        }
        let revoked_now = ApiKey { revoked_at: Some(now), ..key };
        let event = Self::event(caller, Event::ApiKeyRevoked { key: revoked_now }, now);
        let revoked =
            self.ports.keys.revoke(caller.organization_id(), id, now, &event).await?.ok_or(KeyAccessError::NotFound)?;
        self.ports.cache.invalidate(&revoked.key_hash);
        self.ports.invalidations.publish(&revoked.key_hash).await;
        Ok(self.one_with_creator(self.listing(revoked, now)).await?)
    }

    /// Creates a new key with the old one's scopes and settings (K12). The old key keeps working
    /// until it is revoked, optionally at `revoke_old_at` (never later than its own expiry).
    pub async fn rotate(
        &self,
        caller: &Caller,
        id: ApiKeyId,
        input: RotateKeyInput,
    ) -> Result<CreatedKey, RotateKeyError> {
        caller.require(EDIT).map_err(KeyAccessError::from)?;
        let old = self.find(caller, id).await?;
        let now = self.now();
        let status = old.status(now);
        if status != ApiKeyStatus::Active {
            return Err(RotateKeyError::NotActive(status));
        }
        let revoke_old_at = input.revoke_old_at.map(|at| at.max(now));
        if let (Some(at), Some(expiry)) = (revoke_old_at, old.expires_at)
            && at > expiry
        {
            return Err(RotateKeyError::RevokeAfterExpiry);
        }
        let name = match &input.name {
            Some(name) => ApiKeyName::parse(name).map_err(CreateKeyError::from)?,
            None => rotated_name(&old.name),
        };
        Self::check_scopes(caller, old.scope_level, old.environment, &old.scopes)?;
        let spec = KeySpec {
            name,
            description: old.description.clone(),
            scope_level: old.scope_level,
            scopes: old.scopes.clone(),
            expires_in: old.expires_in,
            environment: old.environment,
            allowed_ips: old.allowed_ips.clone(),
        };
        let created = self.mint(caller, spec, Some(old.id), now);
        let rotated =
            Event::ApiKeyRotated { key: created.key.clone(), rotated_from: old.id, old_key_revoked_at: revoke_old_at };
        let event = Self::event(caller, rotated, now);
        self.ports.keys.rotate(&created.key, old.id, revoke_old_at, &event, MAX_ACTIVE_KEYS, now).await?;
        if revoke_old_at.is_some() {
            // Cached copies of the old key do not know its revocation time yet.
            self.ports.cache.invalidate(&old.key_hash);
            self.ports.invalidations.publish(&old.key_hash).await;
        }
        Ok(self.with_creator(created).await.map_err(KeyAccessError::from)?)
    }

    /// Checks a presented key (hot path, F1): shape, then the cache, then storage on a miss.
    /// Unknown keys are cached too, so garbage does not reach the database twice; and a client
    /// network that presented too many unknown keys gets no more reads for a while.
    pub async fn verify(&self, presented: &str, client: Option<IpAddr>) -> Result<Arc<ApiKey>, VerifyError> {
        let key = self.known(presented, client).await?;
        match key.status(self.now()) {
            ApiKeyStatus::Active => Ok(key),
            ApiKeyStatus::Revoked => Err(VerifyError::Revoked),
            ApiKeyStatus::Expired => Err(VerifyError::Expired),
        }
    }

    /// The key `presented` is, whatever its status, checked as [`ApiKeyService::verify`] checks
    /// it (shape, cache, storage, guesses); its status is the caller's to check. For the
    /// verification API, which describes a revoked or expired key to the service asking.
    pub async fn known(&self, presented: &str, client: Option<IpAddr>) -> Result<Arc<ApiKey>, VerifyError> {
        let presented = PresentedKey::parse(presented).map_err(|_| VerifyError::Malformed)?;
        let hash = self.ports.hasher.hash(presented.as_str());
        // Named only when a key is not cached or not known: a cached key's check allocates nothing.
        let network = || client.map(network_subject);
        let cached = match self.ports.cache.get(&hash) {
            Some(entry) => entry,
            None => {
                if let Some(network) = network() {
                    self.ports.guesses.may_look_up(&network).map_err(VerifyError::TooManyGuesses)?;
                }
                let entry = self.ports.keys.find_by_hash(&hash).await?.map(Arc::new);
                self.ports.cache.insert(hash, entry.clone());
                entry
            }
        };
        let unknown = || {
            if let Some(network) = network() {
                self.ports.guesses.failed(&network);
            }
            VerifyError::Unknown
        };
        let key = cached.ok_or_else(unknown)?;
        // The lookup was by hash; confirm in constant time before trusting it.
        if !self.ports.hasher.same(&hash, &key.key_hash) {
            return Err(unknown());
        }
        Ok(key)
    }
}

/// `"<name> (rotated)"`, shortened to fit the name limit.
fn rotated_name(name: &ApiKeyName) -> ApiKeyName {
    const SUFFIX: &str = " (rotated)";
    let room = ApiKeyName::MAX_CHARS - SUFFIX.chars().count();
    let base: String = name.as_str().chars().take(room).collect();
    ApiKeyName::parse(&format!("{}{SUFFIX}", base.trim_end())).unwrap_or_else(|_| name.clone())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::TimeZone;
    use mockall::predicate::eq;

    use super::super::{KeyHash, fixtures};
    use super::*;

    use crate::event::AuditActor;
    use crate::ports::{
        MockApiKeyRepository, MockClock, MockKeyCache, MockKeyGuessGuard, MockKeyHasher, MockKeyInvalidationBus,
        MockSecretGenerator, MockUsageLog,
    };
    use crate::user::{Role, UserId};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn actor(role: Role) -> Caller {
        crate::caller::fixtures::user(role)
    }

    /// A readable stand-in for SHA-256: the first 32 bytes of the plaintext, zero-padded.
    fn fake_hash(s: &str) -> KeyHash {
        let mut out = [0u8; 32];
        for (slot, byte) in out.iter_mut().zip(s.bytes().rev()) {
            *slot = byte;
        }
        KeyHash(out)
    }

    struct Mocks {
        keys: MockApiKeyRepository,
        usage: MockUsageLog,
        cache: MockKeyCache,
        invalidations: MockKeyInvalidationBus,
        guesses: MockKeyGuessGuard,
        users: crate::user::MockUserDirectory,
        clock_now: DateTime<Utc>,
    }

    impl Mocks {
        fn new() -> Self {
            Self {
                keys: MockApiKeyRepository::new(),
                usage: MockUsageLog::new(),
                cache: MockKeyCache::new(),
                // No expectation: publishing where a test did not ask for it fails the test.
                invalidations: MockKeyInvalidationBus::new(),
                // No expectation either: only the tests that pass a client address use it.
                guesses: MockKeyGuessGuard::new(),
                users: {
                    let mut users = crate::user::MockUserDirectory::new();
                    users.expect_find_many().returning(|_, _| Ok(vec![]));
                    users
                },
                clock_now: now(),
            }
        }

        fn service(self) -> ApiKeyService {
            let mut hasher = MockKeyHasher::new();
            hasher.expect_hash().returning(fake_hash);
            hasher.expect_matches().returning(|s, h| fake_hash(s) == *h);
            hasher.expect_same().returning(|a, b| a == b);
            let mut secrets = MockSecretGenerator::new();
            secrets.expect_base62().returning(|len| "a1B2".repeat(len / 4 + 1)[..len].to_owned().into());
            let mut clock = MockClock::new();
            let at = self.clock_now;
            clock.expect_now().returning(move || at);
            ApiKeyService::new(ApiKeyPorts {
                keys: Arc::new(self.keys),
                usage: Arc::new(self.usage),
                cache: Arc::new(self.cache),
                invalidations: Arc::new(self.invalidations),
                guesses: Arc::new(self.guesses),
                hasher: Arc::new(hasher),
                secrets: Arc::new(secrets),
                clock: Arc::new(clock),
                users: Arc::new(self.users),
            })
        }
    }

    fn input() -> CreateKeyInput {
        CreateKeyInput {
            name: "Zapier".into(),
            description: Some("sync".into()),
            scope_level: "read_write".into(),
            scopes: vec!["customers.read".into(), "customers:write".into()],
            expires_in: "90d".into(),
            environment: "live".into(),
            allowed_ips: vec!["10.0.0.0/8".into()],
        }
    }

    #[tokio::test]
    async fn create_stores_a_hash_and_returns_the_plaintext_once() {
        let mut mocks = Mocks::new();
        let stored = Arc::new(Mutex::new(None));
        let sink = stored.clone();
        mocks
            .keys
            .expect_insert()
            .with(mockall::predicate::always(), mockall::predicate::always(), eq(25), eq(now()))
            .times(1)
            .returning(move |key, event, _, _| {
                // The event is stored with the key: who created which key, the record only.
                assert_eq!(event.event, Event::ApiKeyCreated { key: key.clone() });
                assert_eq!(event.actor, AuditActor::User(UserId(Uuid::from_u128(2))));
                assert_eq!((event.organization_id, event.occurred_at), (key.organization_id, now()));
                *sink.lock().unwrap() = Some(key.clone());
                Ok(())
            });
        let created = mocks.service().create(&actor(Role::Manager), input()).await.unwrap();
        let plaintext = created.plaintext.secret().expose_secret().to_owned();
        assert!(plaintext.starts_with("erp_live_"));
        assert_eq!(plaintext.len(), "erp_live_".len() + 40);
        assert!(PresentedKey::parse(&plaintext).is_ok());
        let stored = stored.lock().unwrap().clone().unwrap();
        assert_eq!(stored.key_hash, fake_hash(&plaintext));
        assert_eq!(stored.masked_key(), format!("erp_live_...{}", &plaintext[plaintext.len() - 4..]));
        assert_eq!(stored.scopes, vec![Scope::CustomersRead, Scope::CustomersWrite]);
        assert_eq!(stored.expires_at, Some(now() + Duration::days(90)));
        assert_eq!(stored.allowed_ips.len(), 1);
        assert_eq!(stored.created_by, UserId(Uuid::from_u128(2)));
    }

    #[tokio::test]
    async fn every_invalid_field_is_refused_before_storage() {
        type Check = fn(&CreateKeyError) -> bool;
        let cases: Vec<(CreateKeyInput, Check)> = vec![
            (CreateKeyInput { name: "".into(), ..input() }, |e| matches!(e, CreateKeyError::Name(NameError::Empty))),
            (CreateKeyInput { name: "  ".into(), ..input() }, |e| matches!(e, CreateKeyError::Name(NameError::Empty))),
            (CreateKeyInput { name: "n".repeat(101), ..input() }, |e| {
                matches!(e, CreateKeyError::Name(NameError::TooLong))
            }),
            (CreateKeyInput { description: Some("d".repeat(501)), ..input() }, |e| {
                matches!(e, CreateKeyError::Description(_))
            }),
            (
                CreateKeyInput { scopes: vec!["customers.destroy".into()], ..input() },
                |e| matches!(e, CreateKeyError::UnknownScope(s) if s == "customers.destroy"),
            ),
            (CreateKeyInput { scope_level: "read_only".into(), ..input() }, |e| {
                matches!(
                    e,
                    CreateKeyError::ScopeNotAllowed { scope: Scope::CustomersWrite, level: ScopeLevel::ReadOnly }
                )
            }),
            (CreateKeyInput { scope_level: "superuser".into(), ..input() }, |e| {
                matches!(e, CreateKeyError::InvalidScopeLevel)
            }),
            (CreateKeyInput { expires_in: "7d".into(), ..input() }, |e| matches!(e, CreateKeyError::InvalidExpiration)),
            (CreateKeyInput { environment: "prod".into(), ..input() }, |e| {
                matches!(e, CreateKeyError::InvalidEnvironment)
            }),
            (CreateKeyInput { allowed_ips: vec!["10.0.0.300".into()], ..input() }, |e| {
                matches!(e, CreateKeyError::InvalidIp(_))
            }),
            (CreateKeyInput { allowed_ips: vec!["10.0.0.1".into(); 101], ..input() }, |e| {
                matches!(e, CreateKeyError::TooManyIps)
            }),
        ];
        for (input, expected) in cases {
            let mut mocks = Mocks::new();
            mocks.keys.expect_insert().never();
            let err = mocks.service().create(&actor(Role::Admin), input.clone()).await.unwrap_err();
            assert!(expected(&err), "{input:?} gave {err:?}");
        }
    }

    #[tokio::test]
    async fn sensitive_scopes_need_an_admin() {
        let sensitive =
            CreateKeyInput { scope_level: "read_write".into(), scopes: vec!["employees.write".into()], ..input() };
        let mut mocks = Mocks::new();
        mocks.keys.expect_insert().never();
        let err = mocks.service().create(&actor(Role::Manager), sensitive.clone()).await.unwrap_err();
        assert_eq!(err, CreateKeyError::SensitiveScope(Scope::EmployeesWrite));

        let mut mocks = Mocks::new();
        mocks.keys.expect_insert().times(1).returning(|_, _, _, _| Ok(()));
        assert!(mocks.service().create(&actor(Role::Admin), sensitive).await.is_ok());
    }

    #[tokio::test]
    async fn test_keys_cannot_hold_live_only_scopes() {
        for scope in ["integrations.manage", "webhooks.manage"] {
            let test = CreateKeyInput {
                scope_level: "admin".into(),
                scopes: vec![scope.into()],
                environment: "test".into(),
                ..input()
            };
            let mut mocks = Mocks::new();
            mocks.keys.expect_insert().never();
            let err = mocks.service().create(&actor(Role::Admin), test.clone()).await.unwrap_err();
            assert_eq!(err, CreateKeyError::LiveOnlyScope(Scope::parse(scope).unwrap()));

            let mut mocks = Mocks::new();
            mocks.keys.expect_insert().times(1).returning(|_, _, _, _| Ok(()));
            let live = CreateKeyInput { environment: "live".into(), ..test };
            assert!(mocks.service().create(&actor(Role::Admin), live).await.is_ok());
        }
    }

    #[tokio::test]
    async fn viewers_cannot_create_keys() {
        let mut mocks = Mocks::new();
        mocks.keys.expect_insert().never();
        let err = mocks.service().create(&actor(Role::Viewer), input()).await.unwrap_err();
        assert_eq!(err, CreateKeyError::Forbidden(Denied::Role(Permission::SettingsEdit)));
    }

    #[tokio::test]
    async fn limit_and_name_conflicts_come_from_the_atomic_insert() {
        for (store_err, expected) in [
            (InsertKeyError::LimitReached, CreateKeyError::LimitReached),
            (InsertKeyError::NameTaken, CreateKeyError::NameTaken),
        ] {
            let mut mocks = Mocks::new();
            // The event goes with the refused insert: storage records neither.
            mocks.keys.expect_insert().times(1).returning(move |_, _, _, _| Err(store_err.clone()));
            assert_eq!(mocks.service().create(&actor(Role::Admin), input()).await.unwrap_err(), expected);
        }
    }

    fn presented() -> String {
        format!("erp_live_{}", "x".repeat(40))
    }

    fn stored_for(plaintext: &str) -> ApiKey {
        ApiKey { key_hash: fake_hash(plaintext), ..fixtures::key(now() - Duration::days(1)) }
    }

    #[tokio::test]
    async fn verify_serves_known_keys_from_the_cache_without_storage() {
        let mut mocks = Mocks::new();
        let key = Arc::new(stored_for(&presented()));
        mocks.cache.expect_get().returning(move |_| Some(Some(key.clone())));
        mocks.keys.expect_find_by_hash().never();
        let verified = mocks.service().verify(&presented(), None).await.unwrap();
        assert_eq!(verified.name.as_str(), "Backend");
    }

    #[tokio::test]
    async fn verify_caches_misses_including_unknown_keys() {
        let mut mocks = Mocks::new();
        mocks.cache.expect_get().returning(|_| None);
        mocks.keys.expect_find_by_hash().times(1).returning(|_| Ok(None));
        mocks.cache.expect_insert().withf(|_, entry| entry.is_none()).times(1).return_const(());
        assert_eq!(mocks.service().verify(&presented(), None).await.unwrap_err(), VerifyError::Unknown);
    }

    fn client() -> Option<std::net::IpAddr> {
        Some("2001:db8:1:2::7".parse().unwrap())
    }

    #[tokio::test]
    async fn unknown_keys_count_against_their_network_which_past_its_limit_gets_no_reads() {
        // An unknown key, looked up: counted for the client's /64.
        let mut mocks = Mocks::new();
        mocks.cache.expect_get().returning(|_| None);
        mocks.guesses.expect_may_look_up().withf(|n| n == "ip:2001:db8:1:2::/64").times(1).returning(|_| Ok(()));
        mocks.keys.expect_find_by_hash().times(1).returning(|_| Ok(None));
        mocks.cache.expect_insert().return_const(());
        mocks.guesses.expect_failed().withf(|n| n == "ip:2001:db8:1:2::/64").times(1).return_const(());
        assert_eq!(mocks.service().verify(&presented(), client()).await.unwrap_err(), VerifyError::Unknown);

        // An unknown key found in the cache (a repeated guess) is counted too, without a read.
        let mut mocks = Mocks::new();
        mocks.cache.expect_get().returning(|_| Some(None));
        mocks.guesses.expect_may_look_up().never();
        mocks.keys.expect_find_by_hash().never();
        mocks.guesses.expect_failed().times(1).return_const(());
        assert_eq!(mocks.service().verify(&presented(), client()).await.unwrap_err(), VerifyError::Unknown);

        // Past the limit, an uncached key is refused before any read.
        let mut mocks = Mocks::new();
        mocks.cache.expect_get().returning(|_| None);
        mocks.guesses.expect_may_look_up().returning(|_| Err(30));
        mocks.keys.expect_find_by_hash().never();
        mocks.cache.expect_insert().never();
        assert_eq!(mocks.service().verify(&presented(), client()).await.unwrap_err(), VerifyError::TooManyGuesses(30));

        // A cached real key from that network still works: the guard is never asked.
        let mut mocks = Mocks::new();
        let key = Arc::new(stored_for(&presented()));
        mocks.cache.expect_get().returning(move |_| Some(Some(key.clone())));
        mocks.guesses.expect_may_look_up().never();
        mocks.guesses.expect_failed().never();
        assert!(mocks.service().verify(&presented(), client()).await.is_ok());
    }

    #[tokio::test]
    async fn verify_refuses_malformed_keys_without_any_lookup() {
        let mut mocks = Mocks::new();
        mocks.cache.expect_get().never();
        mocks.keys.expect_find_by_hash().never();
        let svc = mocks.service();
        for bad in ["", "erp_live_short", "Bearer erp_live_x", &format!("erp_prod_{}", "x".repeat(40))] {
            assert_eq!(svc.verify(bad, None).await.unwrap_err(), VerifyError::Malformed);
        }
    }

    #[tokio::test]
    async fn verify_says_revoked_and_expired_with_the_product_messages() {
        let mut revoked = stored_for(&presented());
        revoked.revoked_at = Some(now() - Duration::minutes(1));
        let mut expired = stored_for(&presented());
        expired.expires_at = Some(now() - Duration::seconds(1));
        for (key, expected, message) in [
            (revoked, VerifyError::Revoked, "This API key has been revoked."),
            (expired, VerifyError::Expired, "This API key has expired."),
        ] {
            let mut mocks = Mocks::new();
            let key = Arc::new(key);
            mocks.cache.expect_get().returning(move |_| Some(Some(key.clone())));
            let err = mocks.service().verify(&presented(), None).await.unwrap_err();
            assert_eq!(err, expected);
            assert_eq!(err.to_string(), message);
        }
    }

    #[tokio::test]
    async fn revoke_is_immediate_and_invalidates_the_cache() {
        let key = stored_for(&presented());
        let mut mocks = Mocks::new();
        let found = key.clone();
        mocks.keys.expect_find().returning(move |_, _| Ok(Some(found.clone())));
        let revoked = ApiKey { revoked_at: Some(now()), ..key.clone() };
        mocks
            .keys
            .expect_revoke()
            .withf(|_, _, at, event| {
                *at == now() && matches!(&event.event, Event::ApiKeyRevoked { key } if key.revoked_at == Some(now()))
            })
            .times(1)
            .returning(move |_, _, _, _| Ok(Some(revoked.clone())));
        mocks.cache.expect_invalidate().with(eq(fake_hash(&presented()))).times(1).return_const(());
        mocks.invalidations.expect_publish().times(1).return_const(());
        let listing = mocks.service().revoke(&actor(Role::Manager), key.id).await.unwrap();
        assert_eq!(listing.status, ApiKeyStatus::Revoked);
    }

    #[tokio::test]
    async fn revoke_tells_other_processes_the_hash_once_committed() {
        let key = stored_for(&presented());
        let revoked = ApiKey { revoked_at: Some(now()), ..key.clone() };
        let found = key.clone();
        let mut mocks = Mocks::new();
        mocks.keys.expect_find().returning(move |_, _| Ok(Some(found.clone())));
        mocks.keys.expect_revoke().times(1).returning(move |_, _, _, _| Ok(Some(revoked.clone())));
        mocks.cache.expect_invalidate().return_const(());
        mocks.invalidations.expect_publish().with(eq(fake_hash(&presented()))).times(1).return_const(());
        mocks.service().revoke(&actor(Role::Admin), key.id).await.unwrap();

        // A revocation that did not commit announces nothing.
        let found = key.clone();
        let mut mocks = Mocks::new();
        mocks.keys.expect_find().returning(move |_, _| Ok(Some(found.clone())));
        mocks.keys.expect_revoke().returning(|_, _, _, _| Err(StorageError::new("connection reset")));
        mocks.cache.expect_invalidate().never();
        mocks.invalidations.expect_publish().never();
        let err = mocks.service().revoke(&actor(Role::Admin), key.id).await.unwrap_err();
        assert!(matches!(err, KeyAccessError::Storage(_)));
    }

    #[tokio::test]
    async fn revoking_a_revoked_key_changes_nothing() {
        let key = ApiKey { revoked_at: Some(now() - Duration::days(1)), ..stored_for(&presented()) };
        let mut mocks = Mocks::new();
        mocks.keys.expect_find().returning(move |_, _| Ok(Some(key.clone())));
        // Nothing is stored, so nothing is recorded or announced a second time.
        mocks.keys.expect_revoke().never();
        let listing = mocks.service().revoke(&actor(Role::Admin), ApiKeyId(Uuid::nil())).await.unwrap();
        assert_eq!(listing.status, ApiKeyStatus::Revoked);
    }

    #[tokio::test]
    async fn another_organizations_key_is_not_found() {
        let mut mocks = Mocks::new();
        mocks.keys.expect_find().returning(|_, _| Ok(None));
        mocks.keys.expect_revoke().never();
        let svc = mocks.service();
        let id = ApiKeyId(Uuid::now_v7());
        assert_eq!(svc.revoke(&actor(Role::Admin), id).await.unwrap_err(), KeyAccessError::NotFound);
        assert_eq!(svc.detail(&actor(Role::Admin), id).await.unwrap_err(), KeyAccessError::NotFound);
    }

    #[tokio::test]
    async fn rotate_copies_the_configuration_and_schedules_the_old_keys_end() {
        let old = ApiKey { allowed_ips: vec![parse_allowed_ip("10.0.0.0/8").unwrap()], ..stored_for(&presented()) };
        let old_id = old.id;
        let old_hash = old.key_hash;
        let found = old.clone();
        let mut mocks = Mocks::new();
        mocks.keys.expect_find().returning(move |_, _| Ok(Some(found.clone())));
        let revoke_at = now() + Duration::days(3);
        let expected = old.clone();
        mocks.keys.expect_rotate().times(1).returning(move |new, from, at, event, limit, _| {
            assert_eq!(from, old_id);
            assert_eq!(at, Some(revoke_at));
            assert_eq!(limit, MAX_ACTIVE_KEYS);
            assert_eq!(new.scopes, expected.scopes);
            assert_eq!(new.scope_level, expected.scope_level);
            assert_eq!(new.allowed_ips, expected.allowed_ips);
            assert_eq!(new.environment, expected.environment);
            assert_eq!(new.rotated_from, Some(old_id));
            assert_eq!(new.name.as_str(), "Backend (rotated)");
            assert_ne!(new.key_hash, expected.key_hash);
            assert_eq!(
                event.event,
                Event::ApiKeyRotated { key: new.clone(), rotated_from: old_id, old_key_revoked_at: Some(revoke_at) }
            );
            Ok(())
        });
        mocks.cache.expect_invalidate().with(eq(old_hash)).times(1).return_const(());
        mocks.invalidations.expect_publish().with(eq(old_hash)).times(1).return_const(());
        let input = RotateKeyInput { name: None, revoke_old_at: Some(revoke_at) };
        let created = mocks.service().rotate(&actor(Role::Admin), old_id, input).await.unwrap();
        assert!(created.plaintext.secret().expose_secret().starts_with("erp_live_"));
    }

    #[tokio::test]
    async fn rotate_without_a_scheduled_revocation_leaves_caches_alone() {
        let old = stored_for(&presented());
        let old_id = old.id;
        let mut mocks = Mocks::new();
        mocks.keys.expect_find().returning(move |_, _| Ok(Some(old.clone())));
        mocks.keys.expect_rotate().times(1).returning(|_, _, _, _, _, _| Ok(()));
        mocks.cache.expect_invalidate().never();
        mocks.invalidations.expect_publish().never();
        mocks.service().rotate(&actor(Role::Admin), old_id, RotateKeyInput::default()).await.unwrap();
    }

    #[tokio::test]
    async fn rotate_never_extends_the_old_keys_life() {
        let old = stored_for(&presented());
        let too_late = old.expires_at.unwrap() + Duration::seconds(1);
        let mut mocks = Mocks::new();
        mocks.keys.expect_find().returning(move |_, _| Ok(Some(old.clone())));
        mocks.keys.expect_rotate().never();
        let input = RotateKeyInput { name: None, revoke_old_at: Some(too_late) };
        let err = mocks.service().rotate(&actor(Role::Admin), ApiKeyId(Uuid::nil()), input).await.unwrap_err();
        assert_eq!(err, RotateKeyError::RevokeAfterExpiry);
    }

    #[tokio::test]
    async fn revoked_keys_cannot_be_rotated() {
        let old = ApiKey { revoked_at: Some(now()), ..stored_for(&presented()) };
        let mut mocks = Mocks::new();
        mocks.keys.expect_find().returning(move |_, _| Ok(Some(old.clone())));
        mocks.keys.expect_rotate().never();
        let err = mocks.service().rotate(&actor(Role::Admin), ApiKeyId(Uuid::nil()), RotateKeyInput::default()).await;
        assert_eq!(err.unwrap_err(), RotateKeyError::NotActive(ApiKeyStatus::Revoked));
    }

    /// What storage finds under its lock decides a race: a key already rotated, or revoked
    /// since it was read, is refused with the rotation's own errors, and no cache is touched.
    #[tokio::test]
    async fn a_rotation_that_lost_a_race_is_refused_as_such() {
        for (refusal, expected) in [
            (RotateStoredKeyError::AlreadyRotated, RotateKeyError::AlreadyRotated),
            (
                RotateStoredKeyError::OldKeyNotActive(ApiKeyStatus::Revoked),
                RotateKeyError::NotActive(ApiKeyStatus::Revoked),
            ),
            (
                RotateStoredKeyError::Insert(InsertKeyError::LimitReached),
                RotateKeyError::Create(CreateKeyError::LimitReached),
            ),
        ] {
            let old = stored_for(&presented());
            let old_id = old.id;
            let mut mocks = Mocks::new();
            mocks.keys.expect_find().returning(move |_, _| Ok(Some(old.clone())));
            mocks.keys.expect_rotate().times(1).returning(move |_, _, _, _, _, _| Err(refusal.clone()));
            mocks.cache.expect_invalidate().never();
            mocks.invalidations.expect_publish().never();
            let input = RotateKeyInput { name: None, revoke_old_at: Some(now()) };
            let err = mocks.service().rotate(&actor(Role::Admin), old_id, input).await.unwrap_err();
            assert_eq!(err, expected);
        }
    }

    #[tokio::test]
    async fn detail_reports_usage_and_recent_activity() {
        let key = stored_for(&presented());
        let mut mocks = Mocks::new();
        mocks.keys.expect_find().returning(move |_, _| Ok(Some(key.clone())));
        mocks.usage.expect_summary().returning(|_| {
            Ok(UsageSummary { total_requests: 7, unique_ips: 2, last_used_at: Some(now() - Duration::hours(2)) })
        });
        mocks
            .usage
            .expect_recent()
            .withf(|_, page| page.limit() == RECENT_REQUESTS)
            .returning(|_, _| Ok(Page { items: vec![], next: None }));
        let detail = mocks.service().detail(&actor(Role::Viewer), ApiKeyId(Uuid::nil())).await.unwrap();
        assert_eq!(detail.usage.total_requests, 7);
        assert!(detail.used_in_last_24h);
    }

    #[test]
    fn rotated_names_fit_the_limit() {
        let long = ApiKeyName::parse(&"n".repeat(100)).unwrap();
        let rotated = rotated_name(&long);
        assert_eq!(rotated.as_str().chars().count(), 100);
        assert!(rotated.as_str().ends_with(" (rotated)"));
    }
}
