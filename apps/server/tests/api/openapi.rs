//! The OpenAPI document (P6) against the routes the server really registers, and the rules
//! every operation follows. openapi-spec-validator (`cargo xtask openapi`) and schemathesis
//! (`cargo xtask schemathesis`) check the rest against a running server.

use std::collections::{BTreeMap, BTreeSet};

use otesse_server::error::{ErrorCode, ErrorType};
use otesse_server::routes::route_table;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

/// Registered routes that are not API operations, so not in the document: the Swagger UI
/// (`startup.rs`) and the dashboard's pages.
fn not_an_api_route(path: &str) -> bool {
    path == "/" || path == "/docs" || path.starts_with("/docs/") || path.starts_with("/settings")
}

/// Operations that read no input and need no caller: nothing a client sends can make them
/// answer a 4xx.
const NO_CLIENT_ERRORS: [&str; 4] = ["getLiveness", "getReadiness", "getMetrics", "getOpenApiDocument"];

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn document() -> Value {
    otesse_server::openapi::document()
}

/// `(method, path, operation)` of every operation of the document.
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
    }
    out
}

/// Follows a local `$ref` (`#/components/...`); other values come back as they are.
fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("not a local $ref: {reference}"));
            resolve(document, document.pointer(pointer).unwrap_or_else(|| panic!("{reference} does not resolve")))
        }
        None => value,
    }
}

/// Whether `schema` is, or is made of (`allOf`), the `Error` schema.
fn is_error_schema(schema: &Value) -> bool {
    schema.get("$ref").and_then(Value::as_str) == Some("#/components/schemas/Error")
        || schema["allOf"].as_array().is_some_and(|parts| parts.iter().any(is_error_schema))
}

fn response_schema<'a>(document: &'a Value, response: &'a Value) -> Option<&'a Value> {
    resolve(document, response).pointer("/content/application~1json/schema")
}

fn statuses(operation: &Value) -> BTreeSet<String> {
    operation["responses"].as_object().unwrap().keys().cloned().collect()
}

fn label(method: &str, path: &str, operation: &Value) -> String {
    format!("{method} {path} ({})", operation["operationId"].as_str().unwrap_or("no operationId"))
}

#[test]
fn operation_ids_are_unique_lower_camel_case_and_on_every_operation() {
    let document = document();
    let mut seen = BTreeMap::new();
    for (method, path, operation) in operations(&document) {
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(
            id.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{method} {path}: operationId {id:?} is not lowerCamelCase"
        );
        if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
            panic!("operationId {id:?} is used by {other} and {method} {path}");
        }
    }
    assert!(seen.len() > 50, "{} operations", seen.len());
}

#[test]
fn every_ref_resolves() {
    fn walk(document: &Value, value: &Value, at: &str, count: &mut usize) {
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                    let pointer =
                        reference.strip_prefix('#').unwrap_or_else(|| panic!("{at}: non-local $ref {reference}"));
                    assert!(document.pointer(pointer).is_some(), "{at}: $ref {reference} does not resolve");
                    *count += 1;
                }
                for (key, child) in map {
                    walk(document, child, &format!("{at}/{key}"), count);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(document, child, &format!("{at}/{i}"), count);
                }
            }
            _ => {}
        }
    }
    let document = document();
    let mut count = 0;
    walk(&document, &document, "#", &mut count);
    assert!(count > 100, "only {count} references");
}

#[test]
fn every_operation_documents_its_client_errors_with_the_error_schema() {
    let document = document();
    for (method, path, operation) in operations(&document) {
        let label = label(&method, &path, &operation);
        let responses = operation["responses"].as_object().unwrap();
        for (status, response) in responses {
            let is_error = status.starts_with('4') || status.starts_with('5');
            let schema = response_schema(&document, response);
            if is_error {
                assert!(schema.is_some_and(is_error_schema), "{label}: the {status} answer is not the Error schema");
            } else {
                assert!(!schema.is_some_and(is_error_schema), "{label}: the {status} answer is the Error schema");
            }
        }
        let client_errors = responses.keys().filter(|status| status.starts_with('4')).count();
        let id = operation["operationId"].as_str().unwrap();
        if NO_CLIENT_ERRORS.contains(&id) {
            assert_eq!(client_errors, 0, "{label} is listed as answering no 4xx");
        } else {
            assert!(client_errors > 0, "{label} documents no 4xx");
        }
    }
}

/// What an operation takes decides errors it must document: a caller (401, and 400 for a
/// credential that cannot be read), an API key (403 for its allow-list and scopes, 429 for its
/// rate limit), a JSON body (400, 413, 415), a path parameter (404), an `Idempotency-Key` (409,
/// 422), the database (500).
#[test]
fn the_errors_follow_from_what_each_operation_takes() {
    let document = document();
    for (method, path, operation) in operations(&document) {
        let label = label(&method, &path, &operation);
        let have = statuses(&operation);
        let mut need = BTreeSet::new();
        let schemes: BTreeSet<&str> = operation["security"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|requirement| requirement.as_object().unwrap().keys())
            .map(String::as_str)
            .collect();
        if !schemes.is_empty() {
            need.extend(["400", "401", "500"]);
        }
        if schemes.contains("api_key") {
            need.extend(["403", "429"]);
            assert!(schemes.contains("api_key_header"), "{label}: a key may also be sent as X-API-Key");
        }
        if let Some(body) = operation.get("requestBody") {
            need.insert("400");
            if body.pointer("/content/application~1json").is_some()
                && path != "/v1/integrations/stripe/webhooks/{endpoint_id}"
            {
                // Stripe's deliveries are read as bytes: any content type, so no 415.
                need.extend(["413", "415"]);
            }
        }
        let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
        if parameters.iter().any(|p| p["in"] == "path") {
            need.insert("404");
        }
        if parameters.iter().any(|p| p["name"] == "Idempotency-Key") {
            assert_eq!(method, "POST", "{label}");
            need.extend(["400", "409", "422"]);
        }
        let missing: Vec<_> = need.iter().filter(|status| !have.contains(**status)).collect();
        assert!(missing.is_empty(), "{label} does not document {missing:?}");
    }
}

/// Every link names an operation, and sets exactly the path parameters that operation takes.
#[test]
fn links_lead_to_operations_and_fill_their_path_parameters() {
    let document = document();
    let by_id: BTreeMap<String, Value> = operations(&document)
        .into_iter()
        .map(|(_, _, operation)| (operation["operationId"].as_str().unwrap().to_owned(), operation))
        .collect();
    let mut count = 0;
    for (method, path, operation) in operations(&document) {
        for response in operation["responses"].as_object().unwrap().values() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                let target = link["operationId"].as_str().unwrap();
                let target = by_id.get(target).unwrap_or_else(|| panic!("{method} {path}: link {name} to nowhere"));
                let wanted: BTreeSet<&str> = target["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                let given: BTreeSet<&str> =
                    link["parameters"].as_object().unwrap().keys().map(String::as_str).collect();
                assert_eq!(given, wanted, "{method} {path}: link {name}");
                count += 1;
            }
        }
    }
    assert!(count >= 16, "{count} links");
}

#[test]
fn every_post_of_an_identified_caller_documents_the_idempotency_key() {
    let document = document();
    for (method, path, operation) in operations(&document) {
        // A platform service (the verification API) is no organization's caller: its checks
        // change nothing there is to repeat.
        let has_caller = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|scheme| scheme.get("service_token").is_none() && scheme != &json!({})));
        let takes_key = operation["parameters"]
            .as_array()
            .is_some_and(|parameters| parameters.iter().any(|p| p["name"] == "Idempotency-Key"));
        assert_eq!(
            takes_key,
            method == "POST" && has_caller,
            "{}: the idempotency middleware honours Idempotency-Key on every POST with a caller",
            label(&method, &path, &operation)
        );
    }
}

#[test]
fn security_schemes_are_bearer_tokens_and_the_x_api_key_header() {
    let document = document();
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["type"], "http");
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["type"], "http");
    assert_eq!(schemes["session"]["scheme"], "bearer");
    assert_eq!(
        schemes["api_key_header"],
        json!({"type": "apiKey", "in": "header", "name": "X-API-Key", "description": schemes["api_key_header"]["description"]})
    );
    for (method, path, operation) in operations(&document) {
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(schemes.get(scheme).is_some(), "{method} {path}: unknown scheme {scheme}");
            }
        }
    }
}

#[test]
fn the_error_schema_enumerates_every_code_and_type() {
    let document = document();
    let detail = resolve(&document, &document["components"]["schemas"]["Error"]["properties"]["error"]);
    let codes: Vec<Value> = resolve(&document, &detail["properties"]["code"])["enum"].as_array().unwrap().clone();
    let expected: Vec<Value> = ErrorCode::ALL.iter().map(|code| serde_json::to_value(code).unwrap()).collect();
    assert_eq!(codes, expected);
    let types: BTreeSet<String> = resolve(&document, &detail["properties"]["type"])["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = ErrorCode::ALL
        .iter()
        .map(|code| serde_json::to_value(code.spec().1).unwrap().as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, expected, "every type is some code's type");
    assert!(types.contains(serde_json::to_value(ErrorType::RateLimitError).unwrap().as_str().unwrap()));
    let required: BTreeSet<&str> = detail["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(required, BTreeSet::from(["type", "code", "message"]));
}

/// Each status's response component allows exactly the codes `ErrorCode::spec` gives it.
#[test]
fn each_error_response_lists_the_codes_of_its_status() {
    let document = document();
    for (name, response) in document["components"]["responses"].as_object().unwrap() {
        let schema = response_schema(&document, response).unwrap();
        let codes: BTreeSet<&str> = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} narrows no codes"))
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(!codes.is_empty(), "{name}");
        let statuses: BTreeSet<u16> = ErrorCode::ALL
            .into_iter()
            .filter(|code| codes.contains(serde_json::to_value(code).unwrap().as_str().unwrap()))
            .map(|code| code.spec().0.as_u16())
            .collect();
        assert_eq!(statuses.len(), 1, "{name} mixes statuses: {statuses:?}");
    }
    for (method, path, operation) in operations(&document) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
                let schema = response_schema(&document, response).unwrap();
                let code = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"][0].as_str().unwrap();
                let code = ErrorCode::ALL.into_iter().find(|c| serde_json::to_value(c).unwrap() == code).unwrap();
                assert_eq!(code.spec().0.as_str(), status, "{method} {path}: {status} refers to {reference}");
            }
        }
    }
}

/// The route table (`routes::configure` registers it and nothing else) and the document list
/// the same operations, both ways.
#[test]
fn every_registered_route_is_documented_and_every_documented_route_is_registered() {
    let document = document();
    let documented: BTreeSet<(String, String)> =
        operations(&document).into_iter().map(|(method, path, _)| (method, path)).collect();
    let registered: BTreeSet<(String, String)> = route_table()
        .into_iter()
        .map(|(method, path)| (method.as_str().to_owned(), path))
        .filter(|(_, path)| !not_an_api_route(path))
        .collect();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    assert!(undocumented.is_empty(), "registered but not in the OpenAPI document: {undocumented:?}");
    let unregistered: Vec<_> = documented.difference(&registered).collect();
    assert!(unregistered.is_empty(), "in the OpenAPI document but not registered: {unregistered:?}");
    for (_, path) in &registered {
        assert!(!path.contains(':'), "{path}: a regex segment cannot be documented");
    }
}

/// A concrete path for a route pattern: each `{param}` gets a value the handler parses.
fn concrete(path: &str) -> String {
    path.replace("{kind}", "senders")
        .replace("{slug}", "postmark")
        .split('/')
        .map(|segment| if segment.starts_with('{') { "0190a8e4-5b7c-7d1e-9f00-123456789abc" } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every route of the table reaches a handler: neither the server's "unrecognized URL" 404 nor
/// a resource's 405 (a route shadowed by another, or registered under another method).
#[tokio::test]
async fn every_route_of_the_table_reaches_its_handler() {
    let app = spawn_app().await;
    for (method, path) in route_table() {
        let url = concrete(&path);
        let answer = app.send(app.request(Method::from_bytes(method.as_str().as_bytes()).unwrap(), &url)).await;
        assert_ne!(answer.status.as_u16(), 405, "{method} {path}: {}", answer.text);
        if answer.status == reqwest::StatusCode::NOT_FOUND {
            let (_, message) = answer.error();
            assert!(!message.starts_with("Unrecognized request URL"), "{method} {path} is not routed: {message}");
        }
    }
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let app = spawn_app().await;
    let answer = app.send(app.request(Method::GET, "/v1/openapi.json")).await;
    assert_eq!(answer.expect(200), &document());
    assert!(answer.headers["content-type"].to_str().unwrap().starts_with("application/json"));
}

/// Found by schemathesis: a 405 must say which methods the path allows (RFC 9110).
#[tokio::test]
async fn another_method_answers_405_with_allow_in_the_error_shape() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (Method::PUT, "/v1/api-keys", "GET, POST"),
        (Method::OPTIONS, "/v1/customers/0190a8e4-5b7c-7d1e-9f00-123456789abc", "GET, PATCH, DELETE"),
        (Method::HEAD, "/healthz", "GET"),
        (Method::GET, "/v1/sessions/current", "DELETE"),
    ] {
        let answer = app.send(app.request(method.clone(), path)).await;
        assert_eq!(answer.status.as_u16(), 405, "{method} {path}");
        assert_eq!(answer.headers["allow"], allow, "{method} {path}");
        if method != Method::HEAD {
            answer.expect_error(405, "method_not_allowed");
        }
    }
}
