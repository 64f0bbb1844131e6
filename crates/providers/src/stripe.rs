//! Stripe (payments), checked with a secret or restricted key.
//!
//! - Endpoint: `GET https://api.stripe.com/v1/balance` ("Retrieve balance": the account's
//!   balance for the key used; read-only, always present).
//! - Auth: header `Authorization: Bearer <secret key>` (`sk_live_...`, `sk_test_...`, or a
//!   restricted `rk_...` key). Stripe documents HTTP Basic (key as user name) first and bearer
//!   auth as the equivalent alternative; bearer keeps the key out of a base64 user:password.
//! - Answers: 200 with `{"object": "balance", ...}`; 401 "No valid API key provided", its body
//!   `{"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: ..."}}`
//!   (the message quotes part of the key, so it is never repeated); 403 "The API key doesn't
//!   have permissions to perform the request" (a restricted key without balance read access,
//!   counted as invalid: it cannot do what Otesse needs); 429 too many requests; 500, 502, 503,
//!   504 on Stripe's side.
//!
//! Read from <https://docs.stripe.com/api/errors> (status code summary, error object),
//! <https://docs.stripe.com/api/authentication> (bearer auth) and
//! <https://docs.stripe.com/api/balance> (the balance object, `GET /v1/balance`).

use reqwest::RequestBuilder;
use reqwest::header::AUTHORIZATION;
use serde::Deserialize;

use crate::api::ProviderApi;
use crate::http::{Answer, BaseUrl, Http, Verdict, by_status, secret_header, word};

const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// Stripe's client: a health check only.
#[derive(Debug)]
pub(crate) struct Stripe;

impl ProviderApi for Stripe {
    fn slug(&self) -> &'static str {
        "stripe"
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
    Ok(http.get(base.endpoint("/v1/balance", &[])).header(AUTHORIZATION, secret_header(&format!("Bearer {key}"))?))
}

#[derive(Deserialize)]
struct Balance {
    object: String,
}

#[derive(Deserialize)]
struct StripeError {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
}

/// `HTTP 401 invalid_request_error` or `HTTP 401 invalid_request_error api_key_expired`.
fn with_error(answer: &Answer) -> String {
    let mut detail = format!("HTTP {}", answer.status.as_u16());
    if let Some(StripeError { error }) = answer.json::<StripeError>() {
        for part in [error.kind, error.code].into_iter().flatten() {
            if let Some(part) = word(&part) {
                detail.push(' ');
                detail.push_str(part);
            }
        }
    }
    detail
}

fn classify(answer: &Answer) -> Verdict {
    let status = answer.status;
    match status.as_u16() {
        200..=299 => match answer.json::<Balance>() {
            Some(balance) if balance.object == "balance" => Verdict::healthy(format!("HTTP {}", status.as_u16())),
            _ => Verdict::unexpected_body(status),
        },
        401 | 403 => Verdict::invalid(with_error(answer)),
        _ => by_status(status),
    }
}
