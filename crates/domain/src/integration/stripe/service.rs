//! The Stripe webhook service: endpoints (I11), the status view, and the receiving side (W4).

use std::sync::Arc;

use secrecy::SecretString;
use uuid::Uuid;

use super::model::{
    MAX_ENDPOINTS_PER_CONNECTION, ReceiveError, Received, SignatureError, StripeEvent, StripeEventHeader, StripeStatus,
    StripeWebhookEndpoint, WebhookEndpointError, check_secret, parse_description, parse_events,
};
use super::ports::{StripeSignatureVerifier, StripeWebhookRepository};
use crate::StorageError;
use crate::caller::Caller;
use crate::event::{DomainEvent, Event};
use crate::integration::service::{EDIT, IntegrationError, VIEW};
use crate::integration::{Catalog, ConnectionStatus, ConnectionView, IntegrationRepository, ResourceType};
use crate::page::{Page, PageRequest};
use crate::ports::Clock;
use crate::sealed::CredentialCipher;

/// The ports the Stripe webhooks need.
#[derive(Clone)]
pub struct StripeWebhookPorts {
    /// The provider catalog: which providers offer webhook endpoints.
    pub catalog: Arc<Catalog>,
    /// Finds the Stripe connection an endpoint belongs to.
    pub integrations: Arc<dyn IntegrationRepository>,
    /// Endpoints, their sealed secrets and received events.
    pub webhooks: Arc<dyn StripeWebhookRepository>,
    /// Seals and opens endpoints' signing secrets.
    pub cipher: Arc<dyn CredentialCipher>,
    /// Checks `Stripe-Signature` headers.
    pub verifier: Arc<dyn StripeSignatureVerifier>,
    /// The time: registrations, receptions, and the signature's tolerance.
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
    /// A service over `ports`.
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

    /// The connection's endpoints, oldest first; needs `settings.view` or `integrations.manage`.
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
        if view.connection.status != ConnectionStatus::Connected {
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
        let sealed = self.ports.cipher.encrypt(signing_secret, &endpoint.secret_owner());
        let event = self.updated(caller, &view, "webhook_endpoint.added", endpoint.id);
        if !self.ports.webhooks.insert(&endpoint, &sealed, MAX_ENDPOINTS_PER_CONNECTION, &event).await? {
            return Err(WebhookEndpointError::TooMany.into());
        }
        Ok(endpoint)
    }

    /// Deletes an endpoint and its received events; needs `settings.edit` or
    /// `integrations.manage`.
    pub async fn delete_endpoint(&self, caller: &Caller, connection: Uuid, id: Uuid) -> Result<(), IntegrationError> {
        caller.require(EDIT)?;
        let view = self.connection(caller, connection).await?;
        let event = self.updated(caller, &view, "webhook_endpoint.deleted", id);
        if !self.ports.webhooks.delete(caller.organization_id(), connection, id, &event).await? {
            return Err(IntegrationError::ResourceNotFound);
        }
        Ok(())
    }

    /// A change of the connection's endpoints, as an `integration.updated` event.
    fn updated(&self, caller: &Caller, view: &ConnectionView, change: &str, endpoint: Uuid) -> DomainEvent {
        let event = Event::IntegrationUpdated {
            connection_id: view.connection.id,
            provider: view.connection.provider.clone(),
            change: change.to_owned(),
            value: endpoint.to_string(),
        };
        DomainEvent::new(caller.organization_id(), caller.audit_actor(), self.ports.clock.now(), event)
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

    /// A page of the connection's received events, newest first.
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
        let secret = self.ports.cipher.decrypt(&sealed, &endpoint.secret_owner()).map_err(|_| {
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
    use crate::integration::stripe::ports::{MockStripeSignatureVerifier, MockStripeWebhookRepository};
    use crate::integration::{
        AuthMethod, Category, ConnectionStatus, InstanceStatus, IntegrationConnection, IntegrationInstance,
        ProviderDefinition, ProviderSlug,
    };
    use crate::organization::OrganizationId;
    use crate::ports::{MockClock, MockCredentialCipher, MockIntegrationRepository};
    use crate::sealed::{Ciphertext, DecryptError};
    use crate::user::{Role, UserId};
    use chrono::Utc;

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
    }

    impl Mocks {
        fn new() -> Self {
            let mut integrations = MockIntegrationRepository::new();
            integrations.expect_find_connection().returning(|_, id| Ok((id == Uuid::from_u128(10)).then(stripe_view)));
            Self {
                integrations,
                webhooks: MockStripeWebhookRepository::new(),
                verifier: MockStripeSignatureVerifier::new(),
            }
        }

        fn service(self) -> StripeWebhookService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(Utc::now);
            let mut cipher = MockCredentialCipher::new();
            // Readable fake: the owner's associated data, then the plaintext.
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
    async fn an_endpoint_is_stored_with_its_secret_sealed_to_it_and_its_event() {
        let mut mocks = Mocks::new();
        mocks.webhooks.expect_list().returning(|_, _| Ok(vec![]));
        let sealed = Arc::new(Mutex::new(None));
        let sink = sealed.clone();
        mocks.webhooks.expect_insert().times(1).returning(move |endpoint, secret, limit, event| {
            assert_eq!(limit, MAX_ENDPOINTS_PER_CONNECTION);
            assert!(matches!(
                &event.event,
                Event::IntegrationUpdated { change, value, connection_id, .. }
                    if change == "webhook_endpoint.added" && *value == endpoint.id.to_string()
                        && *connection_id == Uuid::from_u128(10)
            ));
            *sink.lock().unwrap() = Some((endpoint.clone(), secret.clone()));
            Ok(true)
        });
        let svc = mocks.service();
        let secret = SecretString::from("whsec_canary".to_owned());
        let endpoint = svc
            .add_endpoint(&actor(Role::Admin), Uuid::from_u128(10), &events(&["charge.succeeded"]), &secret, None)
            .await
            .unwrap();
        let (stored, ciphertext) = sealed.lock().unwrap().clone().unwrap();
        assert_eq!(stored, endpoint);
        let bound = endpoint.secret_owner().associated_data();
        assert!(ciphertext.bytes.starts_with(&bound), "sealed to this endpoint");
        assert!(!format!("{endpoint:?}").contains("whsec_canary"));
    }

    #[tokio::test]
    async fn a_full_connection_refuses_another_endpoint() {
        let mut mocks = Mocks::new();
        // Refused with its event: storage records neither.
        mocks.webhooks.expect_insert().times(1).returning(|_, _, _, _| Ok(false));
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
        let mut bytes = endpoint.secret_owner().associated_data();
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
