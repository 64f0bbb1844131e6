//! The integrations service (I2-I11, I13): its ports, its errors, and what its operations
//! share. The operations live beside it, one file per concern: browsing the catalog
//! (`browse.rs`), connecting (`connect.rs`), the connected apps (`connections.rs`), health
//! checks (`health.rs`), model selection and usage (`models.rs`), sender emails and phone
//! numbers (`contacts.rs`).
//!
//! Every change is recorded as a [`DomainEvent`] handed to the repository that stores it, so
//! the audit row and the webhook deliveries commit with the change.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use super::{
    AuthMethod, Catalog, ConnectionView, ContactError, CredentialField, Credentials, HealthCheck, HealthOutcome,
    IntegrationRepository, ProviderClient, ProviderDefinition, ProviderSlug, ProviderState, StoredCredential,
    WebhookEndpointError,
};
use crate::StorageError;
use crate::api_key::Scope;
use crate::caller::{Caller, Denied, Need};
use crate::event::{DomainEvent, Event};
use crate::ports::Clock;
use crate::sealed::CredentialCipher;
use crate::user::Permission;

/// How many health checks the connection detail shows.
pub const HEALTH_HISTORY: u32 = 20;

/// Browsing integrations needs `settings.view`, changing them `settings.edit`; a key with
/// `integrations.manage` may do both (what it connects belongs to its creator).
pub(crate) const VIEW: Need = Need::UserOrKey(Permission::SettingsView, Scope::IntegrationsManage);
pub(crate) const EDIT: Need = Need::UserOrKey(Permission::SettingsEdit, Scope::IntegrationsManage);

/// Credentials the deployment supplies for some providers (I13). Never returned or logged.
#[derive(Clone, Default)]
pub struct Preconfigured(HashMap<String, Credentials>);

impl std::fmt::Debug for Preconfigured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Preconfigured {
    /// The deployment's credentials, by provider slug.
    pub fn new(by_slug: HashMap<String, Credentials>) -> Self {
        Self(by_slug)
    }

    /// Whether the deployment supplies credentials for `slug`.
    pub fn has(&self, slug: &ProviderSlug) -> bool {
        self.0.contains_key(slug.as_str())
    }

    pub(super) fn get(&self, slug: &ProviderSlug) -> Option<&Credentials> {
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

/// Why an integration operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrationError {
    /// The caller may not: a user without `settings.view` (reads) or `settings.edit` (changes), or
    /// a key without `integrations.manage` (or a test key).
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// No provider in the catalog has this slug.
    #[error("No such provider.")]
    UnknownProvider,
    /// The organization has no connection with this id (or it was disconnected meanwhile).
    #[error("No such connection.")]
    ConnectionNotFound,
    /// The provider does not offer this resource or operation (I11): sender emails on Stripe, say.
    #[error("This provider does not support that.")]
    NotSupported,
    /// The stored credentials do not open (a master key was removed), or a pre-configured
    /// provider's credentials are no longer configured.
    #[error("The stored credentials could not be decrypted; reconnect the provider.")]
    Undecryptable,
    /// The connection has no sender email, phone number or webhook endpoint with this id.
    #[error("No such resource.")]
    ResourceNotFound,
    /// The model is not one the provider offers to these credentials.
    #[error("model {0:?} is not offered by the provider; GET .../models lists them")]
    UnknownModel(String),
    /// Usage monitoring needs the provider's admin key, stored as the connection's `api_secret`.
    #[error(
        "Usage monitoring reads the provider's usage report, which needs an admin key: reconnect with one as api_secret."
    )]
    AdminKeyRequired,
    /// The provider refused the connection's refresh token (`invalid_grant`): it must be
    /// authorized again.
    #[error("{0} no longer accepts the access it granted; connect it again.")]
    NeedsReauthorization(String),
    /// The access token had to be refreshed and could not be (I7's outcome of the attempt).
    #[error("The provider's access token could not be refreshed ({}).", .0.as_str())]
    TokenRefreshFailed(HealthOutcome),
    /// The provider connects with OAuth2 and this deployment has no client id and secret for it.
    #[error("{0} is not available on this deployment: its OAuth client is not configured.")]
    OAuthNotConfigured(String),
    /// A sender email or phone number was refused.
    #[error(transparent)]
    Contact(#[from] ContactError),
    /// A Stripe webhook endpoint was refused.
    #[error(transparent)]
    Webhook(#[from] WebhookEndpointError),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a connect failed (I3-I9).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// Refused before connecting: permission, unknown provider, or the store.
    #[error(transparent)]
    Integration(#[from] IntegrationError),
    /// The provider is inactive in this deployment's catalog.
    #[error("{0} is not available for new connections.")]
    InactiveProvider(String),
    /// Credentials were sent for a provider that connects with OAuth2 (I12).
    #[error("{0} connects with OAuth: send no credentials, the answer is the authorization URL.")]
    CredentialsForOAuth(String),
    /// Neither credentials nor `use_preconfigured` were sent.
    #[error("send either credentials or use_preconfigured: true")]
    NoCredentials,
    /// The provider connects with OAuth2 and this deployment has no client id and secret for it.
    #[error("{0} is not available on this deployment: its OAuth client id and secret are not configured.")]
    OAuthNotConfigured(String),
    /// The provider depends on another that the organization has not connected (I3).
    #[error("{required_name} must be connected first.")]
    DependencyMissing {
        /// The slug of the provider to connect first, for a link to it.
        required: ProviderSlug,
        /// Its display name, for the message.
        required_name: String,
    },
    /// A field the provider requires is missing or empty.
    #[error("credentials.{0} is required")]
    MissingField(&'static str),
    /// A field the provider does not ask for was sent.
    #[error("credentials.{0} is not a field of this provider")]
    UnknownField(String),
    /// A field is longer than the catalog allows.
    #[error("credentials.{field} must be at most {max} characters")]
    FieldTooLong {
        /// The field's name.
        field: &'static str,
        /// Its longest accepted value, in characters.
        max: usize,
    },
    /// A field holds a control character.
    #[error("credentials.{0} must not contain control characters")]
    FieldInvalid(&'static str),
    /// Pre-configured credentials were asked for, but the deployment has none for this provider.
    #[error("{0} is not pre-configured on this deployment; enter credentials instead.")]
    NotPreconfigured(String),
    /// The user already holds a connected connection to this provider; one per user and
    /// provider.
    #[error("You already have a connection to {0}; disconnect it first.")]
    AlreadyConnected(String),
    /// The provider refused or could not be reached: I7's message.
    #[error("{message}")]
    CheckFailed {
        /// What the check found.
        outcome: HealthOutcome,
        /// I7's message for it, naming the provider.
        message: String,
    },
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
    /// The catalog entry.
    pub definition: ProviderDefinition,
    /// The organization's instance of the provider, if it ever connected it.
    pub state: Option<ProviderState>,
    /// Whether the deployment supplies credentials, so it can be connected without typing a key
    /// (I13).
    pub preconfigured: bool,
    /// Why it cannot be connected on this deployment (an OAuth provider without a client
    /// registration); `None` when it can.
    pub unavailable: Option<String>,
}

/// A connection whose health changed at a scheduled check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    /// The connection, as before the check.
    pub view: ConnectionView,
    /// The check that changed its health.
    pub check: HealthCheck,
    /// True when it is healthy again; false when it started failing.
    pub recovered: bool,
}

/// A connection with its health history (I10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionDetail {
    /// The connection.
    pub view: ConnectionView,
    /// Its latest health checks, newest first.
    pub history: Vec<HealthCheck>,
}

/// The ports the integrations service needs.
#[derive(Clone)]
pub struct IntegrationPorts {
    /// The provider catalog (I1).
    pub catalog: Arc<Catalog>,
    /// Instances, connections, credentials, health checks and resources.
    pub repository: Arc<dyn IntegrationRepository>,
    /// Seals and opens credentials (I4, I5).
    pub cipher: Arc<dyn CredentialCipher>,
    /// Calls the providers: health checks and resource operations.
    pub client: Arc<dyn ProviderClient>,
    /// The time: connections, checks and changes.
    pub clock: Arc<dyn Clock>,
    /// The deployment's credentials for pre-configured providers (I13).
    pub preconfigured: Preconfigured,
    /// Sender emails and phone numbers (I11).
    pub contacts: Arc<dyn super::ContactRepository>,
    /// The OAuth2 registrations, token client and store (I12).
    pub oauth: super::OAuthPorts,
}

/// Browsing, connecting, checking and configuring integrations (I2-I11, I13).
#[derive(Clone)]
pub struct IntegrationService {
    pub(super) ports: IntegrationPorts,
}

impl std::fmt::Debug for IntegrationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrationService")
    }
}

impl IntegrationService {
    /// A service over `ports`.
    pub fn new(ports: IntegrationPorts) -> Self {
        Self { ports }
    }

    /// The provider catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.ports.catalog
    }

    /// The time on the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
    }

    pub(super) fn definition(&self, slug: &str) -> Result<&ProviderDefinition, IntegrationError> {
        self.ports.catalog.get(slug).ok_or(IntegrationError::UnknownProvider)
    }

    /// The caller's organization's connection with this id.
    pub(super) async fn find(&self, caller: &Caller, id: Uuid) -> Result<ConnectionView, IntegrationError> {
        self.ports
            .repository
            .find_connection(caller.organization_id(), id)
            .await?
            .ok_or(IntegrationError::ConnectionNotFound)
    }

    /// Opens each stored field (it was bound to its connection and field) into credentials.
    pub(super) fn decrypt_all(&self, stored: &[StoredCredential]) -> Result<Credentials, IntegrationError> {
        let mut fields = Vec::with_capacity(stored.len());
        for credential in stored {
            let value = self
                .ports
                .cipher
                .decrypt(&credential.ciphertext, &credential.owner())
                .map_err(|_| IntegrationError::Undecryptable)?;
            fields.push((credential.field, value));
        }
        assemble(fields).ok_or(IntegrationError::Undecryptable)
    }

    /// The credentials a connection uses now: decrypted from storage, or the deployment's.
    pub(super) async fn credentials_of(&self, view: &ConnectionView) -> Result<Credentials, IntegrationError> {
        match view.connection.auth_method {
            AuthMethod::Preconfigured => {
                self.ports.preconfigured.get(&view.connection.provider).cloned().ok_or(IntegrationError::Undecryptable)
            }
            AuthMethod::ApiKey => {
                let stored = self.ports.repository.credentials(view.connection.id).await?;
                // A connected connection always has its credentials (they are stored with it
                // and deleted with its disconnect): none means it was disconnected since it
                // was read, which is not a broken ciphertext.
                if stored.is_empty() {
                    return Err(IntegrationError::ConnectionNotFound);
                }
                self.decrypt_all(&stored)
            }
            AuthMethod::OAuth2 => self.oauth_credentials(view).await,
        }
    }

    /// An event of this connection, by this caller, now.
    pub(super) fn event(&self, caller: &Caller, event: Event) -> DomainEvent {
        DomainEvent::new(caller.organization_id(), caller.audit_actor(), self.ports.clock.now(), event)
    }

    /// A resource edit (I11): what changed on the connection and its new value, which is never
    /// a secret (emails, phone numbers, model ids, flags, ids).
    pub(super) fn updated(&self, caller: &Caller, view: &ConnectionView, change: &str, value: String) -> DomainEvent {
        self.event(
            caller,
            Event::IntegrationUpdated {
                connection_id: view.connection.id,
                provider: view.connection.provider.clone(),
                change: change.to_owned(),
                value,
            },
        )
    }
}

/// The fields of a connection's credentials, in the shape provider clients take.
pub(super) fn assemble(fields: Vec<(CredentialField, SecretString)>) -> Option<Credentials> {
    use secrecy::ExposeSecret;
    let mut api_key = None;
    let mut api_secret = None;
    let mut account_id = None;
    for (field, value) in fields {
        match field {
            CredentialField::ApiKey => api_key = Some(value),
            CredentialField::ApiSecret => api_secret = Some(value),
            CredentialField::AccountId => account_id = Some(value.expose_secret().to_owned()),
        }
    }
    Some(Credentials { api_key: api_key?, api_secret, account_id })
}
