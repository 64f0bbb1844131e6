// The system allocator fragments under many small per-request allocations; mimalloc is
// markedly cheaper on the request path (measured with `cargo xtask bench auth`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use otesse_server::config::Settings;
use otesse_server::startup::{Application, announce_setup_token};
use otesse_server::telemetry;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let command = std::env::args().nth(1);
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("otesse: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    telemetry::init(settings.log_format, &settings.log_filter);
    match command.as_deref() {
        None | Some("serve") => {}
        Some("rewrap") => return otesse_server::startup::rewrap(settings).await,
        Some(other) => {
            eprintln!("otesse: unknown command {other:?}; commands: serve (default), rewrap");
            return std::process::ExitCode::FAILURE;
        }
    }
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
