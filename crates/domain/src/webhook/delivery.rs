//! Delivering outbound webhooks (W3): one attempt at a time, from the job worker, signed with
//! the endpoint's secrets; failures count towards disabling the endpoint, whose owner is then
//! notified once.

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use super::endpoints::WebhookService;
use super::model::{Attempt, DeliveryState, EndpointStatus, KEEP_DELIVERIES_DAYS, SendOutcome, WebhookEndpoint};
use crate::StorageError;
use crate::event::EventKind;
use crate::notification::{Notification, NotificationKind};
use crate::sealed::{Ciphertext, EndpointSlot};

impl WebhookService {
    /// Prunes the delivery log: finished deliveries older than [`KEEP_DELIVERIES_DAYS`].
    pub async fn prune(&self) -> Result<u64, StorageError> {
        self.repo.prune(self.clock.now() - Duration::days(KEEP_DELIVERIES_DAYS)).await
    }

    /// One attempt of a delivery, from the job worker. `retry_at` is when the job runs again if
    /// this attempt fails (None: this is the last one). `Err` asks the worker to retry.
    pub async fn deliver(&self, delivery_id: Uuid, retry_at: Option<DateTime<Utc>>) -> Result<String, String> {
        let found = self.repo.delivery(delivery_id).await.map_err(|e| e.to_string())?;
        let Some((delivery, endpoint, event)) = found else {
            return Ok("the endpoint was deleted".into());
        };
        if delivery.state != DeliveryState::Pending {
            return Ok(format!("already {}", delivery.state.as_str()));
        }
        let now = self.clock.now();
        let finished = |state, error: &str| Attempt {
            state,
            status: None,
            error: Some(error.to_owned()),
            response_ms: None,
            at: now,
            next_attempt_at: None,
        };
        if endpoint.status == EndpointStatus::Disabled && event.event_type != EventKind::WebhookTest {
            let attempt = finished(DeliveryState::Failed, "the endpoint is disabled");
            self.repo.record_attempt(delivery.id, &attempt).await.map_err(|e| e.to_string())?;
            return Ok("the endpoint is disabled".into());
        }
        let secrets = self.secrets(&endpoint, now).await.map_err(|e| e.to_string())?;
        let outcome =
            self.sender.send(&endpoint.url, &secrets, &event.message_id(), now.timestamp(), &event.payload).await;
        let (status, error, response_ms, permanent) = match outcome {
            SendOutcome::Answered { status, response_ms } if (200..300).contains(&status) => {
                let attempt = Attempt {
                    state: DeliveryState::Succeeded,
                    status: Some(status),
                    error: None,
                    response_ms: Some(response_ms),
                    at: now,
                    next_attempt_at: None,
                };
                self.repo.record_attempt(delivery.id, &attempt).await.map_err(|e| e.to_string())?;
                // Resets the count of consecutive failures, when there is one: most deliveries
                // reach an endpoint that has none, and skipping the write spares SQLite's one
                // writer a commit per delivery. (Deliveries running at once finish in any order,
                // so the count is as exact as it was with the write.)
                if endpoint.consecutive_failures > 0 {
                    self.repo.endpoint_succeeded(endpoint.id).await.map_err(|e| e.to_string())?;
                }
                return Ok(format!("delivered ({status})"));
            }
            SendOutcome::Answered { status, response_ms } if (300..400).contains(&status) => (
                Some(status),
                format!("the receiver answered {status}; redirects are not followed"),
                Some(response_ms),
                false,
            ),
            SendOutcome::Answered { status, response_ms } => {
                (Some(status), format!("the receiver answered {status}"), Some(response_ms), false)
            }
            SendOutcome::Failed { error, response_ms } => (None, error, Some(response_ms), false),
            SendOutcome::Refused { reason } => (None, format!("the URL was refused: {reason}"), None, true),
        };
        let next = if permanent { None } else { retry_at };
        let attempt = Attempt {
            state: if next.is_some() { DeliveryState::Pending } else { DeliveryState::Failed },
            status,
            error: Some(error.clone()),
            response_ms,
            at: now,
            next_attempt_at: next,
        };
        self.repo.record_attempt(delivery.id, &attempt).await.map_err(|e| e.to_string())?;
        let reason = format!(
            "Disabled after {} consecutive failed delivery attempts; the last: {error}.",
            self.settings.disable_after_failures
        );
        let disabled = self
            .repo
            .endpoint_failed(endpoint.id, self.settings.disable_after_failures, &reason, now)
            .await
            .map_err(|e| e.to_string())?;
        if disabled {
            self.notify_disabled(&endpoint, &reason, now).await.map_err(|e| e.to_string())?;
        }
        match next {
            Some(_) => Err(error),
            None => Ok(format!("given up: {error}")),
        }
    }

    async fn secrets(&self, endpoint: &WebhookEndpoint, now: DateTime<Utc>) -> Result<Vec<SecretString>, StorageError> {
        let Some(stored) = self.repo.secrets(endpoint.id).await? else {
            return Ok(Vec::new());
        };
        // Both slots are bound alike: a rotation moves the current secret over as it is.
        let bound = endpoint.secret_owner(EndpointSlot::Current);
        let unseal = |sealed: &Ciphertext| {
            self.cipher
                .decrypt(sealed, &bound)
                .map_err(|_| StorageError::new(format!("webhook endpoint {} secret does not decrypt", endpoint.id.0)))
        };
        let mut secrets = vec![unseal(&stored.current)?];
        // A previous secret whose master key was retired meanwhile is simply no longer sent.
        if let Some((previous, until)) = &stored.previous
            && *until > now
            && let Ok(previous) = unseal(previous)
        {
            secrets.push(previous);
        }
        Ok(secrets)
    }

    async fn notify_disabled(
        &self,
        endpoint: &WebhookEndpoint,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let notification = Notification {
            id: Uuid::now_v7(),
            organization_id: endpoint.organization_id,
            user_id: endpoint.created_by,
            kind: NotificationKind::WebhookEndpointDisabled,
            title: "A webhook endpoint was disabled".into(),
            body: format!(
                "Deliveries to {} kept failing, so the endpoint was disabled. {reason} Fix the receiver, then \
                 enable the endpoint again.",
                endpoint.url
            ),
            subject: format!("webhook_endpoint:{}", endpoint.id.0),
            created_at: now,
            read_at: None,
        };
        let dedupe = format!("webhook_endpoint.disabled:{}:{}", endpoint.id.0, now.timestamp_millis());
        self.notifications.insert(&notification, &dedupe, None).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::super::model::{EndpointSecrets, SendOutcome};
    use super::super::ports::{MockWebhookRepository, MockWebhookSender};
    use super::super::testing::{delivery, endpoint, now, service, stored_event};
    use super::*;
    use crate::notification::MockNotificationRepository;
    use crate::user::UserId;

    fn repo_with_delivery(previous_until: Option<DateTime<Utc>>) -> MockWebhookRepository {
        repo_with_failures(previous_until, 0)
    }

    /// A repository holding the pending delivery, its event and an endpoint with `failures`
    /// consecutive failed deliveries.
    fn repo_with_failures(previous_until: Option<DateTime<Utc>>, failures: u32) -> MockWebhookRepository {
        let mut repo = MockWebhookRepository::new();
        repo.expect_delivery().returning(move |_| {
            let endpoint = WebhookEndpoint { consecutive_failures: failures, ..endpoint() };
            Ok(Some((delivery(), endpoint, stored_event(EventKind::ApiKeyRevoked))))
        });
        repo.expect_secrets().returning(move |_| {
            Ok(Some(EndpointSecrets {
                current: Ciphertext { key_version: 1, bytes: b"whsec_new".to_vec() },
                previous: previous_until
                    .map(|until| (Ciphertext { key_version: 1, bytes: b"whsec_old".to_vec() }, until)),
            }))
        });
        repo
    }

    #[tokio::test]
    async fn a_2xx_is_a_success_that_resets_the_failures() {
        let mut repo = repo_with_failures(None, 2);
        repo.expect_record_attempt()
            .withf(|_, a| a.state == DeliveryState::Succeeded && a.status == Some(204))
            .times(1)
            .returning(|_, _| Ok(()));
        repo.expect_endpoint_succeeded().times(1).returning(|_| Ok(()));
        repo.expect_endpoint_failed().never();
        let mut sender = MockWebhookSender::new();
        sender
            .expect_send()
            .withf(|url, secrets, id, ts, body| {
                url == "https://hooks.example.com/otesse"
                    && secrets.len() == 1
                    && id == crate::event::message_id(Uuid::from_u128(5))
                    && *ts == now().timestamp()
                    && body == stored_event(EventKind::ApiKeyRevoked).payload
            })
            .returning(|_, _, _, _, _| SendOutcome::Answered { status: 204, response_ms: 5 });
        let svc = service(repo, sender, MockNotificationRepository::new());
        assert_eq!(svc.deliver(Uuid::from_u128(4), Some(now())).await, Ok("delivered (204)".into()));
    }

    #[tokio::test]
    async fn a_2xx_to_an_endpoint_without_failures_writes_only_the_attempt() {
        let mut repo = repo_with_delivery(None);
        repo.expect_record_attempt()
            .withf(|_, a| a.state == DeliveryState::Succeeded)
            .times(1)
            .returning(|_, _| Ok(()));
        repo.expect_endpoint_succeeded().never();
        repo.expect_endpoint_failed().never();
        let mut sender = MockWebhookSender::new();
        sender.expect_send().times(1).returning(|_, _, _, _, _| SendOutcome::Answered { status: 200, response_ms: 5 });
        let svc = service(repo, sender, MockNotificationRepository::new());
        assert_eq!(svc.deliver(Uuid::from_u128(4), Some(now())).await, Ok("delivered (200)".into()));
    }

    #[tokio::test]
    async fn during_a_rotation_both_secrets_sign_and_after_it_only_the_new_one() {
        for (until, expected) in [(now() + Duration::hours(1), 2), (now() - Duration::seconds(1), 1)] {
            let mut repo = repo_with_delivery(Some(until));
            repo.expect_record_attempt().returning(|_, _| Ok(()));
            repo.expect_endpoint_succeeded().returning(|_| Ok(()));
            let mut sender = MockWebhookSender::new();
            sender
                .expect_send()
                .withf(move |_, secrets, _, _, _| {
                    secrets.len() == expected && secrets[0].expose_secret() == "whsec_new"
                })
                .times(1)
                .returning(|_, _, _, _, _| SendOutcome::Answered { status: 200, response_ms: 5 });
            let svc = service(repo, sender, MockNotificationRepository::new());
            svc.deliver(Uuid::from_u128(4), None).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_failure_is_retried_and_the_endpoint_disabled_once_at_the_threshold() {
        let retry = now() + Duration::seconds(30);
        let mut repo = repo_with_delivery(None);
        repo.expect_record_attempt()
            .withf(move |_, a| {
                a.state == DeliveryState::Pending && a.status == Some(500) && a.next_attempt_at == Some(retry)
            })
            .times(1)
            .returning(|_, _| Ok(()));
        repo.expect_endpoint_failed()
            .withf(|_, threshold, _, _| *threshold == 2)
            .times(1)
            .returning(|_, _, _, _| Ok(true));
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_insert()
            .withf(|n, _, event| {
                n.kind == NotificationKind::WebhookEndpointDisabled
                    && n.user_id == UserId(Uuid::from_u128(2))
                    && event.is_none()
            })
            .times(1)
            .returning(|_, _, _| Ok(true));
        let mut sender = MockWebhookSender::new();
        sender.expect_send().returning(|_, _, _, _, _| SendOutcome::Answered { status: 500, response_ms: 5 });
        let svc = service(repo, sender, notifications);
        assert_eq!(svc.deliver(Uuid::from_u128(4), Some(retry)).await, Err("the receiver answered 500".into()));
    }

    #[tokio::test]
    async fn the_last_attempt_and_a_refused_url_give_up() {
        for (outcome, retry) in [
            (SendOutcome::Failed { error: "timed out".into(), response_ms: 10_000 }, None),
            (SendOutcome::Refused { reason: "private address".into() }, Some(now())),
        ] {
            let mut repo = repo_with_delivery(None);
            repo.expect_record_attempt()
                .withf(|_, a| a.state == DeliveryState::Failed && a.next_attempt_at.is_none())
                .times(1)
                .returning(|_, _| Ok(()));
            repo.expect_endpoint_failed().returning(|_, _, _, _| Ok(false));
            let mut sender = MockWebhookSender::new();
            sender.expect_send().return_once(move |_, _, _, _, _| outcome);
            let svc = service(repo, sender, MockNotificationRepository::new());
            let result = svc.deliver(Uuid::from_u128(4), retry).await.unwrap();
            assert!(result.starts_with("given up"), "{result}");
        }
    }

    #[tokio::test]
    async fn nothing_is_sent_to_a_disabled_endpoint() {
        let mut repo = MockWebhookRepository::new();
        repo.expect_delivery().returning(|_| {
            let mut disabled = endpoint();
            disabled.status = EndpointStatus::Disabled;
            Ok(Some((delivery(), disabled, stored_event(EventKind::ApiKeyRevoked))))
        });
        repo.expect_record_attempt().withf(|_, a| a.state == DeliveryState::Failed).times(1).returning(|_, _| Ok(()));
        let mut sender = MockWebhookSender::new();
        sender.expect_send().never();
        let svc = service(repo, sender, MockNotificationRepository::new());
        svc.deliver(Uuid::from_u128(4), Some(now())).await.unwrap();
    }
}
