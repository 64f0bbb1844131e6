//! Outbound webhook deliveries (W3): the domain's [`WebhookSender`] over the SSRF guard (W5)
//! and the Standard Webhooks signature crate.
//!
//! Every delivery goes through [`GuardedClient`]: no redirects (a 3xx is reported as the
//! answer it is), no system proxy, the resolved addresses checked when the connection is made.
//! A timeout bounds each delivery. Errors never carry the URL, which may hold a token.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use otesse_domain::webhook::{SendOutcome, WebhookSender};
use otesse_webhook_signature::{WebhookSecret, signed_headers};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::guard::{GuardError, GuardedClient, UrlPolicy, check_url};

/// Sends signed deliveries through the guard.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: GuardedClient,
}

impl HttpWebhookSender {
    /// `timeout` bounds a whole delivery (a receiver that hangs is a failed attempt).
    pub fn new(policy: UrlPolicy, timeout: Duration) -> Result<Self, reqwest::Error> {
        let connect = timeout.min(Duration::from_secs(5));
        Ok(Self { client: GuardedClient::new(policy, connect, timeout)? })
    }
}

fn elapsed_ms(started: Instant) -> u32 {
    u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX)
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn check_url(&self, url: &str) -> Result<String, String> {
        check_url(url, self.client.policy()).await.map(String::from).map_err(|refused| refused.to_string())
    }

    async fn send(
        &self,
        url: &str,
        secrets: &[SecretString],
        message_id: &str,
        timestamp: i64,
        body: &str,
    ) -> SendOutcome {
        let Ok(url) = url.parse::<url::Url>() else {
            return SendOutcome::Refused { reason: "the URL could not be parsed".into() };
        };
        let secrets: Vec<WebhookSecret> =
            secrets.iter().filter_map(|s| WebhookSecret::parse(s.expose_secret()).ok()).collect();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in signed_headers(&secrets, message_id, timestamp, body.as_bytes()) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        let started = Instant::now();
        match self.client.post(url, headers, body.to_owned()).await {
            Ok(response) => {
                SendOutcome::Answered { status: response.status().as_u16(), response_ms: elapsed_ms(started) }
            }
            Err(GuardError::Refused(refused)) => SendOutcome::Refused { reason: refused.to_string() },
            Err(GuardError::Http(err)) => {
                let error = if err.is_timeout() {
                    "the receiver did not answer in time".to_owned()
                } else if err.is_connect() {
                    "could not connect to the receiver".to_owned()
                } else {
                    format!("the request failed: {err}")
                };
                SendOutcome::Failed { error, response_ms: elapsed_ms(started) }
            }
        }
    }

    fn new_secret(&self) -> SecretString {
        SecretString::from(WebhookSecret::generate().expose_whsec())
    }
}
