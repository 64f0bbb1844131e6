//! Stripe's post-connection resources (I11) and its inbound webhooks (W4).
//!
//! A webhook endpoint is what the organization registered in its Stripe dashboard: the events
//! it subscribed to and the signing secret (`whsec_...`) Stripe showed for it. The endpoint's
//! URL is Otesse's receiving route for it, so Stripe's deliveries land here; each one is
//! checked against that secret (with a tolerance window), de-duplicated by Stripe's event id,
//! and stored. The secret is sealed like a credential (AES-256-GCM, bound to the organization,
//! the endpoint and the field) and never shown again.
//!
//! Invariants:
//! - Nothing unverified is stored: an event is recorded only after its signature matched.
//! - One stored event per (endpoint, Stripe event id), however often Stripe retries.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use super::{
    CredentialBinding, CredentialField, IntegrationError, ResourceType,
    service::{EDIT, VIEW},
};
use crate::StorageError;
use crate::audit::{AuditAction, AuditEntry};
use crate::caller::Caller;
use crate::integration::{Catalog, Ciphertext, ConnectionView};
use crate::organization::OrganizationId;
use crate::page::{Page, PageRequest};
use crate::ports::{AuditLog, Clock, CredentialCipher, DecryptError, IntegrationRepository};

/// Endpoints one connection may have.
pub const MAX_ENDPOINTS_PER_CONNECTION: usize = 16;
/// Event types one endpoint may list.
const MAX_EVENTS: usize = 100;

/// An endpoint registered in Stripe whose deliveries Otesse receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeWebhookEndpoint {
    pub id: Uuid,
    pub organization_id: OrganizationId,
    /// The Stripe connection it belongs to; disconnecting deletes it.
    pub connection_id: Uuid,
    pub description: String,
    /// Stripe event types (`charge.succeeded`), or `*` for all.
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// When its newest event arrived (read, not stored).
    pub last_event_at: Option<DateTime<Utc>>,
}

impl StripeWebhookEndpoint {
    /// What its signing secret is bound to.
    pub fn secret_binding(&self) -> CredentialBinding {
        CredentialBinding {
            organization_id: self.organization_id,
            connection_id: self.id,
            field: CredentialField::WebhookSigningSecret,
        }
    }
}

/// A verified event as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEvent {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub organization_id: OrganizationId,
    /// Stripe's id (`evt_...`), the de-duplication key.
    pub event_id: String,
    pub event_type: String,
    pub livemode: bool,
    /// The body exactly as Stripe sent it.
    pub payload: String,
    pub received_at: DateTime<Utc>,
}

/// What the receiving route read from the body before the signature is checked (untrusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEventHeader {
    pub event_id: String,
    pub event_type: String,
    pub livemode: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookEndpointError {
    #[error("events must list 1 to 100 Stripe event types such as \"charge.succeeded\", or \"*\"; {0:?} is not one")]
    InvalidEvent(String),
    #[error("events must list 1 to 100 Stripe event types such as \"charge.succeeded\", or \"*\"")]
    NoEvents,
    #[error("signing_secret must be the endpoint's signing secret from Stripe, starting with whsec_")]
    InvalidSecret,
    #[error("description must be at most 200 characters, without control characters")]
    InvalidDescription,
    #[error("A connection has at most 16 webhook endpoints.")]
    TooMany,
}

/// Checks and normalises the event list: trimmed, de-duplicated, in the given order.
pub fn parse_events(raw: &[String]) -> Result<Vec<String>, WebhookEndpointError> {
    if raw.is_empty() || raw.len() > MAX_EVENTS {
        return Err(WebhookEndpointError::NoEvents);
    }
    let mut events: Vec<String> = Vec::with_capacity(raw.len());
    for event in raw {
        let event = event.trim();
        let valid = event == "*"
            || (event.len() <= 100
                && event.split('.').count() >= 2
                && event.split('.').all(|part| {
                    !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                }));
        if !valid {
            return Err(WebhookEndpointError::InvalidEvent(event.chars().take(100).collect()));
        }
        if !events.iter().any(|e| e == event) {
            events.push(event.to_owned());
        }
    }
    Ok(events)
}

/// A Stripe signing secret: `whsec_` and 1 to 250 visible ASCII characters.
pub fn check_secret(secret: &str) -> Result<(), WebhookEndpointError> {
    let rest = secret.strip_prefix("whsec_").ok_or(WebhookEndpointError::InvalidSecret)?;
    if rest.is_empty() || rest.len() > 250 || !rest.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WebhookEndpointError::InvalidSecret);
    }
    Ok(())
}

fn parse_description(raw: Option<&str>) -> Result<String, WebhookEndpointError> {
    let description = raw.unwrap_or_default().trim();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        return Err(WebhookEndpointError::InvalidDescription);
    }
    Ok(description.to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance window")]
    OutsideTolerance,
    #[error("no signature matches")]
    Mismatch,
}

/// Checks a `Stripe-Signature` header against an endpoint's secret.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait StripeSignatureVerifier: Send + Sync {
    /// Ok if `header` holds a `v1` signature of `payload` under `secret`, made within the
    /// tolerance window around `now`. Compares in constant time.
    fn verify(
        &self,
        secret: &SecretString,
        header: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError>;
}

/// Storage of endpoints and their events.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait StripeWebhookRepository: Send + Sync {
    /// The connection's endpoints, oldest first, each with its newest event's time.
    async fn list(
        &self,
        organization: OrganizationId,
        connection: Uuid,
    ) -> Result<Vec<StripeWebhookEndpoint>, StorageError>;

    /// Stores the endpoint and its sealed secret unless its connection already has `limit`
    /// endpoints (false, nothing stored). Counting and inserting are one atomic step.
    async fn insert(
        &self,
        endpoint: &StripeWebhookEndpoint,
        secret: &Ciphertext,
        limit: usize,
    ) -> Result<bool, StorageError>;

    /// An endpoint and its sealed secret, by id alone (the receiving route knows nothing else).
    async fn find(&self, id: Uuid) -> Result<Option<(StripeWebhookEndpoint, Ciphertext)>, StorageError>;

    /// Deletes the endpoint and its events; false if the organization has no such endpoint
    /// on this connection.
    async fn delete(&self, organization: OrganizationId, connection: Uuid, id: Uuid) -> Result<bool, StorageError>;

    /// Stores a verified event; false (and nothing written) if the endpoint already has an
    /// event with this Stripe id.
    async fn record_event(&self, event: &StripeEvent) -> Result<bool, StorageError>;

    /// The connection's received events, newest first; the cursor is the last entry's id.
    async fn events(
        &self,
        organization: OrganizationId,
        connection: Uuid,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<StripeEvent, Uuid>, StorageError>;
}

/// Why an inbound delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    #[error("No such webhook endpoint.")]
    UnknownEndpoint,
    #[error("The webhook signature could not be verified: {0}.")]
    Signature(SignatureError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What happened to a verified delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Stored,
    /// Stripe sent this event before (a retry): acknowledged, not stored again.
    Duplicate,
}

/// The Stripe connection's status view (I11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeStatus {
    pub view: ConnectionView,
    pub endpoints: Vec<StripeWebhookEndpoint>,
    pub last_event_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct StripeWebhookPorts {
    pub catalog: Arc<Catalog>,
    pub integrations: Arc<dyn IntegrationRepository>,
    pub webhooks: Arc<dyn StripeWebhookRepository>,
    pub cipher: Arc<dyn CredentialCipher>,
    pub verifier: Arc<dyn StripeSignatureVerifier>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
}

/// Stripe webhook endpoints, the status view and the receiving side.
#[derive(Clone)]
pub struct StripeWebhookService {
    ports: StripeWebhookPorts,
}

impl std::fmt::Debug for StripeWebhookService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StripeWebhookService")
    }
}

impl StripeWebhookService {
    pub fn new(ports: StripeWebhookPorts) -> Self {
        Self { ports }
    }

    /// The connection, if it is connected and its provider offers webhook endpoints.
    async fn connection(&self, caller: &Caller, id: Uuid) -> Result<ConnectionView, IntegrationError> {
        let view = self
            .ports
            .integrations
            .find_connection(caller.organization_id(), id)
            .await?
            .ok_or(IntegrationError::ConnectionNotFound)?;
        let definition =
            self.ports.catalog.get(view.connection.provider.as_str()).ok_or(IntegrationError::UnknownProvider)?;
        if !definition.resource_types.contains(&ResourceType::WebhookEndpoints) {
            return Err(IntegrationError::NotSupported);
        }
        Ok(view)
    }

    pub async fn endpoints(
        &self,
        caller: &Caller,
        connection: Uuid,
    ) -> Result<Vec<StripeWebhookEndpoint>, IntegrationError> {
        caller.require(VIEW)?;
        self.connection(caller, connection).await?;
        Ok(self.ports.webhooks.list(caller.organization_id(), connection).await?)
    }

    /// Registers an endpoint; its secret is sealed and never returned.
    pub async fn add_endpoint(
        &self,
        caller: &Caller,
        connection: Uuid,
        events: &[String],
        signing_secret: &SecretString,
        description: Option<&str>,
    ) -> Result<StripeWebhookEndpoint, IntegrationError> {
        use secrecy::ExposeSecret;
        caller.require(EDIT)?;
        let events = parse_events(events)?;
        check_secret(signing_secret.expose_secret())?;
        let description = parse_description(description)?;
        let view = self.connection(caller, connection).await?;
        if view.connection.status != super::ConnectionStatus::Connected {
            return Err(IntegrationError::ConnectionNotFound);
        }
        let now = self.ports.clock.now();
        let endpoint = StripeWebhookEndpoint {
            id: Uuid::now_v7(),
            organization_id: caller.organization_id(),
            connection_id: connection,
            description,
            events,
            created_at: now,
            last_event_at: None,
        };
        let sealed = self.ports.cipher.encrypt(signing_secret, &endpoint.secret_binding());
        if !self.ports.webhooks.insert(&endpoint, &sealed, MAX_ENDPOINTS_PER_CONNECTION).await? {
            return Err(WebhookEndpointError::TooMany.into());
        }
        self.audit(caller, &view, "webhook_endpoint.added", endpoint.id).await?;
        Ok(endpoint)
    }

    pub async fn delete_endpoint(&self, caller: &Caller, connection: Uuid, id: Uuid) -> Result<(), IntegrationError> {
        caller.require(EDIT)?;
        let view = self.connection(caller, connection).await?;
        if !self.ports.webhooks.delete(caller.organization_id(), connection, id).await? {
            return Err(IntegrationError::ResourceNotFound);
        }
        self.audit(caller, &view, "webhook_endpoint.deleted", id).await
    }

    async fn audit(
        &self,
        caller: &Caller,
        view: &ConnectionView,
        change: &str,
        endpoint: Uuid,
    ) -> Result<(), IntegrationError> {
        let entry = AuditEntry::new(
            caller.organization_id(),
            caller.audit_actor(),
            AuditAction::IntegrationUpdated,
            "integration",
            view.connection.id.to_string(),
            self.ports.clock.now(),
        )
        .for_provider(view.connection.provider.as_str())
        .with("change", change)
        .with("value", endpoint.to_string());
        Ok(self.ports.audit.record(&entry).await?)
    }

    /// The status view: the connection with its latest health, its endpoints and when the
    /// newest event arrived.
    pub async fn status(&self, caller: &Caller, connection: Uuid) -> Result<StripeStatus, IntegrationError> {
        caller.require(VIEW)?;
        let view = self.connection(caller, connection).await?;
        let endpoints = self.ports.webhooks.list(caller.organization_id(), connection).await?;
        let last_event_at = endpoints.iter().filter_map(|e| e.last_event_at).max();
        Ok(StripeStatus { view, endpoints, last_event_at })
    }

    pub async fn events(
        &self,
        caller: &Caller,
        connection: Uuid,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<StripeEvent, Uuid>, IntegrationError> {
        caller.require(VIEW)?;
        self.connection(caller, connection).await?;
        Ok(self.ports.webhooks.events(caller.organization_id(), connection, page).await?)
    }

    /// An inbound delivery (W4): the signature is checked before anything is stored; a retried
    /// event is acknowledged without being stored twice.
    pub async fn receive(
        &self,
        endpoint: Uuid,
        signature: Option<&str>,
        payload: &[u8],
        header: &StripeEventHeader,
    ) -> Result<Received, ReceiveError> {
        let (endpoint, sealed) = self.ports.webhooks.find(endpoint).await?.ok_or(ReceiveError::UnknownEndpoint)?;
        let signature = signature.ok_or(ReceiveError::Signature(SignatureError::Missing))?;
        let secret = self.ports.cipher.decrypt(&sealed, &endpoint.secret_binding()).map_err(|err| {
            match err {
                DecryptError::UnknownKeyVersion(_) | DecryptError::Tampered => {}
            }
            StorageError::new(format!("the signing secret of webhook endpoint {} does not decrypt", endpoint.id))
        })?;
        let now = self.ports.clock.now();
        self.ports.verifier.verify(&secret, signature, payload, now).map_err(ReceiveError::Signature)?;
        let event = StripeEvent {
            id: Uuid::now_v7(),
            endpoint_id: endpoint.id,
            organization_id: endpoint.organization_id,
            event_id: header.event_id.clone(),
            event_type: header.event_type.clone(),
            livemode: header.livemode,
            payload: String::from_utf8_lossy(payload).into_owned(),
            received_at: now,
        };
        if self.ports.webhooks.record_event(&event).await? { Ok(Received::Stored) } else { Ok(Received::Duplicate) }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::integration::catalog::fixtures::provider;
    use crate::integration::{
        AuthMethod, Category, ConnectionStatus, InstanceStatus, IntegrationConnection, IntegrationInstance,
        ProviderDefinition, ProviderSlug,
    };
    use crate::ports::{MockAuditLog, MockClock, MockCredentialCipher, MockIntegrationRepository};
    use crate::user::{Role, UserId};

    fn actor(role: Role) -> Caller {
        crate::caller::fixtures::user(role)
    }

    fn stripe_view() -> ConnectionView {
        let now = Utc::now();
        let slug = ProviderSlug::parse("stripe").unwrap();
        ConnectionView {
            connection: IntegrationConnection {
                id: Uuid::from_u128(10),
                organization_id: OrganizationId(Uuid::from_u128(1)),
                instance_id: Uuid::from_u128(20),
                provider: slug.clone(),
                user_id: UserId(Uuid::from_u128(2)),
                auth_method: AuthMethod::ApiKey,
                status: ConnectionStatus::Connected,
                created_at: now,
                disconnected_at: None,
            },
            instance: IntegrationInstance {
                id: Uuid::from_u128(20),
                organization_id: OrganizationId(Uuid::from_u128(1)),
                provider: slug,
                status: InstanceStatus::Active,
                enabled: true,
                selected_model: None,
                created_at: now,
                updated_at: now,
            },
            latest_health: None,
        }
    }

    struct Mocks {
        integrations: MockIntegrationRepository,
        webhooks: MockStripeWebhookRepository,
        verifier: MockStripeSignatureVerifier,
        audit: MockAuditLog,
    }

    impl Mocks {
        fn new() -> Self {
            let mut integrations = MockIntegrationRepository::new();
            integrations.expect_find_connection().returning(|_, id| Ok((id == Uuid::from_u128(10)).then(stripe_view)));
            Self {
                integrations,
                webhooks: MockStripeWebhookRepository::new(),
                verifier: MockStripeSignatureVerifier::new(),
                audit: MockAuditLog::new(),
            }
        }

        fn service(self) -> StripeWebhookService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(Utc::now);
            let mut cipher = MockCredentialCipher::new();
            // Readable fake: the binding's associated data, then the plaintext.
            cipher.expect_encrypt().returning(|plain, binding| {
                let mut bytes = binding.associated_data();
                bytes.push(b'|');
                bytes.extend(plain.expose_secret().bytes());
                Ciphertext { key_version: 1, bytes }
            });
            cipher.expect_decrypt().returning(|ct, binding| {
                let prefix = binding.associated_data();
                if !ct.bytes.starts_with(&prefix) {
                    return Err(DecryptError::Tampered);
                }
                Ok(SecretString::from(String::from_utf8(ct.bytes[prefix.len() + 1..].to_vec()).unwrap()))
            });
            let catalog = Catalog::new(vec![
                ProviderDefinition {
                    resource_types: vec![ResourceType::WebhookEndpoints],
                    ..provider("stripe", Category::Payment, &[])
                },
                provider("postmark", Category::Communication, &[]),
            ])
            .unwrap();
            StripeWebhookService::new(StripeWebhookPorts {
                catalog: Arc::new(catalog),
                integrations: Arc::new(self.integrations),
                webhooks: Arc::new(self.webhooks),
                cipher: Arc::new(cipher),
                verifier: Arc::new(self.verifier),
                audit: Arc::new(self.audit),
                clock: Arc::new(clock),
            })
        }
    }

    fn events(list: &[&str]) -> Vec<String> {
        list.iter().map(|e| (*e).to_owned()).collect()
    }

    #[test]
    fn event_types_are_checked_and_deduplicated() {
        assert_eq!(
            parse_events(&events(&[" charge.succeeded", "invoice.payment_failed", "charge.succeeded"])).unwrap(),
            ["charge.succeeded", "invoice.payment_failed"]
        );
        assert_eq!(parse_events(&events(&["*"])).unwrap(), ["*"]);
        assert_eq!(parse_events(&[]).unwrap_err(), WebhookEndpointError::NoEvents);
        for bad in ["charge", "Charge.Succeeded", "charge..succeeded", "charge.succeeded ; drop", ""] {
            assert!(matches!(parse_events(&events(&[bad])), Err(WebhookEndpointError::InvalidEvent(_))), "{bad}");
        }
        assert_eq!(parse_events(&vec!["a.b".to_owned(); 101]).unwrap_err(), WebhookEndpointError::NoEvents);
    }

    #[test]
    fn secrets_must_look_like_stripe_signing_secrets() {
        assert!(check_secret("whsec_abc123").is_ok());
        for bad in ["", "whsec_", "sk_live_abc", "whsec_abc def", "whsec_\u{7}x"] {
            assert_eq!(check_secret(bad), Err(WebhookEndpointError::InvalidSecret), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn an_endpoint_is_stored_with_its_secret_sealed_to_it_and_audited() {
        let mut mocks = Mocks::new();
        mocks.webhooks.expect_list().returning(|_, _| Ok(vec![]));
        let sealed = Arc::new(Mutex::new(None));
        let sink = sealed.clone();
        mocks.webhooks.expect_insert().times(1).returning(move |endpoint, secret, limit| {
            assert_eq!(limit, MAX_ENDPOINTS_PER_CONNECTION);
            *sink.lock().unwrap() = Some((endpoint.clone(), secret.clone()));
            Ok(true)
        });
        mocks
            .audit
            .expect_record()
            .withf(|e| e.details.get("change").map(String::as_str) == Some("webhook_endpoint.added"))
            .times(1)
            .returning(|_| Ok(()));
        let svc = mocks.service();
        let secret = SecretString::from("whsec_canary".to_owned());
        let endpoint = svc
            .add_endpoint(&actor(Role::Admin), Uuid::from_u128(10), &events(&["charge.succeeded"]), &secret, None)
            .await
            .unwrap();
        let (stored, ciphertext) = sealed.lock().unwrap().clone().unwrap();
        assert_eq!(stored, endpoint);
        let bound = endpoint.secret_binding().associated_data();
        assert!(ciphertext.bytes.starts_with(&bound), "sealed to this endpoint");
        assert!(!format!("{endpoint:?}").contains("whsec_canary"));
    }

    #[tokio::test]
    async fn a_full_connection_refuses_another_endpoint_and_audits_nothing() {
        let mut mocks = Mocks::new();
        mocks.webhooks.expect_insert().times(1).returning(|_, _, _| Ok(false));
        mocks.audit.expect_record().never();
        let secret = SecretString::from("whsec_ok".to_owned());
        let err = mocks
            .service()
            .add_endpoint(&actor(Role::Admin), Uuid::from_u128(10), &events(&["a.b"]), &secret, None)
            .await
            .unwrap_err();
        assert_eq!(err, IntegrationError::Webhook(WebhookEndpointError::TooMany));
    }

    #[tokio::test]
    async fn bad_input_and_other_providers_are_refused_before_storage() {
        let mut mocks = Mocks::new();
        mocks.webhooks.expect_insert().never();
        mocks.audit.expect_record().never();
        mocks.webhooks.expect_list().returning(|_, _| Ok(vec![]));
        let svc = mocks.service();
        let secret = SecretString::from("whsec_ok".to_owned());
        let admin = actor(Role::Admin);
        let conn = Uuid::from_u128(10);
        let err = svc.add_endpoint(&admin, conn, &events(&["nope"]), &secret, None).await.unwrap_err();
        assert!(matches!(err, IntegrationError::Webhook(WebhookEndpointError::InvalidEvent(_))));
        let bad_secret = SecretString::from("sk_test_123".to_owned());
        let err = svc.add_endpoint(&admin, conn, &events(&["a.b"]), &bad_secret, None).await.unwrap_err();
        assert_eq!(err, IntegrationError::Webhook(WebhookEndpointError::InvalidSecret));
        let err = svc.add_endpoint(&actor(Role::Viewer), conn, &events(&["a.b"]), &secret, None).await.unwrap_err();
        assert_eq!(
            err,
            IntegrationError::Forbidden(crate::caller::Denied::Role(crate::user::Permission::SettingsEdit))
        );
        let err = svc.add_endpoint(&admin, Uuid::from_u128(11), &events(&["a.b"]), &secret, None).await.unwrap_err();
        assert_eq!(err, IntegrationError::ConnectionNotFound);
    }

    fn stored_endpoint() -> (StripeWebhookEndpoint, Ciphertext) {
        let endpoint = StripeWebhookEndpoint {
            id: Uuid::from_u128(30),
            organization_id: OrganizationId(Uuid::from_u128(1)),
            connection_id: Uuid::from_u128(10),
            description: String::new(),
            events: events(&["*"]),
            created_at: Utc::now(),
            last_event_at: None,
        };
        let mut bytes = endpoint.secret_binding().associated_data();
        bytes.extend(b"|whsec_inbound");
        (endpoint, Ciphertext { key_version: 1, bytes })
    }

    fn header() -> StripeEventHeader {
        StripeEventHeader { event_id: "evt_1".into(), event_type: "charge.succeeded".into(), livemode: false }
    }

    #[tokio::test]
    async fn an_unverified_delivery_is_never_stored() {
        let mut mocks = Mocks::new();
        mocks.webhooks.expect_find().returning(|_| Ok(Some(stored_endpoint())));
        mocks.webhooks.expect_record_event().never();
        mocks
            .verifier
            .expect_verify()
            .withf(|secret, header, _, _| secret.expose_secret() == "whsec_inbound" && header == "t=1,v1=bad")
            .returning(|_, _, _, _| Err(SignatureError::Mismatch));
        let svc = mocks.service();
        let err = svc.receive(Uuid::from_u128(30), Some("t=1,v1=bad"), b"{}", &header()).await.unwrap_err();
        assert_eq!(err, ReceiveError::Signature(SignatureError::Mismatch));
        let err = svc.receive(Uuid::from_u128(30), None, b"{}", &header()).await.unwrap_err();
        assert_eq!(err, ReceiveError::Signature(SignatureError::Missing));
    }

    #[tokio::test]
    async fn a_verified_delivery_is_stored_once() {
        let mut mocks = Mocks::new();
        mocks.webhooks.expect_find().returning(|_| Ok(Some(stored_endpoint())));
        mocks.verifier.expect_verify().returning(|_, _, _, _| Ok(()));
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        mocks.webhooks.expect_record_event().returning(move |event| {
            let mut seen = log.lock().unwrap();
            let new = !seen.contains(&event.event_id);
            seen.push(event.event_id.clone());
            Ok(new)
        });
        let svc = mocks.service();
        let payload = br#"{"id":"evt_1"}"#;
        assert_eq!(svc.receive(Uuid::from_u128(30), Some("sig"), payload, &header()).await, Ok(Received::Stored));
        assert_eq!(svc.receive(Uuid::from_u128(30), Some("sig"), payload, &header()).await, Ok(Received::Duplicate));
    }
}
