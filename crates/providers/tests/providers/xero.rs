//! Xero: `GET /connections` with `Authorization: Bearer <access token>`; and the OAuth client
//! against a fake token endpoint (grants, `invalid_grant`, refused client, rate limits, outages,
//! revocation).

use std::time::Duration;

use otesse_domain::integration::{HealthOutcome, OAuthApp, OAuthSpec, RefreshTokens, TokenError};
use otesse_domain::ports::OAuthClient;
use otesse_providers::HttpOAuthClient;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

use crate::{KEY, answer, garbage};

fn authorized() -> MockBuilder {
    Mock::given(method("GET")).and(path("/connections")).and(header("Authorization", format!("Bearer {KEY}").as_str()))
}

#[tokio::test]
async fn the_connections_call_is_the_health_check() {
    let tenants =
        json!([{"id": "7cb59f93-2964-421d-bb5e-a0f7a4572a44", "tenantId": "fe79f7dd", "tenantType": "ORGANISATION"}]);
    let cases = [
        (crate::json(200, tenants), HealthOutcome::Healthy, "HTTP 200 (1 tenants)"),
        (crate::json(200, json!([])), HealthOutcome::Healthy, "HTTP 200 (0 tenants)"),
        (crate::json(401, json!({"Title": "Unauthorized"})), HealthOutcome::InvalidCredentials, "HTTP 401"),
        (ResponseTemplate::new(403), HealthOutcome::InvalidCredentials, "HTTP 403"),
        (ResponseTemplate::new(429), HealthOutcome::RateLimited, "HTTP 429"),
        (ResponseTemplate::new(503), HealthOutcome::Unreachable, "HTTP 503"),
        (garbage(), HealthOutcome::Unreachable, "unexpected response (HTTP 200, body not recognised)"),
        (
            crate::json(200, json!({"tenants": []})),
            HealthOutcome::Unreachable,
            "unexpected response (HTTP 200, body not recognised)",
        ),
    ];
    for (response, outcome, detail) in cases {
        let report = answer("xero", authorized(), response).await;
        assert_eq!((report.outcome, report.detail.as_str()), (outcome, detail));
    }
}

const SECRET: &str = "client-secret-canary-x1";

fn spec(fake: &MockServer) -> OAuthSpec {
    OAuthSpec {
        authorization_url: format!("{}/authorize", fake.uri()),
        token_url: format!("{}/token", fake.uri()),
        revocation_url: Some(format!("{}/revoke", fake.uri())),
        scopes: vec!["offline_access".into()],
        pkce: true,
        refresh_tokens: RefreshTokens { rotating: true, lifetime_days: Some(60) },
    }
}

fn app() -> OAuthApp {
    OAuthApp { client_id: "client-1".into(), client_secret: SECRET.to_owned().into() }
}

fn client() -> HttpOAuthClient {
    HttpOAuthClient::new(Duration::from_secs(2), Duration::from_secs(2)).unwrap()
}

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

/// `Authorization: Basic base64("client-1:client-secret-canary-x1")`.
const BASIC: &str = "Basic Y2xpZW50LTE6Y2xpZW50LXNlY3JldC1jYW5hcnkteDE=";

#[tokio::test]
async fn a_code_is_exchanged_with_the_verifier_and_basic_client_authentication() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("Authorization", BASIC))
        .and(header("Content-Type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "grant_type=authorization_code&code=the+code&redirect_uri=https%3A%2F%2Fo.example%2Fcb&code_verifier=v-1",
        ))
        .respond_with(crate::json(
            200,
            json!({"access_token": "at", "refresh_token": "rt", "expires_in": 1800, "token_type": "Bearer"}),
        ))
        .expect(1)
        .mount(&fake)
        .await;
    let grant = client()
        .exchange_code(&spec(&fake), &app(), &secret("the code"), "https://o.example/cb", Some(&secret("v-1")))
        .await
        .unwrap();
    assert_eq!(grant.access_token.expose_secret(), "at");
    assert_eq!(grant.refresh_token.unwrap().expose_secret(), "rt");
    assert_eq!(grant.expires_in_secs, Some(1800));
}

#[tokio::test]
async fn token_endpoint_answers_are_classified() {
    let cases = [
        (crate::json(400, json!({"error": "invalid_grant"})), TokenError::InvalidGrant),
        (crate::json(400, json!({"error": "invalid_client"})), TokenError::InvalidClient("HTTP 400".into())),
        (ResponseTemplate::new(401), TokenError::InvalidClient("HTTP 401".into())),
        (ResponseTemplate::new(429), TokenError::RateLimited),
        (ResponseTemplate::new(502), TokenError::Unreachable("HTTP 502".into())),
        (
            crate::json(200, json!({"token_type": "Bearer"})),
            TokenError::Unreachable("HTTP 200 not a token answer".into()),
        ),
        (
            crate::json(400, json!({"error": "unsupported_grant_type"})),
            TokenError::Unreachable("HTTP 400 unsupported_grant_type".into()),
        ),
    ];
    for (response, expected) in cases {
        let fake = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string("grant_type=refresh_token&refresh_token=rt-1"))
            .respond_with(response)
            .mount(&fake)
            .await;
        let err = client().refresh(&spec(&fake), &app(), &secret("rt-1")).await.unwrap_err();
        assert_eq!(err, expected);
        assert!(!err.to_string().contains(SECRET) && !err.to_string().contains("rt-1"));
    }
}

#[tokio::test]
async fn a_slow_token_endpoint_is_unreachable_and_revocation_posts_the_token() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&fake)
        .await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .and(header("Authorization", BASIC))
        .and(body_string("token=rt-9"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&fake)
        .await;
    let err = client().refresh(&spec(&fake), &app(), &secret("rt-1")).await.unwrap_err();
    assert_eq!(err, TokenError::Unreachable("timed out".into()));
    client().revoke(&spec(&fake), &app(), &secret("rt-9")).await.unwrap();
}
