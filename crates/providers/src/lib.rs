//! Provider adapter (I6, I7, I11): [`HttpProviderClient`] implements the domain's
//! [`ProviderClient`](otesse_domain::ports::ProviderClient) port with reqwest (rustls, no
//! system TLS). A health check is one lightweight authenticated call with the provider's own
//! auth style, classified into a [`HealthOutcome`](otesse_domain::integration::HealthOutcome):
//!
//! | slug | call | credential sent as |
//! | --- | --- | --- |
//! | `postmark` | `GET https://api.postmarkapp.com/server` | header `X-Postmark-Server-Token` |
//! | `stripe` | `GET https://api.stripe.com/v1/balance` | header `Authorization: Bearer <key>` |
//! | `mapbox` | `GET https://api.mapbox.com/tokens/v2` | query `access_token` |
//! | `google_maps` | `GET https://maps.googleapis.com/maps/api/geocode/json?address=...` | query `key` |
//! | `geoapify` | `GET https://api.geoapify.com/v1/geocode/search?text=Berlin&limit=1` | query `apiKey` |
//! | `anthropic` | `GET https://api.anthropic.com/v1/models?limit=1` | headers `x-api-key`, `anthropic-version: 2023-06-01` |
//! | `quo` | `GET https://api.openphone.com/v1/phone-numbers` | header `Authorization: <key>` (no `Bearer`) |
//! | `xero` | `GET https://api.xero.com/connections` | header `Authorization: Bearer <OAuth access token>` |
//!
//! OAuth2 providers' token endpoints are reached by [`HttpOAuthClient`] (module `oauth`), from
//! the endpoints their catalog entry names; their health check takes the access token as the key.
//!
//! Each provider is one module holding a unit struct that implements the crate-private
//! `ProviderApi` trait (module `api`): its slug, its public API, the health-check request and
//! how to read the answer, and any optional operation it offers (Postmark sends email;
//! Anthropic lists models and, with an admin key as `api_secret`, reports usage). An operation
//! a module does not override answers that the provider does not offer it. Which provider
//! offers what is data, the catalog's `resource_types`, and the domain gates on it; a module
//! only says how. The module documents its endpoint, auth and error shapes, with the page they
//! were read from. The registry `PROVIDERS` lists the modules once; [`HttpProviderClient`]
//! dispatches by slug through it, and nothing else in the crate names a provider.
//!
//! Rules shared by all (module `http`): connect timeout 5 s and total timeout 10 s by default;
//! redirects are not followed; bodies are read up to [`MAX_BODY_BYTES`] and a longer one is a bad
//! response; 429 is rate limited; 5xx, refused or closed connections, timeouts and success
//! answers that are not the provider's documented shape are unreachable. The response time is
//! measured around the whole exchange.
//!
//! Invariant: a credential appears only in the one outgoing request (in a header marked
//! sensitive, or in the query string for the three providers that take it there). It is never
//! in a report's detail, a log line or an error: details are built from fixed text, status
//! codes and short provider words (never provider messages or bodies), reqwest errors (which
//! print their URL) are only inspected by kind, and a last check withholds any detail that
//! contains the key (or, for the optional operations, the `api_secret` too).
//!
//! # Adding a provider
//!
//! A new provider touches exactly three places, and nothing in the domain:
//!
//! 1. its `[[providers]]` entry in `apps/server/catalog/providers.toml` (slug, fields,
//!    `resource_types`: what the product offers for it);
//! 2. one module in `crates/providers/src/` (declared with `mod` below), its unit struct
//!    implementing `ProviderApi` and overriding the optional operations its `resource_types`
//!    need, with its wiremock tests in `crates/providers/tests/providers/`;
//! 3. one line in `PROVIDERS`, the registry below.
//!
//! A server test checks that the built-in catalog and the registry name the same slugs; at
//! start-up the server warns about each catalog provider (a deployment's extra file included)
//! without a module, whose checks report "no client for provider".

mod anthropic;
mod api;
mod client;
mod geoapify;
mod google_maps;
pub mod guard;
mod http;
mod mapbox;
mod oauth;
mod postmark;
mod quo;
mod stripe;
pub mod webhooks;
mod xero;

pub use client::{HttpProviderClient, ProviderClientConfig, ProviderClientConfigError};
pub use http::MAX_BODY_BYTES;
pub use oauth::HttpOAuthClient;
pub use webhooks::HttpWebhookSender;

/// The registry: every provider module, once. The only place a module is registered; its
/// slug must be unique (a unit test checks) and match a catalog entry (a server test checks).
const PROVIDERS: &[&dyn api::ProviderApi] = &[
    &postmark::Postmark,
    &stripe::Stripe,
    &mapbox::Mapbox,
    &google_maps::GoogleMaps,
    &geoapify::Geoapify,
    &anthropic::Anthropic,
    &quo::Quo,
    &xero::Xero,
];

/// The slugs of the providers this crate has a client for, in registry order.
pub fn slugs() -> impl Iterator<Item = &'static str> {
    PROVIDERS.iter().map(|api| api.slug())
}
