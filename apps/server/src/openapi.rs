//! The OpenAPI document (P6), served at `/v1/openapi.json` and browsable at `/docs`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Otesse API keys and integrations",
        description = "Scoped, expiring, revocable API keys for external programs, and the \
            dashboard routes that manage them. Every error answers \
            `{\"error\": {\"type\", \"code\", \"message\"}}`; every response carries `X-Request-Id`."
    ),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
        routes::setup::setup,
        routes::sessions::sign_in,
        routes::sessions::sign_out,
        routes::sessions::me,
        routes::users::create,
        routes::users::list,
        routes::scopes::list,
        routes::api_keys::create,
        routes::api_keys::list,
        routes::api_keys::detail,
        routes::api_keys::usage,
        routes::api_keys::rotate,
        routes::api_keys::revoke,
        routes::whoami::whoami,
        routes::customers::list,
        routes::customers::create,
        routes::customers::get,
        routes::customers::update,
        routes::customers::delete,
        routes::audit::list,
        routes::integrations::providers,
        routes::integrations::provider,
        routes::integrations::connect,
        routes::integrations::connections,
        routes::integrations::connection,
        routes::integrations::disconnect,
        routes::integrations::run_check,
        routes::integrations::checks,
        routes::integrations::set_enabled,
        routes::integrations::models,
        routes::integrations::select_model,
        routes::integrations::usage,
        routes::notifications::list,
        routes::notifications::mark_read,
        routes::webhooks::event_types,
        routes::webhooks::create,
        routes::webhooks::list,
        routes::webhooks::get,
        routes::webhooks::update,
        routes::webhooks::delete,
        routes::webhooks::rotate_secret,
        routes::webhooks::send_test,
        routes::webhooks::deliveries,
        routes::stripe::endpoints,
        routes::stripe::add_endpoint,
        routes::stripe::delete_endpoint,
        routes::stripe::status,
        routes::stripe::events,
        routes::stripe::receive,
        routes::integrations::contacts,
        routes::integrations::add_contact,
        routes::integrations::update_contact,
        routes::integrations::delete_contact,
        routes::integrations::set_default_contact,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "api", description = "Routes called with an API key"),
        (name = "api-keys", description = "Key management for signed-in users"),
        (name = "sessions", description = "Sign-in for dashboard users"),
        (name = "integrations", description = "Third-party providers: catalog, connections, health"),
        (name = "notifications", description = "In-app notifications for signed-in users"),
        (name = "webhooks", description = "Outbound webhooks: endpoints, event types, the delivery log"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("erp_live_... or erp_test_..."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("ses_... from POST /v1/sessions"))
                    .build(),
            ),
        );
    }
}
