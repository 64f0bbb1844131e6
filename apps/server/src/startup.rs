//! Wiring: builds every adapter and service once, registers each on its own, and runs the
//! server until it is stopped (gracefully, flushing the usage queue).

use std::net::TcpListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use std::collections::HashMap;

use otesse_crypto::{
    Argon2PasswordHasher, Keyring, RandomSecretGenerator, Sha256KeyHasher, StripeSignatures, load_or_create_dev_key,
};
use otesse_domain::StorageError;
use otesse_domain::account::{AccountPorts, AccountService};
use otesse_domain::api_key::{ApiKeyPorts, ApiKeyService};
use otesse_domain::audit::AuditService;
use otesse_domain::auth::{AuthPorts, AuthService};
use otesse_domain::customer::CustomerService;
use otesse_domain::integration::{
    Credentials, IntegrationPorts, IntegrationService, PostmarkMailer, Preconfigured, StripeWebhookPorts,
    StripeWebhookService,
};
use otesse_domain::notification::{ExpiryWarningPorts, ExpiryWarnings, NotificationService};
use otesse_domain::ports::{Clock, KeyCache, KeyHasher, PasswordHasher, ProviderClient, SecretGenerator, UsageSink};
use otesse_domain::sealed::CredentialCipher;
use otesse_providers::{HttpProviderClient, ProviderClientConfig};
use otesse_storage::Database;
use secrecy::{ExposeSecret, SecretString};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::{Mode, Settings};
use crate::error::json_error;
use crate::identify::TrustedProxies;
use crate::key_invalidation::{BroadcastingKeyCache, InvalidationFeed, KeyInvalidationListener};
use crate::metrics::observed::{CountedKeyCache, TimedKeyRepository, TimedProviderClient, TimedWebhookSender};
use crate::metrics::{HttpMetrics, Metrics, Scrape};
use crate::openapi::ApiDoc;
use crate::routes::{self, setup::SetupToken};
use crate::support::{MemoryKeyGuessGuard, MemorySignInThrottle, MokaKeyCache, SystemClock, ThrottleLimits};
use crate::telemetry;
use crate::usage::UsageQueue;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
    #[error("{0}")]
    Config(String),
}

/// A built server, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    usage: UsageQueue,
    /// Applies other processes' revocations to the key cache (PostgreSQL only).
    key_invalidations: Option<KeyInvalidationListener>,
    /// What `/v1/keys/invalidations` relays; closed when the server stops.
    invalidation_feed: InvalidationFeed,
    /// The background worker (O5); stopped with the server.
    worker: Option<tokio::task::JoinHandle<()>>,
    /// Printed once at start-up when the installation still needs its first admin.
    setup_token: Option<SecretString>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("port", &self.port).finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let database = Database::connect(&settings.database_url(), settings.database_schema.as_deref()).await?;
        Self::build_with(settings, database).await
    }

    pub async fn build_with(settings: Settings, database: Database) -> Result<Self, StartupError> {
        // Every change records its events in its own transaction; the outbox turns the
        // deliverable ones into webhook deliveries with the configured attempts.
        let database = database.with_delivery_attempts(settings.webhooks.max_attempts.max(1));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let hasher: Arc<dyn KeyHasher> = Arc::new(Sha256KeyHasher);
        let secrets: Arc<dyn SecretGenerator> = Arc::new(RandomSecretGenerator::new());
        let metrics = Metrics::new();
        // Its own pool: the writer writes the last rows after the HTTP workers have stopped.
        let usage_database = database.own_pool(1).await?;
        let usage = UsageQueue::start(
            Arc::new(usage_database.usage()),
            settings.usage.queue_capacity,
            settings.usage.batch_size,
            Duration::from_millis(settings.usage.flush_interval_ms),
            metrics.clone(),
        );
        let cache = key_cache(&settings, &metrics);
        // Every entry the cache drops is also told to the services on /v1/keys/invalidations.
        let invalidation_feed = InvalidationFeed::new();
        let cache: Arc<dyn KeyCache> = Arc::new(BroadcastingKeyCache::new(cache, invalidation_feed.clone()));
        let key_invalidations = KeyInvalidationListener::start(&database, cache.clone()).await?;
        let webhooks = webhook_service(&settings, &database, clock.clone(), &metrics)?;
        let api_keys =
            api_key_service(&settings, &database, &metrics, cache, hasher.clone(), secrets.clone(), clock.clone());
        // One bounded hasher for every password check, so the bound holds across services.
        let passwords: Arc<dyn PasswordHasher> = Arc::new(password_hasher(&settings.sign_in));
        let auth = AuthService::new(
            AuthPorts {
                users: Arc::new(database.users()),
                sessions: Arc::new(database.sessions()),
                passwords: passwords.clone(),
                hasher: hasher.clone(),
                secrets: secrets.clone(),
                throttle: Arc::new(MemorySignInThrottle::new(ThrottleLimits {
                    free_failures: settings.sign_in.max_failures_per_email.max(1),
                    max_delay: Duration::from_secs(settings.sign_in.max_delay_secs.max(1)),
                    max_per_network: settings.sign_in.max_failures_per_ip.max(1),
                    window: Duration::from_secs(settings.sign_in.window_secs.max(1)),
                })),
                clock: clock.clone(),
            },
            chrono::Duration::hours(settings.session_ttl_hours),
        );
        let service_tokens = crate::service_tokens::service(&database, hasher.clone(), secrets.clone(), clock.clone());
        let customers = CustomerService::new(Arc::new(database.customers()), clock.clone());
        let (integrations, stripe) = integration_services(&settings, &database, clock.clone(), Some(&metrics))?;
        let accounts = AccountService::new(AccountPorts {
            users: Arc::new(database.users()),
            accounts: Arc::new(database.accounts()),
            passwords: passwords.clone(),
            hasher,
            secrets: secrets.clone(),
            mailer: Arc::new(PostmarkMailer::new(integrations.clone())),
            clock: clock.clone(),
        });
        let audit = AuditService::new(Arc::new(database.audit()));
        let notifications = NotificationService::new(Arc::new(database.notifications()), clock.clone());
        // Listening before serving, so that no job queued once the server answers is missed.
        let wakeup = database.job_wakeup();
        let job_listener = if settings.jobs.enabled { wakeup.listen(&database).await? } else { None };
        let worker = settings.jobs.enabled.then(|| {
            let expiry = ExpiryWarnings::new(ExpiryWarningPorts {
                keys: Arc::new(database.api_keys()),
                users: Arc::new(database.users()),
                notifications: Arc::new(database.notifications()),
                mailer: Arc::new(PostmarkMailer::new(integrations.clone())),
                clock: clock.clone(),
            });
            let context = crate::jobs::JobContext {
                queue: Arc::new(database.jobs()),
                expiry,
                integrations: integrations.clone(),
                webhooks: webhooks.clone(),
                usage: Arc::new(database.usage()),
                idempotency: Arc::new(database.idempotency()),
                clock: clock.clone(),
                metrics: metrics.clone(),
            };
            crate::jobs::Worker::new(context, settings.jobs.clone()).start(wakeup, job_listener)
        });

        let setup_done = auth.is_setup_done().await?;
        let token = match &settings.setup_token {
            Some(token) => token.clone(),
            None if settings.mode == Mode::Production && !setup_done => {
                return Err(StartupError::Config(
                    "production mode needs OTESSE_SETUP_TOKEN until the first admin exists".into(),
                ));
            }
            // Generated tokens are random and printed once, on this start only.
            None => secrets.base62(32),
        };
        let setup_token = (!setup_done && settings.setup_token.is_none()).then(|| token.clone());

        let listener =
            TcpListener::bind(&settings.listen).map_err(|e| StartupError::Listen(settings.listen.clone(), e))?;
        let port = listener.local_addr().map_err(|e| StartupError::Listen(settings.listen.clone(), e))?.port();

        let max_body = settings.max_body_bytes;
        let limits = rate_limits(&settings, metrics.clone()).await?;
        let idempotency = crate::idempotency::Idempotency {
            store: Arc::new(database.idempotency()),
            cipher: Arc::new(keyring(&settings)?),
            clock: clock.clone(),
        };
        let scrape =
            Scrape::new(metrics.clone(), usage.clone(), database.clone(), Arc::new(database.jobs()), clock.clone());
        let http = HttpMetrics::new(&metrics, routes::route_table());
        let data = AppData {
            database: web::Data::new(database),
            api_keys: web::Data::new(api_keys),
            service_tokens: web::Data::new(service_tokens),
            invalidation_feed: web::Data::new(invalidation_feed.clone()),
            auth: web::Data::new(auth),
            accounts: web::Data::new(accounts),
            customers: web::Data::new(customers),
            integrations: web::Data::new(integrations),
            stripe: web::Data::new(stripe),
            notifications: web::Data::new(notifications),
            webhooks: web::Data::new(webhooks),
            public_url: web::Data::new(routes::stripe::PublicUrl(settings.public_url.clone())),
            audit: web::Data::new(audit),
            usage: web::Data::from(Arc::new(usage.clone()) as Arc<dyn UsageSink>),
            limits: web::Data::new(limits),
            idempotency: web::Data::new(idempotency),
            scrape: web::Data::new(scrape),
            setup_token: web::Data::new(SetupToken(token)),
            trusted_proxies: web::Data::new(TrustedProxies(Arc::new(settings.trusted_proxies.clone()))),
        };
        let openapi = ApiDoc::openapi();
        let browser = crate::dashboard::BrowserPolicy::from_settings(&settings);
        let mut server = HttpServer::new(move || {
            // One copy per worker, behind an `Rc`: each request clones a handle without atomics.
            let http = Rc::new(http.clone());
            App::new()
                .wrap(actix_web::middleware::from_fn(move |req, next| {
                    telemetry::request_id(Rc::clone(&http), req, next)
                }))
                .app_data(web::JsonConfig::default().limit(max_body).error_handler(|err, _| json_error(err).into()))
                .app_data(web::PayloadConfig::default().limit(max_body))
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    crate::error::ApiError::new(
                        crate::error::ErrorCode::InvalidParameter,
                        format!("Invalid query: {err}"),
                    )
                    .into()
                }))
                .configure(|cfg| data.register(cfg))
                .configure(routes::configure)
                .configure(|cfg| crate::dashboard::configure(cfg, &browser))
                // After the API routes: its path pattern is a regex, which the hot path should
                // not have to try first.
                .service(web::redirect("/docs", "/docs/"))
                .service(SwaggerUi::new("/docs/{_:.*}").url("/v1/openapi.json", openapi.clone()))
                .default_service(web::to(routes::default_service))
        })
        .shutdown_timeout(settings.shutdown_timeout_secs);
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener).map_err(|e| StartupError::Listen(settings.listen.clone(), e))?.run();
        Ok(Self { port, server, usage, key_invalidations, invalidation_feed, worker, setup_token })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully (what SIGTERM does). Call
    /// [`Application::invalidation_feed`]'s `close` first if services may be listening.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// The key invalidations this process hears, as `/v1/keys/invalidations` relays them.
    pub fn invalidation_feed(&self) -> InvalidationFeed {
        self.invalidation_feed.clone()
    }

    /// The usage queue, so tests can wait for rows to be written.
    pub fn usage_queue(&self) -> UsageQueue {
        self.usage.clone()
    }

    /// The generated first-run token, if one was generated on this start.
    pub fn take_setup_token(&mut self) -> Option<SecretString> {
        self.setup_token.take()
    }

    /// Serves until stopped (SIGINT/SIGTERM or the handle), then writes every queued usage row.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        // Open event streams would hold the graceful stop for its whole timeout: end them when
        // the signal that stops the server arrives (actix hears it too, and stops the server).
        let feed = self.invalidation_feed.clone();
        let closer = tokio::spawn(async move {
            stop_signal().await;
            feed.close();
        });
        let result = self.server.await;
        closer.abort();
        if let Some(worker) = self.worker {
            // A job cut short is taken again by a worker once its lease ends.
            worker.abort();
        }
        drop(self.key_invalidations);
        self.usage.stop().await;
        tracing::info!("stopped; usage log flushed");
        result
    }
}

/// The process's key cache (F1), sized and timed by the settings, its lookups counted.
pub(crate) fn key_cache(settings: &Settings, metrics: &Metrics) -> Arc<CountedKeyCache<MokaKeyCache>> {
    let cache = MokaKeyCache::new(
        settings.key_cache.capacity,
        Duration::from_secs(settings.key_cache.ttl_secs),
        settings.key_cache.negative_capacity,
        Duration::from_secs(settings.key_cache.negative_ttl_secs),
    );
    Arc::new(CountedKeyCache::new(cache, metrics))
}

/// The key service over `database`, with the settings' guess limits, its lookups by hash timed.
pub(crate) fn api_key_service(
    settings: &Settings,
    database: &Database,
    metrics: &Metrics,
    cache: Arc<dyn KeyCache>,
    hasher: Arc<dyn KeyHasher>,
    secrets: Arc<dyn SecretGenerator>,
    clock: Arc<dyn Clock>,
) -> ApiKeyService {
    ApiKeyService::new(ApiKeyPorts {
        keys: Arc::new(TimedKeyRepository::new(Arc::new(database.api_keys()), metrics)),
        usage: Arc::new(database.usage()),
        cache,
        invalidations: Arc::new(database.key_invalidations()),
        guesses: Arc::new(MemoryKeyGuessGuard::new(
            settings.rate_limit.invalid_key_requests.max(1),
            Duration::from_secs(settings.rate_limit.invalid_key_period_secs.max(1)),
        )),
        hasher,
        secrets,
        clock,
        users: Arc::new(database.users()),
    })
}

/// SIGINT or SIGTERM, the signals actix stops on.
async fn stop_signal() {
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Argon2id with the configured bounds on hashes running and waiting.
fn password_hasher(settings: &crate::config::SignInSettings) -> Argon2PasswordHasher {
    let concurrent = settings.max_concurrent_hashes.unwrap_or_else(otesse_crypto::default_concurrent_hashes).max(1);
    Argon2PasswordHasher::bounded(concurrent, settings.max_waiting_hashes.unwrap_or(concurrent * 4))
}

/// The master keys: `OTESSE_MASTER_KEYS`, or in development a key generated once into the data
/// directory. Production refuses to start without configured keys (I5).
pub fn keyring(settings: &Settings) -> Result<Keyring, StartupError> {
    match &settings.master_keys {
        Some(keys) => {
            Keyring::parse(keys.expose_secret()).map_err(|e| StartupError::Config(format!("OTESSE_MASTER_KEYS: {e}")))
        }
        None if settings.mode == Mode::Production => Err(StartupError::Config(
            "production mode needs OTESSE_MASTER_KEYS to encrypt integration credentials".into(),
        )),
        None => {
            let (keyring, created) =
                load_or_create_dev_key(&settings.data_dir).map_err(|e| StartupError::Config(e.to_string()))?;
            if created {
                tracing::warn!(
                    dir = %settings.data_dir.display(),
                    "generated a development master key (master.key, mode 0600); set OTESSE_MASTER_KEYS in production"
                );
            }
            Ok(keyring)
        }
    }
}

/// Outbound webhooks (W3): deliveries through the SSRF guard, with the deployment's policy
/// (loopback only when `OTESSE_ALLOW_LOOPBACK_URLS`; https only in production).
fn webhook_service(
    settings: &Settings,
    database: &Database,
    clock: Arc<dyn Clock>,
    metrics: &Metrics,
) -> Result<otesse_domain::webhook::WebhookService, StartupError> {
    let policy = otesse_providers::guard::UrlPolicy {
        allow_loopback: settings.allow_loopback_urls,
        require_https: settings.mode == Mode::Production,
    };
    let sender =
        otesse_providers::HttpWebhookSender::new(policy, Duration::from_secs(settings.webhooks.timeout_secs.max(1)))
            .map_err(|e| StartupError::Config(format!("webhook client: {e}")))?;
    Ok(otesse_domain::webhook::WebhookService {
        repo: Arc::new(database.webhooks()),
        sender: Arc::new(TimedWebhookSender::new(Arc::new(sender), metrics)),
        cipher: Arc::new(keyring(settings)?),
        notifications: Arc::new(database.notifications()),
        clock,
        settings: otesse_domain::webhook::WebhookSettings {
            disable_after_failures: settings.webhooks.disable_after_failures.max(1),
            max_endpoints: settings.webhooks.max_endpoints,
        },
    })
}

/// The integrations and Stripe webhook services, sharing the catalog and the keyring; with
/// `metrics`, the provider health checks are timed.
pub(crate) fn integration_services(
    settings: &Settings,
    database: &Database,
    clock: Arc<dyn Clock>,
    metrics: Option<&Metrics>,
) -> Result<(IntegrationService, StripeWebhookService), StartupError> {
    let extra = match &settings.catalog_file {
        Some(path) => Some((
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|e| StartupError::Config(format!("{}: {e}", path.display())))?,
        )),
        None => None,
    };
    let catalog = crate::catalog::load(extra.as_ref().map(|(o, t)| (o.as_str(), t.as_str())), &settings.providers)
        .map_err(StartupError::Config)?;
    for slug in crate::catalog::without_client(&catalog) {
        tracing::warn!(
            provider = %slug,
            "catalog provider without a client module: its health checks will report \"no client for provider\""
        );
    }
    let mut base_urls = HashMap::new();
    let mut preconfigured = HashMap::new();
    let mut oauth_apps = HashMap::new();
    for (slug, provider) in &settings.providers {
        if let Some(url) = &provider.base_url {
            base_urls.insert(slug.clone(), url.clone());
        }
        if let (Some(client_id), Some(client_secret)) = (&provider.client_id, &provider.client_secret) {
            oauth_apps.insert(
                slug.clone(),
                otesse_domain::integration::OAuthApp {
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                },
            );
        }
        if let Some(api_key) = &provider.api_key {
            preconfigured.insert(
                slug.clone(),
                Credentials {
                    api_key: api_key.clone(),
                    api_secret: provider.api_secret.clone(),
                    account_id: provider.account_id.clone(),
                },
            );
        }
    }
    let client = HttpProviderClient::new(ProviderClientConfig {
        base_urls,
        connect_timeout: Duration::from_millis(settings.provider_connect_timeout_ms),
        timeout: Duration::from_millis(settings.provider_timeout_ms),
    })
    .map_err(|e| StartupError::Config(e.to_string()))?;
    let client: Arc<dyn ProviderClient> = match metrics {
        Some(metrics) => Arc::new(TimedProviderClient::new(Arc::new(client), metrics)),
        None => Arc::new(client),
    };
    let oauth_client = otesse_providers::HttpOAuthClient::new(
        Duration::from_millis(settings.provider_connect_timeout_ms),
        Duration::from_millis(settings.provider_timeout_ms),
    )
    .map_err(|e| StartupError::Config(e.to_string()))?;
    let catalog = Arc::new(catalog);
    let cipher: Arc<dyn CredentialCipher> = Arc::new(keyring(settings)?);
    let stripe = StripeWebhookService::new(StripeWebhookPorts {
        catalog: catalog.clone(),
        integrations: Arc::new(database.integrations()),
        webhooks: Arc::new(database.stripe_webhooks()),
        cipher: cipher.clone(),
        verifier: Arc::new(StripeSignatures::new(Duration::from_secs(settings.stripe_webhook_tolerance_secs))),
        clock: clock.clone(),
    });
    let integrations = IntegrationService::new(IntegrationPorts {
        catalog,
        repository: Arc::new(database.integrations()),
        cipher,
        client,
        clock,
        preconfigured: Preconfigured::new(preconfigured),
        contacts: Arc::new(database.contacts()),
        oauth: otesse_domain::integration::OAuthPorts {
            apps: otesse_domain::integration::OAuthApps::new(oauth_apps),
            client: Arc::new(oauth_client),
            repository: Arc::new(database.oauth()),
            secrets: Arc::new(otesse_crypto::RandomSecretGenerator::default()),
            hasher: Arc::new(otesse_crypto::Sha256KeyHasher),
            users: Arc::new(database.users()),
            refresh_lease_secs: settings.oauth_refresh_lease_secs(),
        },
    });
    Ok((integrations, stripe))
}

/// The rate limiter the settings ask for, with the configured limits (W2).
pub(crate) async fn rate_limits(
    settings: &Settings,
    metrics: Metrics,
) -> Result<crate::rate_limit::Limits, StartupError> {
    use crate::config::RateLimitBackend;
    let limiter: Arc<dyn otesse_domain::rate_limit::RateLimiter> = match settings.rate_limit.backend {
        RateLimitBackend::Memory => Arc::new(otesse_ratelimit::InProcessRateLimiter::new()),
        RateLimitBackend::Redis => {
            let url = settings.rate_limit.redis_url.as_deref().ok_or_else(|| {
                StartupError::Config("rate_limit.backend = redis needs OTESSE_RATE_LIMIT__REDIS_URL".into())
            })?;
            let limiter = otesse_ratelimit::RedisRateLimiter::connect(url, "otesse:rl:")
                .await
                .map_err(|e| StartupError::Config(format!("the rate-limit Redis is unreachable: {e}")))?;
            Arc::new(limiter)
        }
    };
    crate::rate_limit::Limits::new(limiter, &settings.rate_limit, metrics).map_err(StartupError::Config)
}

/// Everything handlers take from `app_data`, each registered on its own.
#[derive(Clone)]
struct AppData {
    database: web::Data<Database>,
    api_keys: web::Data<ApiKeyService>,
    service_tokens: web::Data<otesse_domain::service_token::ServiceTokenService>,
    invalidation_feed: web::Data<InvalidationFeed>,
    auth: web::Data<AuthService>,
    accounts: web::Data<AccountService>,
    customers: web::Data<CustomerService>,
    integrations: web::Data<IntegrationService>,
    stripe: web::Data<StripeWebhookService>,
    notifications: web::Data<NotificationService>,
    webhooks: web::Data<otesse_domain::webhook::WebhookService>,
    public_url: web::Data<routes::stripe::PublicUrl>,
    audit: web::Data<AuditService>,
    usage: web::Data<dyn UsageSink>,
    limits: web::Data<crate::rate_limit::Limits>,
    idempotency: web::Data<crate::idempotency::Idempotency>,
    scrape: web::Data<Scrape>,
    setup_token: web::Data<SetupToken>,
    trusted_proxies: web::Data<TrustedProxies>,
}

impl AppData {
    fn register(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.database.clone())
            .app_data(self.api_keys.clone())
            .app_data(self.service_tokens.clone())
            .app_data(self.invalidation_feed.clone())
            .app_data(self.auth.clone())
            .app_data(self.accounts.clone())
            .app_data(self.customers.clone())
            .app_data(self.integrations.clone())
            .app_data(self.stripe.clone())
            .app_data(self.notifications.clone())
            .app_data(self.webhooks.clone())
            .app_data(self.public_url.clone())
            .app_data(self.audit.clone())
            .app_data(self.usage.clone())
            .app_data(self.limits.clone())
            .app_data(self.idempotency.clone())
            .app_data(self.scrape.clone())
            .app_data(self.setup_token.clone())
            .app_data(self.trusted_proxies.clone());
    }
}

/// Prints the generated setup token, once, where the operator starting the server sees it.
#[allow(clippy::print_stdout)]
pub fn announce_setup_token(token: &SecretString, port: u16) {
    println!(
        "\nFirst run: no admin exists yet. Open http://127.0.0.1:{port}/ and paste this setup token:\n\n  {token}\n\nor complete setup within this run with:\n\n  curl -X POST http://127.0.0.1:{port}/v1/setup \\\n    -H 'Content-Type: application/json' \\\n    -d '{{\"setup_token\": \"{token}\", \"organization_name\": \"Acme Cleaning\", \"email\": \"owner@acme.test\", \"password\": \"correct horse battery staple\"}}'\n\n(the values of the README's walkthrough: choose your own). A new token is printed at every start until setup is done.\n",
        token = token.expose_secret()
    );
}

/// `otesse-server rewrap`: re-encrypts every integration credential under the newest master
/// key, in batches, while servers keep running (see docs/operations.md).
pub async fn rewrap(settings: Settings) -> std::process::ExitCode {
    let outcome = async {
        let database = Database::connect(&settings.database_url(), settings.database_schema.as_deref()).await?;
        let keyring = keyring(&settings)?;
        let current = CredentialCipher::current_version(&keyring);
        let rewrapper = otesse_domain::sealed::Rewrapper::new(
            Arc::new(database.sealed_secrets()),
            Arc::new(keyring),
            Arc::new(SystemClock),
        );
        let progress = rewrapper.run(500).await.map_err(|e| StartupError::Config(e.to_string()))?;
        Ok::<_, StartupError>((current, progress))
    }
    .await;
    match outcome {
        Ok((version, progress)) => {
            tracing::info!(version, rewrapped = progress.rewrapped, skipped = progress.skipped, "rewrap finished");
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %err, "rewrap failed");
            std::process::ExitCode::FAILURE
        }
    }
}
