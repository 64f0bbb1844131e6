//! Postmark (email), checked with its server token.
//!
//! - Endpoint: `GET https://api.postmarkapp.com/server` ("Get the server": the settings of the
//!   server the token belongs to; reads nothing else).
//! - Auth: header `X-Postmark-Server-Token: <server token>`, plus the required
//!   `Accept: application/json`.
//! - Answers: 200 with the server object (`{"ID": 1, "Name": "...", ...}`); 401 for a missing or
//!   wrong token, its body `{"ErrorCode": 10, "Message": "..."}` (API error code 10, "Bad or
//!   missing API token"); 422 with an `ErrorCode` for other request errors; 429 rate limit;
//!   500/503 on Postmark's side.
//!
//! - Sending (K13's emails): `POST /email` with the same token and `{"From", "To", "Subject",
//!   "TextBody", "MessageStream": "outbound"}`; 200 answers `{"MessageID", "ErrorCode": 0, ...}`,
//!   422 answers an `ErrorCode` (300 invalid email request, 400 sender signature not found, 406
//!   inactive recipient, ...) and a `Message`.
//!
//! Read from <https://postmarkapp.com/developer/api/server-api> (endpoint and headers),
//! <https://postmarkapp.com/developer/api/email-api> (sending) and
//! <https://postmarkapp.com/developer/api/overview> (status codes, authentication, error codes).

use async_trait::async_trait;
use reqwest::RequestBuilder;
use reqwest::header::HeaderName;
use serde::Deserialize;

use crate::api::{Email, Failed, ProviderApi};
use crate::http::{Answer, BaseUrl, Http, Verdict, by_status, secret_header};

const DEFAULT_BASE_URL: &str = "https://api.postmarkapp.com";

/// Postmark's client: a health check and sending email.
#[derive(Debug)]
pub(crate) struct Postmark;

#[async_trait]
impl ProviderApi for Postmark {
    fn slug(&self) -> &'static str {
        "postmark"
    }

    fn default_base_url(&self) -> &'static str {
        DEFAULT_BASE_URL
    }

    fn health_request(&self, http: &Http, base: &BaseUrl, token: &str) -> Result<RequestBuilder, Verdict> {
        health_request(http, base, token)
    }

    fn classify(&self, answer: &Answer) -> Verdict {
        classify(answer)
    }

    async fn send_email(&self, http: &Http, base: &BaseUrl, token: &str, email: Email<'_>) -> Result<String, Failed> {
        send_email(http, base, token, email).await
    }
}

/// Postmark's "Bad or missing API token" error code.
const BAD_TOKEN: i64 = 10;

fn health_request(http: &Http, base: &BaseUrl, token: &str) -> Result<RequestBuilder, Verdict> {
    Ok(http
        .get(base.endpoint("/server", &[]))
        .header(HeaderName::from_static("x-postmark-server-token"), secret_header(token)?))
}

#[derive(Deserialize)]
struct Server {
    #[serde(rename = "ID")]
    _id: u64,
}

#[derive(Deserialize)]
struct PostmarkError {
    #[serde(rename = "ErrorCode")]
    error_code: i64,
}

fn classify(answer: &Answer) -> Verdict {
    let status = answer.status;
    let error_code = answer.json::<PostmarkError>().map(|e| e.error_code);
    match status.as_u16() {
        200..=299 => match answer.json::<Server>() {
            Some(_) => Verdict::healthy(format!("HTTP {}", status.as_u16())),
            None => Verdict::unexpected_body(status),
        },
        // 401 is "missing or incorrect API token"; error code 10 says the same under any status.
        401 => Verdict::invalid(match error_code {
            Some(code) => format!("HTTP 401 (ErrorCode {code})"),
            None => "HTTP 401".to_owned(),
        }),
        code if error_code == Some(BAD_TOKEN) => Verdict::invalid(format!("HTTP {code} (ErrorCode {BAD_TOKEN})")),
        _ => by_status(status),
    }
}

#[derive(serde::Serialize)]
struct OutgoingEmail<'a> {
    #[serde(rename = "From")]
    from: &'a str,
    #[serde(rename = "To")]
    to: &'a str,
    #[serde(rename = "Subject")]
    subject: &'a str,
    #[serde(rename = "TextBody")]
    text_body: &'a str,
    #[serde(rename = "MessageStream")]
    message_stream: &'a str,
}

#[derive(Deserialize)]
struct Sent {
    #[serde(rename = "MessageID")]
    message_id: String,
}

/// Sends one plain-text email; Postmark's message id, or what went wrong (with Postmark's
/// error code, never its message, which may quote addresses).
async fn send_email(http: &Http, base: &BaseUrl, token: &str, email: Email<'_>) -> Result<String, Failed> {
    let body = OutgoingEmail {
        from: email.from,
        to: email.to,
        subject: email.subject,
        text_body: email.body,
        message_stream: "outbound",
    };
    let request = http
        .post_json(base.endpoint("/email", &[]), &body)
        .header(HeaderName::from_static("x-postmark-server-token"), secret_header(token).map_err(|v| (v, 0))?);
    let (result, elapsed) = http.send(request).await;
    let answer = result.map_err(|failure| (failure.verdict(), elapsed))?;
    if answer.status.is_success() {
        return answer
            .json::<Sent>()
            .map(|sent| sent.message_id)
            .ok_or((Verdict::unexpected_body(answer.status), elapsed));
    }
    let verdict = match (answer.status.as_u16(), answer.json::<PostmarkError>().map(|e| e.error_code)) {
        (401, _) | (_, Some(BAD_TOKEN)) => classify(&answer),
        (status, Some(code)) => Verdict::new(
            otesse_domain::integration::HealthOutcome::Unreachable,
            format!("HTTP {status} (ErrorCode {code})"),
        ),
        _ => by_status(answer.status),
    };
    Err((verdict, elapsed))
}
