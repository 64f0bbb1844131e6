//! Connecting an OAuth2 provider: `connect` answers the provider's authorization URL (PKCE
//! S256, a random single-use `state` bound to the user and organization, valid for
//! [`AUTHORIZATION_TTL_SECS`]); the callback consumes the state, exchanges the code with the
//! verifier, seals the tokens and checks them, and writes the connection as an API-key connect
//! does: everything in one transaction, and nothing when the check fails.

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::super::connect::ConnectAttempt;
use super::super::service::{ConnectError, ConnectInput, EDIT, IntegrationError, IntegrationService};
use super::super::{AuthMethod, AuthType, ConnectionView, Credentials, HealthOutcome, ProviderDefinition};
use super::{OAuthSpec, PendingAuthorization, StoredTokens, TokenError, TokenGrant, TokenKind, base64url, form_encode};
use crate::caller::{Caller, Denied};
use crate::event::AuditActor;
use crate::organization::OrganizationId;
use crate::user::{Permission, UserId};

/// How long an authorization link may take to come back.
pub const AUTHORIZATION_TTL_SECS: i64 = 600;

/// Longest `state` accepted back (ours are 43 characters).
const MAX_STATE_LEN: usize = 128;

/// Where to send the browser to grant access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The provider's authorization URL with its parameters (state, PKCE challenge, scopes).
    pub url: String,
    /// When its state stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// What a connect request led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectStart {
    /// An API-key provider, connected.
    Connected(Box<ConnectionView>),
    /// An OAuth2 provider: the browser goes here next.
    Authorize(Authorization),
}

/// What the provider sent back to the callback besides the state.
#[derive(Debug)]
pub enum CallbackAnswer {
    /// The authorization code to exchange.
    Code(SecretString),
    /// The `error` parameter (`access_denied`, ...).
    Error(String),
}

/// Why a callback connected nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The state is unknown, expired or already used (a replay).
    #[error("This authorization is unknown, expired or already used. Connect the provider again.")]
    InvalidState,
    /// The user denied access at the provider (`error=access_denied`).
    #[error("Connection was cancelled. You denied access.")]
    Denied,
    #[error("{provider} ended the authorization with the error {code}. Connect the provider again.")]
    /// The provider ended the authorization with another `error`.
    ProviderError {
        /// The provider's name.
        provider: String,
        /// The OAuth error code it sent.
        code: String,
    },
    /// The code exchange was refused (`invalid_grant`: a wrong verifier, a spent code).
    #[error("{0} did not accept the authorization code. Connect the provider again.")]
    CodeRejected(String),
    /// The provider refused this deployment's client id or secret (`invalid_client`).
    #[error("{0} refused this deployment's OAuth client; the operator must check its client id and secret.")]
    ClientRejected(String),
    /// The tokens were granted but the connect failed (health check, permission, store).
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

impl From<IntegrationError> for CallbackError {
    fn from(err: IntegrationError) -> Self {
        CallbackError::Connect(err.into())
    }
}

impl From<crate::StorageError> for CallbackError {
    fn from(err: crate::StorageError) -> Self {
        CallbackError::Connect(err.into())
    }
}

/// A provider's `error` parameter, shown back only if it looks like an OAuth error code.
fn error_code(raw: &str) -> String {
    let ok = !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if ok { raw.to_owned() } else { "unknown".to_owned() }
}

impl IntegrationService {
    /// `POST .../providers/{slug}/connect`: an API-key provider connects with `input`; an OAuth2
    /// provider takes none and answers where to authorize, the callback coming back to
    /// `redirect_uri`.
    pub async fn start_connect(
        &self,
        caller: &Caller,
        slug: &str,
        input: Option<ConnectInput>,
        redirect_uri: &str,
    ) -> Result<ConnectStart, ConnectError> {
        caller.require(EDIT)?;
        let definition = self.definition(slug)?;
        match (definition.auth_type, input) {
            (AuthType::ApiKey, Some(input)) => {
                Ok(ConnectStart::Connected(Box::new(self.connect(caller, slug, input).await?)))
            }
            (AuthType::ApiKey, None) => Err(ConnectError::NoCredentials),
            (AuthType::OAuth2, Some(_)) => Err(ConnectError::CredentialsForOAuth(definition.name.clone())),
            (AuthType::OAuth2, None) => {
                Ok(ConnectStart::Authorize(self.authorize(caller, definition, redirect_uri).await?))
            }
        }
    }

    /// The deployment's client registration and the provider's endpoints, or why it cannot be
    /// connected here.
    pub(in crate::integration) fn oauth_of<'a>(
        &'a self,
        definition: &'a ProviderDefinition,
    ) -> Result<(&'a OAuthSpec, &'a super::OAuthApp), ConnectError> {
        let spec = definition.oauth.as_ref();
        let app = self.ports.oauth.apps.get(&definition.slug);
        spec.zip(app).ok_or_else(|| ConnectError::OAuthNotConfigured(definition.name.clone()))
    }

    /// Why the catalog lists an OAuth provider as not available here, if it does.
    pub(in crate::integration) fn oauth_of_listing(&self, definition: &ProviderDefinition) -> Option<String> {
        let oauth = definition.auth_type == AuthType::OAuth2;
        oauth.then(|| self.oauth_of(definition).err().map(|e| e.to_string())).flatten()
    }

    async fn authorize(
        &self,
        caller: &Caller,
        definition: &ProviderDefinition,
        redirect_uri: &str,
    ) -> Result<Authorization, ConnectError> {
        if !definition.active {
            return Err(ConnectError::InactiveProvider(definition.name.clone()));
        }
        let (spec, app) = self.oauth_of(definition)?;
        self.connect_preflight(caller, definition).await?;
        let oauth = &self.ports.oauth;
        let now = self.ports.clock.now();
        let state = oauth.secrets.base62(43);
        let id = Uuid::now_v7();
        let mut pending = PendingAuthorization {
            id,
            state_hash: oauth.hasher.hash(state.expose_secret()).0,
            organization_id: caller.organization_id(),
            user_id: caller.on_behalf_of(),
            provider: definition.slug.clone(),
            redirect_uri: redirect_uri.to_owned(),
            verifier: None,
            created_at: now,
            expires_at: now + Duration::seconds(AUTHORIZATION_TTL_SECS),
        };
        let mut url = spec.authorization_url.clone();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!(
            "response_type=code&client_id={}&redirect_uri={}&scope={}&state={}",
            form_encode(&app.client_id),
            form_encode(redirect_uri),
            form_encode(&spec.scopes.join(" ")),
            state.expose_secret(),
        ));
        if spec.pkce {
            // RFC 7636: 43 to 128 unreserved characters; base62 is a subset.
            let verifier = oauth.secrets.base62(64);
            let challenge = base64url(&oauth.hasher.hash(verifier.expose_secret()).0);
            pending.verifier = Some(self.ports.cipher.encrypt(&verifier, &pending.verifier_owner()));
            url.push_str(&format!("&code_challenge={challenge}&code_challenge_method=S256"));
        }
        oauth.repository.insert_authorization(&pending).await?;
        Ok(Authorization { url, expires_at: pending.expires_at })
    }

    /// The callback: consumes `state`, then connects with the tokens the code is exchanged for.
    /// A denial, an unknown, used or expired state, or a refused code leaves nothing behind.
    pub async fn complete_authorization(
        &self,
        state: &str,
        answer: CallbackAnswer,
    ) -> Result<ConnectionView, CallbackError> {
        if state.is_empty() || state.len() > MAX_STATE_LEN {
            return Err(CallbackError::InvalidState);
        }
        let oauth = &self.ports.oauth;
        let hash = oauth.hasher.hash(state).0;
        let pending = oauth.repository.take_authorization(&hash).await?.ok_or(CallbackError::InvalidState)?;
        if pending.expires_at <= self.ports.clock.now() {
            return Err(CallbackError::InvalidState);
        }
        let definition = self.definition(pending.provider.as_str())?;
        let code = match answer {
            CallbackAnswer::Error(code) if code == "access_denied" => return Err(CallbackError::Denied),
            CallbackAnswer::Error(code) => {
                return Err(CallbackError::ProviderError {
                    provider: definition.name.clone(),
                    code: error_code(&code),
                });
            }
            CallbackAnswer::Code(code) => code,
        };
        self.may_still_connect(&pending).await?;
        let (spec, app) = self.oauth_of(definition)?;
        let verifier = match &pending.verifier {
            Some(sealed) => Some(
                self.ports
                    .cipher
                    .decrypt(sealed, &pending.verifier_owner())
                    .map_err(|_| IntegrationError::Undecryptable)?,
            ),
            None => None,
        };
        let grant =
            oauth.client.exchange_code(spec, app, &code, &pending.redirect_uri, verifier.as_ref()).await.map_err(
                |err| match err {
                    TokenError::InvalidGrant => CallbackError::CodeRejected(definition.name.clone()),
                    TokenError::InvalidClient(_) => CallbackError::ClientRejected(definition.name.clone()),
                    TokenError::RateLimited => ConnectError::CheckFailed {
                        outcome: HealthOutcome::RateLimited,
                        message: HealthOutcome::RateLimited.message(&definition.name),
                    }
                    .into(),
                    TokenError::Unreachable(_) => ConnectError::CheckFailed {
                        outcome: HealthOutcome::Unreachable,
                        message: HealthOutcome::Unreachable.message(&definition.name),
                    }
                    .into(),
                },
            )?;
        Ok(self.connect_with_tokens(definition, &pending, grant).await?)
    }

    /// The user who started the authorization must still be there, active, and allowed to
    /// connect integrations (`settings.edit`) when the browser comes back: a role changed or a
    /// user deactivated in between connects nothing.
    async fn may_still_connect(&self, pending: &PendingAuthorization) -> Result<(), CallbackError> {
        let users = self.ports.oauth.users.find_many(pending.organization_id, vec![pending.user_id]).await?;
        let user = users.into_iter().find(|u| u.id == pending.user_id && u.organization_id == pending.organization_id);
        match user {
            Some(user) if user.is_active() && user.role.has(Permission::SettingsEdit) => Ok(()),
            _ => Err(IntegrationError::Forbidden(Denied::Role(Permission::SettingsEdit)).into()),
        }
    }

    /// Seals the tokens, checks them, and records the connect (or its failure) as
    /// [`connect`](Self::connect) does.
    async fn connect_with_tokens(
        &self,
        definition: &ProviderDefinition,
        pending: &PendingAuthorization,
        grant: TokenGrant,
    ) -> Result<ConnectionView, ConnectError> {
        let organization: OrganizationId = pending.organization_id;
        let owner: UserId = pending.user_id;
        let now = self.ports.clock.now();
        let connection_id = Uuid::now_v7();
        let mut tokens = StoredTokens {
            connection_id,
            organization_id: organization,
            access: crate::sealed::Ciphertext { key_version: 0, bytes: Vec::new() },
            refresh: None,
            access_expires_at: grant.expires_in_secs.map(|s| now + Duration::seconds(s.min(i64::MAX as u64) as i64)),
            updated_at: now,
        };
        tokens.access = self.ports.cipher.encrypt(&grant.access_token, &tokens.owner(TokenKind::Access));
        tokens.refresh =
            grant.refresh_token.as_ref().map(|r| self.ports.cipher.encrypt(r, &tokens.owner(TokenKind::Refresh)));
        // The check runs on what decrypts from the ciphertext, as later calls will.
        let access = self
            .ports
            .cipher
            .decrypt(&tokens.access, &tokens.owner(TokenKind::Access))
            .map_err(|_| IntegrationError::Undecryptable)?;
        let credentials = Credentials { api_key: access, api_secret: None, account_id: None };
        let states = self.ports.repository.provider_states(organization).await?;
        let attempt = ConnectAttempt {
            definition,
            organization,
            owner,
            actor: AuditActor::User(owner),
            connection_id,
            auth_method: AuthMethod::OAuth2,
            credentials: Vec::new(),
            tokens: Some(tokens),
            existing_connected: states.iter().any(|s| s.provider == definition.slug && s.connected),
        };
        match self.check_and_store(attempt, &credentials).await {
            Err(ConnectError::CheckFailed { outcome: HealthOutcome::InvalidCredentials, .. }) => {
                Err(ConnectError::CheckFailed {
                    outcome: HealthOutcome::InvalidCredentials,
                    message: format!("{} did not accept the access it granted. Connect it again.", definition.name),
                })
            }
            Err(ConnectError::AlreadyConnected(name)) => {
                // A concurrent connect won: the grant just made is nobody's, so it is handed
                // back to the provider rather than left to live until it expires.
                self.revoke_grant(definition, &grant).await;
                Err(ConnectError::AlreadyConnected(name))
            }
            outcome => outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::super::super::testing::{Mocks, actor, report};
    use super::super::{MockOAuthClient, MockOAuthRepository};
    use super::*;
    use crate::user::Role;

    fn xero_mocks() -> Mocks {
        let mut mocks = Mocks::new();
        mocks.oauth_apps = super::super::super::testing::oauth_apps("xero");
        mocks
    }

    #[tokio::test]
    async fn connect_answers_an_authorization_url_with_a_s256_challenge_and_stores_only_the_state_hash() {
        let mut mocks = xero_mocks();
        let stored = Arc::new(Mutex::new(None));
        let sink = stored.clone();
        let mut repository = MockOAuthRepository::new();
        repository.expect_insert_authorization().times(1).returning(move |pending| {
            *sink.lock().unwrap() = Some(pending.clone());
            Ok(())
        });
        mocks.oauth_repository = repository;
        let service = mocks.with_xero();
        let start =
            service.start_connect(&actor(Role::Admin), "xero", None, "https://otesse.example/cb").await.unwrap();
        let ConnectStart::Authorize(authorization) = start else { panic!("{start:?}") };
        let pending = stored.lock().unwrap().clone().unwrap();
        let url = &authorization.url;
        assert!(url.starts_with("https://login.example/authorize?response_type=code&client_id=client-1&"), "{url}");
        assert!(url.contains("redirect_uri=https%3A%2F%2Fotesse.example%2Fcb"), "{url}");
        assert!(url.contains("scope=offline_access%20accounting.contacts.read"), "{url}");
        assert!(url.contains("&code_challenge_method=S256"), "{url}");
        let state = url.split("state=").nth(1).unwrap().split('&').next().unwrap();
        assert_eq!(state.len(), 43);
        assert_eq!(pending.state_hash, super::super::super::testing::fake_hash(state), "stored as its hash");
        assert!(!format!("{pending:?}").contains(state), "the state itself is not stored");
        assert_eq!(authorization.expires_at - pending.created_at, Duration::seconds(AUTHORIZATION_TTL_SECS));
        let verifier_sealed = pending.verifier.clone().unwrap();
        assert!(verifier_sealed.bytes.starts_with(&pending_owner(&pending)), "sealed to the authorization");
    }

    fn pending_owner(pending: &PendingAuthorization) -> Vec<u8> {
        pending.verifier_owner().associated_data()
    }

    #[tokio::test]
    async fn credentials_for_an_oauth_provider_and_no_registration_are_refused_before_anything_is_stored() {
        let mut mocks = Mocks::new();
        mocks.oauth_repository.expect_insert_authorization().never();
        let service = mocks.with_xero();
        let caller = actor(Role::Admin);
        let err = service.start_connect(&caller, "xero", None, "https://x/cb").await.unwrap_err();
        assert_eq!(err, ConnectError::OAuthNotConfigured("XERO".into()));
        let typed = super::super::super::testing::typed("k");
        let err = service.start_connect(&caller, "xero", Some(typed), "https://x/cb").await.unwrap_err();
        assert_eq!(err, ConnectError::CredentialsForOAuth("XERO".into()));
    }

    fn pending(expires_in: i64) -> PendingAuthorization {
        let now = Utc::now();
        let org = OrganizationId(Uuid::from_u128(1));
        let id = Uuid::from_u128(77);
        let verifier_owner = crate::sealed::SecretOwner::OAuthVerifier { organization: org, authorization: id };
        PendingAuthorization {
            id,
            state_hash: [0; 32],
            organization_id: org,
            user_id: UserId(Uuid::from_u128(2)),
            provider: crate::integration::ProviderSlug::parse("xero").unwrap(),
            redirect_uri: "https://x/cb".into(),
            verifier: Some(super::super::super::testing::sealed_with(&verifier_owner, "the-verifier")),
            created_at: now,
            expires_at: now + Duration::seconds(expires_in),
        }
    }

    #[tokio::test]
    async fn a_denial_an_expired_or_unknown_state_end_the_attempt_without_a_call() {
        for (found, answer, expected) in [
            (Some(pending(60)), CallbackAnswer::Error("access_denied".into()), CallbackError::Denied),
            (
                Some(pending(60)),
                CallbackAnswer::Error("<script>".into()),
                CallbackError::ProviderError { provider: "XERO".into(), code: "unknown".into() },
            ),
            (Some(pending(-1)), CallbackAnswer::Code("c".to_owned().into()), CallbackError::InvalidState),
            (None, CallbackAnswer::Code("c".to_owned().into()), CallbackError::InvalidState),
        ] {
            let mut mocks = xero_mocks();
            mocks.oauth_repository.expect_take_authorization().times(1).return_once(move |_| Ok(found));
            mocks.oauth_client = MockOAuthClient::new();
            mocks.oauth_client.expect_exchange_code().never();
            mocks.client.expect_health_check().never();
            mocks.repository.expect_save_connection().never();
            mocks.repository.expect_record_failed_connect().never();
            let err = mocks.with_xero().complete_authorization("some-state", answer).await.unwrap_err();
            assert_eq!(err, expected);
        }
        assert_eq!(CallbackError::Denied.to_string(), "Connection was cancelled. You denied access.");
    }

    #[tokio::test]
    async fn a_code_is_exchanged_with_the_verifier_and_the_sealed_tokens_are_saved_with_the_connection() {
        let mut mocks = xero_mocks();
        mocks.oauth_repository.expect_take_authorization().return_once(|_| Ok(Some(pending(60))));
        mocks
            .oauth_client
            .expect_exchange_code()
            .withf(|_, app, code, redirect, verifier| {
                app.client_id == "client-1"
                    && code.expose_secret() == "the-code"
                    && redirect == "https://x/cb"
                    && verifier.is_some_and(|v| v.expose_secret() == "the-verifier")
            })
            .times(1)
            .returning(|_, _, _, _, _| {
                Ok(TokenGrant {
                    access_token: "at-1".to_owned().into(),
                    refresh_token: Some("rt-1".to_owned().into()),
                    expires_in_secs: Some(1800),
                })
            });
        mocks
            .client
            .expect_health_check()
            .withf(|_, creds| creds.api_key.expose_secret() == "at-1")
            .returning(|_, _| report(HealthOutcome::Healthy));
        let saved = Arc::new(Mutex::new(None));
        let sink = saved.clone();
        mocks.repository.expect_save_connection().times(1).returning(move |new, event| {
            assert_eq!(event.actor, AuditActor::User(UserId(Uuid::from_u128(2))));
            *sink.lock().unwrap() = Some(new.clone());
            Ok(())
        });
        mocks.repository.expect_find_connection().returning(|_, _| Ok(None));
        let view = mocks
            .with_xero()
            .complete_authorization("s", CallbackAnswer::Code("the-code".to_owned().into()))
            .await
            .unwrap();
        assert_eq!(view.connection.auth_method, AuthMethod::OAuth2);
        let new = saved.lock().unwrap().clone().unwrap();
        let tokens = new.tokens.unwrap();
        assert!(new.credentials.is_empty());
        let text = format!("{:?}{:?}", String::from_utf8_lossy(&tokens.access.bytes), tokens.refresh);
        assert!(!text.contains("at-1") && !text.contains("rt-1"), "sealed");
        assert!(tokens.access.bytes.starts_with(&tokens.owner(TokenKind::Access).associated_data()));
        let lifetime = tokens.access_expires_at.unwrap() - tokens.updated_at;
        assert_eq!(lifetime, Duration::seconds(1800));
    }

    #[tokio::test]
    async fn a_refused_code_connects_nothing() {
        let mut mocks = xero_mocks();
        mocks.oauth_repository.expect_take_authorization().return_once(|_| Ok(Some(pending(60))));
        mocks.oauth_client.expect_exchange_code().returning(|_, _, _, _, _| Err(TokenError::InvalidGrant));
        mocks.client.expect_health_check().never();
        mocks.repository.expect_save_connection().never();
        let err = mocks
            .with_xero()
            .complete_authorization("s", CallbackAnswer::Code("c".to_owned().into()))
            .await
            .unwrap_err();
        assert_eq!(err, CallbackError::CodeRejected("XERO".into()));
    }

    #[tokio::test]
    async fn a_user_who_lost_the_permission_or_was_deactivated_since_connect_gets_nothing() {
        use crate::user::UserStatus;
        for (role, status) in [(Role::Viewer, UserStatus::Active), (Role::Admin, UserStatus::Deactivated)] {
            let mut mocks = xero_mocks();
            mocks.users = super::super::super::testing::users_as(role, status);
            mocks.oauth_repository.expect_take_authorization().return_once(|_| Ok(Some(pending(60))));
            mocks.oauth_client.expect_exchange_code().never();
            mocks.client.expect_health_check().never();
            mocks.repository.expect_save_connection().never();
            mocks.repository.expect_record_failed_connect().never();
            let err = mocks
                .with_xero()
                .complete_authorization("s", CallbackAnswer::Code("c".to_owned().into()))
                .await
                .unwrap_err();
            let forbidden = IntegrationError::Forbidden(Denied::Role(Permission::SettingsEdit));
            assert_eq!(err, CallbackError::Connect(forbidden.into()), "{role:?} {status:?}");
        }
    }

    #[tokio::test]
    async fn a_grant_that_loses_the_race_at_the_store_is_revoked_at_the_provider() {
        let mut mocks = xero_mocks();
        mocks.oauth_repository.expect_take_authorization().return_once(|_| Ok(Some(pending(60))));
        mocks.oauth_client.expect_exchange_code().returning(|_, _, _, _, _| {
            Ok(TokenGrant {
                access_token: "at-lost".to_owned().into(),
                refresh_token: Some("rt-lost".to_owned().into()),
                expires_in_secs: Some(1800),
            })
        });
        mocks.client.expect_health_check().returning(|_, _| report(HealthOutcome::Healthy));
        mocks
            .repository
            .expect_save_connection()
            .times(1)
            .returning(|_, _| Err(super::super::super::SaveConnectionError::AlreadyConnected));
        let revoked = Arc::new(Mutex::new(Vec::new()));
        let sink = revoked.clone();
        mocks.oauth_client.expect_revoke().times(2).returning(move |_, _, token| {
            sink.lock().unwrap().push(token.expose_secret().to_owned());
            Ok(())
        });
        let err = mocks
            .with_xero()
            .complete_authorization("s", CallbackAnswer::Code("the-code".to_owned().into()))
            .await
            .unwrap_err();
        assert_eq!(err, CallbackError::Connect(ConnectError::AlreadyConnected("XERO".into())));
        assert_eq!(*revoked.lock().unwrap(), ["rt-lost", "at-lost"]);
    }
}
