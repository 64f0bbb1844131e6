//! Health, metrics, request ids, the error shape for unknown routes, and the OpenAPI document.

use reqwest::Method;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let health = app.send(app.request(Method::GET, "/healthz")).await;
    assert_eq!(health.expect(200)["status"], "ok");
    let ready = app.send(app.request(Method::GET, "/readyz")).await;
    assert_eq!(ready.expect(200)["status"], "ready");
    assert!(ready.body["database"] == "sqlite" || ready.body["database"] == "postgres");
}

#[tokio::test]
async fn metrics_expose_the_usage_counters() {
    let app = spawn_app().await;
    let metrics = app.send(app.request(Method::GET, "/metrics")).await;
    assert_eq!(metrics.status, 200);
    for name in ["otesse_usage_rows_dropped_total", "otesse_usage_rows_written_total", "otesse_api_key_requests_total"]
    {
        assert!(metrics.text.contains(name), "{name} missing from\n{}", metrics.text);
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_sane_ones_are_echoed() {
    let app = spawn_app().await;
    let fresh = app.send(app.request(Method::GET, "/healthz")).await;
    let id = fresh.headers.get("x-request-id").expect("request id").to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let other = app.send(app.request(Method::GET, "/healthz")).await;
    assert_ne!(other.headers["x-request-id"], id.as_str(), "ids are per request");

    let echoed = app.send(app.request(Method::GET, "/healthz").header("x-request-id", "client-abc_123")).await;
    assert_eq!(echoed.headers["x-request-id"], "client-abc_123");
    let replaced = app.send(app.request(Method::GET, "/healthz").header("x-request-id", "bad id with spaces")).await;
    assert_ne!(replaced.headers["x-request-id"], "bad id with spaces");

    let error = app.send(app.request(Method::GET, "/v1/nope")).await;
    assert!(error.headers.contains_key("x-request-id"), "errors carry it too");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let app = spawn_app().await;
    app.send(app.request(Method::GET, "/v1/does-not-exist")).await.expect_error(404, "resource_missing");
    app.send(app.request(Method::PUT, "/v1/whoami")).await.expect_error(405, "method_not_allowed");
    app.send(app.request(Method::DELETE, "/healthz")).await.expect_error(405, "method_not_allowed");
}

#[tokio::test]
async fn the_openapi_document_lists_the_public_routes_and_docs_are_browsable() {
    let app = spawn_app().await;
    let doc = app.send(app.request(Method::GET, "/v1/openapi.json")).await;
    let paths = doc.expect(200)["paths"].as_object().unwrap().clone();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/setup",
        "/v1/sessions",
        "/v1/sessions/current",
        "/v1/me",
        "/v1/users",
        "/v1/scopes",
        "/v1/api-keys",
        "/v1/api-keys/{id}",
        "/v1/api-keys/{id}/usage",
        "/v1/api-keys/{id}/rotate",
        "/v1/api-keys/{id}/revoke",
        "/v1/whoami",
        "/v1/customers",
        "/v1/customers/{id}",
        "/v1/integrations/audit-log",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the OpenAPI document");
    }
    let redirect = app.send(app.request(Method::GET, "/docs")).await;
    assert!(redirect.status.is_redirection());
    let page = app.send(app.request(Method::GET, "/docs/")).await;
    assert_eq!(page.status, 200);
    assert!(page.text.to_lowercase().contains("swagger"), "{}", &page.text[..page.text.len().min(300)]);
}
