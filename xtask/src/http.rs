//! The few calls the tasks make to the server's HTTP API, with errors that say which call failed
//! and what the server answered.

use std::time::Duration;

use serde_json::{Value, json};

use crate::error::Error;

#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl From<ureq::Error> for Error {
    fn from(err: ureq::Error) -> Self {
        match err {
            ureq::Error::Status(code, response) => {
                let body = response.into_string().unwrap_or_default();
                Error::new(format!("HTTP {code}: {body}"))
            }
            ureq::Error::Transport(transport) => Error::new(transport.to_string()),
        }
    }
}

impl Client {
    /// `base` is `http://host:port`, without a trailing slash.
    pub fn new(base: String) -> Self {
        let agent =
            ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(2)).timeout(Duration::from_secs(30)).build();
        Self { base, agent }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// True when `GET /readyz` answers 200 (not an error: "not yet" is expected while polling).
    pub fn is_ready(&self) -> bool {
        self.agent
            .get(&self.url("/readyz"))
            .timeout(Duration::from_secs(1))
            .call()
            .is_ok_and(|response| response.status() == 200)
    }

    /// First-run setup: the organization and its first admin.
    pub fn setup(&self, setup_token: &str, email: &str, password: &str) -> Result<(), Error> {
        let body = json!({
            "setup_token": setup_token,
            "organization_name": "Bench",
            "email": email,
            "password": password,
        });
        self.send("POST /v1/setup", None, Some(body), 201).map(drop)
    }

    /// Signs in; returns the session token.
    pub fn sign_in(&self, email: &str, password: &str) -> Result<String, Error> {
        let answer = self.send("POST /v1/sessions", None, Some(json!({"email": email, "password": password})), 201)?;
        string_field(&answer, "token", "POST /v1/sessions")
    }

    /// Creates a read-only live key that never expires; returns `(plaintext key, id)`.
    pub fn create_key(&self, session: &str, name: &str) -> Result<(String, String), Error> {
        let body = json!({
            "name": name,
            "scope_level": "read_only",
            "scopes": ["customers.read"],
            "expires_in": "never",
            "environment": "live",
            "allowed_ips": [],
        });
        let answer = self.send("POST /v1/api-keys", Some(session), Some(body), 201)?;
        Ok((string_field(&answer, "key", "POST /v1/api-keys")?, string_field(&answer, "id", "POST /v1/api-keys")?))
    }

    /// Creates a key from a create-key body; returns `(plaintext key, id)`.
    pub fn create_key_with(&self, session: &str, body: Value) -> Result<(String, String), Error> {
        let answer = self.send("POST /v1/api-keys", Some(session), Some(body), 201)?;
        Ok((string_field(&answer, "key", "POST /v1/api-keys")?, string_field(&answer, "id", "POST /v1/api-keys")?))
    }

    /// `GET path` with a bearer token, expecting 200 and JSON.
    pub fn get_json(&self, path: &str, bearer: &str) -> Result<Value, Error> {
        self.send(&format!("GET {path}"), Some(bearer), None, 200)
    }

    /// `GET path` without credentials; the body as text (200 expected).
    pub fn get_text(&self, path: &str) -> Result<String, Error> {
        let call = format!("GET {path}");
        let response = self.agent.get(&self.url(path)).call().map_err(|e| Error::from(e).context(&call))?;
        response.into_string().map_err(|e| Error::from(e).context(&call))
    }

    /// `usage.total_requests` of one key.
    pub fn key_total_requests(&self, session: &str, id: &str) -> Result<u64, Error> {
        let call = format!("GET /v1/api-keys/{id}");
        let answer = self.send(&call, Some(session), None, 200)?;
        answer
            .pointer("/usage/total_requests")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::new(format!("{call}: no usage.total_requests in {answer}")))
    }

    /// The Prometheus text from `GET /metrics`.
    pub fn metrics(&self) -> Result<String, Error> {
        let response =
            self.agent.get(&self.url("/metrics")).call().map_err(|e| Error::from(e).context("GET /metrics"))?;
        response.into_string().map_err(|e| Error::from(e).context("GET /metrics"))
    }

    /// `call` is `"METHOD /path"`; any status is an answer: `(status, body)`, the body `Null` when
    /// it is not JSON. Fails only when no answer came (connection refused or cut, timeout).
    pub fn call(&self, call: &str, bearer: Option<&str>, body: Option<Value>) -> Result<(u16, Value), Error> {
        let (method, path) = call.split_once(' ').unwrap_or(("GET", call));
        let mut request = self.agent.request(method, &self.url(path));
        if let Some(token) = bearer {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        let response = match response {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(err @ ureq::Error::Transport(_)) => return Err(Error::from(err).context(call)),
        };
        let status = response.status();
        let text = response.into_string().map_err(|e| Error::from(e).context(call))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// `call` is `"METHOD /path"`; fails unless the answer has status `expect`.
    fn send(&self, call: &str, bearer: Option<&str>, body: Option<Value>, expect: u16) -> Result<Value, Error> {
        let (method, path) = call.split_once(' ').unwrap_or(("GET", call));
        let mut request = self.agent.request(method, &self.url(path));
        if let Some(token) = bearer {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        }
        .map_err(|e| Error::from(e).context(call))?;
        let status = response.status();
        let text = response.into_string().map_err(|e| Error::from(e).context(call))?;
        if status != expect {
            return Err(Error::new(format!("{call}: expected HTTP {expect}, got {status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| Error::new(format!("{call}: the answer is not JSON ({e}): {text}")))
    }
}

fn string_field(answer: &Value, field: &str, call: &str) -> Result<String, Error> {
    answer
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::new(format!("{call}: no string `{field}` in the answer")))
}

/// The value of an unlabelled counter or gauge in Prometheus text format.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "\
# HELP otesse_api_key_requests_total Requests authenticated with an API key and handed to the usage log
# TYPE otesse_api_key_requests_total counter
otesse_api_key_requests_total 412345
# HELP otesse_usage_rows_dropped_total Usage rows dropped
# TYPE otesse_usage_rows_dropped_total counter
otesse_usage_rows_dropped_total 0
# TYPE otesse_api_key_requests_total_other counter
otesse_api_key_requests_total_other 7
";

    #[test]
    fn reads_counters_by_exact_name() {
        assert_eq!(metric(METRICS, "otesse_api_key_requests_total"), Some(412_345.0));
        assert_eq!(metric(METRICS, "otesse_usage_rows_dropped_total"), Some(0.0));
        assert_eq!(metric(METRICS, "otesse_usage_rows_written_total"), None);
    }
}
