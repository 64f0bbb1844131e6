//! Google Maps Platform, checked with an API key through the Geocoding API.
//!
//! - Endpoint: `GET https://maps.googleapis.com/maps/api/geocode/json?address=1600+Amphitheatre+Parkway&key=<key>`
//!   (one geocode of Google's own example address; Google has no key-info endpoint).
//! - Auth: the key in the `key` query parameter.
//! - Answers: HTTP 200 even for errors; the JSON `status` decides: `OK` and `ZERO_RESULTS`
//!   (the key worked), `REQUEST_DENIED` (key missing, invalid or not allowed to use this API,
//!   e.g. `"error_message": "The provided API key is invalid."`), `OVER_QUERY_LIMIT` and
//!   `OVER_DAILY_LIMIT` (quota, usage cap or billing), `INVALID_REQUEST` (our request was
//!   malformed), `UNKNOWN_ERROR` (server error, may succeed on retry). `error_message` is
//!   never repeated. A 200 without that JSON is not Google's answer.
//!
//! Read from <https://developers.google.com/maps/documentation/geocoding/requests-geocoding>
//! ("Status codes" and "Error messages").

use reqwest::RequestBuilder;
use serde::Deserialize;

use crate::api::ProviderApi;
use crate::http::{Answer, BaseUrl, Http, Verdict, by_status};

const DEFAULT_BASE_URL: &str = "https://maps.googleapis.com";

/// Google Maps's client: a health check only.
#[derive(Debug)]
pub(crate) struct GoogleMaps;

impl ProviderApi for GoogleMaps {
    fn slug(&self) -> &'static str {
        "google_maps"
    }

    fn default_base_url(&self) -> &'static str {
        DEFAULT_BASE_URL
    }

    fn health_request(&self, http: &Http, base: &BaseUrl, key: &str) -> Result<RequestBuilder, Verdict> {
        health_request(http, base, key)
    }

    fn classify(&self, answer: &Answer) -> Verdict {
        classify(answer)
    }
}

fn health_request(http: &Http, base: &BaseUrl, key: &str) -> Result<RequestBuilder, Verdict> {
    let query = [("address", "1600 Amphitheatre Parkway"), ("key", key)];
    Ok(http.get(base.endpoint("/maps/api/geocode/json", &query)))
}

#[derive(Deserialize)]
struct Geocode {
    status: String,
}

fn classify(answer: &Answer) -> Verdict {
    let status = answer.status;
    let Some(Geocode { status: google }) = answer.json::<Geocode>() else {
        return match status.as_u16() {
            200..=299 => Verdict::unexpected_body(status),
            code @ (401 | 403) => Verdict::invalid(format!("HTTP {code}")),
            _ => by_status(status),
        };
    };
    match google.as_str() {
        "OK" | "ZERO_RESULTS" if status.is_success() => Verdict::healthy(google),
        "REQUEST_DENIED" => Verdict::invalid("REQUEST_DENIED"),
        // OVER_DAILY_LIMIT also covers "billing not enabled"; quota is the likelier reading,
        // and either way waiting or fixing the account (not the key) is the remedy.
        "OVER_QUERY_LIMIT" | "OVER_DAILY_LIMIT" => Verdict::rate_limited(google),
        "UNKNOWN_ERROR" => Verdict::unreachable("UNKNOWN_ERROR"),
        "INVALID_REQUEST" => Verdict::unreachable("unexpected response (INVALID_REQUEST)"),
        _ if status.is_success() => Verdict::unexpected_body(status),
        _ => by_status(status),
    }
}
