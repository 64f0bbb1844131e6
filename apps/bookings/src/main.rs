//! `otesse-bookings`: the bookings service. Prints `listening on http://<address>` once it serves.

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use otesse_bookings::{Store, serve};
use otesse_guard::{Guard, RemoteConfig};
use secrecy::SecretString;

/// How the service checks keys.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// Through Otesse's verification API (`--otesse-url`, `OTESSE_SERVICE_TOKEN`).
    Remote,
    /// In-process on Otesse's database, named by Otesse's own settings (`OTESSE_DATABASE_URL`, ...).
    Embedded,
}

/// A bookings service protected by Otesse API keys.
#[derive(Debug, Parser)]
#[command(name = "otesse-bookings", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "BOOKINGS_LISTEN", default_value = "127.0.0.1:8090")]
    listen: String,
    /// The service's own database.
    #[arg(long, env = "BOOKINGS_DATABASE_URL", default_value = "sqlite://./bookings.db?mode=rwc")]
    database_url: String,
    /// How keys are checked.
    #[arg(long, env = "BOOKINGS_GUARD", value_enum, default_value = "remote")]
    guard: Mode,
    /// Otesse's base URL (remote mode).
    #[arg(long, env = "OTESSE_URL", default_value = "http://127.0.0.1:8080")]
    otesse_url: url::Url,
    /// A platform service token made with `otesse-server service-token create` (remote mode).
    #[arg(long, env = "OTESSE_SERVICE_TOKEN", hide_env_values = true)]
    service_token: Option<String>,
    /// Seconds a key Otesse verified may be admitted while Otesse cannot be reached (remote mode).
    #[arg(long, env = "BOOKINGS_CACHE_TTL_SECS", default_value_t = 60)]
    cache_ttl_secs: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("otesse-bookings: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let guard = match args.guard {
        Mode::Remote => {
            let token = args.service_token.ok_or("remote mode needs OTESSE_SERVICE_TOKEN")?;
            let mut config = RemoteConfig::new(args.otesse_url, SecretString::from(token));
            config.cache_ttl = Duration::from_secs(args.cache_ttl_secs);
            Guard::remote(config).map_err(|e| e.to_string())?
        }
        Mode::Embedded => {
            let settings = otesse_server::config::Settings::load().map_err(|e| e.to_string())?;
            Guard::embedded(&settings).await.map_err(|e| e.to_string())?
        }
    };
    let store = Store::open(&args.database_url).await.map_err(|e| format!("the bookings database: {e}"))?;
    let listener = TcpListener::bind(&args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let server = serve(listener, guard.clone(), store).map_err(|e| e.to_string())?;
    println!("listening on http://{address}");
    std::io::stdout().flush().ok();
    let result = server.await.map_err(|e| e.to_string());
    guard.flush().await;
    result
}
