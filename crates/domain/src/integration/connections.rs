//! The connected apps (I10, I11): the list, one connection with its health history,
//! disconnecting, and the mapping providers' active toggle.

use uuid::Uuid;

use super::service::{ConnectionDetail, EDIT, HEALTH_HISTORY, IntegrationError, IntegrationService, VIEW};
use super::{ConnectionView, HealthCheck, ResourceType};
use crate::caller::Caller;
use crate::event::Event;

impl IntegrationService {
    /// The organization's connections, connected and disconnected, newest first (I10); needs
    /// `settings.view` or `integrations.manage`.
    pub async fn list_connections(&self, caller: &Caller) -> Result<Vec<ConnectionView>, IntegrationError> {
        caller.require(VIEW)?;
        Ok(self.ports.repository.list_connections(caller.organization_id()).await?)
    }

    /// One connection with its latest health checks, newest first (I10).
    pub async fn connection(&self, caller: &Caller, id: Uuid) -> Result<ConnectionDetail, IntegrationError> {
        caller.require(VIEW)?;
        let view = self.find(caller, id).await?;
        let history = self.ports.repository.health_history(id, HEALTH_HISTORY).await?;
        Ok(ConnectionDetail { view, history })
    }

    /// The connection's latest health checks, newest first.
    pub async fn health_history(&self, caller: &Caller, id: Uuid) -> Result<Vec<HealthCheck>, IntegrationError> {
        Ok(self.connection(caller, id).await?.history)
    }

    /// Disconnects: credentials deleted, the change recorded (I10). Returns the connection as it
    /// was.
    pub async fn disconnect(&self, caller: &Caller, id: Uuid) -> Result<ConnectionView, IntegrationError> {
        caller.require(EDIT)?;
        let view = self.find(caller, id).await?;
        // At the provider first, while the tokens are still stored; best effort (I12).
        self.revoke_tokens(&view).await;
        let now = self.ports.clock.now();
        let event = self.event(
            caller,
            Event::IntegrationDisconnected { connection_id: id, provider: view.connection.provider.clone() },
        );
        if self.ports.repository.disconnect(caller.organization_id(), id, now, &event).await? {
            Ok(view)
        } else {
            // Disconnected meanwhile by someone else, whose change was recorded.
            Err(IntegrationError::ConnectionNotFound)
        }
    }

    /// The active/inactive toggle of the mapping providers (I11).
    pub async fn set_enabled(
        &self,
        caller: &Caller,
        id: Uuid,
        enabled: bool,
    ) -> Result<ConnectionView, IntegrationError> {
        caller.require(EDIT)?;
        let view = self.find(caller, id).await?;
        let definition = self.definition(view.connection.provider.as_str())?;
        if !definition.resource_types.contains(&ResourceType::ActiveToggle) {
            return Err(IntegrationError::NotSupported);
        }
        let event = self.updated(caller, &view, "enabled", enabled.to_string());
        self.ports.repository.set_enabled(view.instance.id, enabled, self.ports.clock.now(), &event).await?;
        self.find(caller, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Mocks, actor, connected_view};
    use super::*;
    use crate::user::Role;

    #[tokio::test]
    async fn a_disconnect_is_recorded_with_the_change_and_only_then() {
        for stored in [true, false] {
            let view = connected_view("postmark");
            let id = view.connection.id;
            let mut mocks = Mocks::new();
            mocks.repository.expect_find_connection().returning(move |_, _| Ok(Some(view.clone())));
            mocks
                .repository
                .expect_disconnect()
                .withf(move |_, disconnected, _, event| {
                    *disconnected == id
                        && matches!(&event.event,
                            Event::IntegrationDisconnected { connection_id, provider }
                                if *connection_id == id && provider.as_str() == "postmark")
                })
                .times(1)
                .returning(move |_, _, _, _| Ok(stored));
            let outcome = mocks.service().disconnect(&actor(Role::Admin), id).await;
            if stored {
                assert_eq!(outcome.unwrap().connection.id, id);
            } else {
                // Disconnected meanwhile by someone else, whose change was recorded.
                assert_eq!(outcome.unwrap_err(), IntegrationError::ConnectionNotFound);
            }
        }
    }
}
