//! A Rust client for Otesse's API-key and integrations service. This first part holds its
//! request and answer types ([`generated`]), generated from the server's OpenAPI document.

#![deny(missing_docs)]

mod secret;

#[rustfmt::skip]
pub mod generated;

pub use secret::Secret;
