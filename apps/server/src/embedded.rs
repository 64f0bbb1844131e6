//! The verification API without the HTTP hop (S1, the guard's embedded mode): a service that
//! reaches Otesse's database opens the domain and storage crates on it and checks keys exactly
//! as `POST /v1/keys/verify` does, with the same answer, the same rate limits (one Redis for
//! both when `rate_limit.backend = redis`) and the same usage log.
//!
//! It never migrates the schema: Otesse owns it, and an embedding service may be older or newer.
//! With PostgreSQL it listens for key invalidations like any Otesse process, so a revoked key is
//! refused within about a second; on SQLite (one process by design) a revocation made by the
//! server reaches the embedded cache when the entry's time (`key_cache.ttl_secs`) is up.

use std::sync::Arc;
use std::time::Duration;

use otesse_crypto::{RandomSecretGenerator, Sha256KeyHasher};
use otesse_domain::api_key::ApiKeyService;
use otesse_domain::ports::{Clock, UsageSink};
use otesse_storage::Database;

use crate::config::Settings;
use crate::error::ApiError;
use crate::key_invalidation::KeyInvalidationListener;
use crate::metrics::Metrics;
use crate::rate_limit::Limits;
use crate::routes::verify::{VerifyRequest, VerifyResponse};
use crate::startup::StartupError;
use crate::support::SystemClock;
use crate::usage::UsageQueue;

/// Checks keys in-process, on Otesse's own database.
pub struct EmbeddedVerifier {
    keys: ApiKeyService,
    limits: Limits,
    usage: UsageQueue,
    _invalidations: Option<KeyInvalidationListener>,
}

impl std::fmt::Debug for EmbeddedVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedVerifier").finish_non_exhaustive()
    }
}

impl EmbeddedVerifier {
    /// Opens the database the settings name (`OTESSE_DATABASE_URL`, or the data directory's
    /// SQLite file), which must already hold Otesse's schema.
    pub async fn open(settings: &Settings) -> Result<Self, StartupError> {
        let database = Database::open(&settings.database_url(), settings.database_schema.as_deref()).await?;
        if database.migrations().await?.iter().any(|m| !m.applied) {
            return Err(StartupError::Config(
                "the database is not at Otesse's current schema: start Otesse (or `otesse-server migrate up`) first"
                    .into(),
            ));
        }
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let metrics = Metrics::new();
        let cache = crate::startup::key_cache(settings, &metrics);
        let invalidations = KeyInvalidationListener::start(&database, cache.clone()).await?;
        let keys = crate::startup::api_key_service(
            settings,
            &database,
            &metrics,
            cache,
            Arc::new(Sha256KeyHasher),
            Arc::new(RandomSecretGenerator::new()),
            clock,
        );
        let limits = crate::startup::rate_limits(settings, metrics.clone()).await?;
        let usage = UsageQueue::start(
            Arc::new(database.own_pool(1).await?.usage()),
            settings.usage.queue_capacity,
            settings.usage.batch_size,
            Duration::from_millis(settings.usage.flush_interval_ms),
            metrics,
        );
        Ok(Self { keys, limits, usage, _invalidations: invalidations })
    }

    /// What `POST /v1/keys/verify` answers for `request`.
    pub async fn verify(&self, request: &VerifyRequest) -> Result<VerifyResponse, ApiError> {
        crate::routes::verify::verify_key(&self.keys, &self.limits, Some(&self.usage as &dyn UsageSink), request).await
    }

    /// Writes the usage rows still queued (tests, and a service stopping).
    pub async fn flush(&self) {
        self.usage.flush().await;
    }
}
