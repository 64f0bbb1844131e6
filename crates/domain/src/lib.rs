//! The Otesse domain: organizations, users, API keys, customers, usage and audit, integrations
//! and webhooks, with the rules that govern them, the services that apply those rules, and the
//! ports (traits) the services need from the outside world. Four concepts every feature shares
//! have homes of their own: who is calling ([`caller`]), sealed secrets ([`sealed`]), what
//! happens ([`event`]) and the audit trail ([`audit`]).
//!
//! Invariant: this crate does no I/O and depends on no adapter (no sea-orm, actix-web, reqwest
//! or tokio runtime). Every rule is unit-tested here through mocked ports; with the `mocks`
//! feature, other crates' tests get the same mockall mocks ([`ports`] gathers them).
//!
//! # Example
//!
//! The rules on API keys need no port at all: a key's name, the spelling of scopes, the shape of
//! a presented key, and [`authorize`](api_key::authorize), the one table of scope levels,
//! methods and resources (K1, K3-K5).
//!
//! ```
//! use otesse_domain::api_key::{
//!     AccessDenied, ApiKeyName, Environment, NameError, PresentedKey, RequestMethod, Resource, Scope, ScopeLevel,
//!     authorize,
//! };
//!
//! // A name is trimmed, then checked; bad input is refused with a reason.
//! assert_eq!(ApiKeyName::parse("  Zapier sync ").unwrap().as_str(), "Zapier sync");
//! assert_eq!(ApiKeyName::parse("   "), Err(NameError::Empty));
//! assert_eq!(ApiKeyName::parse("line\nbreak"), Err(NameError::ControlCharacter));
//!
//! // Both spellings name one scope; the catalog says which scopes only admins may grant.
//! assert_eq!(Scope::parse("customers:write"), Some(Scope::CustomersWrite));
//! assert!(Scope::SettingsWrite.info().sensitive && !Scope::CustomersWrite.info().sensitive);
//!
//! // A Read-Only key reads what its scopes allow, and never writes, whatever it holds.
//! let scopes = [Scope::CustomersRead, Scope::CustomersWrite];
//! let customers = Some(Resource::Customers);
//! assert_eq!(authorize(ScopeLevel::ReadOnly, &scopes, RequestMethod::Get, customers), Ok(()));
//! assert_eq!(
//!     authorize(ScopeLevel::ReadOnly, &scopes, RequestMethod::Post, customers),
//!     Err(AccessDenied::MethodNotAllowed(RequestMethod::Post)),
//! );
//! assert_eq!(authorize(ScopeLevel::ReadWrite, &scopes, RequestMethod::Post, customers), Ok(()));
//! // A Read-Write key needs the route's scope, and never reaches the admin resources.
//! assert_eq!(
//!     authorize(ScopeLevel::ReadWrite, &scopes, RequestMethod::Get, Some(Resource::Invoices)),
//!     Err(AccessDenied::MissingScope(Scope::InvoicesRead)),
//! );
//! assert_eq!(
//!     authorize(ScopeLevel::ReadWrite, &[Scope::SettingsRead], RequestMethod::Get, Some(Resource::Settings)),
//!     Err(AccessDenied::LevelTooLow),
//! );
//!
//! // A presented key is checked for shape before anything is looked up; its prefix names
//! // the data it reaches.
//! let presented = PresentedKey::parse("erp_test_0123456789abcdefghijABCDEFGHIJ0123456789").unwrap();
//! assert_eq!(presented.environment(), Environment::Test);
//! assert!(PresentedKey::parse("erp_live_tooshort").is_err());
//! assert!(PresentedKey::parse("sk_live_0123456789abcdefghijABCDEFGHIJ0123456789").is_err());
//! ```

#![deny(missing_docs)]

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
