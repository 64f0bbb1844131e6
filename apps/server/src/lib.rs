//! The Otesse API-key and integrations server: configuration, wiring, HTTP routes and
//! middleware over the domain services. `main.rs` only loads settings and runs [`startup`].

pub mod catalog;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod embedded;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod identify;
pub mod jobs;
pub mod key_invalidation;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod routes;
pub mod service_tokens;
pub mod startup;
pub mod support;
pub mod telemetry;
pub mod usage;
