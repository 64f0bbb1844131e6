// The system allocator fragments under many small per-request allocations; mimalloc is
// markedly cheaper on the request path (measured with `cargo xtask bench auth`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use otesse_server::cli::{Cli, Command};
use otesse_server::config::Settings;
use otesse_server::startup::{Application, announce_setup_token};
use otesse_server::telemetry;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    // Usage errors exit 2 with the usage text; --help and --version exit 0.
    let cli = Cli::parse();
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("otesse-server: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    telemetry::init(settings.log_format, &settings.log_filter);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate { action } => otesse_server::cli::migrate(&settings, action).await,
        Command::Rewrap => otesse_server::startup::rewrap(settings).await,
        Command::CheckConfig => otesse_server::cli::check_config(&settings).await,
        Command::ServiceToken { action } => otesse_server::cli::service_token(&settings, action).await,
        Command::Demo => otesse_server::demo::run(settings, cli.overrides.data_dir.is_some()).await,
    }
}

async fn serve(settings: Settings) -> std::process::ExitCode {
    let listen = settings.listen.clone();
    let mut app = match Application::build(settings).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "could not start");
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing::info!(listen = %listen, port = app.port(), "listening");
    if let Some(token) = app.take_setup_token() {
        announce_setup_token(&token, app.port());
    }
    match app.run_until_stopped().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server error");
            std::process::ExitCode::FAILURE
        }
    }
}
