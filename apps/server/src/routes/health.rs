//! Liveness, readiness and metrics (O4).

use actix_web::{HttpResponse, web};
use otesse_storage::Database;
use serde_json::json;

use crate::metrics::Scrape;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "getLiveness", tag = "operations", responses((status = 200, description = "Alive", body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", operation_id = "getReadiness", tag = "operations", responses((status = 200, description = "Ready", body = Object, example = json!({"status": "ready", "database": "sqlite"})), crate::openapi::errors::Unavailable))]
pub async fn readyz(db: web::Data<Database>) -> HttpResponse {
    match db.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "database": db.backend_name()})),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(json!({
                "error": {"type": "api_error", "code": "service_unavailable", "message": "The database is unreachable."}
            }))
        }
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(scrape: web::Data<Scrape>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(scrape.render().await)
}
