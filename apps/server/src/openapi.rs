//! The OpenAPI document (P6), served at `/v1/openapi.json` and browsable at `/docs`.
//!
//! Each handler documents itself with `#[utoipa::path]`: a unique lowerCamelCase `operationId`
//! (`<verb><Resource>`: `listApiKeys`, `createWebhookEndpoint`, `rotateApiKey`), its security
//! scheme, and every error it can answer, as the sets in [`errors`]. Every error response
//! refers to one response component per status, whose body is the `Error` schema (derived
//! from [`crate::error::Envelope`], the type every error is serialized from) narrowed to the
//! codes [`ErrorCode::spec`] gives that status. `apps/server/tests/api/openapi.rs` checks the
//! document against the route table and these rules; `cargo xtask openapi` validates it with
//! openapi-spec-validator and `cargo xtask schemathesis` fuzzes the server against it.

use serde_json::{Value, json};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorCode;
use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Otesse API keys and integrations",
        description = "Scoped, expiring, revocable API keys for external programs, and the \
            dashboard routes that manage them. Every error answers \
            `{\"error\": {\"type\", \"code\", \"message\"}}` (the `Error` schema); every response \
            carries `X-Request-Id`."
    ),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
        routes::openapi_json,
        routes::setup::setup,
        routes::sessions::sign_in,
        routes::sessions::sign_out,
        routes::sessions::me,
        routes::users::create,
        routes::users::list,
        routes::users::update,
        routes::users::delete,
        routes::users::issue_reset,
        routes::account::change_password,
        routes::account::sessions,
        routes::account::end_session,
        routes::account::end_other_sessions,
        routes::account::redeem_reset,
        routes::scopes::list,
        routes::api_keys::create,
        routes::api_keys::list,
        routes::api_keys::detail,
        routes::api_keys::usage,
        routes::api_keys::rotate,
        routes::api_keys::revoke,
        routes::whoami::whoami,
        routes::verify::verify,
        routes::invalidations::stream,
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
        routes::integrations::oauth_callback,
        routes::integrations::contacts,
        routes::integrations::add_contact,
        routes::integrations::update_contact,
        routes::integrations::delete_contact,
        routes::integrations::set_default_contact,
    ),
    components(schemas(crate::error::Envelope)),
    modifiers(&SecuritySchemes, &ErrorResponses, &ListItemsByReference, &OutputFieldsRequired),
    tags(
        (name = "operations", description = "Liveness, readiness, metrics and this document"),
        (name = "setup", description = "First run: the organization and its first admin"),
        (name = "sessions", description = "Sign-in for dashboard users"),
        (name = "users", description = "Users of the organization"),
        (name = "api", description = "Routes called with an API key"),
        (name = "platform", description = "For the platform's own services, with a service token"),
        (name = "api-keys", description = "Key management for signed-in users"),
        (name = "audit", description = "The audit log"),
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
                    .description(Some("An API key, erp_live_... or erp_test_..., as `Authorization: Bearer`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key, erp_live_... or erp_test_..., as `X-API-Key`",
            ))),
        );
        components.add_security_scheme(
            "service_token",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A platform service token, ots_svc_..., made by the operator"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A session token, ses_..., from POST /v1/sessions"))
                    .build(),
            ),
        );
    }
}

/// The error responses, one component per status: `(status, component name, description)`.
const ERROR_RESPONSES: [(u16, &str, &str); 13] = [
    (
        400,
        "BadRequest",
        "The request is malformed: JSON that does not parse, a missing, unknown or mistyped field, a \
         value or query parameter that breaks a rule (the message names it), an API key in the query \
         string, or an invalid `Idempotency-Key`.",
    ),
    (401, "Unauthorized", "No credential, or one that is malformed, unknown, expired, revoked or of the wrong kind."),
    (
        403,
        "Forbidden",
        "The caller may not do this: its role, the key's level or scopes, the key's IP allow-list, or a \
         change through the dashboard's cookie without its CSRF token.",
    ),
    (404, "NotFound", "No such record in the caller's organization (malformed ids included)."),
    (405, "MethodNotAllowed", "The provider of this connection does not offer this."),
    (409, "Conflict", "The request conflicts with the current state."),
    (413, "PayloadTooLarge", "The body is over the server's limit (64 KiB by default)."),
    (415, "UnsupportedMediaType", "The body is not sent as `application/json`."),
    (
        422,
        "UnprocessableEntity",
        "The provider refused the credentials, or an `Idempotency-Key` was reused with another request.",
    ),
    (429, "TooManyRequests", "Rate limited: retry after `Retry-After` seconds."),
    (500, "InternalServerError", "Something went wrong on the server's side."),
    (502, "BadGateway", "The provider could not be reached."),
    (503, "ServiceUnavailable", "The provider rate-limited the check, or a dependency is unavailable."),
];

/// Registers the error response components (see [`ERROR_RESPONSES`]).
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (status, name, description) in ERROR_RESPONSES {
            let codes: Vec<Value> = ErrorCode::ALL
                .into_iter()
                .filter(|code| code.spec().0.as_u16() == status)
                .map(|code| serde_json::to_value(code).unwrap_or(Value::Null))
                .collect();
            let mut headers = serde_json::Map::new();
            match status {
                401 => {
                    headers.insert(
                        "WWW-Authenticate".into(),
                        json!({"description": "`Bearer`", "schema": {"type": "string"}}),
                    );
                }
                429 | 503 => {
                    headers.insert(
                        "Retry-After".into(),
                        json!({"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}),
                    );
                }
                _ => {}
            }
            let response = json!({
                "description": description,
                "headers": headers,
                "content": {"application/json": {"schema": {"allOf": [
                    {"$ref": "#/components/schemas/Error"},
                    {"type": "object", "properties": {"error": {
                        "type": "object",
                        "properties": {"code": {"type": "string", "enum": codes}},
                    }}},
                ]}}},
            });
            match serde_json::from_value(response) {
                Ok(response) => {
                    components.responses.insert(name.to_owned(), utoipa::openapi::RefOr::T(response));
                }
                Err(err) => panic!("the {name} response component does not build: {err}"),
            }
        }
    }
}

/// utoipa copies a generic type's argument into it: `ListResponse<CustomerView>` becomes
/// `ListResponse_CustomerView` with `CustomerView`'s schema inlined as `data.items`. The copy
/// escapes [`OutputFieldsRequired`] (its nullable fields stayed optional, unlike the component's)
/// and gives generated clients a second type for every kind of item, so a page's items refer
/// to their component instead.
struct ListItemsByReference;

impl Modify for ListItemsByReference {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else { return };
        let pages: Vec<(String, String)> = components
            .schemas
            .keys()
            .filter_map(|name| Some((name.clone(), name.strip_prefix("ListResponse_")?.to_owned())))
            .collect();
        for (page, item) in pages {
            assert!(components.schemas.contains_key(&item), "{page}: no component {item} for its items");
            let Some(schema) = components.schemas.get_mut(&page) else { continue };
            let mut value = serde_json::to_value(&*schema).unwrap_or_default();
            match value.pointer_mut("/properties/data/items") {
                Some(items) => *items = json!({"$ref": format!("#/components/schemas/{item}")}),
                None => panic!("{page} has no data.items"),
            }
            match serde_json::from_value(value) {
                Ok(rewritten) => *schema = rewritten,
                Err(err) => panic!("{page} does not round-trip: {err}"),
            }
        }
    }
}

/// The answer fields serialized with `skip_serializing_if` (absent, not `null`, when empty):
/// a sign-in answers `token` or `csrf_token`, never both.
const MAY_BE_ABSENT: [(&str, &str); 2] = [("SessionResponse", "token"), ("SessionResponse", "csrf_token")];

/// View types always serialize every field (`null` when empty), so every property of a schema
/// an answer uses is required: clients can rely on the key being there. The exceptions are
/// listed in [`MAY_BE_ABSENT`].
struct OutputFieldsRequired;

impl Modify for OutputFieldsRequired {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Ok(mut document) = serde_json::to_value(&*openapi) else { return };
        let mut outputs = std::collections::BTreeSet::new();
        let mut pending: Vec<String> = Vec::new();
        // Schemas named by a 2xx answer, then those they name, and so on.
        if let Some(paths) = document.get("paths").and_then(Value::as_object) {
            for operation in paths.values().filter_map(Value::as_object).flat_map(|item| item.values()) {
                for (status, response) in operation.get("responses").and_then(Value::as_object).into_iter().flatten() {
                    if status.starts_with('2') {
                        collect_refs(response, &mut pending);
                    }
                }
            }
        }
        while let Some(name) = pending.pop() {
            if outputs.insert(name.clone())
                && let Some(schema) = document.pointer(&format!("/components/schemas/{name}"))
            {
                collect_refs(schema, &mut pending);
            }
        }
        for name in &outputs {
            if let Some(schema) = document.pointer_mut(&format!("/components/schemas/{name}")) {
                require_every_property(schema);
                for (_, field) in MAY_BE_ABSENT.iter().filter(|(schema, _)| schema == name) {
                    if let Some(Value::Array(required)) = schema.get_mut("required") {
                        required.retain(|property| property != field);
                    }
                }
            }
        }
        match serde_json::from_value(document) {
            Ok(document) => *openapi = document,
            Err(err) => panic!("the OpenAPI document does not round-trip: {err}"),
        }
    }
}

/// Operations that make a record, and those that take its `id` in their path: OpenAPI links
/// from the first's answer to the others, which generated clients and schemathesis's stateful
/// phase follow.
const LINKS: [(&str, &str, &[&str]); 4] = [
    ("createCustomer", "201", &["getCustomer", "updateCustomer", "deleteCustomer"]),
    ("createApiKey", "201", &["getApiKey", "listApiKeyUsage", "rotateApiKey", "revokeApiKey"]),
    ("rotateApiKey", "201", &["getApiKey", "listApiKeyUsage", "revokeApiKey"]),
    (
        "createWebhookEndpoint",
        "201",
        &[
            "getWebhookEndpoint",
            "updateWebhookEndpoint",
            "deleteWebhookEndpoint",
            "rotateWebhookEndpointSecret",
            "sendWebhookEndpointTest",
            "listWebhookDeliveries",
        ],
    ),
];

/// The document as served: utoipa's, with [`LINKS`] added. Links are added to the JSON: utoipa
/// 5.5 writes a link's `operationId` as `operation_id`, which no client reads.
pub fn document() -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else { return document };
    for operation in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut()) {
        let Some(id) = operation.get("operationId").and_then(Value::as_str).map(str::to_owned) else { continue };
        for (from, status, targets) in LINKS.iter().filter(|(from, _, _)| *from == id) {
            let links: serde_json::Map<String, Value> = targets
                .iter()
                .map(|target| {
                    let link = json!({"operationId": target, "parameters": {"id": "$response.body#/id"}});
                    ((*target).to_owned(), link)
                })
                .collect();
            match operation.pointer_mut(&format!("/responses/{status}")) {
                Some(response) => response["links"] = Value::Object(links),
                None => panic!("{from} has no {status} answer to link from"),
            }
        }
    }
    document
}

/// The names of the component schemas `value` refers to.
fn collect_refs(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) =
                map.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                into.push(name.to_owned());
            }
            map.values().for_each(|v| collect_refs(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, into)),
        _ => {}
    }
}

/// Marks every property required, in this object schema and the object schemas it is made of.
fn require_every_property(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else { return };
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(parts)) = map.get_mut(key) {
            parts.iter_mut().for_each(require_every_property);
        }
    }
    if let Some(properties) = map.get("properties").and_then(Value::as_object) {
        let names: Vec<Value> = properties.keys().cloned().map(Value::String).collect();
        map.insert("required".into(), Value::Array(names));
    }
}

/// The errors an operation documents, as `responses(...)` entries of `#[utoipa::path]`: one
/// type per status, and the sets every route of a kind shares. Each refers to the status's
/// response component.
pub mod errors {
    use std::collections::BTreeMap;

    use utoipa::openapi::{Ref, RefOr, response::Response};

    fn refer(statuses: &[u16]) -> BTreeMap<String, RefOr<Response>> {
        statuses
            .iter()
            .filter_map(|status| {
                let (_, name, _) = super::ERROR_RESPONSES.iter().find(|(s, _, _)| s == status)?;
                Some((status.to_string(), RefOr::Ref(Ref::from_response_name(*name))))
            })
            .collect()
    }

    macro_rules! error_set {
        ($($(#[$doc:meta])* $name:ident = [$($status:literal),+];)+) => {$(
            $(#[$doc])*
            pub struct $name;

            impl utoipa::IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    refer(&[$($status),+])
                }
            }
        )+};
    }

    error_set! {
        BadRequest = [400];
        Unauthorized = [401];
        Forbidden = [403];
        NotFound = [404];
        /// The connection's provider does not offer this resource.
        NotOffered = [405];
        Conflict = [409];
        Unprocessable = [422];
        TooManyRequests = [429];
        ServerError = [500];
        /// A live call to the provider: unreachable (502), or it rate-limited us (503).
        Provider = [502, 503];
        /// A dependency, such as the database, is unavailable.
        Unavailable = [503];
        /// A body over the size limit.
        TooLarge = [413];
        /// A signed-in user's route: a credential that is missing or refused (401), one that
        /// cannot be read at all, like a key in the query string (400), and the database (500).
        SignedIn = [400, 401, 500];
        /// A route an API key may call: as [`SignedIn`], and the key's IP allow-list, level and
        /// scopes (403) and its rate limit (429).
        Keyed = [400, 401, 403, 429, 500];
        /// A JSON body: malformed or mistyped (400), too large (413), not JSON (415).
        JsonBody = [400, 413, 415];
        /// A `POST` with an `Idempotency-Key`: invalid (400), the same key still running (409),
        /// or reused with another request (422).
        Idempotent = [400, 409, 422];
    }
}

/// The `Idempotency-Key` header every `POST` of an identified caller honours (W1).
pub struct IdempotencyKey;

impl utoipa::IntoParams for IdempotencyKey {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        let parameter = json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "Retries with the same key and the same request get the first answer back \
                (`Idempotent-Replayed: true`) for 24 hours; 1 to 255 visible ASCII characters.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
        });
        match serde_json::from_value(parameter) {
            Ok(parameter) => vec![parameter],
            Err(err) => panic!("the Idempotency-Key parameter does not build: {err}"),
        }
    }
}
