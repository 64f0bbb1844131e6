//! Google Maps: `GET /maps/api/geocode/json?address=...&key=<key>`; errors come inside a 200.

use otesse_domain::integration::HealthOutcome;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockBuilder, ResponseTemplate};

use crate::{DELAY, KEY, answer, garbage};

fn authorized() -> MockBuilder {
    Mock::given(method("GET"))
        .and(path("/maps/api/geocode/json"))
        .and(query_param("address", "1600 Amphitheatre Parkway"))
        .and(query_param("key", KEY))
}

fn status(status: &str) -> ResponseTemplate {
    let mut body = json!({"results": [], "status": status});
    if status != "OK" && status != "ZERO_RESULTS" {
        body["error_message"] = json!(format!("The provided API key is invalid. ({KEY})"));
    }
    crate::json(200, body)
}

#[tokio::test]
async fn a_valid_key_is_healthy_and_timed() {
    let ok = json!({
        "results": [{"formatted_address": "1600 Amphitheatre Pkwy, Mountain View, CA 94043, USA",
                     "geometry": {"location": {"lat": 37.4224428, "lng": -122.0842467}},
                     "place_id": "ChIJeRpOeF67j4AR9ydy_PIzPuM", "types": ["street_address"]}],
        "status": "OK"
    });
    let report = answer("google_maps", authorized(), crate::json(200, ok).set_delay(DELAY)).await;
    assert_eq!(report.outcome, HealthOutcome::Healthy, "{report:?}");
    assert_eq!(report.detail, "OK");
    assert!(u128::from(report.response_time_ms) >= DELAY.as_millis(), "{report:?}");
}

#[tokio::test]
async fn statuses_inside_a_200_are_read() {
    let cases = [
        (status("ZERO_RESULTS"), HealthOutcome::Healthy, "ZERO_RESULTS"),
        (status("REQUEST_DENIED"), HealthOutcome::InvalidCredentials, "REQUEST_DENIED"),
        (status("OVER_QUERY_LIMIT"), HealthOutcome::RateLimited, "OVER_QUERY_LIMIT"),
        (status("OVER_DAILY_LIMIT"), HealthOutcome::RateLimited, "OVER_DAILY_LIMIT"),
        (status("UNKNOWN_ERROR"), HealthOutcome::Unreachable, "UNKNOWN_ERROR"),
        (status("INVALID_REQUEST"), HealthOutcome::Unreachable, "unexpected response (INVALID_REQUEST)"),
        (status("SOMETHING_NEW"), HealthOutcome::Unreachable, "unexpected response (HTTP 200, body not recognised)"),
    ];
    for (response, outcome, detail) in cases {
        let report = answer("google_maps", authorized(), response).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
}

#[tokio::test]
async fn http_failures_are_classified() {
    let cases = [
        (ResponseTemplate::new(401), HealthOutcome::InvalidCredentials, "HTTP 401"),
        (ResponseTemplate::new(403), HealthOutcome::InvalidCredentials, "HTTP 403"),
        (
            crate::json(403, json!({"results": [], "status": "OVER_QUERY_LIMIT"})),
            HealthOutcome::RateLimited,
            "OVER_QUERY_LIMIT",
        ),
        (ResponseTemplate::new(429), HealthOutcome::RateLimited, "HTTP 429"),
        (ResponseTemplate::new(500), HealthOutcome::Unreachable, "HTTP 500"),
        (garbage(), HealthOutcome::Unreachable, "unexpected response (HTTP 200, body not recognised)"),
    ];
    for (response, outcome, detail) in cases {
        let report = answer("google_maps", authorized(), response).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
}
