//! The helpers every provider module shares: one bounded GET, its body read under a size cap,
//! transport failures reduced to a short operator-facing detail, and the status rules that do
//! not depend on the provider (429, 5xx, redirects).
//!
//! Invariant: nothing here formats a URL, a header value or a response body into a detail or a
//! log line. reqwest's errors print their URL, and for the query-string providers the URL holds
//! the credential, so errors are only ever inspected by kind, never displayed.

use std::error::Error as _;
use std::time::{Duration, Instant};

use otesse_domain::integration::HealthOutcome;
use reqwest::header::{ACCEPT, HeaderValue};
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;

/// The largest response body read; a longer one is a bad response and is not buffered.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An outcome with its operator-facing detail, before the response time is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub outcome: HealthOutcome,
    pub detail: String,
}

impl Verdict {
    pub fn new(outcome: HealthOutcome, detail: impl Into<String>) -> Self {
        Self { outcome, detail: detail.into() }
    }

    pub fn healthy(detail: impl Into<String>) -> Self {
        Self::new(HealthOutcome::Healthy, detail)
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(HealthOutcome::InvalidCredentials, detail)
    }

    pub fn rate_limited(detail: impl Into<String>) -> Self {
        Self::new(HealthOutcome::RateLimited, detail)
    }

    pub fn unreachable(detail: impl Into<String>) -> Self {
        Self::new(HealthOutcome::Unreachable, detail)
    }

    /// A success status whose body is not what the provider documents: something else answered
    /// (a captive portal, a misconfigured proxy) or the provider changed its API.
    pub fn unexpected_body(status: StatusCode) -> Self {
        Self::unreachable(format!("unexpected response (HTTP {}, body not recognised)", status.as_u16()))
    }
}

/// The rules no provider overrides: 429 is rate limiting, 5xx (including Anthropic's 529) and
/// redirects (never followed) are unreachable, and any other status the provider's module did
/// not claim says nothing about the credential, so the check could not be made.
pub(crate) fn by_status(status: StatusCode) -> Verdict {
    let code = status.as_u16();
    match code {
        429 => Verdict::rate_limited("HTTP 429"),
        500..=599 => Verdict::unreachable(format!("HTTP {code}")),
        300..=399 => Verdict::unreachable(format!("redirect not followed (HTTP {code})")),
        _ => Verdict::unreachable(format!("unexpected response (HTTP {code})")),
    }
}

/// A provider's machine-readable word (an error type or code) when it is short and plain enough
/// to repeat in a detail: never free text, which may quote the request.
pub(crate) fn word(raw: &str) -> Option<&str> {
    let plain = !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    plain.then_some(raw)
}

/// A credential as a header value, marked sensitive so that `Debug` output hides it.
pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, Verdict> {
    let mut header = HeaderValue::from_str(value)
        .map_err(|_| Verdict::invalid("credential has characters not allowed in an HTTP header"))?;
    header.set_sensitive(true);
    Ok(header)
}

/// A provider's base URL: http(s), with a host, optionally a path prefix (for a proxy), never a
/// query, fragment or user info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseUrl(Url);

impl BaseUrl {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let url = Url::parse(raw.trim()).map_err(|_| "not an absolute URL")?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("scheme must be http or https");
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("no host");
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or fragment");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry user info");
        }
        Ok(Self(url))
    }

    /// `path` (starting with `/`) under the base URL's own path, with `query` form-encoded.
    pub fn endpoint(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.0.clone();
        let joined = format!("{}{}", self.0.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }
}

/// A complete answer: its status and its whole body (at most [`MAX_BODY_BYTES`]).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as `T`, if it is that JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Why no complete answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    TimedOut,
    Refused,
    Dns,
    Connect,
    Closed,
    TooLarge,
    Other,
}

impl Failure {
    pub fn verdict(self) -> Verdict {
        Verdict::unreachable(match self {
            Failure::TimedOut => "timed out",
            Failure::Refused => "connection refused",
            Failure::Dns => "DNS lookup failed",
            Failure::Connect => "connection failed",
            Failure::Closed => "connection closed",
            Failure::TooLarge => "bad response: body over 1 MiB",
            Failure::Other => "request failed",
        })
    }

    /// Classifies by kind and by the error chain's types. The chain's messages are looked at
    /// only to spot hyper-util's DNS error, whose type is private; nothing is kept or printed.
    fn from_reqwest(err: &reqwest::Error) -> Self {
        if err.is_timeout() {
            return Failure::TimedOut;
        }
        let mut dns = false;
        let mut source = err.source();
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind as Kind;
                match io.kind() {
                    Kind::ConnectionRefused => return Failure::Refused,
                    Kind::TimedOut => return Failure::TimedOut,
                    Kind::ConnectionReset | Kind::ConnectionAborted | Kind::BrokenPipe | Kind::UnexpectedEof => {
                        return Failure::Closed;
                    }
                    _ => {}
                }
            }
            if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
                if hyper.is_timeout() {
                    return Failure::TimedOut;
                }
                if hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled() {
                    return Failure::Closed;
                }
            }
            dns |= cause.to_string().starts_with("dns error");
            source = cause.source();
        }
        if dns {
            Failure::Dns
        } else if err.is_connect() {
            Failure::Connect
        } else if err.is_body() || err.is_decode() {
            Failure::Closed
        } else {
            Failure::Other
        }
    }
}

/// The one HTTP client: bounded connect and total timeouts, no redirects, no cookies.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
}

impl Http {
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("otesse-providers/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }

    /// A GET that asks for JSON; the caller adds the credential.
    pub fn get(&self, url: Url) -> RequestBuilder {
        self.client.get(url).header(ACCEPT, "application/json")
    }

    /// A POST of a JSON body that asks for JSON; the caller adds the credential.
    pub fn post_json<T: serde::Serialize + ?Sized>(&self, url: Url, body: &T) -> RequestBuilder {
        self.client.post(url).header(ACCEPT, "application/json").json(body)
    }

    /// A POST of an `application/x-www-form-urlencoded` body that asks for JSON (OAuth token
    /// and revocation requests); the caller adds the client authentication.
    pub fn post_form(&self, url: Url, form: &[(&str, &str)]) -> RequestBuilder {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        self.client
            .post(url)
            .header(ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
    }

    /// Sends `request` and reads the whole answer, timing both, in milliseconds.
    pub async fn send(&self, request: RequestBuilder) -> (Result<Answer, Failure>, u32) {
        let started = Instant::now();
        let result = exchange(request).await;
        let elapsed = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        (result, elapsed)
    }
}

async fn exchange(request: RequestBuilder) -> Result<Answer, Failure> {
    let mut response = request.send().await.map_err(|e| Failure::from_reqwest(&e))?;
    let status = response.status();
    // A declared length over the cap is refused before reading; an undeclared one (chunked) is
    // counted as it arrives and dropped (closing the connection) once it passes the cap.
    if response.content_length().is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(Failure::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Failure::from_reqwest(&e))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Failure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_the_base_path_and_encode_the_query() {
        let base = BaseUrl::parse("http://proxy.local:8080/google/").unwrap();
        let url = base.endpoint("/maps/api/geocode/json", &[("address", "1600 Amphitheatre Parkway"), ("key", "a&b")]);
        assert_eq!(
            url.as_str(),
            "http://proxy.local:8080/google/maps/api/geocode/json?address=1600+Amphitheatre+Parkway&key=a%26b"
        );
        let bare = BaseUrl::parse("https://api.stripe.com").unwrap();
        assert_eq!(bare.endpoint("/v1/balance", &[]).as_str(), "https://api.stripe.com/v1/balance");
    }

    #[test]
    fn base_urls_must_be_plain_http_or_https() {
        for bad in [
            "api.stripe.com",
            "ftp://x.example",
            "https://x.example/?a=1",
            "https://u:p@x.example",
            "https://x.example/#f",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_plain_words_are_repeated() {
        assert_eq!(word("authentication_error"), Some("authentication_error"));
        for bad in ["", "Invalid API Key provided: sk_test_***", "a-b", &"x".repeat(65)] {
            assert_eq!(word(bad), None, "{bad}");
        }
    }

    #[test]
    fn shared_status_rules() {
        assert_eq!(by_status(StatusCode::TOO_MANY_REQUESTS).outcome, HealthOutcome::RateLimited);
        for code in [500, 502, 503, 529, 301, 404] {
            assert_eq!(by_status(StatusCode::from_u16(code).unwrap()).outcome, HealthOutcome::Unreachable, "{code}");
        }
    }

    #[test]
    fn credential_headers_are_sensitive_and_checked() {
        assert!(secret_header("abc").unwrap().is_sensitive());
        assert_eq!(secret_header("a\nb").unwrap_err().outcome, HealthOutcome::InvalidCredentials);
    }
}
