//! Mapbox (maps), checked with an access token (`pk.`, `sk.` or `tk.`).
//!
//! - Endpoint: `GET https://api.mapbox.com/tokens/v2?access_token=<token>` ("Retrieve a token":
//!   the token's own metadata and validity; needs no scope, so any token may call it).
//! - Auth: the token in the `access_token` query parameter (Mapbox's only style for this call).
//! - Answers: 200 with `{"code": "TokenValid", "token": {...}}`; an invalid token may still come
//!   back with `code` one of `TokenMalformed`, `TokenInvalid`, `TokenExpired`, `TokenRevoked`
//!   (so the code decides, not the status); 401 `{"message": "Unauthorized"}`; 403 for a token
//!   lacking a scope; 422 when no token was sent; 429 rate limit; 500 on Mapbox's side.
//!
//! Read from <https://docs.mapbox.com/api/accounts/tokens/#retrieve-a-token> (endpoint; its
//! `code` values and error bodies as transcribed by <https://withone.ai/knowledge/mapbox>,
//! the section itself not being at hand) and
//! <https://docs.mapbox.com/help/troubleshooting/token-errors/> (401 and 403).

use reqwest::RequestBuilder;
use serde::Deserialize;

use crate::api::ProviderApi;
use crate::http::{Answer, BaseUrl, Http, Verdict, by_status};

const DEFAULT_BASE_URL: &str = "https://api.mapbox.com";

/// Mapbox's client: a health check only.
#[derive(Debug)]
pub(crate) struct Mapbox;

impl ProviderApi for Mapbox {
    fn slug(&self) -> &'static str {
        "mapbox"
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

/// The codes Mapbox gives for a token it will not honour.
const INVALID_CODES: [&str; 4] = ["TokenMalformed", "TokenInvalid", "TokenExpired", "TokenRevoked"];

fn health_request(http: &Http, base: &BaseUrl, token: &str) -> Result<RequestBuilder, Verdict> {
    Ok(http.get(base.endpoint("/tokens/v2", &[("access_token", token)])))
}

#[derive(Deserialize)]
struct TokenInfo {
    code: String,
}

fn classify(answer: &Answer) -> Verdict {
    let status = answer.status;
    let code = answer.json::<TokenInfo>().map(|t| t.code);
    // A documented invalid-token code decides under any status.
    if let Some(invalid) = INVALID_CODES.iter().find(|c| code.as_deref() == Some(**c)) {
        return Verdict::invalid(format!("HTTP {} {invalid}", status.as_u16()));
    }
    match status.as_u16() {
        200..=299 => match code.as_deref() {
            Some("TokenValid") => Verdict::healthy(format!("HTTP {} TokenValid", status.as_u16())),
            _ => Verdict::unexpected_body(status),
        },
        code @ (401 | 403) => Verdict::invalid(format!("HTTP {code}")),
        _ => by_status(status),
    }
}
