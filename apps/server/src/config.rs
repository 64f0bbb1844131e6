//! Typed, layered configuration (O3): built-in defaults < optional file < `OTESSE_*`
//! environment variables, with a `.env` file loaded into the environment first.
//!
//! Nested keys use `__` in the environment: `OTESSE_KEY_CACHE__TTL_SECS=60` sets
//! `key_cache.ttl_secs`. The file is `otesse.toml` in the working directory, or the path in
//! `OTESSE_CONFIG`; it uses the same keys (`listen = "0.0.0.0:8080"`).

use std::path::PathBuf;

use ipnet::IpNet;
use secrecy::SecretString;
use serde::Deserialize;

/// Development generates what it needs; production refuses to start without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Unknown top-level keys are ignored (other tools share the `OTESSE_` prefix, e.g. the test
/// suite's `OTESSE_TEST_POSTGRES_URL`); nested sections refuse unknown keys. Its `Debug` hides
/// the passwords that database and Redis URLs may carry, and every secret.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address to listen on (`OTESSE_LISTEN`).
    pub listen: String,
    /// `sqlite://...` or `postgres://...`; default: `sqlite://<data_dir>/otesse.db`.
    pub database_url: Option<String>,
    /// PostgreSQL schema to use (created if absent); default: the connection's search path.
    pub database_schema: Option<String>,
    /// Where the default SQLite file (and, in development, generated secrets) live.
    pub data_dir: PathBuf,
    pub mode: Mode,
    /// Presets the one-time first-run token; otherwise one is generated and printed once.
    pub setup_token: Option<SecretString>,
    /// Versioned AES-256 master keys for integration credentials (used by the integrations).
    pub master_keys: Option<SecretString>,
    /// Lets user-configured URLs point at loopback addresses (development and tests).
    pub allow_loopback_urls: bool,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR ranges).
    pub trusted_proxies: Vec<IpNet>,
    pub session_ttl_hours: i64,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    /// tracing filter, e.g. `info,otesse_server=debug`.
    pub log_filter: String,
    pub shutdown_timeout_secs: u64,
    pub workers: Option<usize>,
    pub key_cache: KeyCacheSettings,
    pub usage: UsageSettings,
    pub sign_in: SignInSettings,
    pub rate_limit: RateLimitSettings,
    pub jobs: JobSettings,
    pub webhooks: WebhookSettings,
    /// Per provider slug: `OTESSE_PROVIDERS__<SLUG>__BASE_URL`, `__API_KEY`, `__ACTIVE`, ...
    pub providers: std::collections::HashMap<String, ProviderSettings>,
    /// A deployment's extra catalog file (same format as the built-in one).
    pub catalog_file: Option<PathBuf>,
    /// Connect timeout for provider calls.
    pub provider_connect_timeout_ms: u64,
    /// Total timeout for one provider call.
    pub provider_timeout_ms: u64,
    /// The server's public base URL (`https://api.example.com`), used in URLs handed to
    /// providers such as Stripe webhook endpoints; default: the scheme and host of the request.
    pub public_url: Option<String>,
    /// How old a Stripe-Signature timestamp may be (either way) and still be accepted.
    pub stripe_webhook_tolerance_secs: u64,
    /// How long a process refreshing an OAuth connection's token holds its lease; another
    /// process takes it over after this (a refresher that died). At least `provider_timeout_ms`
    /// plus a second, whatever is set.
    pub oauth_refresh_lease_secs: u32,
}

/// One provider's deployment settings.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    /// Points the provider's client elsewhere (a local fake in development and tests).
    pub base_url: Option<String>,
    /// Pre-configured credentials (I13): organizations may connect without typing a key.
    pub api_key: Option<SecretString>,
    pub api_secret: Option<SecretString>,
    pub account_id: Option<String>,
    /// `false` deactivates the provider in the catalog.
    pub active: Option<bool>,
    /// An OAuth2 provider's client registration (I12): without both, the provider is listed as
    /// not available.
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
}

/// `url` with its password, if any, replaced by `***`; a value that does not parse as a URL
/// but might hold credentials is withheld whole.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Only fails for URLs that cannot have credentials at all.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) if url.contains('@') => "[REDACTED]".to_owned(),
        Err(_) => url.to_owned(),
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &self.database_url.as_deref().map(redacted_url))
            .field("database_schema", &self.database_schema)
            .field("data_dir", &self.data_dir)
            .field("mode", &self.mode)
            .field("setup_token", &self.setup_token.as_ref().map(|_| "[REDACTED]"))
            .field("master_keys", &self.master_keys.as_ref().map(|_| "[REDACTED]"))
            .field("allow_loopback_urls", &self.allow_loopback_urls)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("session_ttl_hours", &self.session_ttl_hours)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("shutdown_timeout_secs", &self.shutdown_timeout_secs)
            .field("workers", &self.workers)
            .field("key_cache", &self.key_cache)
            .field("usage", &self.usage)
            .field("sign_in", &self.sign_in)
            .field("rate_limit", &self.rate_limit)
            .field("jobs", &self.jobs)
            .field("webhooks", &self.webhooks)
            .field("providers", &self.providers)
            .field("catalog_file", &self.catalog_file)
            .field("provider_connect_timeout_ms", &self.provider_connect_timeout_ms)
            .field("provider_timeout_ms", &self.provider_timeout_ms)
            .field("public_url", &self.public_url.as_deref().map(redacted_url))
            .field("stripe_webhook_tolerance_secs", &self.stripe_webhook_tolerance_secs)
            .field("oauth_refresh_lease_secs", &self.oauth_refresh_lease_secs)
            .finish()
    }
}

impl std::fmt::Debug for RateLimitSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitSettings")
            .field("backend", &self.backend)
            .field("redis_url", &self.redis_url.as_deref().map(redacted_url))
            .field("key_requests", &self.key_requests)
            .field("key_period_secs", &self.key_period_secs)
            .field("sign_in_requests", &self.sign_in_requests)
            .field("sign_in_period_secs", &self.sign_in_period_secs)
            .field("key_creation_requests", &self.key_creation_requests)
            .field("key_creation_period_secs", &self.key_creation_period_secs)
            .field("invalid_key_requests", &self.invalid_key_requests)
            .field("invalid_key_period_secs", &self.invalid_key_period_secs)
            .finish()
    }
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("api_secret", &self.api_secret.as_ref().map(|_| "[REDACTED]"))
            .field("active", &self.active)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyCacheSettings {
    /// How long a known key is served from memory before the database is read again. Also the
    /// bound on how long another process may still accept a key revoked elsewhere.
    pub ttl_secs: u64,
    /// How long an unknown key is remembered as unknown.
    pub negative_ttl_secs: u64,
    /// Known keys held.
    pub capacity: u64,
    /// Unknown keys held, apart from the known ones (garbage never evicts a real key).
    pub negative_capacity: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageSettings {
    /// Rows waiting to be written; past this, rows are dropped and counted.
    pub queue_capacity: usize,
    /// Rows written per transaction at most.
    pub batch_size: usize,
    /// How often the writer takes what is queued. Bounds how stale the usage views may be.
    pub flush_interval_ms: u64,
}

/// Outbound webhooks (W3): `OTESSE_WEBHOOKS__*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// How long one delivery may take before it counts as failed.
    pub timeout_secs: u64,
    /// Attempts per delivery (spaced by the job queue's backoff: 30 s doubling to 1 h, with jitter).
    pub max_attempts: u32,
    /// Consecutive failed attempts that disable an endpoint (its owner is notified).
    pub disable_after_failures: u32,
    /// Endpoints per organization.
    pub max_endpoints: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let domain = otesse_domain::webhook::WebhookSettings::default();
        Self {
            timeout_secs: 10,
            max_attempts: otesse_storage::Outbox::default().delivery_attempts,
            disable_after_failures: domain.disable_after_failures,
            max_endpoints: domain.max_endpoints,
        }
    }
}

/// The background worker (O5).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobSettings {
    /// Run the worker in this process (every process may; each job still runs once).
    pub enabled: bool,
    /// How often the worker looks for due jobs when nothing wakes it (a queued delivery does).
    pub poll_interval_ms: u64,
    /// Jobs one process runs at once (webhook deliveries mostly wait on their receivers).
    pub concurrency: u32,
    /// How long a claimed job is a worker's before another may take it again.
    pub lease_secs: u64,
    /// How often every connection's health is checked.
    pub health_check_interval_secs: u64,
    /// How often keys nearing expiry are looked for (K13).
    pub expiry_warning_interval_secs: u64,
    /// Usage-log rows older than this are deleted (daily).
    pub usage_retention_days: u32,
    /// How often OAuth access tokens nearing expiry are refreshed in the background.
    pub token_refresh_interval_secs: u64,
    /// The background refresh takes the tokens expiring within this; longer than the interval.
    pub token_refresh_window_secs: u32,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval_ms: 1000,
            concurrency: 4,
            lease_secs: 300,
            health_check_interval_secs: 3600,
            expiry_warning_interval_secs: 3600,
            usage_retention_days: 90,
            token_refresh_interval_secs: 300,
            token_refresh_window_secs: 600,
        }
    }
}

/// Where rate-limit buckets live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitBackend {
    /// In this process: each process counts on its own.
    Memory,
    /// In Redis (`redis_url`): one limit across every process.
    Redis,
}

/// Rate limits (W2): `requests` per `period_secs` each, in bursts of up to `requests`. Its
/// `Debug` hides the Redis URL's password.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    pub backend: RateLimitBackend,
    pub redis_url: Option<String>,
    /// Per API key, on every keyed request.
    pub key_requests: u32,
    pub key_period_secs: u64,
    /// Per client network (an IPv4 address, an IPv6 /64), on `POST /v1/sessions` and, counted
    /// apart, on `POST /v1/setup`.
    pub sign_in_requests: u32,
    pub sign_in_period_secs: u64,
    /// Per user, on key creation and rotation.
    pub key_creation_requests: u32,
    pub key_creation_period_secs: u64,
    /// Unknown API keys per client network per period; past them the network's keys that are
    /// not cached are refused (429) without a database read until the period ends.
    pub invalid_key_requests: u32,
    pub invalid_key_period_secs: u64,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            backend: RateLimitBackend::Memory,
            redis_url: None,
            key_requests: 100,
            key_period_secs: 1,
            sign_in_requests: 20,
            sign_in_period_secs: 60,
            key_creation_requests: 20,
            key_creation_period_secs: 60,
            invalid_key_requests: 30,
            invalid_key_period_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignInSettings {
    /// Attempts per email without delay; after them each attempt waits a delay that doubles
    /// from 1 s (a success starts afresh).
    pub max_failures_per_email: u32,
    /// The longest delay between an email's attempts.
    pub max_delay_secs: u64,
    /// Attempts per client network (an IPv4 address, an IPv6 /64) within the window; a
    /// success gives its attempt back.
    pub max_failures_per_ip: u32,
    pub window_secs: u64,
    /// Password hashes running at once (19 MiB each); default: one per core, at least two.
    pub max_concurrent_hashes: Option<usize>,
    /// Password hashes waiting for a turn; past them a sign-in is answered 503 at once.
    pub max_waiting_hashes: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: None,
            database_schema: None,
            data_dir: PathBuf::from("./data"),
            mode: Mode::Development,
            setup_token: None,
            master_keys: None,
            allow_loopback_urls: false,
            trusted_proxies: Vec::new(),
            session_ttl_hours: 12,
            max_body_bytes: 64 * 1024,
            log_format: LogFormat::Pretty,
            log_filter: "info".into(),
            shutdown_timeout_secs: 30,
            workers: None,
            key_cache: KeyCacheSettings::default(),
            usage: UsageSettings::default(),
            sign_in: SignInSettings::default(),
            rate_limit: RateLimitSettings::default(),
            jobs: JobSettings::default(),
            webhooks: WebhookSettings::default(),
            providers: Default::default(),
            catalog_file: None,
            provider_connect_timeout_ms: 5_000,
            provider_timeout_ms: 10_000,
            public_url: None,
            stripe_webhook_tolerance_secs: 300,
            oauth_refresh_lease_secs: otesse_domain::integration::REFRESH_LEASE_SECS,
        }
    }
}

impl Default for KeyCacheSettings {
    fn default() -> Self {
        Self { ttl_secs: 30, negative_ttl_secs: 5, capacity: 100_000, negative_capacity: 20_000 }
    }
}

impl Default for UsageSettings {
    fn default() -> Self {
        Self { queue_capacity: 100_000, batch_size: 5_000, flush_interval_ms: 100 }
    }
}

impl Default for SignInSettings {
    fn default() -> Self {
        Self {
            max_failures_per_email: 5,
            max_delay_secs: 300,
            max_failures_per_ip: 50,
            window_secs: 900,
            max_concurrent_hashes: None,
            max_waiting_hashes: None,
        }
    }
}

impl Settings {
    /// Loads `.env`, then layers the optional file and the environment over the defaults
    /// (`Default` below; a missing key keeps its default).
    pub fn load() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is not worth refusing to start over.
        let _ = dotenvy::dotenv();
        let file = std::env::var("OTESSE_CONFIG").unwrap_or_else(|_| "otesse.toml".into());
        Self::load_from(Some(&file), std::env::vars())
    }

    /// The layering, with the environment passed in (testable without touching the process).
    pub fn load_from(file: Option<&str>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let env: std::collections::HashMap<String, String> =
            env.into_iter().filter(|(key, _)| key.starts_with("OTESSE_") && key != "OTESSE_CONFIG").collect();
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            builder =
                builder.add_source(config::File::with_name(file).format(config::FileFormat::Toml).required(false));
        }
        let built = builder
            .add_source(
                config::Environment::with_prefix("OTESSE")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("trusted_proxies")
                    .source(Some(env)),
            )
            .build()?;
        let settings: Settings = built.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.session_ttl_hours <= 0 {
            return Err(ConfigError::Invalid("session_ttl_hours must be positive".into()));
        }
        if self.usage.batch_size == 0 || self.usage.queue_capacity == 0 {
            return Err(ConfigError::Invalid("usage.batch_size and usage.queue_capacity must be positive".into()));
        }
        if u64::from(self.jobs.token_refresh_window_secs) <= self.jobs.token_refresh_interval_secs {
            return Err(ConfigError::Invalid(
                "jobs.token_refresh_window_secs must be longer than jobs.token_refresh_interval_secs".into(),
            ));
        }
        Ok(())
    }

    /// The OAuth refresh lease in force: the setting, but never shorter than a token request
    /// may take (`provider_timeout_ms` plus a second), or a second process could refresh with
    /// the same refresh token while the first still waits for its answer.
    pub fn oauth_refresh_lease_secs(&self) -> u32 {
        let floor = self.provider_timeout_ms.div_ceil(1000).saturating_add(1);
        self.oauth_refresh_lease_secs.max(u32::try_from(floor).unwrap_or(u32::MAX))
    }

    /// The database URL, defaulting to an SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("otesse.db").display()),
        }
    }
}

/// One setting as `--help` and `check-config` show it: its key (the file's spelling; the
/// environment variable is derived from it), what it does, and how to read its value from
/// [`Settings`], redacted where it is secret. The default shown is the value read from
/// `Settings::default()`, so it cannot drift from the code.
pub struct SettingInfo {
    pub key: &'static str,
    pub help: &'static str,
    value: fn(&Settings) -> String,
}

impl SettingInfo {
    /// `OTESSE_` and the key in capitals, with `__` between nested keys.
    pub fn env(&self) -> String {
        format!("OTESSE_{}", self.key.to_uppercase().replace('.', "__"))
    }

    /// The value in `settings`, secrets shown only as set or not.
    pub fn value(&self, settings: &Settings) -> String {
        (self.value)(settings)
    }

    pub fn default_value(&self) -> String {
        self.value(&Settings::default())
    }
}

fn shown<T: std::fmt::Display>(value: &Option<T>) -> String {
    value.as_ref().map_or_else(|| "(none)".to_owned(), ToString::to_string)
}

fn secret(value: &Option<SecretString>) -> String {
    if value.is_some() { "[REDACTED]" } else { "(none)" }.to_owned()
}

fn providers(settings: &Settings, field: fn(&ProviderSettings) -> Option<String>) -> String {
    let mut set: Vec<String> = settings
        .providers
        .iter()
        .filter_map(|(slug, provider)| field(provider).map(|value| format!("{slug}={value}")))
        .collect();
    set.sort();
    if set.is_empty() { "(none)".to_owned() } else { set.join(", ") }
}

const fn setting(key: &'static str, help: &'static str, value: fn(&Settings) -> String) -> SettingInfo {
    SettingInfo { key, help, value }
}

/// Every setting, in the order `--help` lists them. A test checks it against the fields of
/// [`Settings`] (through their `Debug`), so a new setting cannot be left out.
pub const SETTINGS: &[SettingInfo] = &[
    setting("listen", "Address to listen on (host:port; port 0 picks a free one)", |s| s.listen.clone()),
    setting("data_dir", "Where the default SQLite file and, in development, the generated master.key live", |s| {
        s.data_dir.display().to_string()
    }),
    setting("database_url", "sqlite://... or postgres://...; unset: sqlite://<data_dir>/otesse.db", |s| {
        redacted_url(&s.database_url())
    }),
    setting("database_schema", "PostgreSQL schema to use (created if absent)", |s| shown(&s.database_schema)),
    setting("mode", "development or production (production refuses to start without its secrets)", |s| {
        match s.mode {
            Mode::Development => "development",
            Mode::Production => "production",
        }
        .to_owned()
    }),
    setting("setup_token", "Presets the one-time first-run token; unset: one is generated and printed", |s| {
        secret(&s.setup_token)
    }),
    setting(
        "master_keys",
        "Versioned AES-256 master keys (v1:<base64>,v2:<base64>); unset in development: <data_dir>/master.key",
        |s| secret(&s.master_keys),
    ),
    setting("allow_loopback_urls", "Lets user-configured URLs (webhooks, providers) point at loopback", |s| {
        s.allow_loopback_urls.to_string()
    }),
    setting(
        "trusted_proxies",
        "Proxies whose X-Forwarded-For is believed (addresses or CIDR ranges, comma-separated)",
        |s| s.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
    ),
    setting("session_ttl_hours", "How long a sign-in lasts", |s| s.session_ttl_hours.to_string()),
    setting("max_body_bytes", "Largest accepted request body", |s| s.max_body_bytes.to_string()),
    setting("log_format", "pretty or json", |s| {
        match s.log_format {
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        }
        .to_owned()
    }),
    setting("log_filter", "tracing filter, e.g. info,otesse_server=debug", |s| s.log_filter.clone()),
    setting("shutdown_timeout_secs", "How long a graceful stop waits for requests in flight", |s| {
        s.shutdown_timeout_secs.to_string()
    }),
    setting("workers", "HTTP worker threads; unset: one per core", |s| shown(&s.workers)),
    setting("key_cache.ttl_secs", "How long a known key is served from memory", |s| s.key_cache.ttl_secs.to_string()),
    setting("key_cache.negative_ttl_secs", "How long an unknown key is remembered as unknown", |s| {
        s.key_cache.negative_ttl_secs.to_string()
    }),
    setting("key_cache.capacity", "Known keys held in memory", |s| s.key_cache.capacity.to_string()),
    setting("key_cache.negative_capacity", "Unknown keys held in memory", |s| {
        s.key_cache.negative_capacity.to_string()
    }),
    setting("usage.queue_capacity", "Usage rows waiting to be written; past this rows are dropped and counted", |s| {
        s.usage.queue_capacity.to_string()
    }),
    setting("usage.batch_size", "Usage rows written per transaction at most", |s| s.usage.batch_size.to_string()),
    setting("usage.flush_interval_ms", "How often the usage writer takes what is queued", |s| {
        s.usage.flush_interval_ms.to_string()
    }),
    setting("sign_in.max_failures_per_email", "Failed sign-ins per email before delays start", |s| {
        s.sign_in.max_failures_per_email.to_string()
    }),
    setting("sign_in.max_delay_secs", "The longest delay between an email's sign-in attempts", |s| {
        s.sign_in.max_delay_secs.to_string()
    }),
    setting("sign_in.max_failures_per_ip", "Failed sign-ins per client network within the window", |s| {
        s.sign_in.max_failures_per_ip.to_string()
    }),
    setting("sign_in.window_secs", "The per-network sign-in window", |s| s.sign_in.window_secs.to_string()),
    setting(
        "sign_in.max_concurrent_hashes",
        "Password hashes running at once; unset: one per core, at least two",
        |s| shown(&s.sign_in.max_concurrent_hashes),
    ),
    setting(
        "sign_in.max_waiting_hashes",
        "Password hashes waiting; past them sign-in answers 503; unset: 4 per running",
        |s| shown(&s.sign_in.max_waiting_hashes),
    ),
    setting("rate_limit.backend", "memory (per process) or redis (one limit across processes)", |s| {
        match s.rate_limit.backend {
            RateLimitBackend::Memory => "memory",
            RateLimitBackend::Redis => "redis",
        }
        .to_owned()
    }),
    setting("rate_limit.redis_url", "Redis for rate_limit.backend = redis", |s| {
        s.rate_limit.redis_url.as_deref().map_or_else(|| "(none)".to_owned(), redacted_url)
    }),
    setting("rate_limit.key_requests", "Requests per API key per period", |s| s.rate_limit.key_requests.to_string()),
    setting("rate_limit.key_period_secs", "The API-key rate-limit period", |s| {
        s.rate_limit.key_period_secs.to_string()
    }),
    setting("rate_limit.sign_in_requests", "Sign-in and setup requests per client network per period", |s| {
        s.rate_limit.sign_in_requests.to_string()
    }),
    setting("rate_limit.sign_in_period_secs", "The sign-in rate-limit period", |s| {
        s.rate_limit.sign_in_period_secs.to_string()
    }),
    setting("rate_limit.key_creation_requests", "Key creations and rotations per user per period", |s| {
        s.rate_limit.key_creation_requests.to_string()
    }),
    setting("rate_limit.key_creation_period_secs", "The key-creation rate-limit period", |s| {
        s.rate_limit.key_creation_period_secs.to_string()
    }),
    setting("rate_limit.invalid_key_requests", "Unknown API keys per client network per period", |s| {
        s.rate_limit.invalid_key_requests.to_string()
    }),
    setting("rate_limit.invalid_key_period_secs", "The unknown-key period", |s| {
        s.rate_limit.invalid_key_period_secs.to_string()
    }),
    setting("jobs.enabled", "Run the background worker in this process", |s| s.jobs.enabled.to_string()),
    setting("jobs.poll_interval_ms", "How often the worker looks for due jobs when not woken", |s| {
        s.jobs.poll_interval_ms.to_string()
    }),
    setting("jobs.concurrency", "Jobs one process runs at once", |s| s.jobs.concurrency.to_string()),
    setting("jobs.lease_secs", "How long a claimed job is a worker's", |s| s.jobs.lease_secs.to_string()),
    setting("jobs.health_check_interval_secs", "How often every connection's health is checked", |s| {
        s.jobs.health_check_interval_secs.to_string()
    }),
    setting("jobs.expiry_warning_interval_secs", "How often keys nearing expiry are looked for", |s| {
        s.jobs.expiry_warning_interval_secs.to_string()
    }),
    setting("jobs.token_refresh_interval_secs", "How often OAuth tokens nearing expiry are refreshed", |s| {
        s.jobs.token_refresh_interval_secs.to_string()
    }),
    setting("jobs.token_refresh_window_secs", "OAuth tokens expiring within this are refreshed ahead", |s| {
        s.jobs.token_refresh_window_secs.to_string()
    }),
    setting("jobs.usage_retention_days", "Usage-log rows older than this are deleted", |s| {
        s.jobs.usage_retention_days.to_string()
    }),
    setting("webhooks.timeout_secs", "How long one webhook delivery may take", |s| s.webhooks.timeout_secs.to_string()),
    setting("webhooks.max_attempts", "Attempts per webhook delivery", |s| s.webhooks.max_attempts.to_string()),
    setting("webhooks.disable_after_failures", "Consecutive failed attempts that disable an endpoint", |s| {
        s.webhooks.disable_after_failures.to_string()
    }),
    setting("webhooks.max_endpoints", "Webhook endpoints per organization", |s| s.webhooks.max_endpoints.to_string()),
    setting("providers.<slug>.base_url", "Points a provider's client elsewhere (a local fake)", |s| {
        providers(s, |p| p.base_url.clone())
    }),
    setting("providers.<slug>.api_key", "A pre-configured provider credential", |s| {
        providers(s, |p| p.api_key.as_ref().map(|_| "[REDACTED]".to_owned()))
    }),
    setting("providers.<slug>.api_secret", "Its secret, for providers that need one", |s| {
        providers(s, |p| p.api_secret.as_ref().map(|_| "[REDACTED]".to_owned()))
    }),
    setting("providers.<slug>.account_id", "Its account id, for providers that need one", |s| {
        providers(s, |p| p.account_id.clone())
    }),
    setting("providers.<slug>.active", "false takes the provider out of the catalog", |s| {
        providers(s, |p| p.active.map(|a| a.to_string()))
    }),
    setting("providers.<slug>.client_id", "An OAuth2 provider's client id, from registering Otesse with it", |s| {
        providers(s, |p| p.client_id.clone())
    }),
    setting("providers.<slug>.client_secret", "Its client secret", |s| {
        providers(s, |p| p.client_secret.as_ref().map(|_| "[REDACTED]".to_owned()))
    }),
    setting("catalog_file", "A deployment's extra provider catalog (TOML)", |s| {
        shown(&s.catalog_file.as_ref().map(|p| p.display().to_string()))
    }),
    setting("provider_connect_timeout_ms", "Connect timeout for provider calls", |s| {
        s.provider_connect_timeout_ms.to_string()
    }),
    setting("provider_timeout_ms", "Total timeout for one provider call", |s| s.provider_timeout_ms.to_string()),
    setting("public_url", "The server's public base URL; unset: the scheme and host of each request", |s| {
        s.public_url.as_deref().map_or_else(|| "(none)".to_owned(), redacted_url)
    }),
    setting("stripe_webhook_tolerance_secs", "How old a Stripe-Signature timestamp may be", |s| {
        s.stripe_webhook_tolerance_secs.to_string()
    }),
    setting(
        "oauth_refresh_lease_secs",
        "How long one process's OAuth token refresh excludes the others (at least the provider timeout + 1 s)",
        |s| s.oauth_refresh_lease_secs().to_string(),
    ),
];

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_oauth_refresh_lease_is_never_shorter_than_a_token_request() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(settings.oauth_refresh_lease_secs(), 30);
        let short = env(&[("OTESSE_OAUTH_REFRESH_LEASE_SECS", "4"), ("OTESSE_PROVIDER_TIMEOUT_MS", "3000")]);
        assert_eq!(Settings::load_from(None, short).unwrap().oauth_refresh_lease_secs(), 4);
        let slow = env(&[("OTESSE_OAUTH_REFRESH_LEASE_SECS", "4"), ("OTESSE_PROVIDER_TIMEOUT_MS", "120000")]);
        assert_eq!(Settings::load_from(None, slow).unwrap().oauth_refresh_lease_secs(), 121);
        let window = env(&[("OTESSE_JOBS__TOKEN_REFRESH_WINDOW_SECS", "60")]);
        assert!(Settings::load_from(None, window).is_err(), "a window shorter than the interval");
    }

    #[test]
    fn defaults_match_the_public_interface() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:8080");
        assert_eq!(settings.mode, Mode::Development);
        assert!(settings.database_url().starts_with("sqlite://"));
        assert!(settings.database_url().ends_with("otesse.db"));
        assert!(!settings.allow_loopback_urls);
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("otesse.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\nsession_ttl_hours = 2\n[key_cache]\nttl_secs = 5\n").unwrap();
        let settings = Settings::load_from(
            Some(file.to_str().unwrap()),
            env(&[
                ("OTESSE_LISTEN", "127.0.0.1:7000"),
                ("OTESSE_DATABASE_URL", "postgres://db/otesse"),
                ("OTESSE_SETUP_TOKEN", "preset-token"),
                ("OTESSE_KEY_CACHE__NEGATIVE_TTL_SECS", "2"),
                ("OTESSE_TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.1/32"),
                ("OTESSE_ALLOW_LOOPBACK_URLS", "true"),
                ("OTESSE_PROVIDERS__GOOGLE_MAPS__BASE_URL", "http://127.0.0.1:9999"),
                ("OTESSE_PROVIDERS__POSTMARK__API_KEY", "canary-postmark-token"),
                ("OTESSE_PROVIDERS__STRIPE__ACTIVE", "false"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.listen, "127.0.0.1:7000", "env beats file");
        assert_eq!(settings.session_ttl_hours, 2, "file beats default");
        assert_eq!(settings.key_cache.ttl_secs, 5);
        assert_eq!(settings.key_cache.negative_ttl_secs, 2);
        assert_eq!(settings.key_cache.capacity, 100_000, "untouched nested default survives");
        assert_eq!(settings.database_url(), "postgres://db/otesse");
        assert_eq!(settings.setup_token.unwrap().expose_secret(), "preset-token");
        assert_eq!(settings.trusted_proxies.len(), 2);
        assert!(settings.allow_loopback_urls);
        assert_eq!(settings.providers["google_maps"].base_url.as_deref(), Some("http://127.0.0.1:9999"));
        assert_eq!(settings.providers["postmark"].api_key.as_ref().unwrap().expose_secret(), "canary-postmark-token");
        assert_eq!(settings.providers["stripe"].active, Some(false));
        assert!(!format!("{:?}", settings.providers).contains("canary-postmark-token"));
    }

    #[test]
    fn unknown_and_invalid_settings_are_refused() {
        assert!(Settings::load_from(None, env(&[("OTESSE_SESSION_TTL_HOURS", "0")])).is_err());
        assert!(Settings::load_from(None, env(&[("OTESSE_MODE", "staging")])).is_err());
        assert!(Settings::load_from(None, env(&[("OTESSE_TRUSTED_PROXIES", "not-an-ip")])).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let settings = Settings::load_from(
            None,
            env(&[
                ("OTESSE_SETUP_TOKEN", "canary-setup-token-123"),
                ("OTESSE_DATABASE_URL", "postgres://otesse:canary-db-password@db.internal:5432/otesse"),
                ("OTESSE_RATE_LIMIT__REDIS_URL", "redis://:canary-redis-password@cache.internal:6379/0"),
                ("OTESSE_PROVIDERS__POSTMARK__API_KEY", "canary-provider-key"),
            ]),
        )
        .unwrap();
        let printed = format!("{settings:?}");
        for canary in ["canary-setup-token-123", "canary-db-password", "canary-redis-password", "canary-provider-key"] {
            assert!(!printed.contains(canary), "{canary} printed: {printed}");
        }
        // What is not secret stays readable.
        assert!(printed.contains("postgres://otesse:***@db.internal:5432/otesse"), "{printed}");
        assert!(printed.contains("cache.internal"), "{printed}");
        assert_eq!(redacted_url("sqlite://./data/otesse.db"), "sqlite://./data/otesse.db");
        assert_eq!(redacted_url("not a url but user:pw@host"), "[REDACTED]");
    }

    /// The paths of every leaf field `Debug` prints (`key_cache.ttl_secs`, ...).
    fn debug_fields(printed: &str) -> Vec<String> {
        let mut path: Vec<String> = Vec::new();
        let mut fields = Vec::new();
        for line in printed.lines().skip(1) {
            let depth = (line.len() - line.trim_start().len()) / 4;
            let line = line.trim();
            let Some((name, rest)) = line.split_once(": ") else { continue };
            path.truncate(depth - 1);
            if rest.ends_with('{') && !rest.starts_with('{') {
                path.push(name.to_owned());
            } else {
                fields.push(path.iter().chain([&name.to_owned()]).cloned().collect::<Vec<_>>().join("."));
            }
        }
        fields
    }

    #[test]
    fn the_settings_table_lists_every_setting_once() {
        let fields = debug_fields(&format!("{:#?}", Settings::default()));
        assert!(fields.len() > 40, "{fields:?}");
        let keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        for field in &fields {
            let listed = if field == "providers" {
                keys.iter().any(|k| k.starts_with("providers."))
            } else {
                keys.contains(&field.as_str())
            };
            assert!(listed, "setting {field} is missing from SETTINGS");
        }
        for key in &keys {
            assert!(key.starts_with("providers.") || fields.iter().any(|f| f == key), "{key} is no setting");
        }
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "a key is listed twice");
        // Each variable named is one the loader reads.
        for info in SETTINGS.iter().filter(|s| !s.key.starts_with("providers.")) {
            let value = info.default_value();
            if value == "(none)" || value.is_empty() || info.key == "database_url" {
                continue;
            }
            Settings::load_from(None, env(&[(&info.env(), &value)]))
                .unwrap_or_else(|e| panic!("{} = {value}: {e}", info.env()));
        }
        assert_eq!(SETTINGS[0].env(), "OTESSE_LISTEN");
        let nested = SETTINGS.iter().find(|s| s.key == "key_cache.ttl_secs").unwrap();
        assert_eq!(nested.env(), "OTESSE_KEY_CACHE__TTL_SECS");
        assert_eq!(nested.default_value(), "30");
    }

    #[test]
    fn the_settings_table_redacts_secrets() {
        let settings = Settings::load_from(
            None,
            env(&[
                ("OTESSE_SETUP_TOKEN", "canary-setup-token-123"),
                ("OTESSE_MASTER_KEYS", "v1:canary-master-key"),
                ("OTESSE_DATABASE_URL", "postgres://otesse:canary-db-password@db.internal:5432/otesse"),
                ("OTESSE_PROVIDERS__POSTMARK__API_KEY", "canary-provider-key"),
                ("OTESSE_PROVIDERS__POSTMARK__BASE_URL", "http://127.0.0.1:9099"),
            ]),
        )
        .unwrap();
        let printed: String = SETTINGS.iter().map(|s| format!("{} = {}\n", s.key, s.value(&settings))).collect();
        for canary in ["canary-setup-token-123", "canary-master-key", "canary-db-password", "canary-provider-key"] {
            assert!(!printed.contains(canary), "{canary} printed: {printed}");
        }
        assert!(printed.contains("providers.<slug>.base_url = postmark=http://127.0.0.1:9099"), "{printed}");
        assert!(printed.contains("setup_token = [REDACTED]"), "{printed}");
    }
}
