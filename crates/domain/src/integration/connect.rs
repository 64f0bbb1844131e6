//! Connecting a provider (I3-I9, I13).
//!
//! Connect never leaves credentials behind a failure or a crash: they are encrypted and
//! checked in memory first (the check uses the decrypted ciphertext, proving the round trip),
//! and written only after the provider accepted them, in the same transaction as the
//! connection, its first health record and its event (audit row and webhook deliveries).

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::Credentials;
use super::oauth::StoredTokens;
use super::ports::SaveConnectionError;
use super::service::{ConnectError, ConnectInput, EDIT, IntegrationService};
use super::{
    AuthMethod, AuthType, ConnectionStatus, ConnectionView, CredentialField, HealthCheck, HealthOutcome,
    InstanceStatus, IntegrationConnection, IntegrationInstance, NewConnection, ProviderDefinition, StoredCredential,
};
use crate::caller::Caller;
use crate::event::{AuditActor, DomainEvent, Event};
use crate::organization::OrganizationId;
use crate::sealed::SecretOwner;
use crate::user::UserId;

/// A connect that holds its credentials, ready for [`IntegrationService::check_and_store`].
pub(super) struct ConnectAttempt<'a> {
    /// The provider.
    pub definition: &'a ProviderDefinition,
    /// The organization connecting.
    pub organization: OrganizationId,
    /// Who the connection will belong to.
    pub owner: UserId,
    /// Who its events name.
    pub actor: AuditActor,
    /// The new connection's id (its sealed secrets are bound to it).
    pub connection_id: Uuid,
    /// How it authenticates.
    pub auth_method: AuthMethod,
    /// Typed credentials, sealed (none for pre-configured and OAuth connections).
    pub credentials: Vec<StoredCredential>,
    /// An OAuth connection's sealed tokens.
    pub tokens: Option<StoredTokens>,
    /// Whether the organization already has a working connection to the provider (another
    /// user's), which keeps the instance active when this check fails.
    pub existing_connected: bool,
}

impl IntegrationService {
    /// Checks the typed fields against the provider's definition (I4).
    fn credentials_from(
        definition: &ProviderDefinition,
        fields: &BTreeMap<String, SecretString>,
    ) -> Result<Vec<(CredentialField, SecretString)>, ConnectError> {
        for name in fields.keys() {
            let known =
                CredentialField::parse(name).is_some_and(|f| definition.fields.iter().any(|spec| spec.field == f));
            if !known {
                return Err(ConnectError::UnknownField(name.clone()));
            }
        }
        let mut out = Vec::new();
        for spec in &definition.fields {
            let name = spec.field.as_str();
            let value = fields.get(name).map(|v| v.expose_secret().trim().to_owned()).filter(|v| !v.is_empty());
            let Some(value) = value else {
                if spec.required {
                    return Err(ConnectError::MissingField(name));
                }
                continue;
            };
            if value.chars().count() > spec.max_length {
                return Err(ConnectError::FieldTooLong { field: name, max: spec.max_length });
            }
            if value.chars().any(char::is_control) {
                return Err(ConnectError::FieldInvalid(name));
            }
            out.push((spec.field, SecretString::from(value)));
        }
        Ok(out)
    }

    /// What every connect checks before a provider is called: its dependencies are connected
    /// and the caller has no connection to it yet. Answers the organization's provider states.
    pub(super) async fn connect_preflight(
        &self,
        caller: &Caller,
        definition: &ProviderDefinition,
    ) -> Result<Vec<super::ProviderState>, ConnectError> {
        let organization = caller.organization_id();
        let states = self.ports.repository.provider_states(organization).await?;
        for dependency in &definition.dependencies {
            if !states.iter().any(|s| &s.provider == dependency && s.connected) {
                let required_name = self
                    .ports
                    .catalog
                    .get(dependency.as_str())
                    .map_or_else(|| dependency.to_string(), |d| d.name.clone());
                return Err(ConnectError::DependencyMissing { required: dependency.clone(), required_name });
            }
        }
        let owner = caller.on_behalf_of();
        let mine = self.ports.repository.list_connections(organization).await?;
        if mine.iter().any(|c| {
            c.connection.provider == definition.slug
                && c.connection.user_id == owner
                && c.connection.status == ConnectionStatus::Connected
        }) {
            return Err(ConnectError::AlreadyConnected(definition.name.clone()));
        }
        Ok(states)
    }

    /// Connects a provider (I3-I9, I13). On failure nothing but the instance's `error` status
    /// and the failure's audit row is written, and the caller may retry at once.
    pub async fn connect(
        &self,
        caller: &Caller,
        slug: &str,
        input: ConnectInput,
    ) -> Result<ConnectionView, ConnectError> {
        caller.require(EDIT)?;
        let definition = self.definition(slug)?;
        if !definition.active {
            return Err(ConnectError::InactiveProvider(definition.name.clone()));
        }
        if definition.auth_type == AuthType::OAuth2 {
            return Err(ConnectError::CredentialsForOAuth(definition.name.clone()));
        }
        let states = self.connect_preflight(caller, definition).await?;
        let organization = caller.organization_id();
        let owner = caller.on_behalf_of();
        let now = self.ports.clock.now();
        let connection_id = Uuid::now_v7();
        let (auth_method, stored, credentials) = match input {
            ConnectInput::Preconfigured => {
                let credentials = self
                    .ports
                    .preconfigured
                    .get(&definition.slug)
                    .cloned()
                    .ok_or_else(|| ConnectError::NotPreconfigured(definition.name.clone()))?;
                (AuthMethod::Preconfigured, Vec::new(), credentials)
            }
            ConnectInput::Credentials(fields) => {
                let fields = Self::credentials_from(definition, &fields)?;
                let stored: Vec<StoredCredential> = fields
                    .iter()
                    .map(|(field, value)| {
                        let owner = SecretOwner::ConnectionCredential {
                            organization,
                            connection: connection_id,
                            field: *field,
                        };
                        StoredCredential {
                            id: Uuid::now_v7(),
                            organization_id: organization,
                            connection_id,
                            field: *field,
                            ciphertext: self.ports.cipher.encrypt(value, &owner),
                            created_at: now,
                        }
                    })
                    .collect();
                // The check runs on what decrypts from the ciphertexts, as it will later.
                let credentials = self.decrypt_all(&stored).map_err(ConnectError::Integration)?;
                (AuthMethod::ApiKey, stored, credentials)
            }
        };

        let existing_connected = states.iter().any(|s| s.provider == definition.slug && s.connected);
        let attempt = ConnectAttempt {
            definition,
            organization,
            owner,
            actor: caller.audit_actor(),
            connection_id,
            auth_method,
            credentials: stored,
            tokens: None,
            existing_connected,
        };
        self.check_and_store(attempt, &credentials).await
    }

    /// What every connect does once it holds credentials (typed, pre-configured or OAuth
    /// tokens): checks them at the provider, then records either the failure (only the
    /// instance's status and `integration.connect_failed`) or the connection with its sealed
    /// secrets, first check and `integration.connected`, in one transaction. A connect that
    /// loses the race to a twin at the store is [`ConnectError::AlreadyConnected`].
    pub(super) async fn check_and_store(
        &self,
        attempt: ConnectAttempt<'_>,
        credentials: &Credentials,
    ) -> Result<ConnectionView, ConnectError> {
        let ConnectAttempt {
            definition,
            organization,
            owner,
            actor,
            connection_id,
            auth_method,
            credentials: stored,
            tokens,
            existing_connected,
        } = attempt;
        let now = self.ports.clock.now();
        let event = |event| DomainEvent::new(organization, actor, now, event);
        let report = self.ports.client.health_check(&definition.slug, credentials).await;
        let instance = match self.ports.repository.find_instance(organization, &definition.slug).await? {
            Some(instance) => instance,
            None => IntegrationInstance {
                id: Uuid::now_v7(),
                organization_id: organization,
                provider: definition.slug.clone(),
                status: InstanceStatus::Error,
                enabled: true,
                selected_model: None,
                created_at: now,
                updated_at: now,
            },
        };

        if report.outcome != HealthOutcome::Healthy {
            // Another user's working connection keeps the instance active.
            let status = if existing_connected { InstanceStatus::Active } else { InstanceStatus::Error };
            let failed = IntegrationInstance { status, updated_at: now, ..instance };
            let failed_event = event(Event::IntegrationConnectFailed {
                connection_id,
                provider: definition.slug.clone(),
                auth_method,
                outcome: report.outcome,
                response_time_ms: report.response_time_ms,
            });
            self.ports.repository.record_failed_connect(&failed, &failed_event).await?;
            return Err(ConnectError::CheckFailed {
                outcome: report.outcome,
                message: report.outcome.message(&definition.name),
            });
        }

        let instance = IntegrationInstance { status: InstanceStatus::Active, updated_at: now, ..instance };
        let connection = IntegrationConnection {
            id: connection_id,
            instance_id: instance.id,
            organization_id: organization,
            provider: definition.slug.clone(),
            user_id: owner,
            auth_method,
            status: ConnectionStatus::Connected,
            created_at: now,
            disconnected_at: None,
        };
        let health = HealthCheck {
            id: Uuid::now_v7(),
            connection_id,
            outcome: report.outcome,
            response_time_ms: report.response_time_ms,
            detail: report.detail.clone(),
            checked_at: now,
        };
        let new = NewConnection {
            instance: instance.clone(),
            connection: connection.clone(),
            credentials: stored,
            tokens,
            health: health.clone(),
        };
        let connected = event(Event::IntegrationConnected {
            connection_id,
            provider: definition.slug.clone(),
            auth_method,
            check: health.clone(),
        });
        match self.ports.repository.save_connection(&new, &connected).await {
            Ok(()) => {}
            // Another connect of the same provider by the same user got there first.
            Err(SaveConnectionError::AlreadyConnected) => {
                return Err(ConnectError::AlreadyConnected(definition.name.clone()));
            }
            Err(SaveConnectionError::Storage(err)) => return Err(err.into()),
        }
        // Read back: when the instance already existed, storage kept its own row and id.
        let stored = self.ports.repository.find_connection(organization, connection_id).await?;
        Ok(stored.unwrap_or(ConnectionView { connection, instance, latest_health: Some(health) }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use secrecy::{ExposeSecret, SecretString};

    use super::super::service::{ConnectError, ConnectInput, IntegrationError};
    use super::super::testing::{Mocks, actor, preconfigured, report, typed};
    use super::*;
    use crate::event::AuditActor;
    use crate::user::{Permission, Role, UserId};

    #[tokio::test]
    async fn a_connect_that_loses_the_race_to_a_twin_is_already_connected() {
        let mut mocks = Mocks::new();
        mocks.client.expect_health_check().returning(|_, _| report(HealthOutcome::Healthy));
        mocks.repository.expect_save_connection().times(1).returning(|_, _| Err(SaveConnectionError::AlreadyConnected));
        mocks.repository.expect_find_connection().never();
        let err = mocks.service().connect(&actor(Role::Admin), "postmark", typed("pm-secret")).await.unwrap_err();
        assert!(matches!(&err, ConnectError::AlreadyConnected(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_healthy_connect_stores_bound_ciphertexts_with_everything_else_and_its_event_at_once() {
        let mut mocks = Mocks::new();
        mocks
            .client
            .expect_health_check()
            .withf(|slug, creds| slug.as_str() == "postmark" && creds.api_key.expose_secret() == "pm-secret")
            .times(1)
            .returning(|_, _| report(HealthOutcome::Healthy));
        let saved = Arc::new(Mutex::new(None));
        let sink = saved.clone();
        mocks.repository.expect_save_connection().times(1).returning(move |new, event| {
            // Recorded with the connection: who connected what, with the check and never the key.
            match &event.event {
                Event::IntegrationConnected { connection_id, provider, auth_method, check } => {
                    assert_eq!(*connection_id, new.connection.id);
                    assert_eq!(provider.as_str(), "postmark");
                    assert_eq!(*auth_method, AuthMethod::ApiKey);
                    assert_eq!(*check, new.health);
                }
                other => panic!("unexpected event {other:?}"),
            }
            assert_eq!(event.actor, AuditActor::User(UserId(Uuid::from_u128(2))));
            assert!(!format!("{event:?}").contains("pm-secret"));
            *sink.lock().unwrap() = Some(new.clone());
            Ok(())
        });
        mocks.repository.expect_record_failed_connect().never();
        mocks.repository.expect_find_connection().returning(|_, _| Ok(None));
        let view = mocks.service().connect(&actor(Role::Manager), "postmark", typed(" pm-secret ")).await.unwrap();
        let new = saved.lock().unwrap().clone().unwrap();
        assert_eq!(view.connection.id, new.connection.id);
        assert_eq!(new.instance.status, InstanceStatus::Active);
        assert_eq!(new.credentials.len(), 1);
        let credential = &new.credentials[0];
        assert_eq!(credential.connection_id, new.connection.id);
        assert_eq!(credential.field, CredentialField::ApiKey);
        assert!(credential.ciphertext.bytes.starts_with(&credential.owner().associated_data()), "bound to its field");
        assert!(!String::from_utf8_lossy(&credential.ciphertext.bytes).contains("pm-secret"), "stored encrypted");
        assert_eq!(new.health.outcome, HealthOutcome::Healthy);
    }

    #[tokio::test]
    async fn a_failed_check_writes_no_credentials_and_marks_the_instance() {
        for (outcome, message) in [
            (HealthOutcome::InvalidCredentials, "The API key you entered is invalid. Please check your credentials."),
            (HealthOutcome::Unreachable, "Could not reach POSTMARK. The service may be temporarily unavailable."),
            (HealthOutcome::RateLimited, "Connection test was rate limited. Please wait a moment."),
        ] {
            let mut mocks = Mocks::new();
            mocks.client.expect_health_check().returning(move |_, _| report(outcome));
            mocks.repository.expect_save_connection().never();
            mocks
                .repository
                .expect_record_failed_connect()
                .withf(move |instance, event| {
                    instance.status == InstanceStatus::Error
                        && matches!(&event.event, Event::IntegrationConnectFailed { outcome: o, .. } if *o == outcome)
                })
                .times(1)
                .returning(|_, _| Ok(()));
            let err = mocks.service().connect(&actor(Role::Admin), "postmark", typed("k")).await.unwrap_err();
            assert_eq!(err, ConnectError::CheckFailed { outcome, message: message.to_owned() });
            assert_eq!(err.to_string(), message);
        }
    }

    #[tokio::test]
    async fn rules_are_checked_before_the_provider_is_called() {
        type Check = fn(&ConnectError) -> bool;
        let cases: Vec<(&str, ConnectInput, Check)> = vec![
            ("nope", typed("k"), |e| matches!(e, ConnectError::Integration(IntegrationError::UnknownProvider))),
            ("retired", typed("k"), |e| matches!(e, ConnectError::InactiveProvider(_))),
            (
                "needs_postmark",
                typed("k"),
                |e| matches!(e, ConnectError::DependencyMissing { required, required_name } if required.as_str() == "postmark" && required_name == "POSTMARK"),
            ),
            ("postmark", ConnectInput::Credentials(BTreeMap::new()), |e| {
                matches!(e, ConnectError::MissingField("api_key"))
            }),
            ("postmark", typed(&"k".repeat(257)), |e| matches!(e, ConnectError::FieldTooLong { .. })),
            ("postmark", typed("a\nb"), |e| matches!(e, ConnectError::FieldInvalid("api_key"))),
            ("postmark", ConnectInput::Preconfigured, |e| matches!(e, ConnectError::NotPreconfigured(_))),
            (
                "postmark",
                ConnectInput::Credentials(BTreeMap::from([
                    ("api_key".to_owned(), SecretString::from("k".to_owned())),
                    ("api_secret".to_owned(), SecretString::from("s".to_owned())),
                ])),
                |e| matches!(e, ConnectError::UnknownField(f) if f == "api_secret"),
            ),
        ];
        for (slug, input, expected) in cases {
            let mut mocks = Mocks::new();
            mocks.client.expect_health_check().never();
            mocks.repository.expect_save_connection().never();
            mocks.repository.expect_record_failed_connect().never();
            let err = mocks.service().connect(&actor(Role::Admin), slug, input).await.unwrap_err();
            assert!(expected(&err), "{slug}: {err:?}");
        }
        let mut mocks = Mocks::new();
        mocks.client.expect_health_check().never();
        let err = mocks.service().connect(&actor(Role::Viewer), "postmark", typed("k")).await.unwrap_err();
        assert_eq!(
            err,
            ConnectError::Integration(IntegrationError::Forbidden(crate::caller::Denied::Role(
                Permission::SettingsEdit
            )))
        );
    }

    #[tokio::test]
    async fn preconfigured_credentials_are_used_and_not_stored() {
        let mut mocks = Mocks::new();
        mocks.preconfigured = preconfigured("postmark", "deployment-key");
        mocks
            .client
            .expect_health_check()
            .withf(|_, creds| creds.api_key.expose_secret() == "deployment-key")
            .returning(|_, _| report(HealthOutcome::Healthy));
        mocks
            .repository
            .expect_save_connection()
            .withf(|new, _| new.credentials.is_empty() && new.connection.auth_method == AuthMethod::Preconfigured)
            .times(1)
            .returning(|_, _| Ok(()));
        mocks.repository.expect_find_connection().returning(|_, _| Ok(None));
        mocks.service().connect(&actor(Role::Admin), "postmark", ConnectInput::Preconfigured).await.unwrap();
    }
}
