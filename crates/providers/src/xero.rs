//! Xero (accounting), connected with OAuth2 (authorization code; the catalog entry holds the
//! endpoints, scopes and refresh-token behaviour).
//!
//! - Health check: `GET https://api.xero.com/connections` with `Authorization: Bearer <access
//!   token>`: the tenants (organisations) the user connected to this app, a JSON array (empty
//!   when none). It needs no `Xero-Tenant-Id` header, unlike the accounting API.
//! - Answers: 200 with the array; 401 for a token that is expired, revoked or not Xero's
//!   (invalid); 403 (invalid: the grant does not allow it); 429 rate limited; 5xx Xero's side.
//! - OAuth (catalog): authorize at `https://login.xero.com/identity/connect/authorize`, token
//!   at `https://identity.xero.com/connect/token` (client id and secret by HTTP Basic);
//!   access tokens live 30 minutes; refresh tokens rotate (each refresh answers a new one, the
//!   old one still works for a 30-minute grace period) and expire after 60 days unused;
//!   `offline_access` is the scope that grants a refresh token.
//!
//! Read from <https://developer.xero.com/faq/oauth2> (token lifetimes, rotation and grace
//! period, PKCE only for apps without a secret), <https://developer.xero.com/documentation/oauth2/pkce-flow>
//! (authorization URL and parameters, scopes, the connections call), and Xero's identity
//! OpenAPI document <https://github.com/XeroAPI/Xero-OpenAPI/blob/master/xero-identity.yaml>
//! (`GET /Connections` on `https://api.xero.com`, its 200 array of connections).
//!
//! Not confirmed from a Xero page: the token revocation endpoint
//! (`https://identity.xero.com/connect/revocation` is what clients of Xero's identity server
//! call, but no Xero document read here states it), so the built-in catalog entry does not
//! name one and a disconnect does not revoke at Xero; a deployment that has confirmed it may
//! add `revocation_url` in its own catalog file. PKCE is documented by Xero for apps registered
//! as "Auth Code with PKCE" (which get no client secret); Otesse registers as a web app with a
//! secret, so the entry sends no challenge.

use reqwest::RequestBuilder;
use reqwest::header::AUTHORIZATION;

use crate::api::ProviderApi;
use crate::http::{Answer, BaseUrl, Http, Verdict, by_status, secret_header};

const DEFAULT_BASE_URL: &str = "https://api.xero.com";

/// Xero's client: a health check with an OAuth access token.
#[derive(Debug)]
pub(crate) struct Xero;

impl ProviderApi for Xero {
    fn slug(&self) -> &'static str {
        "xero"
    }

    fn default_base_url(&self) -> &'static str {
        DEFAULT_BASE_URL
    }

    fn health_request(&self, http: &Http, base: &BaseUrl, key: &str) -> Result<RequestBuilder, Verdict> {
        Ok(http.get(base.endpoint("/connections", &[])).header(AUTHORIZATION, secret_header(&format!("Bearer {key}"))?))
    }

    fn classify(&self, answer: &Answer) -> Verdict {
        let status = answer.status;
        match status.as_u16() {
            200..=299 => match answer.json::<Vec<serde_json::Value>>() {
                Some(connections) => {
                    Verdict::healthy(format!("HTTP {} ({} tenants)", status.as_u16(), connections.len()))
                }
                None => Verdict::unexpected_body(status),
            },
            401 | 403 => Verdict::invalid(format!("HTTP {}", status.as_u16())),
            _ => by_status(status),
        }
    }
}
