//! The integrations service: browse the catalog, connect (I3-I9, I13), list and inspect
//! connections, re-run checks, disconnect (I10), toggle (I11).
//!
//! Connect never leaves credentials behind a failure or a crash: they are encrypted and
//! checked in memory first (the check uses the decrypted ciphertext, proving the round trip),
//! and written only after the provider accepted them, in the same transaction as the
//! connection, its first health record and the audit entry.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{
    AuthMethod, AuthType, Catalog, ConnectionStatus, ConnectionView, CredentialBinding, CredentialField, Credentials,
    HealthCheck, HealthOutcome, InstanceStatus, IntegrationConnection, IntegrationInstance, NewConnection,
    ProviderDefinition, ProviderSlug, ProviderState, ResourceType, StoredCredential,
};
use crate::StorageError;
use crate::api_key::Scope;
use crate::audit::{AuditAction, AuditEntry};
use crate::caller::{Caller, Denied, Need};
use crate::organization::OrganizationId;
use crate::ports::{Clock, CredentialCipher, DecryptError, IntegrationRepository, ProviderClient, ProviderModel};
use crate::user::Permission;
use crate::webhook::{EventPublisher, EventType, connection_data};

/// How many health checks the connection detail shows.
pub const HEALTH_HISTORY: u32 = 20;

/// Browsing integrations needs `settings.view`, changing them `settings.edit`; a key with
/// `integrations.manage` may do both (what it connects belongs to its creator).
pub(super) const VIEW: Need = Need::UserOrKey(Permission::SettingsView, Scope::IntegrationsManage);
pub(super) const EDIT: Need = Need::UserOrKey(Permission::SettingsEdit, Scope::IntegrationsManage);

/// Credentials the deployment supplies for some providers (I13). Never returned or logged.
#[derive(Clone, Default)]
pub struct Preconfigured(HashMap<String, Credentials>);

impl std::fmt::Debug for Preconfigured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Preconfigured {
    pub fn new(by_slug: HashMap<String, Credentials>) -> Self {
        Self(by_slug)
    }

    pub fn has(&self, slug: &ProviderSlug) -> bool {
        self.0.contains_key(slug.as_str())
    }

    fn get(&self, slug: &ProviderSlug) -> Option<&Credentials> {
        self.0.get(slug.as_str())
    }
}

/// What a connect request carries.
#[derive(Debug)]
pub enum ConnectInput {
    /// Field name → value, as typed.
    Credentials(BTreeMap<String, SecretString>),
    /// Use the deployment's pre-configured credentials.
    Preconfigured,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrationError {
    #[error(transparent)]
    Forbidden(#[from] Denied),
    #[error("No such provider.")]
    UnknownProvider,
    #[error("No such connection.")]
    ConnectionNotFound,
    #[error("This provider does not support that.")]
    NotSupported,
    #[error("The stored credentials could not be decrypted; reconnect the provider.")]
    Undecryptable,
    #[error("No such resource.")]
    ResourceNotFound,
    #[error("model {0:?} is not offered by the provider; GET .../models lists them")]
    UnknownModel(String),
    #[error(
        "Usage monitoring reads the provider's usage report, which needs an admin key: reconnect with one as api_secret."
    )]
    AdminKeyRequired,
    #[error(transparent)]
    Contact(#[from] super::ContactError),
    #[error(transparent)]
    Webhook(#[from] super::WebhookEndpointError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Integration(#[from] IntegrationError),
    #[error("{0} is not available for new connections.")]
    InactiveProvider(String),
    #[error("{0} connects with OAuth, which is not available yet.")]
    OAuthNotSupported(String),
    #[error("{required_name} must be connected first.")]
    DependencyMissing { required: ProviderSlug, required_name: String },
    #[error("credentials.{0} is required")]
    MissingField(&'static str),
    #[error("credentials.{0} is not a field of this provider")]
    UnknownField(String),
    #[error("credentials.{field} must be at most {max} characters")]
    FieldTooLong { field: &'static str, max: usize },
    #[error("credentials.{0} must not contain control characters")]
    FieldInvalid(&'static str),
    #[error("{0} is not pre-configured on this deployment; enter credentials instead.")]
    NotPreconfigured(String),
    #[error("You already have a connection to {0}; disconnect it first.")]
    AlreadyConnected(String),
    /// The provider refused or could not be reached: I7's message.
    #[error("{message}")]
    CheckFailed { outcome: HealthOutcome, message: String },
}

impl From<Denied> for ConnectError {
    fn from(err: Denied) -> Self {
        ConnectError::Integration(err.into())
    }
}

impl From<StorageError> for ConnectError {
    fn from(err: StorageError) -> Self {
        ConnectError::Integration(err.into())
    }
}

/// A catalog entry with this organization's state of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderListing {
    pub definition: ProviderDefinition,
    pub state: Option<ProviderState>,
    pub preconfigured: bool,
}

/// A connection whose health changed at a scheduled check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    pub view: ConnectionView,
    pub check: HealthCheck,
    /// True when it is healthy again; false when it started failing.
    pub recovered: bool,
}

/// A connection with its health history (I10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionDetail {
    pub view: ConnectionView,
    pub history: Vec<HealthCheck>,
}

#[derive(Clone)]
pub struct IntegrationPorts {
    pub catalog: Arc<Catalog>,
    pub repository: Arc<dyn IntegrationRepository>,
    pub cipher: Arc<dyn CredentialCipher>,
    pub client: Arc<dyn ProviderClient>,
    pub clock: Arc<dyn Clock>,
    pub preconfigured: Preconfigured,
    pub contacts: Arc<dyn crate::ports::ContactRepository>,
    /// Resource edits (I11) are audited here; connects and disconnects are written in the
    /// repository's own transaction instead.
    pub audit: Arc<dyn crate::ports::AuditLog>,
    /// Announces connects and disconnects (W3).
    pub events: Arc<dyn EventPublisher>,
}

#[derive(Clone)]
pub struct IntegrationService {
    ports: IntegrationPorts,
}

impl std::fmt::Debug for IntegrationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrationService")
    }
}

impl IntegrationService {
    pub fn new(ports: IntegrationPorts) -> Self {
        Self { ports }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.ports.catalog
    }

    fn definition(&self, slug: &str) -> Result<&ProviderDefinition, IntegrationError> {
        self.ports.catalog.get(slug).ok_or(IntegrationError::UnknownProvider)
    }

    /// The catalog with this organization's connection status (I2).
    pub async fn list_providers(
        &self,
        caller: &Caller,
        q: Option<&str>,
        category: Option<super::Category>,
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
            definition: definition.clone(),
        }
    }

    pub async fn provider(&self, caller: &Caller, slug: &str) -> Result<ProviderListing, IntegrationError> {
        caller.require(VIEW)?;
        let definition = self.definition(slug)?;
        let states = self.ports.repository.provider_states(caller.organization_id()).await?;
        Ok(self.listing(definition, &states))
    }

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

    fn assemble(fields: Vec<(CredentialField, SecretString)>) -> Option<Credentials> {
        let mut api_key = None;
        let mut api_secret = None;
        let mut account_id = None;
        for (field, value) in fields {
            match field {
                CredentialField::ApiKey => api_key = Some(value),
                CredentialField::ApiSecret => api_secret = Some(value),
                CredentialField::AccountId => account_id = Some(value.expose_secret().to_owned()),
                // Sealed to an endpoint, never among a connection's credentials.
                CredentialField::WebhookSigningSecret
                | CredentialField::IdempotentResponse
                | CredentialField::OutboundWebhookSecret => return None,
            }
        }
        Some(Credentials { api_key: api_key?, api_secret, account_id })
    }

    /// Connects a provider (I3-I9, I13). On failure nothing but the instance's `error` status
    /// and the audit entry is written, and the caller may retry at once.
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
            return Err(ConnectError::OAuthNotSupported(definition.name.clone()));
        }
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
        let mine = self.ports.repository.list_connections(organization).await?;
        if mine.iter().any(|c| {
            c.connection.provider == definition.slug
                && c.connection.user_id == caller.on_behalf_of()
                && c.connection.status == ConnectionStatus::Connected
        }) {
            return Err(ConnectError::AlreadyConnected(definition.name.clone()));
        }

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
                        let binding = CredentialBinding { organization_id: organization, connection_id, field: *field };
                        StoredCredential {
                            id: Uuid::now_v7(),
                            ciphertext: self.ports.cipher.encrypt(value, &binding),
                            binding,
                            created_at: now,
                        }
                    })
                    .collect();
                // The check runs on what decrypts from the ciphertexts, as it will later.
                let credentials = self.decrypt_all(&stored).map_err(ConnectError::Integration)?;
                (AuthMethod::ApiKey, stored, credentials)
            }
        };

        let report = self.ports.client.health_check(&definition.slug, &credentials).await;
        let existing = states.iter().find(|s| s.provider == definition.slug);
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
        let audit = |action| {
            AuditEntry::new(organization, caller.audit_actor(), action, "integration", connection_id.to_string(), now)
                .for_provider(definition.slug.as_str())
                .with("provider", definition.slug.as_str())
                .with("auth_method", auth_method.as_str())
                .with("outcome", report.outcome.as_str())
                .with("response_time_ms", report.response_time_ms.to_string())
        };

        if report.outcome != HealthOutcome::Healthy {
            // Another user's working connection keeps the instance active.
            let status =
                if existing.is_some_and(|s| s.connected) { InstanceStatus::Active } else { InstanceStatus::Error };
            let failed = IntegrationInstance { status, updated_at: now, ..instance };
            self.ports.repository.record_failed_connect(&failed, &audit(AuditAction::IntegrationConnectFailed)).await?;
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
            user_id: caller.on_behalf_of(),
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
            health: health.clone(),
        };
        self.ports.repository.save_connection(&new, &audit(AuditAction::IntegrationConnected)).await?;
        // Read back: when the instance already existed, storage kept its own row and id.
        let stored = self.ports.repository.find_connection(organization, connection_id).await?;
        let view = stored.unwrap_or(ConnectionView { connection, instance, latest_health: Some(health) });
        let data = connection_data(view.connection.id, view.connection.provider.as_str(), view.latest_health.as_ref());
        self.ports.events.publish(organization, EventType::IntegrationConnected, data).await;
        Ok(view)
    }

    fn decrypt_all(&self, stored: &[StoredCredential]) -> Result<Credentials, IntegrationError> {
        let mut fields = Vec::with_capacity(stored.len());
        for credential in stored {
            let value =
                self.ports.cipher.decrypt(&credential.ciphertext, &credential.binding).map_err(|err| match err {
                    DecryptError::UnknownKeyVersion(_) | DecryptError::Tampered => IntegrationError::Undecryptable,
                })?;
            fields.push((credential.binding.field, value));
        }
        Self::assemble(fields).ok_or(IntegrationError::Undecryptable)
    }

    /// The credentials a connection uses now: decrypted from storage, or the deployment's.
    async fn credentials_of(&self, view: &ConnectionView) -> Result<Credentials, IntegrationError> {
        match view.connection.auth_method {
            AuthMethod::Preconfigured => {
                self.ports.preconfigured.get(&view.connection.provider).cloned().ok_or(IntegrationError::Undecryptable)
            }
            AuthMethod::ApiKey => {
                let stored = self.ports.repository.credentials(view.connection.id).await?;
                self.decrypt_all(&stored)
            }
        }
    }

    pub async fn list_connections(&self, caller: &Caller) -> Result<Vec<ConnectionView>, IntegrationError> {
        caller.require(VIEW)?;
        Ok(self.ports.repository.list_connections(caller.organization_id()).await?)
    }

    async fn find(&self, caller: &Caller, id: Uuid) -> Result<ConnectionView, IntegrationError> {
        self.ports
            .repository
            .find_connection(caller.organization_id(), id)
            .await?
            .ok_or(IntegrationError::ConnectionNotFound)
    }

    pub async fn connection(&self, caller: &Caller, id: Uuid) -> Result<ConnectionDetail, IntegrationError> {
        caller.require(VIEW)?;
        let view = self.find(caller, id).await?;
        let history = self.ports.repository.health_history(id, HEALTH_HISTORY).await?;
        Ok(ConnectionDetail { view, history })
    }

    pub async fn health_history(&self, caller: &Caller, id: Uuid) -> Result<Vec<HealthCheck>, IntegrationError> {
        Ok(self.connection(caller, id).await?.history)
    }

    /// Re-runs the connection's health check and records it (I10).
    pub async fn check(&self, caller: &Caller, id: Uuid) -> Result<HealthCheck, IntegrationError> {
        caller.require(EDIT)?;
        let view = self.find(caller, id).await?;
        if view.connection.status != ConnectionStatus::Connected {
            return Err(IntegrationError::ConnectionNotFound);
        }
        self.run_check(&view).await
    }

    /// The scheduled health checks (O5): every connected connection of every organization is
    /// checked and recorded. Returns each connection whose health changed (healthy to failing, or
    /// back), with the check, for whoever wants to announce it.
    pub async fn check_all(&self) -> Result<Vec<HealthChange>, IntegrationError> {
        let mut changes = Vec::new();
        for view in self.ports.repository.connected_connections().await? {
            let before = view.latest_health.as_ref().map(|h| h.outcome);
            let check = match self.run_check(&view).await {
                Ok(check) => check,
                // One undecryptable connection must not stop the others' checks.
                Err(IntegrationError::Undecryptable) => continue,
                Err(err) => return Err(err),
            };
            let was_healthy = before.is_none_or(|o| o == HealthOutcome::Healthy);
            let is_healthy = check.outcome == HealthOutcome::Healthy;
            if was_healthy != is_healthy {
                changes.push(HealthChange { view, check, recovered: is_healthy });
            }
        }
        Ok(changes)
    }

    async fn run_check(&self, view: &ConnectionView) -> Result<HealthCheck, IntegrationError> {
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
        let status =
            if check.outcome == HealthOutcome::Healthy { InstanceStatus::Active } else { InstanceStatus::Error };
        self.ports.repository.record_health(&check, view.instance.id, status).await?;
        Ok(check)
    }

    /// Disconnects: credentials deleted, audit written (I10). Returns the connection as it was.
    pub async fn disconnect(&self, caller: &Caller, id: Uuid) -> Result<ConnectionView, IntegrationError> {
        caller.require(EDIT)?;
        let view = self.find(caller, id).await?;
        let now = self.ports.clock.now();
        let audit = AuditEntry::new(
            caller.organization_id(),
            caller.audit_actor(),
            AuditAction::IntegrationDisconnected,
            "integration",
            id.to_string(),
            now,
        )
        .for_provider(view.connection.provider.as_str())
        .with("provider", view.connection.provider.as_str());
        if self.ports.repository.disconnect(caller.organization_id(), id, now, &audit).await? {
            let data = connection_data(id, view.connection.provider.as_str(), None);
            self.ports.events.publish(caller.organization_id(), EventType::IntegrationDisconnected, data).await;
            Ok(view)
        } else {
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
        self.ports.repository.set_enabled(view.instance.id, enabled, self.ports.clock.now()).await?;
        self.audit_update(caller, &view, "enabled", enabled.to_string()).await?;
        self.find(caller, id).await
    }

    /// Writes an `integration.updated` entry for a resource edit (I9, K16): what changed and
    /// its new value. Values here are never secrets (emails, phone numbers, model ids, flags).
    async fn audit_update(
        &self,
        caller: &Caller,
        view: &ConnectionView,
        change: &str,
        value: String,
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
        .with("value", value);
        Ok(self.ports.audit.record(&entry).await?)
    }

    /// Daily token usage over the last `days` days, today included (Anthropic's usage
    /// monitoring, I11). Read live from the provider with the connection's admin key: Otesse
    /// does not proxy model calls, so the provider is the only one who knows.
    pub async fn usage(
        &self,
        caller: &Caller,
        id: Uuid,
        days: u32,
    ) -> Result<Result<Vec<crate::ports::ProviderUsageDay>, HealthOutcome>, IntegrationError> {
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

    pub fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
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
        self.ports
            .repository
            .set_selected_model(view.instance.id, Some(model.to_owned()), self.ports.clock.now())
            .await?;
        self.audit_update(caller, &view, "model", model.to_owned()).await?;
        Ok(Ok(self.find(caller, id).await?))
    }

    /// The connection's instance, if its provider offers `kind` (I11).
    async fn contact_instance(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: super::ContactKind,
    ) -> Result<ConnectionView, IntegrationError> {
        let view = self.find(caller, connection).await?;
        let definition = self.definition(view.connection.provider.as_str())?;
        if !definition.resource_types.contains(&kind.resource_type()) {
            return Err(IntegrationError::NotSupported);
        }
        Ok(view)
    }

    /// Sender emails or phone numbers of the connection's provider, oldest first.
    pub async fn contacts(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: super::ContactKind,
    ) -> Result<Vec<super::ContactResource>, IntegrationError> {
        caller.require(VIEW)?;
        let view = self.contact_instance(caller, connection, kind).await?;
        Ok(self.ports.contacts.list(caller.organization_id(), view.instance.id, kind).await?)
    }

    /// Adds one; the first of its kind becomes the default.
    pub async fn add_contact(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: super::ContactKind,
        value: &str,
        label: Option<&str>,
    ) -> Result<super::ContactResource, IntegrationError> {
        caller.require(EDIT)?;
        let value = kind.parse_value(value)?;
        let label = super::parse_label(label)?;
        let view = self.contact_instance(caller, connection, kind).await?;
        let now = self.ports.clock.now();
        let resource = super::ContactResource {
            id: Uuid::now_v7(),
            organization_id: caller.organization_id(),
            instance_id: view.instance.id,
            kind,
            value,
            label,
            is_default: false,
            created_at: now,
            updated_at: now,
        };
        let added = self.ports.contacts.insert(&resource).await.map_err(contact_store_error)?;
        self.audit_update(caller, &view, &format!("{}.added", kind.as_str()), added.value.clone()).await?;
        Ok(added)
    }

    pub async fn update_contact(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: super::ContactKind,
        id: Uuid,
        value: Option<&str>,
        label: Option<&str>,
    ) -> Result<super::ContactResource, IntegrationError> {
        caller.require(EDIT)?;
        let value = value.map(|v| kind.parse_value(v)).transpose()?;
        let label = label.map(|l| super::parse_label(Some(l))).transpose()?;
        let view = self.owned_contact(caller, connection, kind, id).await?;
        let updated = self
            .ports
            .contacts
            .update(caller.organization_id(), id, value, label, self.ports.clock.now())
            .await
            .map_err(contact_store_error)?
            .ok_or(IntegrationError::ResourceNotFound)?;
        self.audit_update(caller, &view, &format!("{}.updated", kind.as_str()), updated.value.clone()).await?;
        Ok(updated)
    }

    pub async fn delete_contact(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: super::ContactKind,
        id: Uuid,
    ) -> Result<(), IntegrationError> {
        caller.require(EDIT)?;
        let view = self.owned_contact(caller, connection, kind, id).await?;
        if self.ports.contacts.delete(caller.organization_id(), id).await? {
            self.audit_update(caller, &view, &format!("{}.deleted", kind.as_str()), id.to_string()).await
        } else {
            Err(IntegrationError::ResourceNotFound)
        }
    }

    /// Makes it the one default of its kind.
    pub async fn set_default_contact(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: super::ContactKind,
        id: Uuid,
    ) -> Result<super::ContactResource, IntegrationError> {
        caller.require(EDIT)?;
        let view = self.owned_contact(caller, connection, kind, id).await?;
        let chosen = self
            .ports
            .contacts
            .set_default(caller.organization_id(), id, self.ports.clock.now())
            .await?
            .ok_or(IntegrationError::ResourceNotFound)?;
        self.audit_update(caller, &view, &format!("{}.default", kind.as_str()), chosen.value.clone()).await?;
        Ok(chosen)
    }

    /// The resource must belong to this connection's instance and be of this kind.
    async fn owned_contact(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: super::ContactKind,
        id: Uuid,
    ) -> Result<ConnectionView, IntegrationError> {
        let view = self.contact_instance(caller, connection, kind).await?;
        let listed = self.ports.contacts.list(caller.organization_id(), view.instance.id, kind).await?;
        if listed.iter().any(|c| c.id == id) { Ok(view) } else { Err(IntegrationError::ResourceNotFound) }
    }
}

fn contact_store_error(err: crate::ports::ContactStoreError) -> IntegrationError {
    match err {
        crate::ports::ContactStoreError::Duplicate => IntegrationError::Contact(super::ContactError::Duplicate),
        crate::ports::ContactStoreError::Storage(err) => IntegrationError::Storage(err),
    }
}

/// Sends an organization's email through its connected Postmark, from its default sender
/// (the [`crate::notification::Mailer`] of K13's emails).
#[derive(Clone, Debug)]
pub struct PostmarkMailer {
    service: IntegrationService,
}

impl PostmarkMailer {
    pub fn new(service: IntegrationService) -> Self {
        Self { service }
    }
}

#[async_trait::async_trait]
impl crate::notification::Mailer for PostmarkMailer {
    async fn send(
        &self,
        organization: OrganizationId,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<String, crate::notification::MailError> {
        use crate::notification::MailError;
        let ports = &self.service.ports;
        let storage = |err: StorageError| MailError::Failed(format!("storage failure: {err}"));
        let postmark = ProviderSlug::parse("postmark").expect("a valid slug");
        let connections = ports.repository.list_connections(organization).await.map_err(storage)?;
        let Some(view) = connections
            .into_iter()
            .find(|v| v.connection.provider == postmark && v.connection.status == super::ConnectionStatus::Connected)
        else {
            return Err(MailError::NotConfigured("Postmark is not connected".into()));
        };
        let senders = ports
            .contacts
            .list(organization, view.instance.id, super::ContactKind::SenderEmail)
            .await
            .map_err(storage)?;
        let Some(sender) = senders.into_iter().find(|s| s.is_default) else {
            return Err(MailError::NotConfigured("Postmark has no default sender email".into()));
        };
        let credentials = self
            .service
            .credentials_of(&view)
            .await
            .map_err(|_| MailError::NotConfigured("Postmark's credentials could not be read".into()))?;
        let message = crate::ports::OutgoingMessage {
            from: sender.value,
            to: to.to_owned(),
            subject: subject.to_owned(),
            body: body.to_owned(),
        };
        ports.client.send_email(&postmark, &credentials, &message).await.map_err(|report| {
            MailError::Failed(format!("Postmark did not accept it: {} ({})", report.outcome.as_str(), report.detail))
        })
    }
}

/// What one rewrap pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewrapProgress {
    /// Credentials re-encrypted under the newest key.
    pub rewrapped: u64,
    /// Credentials that changed underneath (disconnected meanwhile) and were left alone.
    pub skipped: u64,
}

/// Re-encrypts every credential under the newest master key (I5), in batches, while the
/// server keeps serving: each row is swapped only if it still holds the ciphertext read
/// (compare-and-swap), so a concurrent disconnect or reconnect is never overwritten.
#[derive(Clone)]
pub struct Rewrapper {
    repository: Arc<dyn IntegrationRepository>,
    cipher: Arc<dyn CredentialCipher>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Rewrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rewrapper")
    }
}

impl Rewrapper {
    pub fn new(
        repository: Arc<dyn IntegrationRepository>,
        cipher: Arc<dyn CredentialCipher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { repository, cipher, clock }
    }

    /// Runs batches until no secret in use under an older key remains. An outbound endpoint's
    /// previous secret counts while it is still sent (its rotation's overlap), so that removing
    /// the old master key afterwards does not cut the overlap short.
    pub async fn run(&self, batch_size: u32) -> Result<RewrapProgress, IntegrationError> {
        let current = self.cipher.current_version();
        let now = self.clock.now();
        let mut progress = RewrapProgress::default();
        // What could not be swapped, by row and ciphertext: an outbound endpoint's current and
        // previous secret share a row id, and one changing underneath says nothing of the other.
        let mut stale = std::collections::HashSet::new();
        loop {
            let batch = self.repository.credentials_below_version(current, now, batch_size).await?;
            let fresh: Vec<_> =
                batch.into_iter().filter(|c| !stale.contains(&(c.id, c.ciphertext.bytes.clone()))).collect();
            if fresh.is_empty() {
                return Ok(progress);
            }
            for credential in fresh {
                let plaintext = self
                    .cipher
                    .decrypt(&credential.ciphertext, &credential.binding)
                    .map_err(|_| IntegrationError::Undecryptable)?;
                let sealed = self.cipher.encrypt(&plaintext, &credential.binding);
                if self.repository.replace_ciphertext(credential.id, &credential.ciphertext, &sealed).await? {
                    progress.rewrapped += 1;
                } else {
                    stale.insert((credential.id, credential.ciphertext.bytes));
                    progress.skipped += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::catalog::fixtures::provider;
    use super::super::{Category, Ciphertext, HealthReport};
    use super::*;
    use crate::ports::{MockClock, MockCredentialCipher, MockIntegrationRepository, MockProviderClient};
    use crate::user::{Role, UserId};

    fn actor(role: Role) -> Caller {
        crate::caller::fixtures::user(role)
    }

    /// A readable fake cipher: version 1, bytes = binding's associated data + plaintext.
    fn cipher() -> MockCredentialCipher {
        let mut cipher = MockCredentialCipher::new();
        cipher.expect_encrypt().returning(|plain, binding| {
            let mut bytes = binding.associated_data();
            bytes.push(b'|');
            bytes.extend(plain.expose_secret().bytes().rev());
            Ciphertext { key_version: 2, bytes }
        });
        cipher.expect_decrypt().returning(|ct, binding| {
            let prefix = binding.associated_data();
            if !ct.bytes.starts_with(&prefix) {
                return Err(DecryptError::Tampered);
            }
            Ok(SecretString::from(ct.bytes[prefix.len() + 1..].iter().rev().map(|b| *b as char).collect::<String>()))
        });
        cipher.expect_current_version().return_const(2u32);
        cipher
    }

    fn report(outcome: HealthOutcome) -> HealthReport {
        HealthReport { outcome, response_time_ms: 12, detail: "HTTP 200".into() }
    }

    struct Mocks {
        repository: MockIntegrationRepository,
        client: MockProviderClient,
        preconfigured: Preconfigured,
        contacts: crate::ports::MockContactRepository,
        audit: crate::ports::MockAuditLog,
        /// Every webhook event the service announced, in order.
        published: Published,
    }

    type Published = Arc<Mutex<Vec<(OrganizationId, EventType, serde_json::Value)>>>;

    fn recorder(published: &Published) -> Arc<dyn EventPublisher> {
        let mut events = crate::webhook::MockEventPublisher::new();
        let published = published.clone();
        events.expect_publish().returning(move |organization, event, data| {
            published.lock().unwrap().push((organization, event, data));
        });
        Arc::new(events)
    }

    impl Mocks {
        /// The standard catalog plus an Anthropic entry with model selection.
        fn with_anthropic(mocks: Mocks) -> IntegrationService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(Utc::now);
            let catalog = Catalog::new(vec![ProviderDefinition {
                resource_types: vec![ResourceType::ModelSelection],
                ..provider("anthropic", Category::Ai, &[])
            }])
            .unwrap();
            IntegrationService::new(IntegrationPorts {
                catalog: Arc::new(catalog),
                repository: Arc::new(mocks.repository),
                cipher: Arc::new(cipher()),
                client: Arc::new(mocks.client),
                clock: Arc::new(clock),
                preconfigured: mocks.preconfigured,
                contacts: Arc::new(mocks.contacts),
                audit: Arc::new(mocks.audit),
                events: recorder(&mocks.published),
            })
        }

        fn new() -> Self {
            let mut repository = MockIntegrationRepository::new();
            repository.expect_provider_states().returning(|_| Ok(vec![]));
            repository.expect_list_connections().returning(|_| Ok(vec![]));
            repository.expect_find_instance().returning(|_, _| Ok(None));
            Self {
                repository,
                client: MockProviderClient::new(),
                preconfigured: Preconfigured::default(),
                contacts: crate::ports::MockContactRepository::new(),
                audit: crate::ports::MockAuditLog::new(),
                published: Published::default(),
            }
        }

        fn service(self) -> IntegrationService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(Utc::now);
            let catalog = Catalog::new(vec![
                ProviderDefinition {
                    resource_types: vec![ResourceType::SenderEmails],
                    ..provider("postmark", Category::Communication, &[])
                },
                provider("needs_postmark", Category::Communication, &["postmark"]),
                ProviderDefinition { active: false, ..provider("retired", Category::Ai, &[]) },
            ])
            .unwrap();
            IntegrationService::new(IntegrationPorts {
                catalog: Arc::new(catalog),
                repository: Arc::new(self.repository),
                cipher: Arc::new(cipher()),
                client: Arc::new(self.client),
                clock: Arc::new(clock),
                preconfigured: self.preconfigured,
                contacts: Arc::new(self.contacts),
                audit: Arc::new(self.audit),
                events: recorder(&self.published),
            })
        }
    }

    fn typed(key: &str) -> ConnectInput {
        ConnectInput::Credentials(BTreeMap::from([("api_key".to_owned(), SecretString::from(key.to_owned()))]))
    }

    #[tokio::test]
    async fn a_healthy_connect_stores_bound_ciphertexts_with_everything_else_at_once() {
        let mut mocks = Mocks::new();
        mocks
            .client
            .expect_health_check()
            .withf(|slug, creds| slug.as_str() == "postmark" && creds.api_key.expose_secret() == "pm-secret")
            .times(1)
            .returning(|_, _| report(HealthOutcome::Healthy));
        let saved = Arc::new(Mutex::new(None));
        let sink = saved.clone();
        mocks.repository.expect_save_connection().times(1).returning(move |new, audit| {
            assert_eq!(audit.action, AuditAction::IntegrationConnected);
            assert_eq!(audit.provider.as_deref(), Some("postmark"));
            assert!(!format!("{audit:?}").contains("pm-secret"));
            *sink.lock().unwrap() = Some(new.clone());
            Ok(())
        });
        mocks.repository.expect_record_failed_connect().never();
        mocks.repository.expect_find_connection().returning(|_, _| Ok(None));
        let published = mocks.published.clone();
        let view = mocks.service().connect(&actor(Role::Manager), "postmark", typed(" pm-secret ")).await.unwrap();
        // Announced once it is stored, with the check's outcome and never the credential.
        let events = published.lock().unwrap().clone();
        assert_eq!(events.len(), 1);
        let (organization, event, data) = &events[0];
        assert_eq!((*organization, *event), (view.connection.organization_id, EventType::IntegrationConnected));
        assert_eq!(data["connection_id"], serde_json::json!(view.connection.id));
        assert_eq!(data["health_check"]["outcome"], "healthy");
        assert!(!data.to_string().contains("pm-secret"));
        let new = saved.lock().unwrap().clone().unwrap();
        assert_eq!(view.connection.id, new.connection.id);
        assert_eq!(new.instance.status, InstanceStatus::Active);
        assert_eq!(new.credentials.len(), 1);
        let credential = &new.credentials[0];
        assert_eq!(credential.binding.connection_id, new.connection.id);
        assert_eq!(credential.binding.field, CredentialField::ApiKey);
        assert!(!String::from_utf8_lossy(&credential.ciphertext.bytes).contains("pm-secret"), "stored encrypted");
        assert_eq!(new.health.outcome, HealthOutcome::Healthy);
    }

    #[tokio::test]
    async fn a_disconnect_is_announced_once_stored() {
        for stored in [true, false] {
            let view = connected_view("postmark");
            let id = view.connection.id;
            let mut mocks = Mocks::new();
            mocks.repository.expect_find_connection().returning(move |_, _| Ok(Some(view.clone())));
            mocks
                .repository
                .expect_disconnect()
                .withf(|_, _, _, audit| audit.action == AuditAction::IntegrationDisconnected)
                .times(1)
                .returning(move |_, _, _, _| Ok(stored));
            let published = mocks.published.clone();
            let outcome = mocks.service().disconnect(&actor(Role::Admin), id).await;
            let events = published.lock().unwrap().clone();
            if stored {
                assert_eq!(outcome.unwrap().connection.id, id);
                assert_eq!(events.len(), 1);
                assert_eq!(events[0].1, EventType::IntegrationDisconnected);
                assert_eq!(events[0].2, serde_json::json!({"connection_id": id, "provider": "postmark"}));
            } else {
                // Disconnected meanwhile by someone else, who announced it.
                assert_eq!(outcome.unwrap_err(), IntegrationError::ConnectionNotFound);
                assert!(events.is_empty());
            }
        }
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
                .withf(|instance, audit| {
                    instance.status == InstanceStatus::Error && audit.action == AuditAction::IntegrationConnectFailed
                })
                .times(1)
                .returning(|_, _| Ok(()));
            let published = mocks.published.clone();
            let err = mocks.service().connect(&actor(Role::Admin), "postmark", typed("k")).await.unwrap_err();
            assert!(published.lock().unwrap().is_empty(), "a failed connect is not announced");
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
        mocks.preconfigured = Preconfigured::new(HashMap::from([(
            "postmark".to_owned(),
            Credentials { api_key: "deployment-key".to_owned().into(), api_secret: None, account_id: None },
        )]));
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

    fn stored(id: u128, version: u32) -> StoredCredential {
        let binding = CredentialBinding {
            organization_id: OrganizationId(Uuid::from_u128(1)),
            connection_id: Uuid::from_u128(id),
            field: CredentialField::ApiKey,
        };
        let mut ciphertext = cipher().encrypt(&SecretString::from(format!("secret-{id}")), &binding);
        ciphertext.key_version = version;
        StoredCredential { id: Uuid::from_u128(id), binding, ciphertext, created_at: Utc::now() }
    }

    fn rewrap_clock() -> (DateTime<Utc>, Arc<MockClock>) {
        use chrono::TimeZone;
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        (now, Arc::new(clock))
    }

    #[tokio::test]
    async fn rewrap_swaps_each_old_ciphertext_once_and_skips_rows_that_changed() {
        let (now, clock) = rewrap_clock();
        let mut repository = MockIntegrationRepository::new();
        let mut seq = mockall::Sequence::new();
        repository
            .expect_credentials_below_version()
            .withf(move |version, at, _| *version == 2 && *at == now)
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(vec![stored(1, 1), stored(2, 1)]));
        // Row 2 changed underneath: it comes back, and must not loop forever.
        repository
            .expect_credentials_below_version()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(vec![stored(2, 1)]));
        repository
            .expect_replace_ciphertext()
            .returning(|id, old, new| Ok(id == Uuid::from_u128(1) && old.key_version == 1 && new.key_version == 2));
        let progress = Rewrapper::new(Arc::new(repository), Arc::new(cipher()), clock).run(10).await.unwrap();
        assert_eq!(progress, RewrapProgress { rewrapped: 1, skipped: 1 });
    }

    #[tokio::test]
    async fn rewrap_takes_an_outbound_endpoint_s_current_and_previous_secret_each_by_its_own_ciphertext() {
        let (_, clock) = rewrap_clock();
        // Both secrets of one endpoint share its id and binding; only the ciphertexts differ.
        let current = stored(7, 1);
        let mut previous = current.clone();
        previous.ciphertext =
            cipher().encrypt(&SecretString::from("the secret before the rotation"), &previous.binding);
        previous.ciphertext.key_version = 1;
        let listed = vec![current.clone(), previous.clone()];
        let mut repository = MockIntegrationRepository::new();
        let mut seq = mockall::Sequence::new();
        repository
            .expect_credentials_below_version()
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _, _| Ok(listed.clone()));
        repository.expect_credentials_below_version().times(1).in_sequence(&mut seq).returning(|_, _, _| Ok(vec![]));
        let swapped = Arc::new(Mutex::new(Vec::new()));
        let seen = swapped.clone();
        repository.expect_replace_ciphertext().times(2).returning(move |id, old, new| {
            seen.lock().unwrap().push((id, old.clone(), new.clone()));
            Ok(true)
        });
        let progress = Rewrapper::new(Arc::new(repository), Arc::new(cipher()), clock).run(10).await.unwrap();
        assert_eq!(progress, RewrapProgress { rewrapped: 2, skipped: 0 });
        let swapped = swapped.lock().unwrap();
        let expected = |c: &StoredCredential| {
            let plain = cipher().decrypt(&c.ciphertext, &c.binding).unwrap();
            (c.id, c.ciphertext.clone(), cipher().encrypt(&plain, &c.binding))
        };
        assert_eq!(*swapped, vec![expected(&current), expected(&previous)], "each re-sealed from its own plaintext");
        assert_ne!(swapped[0].2, swapped[1].2);
    }

    #[tokio::test]
    async fn a_secret_that_changed_underneath_does_not_hold_back_the_other_secret_of_its_endpoint() {
        let (_, clock) = rewrap_clock();
        let current = stored(7, 1);
        let mut previous = current.clone();
        previous.ciphertext = cipher().encrypt(&SecretString::from("the secret before"), &previous.binding);
        previous.ciphertext.key_version = 1;
        let mut repository = MockIntegrationRepository::new();
        let mut seq = mockall::Sequence::new();
        // Batches of one: the current secret first; it cannot be swapped and is listed again.
        for listed in [vec![current.clone()], vec![current.clone(), previous.clone()], vec![current.clone()]] {
            repository
                .expect_credentials_below_version()
                .times(1)
                .in_sequence(&mut seq)
                .returning(move |_, _, _| Ok(listed.clone()));
        }
        let changed = current.ciphertext.clone();
        repository.expect_replace_ciphertext().times(2).returning(move |_, old, _| Ok(*old != changed));
        let progress = Rewrapper::new(Arc::new(repository), Arc::new(cipher()), clock).run(1).await.unwrap();
        assert_eq!(progress, RewrapProgress { rewrapped: 1, skipped: 1 }, "the previous secret is still rewrapped");
    }

    pub(super) fn connected_view_for(provider_slug: &str) -> ConnectionView {
        connected_view(provider_slug)
    }

    fn connected_view(provider_slug: &str) -> ConnectionView {
        let now = Utc::now();
        let org = OrganizationId(Uuid::from_u128(1));
        ConnectionView {
            connection: IntegrationConnection {
                id: Uuid::from_u128(10),
                instance_id: Uuid::from_u128(20),
                organization_id: org,
                provider: ProviderSlug::parse(provider_slug).unwrap(),
                user_id: UserId(Uuid::from_u128(2)),
                auth_method: AuthMethod::ApiKey,
                status: ConnectionStatus::Connected,
                created_at: now,
                disconnected_at: None,
            },
            instance: IntegrationInstance {
                id: Uuid::from_u128(20),
                organization_id: org,
                provider: ProviderSlug::parse(provider_slug).unwrap(),
                status: InstanceStatus::Active,
                enabled: true,
                selected_model: None,
                created_at: now,
                updated_at: now,
            },
            latest_health: None,
        }
    }

    #[tokio::test]
    async fn contacts_are_validated_and_kept_to_providers_that_offer_them() {
        use super::super::{ContactError, ContactKind};
        let mut mocks = Mocks::new();
        mocks.repository.expect_find_connection().returning(|_, _| Ok(Some(connected_view("postmark"))));
        mocks.contacts.expect_insert().never();
        mocks.contacts.expect_list().returning(|_, _, _| Ok(vec![]));
        mocks.audit.expect_record().never();
        let svc = mocks.service();
        let manager = actor(Role::Manager);
        let conn = Uuid::from_u128(10);
        let err = svc.add_contact(&manager, conn, ContactKind::SenderEmail, "not-an-email", None).await.unwrap_err();
        assert_eq!(err, IntegrationError::Contact(ContactError::InvalidEmail));
        let err = svc.add_contact(&manager, conn, ContactKind::PhoneNumber, "+14155550123", None).await.unwrap_err();
        assert_eq!(err, IntegrationError::NotSupported, "Postmark has no phone numbers");
        let err = svc.set_default_contact(&manager, conn, ContactKind::SenderEmail, Uuid::from_u128(99)).await;
        assert_eq!(err.unwrap_err(), IntegrationError::ResourceNotFound, "not one of this connection's senders");
        let viewer = actor(Role::Viewer);
        let err = svc.add_contact(&viewer, conn, ContactKind::SenderEmail, "a@b.co", None).await.unwrap_err();
        assert_eq!(err, IntegrationError::Forbidden(crate::caller::Denied::Role(Permission::SettingsEdit)));
    }

    #[tokio::test]
    async fn a_valid_sender_reaches_storage_normalised() {
        use super::super::ContactKind;
        let mut mocks = Mocks::new();
        mocks.repository.expect_find_connection().returning(|_, _| Ok(Some(connected_view("postmark"))));
        mocks
            .contacts
            .expect_insert()
            .withf(|r| r.value == "billing@acme.test" && r.label == "Billing" && r.instance_id == Uuid::from_u128(20))
            .times(1)
            .returning(|r| Ok(super::super::ContactResource { is_default: true, ..r.clone() }));
        mocks
            .audit
            .expect_record()
            .withf(|e| {
                e.action == AuditAction::IntegrationUpdated
                    && e.provider.as_deref() == Some("postmark")
                    && e.details.get("change").map(String::as_str) == Some("sender_email.added")
                    && e.details.get("value").map(String::as_str) == Some("billing@acme.test")
            })
            .times(1)
            .returning(|_| Ok(()));
        let created = mocks
            .service()
            .add_contact(
                &actor(Role::Admin),
                Uuid::from_u128(10),
                ContactKind::SenderEmail,
                "Billing@Acme.Test",
                Some(" Billing "),
            )
            .await
            .unwrap();
        assert!(created.is_default);
    }

    #[tokio::test]
    async fn only_an_offered_model_can_be_selected() {
        let mut mocks = Mocks::new();
        mocks.repository.expect_find_connection().returning(|_, _| {
            let mut view = connected_view("anthropic");
            view.connection.auth_method = AuthMethod::Preconfigured;
            Ok(Some(view))
        });
        mocks.preconfigured = Preconfigured::new(HashMap::from([(
            "anthropic".to_owned(),
            Credentials { api_key: "k".to_owned().into(), api_secret: None, account_id: None },
        )]));
        mocks.client.expect_list_models().returning(|_, _| {
            Ok(vec![ProviderModel { id: "claude-sonnet-4-5".into(), display_name: "Claude Sonnet 4.5".into() }])
        });
        mocks
            .repository
            .expect_set_selected_model()
            .withf(|_, model, _| model.as_deref() == Some("claude-sonnet-4-5"))
            .times(1)
            .returning(|_, _, _| Ok(()));
        mocks
            .audit
            .expect_record()
            .withf(|e| e.details.get("change").map(String::as_str) == Some("model"))
            .times(1)
            .returning(|_| Ok(()));
        let svc = Mocks::with_anthropic(mocks);
        let admin = actor(Role::Admin);
        let err = svc.select_model(&admin, Uuid::from_u128(10), "gpt-5").await.unwrap_err();
        assert_eq!(err, IntegrationError::UnknownModel("gpt-5".into()));
        assert!(svc.select_model(&admin, Uuid::from_u128(10), "claude-sonnet-4-5").await.unwrap().is_ok());
    }
}

#[cfg(test)]
mod mailer_tests {
    use super::*;
    use crate::integration::{ContactKind, ContactResource};
    use crate::notification::{MailError, Mailer};
    use crate::ports::{
        MockClock, MockContactRepository, MockCredentialCipher, MockIntegrationRepository, MockProviderClient,
    };

    fn org() -> OrganizationId {
        OrganizationId(Uuid::from_u128(1))
    }

    fn mailer(
        repository: MockIntegrationRepository,
        contacts: MockContactRepository,
        client: MockProviderClient,
    ) -> PostmarkMailer {
        let mut clock = MockClock::new();
        clock.expect_now().returning(Utc::now);
        let catalog = Catalog::new(vec![super::super::catalog::fixtures::provider(
            "postmark",
            super::super::Category::Communication,
            &[],
        )])
        .unwrap();
        let preconfigured = Preconfigured::new(HashMap::from([(
            "postmark".to_owned(),
            Credentials { api_key: "pm-token".to_owned().into(), api_secret: None, account_id: None },
        )]));
        PostmarkMailer::new(IntegrationService::new(IntegrationPorts {
            catalog: Arc::new(catalog),
            repository: Arc::new(repository),
            cipher: Arc::new(MockCredentialCipher::new()),
            client: Arc::new(client),
            clock: Arc::new(clock),
            preconfigured,
            contacts: Arc::new(contacts),
            audit: Arc::new(crate::ports::MockAuditLog::new()),
            // No expectation: sending mail announces nothing.
            events: Arc::new(crate::webhook::MockEventPublisher::new()),
        }))
    }

    fn postmark_connection() -> ConnectionView {
        let mut view = super::tests::connected_view_for("postmark");
        view.connection.auth_method = AuthMethod::Preconfigured;
        view
    }

    fn sender(value: &str, is_default: bool) -> ContactResource {
        ContactResource {
            id: Uuid::now_v7(),
            organization_id: org(),
            instance_id: Uuid::from_u128(20),
            kind: ContactKind::SenderEmail,
            value: value.into(),
            label: String::new(),
            is_default,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn without_postmark_or_a_default_sender_nothing_is_sent() {
        let mut repository = MockIntegrationRepository::new();
        repository.expect_list_connections().times(1).returning(|_| Ok(vec![]));
        let mut client = MockProviderClient::new();
        client.expect_send_email().never();
        let err = mailer(repository, MockContactRepository::new(), client).send(org(), "a@b.co", "s", "b").await;
        assert_eq!(err, Err(MailError::NotConfigured("Postmark is not connected".into())));

        let mut repository = MockIntegrationRepository::new();
        repository.expect_list_connections().returning(|_| Ok(vec![postmark_connection()]));
        let mut contacts = MockContactRepository::new();
        contacts.expect_list().returning(|_, _, _| Ok(vec![]));
        let mut client = MockProviderClient::new();
        client.expect_send_email().never();
        let err = mailer(repository, contacts, client).send(org(), "a@b.co", "s", "b").await;
        assert_eq!(err, Err(MailError::NotConfigured("Postmark has no default sender email".into())));
    }

    #[tokio::test]
    async fn mail_goes_from_the_default_sender_with_the_connections_token() {
        let mut repository = MockIntegrationRepository::new();
        repository.expect_list_connections().returning(|_| Ok(vec![postmark_connection()]));
        let mut contacts = MockContactRepository::new();
        contacts
            .expect_list()
            .returning(|_, _, _| Ok(vec![sender("first@acme.test", false), sender("billing@acme.test", true)]));
        let mut client = MockProviderClient::new();
        client
            .expect_send_email()
            .withf(|slug, creds, message| {
                slug.as_str() == "postmark"
                    && creds.api_key.expose_secret() == "pm-token"
                    && message.from == "billing@acme.test"
                    && message.to == "admin@acme.test"
            })
            .times(1)
            .returning(|_, _, _| Ok("msg-42".into()));
        let sent = mailer(repository, contacts, client).send(org(), "admin@acme.test", "Subject", "Body").await;
        assert_eq!(sent, Ok("msg-42".into()));
    }
}

#[cfg(test)]
mod scheduled_check_tests {
    use super::*;
    use crate::ports::{
        MockClock, MockContactRepository, MockCredentialCipher, MockIntegrationRepository, MockProviderClient,
    };

    fn view(id: u128, last: Option<HealthOutcome>) -> ConnectionView {
        let mut view = super::tests::connected_view_for("postmark");
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

    #[tokio::test]
    async fn only_connections_whose_health_changed_are_reported() {
        let mut repository = MockIntegrationRepository::new();
        repository.expect_connected_connections().returning(|| {
            Ok(vec![
                view(1, Some(HealthOutcome::Healthy)),
                view(2, Some(HealthOutcome::Healthy)),
                view(3, Some(HealthOutcome::Unreachable)),
            ])
        });
        repository.expect_record_health().times(3).returning(|_, _, _| Ok(()));
        let mut client = MockProviderClient::new();
        let outcomes =
            std::sync::Mutex::new(vec![HealthOutcome::Healthy, HealthOutcome::Unreachable, HealthOutcome::Healthy]);
        client.expect_health_check().times(3).returning(move |_, _| super::super::HealthReport {
            outcome: outcomes.lock().unwrap().pop().unwrap(),
            response_time_ms: 3,
            detail: "HTTP".into(),
        });
        let mut clock = MockClock::new();
        clock.expect_now().returning(Utc::now);
        let service = IntegrationService::new(IntegrationPorts {
            catalog: Arc::new(Catalog::new(vec![]).unwrap()),
            repository: Arc::new(repository),
            cipher: Arc::new(MockCredentialCipher::new()),
            client: Arc::new(client),
            clock: Arc::new(clock),
            preconfigured: Preconfigured::new(HashMap::from([(
                "postmark".to_owned(),
                Credentials { api_key: "k".to_owned().into(), api_secret: None, account_id: None },
            )])),
            contacts: Arc::new(MockContactRepository::new()),
            audit: Arc::new(crate::ports::MockAuditLog::new()),
            // Health changes are announced by the job that runs the checks, not here.
            events: Arc::new(crate::webhook::MockEventPublisher::new()),
        });
        let changes = service.check_all().await.unwrap();
        let summary: Vec<_> = changes.iter().map(|c| (c.view.connection.id.as_u128(), c.recovered)).collect();
        // 1 stays healthy, 2 starts failing, 3 recovers.
        assert_eq!(summary, [(2, false), (3, true)]);
    }
}
