//! Quo (formerly OpenPhone, phone and SMS), checked with a workspace API key.
//!
//! - Endpoint: `GET https://api.openphone.com/v1/phone-numbers` ("List phone numbers": the
//!   workspace's numbers; read-only, and the numbers are what Otesse configures next, I11).
//!   The API kept its `api.openphone.com` host through the rename.
//! - Auth: header `Authorization: <api key>`, the bare key: "The Quo API does not use a Bearer
//!   token for authentication."
//! - Answers: 200 with `{"data": [...]}`; errors are `{"message", "code", "status", "docs",
//!   "title", "trace", "errors"}` with 400 `bad_request`, 401 `unauthorized` (missing, wrong or
//!   deleted key), 403 `forbidden`, 5xx on Quo's side. A key "provides
//!   full API access", so a 403 means this key cannot do what Otesse needs and counts as invalid.
//!
//! Read from <https://openphone.com/docs/mdx/api-reference/authentication> (now also at
//! <https://www.quo.com/docs/mdx/api-reference/authentication>) for the auth style; the
//! endpoint, its `data` body and the error bodies from a third-party transcript of OpenPhone's
//! "List phone numbers" reference (<https://withone.ai/knowledge/open-phone>), the official
//! page not being at hand. 429 is not in what was read; it is treated like everywhere else.

use reqwest::RequestBuilder;
use reqwest::header::AUTHORIZATION;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::api::ProviderApi;
use crate::http::{Answer, BaseUrl, Http, Verdict, by_status, secret_header};

const DEFAULT_BASE_URL: &str = "https://api.openphone.com";

/// Quo's client: a health check only.
#[derive(Debug)]
pub(crate) struct Quo;

impl ProviderApi for Quo {
    fn slug(&self) -> &'static str {
        "quo"
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
    Ok(http.get(base.endpoint("/v1/phone-numbers", &[])).header(AUTHORIZATION, secret_header(key)?))
}

#[derive(Deserialize)]
struct PhoneNumbers {
    #[serde(rename = "data")]
    _data: Vec<IgnoredAny>,
}

fn classify(answer: &Answer) -> Verdict {
    let status = answer.status;
    match status.as_u16() {
        200..=299 => match answer.json::<PhoneNumbers>() {
            Some(_) => Verdict::healthy(format!("HTTP {}", status.as_u16())),
            None => Verdict::unexpected_body(status),
        },
        code @ (401 | 403) => Verdict::invalid(format!("HTTP {code}")),
        _ => by_status(status),
    }
}
