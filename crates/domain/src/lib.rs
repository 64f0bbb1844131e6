//! The Otesse domain: organizations, users, API keys, customers, usage and audit, integrations
//! and webhooks, with the rules that govern them, the services that apply those rules, and the
//! ports (traits) the services need from the outside world. Four concepts every feature shares
//! have homes of their own: who is calling ([`caller`]), sealed secrets ([`sealed`]), what
//! happens ([`event`]) and the audit trail ([`audit`]).
//!
//! Invariant: this crate does no I/O and depends on no adapter (no sea-orm, actix-web, reqwest
//! or tokio runtime). Every rule is unit-tested here through mocked ports.

pub mod account;
pub mod api_key;
pub mod audit;
pub mod auth;
pub mod caller;
pub mod client;
pub mod customer;
pub mod error;
pub mod event;
pub mod idempotency;
pub mod integration;
pub mod jobs;
pub mod notification;
pub mod organization;
pub mod page;
pub mod ports;
pub mod rate_limit;
pub mod sealed;
pub mod service_token;
pub mod usage;
pub mod user;
pub mod webhook;

pub use error::StorageError;
