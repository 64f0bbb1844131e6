//! What the webhook service's tests share.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use super::endpoints::{EndpointInput, WebhookService};
use super::model::{
    Delivery, DeliveryState, EndpointId, EndpointStatus, WebhookEndpoint, WebhookEvent, WebhookSettings,
};
use super::ports::{MockWebhookRepository, MockWebhookSender};
use crate::caller::Caller;
use crate::event::EventKind;
use crate::notification::MockNotificationRepository;
use crate::organization::OrganizationId;
use crate::ports::MockClock;
use crate::sealed::{Ciphertext, MockCredentialCipher};
use crate::user::{Role, UserId};

pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

pub fn org() -> OrganizationId {
    OrganizationId(Uuid::from_u128(1))
}

pub fn admin() -> Caller {
    crate::caller::fixtures::user(Role::Admin)
}

/// Endpoint 3 of organization 1, made by user 2, subscribed to `api_key.revoked`.
pub fn endpoint() -> WebhookEndpoint {
    WebhookEndpoint {
        id: EndpointId(Uuid::from_u128(3)),
        organization_id: org(),
        url: "https://hooks.example.com/otesse".into(),
        description: String::new(),
        events: vec![EventKind::ApiKeyRevoked],
        status: EndpointStatus::Enabled,
        disabled_reason: None,
        consecutive_failures: 0,
        created_by: UserId(Uuid::from_u128(2)),
        created_at: now(),
        updated_at: now(),
    }
}

pub fn delivery() -> Delivery {
    Delivery {
        id: Uuid::from_u128(4),
        organization_id: org(),
        endpoint_id: endpoint().id,
        event_id: Uuid::from_u128(5),
        event_type: EventKind::ApiKeyRevoked,
        state: DeliveryState::Pending,
        attempts: 0,
        last_status: None,
        last_error: None,
        last_response_ms: None,
        last_attempt_at: None,
        next_attempt_at: None,
        created_at: now(),
    }
}

/// The stored event of [`delivery`].
pub fn stored_event(kind: EventKind) -> WebhookEvent {
    WebhookEvent {
        id: Uuid::from_u128(5),
        organization_id: org(),
        event_type: kind,
        payload: r#"{"id":"msg_5","type":"api_key.revoked","timestamp":"","data":{}}"#.into(),
        created_at: now(),
    }
}

/// A service whose cipher seals everything as `sealed` and opens a ciphertext as its bytes.
pub fn service(
    repo: MockWebhookRepository,
    sender: MockWebhookSender,
    notifications: MockNotificationRepository,
) -> WebhookService {
    let mut clock = MockClock::new();
    clock.expect_now().returning(now);
    let mut cipher = MockCredentialCipher::new();
    cipher.expect_encrypt().returning(|_, _| Ciphertext { key_version: 1, bytes: b"sealed".to_vec() });
    cipher.expect_decrypt().returning(|c, _| Ok(SecretString::from(String::from_utf8(c.bytes.clone()).unwrap())));
    WebhookService {
        repo: Arc::new(repo),
        sender: Arc::new(sender),
        cipher: Arc::new(cipher),
        notifications: Arc::new(notifications),
        clock: Arc::new(clock),
        settings: WebhookSettings { disable_after_failures: 2, max_endpoints: 2 },
    }
}

pub fn input(url: &str, events: &[&str]) -> EndpointInput {
    EndpointInput {
        url: Some(url.into()),
        events: Some(events.iter().map(|e| e.to_string()).collect()),
        ..EndpointInput::default()
    }
}
