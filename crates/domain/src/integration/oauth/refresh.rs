//! An OAuth connection's access token for a provider call: the stored one while it has more
//! than [`REFRESH_AHEAD_SECS`] to live, else a refreshed one.
//!
//! One refresh at a time per connection, across processes: the refresher takes the
//! connection's lease (a conditional UPDATE of its tokens row, lapsing after
//! [`REFRESH_LEASE_SECS`]); the others keep using the current token while it still works, or
//! wait for the lease to be given up and read what it stored. The new pair is stored, and the
//! lease given up, before the new access token is used. A crash after the provider answered
//! and before the store leaves the old pair: with a rotating provider its refresh token may be
//! spent, and the next refresh then answers `invalid_grant`, which marks the connection
//! "needs re-authorization" (never a connection that silently fails).
//!
//! `invalid_grant` marks the connection, notifies the user who connected it and publishes
//! `integration.needs_reauthorization`, in one transaction.

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use super::super::service::{IntegrationError, IntegrationService};
use super::super::{AuthMethod, ConnectionStatus, ConnectionView, Credentials, HealthOutcome, ProviderDefinition};
use super::{StoredTokens, TokenError, TokenGrant, TokenKind};
use crate::event::{AuditActor, DomainEvent, Event};
use crate::notification::{Notification, NotificationKind};

/// Refresh when the access token has less than this to live.
pub const REFRESH_AHEAD_SECS: i64 = 300;
/// How long a refresher holds a connection's lease by default (beyond the provider call's
/// timeout); deployments set it with [`OAuthPorts::refresh_lease_secs`](super::OAuthPorts).
pub const REFRESH_LEASE_SECS: u32 = 30;

/// How many connections one run of the background refresh takes at most (the next run takes
/// the rest).
pub const REFRESH_BATCH: u64 = 500;

fn due(tokens: &StoredTokens, now: DateTime<Utc>, ahead: Duration) -> bool {
    tokens.access_expires_at.is_some_and(|at| at - ahead <= now)
}

fn expired(tokens: &StoredTokens, now: DateTime<Utc>) -> bool {
    tokens.access_expires_at.is_some_and(|at| at <= now)
}

/// What one run of the background refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenRefreshRun {
    /// Connections whose access token was due within the window and is fresh now (refreshed
    /// by this run, or by another process meanwhile).
    pub refreshed: u32,
    /// Connections the provider refused to refresh (`invalid_grant`): marked for
    /// re-authorization.
    pub needs_reauthorization: u32,
    /// Connections that could not be refreshed this time (the provider unreachable, rate
    /// limited, the lease held elsewhere past its length); the next run tries again.
    pub failed: u32,
}

impl IntegrationService {
    /// Credentials for a provider call on an OAuth connection: the access token as `api_key`.
    pub(in crate::integration) async fn oauth_credentials(
        &self,
        view: &ConnectionView,
    ) -> Result<Credentials, IntegrationError> {
        let access = self.access_token(view, Duration::seconds(REFRESH_AHEAD_SECS)).await?;
        Ok(Credentials { api_key: access, api_secret: None, account_id: None })
    }

    /// The background refresh: every OAuth connection whose access token expires within
    /// `window_secs` is refreshed now, under the same lease as a call's refresh, so that a
    /// connection nothing calls stays fresh. `invalid_grant` marks it for re-authorization.
    pub async fn refresh_expiring(&self, window_secs: u32) -> Result<TokenRefreshRun, IntegrationError> {
        let window = Duration::seconds(i64::from(window_secs));
        let before = self.ports.clock.now() + window;
        let mut run = TokenRefreshRun::default();
        for tokens in self.ports.oauth.repository.tokens_expiring_before(before, REFRESH_BATCH).await? {
            let view = self.ports.repository.find_connection(tokens.organization_id, tokens.connection_id).await?;
            let Some(view) = view.filter(|v| v.connection.status == ConnectionStatus::Connected) else { continue };
            match self.access_token(&view, window).await {
                // Fresh now, by this run or by another process meanwhile? A refresh that failed
                // while the stored token still works answers that token: counted as failed, and
                // tried again next run.
                Ok(_) => {
                    let now = self.ports.clock.now();
                    match self.ports.oauth.repository.tokens(view.connection.id).await? {
                        Some(stored) if !due(&stored, now, window) => run.refreshed += 1,
                        _ => run.failed += 1,
                    }
                }
                Err(IntegrationError::NeedsReauthorization(_)) => run.needs_reauthorization += 1,
                // Disconnected since the list was read.
                Err(IntegrationError::ConnectionNotFound) => {}
                Err(IntegrationError::Storage(err)) => return Err(err.into()),
                Err(_) => run.failed += 1,
            }
        }
        Ok(run)
    }

    fn open(&self, tokens: &StoredTokens, token: TokenKind) -> Result<SecretString, IntegrationError> {
        let sealed = match token {
            TokenKind::Access => &tokens.access,
            TokenKind::Refresh => tokens.refresh.as_ref().ok_or(IntegrationError::Undecryptable)?,
        };
        self.ports.cipher.decrypt(sealed, &tokens.owner(token)).map_err(|_| IntegrationError::Undecryptable)
    }

    fn lease(&self) -> Duration {
        Duration::seconds(i64::from(self.ports.oauth.refresh_lease_secs.max(1)))
    }

    /// The access token, refreshed first when it has less than `ahead` to live.
    async fn access_token(&self, view: &ConnectionView, ahead: Duration) -> Result<SecretString, IntegrationError> {
        let id = view.connection.id;
        let repository = &self.ports.oauth.repository;
        let tokens = repository.tokens(id).await?.ok_or(IntegrationError::ConnectionNotFound)?;
        let now = self.ports.clock.now();
        if !due(&tokens, now, ahead) {
            return self.open(&tokens, TokenKind::Access);
        }
        let holder = Uuid::now_v7();
        if !repository.lease_refresh(id, holder, now, now + self.lease()).await? {
            // Another process is refreshing: its predecessor still works until it expires.
            if !expired(&tokens, now) {
                return self.open(&tokens, TokenKind::Access);
            }
            let deadline = now + self.lease();
            match repository.wait_for_refresh(id, deadline).await? {
                Some(fresh) if !expired(&fresh, self.ports.clock.now()) => {
                    return self.open(&fresh, TokenKind::Access);
                }
                // The lease was given up or lapsed with nothing new stored: its holder failed,
                // or died between the provider's answer and the store. Refresh here, once.
                Some(_) => {
                    let now = self.ports.clock.now();
                    if !repository.lease_refresh(id, holder, now, now + self.lease()).await? {
                        return Err(IntegrationError::TokenRefreshFailed(HealthOutcome::Unreachable));
                    }
                }
                None => return Err(IntegrationError::TokenRefreshFailed(HealthOutcome::Unreachable)),
            }
        }
        // Refreshed by another process between the read and the lease?
        let tokens = match repository.tokens(id).await? {
            Some(tokens) => tokens,
            None => return Err(IntegrationError::ConnectionNotFound),
        };
        let now = self.ports.clock.now();
        if !due(&tokens, now, ahead) {
            repository.release_refresh(id, holder).await?;
            return self.open(&tokens, TokenKind::Access);
        }
        let outcome = self.refresh_leased(view, &tokens, holder, now).await;
        if outcome.is_err() {
            repository.release_refresh(id, holder).await?;
        }
        outcome
    }

    /// Refreshes with the lease held; stores the new pair before answering its access token.
    async fn refresh_leased(
        &self,
        view: &ConnectionView,
        tokens: &StoredTokens,
        holder: Uuid,
        now: DateTime<Utc>,
    ) -> Result<SecretString, IntegrationError> {
        let definition = self.definition(view.connection.provider.as_str())?;
        let Ok((spec, app)) = self.oauth_of(definition) else {
            return Err(IntegrationError::OAuthNotConfigured(definition.name.clone()));
        };
        let Some(_) = tokens.refresh else {
            // Nothing to refresh with: usable until it expires, then only a new authorization helps.
            if !expired(tokens, now) {
                self.ports.oauth.repository.release_refresh(view.connection.id, holder).await?;
                return self.open(tokens, TokenKind::Access);
            }
            self.needs_reauthorization(view, definition).await?;
            return Err(IntegrationError::NeedsReauthorization(definition.name.clone()));
        };
        let refresh = self.open(tokens, TokenKind::Refresh)?;
        match self.ports.oauth.client.refresh(spec, app, &refresh).await {
            Ok(grant) => {
                let mut fresh = StoredTokens {
                    access_expires_at: grant.expires_in_secs.map(|s| now + Duration::seconds(s.min(1 << 40) as i64)),
                    updated_at: now,
                    ..tokens.clone()
                };
                fresh.access = self.ports.cipher.encrypt(&grant.access_token, &fresh.owner(TokenKind::Access));
                if let Some(rotated) = &grant.refresh_token {
                    fresh.refresh = Some(self.ports.cipher.encrypt(rotated, &fresh.owner(TokenKind::Refresh)));
                }
                // Stored before it is used. If the lease lapsed meanwhile nothing is written:
                // this call still has a working token, and the next refresh sorts the rest out.
                self.ports.oauth.repository.store_refreshed(&fresh, holder).await?;
                Ok(grant.access_token)
            }
            Err(TokenError::InvalidGrant) => {
                self.needs_reauthorization(view, definition).await?;
                Err(IntegrationError::NeedsReauthorization(definition.name.clone()))
            }
            Err(other) if !expired(tokens, now) => {
                // Not worth failing the call for while the current token still works.
                let _ = other;
                self.ports.oauth.repository.release_refresh(view.connection.id, holder).await?;
                self.open(tokens, TokenKind::Access)
            }
            Err(TokenError::RateLimited) => Err(IntegrationError::TokenRefreshFailed(HealthOutcome::RateLimited)),
            Err(TokenError::InvalidClient(_) | TokenError::Unreachable(_)) => {
                Err(IntegrationError::TokenRefreshFailed(HealthOutcome::Unreachable))
            }
        }
    }

    /// Marks the connection, notifies its user and publishes the event, at once.
    async fn needs_reauthorization(
        &self,
        view: &ConnectionView,
        definition: &ProviderDefinition,
    ) -> Result<(), IntegrationError> {
        let now = self.ports.clock.now();
        let connection = &view.connection;
        let notification = Notification {
            id: Uuid::now_v7(),
            organization_id: connection.organization_id,
            user_id: connection.user_id,
            kind: NotificationKind::IntegrationNeedsReauthorization,
            title: format!("{} needs to be reconnected", definition.name),
            body: format!(
                "{} no longer accepts the access you granted (it was revoked or has expired). \
                 Connect it again from Connected Apps.",
                definition.name
            ),
            subject: format!("integration_connection:{}", connection.id),
            created_at: now,
            read_at: None,
        };
        let event = DomainEvent::new(
            connection.organization_id,
            AuditActor::System,
            now,
            Event::IntegrationNeedsReauthorization {
                connection_id: connection.id,
                provider: connection.provider.clone(),
            },
        );
        self.ports.oauth.repository.mark_needs_reauthorization(connection.id, &notification, &event).await?;
        Ok(())
    }

    /// Hands a grant that will not be stored back to the provider, when it offers revocation:
    /// its refresh token, then its access token. Best effort (the provider may be down).
    pub(in crate::integration) async fn revoke_grant(&self, definition: &ProviderDefinition, grant: &TokenGrant) {
        let Ok((spec, app)) = self.oauth_of(definition) else { return };
        if spec.revocation_url.is_none() {
            return;
        }
        for token in grant.refresh_token.iter().chain(std::iter::once(&grant.access_token)) {
            let _ = self.ports.oauth.client.revoke(spec, app, token).await;
        }
    }

    /// Revokes an OAuth connection's grant at the provider, when it offers revocation: the
    /// refresh token (which ends its access tokens too), else the access token. Best effort:
    /// true if the provider confirmed.
    pub(in crate::integration) async fn revoke_tokens(&self, view: &ConnectionView) -> bool {
        if view.connection.auth_method != AuthMethod::OAuth2 {
            return false;
        }
        let Ok(definition) = self.definition(view.connection.provider.as_str()) else { return false };
        let Ok((spec, app)) = self.oauth_of(definition) else { return false };
        if spec.revocation_url.is_none() {
            return false;
        }
        let Ok(Some(tokens)) = self.ports.oauth.repository.tokens(view.connection.id).await else { return false };
        let kind = if tokens.refresh.is_some() { TokenKind::Refresh } else { TokenKind::Access };
        let Ok(token) = self.open(&tokens, kind) else { return false };
        self.ports.oauth.client.revoke(spec, app, &token).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use secrecy::ExposeSecret;

    use super::super::super::testing::{Mocks, connected_view, oauth_apps, sealed_with};
    use super::super::{TokenGrant, TokenKind};
    use super::*;
    use crate::organization::OrganizationId;

    fn oauth_view() -> ConnectionView {
        let mut view = connected_view("xero");
        view.connection.auth_method = AuthMethod::OAuth2;
        view
    }

    fn tokens(expires_in: i64, refresh: Option<&str>) -> StoredTokens {
        let mut tokens = StoredTokens {
            connection_id: Uuid::from_u128(10),
            organization_id: OrganizationId(Uuid::from_u128(1)),
            access: crate::sealed::Ciphertext { key_version: 2, bytes: vec![] },
            refresh: None,
            access_expires_at: Some(Utc::now() + Duration::seconds(expires_in)),
            updated_at: Utc::now(),
        };
        tokens.access = sealed_with(&tokens.owner(TokenKind::Access), "at-old");
        tokens.refresh = refresh.map(|r| sealed_with(&tokens.owner(TokenKind::Refresh), r));
        tokens
    }

    fn mocks() -> Mocks {
        let mut mocks = Mocks::new();
        mocks.oauth_apps = oauth_apps("xero");
        mocks
    }

    #[tokio::test]
    async fn a_token_far_from_expiry_is_used_as_it_is() {
        let mut mocks = mocks();
        mocks.oauth_repository.expect_tokens().returning(|_| Ok(Some(tokens(1800, Some("rt")))));
        mocks.oauth_repository.expect_lease_refresh().never();
        mocks.oauth_client.expect_refresh().never();
        let creds = mocks.with_xero().oauth_credentials(&oauth_view()).await.unwrap();
        assert_eq!(creds.api_key.expose_secret(), "at-old");
    }

    #[tokio::test]
    async fn near_expiry_the_new_pair_is_stored_under_the_lease_before_the_token_is_used() {
        let mut mocks = mocks();
        mocks.oauth_repository.expect_tokens().returning(|_| Ok(Some(tokens(60, Some("rt-old")))));
        mocks.oauth_repository.expect_lease_refresh().times(1).returning(|_, _, _, _| Ok(true));
        mocks
            .oauth_client
            .expect_refresh()
            .withf(|_, _, refresh| refresh.expose_secret() == "rt-old")
            .times(1)
            .returning(|_, _, _| {
                Ok(TokenGrant {
                    access_token: "at-new".to_owned().into(),
                    refresh_token: Some("rt-new".to_owned().into()),
                    expires_in_secs: Some(1800),
                })
            });
        let stored = Arc::new(Mutex::new(None));
        let sink = stored.clone();
        mocks.oauth_repository.expect_store_refreshed().times(1).returning(move |fresh, _| {
            *sink.lock().unwrap() = Some(fresh.clone());
            Ok(true)
        });
        mocks.oauth_repository.expect_release_refresh().never();
        let creds = mocks.with_xero().oauth_credentials(&oauth_view()).await.unwrap();
        assert_eq!(creds.api_key.expose_secret(), "at-new");
        let fresh = stored.lock().unwrap().clone().unwrap();
        let rt = String::from_utf8_lossy(&fresh.refresh.unwrap().bytes).to_string();
        assert!(rt.ends_with(&"rt-new".chars().rev().collect::<String>()), "the rotated refresh token is kept");
    }

    #[tokio::test]
    async fn while_another_process_refreshes_the_still_valid_token_is_used() {
        let mut mocks = mocks();
        mocks.oauth_repository.expect_tokens().returning(|_| Ok(Some(tokens(60, Some("rt")))));
        mocks.oauth_repository.expect_lease_refresh().returning(|_, _, _, _| Ok(false));
        mocks.oauth_client.expect_refresh().never();
        let creds = mocks.with_xero().oauth_credentials(&oauth_view()).await.unwrap();
        assert_eq!(creds.api_key.expose_secret(), "at-old");
    }

    #[tokio::test]
    async fn invalid_grant_marks_the_connection_notifies_its_user_and_publishes_the_event() {
        let mut mocks = mocks();
        mocks.oauth_repository.expect_tokens().returning(|_| Ok(Some(tokens(-5, Some("rt")))));
        mocks.oauth_repository.expect_lease_refresh().returning(|_, _, _, _| Ok(true));
        mocks.oauth_client.expect_refresh().returning(|_, _, _| Err(TokenError::InvalidGrant));
        mocks
            .oauth_repository
            .expect_mark_needs_reauthorization()
            .withf(|connection, notification, event| {
                *connection == Uuid::from_u128(10)
                    && notification.user_id.0 == Uuid::from_u128(2)
                    && notification.kind == NotificationKind::IntegrationNeedsReauthorization
                    && matches!(event.event, Event::IntegrationNeedsReauthorization { .. })
            })
            .times(1)
            .returning(|_, _, _| Ok(true));
        mocks.oauth_repository.expect_release_refresh().returning(|_, _| Ok(()));
        let err = mocks.with_xero().oauth_credentials(&oauth_view()).await.unwrap_err();
        assert_eq!(err, IntegrationError::NeedsReauthorization("XERO".into()));
    }

    #[tokio::test]
    async fn an_unreachable_token_endpoint_keeps_a_token_that_still_works_and_fails_an_expired_one() {
        for (expires_in, works) in [(60, true), (-5, false)] {
            let mut mocks = mocks();
            mocks.oauth_repository.expect_tokens().returning(move |_| Ok(Some(tokens(expires_in, Some("rt")))));
            mocks.oauth_repository.expect_lease_refresh().returning(|_, _, _, _| Ok(true));
            mocks.oauth_client.expect_refresh().returning(|_, _, _| Err(TokenError::Unreachable("HTTP 503".into())));
            mocks.oauth_repository.expect_store_refreshed().never();
            mocks.oauth_repository.expect_release_refresh().times(1).returning(|_, _| Ok(()));
            let outcome = mocks.with_xero().oauth_credentials(&oauth_view()).await;
            if works {
                assert_eq!(outcome.unwrap().api_key.expose_secret(), "at-old");
            } else {
                assert_eq!(outcome.unwrap_err(), IntegrationError::TokenRefreshFailed(HealthOutcome::Unreachable));
            }
        }
    }

    #[tokio::test]
    async fn a_lease_that_lapsed_without_a_new_pair_is_taken_over_and_the_refresh_made_here() {
        // The holder died between the provider's answer and the store: the lease lapses, the
        // stored pair is the old, expired one.
        let mut mocks = mocks();
        mocks.oauth_repository.expect_tokens().returning(|_| Ok(Some(tokens(-5, Some("rt-old")))));
        let mut leases = mockall::Sequence::new();
        mocks
            .oauth_repository
            .expect_lease_refresh()
            .times(1)
            .in_sequence(&mut leases)
            .returning(|_, _, _, _| Ok(false));
        mocks
            .oauth_repository
            .expect_wait_for_refresh()
            .times(1)
            .returning(|_, _| Ok(Some(tokens(-5, Some("rt-old")))));
        mocks
            .oauth_repository
            .expect_lease_refresh()
            .times(1)
            .in_sequence(&mut leases)
            .returning(|_, _, _, _| Ok(true));
        mocks
            .oauth_client
            .expect_refresh()
            .withf(|_, _, refresh| refresh.expose_secret() == "rt-old")
            .times(1)
            .returning(|_, _, _| {
                Ok(TokenGrant {
                    access_token: "at-new".to_owned().into(),
                    refresh_token: Some("rt-new".to_owned().into()),
                    expires_in_secs: Some(1800),
                })
            });
        mocks.oauth_repository.expect_store_refreshed().times(1).returning(|_, _| Ok(true));
        let creds = mocks.with_xero().oauth_credentials(&oauth_view()).await.unwrap();
        assert_eq!(creds.api_key.expose_secret(), "at-new");
    }

    #[tokio::test]
    async fn the_background_refresh_takes_tokens_due_within_its_window_and_counts_what_happened() {
        let mut mocks = mocks();
        let listed = Arc::new(Mutex::new(None));
        let sink = listed.clone();
        // Eight minutes to live: outside a call's five-minute margin, inside the ten-minute window.
        mocks.oauth_repository.expect_tokens_expiring_before().times(1).returning(move |before, limit| {
            *sink.lock().unwrap() = Some((before, limit));
            Ok(vec![tokens(480, Some("rt-old"))])
        });
        mocks.repository.expect_find_connection().returning(|_, _| Ok(Some(oauth_view())));
        // The store as the repository keeps it: the refreshed pair replaces the old one.
        let current = Arc::new(Mutex::new(tokens(480, Some("rt-old"))));
        let read = current.clone();
        mocks.oauth_repository.expect_tokens().returning(move |_| Ok(Some(read.lock().unwrap().clone())));
        mocks.oauth_repository.expect_lease_refresh().times(1).returning(|_, _, _, _| Ok(true));
        mocks.oauth_client.expect_refresh().times(1).returning(|_, _, _| {
            Ok(TokenGrant {
                access_token: "at-new".to_owned().into(),
                refresh_token: Some("rt-new".to_owned().into()),
                expires_in_secs: Some(1800),
            })
        });
        mocks.oauth_repository.expect_store_refreshed().times(1).returning(move |fresh, _| {
            *current.lock().unwrap() = fresh.clone();
            Ok(true)
        });
        let run = mocks.with_xero().refresh_expiring(600).await.unwrap();
        assert_eq!(run, TokenRefreshRun { refreshed: 1, needs_reauthorization: 0, failed: 0 });
        let (before, limit) = listed.lock().unwrap().unwrap();
        let ahead = before - Utc::now();
        assert!(ahead > Duration::seconds(590) && ahead <= Duration::seconds(600), "{ahead}");
        assert_eq!(limit, REFRESH_BATCH);
    }

    #[tokio::test]
    async fn the_background_refresh_marks_a_refused_connection_and_goes_on() {
        let mut mocks = mocks();
        mocks.oauth_repository.expect_tokens_expiring_before().returning(|_, _| Ok(vec![tokens(120, Some("rt"))]));
        mocks.repository.expect_find_connection().returning(|_, _| Ok(Some(oauth_view())));
        mocks.oauth_repository.expect_tokens().returning(|_| Ok(Some(tokens(120, Some("rt")))));
        mocks.oauth_repository.expect_lease_refresh().returning(|_, _, _, _| Ok(true));
        mocks.oauth_client.expect_refresh().returning(|_, _, _| Err(TokenError::InvalidGrant));
        mocks.oauth_repository.expect_mark_needs_reauthorization().times(1).returning(|_, _, _| Ok(true));
        mocks.oauth_repository.expect_release_refresh().returning(|_, _| Ok(()));
        let run = mocks.with_xero().refresh_expiring(600).await.unwrap();
        assert_eq!(run, TokenRefreshRun { refreshed: 0, needs_reauthorization: 1, failed: 0 });
    }

    #[tokio::test]
    async fn the_background_refresh_counts_a_failed_refresh_of_a_working_token_as_failed() {
        let mut mocks = mocks();
        mocks.oauth_repository.expect_tokens_expiring_before().returning(|_, _| Ok(vec![tokens(480, Some("rt"))]));
        mocks.repository.expect_find_connection().returning(|_, _| Ok(Some(oauth_view())));
        mocks.oauth_repository.expect_tokens().returning(|_| Ok(Some(tokens(480, Some("rt")))));
        mocks.oauth_repository.expect_lease_refresh().returning(|_, _, _, _| Ok(true));
        mocks
            .oauth_client
            .expect_refresh()
            .times(1)
            .returning(|_, _, _| Err(TokenError::Unreachable("HTTP 503".into())));
        mocks.oauth_repository.expect_store_refreshed().never();
        mocks.oauth_repository.expect_release_refresh().times(1).returning(|_, _| Ok(()));
        let run = mocks.with_xero().refresh_expiring(600).await.unwrap();
        assert_eq!(run, TokenRefreshRun { refreshed: 0, needs_reauthorization: 0, failed: 1 });
    }
}
