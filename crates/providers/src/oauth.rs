//! [`HttpOAuthClient`], the domain's [`OAuthClient`] port over HTTP: RFC 6749 token requests
//! (authorization code with the PKCE verifier, refresh) and RFC 7009 revocation, with the
//! deployment's client id and secret sent by HTTP Basic (RFC 6749 section 2.3.1).
//!
//! Answers: 200 with `{"access_token", "refresh_token"?, "expires_in"?}` is a grant; 400 or 401
//! with `{"error": "invalid_grant"}` is a spent, expired or revoked code or refresh token (a
//! wrong PKCE verifier is `invalid_grant` too, RFC 7636 section 4.6); `invalid_client` or a 401
//! without an error code is the deployment's registration refused; 429 is rate limited;
//! anything else (5xx, another shape, no answer) is unreachable. The endpoints come from the
//! catalog, which the operator controls, so they are not put through the SSRF guard.
//!
//! Invariant: a token, code, verifier or client secret is only ever in the one request body or
//! header; details are status codes and OAuth error codes, and errors are inspected by kind.

use std::time::Duration;

use async_trait::async_trait;
use otesse_domain::integration::{OAuthApp, OAuthSpec, TokenError, TokenGrant};
use otesse_domain::ports::OAuthClient;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::http::{Answer, Http, word};

/// [`OAuthClient`] over HTTP; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpOAuthClient {
    http: Http,
}

impl HttpOAuthClient {
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self { http: Http::new(connect_timeout, timeout)? })
    }

    async fn post(&self, url: &str, app: &OAuthApp, form: &[(&str, &str)]) -> Result<Answer, TokenError> {
        let url = Url::parse(url).map_err(|_| TokenError::Unreachable("bad endpoint URL in the catalog".into()))?;
        let request =
            self.http.post_form(url, form).basic_auth(&app.client_id, Some(app.client_secret.expose_secret()));
        let (result, _) = self.http.send(request).await;
        result.map_err(|failure| TokenError::Unreachable(failure.verdict().detail))
    }

    async fn token(&self, spec: &OAuthSpec, app: &OAuthApp, form: &[(&str, &str)]) -> Result<TokenGrant, TokenError> {
        let answer = self.post(&spec.token_url, app, form).await?;
        let outcome = grant(&answer);
        if let Err(err) = &outcome {
            tracing::info!(status = answer.status.as_u16(), error = %err, "token endpoint refused");
        }
        outcome
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
}

fn refused(answer: &Answer) -> TokenError {
    let status = answer.status.as_u16();
    let code = answer.json::<ErrorAnswer>().map(|e| e.error);
    match (status, code.as_deref()) {
        (_, Some("invalid_grant")) => TokenError::InvalidGrant,
        (_, Some("invalid_client" | "unauthorized_client")) | (401, None) => {
            TokenError::InvalidClient(format!("HTTP {status}"))
        }
        (429, _) => TokenError::RateLimited,
        (_, Some(code)) => TokenError::Unreachable(format!("HTTP {status} {}", word(code).unwrap_or("error"))),
        (_, None) => TokenError::Unreachable(format!("HTTP {status}")),
    }
}

fn grant(answer: &Answer) -> Result<TokenGrant, TokenError> {
    if !answer.status.is_success() {
        return Err(refused(answer));
    }
    match answer.json::<TokenAnswer>() {
        Some(t) if !t.access_token.is_empty() => Ok(TokenGrant {
            access_token: SecretString::from(t.access_token),
            refresh_token: t.refresh_token.filter(|r| !r.is_empty()).map(SecretString::from),
            expires_in_secs: t.expires_in,
        }),
        _ => Err(TokenError::Unreachable(format!("HTTP {} not a token answer", answer.status.as_u16()))),
    }
}

#[async_trait]
impl OAuthClient for HttpOAuthClient {
    async fn exchange_code<'a>(
        &self,
        spec: &OAuthSpec,
        app: &OAuthApp,
        code: &SecretString,
        redirect_uri: &str,
        verifier: Option<&'a SecretString>,
    ) -> Result<TokenGrant, TokenError> {
        let mut form =
            vec![("grant_type", "authorization_code"), ("code", code.expose_secret()), ("redirect_uri", redirect_uri)];
        if let Some(verifier) = verifier {
            form.push(("code_verifier", verifier.expose_secret()));
        }
        self.token(spec, app, &form).await
    }

    async fn refresh(
        &self,
        spec: &OAuthSpec,
        app: &OAuthApp,
        refresh_token: &SecretString,
    ) -> Result<TokenGrant, TokenError> {
        self.token(spec, app, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())])
            .await
    }

    async fn revoke(&self, spec: &OAuthSpec, app: &OAuthApp, token: &SecretString) -> Result<(), TokenError> {
        let Some(url) = &spec.revocation_url else {
            return Err(TokenError::Unreachable("no revocation endpoint".into()));
        };
        let answer = self.post(url, app, &[("token", token.expose_secret())]).await?;
        // RFC 7009 section 2.2: 200 whether or not the token was still valid.
        if answer.status.is_success() { Ok(()) } else { Err(refused(&answer)) }
    }
}
