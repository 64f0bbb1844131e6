//! Managing outbound webhook endpoints (W3): create, change, delete, rotate the secret, send a
//! test event, read the delivery log.

use std::sync::Arc;

use chrono::Duration;
use secrecy::SecretString;
use uuid::Uuid;

use super::model::{
    Delivery, EndpointId, EndpointStatus, MAX_DESCRIPTION_CHARS, PREVIOUS_SECRET_HOURS, WebhookEndpoint,
    WebhookSettings,
};
use super::ports::{EndpointInsert, WebhookRepository, WebhookSender};
use crate::StorageError;
use crate::api_key::Scope;
use crate::caller::{Caller, Denied, Need};
use crate::event::{DomainEvent, Event, EventKind};
use crate::notification::NotificationRepository;
use crate::page::{Page, PageRequest};
use crate::ports::Clock;
use crate::sealed::{CredentialCipher, EndpointSlot};
use crate::user::Permission;

/// Reading endpoints needs `settings.view`, managing them `settings.edit`; a key with
/// `webhooks.manage` may do both (what it creates belongs to its creator).
pub(super) const VIEW: Need = Need::UserOrKey(Permission::SettingsView, Scope::WebhooksManage);
pub(super) const EDIT: Need = Need::UserOrKey(Permission::SettingsEdit, Scope::WebhooksManage);

/// Why an endpoint operation failed (W3).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The input is missing or out of bounds: no URL, no events, a description that is too long.
    #[error("{0}")]
    Invalid(String),
    /// An event type is not one endpoints can subscribe to (`GET /v1/event-types`).
    #[error("Unknown event type `{0}`. GET /v1/event-types lists them.")]
    UnknownEventType(String),
    /// The URL is malformed or reaches a forbidden address (W5); the reason is for the user.
    #[error("This URL cannot be used: {0}.")]
    UrlRefused(String),
    /// The organization already has this many endpoints.
    #[error("An organization can have at most {0} webhook endpoints.")]
    LimitReached(u32),
    /// The organization has no endpoint with this id.
    #[error("No such webhook endpoint.")]
    NotFound,
    /// The caller may not: a user without `settings.view` (reads) or `settings.edit` (changes),
    /// or a key without `webhooks.manage` (or a test key).
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a create or update asks for.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    /// The URL to deliver to; required on create.
    pub url: Option<String>,
    /// Event type names (`api_key.revoked`, ...); required on create, at least one.
    pub events: Option<Vec<String>>,
    /// What the endpoint is for.
    pub description: Option<String>,
    /// Only on update: re-enable (which resets the failures) or disable.
    pub status: Option<EndpointStatus>,
}

/// Manages outbound webhook endpoints and delivers events to them (W3). Built from its public
/// fields: its ports and its settings.
#[derive(Clone)]
pub struct WebhookService {
    /// Endpoints, secrets, events and deliveries.
    pub repo: Arc<dyn WebhookRepository>,
    /// Checks URLs, sends deliveries and mints secrets.
    pub sender: Arc<dyn WebhookSender>,
    /// Seals and opens the endpoints' signing secrets.
    pub cipher: Arc<dyn CredentialCipher>,
    /// Notifies an endpoint's creator when it is disabled.
    pub notifications: Arc<dyn NotificationRepository>,
    /// The time: changes, deliveries and secret rotations.
    pub clock: Arc<dyn Clock>,
    /// The limits: endpoints per organization, failures that disable an endpoint.
    pub settings: WebhookSettings,
}

fn parse_events(raw: &[String]) -> Result<Vec<EventKind>, WebhookError> {
    if raw.is_empty() {
        return Err(WebhookError::Invalid("`events` must list at least one event type.".into()));
    }
    let mut events = Vec::new();
    for name in raw {
        let event = EventKind::parse(name.trim())
            .filter(|kind| kind.delivered())
            .ok_or_else(|| WebhookError::UnknownEventType(name.clone()))?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

fn parse_description(raw: Option<String>) -> Result<String, WebhookError> {
    let description = raw.unwrap_or_default().trim().to_owned();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(WebhookError::Invalid(format!(
            "`description` must be at most {MAX_DESCRIPTION_CHARS} characters."
        )));
    }
    Ok(description)
}

impl WebhookService {
    async fn checked_url(&self, raw: &str) -> Result<String, WebhookError> {
        if raw.trim().is_empty() {
            return Err(WebhookError::Invalid("`url` is required.".into()));
        }
        self.sender.check_url(raw.trim()).await.map_err(WebhookError::UrlRefused)
    }

    /// Registers an endpoint; returns it with its secret, which is never shown again.
    pub async fn create(
        &self,
        caller: &Caller,
        input: EndpointInput,
    ) -> Result<(WebhookEndpoint, SecretString), WebhookError> {
        caller.require(EDIT)?;
        let events = parse_events(input.events.as_deref().unwrap_or_default())?;
        let description = parse_description(input.description)?;
        let url = self.checked_url(input.url.as_deref().unwrap_or_default()).await?;
        let now = self.clock.now();
        let endpoint = WebhookEndpoint {
            id: EndpointId(Uuid::now_v7()),
            organization_id: caller.organization_id(),
            url,
            description,
            events,
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            consecutive_failures: 0,
            created_by: caller.on_behalf_of(),
            created_at: now,
            updated_at: now,
        };
        let secret = self.sender.new_secret();
        let sealed = self.cipher.encrypt(&secret, &endpoint.secret_owner(EndpointSlot::Current));
        match self.repo.insert_endpoint(&endpoint, &sealed, self.settings.max_endpoints).await? {
            EndpointInsert::Inserted => Ok((endpoint, secret)),
            EndpointInsert::LimitReached => Err(WebhookError::LimitReached(self.settings.max_endpoints)),
        }
    }

    /// The organization's endpoints, oldest first.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<WebhookEndpoint>, WebhookError> {
        caller.require(VIEW)?;
        Ok(self.repo.endpoints(caller.organization_id()).await?)
    }

    /// The organization's endpoint with this id.
    pub async fn get(&self, caller: &Caller, id: EndpointId) -> Result<WebhookEndpoint, WebhookError> {
        caller.require(VIEW)?;
        self.repo.endpoint(caller.organization_id(), id).await?.ok_or(WebhookError::NotFound)
    }

    /// Changes what is given; nothing when any of it is invalid.
    pub async fn update(
        &self,
        caller: &Caller,
        id: EndpointId,
        input: EndpointInput,
    ) -> Result<WebhookEndpoint, WebhookError> {
        caller.require(EDIT)?;
        let mut endpoint = self.repo.endpoint(caller.organization_id(), id).await?.ok_or(WebhookError::NotFound)?;
        if let Some(events) = &input.events {
            endpoint.events = parse_events(events)?;
        }
        if input.description.is_some() {
            endpoint.description = parse_description(input.description)?;
        }
        if let Some(url) = &input.url {
            endpoint.url = self.checked_url(url).await?;
        }
        match input.status {
            Some(EndpointStatus::Enabled) => {
                endpoint.status = EndpointStatus::Enabled;
                endpoint.disabled_reason = None;
                endpoint.consecutive_failures = 0;
            }
            Some(EndpointStatus::Disabled) if endpoint.status == EndpointStatus::Enabled => {
                endpoint.status = EndpointStatus::Disabled;
                endpoint.disabled_reason = Some("Disabled by a user.".into());
            }
            _ => {}
        }
        endpoint.updated_at = self.clock.now();
        self.repo.update_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// Deletes the endpoint with its delivery log.
    pub async fn delete(&self, caller: &Caller, id: EndpointId) -> Result<(), WebhookError> {
        caller.require(EDIT)?;
        if self.repo.delete_endpoint(caller.organization_id(), id).await? {
            Ok(())
        } else {
            Err(WebhookError::NotFound)
        }
    }

    /// A new secret, shown once; the old one keeps signing for [`PREVIOUS_SECRET_HOURS`].
    pub async fn rotate_secret(&self, caller: &Caller, id: EndpointId) -> Result<SecretString, WebhookError> {
        caller.require(EDIT)?;
        let endpoint = self.repo.endpoint(caller.organization_id(), id).await?.ok_or(WebhookError::NotFound)?;
        let secret = self.sender.new_secret();
        let sealed = self.cipher.encrypt(&secret, &endpoint.secret_owner(EndpointSlot::Current));
        let until = self.clock.now() + Duration::hours(PREVIOUS_SECRET_HOURS);
        self.repo.rotate_secret(endpoint.id, &sealed, until).await?;
        Ok(secret)
    }

    /// Queues a `webhook.test` event to this endpoint (enabled or not: a user re-checking a
    /// disabled endpoint wants to see it work).
    pub async fn send_test(&self, caller: &Caller, id: EndpointId) -> Result<Delivery, WebhookError> {
        caller.require(EDIT)?;
        let event = DomainEvent::new(
            caller.organization_id(),
            caller.audit_actor(),
            self.clock.now(),
            Event::WebhookTest { endpoint_id: id.0 },
        );
        self.repo.send_test(&event, id).await?.ok_or(WebhookError::NotFound)
    }

    /// A page of the endpoint's delivery log, newest first.
    pub async fn deliveries(
        &self,
        caller: &Caller,
        id: EndpointId,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<Delivery, Uuid>, WebhookError> {
        caller.require(VIEW)?;
        self.repo.endpoint(caller.organization_id(), id).await?.ok_or(WebhookError::NotFound)?;
        Ok(self.repo.deliveries(caller.organization_id(), id, page).await?)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::super::ports::{MockWebhookRepository, MockWebhookSender};
    use super::super::testing::{admin, input, service};
    use super::*;
    use crate::notification::MockNotificationRepository;
    use crate::user::Role;

    #[tokio::test]
    async fn create_refuses_bad_input_before_storing_anything() {
        let mut sender = MockWebhookSender::new();
        sender.expect_check_url().returning(|_| Err("the URL's host resolves to a private address".into()));
        let svc = service(MockWebhookRepository::new(), sender, MockNotificationRepository::new());
        let unknown = svc.create(&admin(), input("https://x.example", &["api_key.deleted"])).await;
        assert!(matches!(unknown, Err(WebhookError::UnknownEventType(e)) if e == "api_key.deleted"));
        // An audited-only kind is no event type an endpoint can subscribe to.
        let audited = svc.create(&admin(), input("https://x.example", &["integration.updated"])).await;
        assert!(matches!(audited, Err(WebhookError::UnknownEventType(e)) if e == "integration.updated"));
        let none = svc.create(&admin(), input("https://x.example", &[])).await;
        assert!(matches!(none, Err(WebhookError::Invalid(_))));
        let private = svc.create(&admin(), input("http://10.0.0.1/", &["api_key.revoked"])).await;
        assert!(matches!(private, Err(WebhookError::UrlRefused(r)) if r.contains("private")));
        let long =
            EndpointInput { description: Some("x".repeat(501)), ..input("https://x.example", &["webhook.test"]) };
        assert!(matches!(svc.create(&admin(), long).await, Err(WebhookError::Invalid(_))));
        let viewer = crate::caller::fixtures::user(Role::Viewer);
        assert!(matches!(
            svc.create(&viewer, input("https://x.example", &["webhook.test"])).await,
            Err(WebhookError::Forbidden(Denied::Role(Permission::SettingsEdit)))
        ));
    }

    #[tokio::test]
    async fn create_seals_a_fresh_secret_and_returns_it_once() {
        let mut sender = MockWebhookSender::new();
        sender.expect_check_url().returning(|u| Ok(format!("{u}/")));
        sender.expect_new_secret().returning(|| SecretString::from("whsec_abc".to_owned()));
        let mut repo = MockWebhookRepository::new();
        repo.expect_insert_endpoint()
            .withf(|e, sealed, limit| {
                e.url == "https://x.example/"
                    && e.events == [EventKind::ApiKeyRevoked]
                    && sealed.bytes == b"sealed"
                    && *limit == 2
            })
            .times(1)
            .returning(|_, _, _| Ok(EndpointInsert::Inserted));
        let svc = service(repo, sender, MockNotificationRepository::new());
        let (endpoint, secret) =
            svc.create(&admin(), input("https://x.example", &["api_key.revoked", "api_key.revoked"])).await.unwrap();
        assert_eq!(secret.expose_secret(), "whsec_abc");
        assert_eq!(endpoint.status, EndpointStatus::Enabled);
    }

    #[tokio::test]
    async fn the_endpoint_limit_holds() {
        let mut sender = MockWebhookSender::new();
        sender.expect_check_url().returning(|u| Ok(u.to_owned()));
        sender.expect_new_secret().returning(|| SecretString::from("whsec_abc".to_owned()));
        let mut repo = MockWebhookRepository::new();
        repo.expect_insert_endpoint().times(1).returning(|_, _, _| Ok(EndpointInsert::LimitReached));
        let svc = service(repo, sender, MockNotificationRepository::new());
        let refused = svc.create(&admin(), input("https://x.example", &["webhook.test"])).await;
        assert!(matches!(refused, Err(WebhookError::LimitReached(2))));
    }

    #[tokio::test]
    async fn a_test_event_is_recorded_for_the_one_endpoint_named() {
        let mut repo = MockWebhookRepository::new();
        repo.expect_send_test()
            .withf(|event, endpoint| {
                *endpoint == EndpointId(Uuid::from_u128(3))
                    && event.event == Event::WebhookTest { endpoint_id: Uuid::from_u128(3) }
                    && event.organization_id == super::super::testing::org()
            })
            .times(1)
            .returning(|_, _| Ok(Some(super::super::testing::delivery())));
        let svc = service(repo, MockWebhookSender::new(), MockNotificationRepository::new());
        let delivery = svc.send_test(&admin(), EndpointId(Uuid::from_u128(3))).await.unwrap();
        assert_eq!(delivery.id, Uuid::from_u128(4));

        let mut repo = MockWebhookRepository::new();
        repo.expect_send_test().returning(|_, _| Ok(None));
        let svc = service(repo, MockWebhookSender::new(), MockNotificationRepository::new());
        assert!(matches!(svc.send_test(&admin(), EndpointId(Uuid::nil())).await, Err(WebhookError::NotFound)));
    }
}
