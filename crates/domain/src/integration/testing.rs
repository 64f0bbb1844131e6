//! What the integration service's tests share: a caller, a readable fake cipher, mocked ports
//! and a connected connection.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::catalog::fixtures::provider;
use super::service::{ConnectInput, IntegrationPorts, IntegrationService, Preconfigured};
use super::{
    AuthMethod, Catalog, Category, ConnectionStatus, ConnectionView, Credentials, HealthOutcome, HealthReport,
    InstanceStatus, IntegrationConnection, IntegrationInstance, MockContactRepository, MockIntegrationRepository,
    MockOAuthClient, MockOAuthRepository, MockProviderClient, OAuthApp, OAuthApps, OAuthPorts, ProviderDefinition,
    ProviderSlug, ResourceType,
};
use crate::caller::Caller;
use crate::organization::OrganizationId;
use crate::ports::MockClock;
use crate::sealed::{Ciphertext, DecryptError, MockCredentialCipher};
use crate::user::{MockUserDirectory, Role, User, UserId, UserStatus};

pub fn actor(role: Role) -> Caller {
    crate::caller::fixtures::user(role)
}

/// A readable fake cipher: version 2, bytes = the owner's associated data, `|`, the plaintext
/// reversed.
pub fn cipher() -> MockCredentialCipher {
    let mut cipher = MockCredentialCipher::new();
    cipher.expect_encrypt().returning(|plain, owner| {
        let mut bytes = owner.associated_data();
        bytes.push(b'|');
        bytes.extend(plain.expose_secret().bytes().rev());
        Ciphertext { key_version: 2, bytes }
    });
    cipher.expect_decrypt().returning(|ct, owner| {
        let prefix = owner.associated_data();
        if !ct.bytes.starts_with(&prefix) {
            return Err(DecryptError::Tampered);
        }
        Ok(SecretString::from(ct.bytes[prefix.len() + 1..].iter().rev().map(|b| *b as char).collect::<String>()))
    });
    cipher.expect_current_version().return_const(2u32);
    cipher
}

/// Random material that is recognisably random: a fresh UUID's digits, to the length asked.
fn secrets() -> crate::ports::MockSecretGenerator {
    let mut secrets = crate::ports::MockSecretGenerator::new();
    secrets.expect_base62().returning(|len| {
        let digits: String = (0..4).map(|_| Uuid::new_v4().simple().to_string()).collect();
        SecretString::from(digits[..len].to_owned())
    });
    secrets
}

fn hasher() -> crate::ports::MockKeyHasher {
    let mut hasher = crate::ports::MockKeyHasher::new();
    hasher.expect_hash().returning(|p| crate::api_key::KeyHash(fake_hash(p)));
    hasher
}

pub fn report(outcome: HealthOutcome) -> HealthReport {
    HealthReport { outcome, response_time_ms: 12, detail: "HTTP 200".into() }
}

pub fn typed(key: &str) -> ConnectInput {
    ConnectInput::Credentials(BTreeMap::from([("api_key".to_owned(), SecretString::from(key.to_owned()))]))
}

pub fn preconfigured(slug: &str, key: &str) -> Preconfigured {
    Preconfigured::new(HashMap::from([(
        slug.to_owned(),
        Credentials { api_key: key.to_owned().into(), api_secret: None, account_id: None },
    )]))
}

pub struct Mocks {
    pub repository: MockIntegrationRepository,
    pub client: MockProviderClient,
    pub preconfigured: Preconfigured,
    pub contacts: MockContactRepository,
    pub oauth_apps: OAuthApps,
    pub oauth_client: MockOAuthClient,
    pub oauth_repository: MockOAuthRepository,
    pub users: MockUserDirectory,
}

/// A directory where everyone asked about is an active admin of the organization asked about.
pub fn active_admins() -> MockUserDirectory {
    users_as(Role::Admin, UserStatus::Active)
}

/// A directory where everyone asked about has this role and status.
pub fn users_as(role: Role, status: UserStatus) -> MockUserDirectory {
    let mut users = MockUserDirectory::new();
    users.expect_find_many().returning(move |organization, ids| {
        Ok(ids
            .into_iter()
            .map(|id| User {
                id,
                organization_id: organization,
                email: crate::user::Email::parse("user@acme.test").unwrap(),
                name: None,
                role,
                status,
                created_at: Utc::now(),
            })
            .collect())
    });
    users
}

/// A client registration for `slug`.
pub fn oauth_apps(slug: &str) -> OAuthApps {
    OAuthApps::new(HashMap::from([(
        slug.to_owned(),
        OAuthApp { client_id: "client-1".into(), client_secret: "client-secret-1".to_owned().into() },
    )]))
}

/// The fake hasher's hash: the bytes of the plaintext, padded or cut to 32.
pub fn fake_hash(plaintext: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(plaintext.bytes()) {
        *o = b;
    }
    out
}

/// `plaintext` sealed to `owner` as the fake cipher does.
pub fn sealed_with(owner: &crate::sealed::SecretOwner, plaintext: &str) -> Ciphertext {
    use crate::sealed::CredentialCipher;
    cipher().encrypt(&SecretString::from(plaintext.to_owned()), owner)
}

impl Mocks {
    pub fn new() -> Self {
        let mut repository = MockIntegrationRepository::new();
        repository.expect_provider_states().returning(|_| Ok(vec![]));
        repository.expect_list_connections().returning(|_| Ok(vec![]));
        repository.expect_find_instance().returning(|_, _| Ok(None));
        Self {
            repository,
            client: MockProviderClient::new(),
            preconfigured: Preconfigured::default(),
            contacts: MockContactRepository::new(),
            oauth_apps: OAuthApps::default(),
            oauth_client: MockOAuthClient::new(),
            oauth_repository: MockOAuthRepository::new(),
            users: active_admins(),
        }
    }

    fn with_catalog(self, catalog: Catalog) -> IntegrationService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(Utc::now);
        IntegrationService::new(IntegrationPorts {
            catalog: Arc::new(catalog),
            repository: Arc::new(self.repository),
            cipher: Arc::new(cipher()),
            client: Arc::new(self.client),
            clock: Arc::new(clock),
            preconfigured: self.preconfigured,
            contacts: Arc::new(self.contacts),
            oauth: OAuthPorts {
                apps: self.oauth_apps,
                client: Arc::new(self.oauth_client),
                repository: Arc::new(self.oauth_repository),
                secrets: Arc::new(secrets()),
                hasher: Arc::new(hasher()),
                users: Arc::new(self.users),
                refresh_lease_secs: super::REFRESH_LEASE_SECS,
            },
        })
    }

    /// Postmark (with sender emails), a provider that needs Postmark, and a retired one.
    pub fn service(self) -> IntegrationService {
        let catalog = Catalog::new(vec![
            ProviderDefinition {
                resource_types: vec![ResourceType::SenderEmails],
                ..provider("postmark", Category::Communication, &[])
            },
            provider("needs_postmark", Category::Communication, &["postmark"]),
            ProviderDefinition { active: false, ..provider("retired", Category::Ai, &[]) },
        ])
        .unwrap();
        self.with_catalog(catalog)
    }

    /// Anthropic with model selection.
    pub fn with_anthropic(self) -> IntegrationService {
        let catalog = Catalog::new(vec![ProviderDefinition {
            resource_types: vec![ResourceType::ModelSelection],
            ..provider("anthropic", Category::Ai, &[])
        }])
        .unwrap();
        self.with_catalog(catalog)
    }

    /// Xero, an OAuth2 provider with PKCE and revocation.
    pub fn with_xero(self) -> IntegrationService {
        let xero = ProviderDefinition {
            auth_type: super::AuthType::OAuth2,
            fields: vec![],
            oauth: Some(super::OAuthSpec {
                authorization_url: "https://login.example/authorize".into(),
                token_url: "https://identity.example/token".into(),
                revocation_url: Some("https://identity.example/revoke".into()),
                scopes: vec!["offline_access".into(), "accounting.contacts.read".into()],
                pkce: true,
                refresh_tokens: super::RefreshTokens { rotating: true, lifetime_days: Some(60) },
            }),
            ..provider("xero", Category::Accounting, &[])
        };
        self.with_catalog(Catalog::new(vec![xero]).unwrap())
    }

    /// Postmark alone.
    pub fn with_postmark(self) -> IntegrationService {
        self.with_catalog(Catalog::new(vec![provider("postmark", Category::Communication, &[])]).unwrap())
    }
}

/// Connection 10 of instance 20 in organization 1, made by user 2.
pub fn connected_view(provider_slug: &str) -> ConnectionView {
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
