//! [`Error`]: what a call can fail with. The server's answers in the one error shape
//! (`{"error": {"type", "code", "message"}}`) become [`ApiError`]; the network's failures are a
//! variant of their own.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;

use crate::generated::ErrorCode;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error (after any retries).
    #[error("{0}")]
    Api(Box<ApiError>),
    /// A retried create whose first answer held a secret (a key, a signing secret): the server
    /// made the resource but shows a secret only once, so the retry got `409
    /// idempotency_secret_shown` instead. [`location`](Self::SecretAlreadyShown::location)
    /// names what was made, to fetch; rotate it for a new secret. Never retried.
    #[error("{error} (the resource is at {})", location.as_deref().unwrap_or("an unnamed location"))]
    SecretAlreadyShown {
        /// The `Location` header: the path of what the first request made.
        location: Option<String>,
        /// The server's answer.
        error: Box<ApiError>,
    },
    /// No answer: the connection failed or timed out (after any retries).
    #[error("network error: {0}")]
    Network(#[source] reqwest::Error),
    /// An answer that is not what the API documents (a body that does not parse).
    #[error("unexpected answer ({status}): {message}")]
    UnexpectedAnswer {
        /// The HTTP status.
        status: StatusCode,
        /// What did not fit.
        message: String,
    },
    /// The client was given something it cannot use (a base URL that is not one).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    /// The server's error, when the server answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(error) | Error::SecretAlreadyShown { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::UnexpectedAnswer { status, .. } => Some(*status),
            _ => self.api().map(|error| error.status),
        }
    }
}

/// An error answer of the server: the HTTP status and the body's `type`, `code` and `message`
/// (the one error shape), with the `Retry-After` and `X-Request-Id` headers.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `type` field: the family (`invalid_request_error`, `authentication_error`,
    /// `permission_error`, `rate_limit_error`, `api_error`).
    pub kind: String,
    /// The `code` field: the precise reason, for programs to branch on (`api_key_revoked`).
    /// [`ApiError::error_code`] reads it as the generated [`ErrorCode`].
    pub code: String,
    /// The `message` field, for people. It never repeats a secret the request sent.
    pub message: String,
    /// `Retry-After` on a 429 or a 503: how long the server asked to wait.
    pub retry_after: Option<Duration>,
    /// `X-Request-Id`: quote it when asking about a request.
    pub request_id: Option<String>,
}

impl ApiError {
    /// The code as the API's closed set, or `None` for a code this version of the client does
    /// not know (a newer server's).
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.code.parse().ok()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({}): {}", self.status.as_u16(), self.code, self.kind, self.message)
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status.as_u16())
            .field("type", &self.kind)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("retry_after", &self.retry_after)
            .field("request_id", &self.request_id)
            .finish()
    }
}

impl std::error::Error for ApiError {}
