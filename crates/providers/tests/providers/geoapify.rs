//! Geoapify: `GET /v1/geocode/search?text=Berlin&limit=1&apiKey=<key>`.

use otesse_domain::integration::HealthOutcome;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockBuilder, ResponseTemplate};

use crate::{DELAY, KEY, answer, garbage};

fn authorized() -> MockBuilder {
    Mock::given(method("GET"))
        .and(path("/v1/geocode/search"))
        .and(query_param("text", "Berlin"))
        .and(query_param("limit", "1"))
        .and(query_param("apiKey", KEY))
}

#[tokio::test]
async fn a_valid_key_is_healthy_and_timed() {
    let collection = json!({
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"city": "Berlin", "country": "Germany", "lat": 52.517, "lon": 13.388},
                      "geometry": {"type": "Point", "coordinates": [13.388, 52.517]}}],
        "query": {"text": "Berlin"}
    });
    let report = answer("geoapify", authorized(), crate::json(200, collection).set_delay(DELAY)).await;
    assert_eq!(report.outcome, HealthOutcome::Healthy, "{report:?}");
    assert!(u128::from(report.response_time_ms) >= DELAY.as_millis(), "{report:?}");
}

#[tokio::test]
async fn answers_are_classified() {
    let unauthorized = json!({"statusCode": 401, "error": "Unauthorized", "message": "Invalid apiKey"});
    let forbidden = json!({"statusCode": 403, "error": "Forbidden", "message": "Not allowed"});
    let cases = [
        (crate::json(200, json!({"results": []})), HealthOutcome::Healthy, "HTTP 200"),
        (crate::json(401, unauthorized), HealthOutcome::InvalidCredentials, "HTTP 401"),
        (crate::json(403, forbidden), HealthOutcome::InvalidCredentials, "HTTP 403"),
        (ResponseTemplate::new(429), HealthOutcome::RateLimited, "HTTP 429"),
        (ResponseTemplate::new(500), HealthOutcome::Unreachable, "HTTP 500"),
        (garbage(), HealthOutcome::Unreachable, "unexpected response (HTTP 200, body not recognised)"),
    ];
    for (response, outcome, detail) in cases {
        let report = answer("geoapify", authorized(), response).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
}
