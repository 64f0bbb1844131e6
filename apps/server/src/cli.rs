//! The command line (`otesse-server --help`): parsing with clap, the settings every command
//! shares, and the operator commands that are not the server itself (`migrate`,
//! `check-config`). `main.rs` only dispatches.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::config::{ConfigError, Mode, RateLimitBackend, SETTINGS, Settings};

/// Otesse API keys and integrations: the server and its operator commands.
///
/// Settings come from built-in defaults, then the configuration file, then OTESSE_*
/// environment variables (a .env file in the working directory is read into the environment
/// first), then the flags below. Every setting is listed with its variable and default at the
/// end of `--help`.
#[derive(Debug, Parser)]
#[command(name = "otesse-server", version, after_long_help = settings_help(), after_help = "Run `otesse-server --help` for every setting with its environment variable and default.")]
pub struct Cli {
    #[command(flatten)]
    pub overrides: Overrides,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The settings an operator most often sets on the command line; each wins over its variable.
#[derive(Debug, Args)]
pub struct Overrides {
    /// Configuration file (TOML, the same keys as the settings below) [default: otesse.toml]
    #[arg(long, global = true, env = "OTESSE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, global = true, env = "OTESSE_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Where the SQLite file and the development master.key live [default: ./data]
    #[arg(long, global = true, env = "OTESSE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://... or postgres://... [default: sqlite://<data-dir>/otesse.db]
    #[arg(long, global = true, env = "OTESSE_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default): migrations at start-up, then the API, the dashboard and
    /// the background worker until SIGINT or SIGTERM
    Serve,
    /// Show or apply the database migrations (the server applies them itself at start-up)
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Re-encrypt every sealed secret under the newest master key, while servers keep running
    Rewrap,
    /// Print the effective settings (secrets redacted) and check them: the listen address,
    /// the master keys, the database, the catalog; exits 1 if one is wrong
    CheckConfig,
    /// Make, list or revoke the platform service tokens the verification API
    /// (`POST /v1/keys/verify`) accepts
    ServiceToken {
        #[command(subcommand)]
        action: ServiceTokenAction,
    },
    /// Start a demo server on a fresh data directory (default ./demo-data) with fake
    /// providers and a filled organization, and print where to sign in
    Demo,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ServiceTokenAction {
    /// Make a token for a platform service and print it, this once
    Create {
        /// The service that will hold it, e.g. bookings
        name: String,
    },
    /// List the tokens (never their secrets)
    List,
    /// Revoke a token for good (servers stop accepting it within 10 seconds)
    Revoke {
        /// The token's id, as `list` prints it
        id: uuid::Uuid,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// List every migration and whether the database has it (reads only)
    Status,
    /// Apply the pending migrations
    Up,
}

/// The "Settings" section of `--help`, from the settings table.
fn settings_help() -> String {
    let mut text = String::from(
        "Settings (environment variable, then default; the file uses the lower-case key, with [sections] for dotted keys):\n",
    );
    for info in SETTINGS {
        let default = info.default_value();
        let default = if default.is_empty() { "(none)".to_owned() } else { default };
        text.push_str(&format!("  {}\n      {} [default: {default}]\n", info.env(), info.help));
    }
    text
}

impl Cli {
    /// Loads the settings with the flags laid over them.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        // A missing .env is normal; a malformed one is not worth refusing to start over.
        let _ = dotenvy::dotenv();
        let file = self.overrides.config.as_ref().map_or_else(|| "otesse.toml".to_owned(), |f| f.display().to_string());
        let mut settings = Settings::load_from(Some(&file), std::env::vars())?;
        if let Some(listen) = &self.overrides.listen {
            settings.listen.clone_from(listen);
        }
        if let Some(dir) = &self.overrides.data_dir {
            settings.data_dir.clone_from(dir);
        }
        if let Some(url) = &self.overrides.database_url {
            settings.database_url = Some(url.clone());
        }
        Ok(settings)
    }
}

/// `otesse-server migrate status|up`.
#[allow(clippy::print_stdout)]
pub async fn migrate(settings: &Settings, action: MigrateAction) -> ExitCode {
    let database =
        match otesse_storage::Database::open(&settings.database_url(), settings.database_schema.as_deref()).await {
            Ok(database) => database,
            Err(err) => return fail(&err.to_string()),
        };
    let outcome = match action {
        MigrateAction::Status => database.migrations().await.map(|all| {
            for migration in &all {
                println!("{:8} {}", if migration.applied { "applied" } else { "pending" }, migration.name);
            }
            let pending = all.iter().filter(|m| !m.applied).count();
            println!("{} applied, {pending} pending", all.len() - pending);
        }),
        MigrateAction::Up => database.migrate_up().await.map(|applied| println!("{applied} migrations applied")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err.to_string()),
    }
}

/// `otesse-server service-token create|list|revoke`.
#[allow(clippy::print_stdout)]
pub async fn service_token(settings: &Settings, action: ServiceTokenAction) -> ExitCode {
    use otesse_domain::service_token::ServiceTokenId;
    use secrecy::ExposeSecret;
    let database =
        match otesse_storage::Database::connect(&settings.database_url(), settings.database_schema.as_deref()).await {
            Ok(database) => database,
            Err(err) => return fail(&err.to_string()),
        };
    let tokens = crate::service_tokens::service(
        &database,
        std::sync::Arc::new(otesse_crypto::Sha256KeyHasher),
        std::sync::Arc::new(otesse_crypto::RandomSecretGenerator::new()),
        std::sync::Arc::new(crate::support::SystemClock),
    );
    match action {
        ServiceTokenAction::Create { name } => match tokens.create(&name).await {
            Ok((token, plaintext)) => {
                println!("created service token {} for {}", token.id.0, token.name);
                println!("{}", plaintext.expose_secret());
                println!("It is shown this once: give it to the service now (Authorization: Bearer ...).");
                ExitCode::SUCCESS
            }
            Err(err) => fail(&err.to_string()),
        },
        ServiceTokenAction::List => match tokens.list().await {
            Ok(all) => {
                for token in &all {
                    let state = match token.revoked_at {
                        Some(at) => format!("revoked {}", at.to_rfc3339()),
                        None => "active".to_owned(),
                    };
                    println!(
                        "{}  {:<20} ots_svc_...{}  created {}  {state}",
                        token.id.0,
                        token.name,
                        token.last_four,
                        token.created_at.to_rfc3339()
                    );
                }
                println!("{} service tokens", all.len());
                ExitCode::SUCCESS
            }
            Err(err) => fail(&err.to_string()),
        },
        ServiceTokenAction::Revoke { id } => match tokens.revoke(ServiceTokenId(id)).await {
            Ok(Some(token)) => {
                println!("revoked service token {} ({})", token.id.0, token.name);
                ExitCode::SUCCESS
            }
            Ok(None) => fail("no such service token"),
            Err(err) => fail(&err.to_string()),
        },
    }
}

#[allow(clippy::print_stderr)]
fn fail(message: &str) -> ExitCode {
    eprintln!("otesse-server: {message}");
    ExitCode::FAILURE
}

/// `otesse-server check-config`: every setting's effective value, then each check; exits 1
/// when one fails. Changes nothing: a SQLite file that does not exist yet is not created.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub async fn check_config(settings: &Settings) -> ExitCode {
    for info in SETTINGS {
        println!("{} = {}", info.key, info.value(settings));
    }
    println!();
    let mut failed = false;
    for (what, outcome) in checks(settings).await {
        match outcome {
            Ok(detail) => println!("ok     {what}: {detail}"),
            Err(problem) => {
                failed = true;
                println!("FAILED {what}: {problem}");
                eprintln!("otesse-server: {what}: {problem}");
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

async fn checks(settings: &Settings) -> Vec<(&'static str, Result<String, String>)> {
    vec![
        ("listen", check_listen(&settings.listen)),
        ("master_keys", check_master_keys(settings)),
        ("database_url", check_database(settings).await),
        ("catalog", check_catalog(settings)),
        ("rate_limit", check_rate_limit(settings)),
        ("public_url", check_public_url(settings)),
    ]
}

fn check_listen(listen: &str) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let invalid = || format!("{listen:?} is not a listen address: expected host:port, like 127.0.0.1:8080");
    let (host, port) = listen.rsplit_once(':').ok_or_else(invalid)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(invalid());
    }
    let addresses: Vec<_> =
        listen.to_socket_addrs().map_err(|e| format!("{listen:?} does not resolve: {e}"))?.collect();
    match addresses.first() {
        Some(address) => Ok(format!("{address}")),
        None => Err(format!("{listen:?} resolves to no address")),
    }
}

fn check_master_keys(settings: &Settings) -> Result<String, String> {
    match &settings.master_keys {
        Some(keys) => otesse_crypto::Keyring::parse(keys.expose_secret())
            .map(|keyring| {
                let versions: Vec<String> = keyring.versions().map(|v| format!("v{v}")).collect();
                format!("{} (the newest encrypts)", versions.join(", "))
            })
            .map_err(|e| format!("OTESSE_MASTER_KEYS is malformed: {e}")),
        None if settings.mode == Mode::Production => {
            Err("production mode needs OTESSE_MASTER_KEYS to encrypt integration credentials".into())
        }
        None => {
            let file = settings.data_dir.join("master.key");
            Ok(if file.exists() {
                format!("development key in {}", file.display())
            } else {
                format!("a development key will be generated into {} on first start", file.display())
            })
        }
    }
}

async fn check_database(settings: &Settings) -> Result<String, String> {
    let url = settings.database_url();
    if let Some(path) = url.strip_prefix("sqlite://").map(|p| p.split('?').next().unwrap_or(p)) {
        let file = std::path::Path::new(path);
        if !path.is_empty() && !path.starts_with(':') && !file.exists() {
            return Ok(format!("SQLite file {} will be created on first start", file.display()));
        }
    }
    if let Ok(parsed) = url::Url::parse(&url)
        && matches!(parsed.scheme(), "postgres" | "postgresql")
    {
        reachable(&parsed)?;
    }
    let database = otesse_storage::Database::open(&url, settings.database_schema.as_deref())
        .await
        .map_err(|e| format!("the database is unreachable: {e}"))?;
    database.ping().await.map_err(|e| format!("the database does not answer: {e}"))?;
    let migrations = database.migrations().await.map_err(|e| e.to_string())?;
    let pending = migrations.iter().filter(|m| !m.applied).count();
    let backend = database.backend_name();
    let _ = database.close().await;
    Ok(format!(
        "{backend} reachable, {} of {} migrations applied{}",
        migrations.len() - pending,
        migrations.len(),
        if pending > 0 { " (the server applies the rest at start-up)" } else { "" }
    ))
}

/// A quick TCP check first: the pool would only say it timed out, after 10 s.
fn reachable(url: &url::Url) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let host = url.host_str().unwrap_or("localhost");
    let port = url.port().unwrap_or(5432);
    let addresses =
        (host, port).to_socket_addrs().map_err(|e| format!("the database host {host} does not resolve: {e}"))?;
    let mut last = None;
    for address in addresses {
        match std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(err) => last = Some(err),
        }
    }
    Err(format!(
        "the database is unreachable at {host}:{port}: {}",
        last.map_or_else(|| "no address".to_owned(), |e| e.to_string())
    ))
}

fn check_catalog(settings: &Settings) -> Result<String, String> {
    let extra = match &settings.catalog_file {
        Some(path) => Some((
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )),
        None => None,
    };
    let catalog = crate::catalog::load(extra.as_ref().map(|(o, t)| (o.as_str(), t.as_str())), &settings.providers)?;
    Ok(format!("{} providers", catalog.all().len()))
}

fn check_rate_limit(settings: &Settings) -> Result<String, String> {
    match (settings.rate_limit.backend, &settings.rate_limit.redis_url) {
        (RateLimitBackend::Redis, None) => Err("rate_limit.backend = redis needs OTESSE_RATE_LIMIT__REDIS_URL".into()),
        (RateLimitBackend::Redis, Some(url)) => url::Url::parse(url)
            .map(|_| "redis".to_owned())
            .map_err(|e| format!("OTESSE_RATE_LIMIT__REDIS_URL is not a URL: {e}")),
        (RateLimitBackend::Memory, _) => Ok("in memory, per process".into()),
    }
}

fn check_public_url(settings: &Settings) -> Result<String, String> {
    match &settings.public_url {
        None => Ok("(none): taken from each request".into()),
        Some(url) => url::Url::parse(url)
            .map(|_| crate::config::redacted_url(url))
            .map_err(|e| format!("OTESSE_PUBLIC_URL is not a URL: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn listen_addresses_are_checked() {
        assert!(check_listen("127.0.0.1:8080").is_ok());
        assert!(check_listen("[::1]:0").is_ok());
        for bad in ["8080", "127.0.0.1", "127.0.0.1:http", ":8080", "127.0.0.1:99999"] {
            assert!(check_listen(bad).unwrap_err().contains("not a listen address"), "{bad}");
        }
    }
}
