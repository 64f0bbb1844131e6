//! Request and answer types, generated from the server's OpenAPI document with typify by
//! `cargo xtask client-types`. Do not edit: the `generated` test regenerates this file and
//! fails when it differs. The descriptions are the server's doc comments, whose links name the
//! server's items.
#![allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::broken_intra_doc_links)]

///`Access`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum Access {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "write")]
    Write,
}
impl ::std::fmt::Display for Access {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Read => f.write_str("read"),
            Self::Write => f.write_str("write"),
        }
    }
}
impl ::std::str::FromStr for Access {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for Access {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for Access {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`ActorType`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum ActorType {
    #[serde(rename = "user")]
    User,
    #[serde(rename = "api_key")]
    ApiKey,
    #[serde(rename = "system")]
    System,
}
impl ::std::fmt::Display for ActorType {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::User => f.write_str("user"),
            Self::ApiKey => f.write_str("api_key"),
            Self::System => f.write_str("system"),
        }
    }
}
impl ::std::str::FromStr for ActorType {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "user" => Ok(Self::User),
            "api_key" => Ok(Self::ApiKey),
            "system" => Ok(Self::System),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for ActorType {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for ActorType {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`AuditAction`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum AuditAction {
    #[serde(rename = "api_key.created")]
    ApiKeyCreated,
    #[serde(rename = "api_key.rotated")]
    ApiKeyRotated,
    #[serde(rename = "api_key.revoked")]
    ApiKeyRevoked,
    #[serde(rename = "integration.connected")]
    IntegrationConnected,
    #[serde(rename = "integration.connect_failed")]
    IntegrationConnectFailed,
    #[serde(rename = "integration.disconnected")]
    IntegrationDisconnected,
    #[serde(rename = "integration.updated")]
    IntegrationUpdated,
    #[serde(rename = "integration.needs_reauthorization")]
    IntegrationNeedsReauthorization,
    #[serde(rename = "user.updated")]
    UserUpdated,
    #[serde(rename = "user.deactivated")]
    UserDeactivated,
    #[serde(rename = "user.reactivated")]
    UserReactivated,
    #[serde(rename = "user.deleted")]
    UserDeleted,
    #[serde(rename = "user.password_changed")]
    UserPasswordChanged,
    #[serde(rename = "user.password_reset_issued")]
    UserPasswordResetIssued,
    #[serde(rename = "user.password_reset")]
    UserPasswordReset,
    #[serde(rename = "session.revoked")]
    SessionRevoked,
}
impl ::std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::ApiKeyCreated => f.write_str("api_key.created"),
            Self::ApiKeyRotated => f.write_str("api_key.rotated"),
            Self::ApiKeyRevoked => f.write_str("api_key.revoked"),
            Self::IntegrationConnected => f.write_str("integration.connected"),
            Self::IntegrationConnectFailed => f.write_str("integration.connect_failed"),
            Self::IntegrationDisconnected => f.write_str("integration.disconnected"),
            Self::IntegrationUpdated => f.write_str("integration.updated"),
            Self::IntegrationNeedsReauthorization => {
                f.write_str("integration.needs_reauthorization")
            }
            Self::UserUpdated => f.write_str("user.updated"),
            Self::UserDeactivated => f.write_str("user.deactivated"),
            Self::UserReactivated => f.write_str("user.reactivated"),
            Self::UserDeleted => f.write_str("user.deleted"),
            Self::UserPasswordChanged => f.write_str("user.password_changed"),
            Self::UserPasswordResetIssued => f.write_str("user.password_reset_issued"),
            Self::UserPasswordReset => f.write_str("user.password_reset"),
            Self::SessionRevoked => f.write_str("session.revoked"),
        }
    }
}
impl ::std::str::FromStr for AuditAction {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "api_key.created" => Ok(Self::ApiKeyCreated),
            "api_key.rotated" => Ok(Self::ApiKeyRotated),
            "api_key.revoked" => Ok(Self::ApiKeyRevoked),
            "integration.connected" => Ok(Self::IntegrationConnected),
            "integration.connect_failed" => Ok(Self::IntegrationConnectFailed),
            "integration.disconnected" => Ok(Self::IntegrationDisconnected),
            "integration.updated" => Ok(Self::IntegrationUpdated),
            "integration.needs_reauthorization" => {
                Ok(Self::IntegrationNeedsReauthorization)
            }
            "user.updated" => Ok(Self::UserUpdated),
            "user.deactivated" => Ok(Self::UserDeactivated),
            "user.reactivated" => Ok(Self::UserReactivated),
            "user.deleted" => Ok(Self::UserDeleted),
            "user.password_changed" => Ok(Self::UserPasswordChanged),
            "user.password_reset_issued" => Ok(Self::UserPasswordResetIssued),
            "user.password_reset" => Ok(Self::UserPasswordReset),
            "session.revoked" => Ok(Self::SessionRevoked),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for AuditAction {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for AuditAction {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`AuditEntryView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct AuditEntryView {
    pub action: AuditAction,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub actor_id: ::std::option::Option<::uuid::Uuid>,
    pub actor_type: ActorType,
    pub details: ::std::collections::HashMap<
        ::std::string::String,
        ::std::string::String,
    >,
    pub id: ::uuid::Uuid,
    pub occurred_at: ::chrono::DateTime<::chrono::offset::Utc>,
    pub target_id: ::std::string::String,
    pub target_type: ::std::string::String,
}
///`AuthMethod`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum AuthMethod {
    #[serde(rename = "api_key")]
    ApiKey,
    #[serde(rename = "preconfigured")]
    Preconfigured,
    #[serde(rename = "oauth2")]
    Oauth2,
}
impl ::std::fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::ApiKey => f.write_str("api_key"),
            Self::Preconfigured => f.write_str("preconfigured"),
            Self::Oauth2 => f.write_str("oauth2"),
        }
    }
}
impl ::std::str::FromStr for AuthMethod {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "api_key" => Ok(Self::ApiKey),
            "preconfigured" => Ok(Self::Preconfigured),
            "oauth2" => Ok(Self::Oauth2),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for AuthMethod {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for AuthMethod {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`AuthType`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum AuthType {
    #[serde(rename = "api_key")]
    ApiKey,
    #[serde(rename = "oauth2")]
    Oauth2,
}
impl ::std::fmt::Display for AuthType {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::ApiKey => f.write_str("api_key"),
            Self::Oauth2 => f.write_str("oauth2"),
        }
    }
}
impl ::std::str::FromStr for AuthType {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "api_key" => Ok(Self::ApiKey),
            "oauth2" => Ok(Self::Oauth2),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for AuthType {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for AuthType {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///Where to send the browser to authorize an OAuth2 provider.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct AuthorizationView {
    /**The provider's consent page; the browser comes back to
`/v1/integrations/oauth/callback`.*/
    pub authorization_url: ::std::string::String,
    ///After this the callback is refused; connect again.
    pub expires_at: ::chrono::DateTime<::chrono::offset::Utc>,
}
///`Category`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum Category {
    #[serde(rename = "communication")]
    Communication,
    #[serde(rename = "payment")]
    Payment,
    #[serde(rename = "mapping")]
    Mapping,
    #[serde(rename = "ai")]
    Ai,
    #[serde(rename = "accounting")]
    Accounting,
}
impl ::std::fmt::Display for Category {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Communication => f.write_str("communication"),
            Self::Payment => f.write_str("payment"),
            Self::Mapping => f.write_str("mapping"),
            Self::Ai => f.write_str("ai"),
            Self::Accounting => f.write_str("accounting"),
        }
    }
}
impl ::std::str::FromStr for Category {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "communication" => Ok(Self::Communication),
            "payment" => Ok(Self::Payment),
            "mapping" => Ok(Self::Mapping),
            "ai" => Ok(Self::Ai),
            "accounting" => Ok(Self::Accounting),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for Category {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for Category {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`ChangePasswordRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: crate::Secret,
    ///10 to 128 characters.
    pub new_password: crate::Secret,
}
///`ConnectRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    ///`{api_key, api_secret?, account_id?}` as the provider's `fields` ask.
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub credentials: ::std::option::Option<
        ::std::collections::HashMap<::std::string::String, crate::Secret>,
    >,
    ///Use the deployment's pre-configured credentials instead.
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub use_preconfigured: ::std::option::Option<bool>,
}
///`ConnectionDetailBody`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ConnectionDetailBody {
    pub auth_method: AuthMethod,
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub disconnected_at: ::std::option::Option<
        ::chrono::DateTime<::chrono::offset::Utc>,
    >,
    ///The active/inactive toggle.
    pub enabled: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub health: ::std::option::Option<HealthView>,
    ///The last 20 checks, newest first.
    pub health_history: ::std::vec::Vec<HealthView>,
    pub id: ::uuid::Uuid,
    pub instance_status: InstanceStatus,
    pub provider: ::std::string::String,
    ///The chosen model (providers with model selection).
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub selected_model: ::std::option::Option<::std::string::String>,
    pub status: ConnectionStatus,
    pub user_id: ::uuid::Uuid,
}
///`ConnectionStatus`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum ConnectionStatus {
    #[serde(rename = "connected")]
    Connected,
    #[serde(rename = "disconnected")]
    Disconnected,
    #[serde(rename = "needs_reauthorization")]
    NeedsReauthorization,
}
impl ::std::fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Connected => f.write_str("connected"),
            Self::Disconnected => f.write_str("disconnected"),
            Self::NeedsReauthorization => f.write_str("needs_reauthorization"),
        }
    }
}
impl ::std::str::FromStr for ConnectionStatus {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "connected" => Ok(Self::Connected),
            "disconnected" => Ok(Self::Disconnected),
            "needs_reauthorization" => Ok(Self::NeedsReauthorization),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for ConnectionStatus {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for ConnectionStatus {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`ConnectionViewBody`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ConnectionViewBody {
    pub auth_method: AuthMethod,
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub disconnected_at: ::std::option::Option<
        ::chrono::DateTime<::chrono::offset::Utc>,
    >,
    ///The active/inactive toggle.
    pub enabled: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub health: ::std::option::Option<HealthView>,
    pub id: ::uuid::Uuid,
    pub instance_status: InstanceStatus,
    pub provider: ::std::string::String,
    ///The chosen model (providers with model selection).
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub selected_model: ::std::option::Option<::std::string::String>,
    pub status: ConnectionStatus,
    pub user_id: ::uuid::Uuid,
}
///`ContactPatch`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub label: ::std::option::Option<::std::string::String>,
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub value: ::std::option::Option<::std::string::String>,
}
///`ContactRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub label: ::std::option::Option<::std::string::String>,
    pub value: ::std::string::String,
}
///`ContactView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ContactView {
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    pub id: ::uuid::Uuid,
    pub is_default: bool,
    pub label: ::std::string::String,
    pub updated_at: ::chrono::DateTime<::chrono::offset::Utc>,
    ///An email address (senders) or an E.164 number (phone numbers).
    pub value: ::std::string::String,
}
///`CreateCustomerRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerRequest {
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub email: ::std::option::Option<::std::string::String>,
    pub name: ::std::string::String,
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub phone: ::std::option::Option<::std::string::String>,
}
///`CreateEndpointRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub description: ::std::option::Option<::std::string::String>,
    pub events: ::std::vec::Vec<EventType>,
    ///https (http and loopback only where the deployment allows them); never a private address.
    pub url: ::std::string::String,
}
///`CreateKeyRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    ///IP addresses and CIDR ranges allowed to use the key; empty allows all.
    #[serde(default, skip_serializing_if = "::std::vec::Vec::is_empty")]
    pub allowed_ips: ::std::vec::Vec<::std::string::String>,
    ///0-500 characters.
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub description: ::std::option::Option<::std::string::String>,
    pub environment: Environment,
    pub expires_in: ExpiresIn,
    ///1-100 characters, unique among the organization's active keys.
    pub name: ::std::string::String,
    pub scope_level: ScopeLevel,
    #[serde(default, skip_serializing_if = "::std::vec::Vec::is_empty")]
    pub scopes: ::std::vec::Vec<Scope>,
}
///`CreateUserRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: ::std::string::String,
    ///Optional display name, 1-100 characters.
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub name: ::std::option::Option<::std::string::String>,
    pub password: crate::Secret,
    pub role: Role,
}
///The create and rotate answer: the only time the plaintext key is shown.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct CreatedKeyView {
    pub allowed_ips: ::std::vec::Vec<::std::string::String>,
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    ///The creator's user id (kept for compatibility; `creator` names them).
    pub created_by: ::uuid::Uuid,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub creator: ::std::option::Option<CreatorView>,
    pub description: ::std::string::String,
    pub environment: Environment,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub expires_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    pub expires_in: ExpiresIn,
    ///Active and expiring within 7 days.
    pub expires_soon: bool,
    pub id: ::uuid::Uuid,
    ///The full key. Store it now: it is never shown again.
    pub key: crate::Secret,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub last_used_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    ///`erp_live_...s9t0`
    pub masked_key: ::std::string::String,
    pub name: ::std::string::String,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub revoked_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub rotated_from: ::std::option::Option<::uuid::Uuid>,
    pub scope_level: ScopeLevel,
    pub scopes: ::std::vec::Vec<Scope>,
    pub status: KeyStatus,
}
///A key's creator by name and email.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct CreatorView {
    pub email: ::std::string::String,
    pub id: ::uuid::Uuid,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub name: ::std::option::Option<::std::string::String>,
    pub status: UserStatus,
}
///`CredentialField`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum CredentialField {
    #[serde(rename = "api_key")]
    ApiKey,
    #[serde(rename = "api_secret")]
    ApiSecret,
    #[serde(rename = "account_id")]
    AccountId,
}
impl ::std::fmt::Display for CredentialField {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::ApiKey => f.write_str("api_key"),
            Self::ApiSecret => f.write_str("api_secret"),
            Self::AccountId => f.write_str("account_id"),
        }
    }
}
impl ::std::str::FromStr for CredentialField {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "api_key" => Ok(Self::ApiKey),
            "api_secret" => Ok(Self::ApiSecret),
            "account_id" => Ok(Self::AccountId),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for CredentialField {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for CredentialField {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`CustomerView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct CustomerView {
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub email: ::std::option::Option<::std::string::String>,
    pub environment: Environment,
    pub id: ::uuid::Uuid,
    pub name: ::std::string::String,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub phone: ::std::option::Option<::std::string::String>,
    pub updated_at: ::chrono::DateTime<::chrono::offset::Utc>,
}
///`DeliveryState`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum DeliveryState {
    #[serde(rename = "pending")]
    Pending,
    #[serde(rename = "succeeded")]
    Succeeded,
    #[serde(rename = "failed")]
    Failed,
}
impl ::std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Pending => f.write_str("pending"),
            Self::Succeeded => f.write_str("succeeded"),
            Self::Failed => f.write_str("failed"),
        }
    }
}
impl ::std::str::FromStr for DeliveryState {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "pending" => Ok(Self::Pending),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for DeliveryState {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for DeliveryState {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`DeliveryView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct DeliveryView {
    pub attempts: i32,
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub error: ::std::option::Option<::std::string::String>,
    pub event_type: EventType,
    pub id: ::uuid::Uuid,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub last_attempt_at: ::std::option::Option<
        ::chrono::DateTime<::chrono::offset::Utc>,
    >,
    ///The `webhook-id` the receiver saw (the same on every attempt).
    pub message_id: ::std::string::String,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_attempt_at: ::std::option::Option<
        ::chrono::DateTime<::chrono::offset::Utc>,
    >,
    ///The receiver's HTTP status on the last attempt, when it answered.
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub response_status: ::std::option::Option<i32>,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub response_time_ms: ::std::option::Option<i32>,
    pub state: DeliveryState,
}
///`DependencyView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct DependencyView {
    pub slug: ::std::string::String,
    ///Where to connect it.
    pub url: ::std::string::String,
}
///`EnabledRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct EnabledRequest {
    pub enabled: bool,
}
///`EndedSessions`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct EndedSessions {
    ///How many sessions ended.
    pub ended: i64,
}
///`EndpointStatus`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum EndpointStatus {
    #[serde(rename = "enabled")]
    Enabled,
    #[serde(rename = "disabled")]
    Disabled,
}
impl ::std::fmt::Display for EndpointStatus {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Enabled => f.write_str("enabled"),
            Self::Disabled => f.write_str("disabled"),
        }
    }
}
impl ::std::str::FromStr for EndpointStatus {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "enabled" => Ok(Self::Enabled),
            "disabled" => Ok(Self::Disabled),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for EndpointStatus {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for EndpointStatus {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`EndpointView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct EndpointView {
    /**Failed attempts since the last success; the endpoint is disabled when it reaches the
deployment's threshold (20 by default).*/
    pub consecutive_failures: i32,
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    pub description: ::std::string::String,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub disabled_reason: ::std::option::Option<::std::string::String>,
    pub events: ::std::vec::Vec<EventType>,
    pub id: ::uuid::Uuid,
    pub status: EndpointStatus,
    pub updated_at: ::chrono::DateTime<::chrono::offset::Utc>,
    pub url: ::std::string::String,
}
/**The endpoint with its signing secret: answered once, on create (and the new secret on a
rotation).*/
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct EndpointWithSecret {
    /**Failed attempts since the last success; the endpoint is disabled when it reaches the
deployment's threshold (20 by default).*/
    pub consecutive_failures: i32,
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    pub description: ::std::string::String,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub disabled_reason: ::std::option::Option<::std::string::String>,
    pub events: ::std::vec::Vec<EventType>,
    pub id: ::uuid::Uuid,
    ///`whsec_...`: verify deliveries with it. Shown only now.
    pub secret: crate::Secret,
    pub status: EndpointStatus,
    pub updated_at: ::chrono::DateTime<::chrono::offset::Utc>,
    pub url: ::std::string::String,
}
///`Environment`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum Environment {
    #[serde(rename = "live")]
    Live,
    #[serde(rename = "test")]
    Test,
}
impl ::std::fmt::Display for Environment {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Live => f.write_str("live"),
            Self::Test => f.write_str("test"),
        }
    }
}
impl ::std::str::FromStr for Environment {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "live" => Ok(Self::Live),
            "test" => Ok(Self::Test),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for Environment {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for Environment {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
/**The body of every error answer (P4). The OpenAPI document's `Error` schema is derived from
this very type.*/
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct Error {
    pub error: ErrorDetail,
}
/**What went wrong, for programs to branch on (`error.code`). Every code is listed in
[`ErrorCode::ALL`]; its status and type come from [`ErrorCode::spec`].*/
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum ErrorCode {
    #[serde(rename = "invalid_json")]
    InvalidJson,
    #[serde(rename = "invalid_body")]
    InvalidBody,
    #[serde(rename = "invalid_parameter")]
    InvalidParameter,
    #[serde(rename = "api_key_in_query")]
    ApiKeyInQuery,
    #[serde(rename = "webhook_signature_invalid")]
    WebhookSignatureInvalid,
    #[serde(rename = "url_not_allowed")]
    UrlNotAllowed,
    #[serde(rename = "current_password_invalid")]
    CurrentPasswordInvalid,
    #[serde(rename = "reset_token_invalid")]
    ResetTokenInvalid,
    #[serde(rename = "oauth_state_invalid")]
    OauthStateInvalid,
    #[serde(rename = "authorization_denied")]
    AuthorizationDenied,
    #[serde(rename = "authorization_failed")]
    AuthorizationFailed,
    #[serde(rename = "missing_credentials")]
    MissingCredentials,
    #[serde(rename = "api_key_malformed")]
    ApiKeyMalformed,
    #[serde(rename = "api_key_invalid")]
    ApiKeyInvalid,
    #[serde(rename = "api_key_revoked")]
    ApiKeyRevoked,
    #[serde(rename = "api_key_expired")]
    ApiKeyExpired,
    #[serde(rename = "api_key_required")]
    ApiKeyRequired,
    #[serde(rename = "session_required")]
    SessionRequired,
    #[serde(rename = "session_invalid")]
    SessionInvalid,
    #[serde(rename = "invalid_credentials")]
    InvalidCredentials,
    #[serde(rename = "service_token_invalid")]
    ServiceTokenInvalid,
    #[serde(rename = "permission_denied")]
    PermissionDenied,
    #[serde(rename = "setup_token_invalid")]
    SetupTokenInvalid,
    #[serde(rename = "ip_not_allowed")]
    IpNotAllowed,
    #[serde(rename = "read_only_key")]
    ReadOnlyKey,
    #[serde(rename = "scope_level_too_low")]
    ScopeLevelTooLow,
    #[serde(rename = "scope_missing")]
    ScopeMissing,
    #[serde(rename = "csrf_token_invalid")]
    CsrfTokenInvalid,
    #[serde(rename = "resource_missing")]
    ResourceMissing,
    #[serde(rename = "method_not_allowed")]
    MethodNotAllowed,
    #[serde(rename = "name_taken")]
    NameTaken,
    #[serde(rename = "api_key_limit_reached")]
    ApiKeyLimitReached,
    #[serde(rename = "email_taken")]
    EmailTaken,
    #[serde(rename = "setup_already_completed")]
    SetupAlreadyCompleted,
    #[serde(rename = "key_not_active")]
    KeyNotActive,
    #[serde(rename = "key_already_rotated")]
    KeyAlreadyRotated,
    #[serde(rename = "already_connected")]
    AlreadyConnected,
    #[serde(rename = "resource_exists")]
    ResourceExists,
    #[serde(rename = "dependency_missing")]
    DependencyMissing,
    #[serde(rename = "provider_inactive")]
    ProviderInactive,
    #[serde(rename = "admin_key_required")]
    AdminKeyRequired,
    #[serde(rename = "resource_limit_reached")]
    ResourceLimitReached,
    #[serde(rename = "idempotency_in_progress")]
    IdempotencyInProgress,
    #[serde(rename = "idempotency_secret_shown")]
    IdempotencySecretShown,
    #[serde(rename = "last_admin")]
    LastAdmin,
    #[serde(rename = "provider_not_configured")]
    ProviderNotConfigured,
    #[serde(rename = "reauthorization_required")]
    ReauthorizationRequired,
    #[serde(rename = "idempotency_error")]
    IdempotencyError,
    #[serde(rename = "provider_credentials_invalid")]
    ProviderCredentialsInvalid,
    #[serde(rename = "payload_too_large")]
    PayloadTooLarge,
    #[serde(rename = "unsupported_media_type")]
    UnsupportedMediaType,
    #[serde(rename = "rate_limited")]
    RateLimited,
    #[serde(rename = "internal_error")]
    InternalError,
    #[serde(rename = "service_unavailable")]
    ServiceUnavailable,
    #[serde(rename = "provider_unreachable")]
    ProviderUnreachable,
    #[serde(rename = "provider_rate_limited")]
    ProviderRateLimited,
}
impl ::std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::InvalidJson => f.write_str("invalid_json"),
            Self::InvalidBody => f.write_str("invalid_body"),
            Self::InvalidParameter => f.write_str("invalid_parameter"),
            Self::ApiKeyInQuery => f.write_str("api_key_in_query"),
            Self::WebhookSignatureInvalid => f.write_str("webhook_signature_invalid"),
            Self::UrlNotAllowed => f.write_str("url_not_allowed"),
            Self::CurrentPasswordInvalid => f.write_str("current_password_invalid"),
            Self::ResetTokenInvalid => f.write_str("reset_token_invalid"),
            Self::OauthStateInvalid => f.write_str("oauth_state_invalid"),
            Self::AuthorizationDenied => f.write_str("authorization_denied"),
            Self::AuthorizationFailed => f.write_str("authorization_failed"),
            Self::MissingCredentials => f.write_str("missing_credentials"),
            Self::ApiKeyMalformed => f.write_str("api_key_malformed"),
            Self::ApiKeyInvalid => f.write_str("api_key_invalid"),
            Self::ApiKeyRevoked => f.write_str("api_key_revoked"),
            Self::ApiKeyExpired => f.write_str("api_key_expired"),
            Self::ApiKeyRequired => f.write_str("api_key_required"),
            Self::SessionRequired => f.write_str("session_required"),
            Self::SessionInvalid => f.write_str("session_invalid"),
            Self::InvalidCredentials => f.write_str("invalid_credentials"),
            Self::ServiceTokenInvalid => f.write_str("service_token_invalid"),
            Self::PermissionDenied => f.write_str("permission_denied"),
            Self::SetupTokenInvalid => f.write_str("setup_token_invalid"),
            Self::IpNotAllowed => f.write_str("ip_not_allowed"),
            Self::ReadOnlyKey => f.write_str("read_only_key"),
            Self::ScopeLevelTooLow => f.write_str("scope_level_too_low"),
            Self::ScopeMissing => f.write_str("scope_missing"),
            Self::CsrfTokenInvalid => f.write_str("csrf_token_invalid"),
            Self::ResourceMissing => f.write_str("resource_missing"),
            Self::MethodNotAllowed => f.write_str("method_not_allowed"),
            Self::NameTaken => f.write_str("name_taken"),
            Self::ApiKeyLimitReached => f.write_str("api_key_limit_reached"),
            Self::EmailTaken => f.write_str("email_taken"),
            Self::SetupAlreadyCompleted => f.write_str("setup_already_completed"),
            Self::KeyNotActive => f.write_str("key_not_active"),
            Self::KeyAlreadyRotated => f.write_str("key_already_rotated"),
            Self::AlreadyConnected => f.write_str("already_connected"),
            Self::ResourceExists => f.write_str("resource_exists"),
            Self::DependencyMissing => f.write_str("dependency_missing"),
            Self::ProviderInactive => f.write_str("provider_inactive"),
            Self::AdminKeyRequired => f.write_str("admin_key_required"),
            Self::ResourceLimitReached => f.write_str("resource_limit_reached"),
            Self::IdempotencyInProgress => f.write_str("idempotency_in_progress"),
            Self::IdempotencySecretShown => f.write_str("idempotency_secret_shown"),
            Self::LastAdmin => f.write_str("last_admin"),
            Self::ProviderNotConfigured => f.write_str("provider_not_configured"),
            Self::ReauthorizationRequired => f.write_str("reauthorization_required"),
            Self::IdempotencyError => f.write_str("idempotency_error"),
            Self::ProviderCredentialsInvalid => {
                f.write_str("provider_credentials_invalid")
            }
            Self::PayloadTooLarge => f.write_str("payload_too_large"),
            Self::UnsupportedMediaType => f.write_str("unsupported_media_type"),
            Self::RateLimited => f.write_str("rate_limited"),
            Self::InternalError => f.write_str("internal_error"),
            Self::ServiceUnavailable => f.write_str("service_unavailable"),
            Self::ProviderUnreachable => f.write_str("provider_unreachable"),
            Self::ProviderRateLimited => f.write_str("provider_rate_limited"),
        }
    }
}
impl ::std::str::FromStr for ErrorCode {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "invalid_json" => Ok(Self::InvalidJson),
            "invalid_body" => Ok(Self::InvalidBody),
            "invalid_parameter" => Ok(Self::InvalidParameter),
            "api_key_in_query" => Ok(Self::ApiKeyInQuery),
            "webhook_signature_invalid" => Ok(Self::WebhookSignatureInvalid),
            "url_not_allowed" => Ok(Self::UrlNotAllowed),
            "current_password_invalid" => Ok(Self::CurrentPasswordInvalid),
            "reset_token_invalid" => Ok(Self::ResetTokenInvalid),
            "oauth_state_invalid" => Ok(Self::OauthStateInvalid),
            "authorization_denied" => Ok(Self::AuthorizationDenied),
            "authorization_failed" => Ok(Self::AuthorizationFailed),
            "missing_credentials" => Ok(Self::MissingCredentials),
            "api_key_malformed" => Ok(Self::ApiKeyMalformed),
            "api_key_invalid" => Ok(Self::ApiKeyInvalid),
            "api_key_revoked" => Ok(Self::ApiKeyRevoked),
            "api_key_expired" => Ok(Self::ApiKeyExpired),
            "api_key_required" => Ok(Self::ApiKeyRequired),
            "session_required" => Ok(Self::SessionRequired),
            "session_invalid" => Ok(Self::SessionInvalid),
            "invalid_credentials" => Ok(Self::InvalidCredentials),
            "service_token_invalid" => Ok(Self::ServiceTokenInvalid),
            "permission_denied" => Ok(Self::PermissionDenied),
            "setup_token_invalid" => Ok(Self::SetupTokenInvalid),
            "ip_not_allowed" => Ok(Self::IpNotAllowed),
            "read_only_key" => Ok(Self::ReadOnlyKey),
            "scope_level_too_low" => Ok(Self::ScopeLevelTooLow),
            "scope_missing" => Ok(Self::ScopeMissing),
            "csrf_token_invalid" => Ok(Self::CsrfTokenInvalid),
            "resource_missing" => Ok(Self::ResourceMissing),
            "method_not_allowed" => Ok(Self::MethodNotAllowed),
            "name_taken" => Ok(Self::NameTaken),
            "api_key_limit_reached" => Ok(Self::ApiKeyLimitReached),
            "email_taken" => Ok(Self::EmailTaken),
            "setup_already_completed" => Ok(Self::SetupAlreadyCompleted),
            "key_not_active" => Ok(Self::KeyNotActive),
            "key_already_rotated" => Ok(Self::KeyAlreadyRotated),
            "already_connected" => Ok(Self::AlreadyConnected),
            "resource_exists" => Ok(Self::ResourceExists),
            "dependency_missing" => Ok(Self::DependencyMissing),
            "provider_inactive" => Ok(Self::ProviderInactive),
            "admin_key_required" => Ok(Self::AdminKeyRequired),
            "resource_limit_reached" => Ok(Self::ResourceLimitReached),
            "idempotency_in_progress" => Ok(Self::IdempotencyInProgress),
            "idempotency_secret_shown" => Ok(Self::IdempotencySecretShown),
            "last_admin" => Ok(Self::LastAdmin),
            "provider_not_configured" => Ok(Self::ProviderNotConfigured),
            "reauthorization_required" => Ok(Self::ReauthorizationRequired),
            "idempotency_error" => Ok(Self::IdempotencyError),
            "provider_credentials_invalid" => Ok(Self::ProviderCredentialsInvalid),
            "payload_too_large" => Ok(Self::PayloadTooLarge),
            "unsupported_media_type" => Ok(Self::UnsupportedMediaType),
            "rate_limited" => Ok(Self::RateLimited),
            "internal_error" => Ok(Self::InternalError),
            "service_unavailable" => Ok(Self::ServiceUnavailable),
            "provider_unreachable" => Ok(Self::ProviderUnreachable),
            "provider_rate_limited" => Ok(Self::ProviderRateLimited),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for ErrorCode {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for ErrorCode {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///What went wrong: `type` is the family, `code` the precise reason, `message` for people.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    ///Never repeats a value the client sent.
    pub message: ::std::string::String,
    #[serde(rename = "type")]
    pub type_: ErrorType,
}
///The `type` field: the family of the error, as Stripe clients expect.
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum ErrorType {
    #[serde(rename = "invalid_request_error")]
    InvalidRequestError,
    #[serde(rename = "authentication_error")]
    AuthenticationError,
    #[serde(rename = "permission_error")]
    PermissionError,
    #[serde(rename = "rate_limit_error")]
    RateLimitError,
    #[serde(rename = "api_error")]
    ApiError,
}
impl ::std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::InvalidRequestError => f.write_str("invalid_request_error"),
            Self::AuthenticationError => f.write_str("authentication_error"),
            Self::PermissionError => f.write_str("permission_error"),
            Self::RateLimitError => f.write_str("rate_limit_error"),
            Self::ApiError => f.write_str("api_error"),
        }
    }
}
impl ::std::str::FromStr for ErrorType {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "invalid_request_error" => Ok(Self::InvalidRequestError),
            "authentication_error" => Ok(Self::AuthenticationError),
            "permission_error" => Ok(Self::PermissionError),
            "rate_limit_error" => Ok(Self::RateLimitError),
            "api_error" => Ok(Self::ApiError),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for ErrorType {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for ErrorType {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`EventType`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum EventType {
    #[serde(rename = "api_key.created")]
    ApiKeyCreated,
    #[serde(rename = "api_key.rotated")]
    ApiKeyRotated,
    #[serde(rename = "api_key.revoked")]
    ApiKeyRevoked,
    #[serde(rename = "api_key.expiring")]
    ApiKeyExpiring,
    #[serde(rename = "integration.connected")]
    IntegrationConnected,
    #[serde(rename = "integration.disconnected")]
    IntegrationDisconnected,
    #[serde(rename = "integration.health_check.failed")]
    IntegrationHealthCheckFailed,
    #[serde(rename = "integration.health_check.recovered")]
    IntegrationHealthCheckRecovered,
    #[serde(rename = "integration.needs_reauthorization")]
    IntegrationNeedsReauthorization,
    #[serde(rename = "webhook.test")]
    WebhookTest,
}
impl ::std::fmt::Display for EventType {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::ApiKeyCreated => f.write_str("api_key.created"),
            Self::ApiKeyRotated => f.write_str("api_key.rotated"),
            Self::ApiKeyRevoked => f.write_str("api_key.revoked"),
            Self::ApiKeyExpiring => f.write_str("api_key.expiring"),
            Self::IntegrationConnected => f.write_str("integration.connected"),
            Self::IntegrationDisconnected => f.write_str("integration.disconnected"),
            Self::IntegrationHealthCheckFailed => {
                f.write_str("integration.health_check.failed")
            }
            Self::IntegrationHealthCheckRecovered => {
                f.write_str("integration.health_check.recovered")
            }
            Self::IntegrationNeedsReauthorization => {
                f.write_str("integration.needs_reauthorization")
            }
            Self::WebhookTest => f.write_str("webhook.test"),
        }
    }
}
impl ::std::str::FromStr for EventType {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "api_key.created" => Ok(Self::ApiKeyCreated),
            "api_key.rotated" => Ok(Self::ApiKeyRotated),
            "api_key.revoked" => Ok(Self::ApiKeyRevoked),
            "api_key.expiring" => Ok(Self::ApiKeyExpiring),
            "integration.connected" => Ok(Self::IntegrationConnected),
            "integration.disconnected" => Ok(Self::IntegrationDisconnected),
            "integration.health_check.failed" => Ok(Self::IntegrationHealthCheckFailed),
            "integration.health_check.recovered" => {
                Ok(Self::IntegrationHealthCheckRecovered)
            }
            "integration.needs_reauthorization" => {
                Ok(Self::IntegrationNeedsReauthorization)
            }
            "webhook.test" => Ok(Self::WebhookTest),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for EventType {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for EventType {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`EventTypeList`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct EventTypeList {
    pub data: ::std::vec::Vec<EventTypeView>,
}
///`EventTypeView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct EventTypeView {
    pub description: ::std::string::String,
    pub name: EventType,
}
///`ExpiresIn`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum ExpiresIn {
    #[serde(rename = "30d")]
    X30d,
    #[serde(rename = "90d")]
    X90d,
    #[serde(rename = "1y")]
    X1y,
    #[serde(rename = "never")]
    Never,
}
impl ::std::fmt::Display for ExpiresIn {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::X30d => f.write_str("30d"),
            Self::X90d => f.write_str("90d"),
            Self::X1y => f.write_str("1y"),
            Self::Never => f.write_str("never"),
        }
    }
}
impl ::std::str::FromStr for ExpiresIn {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "30d" => Ok(Self::X30d),
            "90d" => Ok(Self::X90d),
            "1y" => Ok(Self::X1y),
            "never" => Ok(Self::Never),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for ExpiresIn {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for ExpiresIn {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`FieldView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct FieldView {
    pub label: ::std::string::String,
    pub max_length: u64,
    pub name: CredentialField,
    pub required: bool,
}
///`HealthOutcome`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum HealthOutcome {
    #[serde(rename = "healthy")]
    Healthy,
    #[serde(rename = "invalid_credentials")]
    InvalidCredentials,
    #[serde(rename = "unreachable")]
    Unreachable,
    #[serde(rename = "rate_limited")]
    RateLimited,
}
impl ::std::fmt::Display for HealthOutcome {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Healthy => f.write_str("healthy"),
            Self::InvalidCredentials => f.write_str("invalid_credentials"),
            Self::Unreachable => f.write_str("unreachable"),
            Self::RateLimited => f.write_str("rate_limited"),
        }
    }
}
impl ::std::str::FromStr for HealthOutcome {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "healthy" => Ok(Self::Healthy),
            "invalid_credentials" => Ok(Self::InvalidCredentials),
            "unreachable" => Ok(Self::Unreachable),
            "rate_limited" => Ok(Self::RateLimited),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for HealthOutcome {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for HealthOutcome {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`HealthView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct HealthView {
    pub checked_at: ::chrono::DateTime<::chrono::offset::Utc>,
    pub detail: ::std::string::String,
    pub id: ::uuid::Uuid,
    pub response_time_ms: i32,
    pub status: HealthOutcome,
}
///`InstanceStatus`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum InstanceStatus {
    #[serde(rename = "active")]
    Active,
    #[serde(rename = "error")]
    Error,
    #[serde(rename = "disconnected")]
    Disconnected,
}
impl ::std::fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Active => f.write_str("active"),
            Self::Error => f.write_str("error"),
            Self::Disconnected => f.write_str("disconnected"),
        }
    }
}
impl ::std::str::FromStr for InstanceStatus {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "active" => Ok(Self::Active),
            "error" => Ok(Self::Error),
            "disconnected" => Ok(Self::Disconnected),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for InstanceStatus {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for InstanceStatus {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`KeyDetailView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct KeyDetailView {
    pub allowed_ips: ::std::vec::Vec<::std::string::String>,
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    ///The creator's user id (kept for compatibility; `creator` names them).
    pub created_by: ::uuid::Uuid,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub creator: ::std::option::Option<CreatorView>,
    pub description: ::std::string::String,
    pub environment: Environment,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub expires_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    pub expires_in: ExpiresIn,
    ///Active and expiring within 7 days.
    pub expires_soon: bool,
    pub id: ::uuid::Uuid,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub last_used_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    ///`erp_live_...s9t0`
    pub masked_key: ::std::string::String,
    pub name: ::std::string::String,
    ///The last 50 requests, newest first.
    pub recent_requests: ::std::vec::Vec<UsageView>,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub revoked_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub rotated_from: ::std::option::Option<::uuid::Uuid>,
    ///The granted scopes with their descriptions.
    pub scope_details: ::std::vec::Vec<ScopeView>,
    pub scope_level: ScopeLevel,
    pub scopes: ::std::vec::Vec<Scope>,
    pub status: KeyStatus,
    pub usage: UsageSummaryView,
    ///Used in the last 24 hours (warn before revoking).
    pub used_in_last_24h: bool,
}
///`KeyStatus`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum KeyStatus {
    #[serde(rename = "active")]
    Active,
    #[serde(rename = "expired")]
    Expired,
    #[serde(rename = "revoked")]
    Revoked,
}
impl ::std::fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Active => f.write_str("active"),
            Self::Expired => f.write_str("expired"),
            Self::Revoked => f.write_str("revoked"),
        }
    }
}
impl ::std::str::FromStr for KeyStatus {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "active" => Ok(Self::Active),
            "expired" => Ok(Self::Expired),
            "revoked" => Ok(Self::Revoked),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for KeyStatus {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for KeyStatus {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`KeyView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct KeyView {
    pub allowed_ips: ::std::vec::Vec<::std::string::String>,
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    ///The creator's user id (kept for compatibility; `creator` names them).
    pub created_by: ::uuid::Uuid,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub creator: ::std::option::Option<CreatorView>,
    pub description: ::std::string::String,
    pub environment: Environment,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub expires_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    pub expires_in: ExpiresIn,
    ///Active and expiring within 7 days.
    pub expires_soon: bool,
    pub id: ::uuid::Uuid,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub last_used_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    ///`erp_live_...s9t0`
    pub masked_key: ::std::string::String,
    pub name: ::std::string::String,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub revoked_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub rotated_from: ::std::option::Option<::uuid::Uuid>,
    pub scope_level: ScopeLevel,
    pub scopes: ::std::vec::Vec<Scope>,
    pub status: KeyStatus,
}
///`LevelView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct LevelView {
    pub description: ::std::string::String,
    pub name: ScopeLevel,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseAuditEntryView {
    pub data: ::std::vec::Vec<AuditEntryView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseConnectionViewBody {
    pub data: ::std::vec::Vec<ConnectionViewBody>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseContactView {
    pub data: ::std::vec::Vec<ContactView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseCustomerView {
    pub data: ::std::vec::Vec<CustomerView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseDeliveryView {
    pub data: ::std::vec::Vec<DeliveryView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseEndpointView {
    pub data: ::std::vec::Vec<EndpointView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseHealthView {
    pub data: ::std::vec::Vec<HealthView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseKeyView {
    pub data: ::std::vec::Vec<KeyView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseModelView {
    pub data: ::std::vec::Vec<ModelView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseNotificationView {
    pub data: ::std::vec::Vec<NotificationView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseProviderView {
    pub data: ::std::vec::Vec<ProviderView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseSessionView {
    pub data: ::std::vec::Vec<SessionView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseStripeEventView {
    pub data: ::std::vec::Vec<StripeEventView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseUsageView {
    pub data: ::std::vec::Vec<UsageView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseUserView {
    pub data: ::std::vec::Vec<UserView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///A page of a list: `{data, has_more, next_cursor}`. Pass `next_cursor` back as `cursor`.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ListResponseWebhookEndpointView {
    pub data: ::std::vec::Vec<WebhookEndpointView>,
    pub has_more: bool,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub next_cursor: ::std::option::Option<::std::string::String>,
}
///`MeResponse`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct MeResponse {
    pub organization: OrganizationView,
    pub permissions: ::std::vec::Vec<Permission>,
    pub user: UserView,
}
///`ModelRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct ModelRequest {
    ///A model id from `GET .../models`.
    pub model: ::std::string::String,
}
///`ModelView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ModelView {
    pub display_name: ::std::string::String,
    pub id: ::std::string::String,
}
///`NotificationKind`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum NotificationKind {
    #[serde(rename = "api_key.expiring")]
    ApiKeyExpiring,
    #[serde(rename = "webhook_endpoint.disabled")]
    WebhookEndpointDisabled,
    #[serde(rename = "integration.needs_reauthorization")]
    IntegrationNeedsReauthorization,
}
impl ::std::fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::ApiKeyExpiring => f.write_str("api_key.expiring"),
            Self::WebhookEndpointDisabled => f.write_str("webhook_endpoint.disabled"),
            Self::IntegrationNeedsReauthorization => {
                f.write_str("integration.needs_reauthorization")
            }
        }
    }
}
impl ::std::str::FromStr for NotificationKind {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "api_key.expiring" => Ok(Self::ApiKeyExpiring),
            "webhook_endpoint.disabled" => Ok(Self::WebhookEndpointDisabled),
            "integration.needs_reauthorization" => {
                Ok(Self::IntegrationNeedsReauthorization)
            }
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for NotificationKind {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for NotificationKind {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`NotificationView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct NotificationView {
    pub body: ::std::string::String,
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    pub id: ::uuid::Uuid,
    pub kind: NotificationKind,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub read_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    ///What it is about: `api_key:<id>` or `webhook_endpoint:<id>`.
    pub subject: ::std::string::String,
    pub title: ::std::string::String,
}
///`OrganizationView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct OrganizationView {
    pub id: ::uuid::Uuid,
    pub name: ::std::string::String,
}
///`PasswordResetView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct PasswordResetView {
    pub email: ResetEmail,
    pub expires_at: ::chrono::DateTime<::chrono::offset::Utc>,
    ///`pwr_...`: shown once. Give it to the user; it works once, until `expires_at`.
    pub reset_token: crate::Secret,
}
///`Permission`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum Permission {
    #[serde(rename = "settings.view")]
    SettingsView,
    #[serde(rename = "settings.edit")]
    SettingsEdit,
    #[serde(rename = "users.manage")]
    UsersManage,
    #[serde(rename = "scopes.grant_sensitive")]
    ScopesGrantSensitive,
}
impl ::std::fmt::Display for Permission {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::SettingsView => f.write_str("settings.view"),
            Self::SettingsEdit => f.write_str("settings.edit"),
            Self::UsersManage => f.write_str("users.manage"),
            Self::ScopesGrantSensitive => f.write_str("scopes.grant_sensitive"),
        }
    }
}
impl ::std::str::FromStr for Permission {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "settings.view" => Ok(Self::SettingsView),
            "settings.edit" => Ok(Self::SettingsEdit),
            "users.manage" => Ok(Self::UsersManage),
            "scopes.grant_sensitive" => Ok(Self::ScopesGrantSensitive),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for Permission {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for Permission {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`ProviderConnectionStatus`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum ProviderConnectionStatus {
    #[serde(rename = "not_connected")]
    NotConnected,
    #[serde(rename = "connected")]
    Connected,
    #[serde(rename = "error")]
    Error,
}
impl ::std::fmt::Display for ProviderConnectionStatus {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::NotConnected => f.write_str("not_connected"),
            Self::Connected => f.write_str("connected"),
            Self::Error => f.write_str("error"),
        }
    }
}
impl ::std::str::FromStr for ProviderConnectionStatus {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "not_connected" => Ok(Self::NotConnected),
            "connected" => Ok(Self::Connected),
            "error" => Ok(Self::Error),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for ProviderConnectionStatus {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for ProviderConnectionStatus {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`ProviderView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ProviderView {
    ///Inactive providers cannot be connected.
    pub active: bool,
    pub auth_type: AuthType,
    /**False when this deployment cannot connect it (an OAuth2 provider without its client id
and secret); `unavailable_reason` says why.*/
    pub available: bool,
    pub category: Category,
    pub connection_status: ProviderConnectionStatus,
    pub dependencies: ::std::vec::Vec<DependencyView>,
    pub description: ::std::string::String,
    pub docs_url: ::std::string::String,
    pub fields: ::std::vec::Vec<FieldView>,
    pub logo_url: ::std::string::String,
    pub name: ::std::string::String,
    ///The deployment supplies credentials: connect with `{"use_preconfigured": true}`.
    pub preconfigured: bool,
    pub resource_types: ::std::vec::Vec<ResourceType>,
    pub slug: ::std::string::String,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub unavailable_reason: ::std::option::Option<::std::string::String>,
}
///The key's rate-limit state after this check (as its `RateLimit-*` headers would say).
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct RateLimitState {
    pub limit: i32,
    pub remaining: i32,
    ///Seconds until the budget is full again.
    pub reset: i64,
}
///`ReceivedView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ReceivedView {
    ///True when Stripe had sent this event before (a retry); it is not stored twice.
    pub duplicate: bool,
    pub received: bool,
}
///`RedeemResetRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct RedeemResetRequest {
    ///10 to 128 characters.
    pub new_password: crate::Secret,
    ///The `pwr_...` token an admin issued.
    pub token: crate::Secret,
}
/**The error answer Otesse itself gives a request refused for this reason, for the service to
relay as it is: its status, its `Retry-After`, and the body `{"error": {type, code, message}}`.*/
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: ::std::string::String,
    ///Seconds to wait, for a `Retry-After` header (rate limits only).
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub retry_after: ::std::option::Option<i64>,
    ///The HTTP status (401, 403 or 429).
    pub status: i32,
    #[serde(rename = "type")]
    pub type_: ErrorType,
}
///`ResetEmail`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum ResetEmail {
    #[serde(rename = "sent")]
    Sent,
    #[serde(rename = "not_configured")]
    NotConfigured,
    #[serde(rename = "failed")]
    Failed,
}
impl ::std::fmt::Display for ResetEmail {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Sent => f.write_str("sent"),
            Self::NotConfigured => f.write_str("not_configured"),
            Self::Failed => f.write_str("failed"),
        }
    }
}
impl ::std::str::FromStr for ResetEmail {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "sent" => Ok(Self::Sent),
            "not_configured" => Ok(Self::NotConfigured),
            "failed" => Ok(Self::Failed),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for ResetEmail {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for ResetEmail {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`ResourceType`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum ResourceType {
    #[serde(rename = "sender_emails")]
    SenderEmails,
    #[serde(rename = "phone_numbers")]
    PhoneNumbers,
    #[serde(rename = "webhook_endpoints")]
    WebhookEndpoints,
    #[serde(rename = "connection_status")]
    ConnectionStatus,
    #[serde(rename = "model_selection")]
    ModelSelection,
    #[serde(rename = "usage_monitoring")]
    UsageMonitoring,
    #[serde(rename = "active_toggle")]
    ActiveToggle,
}
impl ::std::fmt::Display for ResourceType {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::SenderEmails => f.write_str("sender_emails"),
            Self::PhoneNumbers => f.write_str("phone_numbers"),
            Self::WebhookEndpoints => f.write_str("webhook_endpoints"),
            Self::ConnectionStatus => f.write_str("connection_status"),
            Self::ModelSelection => f.write_str("model_selection"),
            Self::UsageMonitoring => f.write_str("usage_monitoring"),
            Self::ActiveToggle => f.write_str("active_toggle"),
        }
    }
}
impl ::std::str::FromStr for ResourceType {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "sender_emails" => Ok(Self::SenderEmails),
            "phone_numbers" => Ok(Self::PhoneNumbers),
            "webhook_endpoints" => Ok(Self::WebhookEndpoints),
            "connection_status" => Ok(Self::ConnectionStatus),
            "model_selection" => Ok(Self::ModelSelection),
            "usage_monitoring" => Ok(Self::UsageMonitoring),
            "active_toggle" => Ok(Self::ActiveToggle),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for ResourceType {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for ResourceType {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`Role`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum Role {
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "manager")]
    Manager,
    #[serde(rename = "viewer")]
    Viewer,
}
impl ::std::fmt::Display for Role {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Admin => f.write_str("admin"),
            Self::Manager => f.write_str("manager"),
            Self::Viewer => f.write_str("viewer"),
        }
    }
}
impl ::std::str::FromStr for Role {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "admin" => Ok(Self::Admin),
            "manager" => Ok(Self::Manager),
            "viewer" => Ok(Self::Viewer),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for Role {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for Role {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`RotateKeyRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    ///The new key's name; default: the old name with " (rotated)".
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub name: ::std::option::Option<::std::string::String>,
    /**When the old key stops working (never later than its expiry); default: it keeps working
until revoked. A past time means now.*/
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub revoke_old_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
}
///`Scope`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum Scope {
    #[serde(rename = "customers.read")]
    CustomersRead,
    #[serde(rename = "customers.write")]
    CustomersWrite,
    #[serde(rename = "invoices.read")]
    InvoicesRead,
    #[serde(rename = "invoices.write")]
    InvoicesWrite,
    #[serde(rename = "payments.read")]
    PaymentsRead,
    #[serde(rename = "payments.write")]
    PaymentsWrite,
    #[serde(rename = "jobs.read")]
    JobsRead,
    #[serde(rename = "jobs.write")]
    JobsWrite,
    #[serde(rename = "bookings.read")]
    BookingsRead,
    #[serde(rename = "bookings.write")]
    BookingsWrite,
    #[serde(rename = "products.read")]
    ProductsRead,
    #[serde(rename = "products.write")]
    ProductsWrite,
    #[serde(rename = "services.read")]
    ServicesRead,
    #[serde(rename = "services.write")]
    ServicesWrite,
    #[serde(rename = "employees.read")]
    EmployeesRead,
    #[serde(rename = "employees.write")]
    EmployeesWrite,
    #[serde(rename = "settings.read")]
    SettingsRead,
    #[serde(rename = "settings.write")]
    SettingsWrite,
    #[serde(rename = "reports.read")]
    ReportsRead,
    #[serde(rename = "webhooks.manage")]
    WebhooksManage,
    #[serde(rename = "integrations.manage")]
    IntegrationsManage,
}
impl ::std::fmt::Display for Scope {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::CustomersRead => f.write_str("customers.read"),
            Self::CustomersWrite => f.write_str("customers.write"),
            Self::InvoicesRead => f.write_str("invoices.read"),
            Self::InvoicesWrite => f.write_str("invoices.write"),
            Self::PaymentsRead => f.write_str("payments.read"),
            Self::PaymentsWrite => f.write_str("payments.write"),
            Self::JobsRead => f.write_str("jobs.read"),
            Self::JobsWrite => f.write_str("jobs.write"),
            Self::BookingsRead => f.write_str("bookings.read"),
            Self::BookingsWrite => f.write_str("bookings.write"),
            Self::ProductsRead => f.write_str("products.read"),
            Self::ProductsWrite => f.write_str("products.write"),
            Self::ServicesRead => f.write_str("services.read"),
            Self::ServicesWrite => f.write_str("services.write"),
            Self::EmployeesRead => f.write_str("employees.read"),
            Self::EmployeesWrite => f.write_str("employees.write"),
            Self::SettingsRead => f.write_str("settings.read"),
            Self::SettingsWrite => f.write_str("settings.write"),
            Self::ReportsRead => f.write_str("reports.read"),
            Self::WebhooksManage => f.write_str("webhooks.manage"),
            Self::IntegrationsManage => f.write_str("integrations.manage"),
        }
    }
}
impl ::std::str::FromStr for Scope {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "customers.read" => Ok(Self::CustomersRead),
            "customers.write" => Ok(Self::CustomersWrite),
            "invoices.read" => Ok(Self::InvoicesRead),
            "invoices.write" => Ok(Self::InvoicesWrite),
            "payments.read" => Ok(Self::PaymentsRead),
            "payments.write" => Ok(Self::PaymentsWrite),
            "jobs.read" => Ok(Self::JobsRead),
            "jobs.write" => Ok(Self::JobsWrite),
            "bookings.read" => Ok(Self::BookingsRead),
            "bookings.write" => Ok(Self::BookingsWrite),
            "products.read" => Ok(Self::ProductsRead),
            "products.write" => Ok(Self::ProductsWrite),
            "services.read" => Ok(Self::ServicesRead),
            "services.write" => Ok(Self::ServicesWrite),
            "employees.read" => Ok(Self::EmployeesRead),
            "employees.write" => Ok(Self::EmployeesWrite),
            "settings.read" => Ok(Self::SettingsRead),
            "settings.write" => Ok(Self::SettingsWrite),
            "reports.read" => Ok(Self::ReportsRead),
            "webhooks.manage" => Ok(Self::WebhooksManage),
            "integrations.manage" => Ok(Self::IntegrationsManage),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for Scope {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for Scope {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`ScopeCatalog`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ScopeCatalog {
    pub data: ::std::vec::Vec<ScopeView>,
    pub levels: ::std::vec::Vec<LevelView>,
}
///`ScopeLevel`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum ScopeLevel {
    #[serde(rename = "read_only")]
    ReadOnly,
    #[serde(rename = "read_write")]
    ReadWrite,
    #[serde(rename = "admin")]
    Admin,
}
impl ::std::fmt::Display for ScopeLevel {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::ReadOnly => f.write_str("read_only"),
            Self::ReadWrite => f.write_str("read_write"),
            Self::Admin => f.write_str("admin"),
        }
    }
}
impl ::std::str::FromStr for ScopeLevel {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "read_only" => Ok(Self::ReadOnly),
            "read_write" => Ok(Self::ReadWrite),
            "admin" => Ok(Self::Admin),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for ScopeLevel {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for ScopeLevel {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`ScopeView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct ScopeView {
    pub access: Access,
    pub description: ::std::string::String,
    pub levels: ::std::vec::Vec<ScopeLevel>,
    ///Test keys may not hold it (it reaches organization-wide live integrations or webhooks).
    pub live_only: bool,
    pub name: Scope,
    ///Only an admin may grant it.
    pub sensitive: bool,
}
///`SecretView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct SecretView {
    ///The new `whsec_...` secret. The previous one keeps signing deliveries for 24 hours.
    pub secret: crate::Secret,
}
///`SessionResponse`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct SessionResponse {
    ///A cookie sign-in's CSRF token (also in the readable `otesse_csrf` cookie).
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub csrf_token: ::std::option::Option<::std::string::String>,
    pub expires_at: ::chrono::DateTime<::chrono::offset::Utc>,
    ///Send as `Authorization: Bearer <token>`. Shown once. Absent on a cookie sign-in.
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub token: ::std::option::Option<crate::Secret>,
    pub user: UserView,
}
///`SessionView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct SessionView {
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    ///The session this request came through.
    pub current: bool,
    pub expires_at: ::chrono::DateTime<::chrono::offset::Utc>,
    pub id: ::uuid::Uuid,
    ///The address it signed in from.
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub ip: ::std::option::Option<::std::string::String>,
    ///The `User-Agent` it signed in with.
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub user_agent: ::std::option::Option<::std::string::String>,
}
///`SetupRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    pub email: ::std::string::String,
    pub organization_name: ::std::string::String,
    pub password: crate::Secret,
    ///The token printed at first start (or `OTESSE_SETUP_TOKEN`).
    pub setup_token: crate::Secret,
}
///`SetupResponse`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct SetupResponse {
    pub organization: OrganizationView,
    pub user: UserView,
}
///`SignInRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /**For browsers: keep the session in an HttpOnly cookie (`otesse_session`) instead of
answering it; the answer holds `csrf_token`, to send as `X-CSRF-Token` on every change.
Refused (403) from another site's page.*/
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub cookie: ::std::option::Option<bool>,
    pub email: ::std::string::String,
    pub password: crate::Secret,
}
///`StripeEventView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct StripeEventView {
    pub endpoint_id: ::uuid::Uuid,
    ///Stripe's id (`evt_...`).
    pub event_id: ::std::string::String,
    pub id: ::uuid::Uuid,
    pub livemode: bool,
    ///The event as Stripe sent it.
    pub payload: ::serde_json::Map<::std::string::String, ::serde_json::Value>,
    pub received_at: ::chrono::DateTime<::chrono::offset::Utc>,
    #[serde(rename = "type")]
    pub type_: ::std::string::String,
}
///`StripeStatusView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct StripeStatusView {
    pub connection: ConnectionViewBody,
    ///When the newest event arrived on any of its endpoints.
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub last_event_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    pub webhook_endpoints: u64,
}
///`null` clears a field; an absent field is left alone.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomerRequest {
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub email: ::std::option::Option<::std::string::String>,
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub name: ::std::option::Option<::std::string::String>,
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub phone: ::std::option::Option<::std::string::String>,
}
///`UpdateEndpointRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointRequest {
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub description: ::std::option::Option<::std::string::String>,
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub events: ::std::option::Option<::std::vec::Vec<EventType>>,
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub status: ::std::option::Option<EndpointStatus>,
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub url: ::std::option::Option<::std::string::String>,
}
///`UpdateUserRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    ///A display name (1-100 characters), or `null` to clear it.
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub name: ::std::option::Option<::std::string::String>,
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub role: ::std::option::Option<Role>,
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub status: ::std::option::Option<UserStatusChange>,
}
///`UsageDayView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct UsageDayView {
    pub cache_creation_input_tokens: i64,
    pub cache_read_input_tokens: i64,
    ///The UTC day.
    pub date: ::chrono::naive::NaiveDate,
    pub input_tokens: i64,
    pub output_tokens: i64,
}
///`UsageReportView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct UsageReportView {
    ///Oldest day first; days without usage are absent.
    pub data: ::std::vec::Vec<UsageDayView>,
    pub days: i32,
    pub total_input_tokens: i64,
    pub total_output_tokens: i64,
}
///`UsageSummaryView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct UsageSummaryView {
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub last_used_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    pub total_requests: i64,
    pub unique_ips: i64,
}
///`UsageView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct UsageView {
    ///The path called (never the query string).
    pub endpoint: ::std::string::String,
    pub id: i64,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub ip: ::std::option::Option<::std::string::String>,
    pub method: ::std::string::String,
    pub occurred_at: ::chrono::DateTime<::chrono::offset::Utc>,
    pub response_time_ms: i32,
    pub status: i32,
}
///`UserStatus`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum UserStatus {
    #[serde(rename = "active")]
    Active,
    #[serde(rename = "deactivated")]
    Deactivated,
    #[serde(rename = "deleted")]
    Deleted,
}
impl ::std::fmt::Display for UserStatus {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Active => f.write_str("active"),
            Self::Deactivated => f.write_str("deactivated"),
            Self::Deleted => f.write_str("deleted"),
        }
    }
}
impl ::std::str::FromStr for UserStatus {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "active" => Ok(Self::Active),
            "deactivated" => Ok(Self::Deactivated),
            "deleted" => Ok(Self::Deleted),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for UserStatus {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for UserStatus {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`UserStatusChange`
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum UserStatusChange {
    #[serde(rename = "active")]
    Active,
    #[serde(rename = "deactivated")]
    Deactivated,
}
impl ::std::fmt::Display for UserStatusChange {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Active => f.write_str("active"),
            Self::Deactivated => f.write_str("deactivated"),
        }
    }
}
impl ::std::str::FromStr for UserStatusChange {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "active" => Ok(Self::Active),
            "deactivated" => Ok(Self::Deactivated),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for UserStatusChange {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for UserStatusChange {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///`UserView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct UserView {
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    pub email: ::std::string::String,
    pub id: ::uuid::Uuid,
    ///A display name, when one was given.
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub name: ::std::option::Option<::std::string::String>,
    pub organization_id: ::uuid::Uuid,
    pub role: Role,
    pub status: UserStatus,
}
///The key, when it is known (also when it is refused).
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct VerifiedKey {
    pub environment: Environment,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub expires_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    pub id: ::uuid::Uuid,
    pub name: ::std::string::String,
    pub organization_id: ::uuid::Uuid,
    ///When the key was or will be revoked (a key rotated with a grace period has a time ahead).
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub revoked_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    pub scope_level: ScopeLevel,
    pub scopes: ::std::vec::Vec<Scope>,
}
///Why a key is valid or not.
#[derive(
    ::serde::Deserialize,
    ::serde::Serialize,
    Clone,
    Copy,
    Debug,
    Eq,
    Hash,
    Ord,
    PartialEq,
    PartialOrd
)]
pub enum VerifyCode {
    #[serde(rename = "ok")]
    Ok,
    #[serde(rename = "not_found")]
    NotFound,
    #[serde(rename = "revoked")]
    Revoked,
    #[serde(rename = "expired")]
    Expired,
    #[serde(rename = "ip_not_allowed")]
    IpNotAllowed,
    #[serde(rename = "insufficient_scope")]
    InsufficientScope,
    #[serde(rename = "rate_limited")]
    RateLimited,
}
impl ::std::fmt::Display for VerifyCode {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match *self {
            Self::Ok => f.write_str("ok"),
            Self::NotFound => f.write_str("not_found"),
            Self::Revoked => f.write_str("revoked"),
            Self::Expired => f.write_str("expired"),
            Self::IpNotAllowed => f.write_str("ip_not_allowed"),
            Self::InsufficientScope => f.write_str("insufficient_scope"),
            Self::RateLimited => f.write_str("rate_limited"),
        }
    }
}
impl ::std::str::FromStr for VerifyCode {
    type Err = self::error::ConversionError;
    fn from_str(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        match value {
            "ok" => Ok(Self::Ok),
            "not_found" => Ok(Self::NotFound),
            "revoked" => Ok(Self::Revoked),
            "expired" => Ok(Self::Expired),
            "ip_not_allowed" => Ok(Self::IpNotAllowed),
            "insufficient_scope" => Ok(Self::InsufficientScope),
            "rate_limited" => Ok(Self::RateLimited),
            _ => Err("invalid value".into()),
        }
    }
}
impl ::std::convert::TryFrom<&str> for VerifyCode {
    type Error = self::error::ConversionError;
    fn try_from(
        value: &str,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
impl ::std::convert::TryFrom<::std::string::String> for VerifyCode {
    type Error = self::error::ConversionError;
    fn try_from(
        value: ::std::string::String,
    ) -> ::std::result::Result<Self, self::error::ConversionError> {
        value.parse()
    }
}
///What a service asks.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /**The address the request came from, checked against the key's IP allow-list. A key with an
allow-list is refused (`ip_not_allowed`) when this is missing.*/
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub ip: ::std::option::Option<::std::string::String>,
    ///The API key the service was presented (`erp_live_...` or `erp_test_...`).
    pub key: ::std::string::String,
    ///The request's method at the service, for the key's usage log; default `POST`.
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub method: ::std::option::Option<::std::string::String>,
    ///The request's path at the service, for the key's usage log; default `/v1/keys/verify`.
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub path: ::std::option::Option<::std::string::String>,
    ///Scopes the request needs; the key must hold each one (within its level).
    #[serde(default, skip_serializing_if = "::std::vec::Vec::is_empty")]
    pub scopes: ::std::vec::Vec<::std::string::String>,
}
///The answer: always 200 for a well-formed request.
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct VerifyResponse {
    pub code: VerifyCode,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub error: ::std::option::Option<Refusal>,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub key: ::std::option::Option<VerifiedKey>,
    ///The message Otesse itself answers for this reason.
    pub message: ::std::string::String,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub ratelimit: ::std::option::Option<RateLimitState>,
    pub valid: bool,
}
///`WebhookEndpointRequest`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointRequest {
    #[serde(skip_serializing_if = "::std::option::Option::is_none")]
    pub description: ::std::option::Option<::std::string::String>,
    ///Stripe event types (`charge.succeeded`), or `["*"]` for all.
    pub events: ::std::vec::Vec<::std::string::String>,
    ///The endpoint's signing secret from Stripe (`whsec_...`); stored encrypted, never shown.
    pub signing_secret: crate::Secret,
}
///`WebhookEndpointView`
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct WebhookEndpointView {
    pub created_at: ::chrono::DateTime<::chrono::offset::Utc>,
    pub description: ::std::string::String,
    pub events: ::std::vec::Vec<::std::string::String>,
    pub id: ::uuid::Uuid,
    ///When its newest event arrived.
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub last_event_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    ///The URL to register in Stripe for this endpoint.
    pub url: ::std::string::String,
}
/**The answer's shape, as documented. The handler serializes [`Whoami`], which borrows the same
fields from the cached key instead of copying them (this answers every keyed health check).*/
#[derive(::serde::Deserialize, ::serde::Serialize, Clone, Debug)]
pub struct WhoamiResponse {
    pub environment: Environment,
    #[serde(deserialize_with = "::std::option::Option::deserialize")]
    pub expires_at: ::std::option::Option<::chrono::DateTime<::chrono::offset::Utc>>,
    pub id: ::uuid::Uuid,
    pub name: ::std::string::String,
    pub organization_id: ::uuid::Uuid,
    pub scope_level: ScopeLevel,
    pub scopes: ::std::vec::Vec<Scope>,
}
/// Error types.
pub mod error {
    /// Error from a `TryFrom` or `FromStr` implementation.
    pub struct ConversionError(::std::borrow::Cow<'static, str>);
    impl ::std::error::Error for ConversionError {}
    impl ::std::fmt::Display for ConversionError {
        fn fmt(
            &self,
            f: &mut ::std::fmt::Formatter<'_>,
        ) -> Result<(), ::std::fmt::Error> {
            ::std::fmt::Display::fmt(&self.0, f)
        }
    }
    impl ::std::fmt::Debug for ConversionError {
        fn fmt(
            &self,
            f: &mut ::std::fmt::Formatter<'_>,
        ) -> Result<(), ::std::fmt::Error> {
            ::std::fmt::Debug::fmt(&self.0, f)
        }
    }
    impl From<&'static str> for ConversionError {
        fn from(value: &'static str) -> Self {
            Self(value.into())
        }
    }
    impl From<String> for ConversionError {
        fn from(value: String) -> Self {
            Self(value.into())
        }
    }
}
