//! HTTP routes: thin handlers that parse, call one domain service, and render a view.

pub mod account;
pub mod api_keys;
pub mod audit;
pub mod body;
pub mod customers;
pub mod health;
pub mod integrations;
pub mod invalidations;
pub mod notifications;
pub mod scopes;
pub mod sessions;
pub mod setup;
pub mod stripe;
pub mod users;
pub mod verify;
pub mod webhooks;
pub mod whoami;
pub mod wire;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, ResponseError, Route, web};
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
    #[param(minimum = 1, maximum = 100)]
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

/// One path of the route table and the handler of each of its methods.
pub struct Endpoint {
    pub path: &'static str,
    routes: Vec<(Method, Route)>,
}

impl Endpoint {
    fn new(path: &'static str) -> Self {
        Self { path, routes: Vec::new() }
    }

    fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.routes.push((method.clone(), web::method(method).to(handler)));
        self
    }

    fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::GET, handler)
    }

    fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::POST, handler)
    }

    pub fn methods(&self) -> impl Iterator<Item = &Method> {
        self.routes.iter().map(|(method, _)| method)
    }

    /// The actix resource: its routes, and a 405 in the error shape with `Allow` for the rest.
    /// It is named after its full pattern (`prefix` + path), which the request metrics read.
    fn into_resource(self, prefix: &str) -> Resource {
        let allow = self.methods().map(Method::as_str).collect::<Vec<_>>().join(", ");
        let mut resource =
            web::resource(self.path).name(&format!("{prefix}{}", self.path)).default_service(web::to(move || {
                let allow = allow.clone();
                async move { method_not_allowed(&allow) }
            }));
        for (_, route) in self.routes {
            resource = resource.route(route);
        }
        resource
    }
}

fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut response =
        ApiError::new(ErrorCode::MethodNotAllowed, "This method is not allowed on this path.").error_response();
    if let Ok(value) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// The scope every API route lives under (P5).
pub const API_PREFIX: &str = "/v1";

/// Routes outside [`API_PREFIX`]: liveness, readiness, metrics (O4).
fn operations() -> Vec<Endpoint> {
    vec![
        Endpoint::new("/healthz").get(health::healthz),
        Endpoint::new("/readyz").get(health::readyz),
        Endpoint::new("/metrics").get(health::metrics),
    ]
}

/// Routes under [`API_PREFIX`] (paths relative to it), in matching order: actix tries them one
/// after the other, so the hot path (`whoami`, the customers) comes first, and Stripe's
/// resources come before the contacts' `{kind}` routes that would match them too.
fn api() -> Vec<Endpoint> {
    vec![
        Endpoint::new("/openapi.json").get(openapi_json),
        Endpoint::new("/whoami").get(whoami::whoami),
        Endpoint::new("/keys/verify").post(verify::verify),
        Endpoint::new("/keys/invalidations").get(invalidations::stream),
        Endpoint::new("/customers").get(customers::list).post(customers::create),
        Endpoint::new("/customers/{id}")
            .get(customers::get)
            .on(Method::PATCH, customers::update)
            .on(Method::DELETE, customers::delete),
        Endpoint::new("/setup").post(setup::setup),
        Endpoint::new("/sessions").post(sessions::sign_in),
        Endpoint::new("/sessions/current").on(Method::DELETE, sessions::sign_out),
        Endpoint::new("/me").get(sessions::me),
        Endpoint::new("/me/password").post(account::change_password),
        Endpoint::new("/me/sessions").get(account::sessions).on(Method::DELETE, account::end_other_sessions),
        Endpoint::new("/me/sessions/{id}").on(Method::DELETE, account::end_session),
        Endpoint::new("/password-resets").post(account::redeem_reset),
        Endpoint::new("/users").get(users::list).post(users::create),
        Endpoint::new("/users/{id}").on(Method::PATCH, users::update).on(Method::DELETE, users::delete),
        Endpoint::new("/users/{id}/password-reset").post(users::issue_reset),
        Endpoint::new("/scopes").get(scopes::list),
        Endpoint::new("/notifications").get(notifications::list),
        Endpoint::new("/notifications/{id}/read").post(notifications::mark_read),
        Endpoint::new("/api-keys").get(api_keys::list).post(api_keys::create),
        Endpoint::new("/api-keys/{id}").get(api_keys::detail),
        Endpoint::new("/api-keys/{id}/usage").get(api_keys::usage),
        Endpoint::new("/api-keys/{id}/rotate").post(api_keys::rotate),
        Endpoint::new("/api-keys/{id}/revoke").post(api_keys::revoke),
        Endpoint::new("/event-types").get(webhooks::event_types),
        Endpoint::new("/webhook-endpoints").get(webhooks::list).post(webhooks::create),
        Endpoint::new("/webhook-endpoints/{id}")
            .get(webhooks::get)
            .on(Method::PATCH, webhooks::update)
            .on(Method::DELETE, webhooks::delete),
        Endpoint::new("/webhook-endpoints/{id}/deliveries").get(webhooks::deliveries),
        Endpoint::new("/webhook-endpoints/{id}/test").post(webhooks::send_test),
        Endpoint::new("/webhook-endpoints/{id}/rotate-secret").post(webhooks::rotate_secret),
        Endpoint::new("/integrations/audit-log").get(audit::list),
        Endpoint::new("/integrations/providers").get(integrations::providers),
        Endpoint::new("/integrations/providers/{slug}").get(integrations::provider),
        Endpoint::new("/integrations/providers/{slug}/connect").post(integrations::connect),
        Endpoint::new("/integrations/connections").get(integrations::connections),
        Endpoint::new("/integrations/connections/{id}")
            .get(integrations::connection)
            .on(Method::DELETE, integrations::disconnect),
        Endpoint::new("/integrations/connections/{id}/health-checks")
            .get(integrations::checks)
            .post(integrations::run_check),
        Endpoint::new("/integrations/connections/{id}/enabled").on(Method::PUT, integrations::set_enabled),
        Endpoint::new("/integrations/connections/{id}/models").get(integrations::models),
        Endpoint::new("/integrations/connections/{id}/model").on(Method::PUT, integrations::select_model),
        Endpoint::new("/integrations/connections/{id}/usage").get(integrations::usage),
        // Stripe's resources, before the `{kind}` routes of the contacts.
        Endpoint::new("/integrations/connections/{id}/webhook-endpoints")
            .get(stripe::endpoints)
            .post(stripe::add_endpoint),
        Endpoint::new("/integrations/connections/{id}/webhook-endpoints/{endpoint_id}")
            .on(Method::DELETE, stripe::delete_endpoint),
        Endpoint::new("/integrations/connections/{id}/webhook-events").get(stripe::events),
        Endpoint::new("/integrations/connections/{id}/status").get(stripe::status),
        Endpoint::new("/integrations/stripe/webhooks/{endpoint_id}").post(stripe::receive),
        Endpoint::new("/integrations/oauth/callback").get(integrations::oauth_callback),
        Endpoint::new("/integrations/connections/{id}/{kind}")
            .get(integrations::contacts)
            .post(integrations::add_contact),
        Endpoint::new("/integrations/connections/{id}/{kind}/{resource_id}")
            .on(Method::PATCH, integrations::update_contact)
            .on(Method::DELETE, integrations::delete_contact),
        Endpoint::new("/integrations/connections/{id}/{kind}/{resource_id}/default")
            .post(integrations::set_default_contact),
    ]
}

/// Every registered route as `(method, full path)`, path parameters written `{name}`: the
/// list the OpenAPI document must describe, read from the same table [`configure`] registers.
pub fn route_table() -> Vec<(Method, String)> {
    let operations = operations().into_iter().map(|endpoint| (String::new(), endpoint));
    let api = api().into_iter().map(|endpoint| (API_PREFIX.to_owned(), endpoint));
    operations
        .chain(api)
        .flat_map(|(prefix, endpoint)| {
            let path = format!("{prefix}{}", endpoint.path);
            endpoint.methods().map(|method| (method.clone(), path.clone())).collect::<Vec<_>>()
        })
        .collect()
}

/// Registers every route: the table above, nothing else, so that [`route_table`] is the truth.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for endpoint in operations() {
        cfg.service(endpoint.into_resource(""));
    }
    // The caller is identified once, outside everything else; every request made with a key
    // is logged, whatever its outcome.
    let scope = web::scope(API_PREFIX)
        .wrap(actix_web::middleware::from_fn(crate::idempotency::idempotency))
        .wrap(actix_web::middleware::from_fn(crate::identify::identify));
    let scope = api().into_iter().fold(scope, |scope, endpoint| scope.service(endpoint.into_resource(API_PREFIX)));
    cfg.service(scope);
}

/// The OpenAPI document (P6), built once.
#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "getOpenApiDocument", tag = "operations", responses((status = 200, description = "This document", body = Object)))]
pub async fn openapi_json() -> HttpResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(|| crate::openapi::document().to_string());
    HttpResponse::Ok().content_type("application/json").body(body.as_str())
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
