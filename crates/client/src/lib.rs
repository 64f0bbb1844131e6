//! A Rust client for Otesse's API-key and integrations service, doing what the platform's
//! developer guide asks of every client:
//!
//! - **Retries** after a `429`, a `5xx` or a failed connection, with exponential backoff and
//!   full jitter, or after the server's `Retry-After` ([`RetryPolicy`]: 3 retries by default).
//!   Other `4xx` answers are never retried.
//! - **Idempotency keys**: every `POST` (creating a key, a customer, a webhook endpoint,
//!   connecting an integration, rotating a key) sends an `Idempotency-Key`, one UUID v4 per
//!   call, the same on each of its retries, so a retry never makes a second resource. A retry
//!   whose first attempt made something that held a secret fails with
//!   [`Error::SecretAlreadyShown`] naming it: the server shows a secret once.
//! - **Errors** ([`Error`]) carry the server's status, `type`, `code` and `message`
//!   ([`ApiError`]); network failures are their own variant. No secret is printed: the API key
//!   and every secret the API answers are [`Secret`]s or `secrecy` strings.
//! - **Pagination**: the `list` methods stream every item (`impl Stream<Item = Result<T,
//!   Error>>`), fetching pages as the stream is read; the `list_page` methods fetch one page.
//! - **Webhook verification**: [`webhooks`] is the `otesse-webhook-signature` crate, which the
//!   server signs its deliveries with.
//!
//! The request and answer types ([`generated`]) are generated from the server's OpenAPI
//! document; this crate adds the methods, the retries and the streams.
//!
//! ```no_run
//! use futures_util::TryStreamExt;
//! use otesse_client::Client;
//! use otesse_client::generated::CreateCustomerRequest;
//!
//! # async fn example() -> Result<(), otesse_client::Error> {
//! let base_url = std::env::var("OTESSE_API_BASE_URL").unwrap_or("http://127.0.0.1:8080/v1".into());
//! let api_key = std::env::var("OTESSE_API_KEY").expect("OTESSE_API_KEY");
//! let client = Client::with_api_key(base_url, api_key)?;
//!
//! let customer = client
//!     .customers()
//!     .create(&CreateCustomerRequest { name: "Ada Lovelace".into(), email: None, phone: None })
//!     .await?;
//! println!("created {}", customer.id);
//!
//! // Every customer, 100 per page.
//! let customers: Vec<_> = client.customers().list(Some(100)).try_collect().await?;
//! println!("{} customers", customers.len());
//!
//! match client.customers().get(customer.id).await {
//!     Ok(customer) => println!("{}", customer.name),
//!     Err(otesse_client::Error::Api(error)) => eprintln!("{} ({}): {}", error.code, error.status, error.message),
//!     Err(other) => return Err(other),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Key management needs a user's session: `Client::builder(base_url).sign_in(email,
//! password).await?` answers a client holding one.

#![deny(missing_docs)]

mod client;
mod error;
mod pagination;
mod resources;
mod retry;
mod secret;

#[rustfmt::skip]
pub mod generated;

pub use client::{Client, ClientBuilder, IDEMPOTENCY_KEY};
pub use error::{ApiError, Error};
pub use pagination::{ListParams, Page};
pub use resources::{ApiKeys, Customers, Integrations, ProviderFilter, Webhooks};
pub use retry::RetryPolicy;
pub use secret::Secret;

/// Verifying the signatures of Otesse's webhook deliveries (Standard Webhooks: `webhook-id`,
/// `webhook-timestamp`, `webhook-signature`, `whsec_` secrets): the `otesse-webhook-signature`
/// crate the server signs them with.
pub use otesse_webhook_signature as webhooks;

/// The Rust examples of this crate's README and of the workspace's README ("Rust client"),
/// compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;
