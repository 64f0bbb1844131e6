//! Health checks (I6, I10, O5): one on demand, and the scheduled pass over every connection,
//! which records a failure and a recovery as events (delivered to webhook endpoints) in the
//! same transaction as the check that saw it.

use uuid::Uuid;

use super::service::{EDIT, HealthChange, IntegrationError, IntegrationService};
use super::{ConnectionStatus, ConnectionView, HealthCheck, HealthOutcome, InstanceStatus};
use crate::caller::Caller;
use crate::event::{AuditActor, DomainEvent, Event};

impl IntegrationService {
    /// Re-runs the connection's health check and records it (I10).
    pub async fn check(&self, caller: &Caller, id: Uuid) -> Result<HealthCheck, IntegrationError> {
        caller.require(EDIT)?;
        let view = self.find(caller, id).await?;
        if view.connection.status != ConnectionStatus::Connected {
            return Err(IntegrationError::ConnectionNotFound);
        }
        self.run_check(&view, false).await.map(|(check, _)| check)
    }

    /// The scheduled health checks (O5): every connected connection of every organization is
    /// checked and recorded; a connection whose health changed (healthy to failing, or back)
    /// gets its event with the check. Returns those changes.
    pub async fn check_all(&self) -> Result<Vec<HealthChange>, IntegrationError> {
        let mut changes = Vec::new();
        for view in self.ports.repository.connected_connections().await? {
            let check = match self.run_check(&view, true).await {
                Ok((check, Some(recovered))) => HealthChange { view, check, recovered },
                Ok((_, None)) => continue,
                // One undecryptable connection must not stop the others' checks, nor one
                // disconnected since the list was read.
                // Nor an OAuth connection whose token could not be refreshed (marked for
                // re-authorization when the provider refused it).
                Err(
                    IntegrationError::Undecryptable
                    | IntegrationError::ConnectionNotFound
                    | IntegrationError::NeedsReauthorization(_)
                    | IntegrationError::TokenRefreshFailed(_),
                ) => continue,
                Err(err) => return Err(err),
            };
            changes.push(check);
        }
        Ok(changes)
    }

    /// Checks and records; with `announce`, a change of health is recorded as its event. The
    /// check, and whether it is a recovery (`Some(true)`) or a new failure (`Some(false)`).
    async fn run_check(
        &self,
        view: &ConnectionView,
        announce: bool,
    ) -> Result<(HealthCheck, Option<bool>), IntegrationError> {
        let id = view.connection.id;
        let credentials = self.credentials_of(view).await?;
        let report = self.ports.client.health_check(&view.connection.provider, &credentials).await;
        let check = HealthCheck {
            id: Uuid::now_v7(),
            connection_id: id,
            outcome: report.outcome,
            response_time_ms: report.response_time_ms,
            detail: report.detail,
            checked_at: self.ports.clock.now(),
        };
        let was_healthy = view.latest_health.as_ref().is_none_or(|h| h.outcome == HealthOutcome::Healthy);
        let is_healthy = check.outcome == HealthOutcome::Healthy;
        let changed = (announce && was_healthy != is_healthy).then_some(is_healthy);
        let event = changed.map(|recovered| {
            let at = check.checked_at;
            let (connection_id, provider, check) = (id, view.connection.provider.clone(), check.clone());
            let event = if recovered {
                Event::HealthCheckRecovered { connection_id, provider, check }
            } else {
                Event::HealthCheckFailed { connection_id, provider, check }
            };
            DomainEvent::new(view.connection.organization_id, AuditActor::System, at, event)
        });
        let status = if is_healthy { InstanceStatus::Active } else { InstanceStatus::Error };
        self.ports.repository.record_health(&check, view.instance.id, status, event.as_ref()).await?;
        Ok((check, changed))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use chrono::Utc;

    use super::super::testing::{Mocks, connected_view, preconfigured};
    use super::super::{AuthMethod, HealthReport};
    use super::*;

    fn view(id: u128, last: Option<HealthOutcome>) -> ConnectionView {
        let mut view = connected_view("postmark");
        view.connection.id = Uuid::from_u128(id);
        view.connection.auth_method = AuthMethod::Preconfigured;
        view.latest_health = last.map(|outcome| HealthCheck {
            id: Uuid::now_v7(),
            connection_id: view.connection.id,
            outcome,
            response_time_ms: 5,
            detail: String::new(),
            checked_at: Utc::now(),
        });
        view
    }

    /// A check that raced a disconnect finds the credentials gone: the connection is not
    /// found (404), not a broken ciphertext (500), and nothing is called or recorded.
    #[tokio::test]
    async fn a_check_that_raced_a_disconnect_finds_no_connection() {
        let mut mocks = Mocks::new();
        let connected = super::super::testing::connected_view("postmark");
        assert_eq!(connected.connection.auth_method, AuthMethod::ApiKey);
        let id = connected.connection.id;
        mocks.repository.expect_find_connection().returning(move |_, _| Ok(Some(connected.clone())));
        mocks.repository.expect_credentials().returning(|_| Ok(vec![]));
        mocks.client.expect_health_check().never();
        mocks.repository.expect_record_health().never();
        let err = mocks.service().check(&super::super::testing::actor(crate::user::Role::Admin), id).await;
        assert_eq!(err.unwrap_err(), IntegrationError::ConnectionNotFound);
    }

    #[tokio::test]
    async fn a_change_of_health_is_recorded_as_its_event_with_the_check() {
        let mut mocks = Mocks::new();
        mocks.repository.expect_connected_connections().returning(|| {
            Ok(vec![
                view(1, Some(HealthOutcome::Healthy)),
                view(2, Some(HealthOutcome::Healthy)),
                view(3, Some(HealthOutcome::Unreachable)),
            ])
        });
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let sink = recorded.clone();
        mocks.repository.expect_record_health().times(3).returning(move |check, _, status, event| {
            let expected =
                if check.outcome == HealthOutcome::Healthy { InstanceStatus::Active } else { InstanceStatus::Error };
            assert_eq!(status, expected);
            sink.lock().unwrap().push((check.connection_id.as_u128(), event.cloned()));
            Ok(())
        });
        let outcomes = Mutex::new(vec![HealthOutcome::Healthy, HealthOutcome::Unreachable, HealthOutcome::Healthy]);
        mocks.client.expect_health_check().times(3).returning(move |_, _| HealthReport {
            outcome: outcomes.lock().unwrap().pop().unwrap(),
            response_time_ms: 3,
            detail: "HTTP".into(),
        });
        mocks.preconfigured = preconfigured("postmark", "k");
        let changes = mocks.service().check_all().await.unwrap();
        let summary: Vec<_> = changes.iter().map(|c| (c.view.connection.id.as_u128(), c.recovered)).collect();
        // 1 stays healthy, 2 starts failing, 3 recovers.
        assert_eq!(summary, [(2, false), (3, true)]);
        let recorded = recorded.lock().unwrap();
        assert_eq!(recorded[0], (1, None), "no change, no event");
        let failed = recorded[1].1.as_ref().expect("the failure is recorded");
        assert!(matches!(&failed.event, Event::HealthCheckFailed { connection_id, check, .. }
            if connection_id.as_u128() == 2 && check.outcome == HealthOutcome::Unreachable));
        assert_eq!(failed.actor, AuditActor::System);
        let recovered = recorded[2].1.as_ref().expect("the recovery is recorded");
        assert!(
            matches!(&recovered.event, Event::HealthCheckRecovered { connection_id, .. } if connection_id.as_u128() == 3)
        );
    }

    #[tokio::test]
    async fn a_check_on_demand_records_no_event() {
        let mut mocks = Mocks::new();
        mocks.repository.expect_find_connection().returning(|_, _| Ok(Some(view(1, Some(HealthOutcome::Healthy)))));
        mocks.client.expect_health_check().returning(|_, _| HealthReport {
            outcome: HealthOutcome::Unreachable,
            response_time_ms: 3,
            detail: "HTTP 503".into(),
        });
        mocks
            .repository
            .expect_record_health()
            .withf(|_, _, _, event| event.is_none())
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        mocks.preconfigured = preconfigured("postmark", "k");
        let caller = super::super::testing::actor(crate::user::Role::Admin);
        let check = mocks.service().check(&caller, Uuid::from_u128(1)).await.unwrap();
        assert_eq!(check.outcome, HealthOutcome::Unreachable);
    }
}
