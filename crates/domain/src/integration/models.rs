//! Anthropic's model selection and usage monitoring (I11), read live from the provider.

use uuid::Uuid;

use super::service::{EDIT, IntegrationError, IntegrationService, VIEW};
use super::{ConnectionView, HealthOutcome, ProviderModel, ProviderUsageDay, ResourceType};
use crate::caller::Caller;

impl IntegrationService {
    /// Daily token usage over the last `days` days, today included (Anthropic's usage
    /// monitoring, I11). Read live from the provider with the connection's admin key: Otesse
    /// does not proxy model calls, so the provider is the only one who knows.
    pub async fn usage(
        &self,
        caller: &Caller,
        id: Uuid,
        days: u32,
    ) -> Result<Result<Vec<ProviderUsageDay>, HealthOutcome>, IntegrationError> {
        caller.require(VIEW)?;
        let view = self.find(caller, id).await?;
        let definition = self.definition(view.connection.provider.as_str())?;
        if !definition.resource_types.contains(&ResourceType::UsageMonitoring) {
            return Err(IntegrationError::NotSupported);
        }
        let credentials = self.credentials_of(&view).await?;
        if credentials.api_secret.is_none() {
            return Err(IntegrationError::AdminKeyRequired);
        }
        let today = self.ports.clock.now().date_naive();
        let since =
            (today - chrono::Days::new(u64::from(days.saturating_sub(1)))).and_time(chrono::NaiveTime::MIN).and_utc();
        Ok(self
            .ports
            .client
            .usage_report(&view.connection.provider, &credentials, since)
            .await
            .map_err(|report| report.outcome))
    }

    /// The models a connected provider offers (Anthropic's model selection).
    pub async fn models(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<Result<Vec<ProviderModel>, HealthOutcome>, IntegrationError> {
        caller.require(VIEW)?;
        let view = self.find(caller, id).await?;
        let definition = self.definition(view.connection.provider.as_str())?;
        if !definition.resource_types.contains(&ResourceType::ModelSelection) {
            return Err(IntegrationError::NotSupported);
        }
        let credentials = self.credentials_of(&view).await?;
        Ok(self
            .ports
            .client
            .list_models(&view.connection.provider, &credentials)
            .await
            .map_err(|report| report.outcome))
    }

    /// Chooses the model the organization uses with this provider (I11): it must be one the
    /// provider currently offers to these credentials.
    pub async fn select_model(
        &self,
        caller: &Caller,
        id: Uuid,
        model: &str,
    ) -> Result<Result<ConnectionView, HealthOutcome>, IntegrationError> {
        caller.require(EDIT)?;
        let offered = match self.models(caller, id).await? {
            Ok(models) => models,
            Err(outcome) => return Ok(Err(outcome)),
        };
        if !offered.iter().any(|m| m.id == model) {
            return Err(IntegrationError::UnknownModel(model.chars().take(100).collect()));
        }
        let view = self.find(caller, id).await?;
        let event = self.updated(caller, &view, "model", model.to_owned());
        self.ports
            .repository
            .set_selected_model(view.instance.id, Some(model.to_owned()), self.ports.clock.now(), &event)
            .await?;
        Ok(Ok(self.find(caller, id).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Mocks, actor, connected_view, preconfigured};
    use super::*;
    use crate::event::Event;
    use crate::user::Role;

    #[tokio::test]
    async fn only_an_offered_model_can_be_selected() {
        let mut mocks = Mocks::new();
        mocks.repository.expect_find_connection().returning(|_, _| {
            let mut view = connected_view("anthropic");
            view.connection.auth_method = super::super::AuthMethod::Preconfigured;
            Ok(Some(view))
        });
        mocks.preconfigured = preconfigured("anthropic", "k");
        mocks.client.expect_list_models().returning(|_, _| {
            Ok(vec![ProviderModel { id: "claude-sonnet-4-5".into(), display_name: "Claude Sonnet 4.5".into() }])
        });
        mocks
            .repository
            .expect_set_selected_model()
            .withf(|_, model, _, event| {
                model.as_deref() == Some("claude-sonnet-4-5")
                    && matches!(&event.event, Event::IntegrationUpdated { change, value, .. }
                        if change == "model" && value == "claude-sonnet-4-5")
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let svc = mocks.with_anthropic();
        let admin = actor(Role::Admin);
        let err = svc.select_model(&admin, Uuid::from_u128(10), "gpt-5").await.unwrap_err();
        assert_eq!(err, IntegrationError::UnknownModel("gpt-5".into()));
        assert!(svc.select_model(&admin, Uuid::from_u128(10), "claude-sonnet-4-5").await.unwrap().is_ok());
    }
}
