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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn production_refuses_plain_http_and_internal_addresses_before_sending() {
        let sender = HttpWebhookSender::new(UrlPolicy::PRODUCTION, Duration::from_secs(1)).unwrap();
        assert_eq!(sender.check_url("http://hooks.example.com/in").await.unwrap_err(), "the URL must use https");
        let private = sender.check_url("https://10.0.0.1/in").await.unwrap_err();
        assert!(private.contains("private or internal address"), "{private}");
        let loopback = sender.check_url("https://127.0.0.1/in").await.unwrap_err();
        assert!(loopback.contains("private or internal address"), "{loopback}");
        assert!(!loopback.contains("127.0.0.1"), "the refusal does not name the address: {loopback}");
        assert_eq!(sender.check_url("https://93.184.215.14/in").await.unwrap(), "https://93.184.215.14/in");
        let outcome = sender.send("https://169.254.169.254/latest", &[], "msg_1", 0, "{}").await;
        assert!(matches!(outcome, SendOutcome::Refused { .. }), "{outcome:?}");
    }

    #[test]
    fn secrets_are_fresh_whsec_secrets() {
        let sender = HttpWebhookSender::new(UrlPolicy::PRODUCTION, Duration::from_secs(1)).unwrap();
        let (a, b) = (sender.new_secret(), sender.new_secret());
        assert!(a.expose_secret().starts_with("whsec_"));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(WebhookSecret::parse(a.expose_secret()).is_ok());
    }
}
