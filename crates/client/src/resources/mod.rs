//! The API's resources, one handle each: `client.api_keys()`, `client.customers()`,
//! `client.integrations()`, `client.webhooks()`. A handle borrows the client; its methods are
//! thin: the path, the generated request and answer types, nothing else.

mod api_keys;
mod customers;
mod integrations;
mod webhooks;

pub use api_keys::ApiKeys;
pub use customers::Customers;
pub use integrations::{Integrations, ProviderFilter};
pub use webhooks::Webhooks;

use crate::Client;

impl Client {
    /// API keys: create, list, read, rotate, revoke, usage. Needs a user's session
    /// (`settings.view` to read, `settings.edit` to change).
    pub fn api_keys(&self) -> ApiKeys<'_> {
        ApiKeys { client: self }
    }

    /// Customers: the resource API keys guard. Needs an API key with `customers.read` /
    /// `customers.write`.
    pub fn customers(&self) -> Customers<'_> {
        Customers { client: self }
    }

    /// The provider catalog and connected integrations. A session, or an admin-level key with
    /// `integrations.manage`.
    pub fn integrations(&self) -> Integrations<'_> {
        Integrations { client: self }
    }

    /// Outbound webhook endpoints and their delivery log. A session, or an admin-level key
    /// with `webhooks.manage`.
    pub fn webhooks(&self) -> Webhooks<'_> {
        Webhooks { client: self }
    }
}
