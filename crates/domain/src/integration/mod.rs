//! Integrations (I1-I11, I13): the provider catalog, connections with encrypted credentials,
//! health checks and post-connection resources. This file holds the records; the service and
//! its operations live in the files beside it.

mod browse;
mod catalog;
mod connect;
mod connections;
mod contacts;
mod health;
mod mailer;
mod models;
mod oauth;
mod ports;
mod resources;
mod service;
mod stripe;
#[cfg(test)]
mod testing;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use crate::organization::OrganizationId;
use crate::sealed::{Ciphertext, SecretOwner};
use crate::user::UserId;

pub use catalog::{
    AuthType, Catalog, CatalogError, Category, CredentialField, FieldSpec, ProviderDefinition, ProviderSlug,
    ResourceType,
};
pub use mailer::PostmarkMailer;
pub use oauth::{
    AUTHORIZATION_TTL_SECS, Authorization, CallbackAnswer, CallbackError, ConnectStart, OAuthApp, OAuthApps,
    OAuthClient, OAuthPorts, OAuthRepository, OAuthSpec, PendingAuthorization, REFRESH_AHEAD_SECS, REFRESH_BATCH,
    REFRESH_LEASE_SECS, RefreshTokens, StoredTokens, TokenError, TokenGrant, TokenKind, TokenRefreshRun,
};
#[cfg(any(test, feature = "mocks"))]
pub use oauth::{MockOAuthClient, MockOAuthRepository};
pub use ports::{
    ContactRepository, ContactStoreError, IntegrationRepository, OutgoingMessage, ProviderClient, ProviderModel,
    ProviderUsageDay, SaveConnectionError,
};
#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockContactRepository, MockIntegrationRepository, MockProviderClient};
pub use resources::{ContactError, ContactKind, ContactResource, parse_label};
pub use service::{
    ConnectError, ConnectInput, ConnectionDetail, HealthChange, IntegrationError, IntegrationPorts, IntegrationService,
    Preconfigured, ProviderListing,
};
pub use stripe::{
    MAX_ENDPOINTS_PER_CONNECTION, ReceiveError, Received, SignatureError, StripeEvent, StripeEventHeader,
    StripeSignatureVerifier, StripeStatus, StripeWebhookEndpoint, StripeWebhookPorts, StripeWebhookRepository,
    StripeWebhookService, WebhookEndpointError, check_secret, parse_events,
};
#[cfg(any(test, feature = "mocks"))]
pub use stripe::{MockStripeSignatureVerifier, MockStripeWebhookRepository};

/// An organization's activation of a provider (created at the first successful connect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationInstance {
    /// The instance's id.
    pub id: Uuid,
    /// The organization that activated the provider; one instance per organization and provider.
    pub organization_id: OrganizationId,
    /// The provider activated.
    pub provider: ProviderSlug,
    /// Active, error or disconnected.
    pub status: InstanceStatus,
    /// The active/inactive toggle (I11); an inactive instance stays connected but unused.
    pub enabled: bool,
    /// The chosen model, for providers with model selection (I11).
    pub selected_model: Option<String>,
    /// When the organization first connected the provider.
    pub created_at: DateTime<Utc>,
    /// When its status, toggle or model last changed.
    pub updated_at: DateTime<Utc>,
}

/// Where an organization's activation of a provider stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceStatus {
    /// At least one healthy connection.
    Active,
    /// The last connect or check failed (I8); connecting again is allowed.
    Error,
    /// Every connection was disconnected.
    Disconnected,
}

impl InstanceStatus {
    /// The name clients see: `active`, `error` or `disconnected`.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Active => "active",
            InstanceStatus::Error => "error",
            InstanceStatus::Disconnected => "disconnected",
        }
    }

    /// The status named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        [InstanceStatus::Active, InstanceStatus::Error, InstanceStatus::Disconnected]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// How a connection got its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Typed by the user.
    ApiKey,
    /// Supplied by the deployment's environment (I13); nothing is stored.
    Preconfigured,
    /// Tokens granted through the provider's OAuth2 consent (I12), sealed like credentials.
    OAuth2,
}

impl AuthMethod {
    /// The name clients see: `api_key` or `preconfigured`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Preconfigured => "preconfigured",
            AuthMethod::OAuth2 => "oauth2",
        }
    }

    /// The method named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        [AuthMethod::ApiKey, AuthMethod::Preconfigured, AuthMethod::OAuth2].into_iter().find(|m| m.as_str() == raw)
    }
}

/// Whether a connection is still in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    /// In use: its credentials are stored and checked.
    Connected,
    /// Disconnected by a user (I10): its credentials are deleted; the row stays for the history.
    Disconnected,
    /// An OAuth grant the provider no longer honours (`invalid_grant`): connect again.
    NeedsReauthorization,
}

impl ConnectionStatus {
    /// The name clients see: `connected` or `disconnected`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::Disconnected => "disconnected",
            ConnectionStatus::NeedsReauthorization => "needs_reauthorization",
        }
    }

    /// The status named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        [ConnectionStatus::Connected, ConnectionStatus::Disconnected, ConnectionStatus::NeedsReauthorization]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A user's authenticated link to an instance (I9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationConnection {
    /// The connection's id: what the connected-apps routes name it by.
    pub id: Uuid,
    /// The organization's instance of the provider it belongs to.
    pub instance_id: Uuid,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// The provider connected.
    pub provider: ProviderSlug,
    /// The user who connected it; one connection per user and provider.
    pub user_id: UserId,
    /// Typed credentials or the deployment's pre-configured ones.
    pub auth_method: AuthMethod,
    /// Connected or disconnected.
    pub status: ConnectionStatus,
    /// When it was connected.
    pub created_at: DateTime<Utc>,
    /// When it was disconnected; `None` while connected.
    pub disconnected_at: Option<DateTime<Utc>>,
}

/// One stored, encrypted credential field (IntegrationCredential), sealed to its
/// organization, connection and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    /// The credential's id.
    pub id: Uuid,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// The connection it was typed into.
    pub connection_id: Uuid,
    /// Which field of the connect form it is.
    pub field: CredentialField,
    /// The value, sealed with AES-256-GCM to [`Self::owner`] (I4, I5).
    pub ciphertext: Ciphertext,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

impl StoredCredential {
    /// What its ciphertext is bound to.
    pub fn owner(&self) -> SecretOwner {
        SecretOwner::ConnectionCredential {
            organization: self.organization_id,
            connection: self.connection_id,
            field: self.field,
        }
    }
}

/// Credentials in plaintext, in memory only, for the length of one provider call.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The provider's API key or token.
    pub api_key: SecretString,
    /// The second secret, for providers that ask for one.
    pub api_secret: Option<SecretString>,
    /// The account or project id, for providers that ask for one.
    pub account_id: Option<String>,
}

/// What a health check found (I6, I7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthOutcome {
    /// The provider accepted the credentials: "Postmark connected successfully", say.
    Healthy,
    /// The provider refused the credentials, however it said so: "The API key you entered is
    /// invalid. Please check your credentials."
    InvalidCredentials,
    /// Connection refused, timed out, 5xx, or an answer that is not the provider's.
    Unreachable,
    /// The provider rate-limited the check: "Connection test was rate limited. Please wait a
    /// moment."
    RateLimited,
}

impl HealthOutcome {
    /// The name clients see: `healthy`, `invalid_credentials`, `unreachable` or `rate_limited`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthOutcome::Healthy => "healthy",
            HealthOutcome::InvalidCredentials => "invalid_credentials",
            HealthOutcome::Unreachable => "unreachable",
            HealthOutcome::RateLimited => "rate_limited",
        }
    }

    /// The outcome named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Healthy, Self::InvalidCredentials, Self::Unreachable, Self::RateLimited]
            .into_iter()
            .find(|o| o.as_str() == raw)
    }

    /// I7's messages, shown to the user.
    pub fn message(self, provider_name: &str) -> String {
        match self {
            HealthOutcome::Healthy => format!("{provider_name} connected successfully"),
            HealthOutcome::InvalidCredentials => {
                "The API key you entered is invalid. Please check your credentials.".to_owned()
            }
            HealthOutcome::Unreachable => {
                format!("Could not reach {provider_name}. The service may be temporarily unavailable.")
            }
            HealthOutcome::RateLimited => "Connection test was rate limited. Please wait a moment.".to_owned(),
        }
    }
}

/// A provider client's report of one check. `detail` is for operators (status code, error
/// class); it never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// What the check found.
    pub outcome: HealthOutcome,
    /// How long the provider took to answer, in milliseconds.
    pub response_time_ms: u32,
    /// For operators: the status code or error class; never a credential.
    pub detail: String,
}

/// A recorded health check (IntegrationHealth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The check's id.
    pub id: Uuid,
    /// The connection checked.
    pub connection_id: Uuid,
    /// What it found.
    pub outcome: HealthOutcome,
    /// How long the provider took to answer, in milliseconds (I10's response times).
    pub response_time_ms: u32,
    /// For operators: the status code or error class; never a credential.
    pub detail: String,
    /// When it ran.
    pub checked_at: DateTime<Utc>,
}

/// A connection with what the connected-apps views show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionView {
    /// The connection.
    pub connection: IntegrationConnection,
    /// The organization's instance of its provider.
    pub instance: IntegrationInstance,
    /// Its most recent health check, if it had one.
    pub latest_health: Option<HealthCheck>,
}

/// This organization's state of one provider, for the catalog (I2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderState {
    /// The provider.
    pub provider: ProviderSlug,
    /// The organization's instance's status.
    pub instance_status: InstanceStatus,
    /// Whether any user of the organization holds a connected connection to it.
    pub connected: bool,
}

/// Everything a successful connect writes, in one transaction (I9).
#[derive(Debug, Clone)]
pub struct NewConnection {
    /// Created if the organization has no instance of this provider yet; else updated.
    pub instance: IntegrationInstance,
    /// The connecting user's new connection.
    pub connection: IntegrationConnection,
    /// Its sealed credentials; none for a pre-configured provider.
    pub credentials: Vec<StoredCredential>,
    /// An OAuth connection's tokens, sealed; none for the other kinds.
    pub tokens: Option<StoredTokens>,
    /// The first health check, which passed.
    pub health: HealthCheck,
}
