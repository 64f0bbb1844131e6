//! HTTP routes: thin handlers that parse, call one domain service, and render a view.

pub mod api_keys;
pub mod audit;
pub mod customers;
pub mod health;
pub mod integrations;
pub mod notifications;
pub mod scopes;
pub mod sessions;
pub mod setup;
pub mod stripe;
pub mod users;
pub mod webhooks;
pub mod whoami;

use actix_web::{HttpRequest, HttpResponse, Route, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorCode};

/// A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    pub fn new<C: ToString>(data: Vec<T>, next: Option<C>) -> Self {
        Self { has_more: next.is_some(), next_cursor: next.map(|c| c.to_string()), data }
    }
}

/// `?limit=&cursor=` on every paginated list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1 to 100, default 20.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn cursor<C: std::str::FromStr>(&self) -> Result<Option<C>, ApiError> {
        self.cursor
            .as_deref()
            .map(|raw| raw.parse::<C>().map_err(|_| ApiError::new(ErrorCode::InvalidParameter, "cursor is not valid")))
            .transpose()
    }
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::MethodNotAllowed, "This method is not allowed on this path."))
}

/// A resource whose other methods answer 405 in the error shape.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

fn get() -> Route {
    web::get()
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(get().to(health::healthz)))
        .service(resource("/readyz").route(get().to(health::readyz)))
        .service(resource("/metrics").route(get().to(health::metrics)))
        .service(
            web::scope("/v1")
                // The caller is identified once, outside everything else; every request made
                // with a key is logged, whatever its outcome.
                .wrap(actix_web::middleware::from_fn(crate::idempotency::idempotency))
                .wrap(actix_web::middleware::from_fn(crate::identify::identify))
                .service(resource("/openapi.json").route(get().to(openapi_json)))
                .service(resource("/whoami").route(get().to(whoami::whoami)))
                .service(
                    resource("/customers").route(get().to(customers::list)).route(web::post().to(customers::create)),
                )
                .service(
                    resource("/customers/{id}")
                        .route(get().to(customers::get))
                        .route(web::patch().to(customers::update))
                        .route(web::delete().to(customers::delete)),
                )
                .configure(user_routes),
        );
}

/// The OpenAPI document (P6), built once.
async fn openapi_json() -> HttpResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(|| {
        use utoipa::OpenApi;
        crate::openapi::ApiDoc::openapi().to_json().unwrap_or_default()
    });
    HttpResponse::Ok().content_type("application/json").body(body.as_str())
}

/// Routes for signed-in users (the dashboard's API).
fn user_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/setup").route(web::post().to(setup::setup)))
        .service(resource("/sessions").route(web::post().to(sessions::sign_in)))
        .service(resource("/sessions/current").route(web::delete().to(sessions::sign_out)))
        .service(resource("/me").route(get().to(sessions::me)))
        .service(resource("/users").route(get().to(users::list)).route(web::post().to(users::create)))
        .service(resource("/scopes").route(get().to(scopes::list)))
        .service(resource("/notifications").route(get().to(notifications::list)))
        .service(resource("/notifications/{id}/read").route(web::post().to(notifications::mark_read)))
        .service(resource("/api-keys").route(get().to(api_keys::list)).route(web::post().to(api_keys::create)))
        .service(resource("/api-keys/{id}").route(get().to(api_keys::detail)))
        .service(resource("/api-keys/{id}/usage").route(get().to(api_keys::usage)))
        .service(resource("/api-keys/{id}/rotate").route(web::post().to(api_keys::rotate)))
        .service(resource("/api-keys/{id}/revoke").route(web::post().to(api_keys::revoke)))
        .service(resource("/event-types").route(get().to(webhooks::event_types)))
        .service(resource("/webhook-endpoints").route(get().to(webhooks::list)).route(web::post().to(webhooks::create)))
        .service(
            resource("/webhook-endpoints/{id}")
                .route(get().to(webhooks::get))
                .route(web::patch().to(webhooks::update))
                .route(web::delete().to(webhooks::delete)),
        )
        .service(resource("/webhook-endpoints/{id}/deliveries").route(get().to(webhooks::deliveries)))
        .service(resource("/webhook-endpoints/{id}/test").route(web::post().to(webhooks::send_test)))
        .service(resource("/webhook-endpoints/{id}/rotate-secret").route(web::post().to(webhooks::rotate_secret)))
        .service(resource("/integrations/audit-log").route(get().to(audit::list)))
        .service(resource("/integrations/providers").route(get().to(integrations::providers)))
        .service(resource("/integrations/providers/{slug}").route(get().to(integrations::provider)))
        .service(resource("/integrations/providers/{slug}/connect").route(web::post().to(integrations::connect)))
        .service(resource("/integrations/connections").route(get().to(integrations::connections)))
        .service(
            resource("/integrations/connections/{id}")
                .route(get().to(integrations::connection))
                .route(web::delete().to(integrations::disconnect)),
        )
        .service(
            resource("/integrations/connections/{id}/health-checks")
                .route(get().to(integrations::checks))
                .route(web::post().to(integrations::run_check)),
        )
        .service(resource("/integrations/connections/{id}/enabled").route(web::put().to(integrations::set_enabled)))
        .service(resource("/integrations/connections/{id}/models").route(get().to(integrations::models)))
        .service(resource("/integrations/connections/{id}/model").route(web::put().to(integrations::select_model)))
        .service(resource("/integrations/connections/{id}/usage").route(get().to(integrations::usage)))
        // Stripe's resources, before the `{kind}` routes of the contacts.
        .service(
            resource("/integrations/connections/{id}/webhook-endpoints")
                .route(get().to(stripe::endpoints))
                .route(web::post().to(stripe::add_endpoint)),
        )
        .service(
            resource("/integrations/connections/{id}/webhook-endpoints/{endpoint_id}")
                .route(web::delete().to(stripe::delete_endpoint)),
        )
        .service(resource("/integrations/connections/{id}/webhook-events").route(get().to(stripe::events)))
        .service(resource("/integrations/connections/{id}/status").route(get().to(stripe::status)))
        .service(resource("/integrations/stripe/webhooks/{endpoint_id}").route(web::post().to(stripe::receive)))
        .service(
            resource("/integrations/connections/{id}/{kind}")
                .route(get().to(integrations::contacts))
                .route(web::post().to(integrations::add_contact)),
        )
        .service(
            resource("/integrations/connections/{id}/{kind}/{resource_id}")
                .route(web::patch().to(integrations::update_contact))
                .route(web::delete().to(integrations::delete_contact)),
        )
        .service(
            resource("/integrations/connections/{id}/{kind}/{resource_id}/default")
                .route(web::post().to(integrations::set_default_contact)),
        );
}

/// The 404 answer for unknown paths.
pub async fn default_service(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::ResourceMissing,
        format!("Unrecognized request URL ({} {}).", req.method(), req.path()),
    ))
}

/// 201 with a JSON body.
pub fn created<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Created().json(body)
}

/// Parses a path id, answering 404 (not 400) for garbage, like an unknown id.
pub fn parse_id(raw: &str, what: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(what))
}
