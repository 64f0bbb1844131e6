//! Browsing the provider catalog with this organization's state of each provider (I1, I2).

use super::service::{IntegrationError, IntegrationService, ProviderListing, VIEW};
use super::{Category, ProviderDefinition, ProviderState};
use crate::caller::Caller;

impl IntegrationService {
    /// The catalog with this organization's connection status (I2).
    pub async fn list_providers(
        &self,
        caller: &Caller,
        q: Option<&str>,
        category: Option<Category>,
    ) -> Result<Vec<ProviderListing>, IntegrationError> {
        caller.require(VIEW)?;
        let states = self.ports.repository.provider_states(caller.organization_id()).await?;
        Ok(self
            .ports
            .catalog
            .search(q, category)
            .into_iter()
            .map(|definition| self.listing(definition, &states))
            .collect())
    }

    fn listing(&self, definition: &ProviderDefinition, states: &[ProviderState]) -> ProviderListing {
        ProviderListing {
            state: states.iter().find(|s| s.provider == definition.slug).cloned(),
            preconfigured: self.ports.preconfigured.has(&definition.slug),
            unavailable: self.oauth_of_listing(definition),
            definition: definition.clone(),
        }
    }

    /// One catalog entry with the organization's state of it (I2); needs `settings.view` or
    /// `integrations.manage`.
    pub async fn provider(&self, caller: &Caller, slug: &str) -> Result<ProviderListing, IntegrationError> {
        caller.require(VIEW)?;
        let definition = self.definition(slug)?;
        let states = self.ports.repository.provider_states(caller.organization_id()).await?;
        Ok(self.listing(definition, &states))
    }
}
