//! Geoapify (maps), checked with an API key through the Geocoding API.
//!
//! - Endpoint: `GET https://api.geoapify.com/v1/geocode/search?text=Berlin&limit=1&apiKey=<key>`
//!   (one forward geocode; Geoapify has no key-info endpoint).
//! - Auth: the key in the `apiKey` query parameter.
//! - Answers: 200 with a GeoJSON `FeatureCollection` (`{"type": "FeatureCollection",
//!   "features": [...]}`, the default format) or, with `format=json`, `{"results": [...]}`;
//!   401 for a missing or invalid key, its body `{"statusCode": 401, "error": "Unauthorized",
//!   "message": "Invalid apiKey"}`; 403 for a key not allowed here (IP/referrer restrictions);
//!   429 over the plan's rate; 5xx on Geoapify's side.
//!
//! Read from <https://apidocs.geoapify.com/docs/geocoding> (endpoint,
//! parameters, response formats) and Geoapify's "How to Fix 401 Unauthorized Error When
//! Calling the API" (<https://dev.to/geoapify-maps-api/how-to-fix-401-unauthorized-error-when-calling-the-api-4kld>,
//! the error body and 401 versus 403).

use reqwest::RequestBuilder;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::api::ProviderApi;
use crate::http::{Answer, BaseUrl, Http, Verdict, by_status};

const DEFAULT_BASE_URL: &str = "https://api.geoapify.com";

/// Geoapify's client: a health check only.
#[derive(Debug)]
pub(crate) struct Geoapify;

impl ProviderApi for Geoapify {
    fn slug(&self) -> &'static str {
        "geoapify"
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
    let query = [("text", "Berlin"), ("limit", "1"), ("apiKey", key)];
    Ok(http.get(base.endpoint("/v1/geocode/search", &query)))
}

/// Either documented format: GeoJSON `features` or JSON `results`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Search {
    GeoJson {
        #[serde(rename = "features")]
        _features: Vec<IgnoredAny>,
    },
    Json {
        #[serde(rename = "results")]
        _results: Vec<IgnoredAny>,
    },
}

fn classify(answer: &Answer) -> Verdict {
    let status = answer.status;
    match status.as_u16() {
        200..=299 => match answer.json::<Search>() {
            Some(_) => Verdict::healthy(format!("HTTP {}", status.as_u16())),
            None => Verdict::unexpected_body(status),
        },
        code @ (401 | 403) => Verdict::invalid(format!("HTTP {code}")),
        _ => by_status(status),
    }
}
