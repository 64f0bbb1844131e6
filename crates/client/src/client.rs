//! [`Client`] and its [`ClientBuilder`]: the credential, the HTTP client, and the one place a
//! request is sent, retried and its answer read.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Error};
use crate::generated::{MeResponse, SessionResponse, SignInRequest, WhoamiResponse};
use crate::retry::{self, RetryPolicy};

/// The header that makes a `POST` safe to retry (W1).
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

type SleepFn = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What the client authenticates with, sent as `Authorization: Bearer`. Key management and
/// the dashboard's routes take a user's session; `/v1/customers` and `/v1/whoami` an API key;
/// integrations and webhook endpoints either.
#[derive(Clone)]
enum Credential {
    ApiKey(SecretString),
    Session(SecretString),
}

impl Credential {
    fn secret(&self) -> &SecretString {
        match self {
            Credential::ApiKey(secret) | Credential::Session(secret) => secret,
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credential::ApiKey(_) => "ApiKey([REDACTED])",
            Credential::Session(_) => "Session([REDACTED])",
        })
    }
}

/// Sets up a [`Client`]: the API's base URL (with its `/v1`), a credential, the retry policy.
#[must_use]
pub struct ClientBuilder {
    base_url: String,
    credential: Option<Credential>,
    retry: RetryPolicy,
    timeout: Duration,
    http: Option<reqwest::Client>,
    sleep: Option<SleepFn>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("credential", &self.credential)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Authenticates with an API key (`erp_live_...`, `erp_test_...`).
    pub fn api_key(mut self, key: impl Into<SecretString>) -> Self {
        self.credential = Some(Credential::ApiKey(key.into()));
        self
    }

    /// Authenticates with a user's session token (`ses_...`), as [`ClientBuilder::sign_in`]
    /// gets one.
    pub fn session_token(mut self, token: impl Into<SecretString>) -> Self {
        self.credential = Some(Credential::Session(token.into()));
        self
    }

    /// When and how long to retry (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The timeout of one attempt, from connecting to the answer's end (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends through this reqwest client instead of one the builder makes (its own timeout,
    /// proxy and TLS settings then apply; [`ClientBuilder::timeout`] does not).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Waits between attempts with `sleep` instead of `tokio::time::sleep`: for another
    /// runtime's timer, or for a test that records the waits instead of waiting.
    pub fn sleep_with<F, Fut>(mut self, sleep: F) -> Self
    where
        F: Fn(Duration) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.sleep = Some(Arc::new(move |duration| Box::pin(sleep(duration))));
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client, Error> {
        let mut base =
            Url::parse(&self.base_url).map_err(|err| Error::Config(format!("base URL {:?}: {err}", self.base_url)))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Config(format!("base URL {:?} is not an http(s) URL", self.base_url)));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .timeout(self.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("otesse-client/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|err| Error::Config(format!("HTTP client: {err}")))?,
        };
        let sleep = self.sleep.unwrap_or_else(|| Arc::new(|duration| Box::pin(tokio::time::sleep(duration))));
        Ok(Client { inner: Arc::new(Inner { http, base, credential: self.credential, retry: self.retry, sleep }) })
    }

    /// Signs in as a user (`POST /v1/sessions`) and answers a client holding the session, for
    /// the routes only users may call (key management). The password is sent, not kept.
    pub async fn sign_in(self, email: &str, password: impl Into<crate::Secret>) -> Result<Client, Error> {
        let client = Self { credential: None, ..self }.build()?;
        let body = SignInRequest { email: email.to_owned(), password: password.into(), cookie: None };
        let session: SessionResponse = client.call(Method::POST, &["sessions"], &[], Some(&body), None).await?;
        let token = session.token.ok_or_else(|| Error::UnexpectedAnswer {
            status: StatusCode::CREATED,
            message: "the sign-in answer holds no session token".into(),
        })?;
        let inner = Inner { credential: Some(Credential::Session(token.into())), ..(*client.inner).clone() };
        Ok(Client { inner: Arc::new(inner) })
    }
}

/// A client of Otesse's API. Cheap to clone (the clones share one connection pool).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    http: reqwest::Client,
    base: Url,
    credential: Option<Credential>,
    retry: RetryPolicy,
    sleep: SleepFn,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("credential", &self.inner.credential)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// An answer read whole: status, headers, body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Client {
    /// A builder for the API at `base_url`, the `/v1` included (`https://api.otesse.com/v1`,
    /// `http://127.0.0.1:8080/v1`).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            credential: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            http: None,
            sleep: None,
        }
    }

    /// A client with an API key and the default settings.
    pub fn with_api_key(base_url: impl Into<String>, key: impl Into<SecretString>) -> Result<Self, Error> {
        Self::builder(base_url).api_key(key).build()
    }

    /// The API's base URL, ending in `/`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// `GET /v1/whoami`: the key this client holds (API key only).
    pub async fn whoami(&self) -> Result<WhoamiResponse, Error> {
        self.get(&["whoami"], &[]).await
    }

    /// `GET /v1/me`: the signed-in user, their organization and permissions (session only).
    pub async fn me(&self) -> Result<MeResponse, Error> {
        self.get(&["me"], &[]).await
    }

    /// Sends one logical request with the `Idempotency-Key` given, retried as the
    /// [`RetryPolicy`] says with that same key, and reads the JSON answer. `path` is relative
    /// to the base URL (`customers`, `api-keys/{id}/rotate`) and used as written. Reusing a
    /// key replays the first answer (or, for an answer that held a secret, fails with
    /// [`Error::SecretAlreadyShown`]); the resource methods make a fresh key per call.
    pub async fn send_with_idempotency_key<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        idempotency_key: &str,
    ) -> Result<T, Error> {
        let url = self.inner.base.join(path.trim_start_matches('/')).map_err(|err| Error::Config(err.to_string()))?;
        let body = body.map(serde_json::to_vec).transpose().map_err(|err| Error::Config(err.to_string()))?;
        let answer = self.execute(method, url, body, Some(idempotency_key)).await?;
        decode(&answer)
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &[&str], query: &[(&str, String)]) -> Result<T, Error> {
        self.call::<(), T>(Method::GET, path, query, None, None).await
    }

    /// A `POST`, with a fresh `Idempotency-Key` for all its attempts.
    pub(crate) async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &[&str],
        body: Option<&B>,
    ) -> Result<T, Error> {
        let key = uuid::Uuid::new_v4().to_string();
        self.call(Method::POST, path, &[], body, Some(&key)).await
    }

    pub(crate) async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        body: &B,
    ) -> Result<T, Error> {
        self.call(method, path, &[], Some(body), None).await
    }

    /// A `DELETE` answered with `204 No Content`.
    pub(crate) async fn delete(&self, path: &[&str]) -> Result<(), Error> {
        self.execute(Method::DELETE, self.url(path, &[]), None, None).await.map(drop)
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
        idempotency_key: Option<&str>,
    ) -> Result<T, Error> {
        let body = body.map(serde_json::to_vec).transpose().map_err(|err| Error::Config(err.to_string()))?;
        let answer = self.execute(method, self.url(path, query), body, idempotency_key).await?;
        decode(&answer)
    }

    /// The URL of `segments` under the base, each segment percent-encoded (a slug or a name
    /// cannot reach another path), with `query`.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends until an answer that is not worth retrying, or until the retries run out.
    async fn execute(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, Error> {
        let policy = self.inner.retry;
        let mut retry = 0;
        loop {
            let last = retry >= policy.max_retries;
            let mut request = self.inner.http.request(method.clone(), url.clone()).header("Accept", "application/json");
            if let Some(credential) = &self.inner.credential {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", credential.secret().expose_secret()))
                    .map_err(|_| Error::Config("the credential is not a valid header value".into()))?;
                value.set_sensitive(true);
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            if let Some(key) = idempotency_key {
                request = request.header(IDEMPOTENCY_KEY, key);
            }
            if let Some(body) = &body {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone());
            }
            let delay = match request.send().await {
                Err(err) if !last && retry::retryable_failure(&err) => policy.delay(retry, None, fastrand::f64()),
                Err(err) => return Err(Error::Network(err)),
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = match response.bytes().await {
                        Ok(bytes) => bytes.to_vec(),
                        Err(err) if !last && retry::retryable_failure(&err) => {
                            (self.inner.sleep)(policy.delay(retry, None, fastrand::f64())).await;
                            retry += 1;
                            continue;
                        }
                        Err(err) => return Err(Error::Network(err)),
                    };
                    let answer = Answer { status, headers, body };
                    if status.is_success() {
                        return Ok(answer);
                    }
                    if last || !retry::retryable(status) {
                        return Err(failure(&answer));
                    }
                    policy.delay(retry, retry::retry_after(&answer.headers), fastrand::f64())
                }
            };
            (self.inner.sleep)(delay).await;
            retry += 1;
        }
    }
}

/// The JSON body of a successful answer.
fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<T, Error> {
    serde_json::from_slice(&answer.body).map_err(|err| Error::UnexpectedAnswer {
        status: answer.status,
        message: format!("the body does not parse: {err}"),
    })
}

/// The error of an answer that failed: the error shape read into [`ApiError`].
fn failure(answer: &Answer) -> Error {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Body,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(rename = "type")]
        kind: String,
        code: String,
        message: String,
    }
    let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(&answer.body) else {
        let text = String::from_utf8_lossy(&answer.body);
        let message = format!("not the error shape: {}", text.chars().take(200).collect::<String>());
        return Error::UnexpectedAnswer { status: answer.status, message };
    };
    let header = |name| answer.headers.get(name).and_then(|value: &HeaderValue| value.to_str().ok()).map(str::to_owned);
    let error = Box::new(ApiError {
        status: answer.status,
        kind: error.kind,
        code: error.code,
        message: error.message,
        retry_after: retry::retry_after(&answer.headers),
        request_id: header("x-request-id"),
    });
    if error.code == "idempotency_secret_shown" {
        return Error::SecretAlreadyShown { location: header(LOCATION.as_str()), error };
    }
    Error::Api(error)
}
