//! In-app notifications, the emails sent alongside them, and the expiry warnings (K13) that
//! produce both.
//!
//! Exactly once: every notification and every email carries a dedupe key (`api_key.expiring:
//! <key>:7d`, `...:7d:email:<user>`) that storage keeps unique. Two processes, or a job that runs
//! again after a crash, may both try; only the first insert wins and only its winner sends the
//! email. An email row is written *before* the send (then marked sent or undeliverable), so a
//! crash in between leaves an email at most once, never twice.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::StorageError;
use crate::api_key::ApiKey;
use crate::api_key::ApiKeyRepository;
use crate::auth::UserRepository;
use crate::caller::{Caller, Denied, Need};
use crate::event::{AuditActor, DomainEvent, Event};
use crate::organization::OrganizationId;
use crate::page::{Page, PageRequest};
use crate::ports::Clock;
use crate::user::{Role, UserId};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// `api_key.expiring`: a key the user created expires in 14, 7 or 1 days (K13).
    ApiKeyExpiring,
    /// `webhook_endpoint.disabled`: an endpoint the user created was disabled after failing
    /// deliveries (W3).
    WebhookEndpointDisabled,
    /// `integration.needs_reauthorization`: a connection the user made must be authorized
    /// again (I12).
    IntegrationNeedsReauthorization,
}

impl NotificationKind {
    /// Every kind.
    pub const ALL: [NotificationKind; 3] = [
        NotificationKind::ApiKeyExpiring,
        NotificationKind::WebhookEndpointDisabled,
        NotificationKind::IntegrationNeedsReauthorization,
    ];

    /// The name clients see: `api_key.expiring` or `webhook_endpoint.disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::ApiKeyExpiring => "api_key.expiring",
            NotificationKind::WebhookEndpointDisabled => "webhook_endpoint.disabled",
            NotificationKind::IntegrationNeedsReauthorization => "integration.needs_reauthorization",
        }
    }

    /// The kind named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// One in-app notification for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notification's id: a UUID v7, so ids sort by creation time.
    pub id: Uuid,
    /// The organization of the user it is for.
    pub organization_id: OrganizationId,
    /// The user whose inbox it is in.
    pub user_id: UserId,
    /// What it is about.
    pub kind: NotificationKind,
    /// A one-line headline, such as `API key "Zapier" expires in 7 days`.
    pub title: String,
    /// The text, in plain sentences.
    pub body: String,
    /// What it is about: `api_key:<id>`, `webhook_endpoint:<id>`.
    pub subject: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When the user marked it read; `None` while unread.
    pub read_at: Option<DateTime<Utc>>,
}

/// Where an email is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailStatus {
    /// Written, not yet handed to the provider.
    Pending,
    /// Handed to the provider, which accepted it.
    Sent,
    /// Could not be sent; the reason says why (no Postmark connected, no sender, refused).
    Undeliverable,
}

impl EmailStatus {
    /// The stored name: `pending`, `sent` or `undeliverable`.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailStatus::Pending => "pending",
            EmailStatus::Sent => "sent",
            EmailStatus::Undeliverable => "undeliverable",
        }
    }

    /// The status stored as `raw`, if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        [EmailStatus::Pending, EmailStatus::Sent, EmailStatus::Undeliverable].into_iter().find(|s| s.as_str() == raw)
    }
}

/// An email to a user, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRecord {
    /// The email's id.
    pub id: Uuid,
    /// The organization it was sent for.
    pub organization_id: OrganizationId,
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
    /// Whether it was sent.
    pub status: EmailStatus,
    /// The provider's message id when sent; the reason when undeliverable.
    pub detail: String,
    /// When it was written, before the send.
    pub created_at: DateTime<Utc>,
}

/// Stores notifications and the record of emails, each at most once per dedupe key. Every
/// method fails only with [`StorageError`].
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait NotificationRepository: Send + Sync {
    /// Stores it unless a notification with this dedupe key exists, with `event` in the same
    /// transaction; true if stored (false: neither the notification nor the event was stored).
    async fn insert<'a>(
        &self,
        notification: &Notification,
        dedupe_key: &str,
        event: Option<&'a DomainEvent>,
    ) -> Result<bool, StorageError>;

    /// The user's notifications, newest first; the cursor is the last entry's id.
    async fn list(
        &self,
        organization: OrganizationId,
        user: UserId,
        unread_only: bool,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<Notification, Uuid>, StorageError>;

    /// Marks it read (once: a second call keeps the first time). `None` if the user has no
    /// such notification.
    async fn mark_read(
        &self,
        organization: OrganizationId,
        user: UserId,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<Notification>, StorageError>;

    /// Stores a pending email unless one with this dedupe key exists; true if stored (the
    /// caller then sends it).
    async fn insert_email(&self, email: &EmailRecord, dedupe_key: &str) -> Result<bool, StorageError>;

    /// Records what became of a pending email.
    async fn finish_email(&self, id: Uuid, status: EmailStatus, detail: &str) -> Result<(), StorageError>;

    /// The organization's emails, newest first.
    async fn emails(&self, organization: OrganizationId, limit: u32) -> Result<Vec<EmailRecord>, StorageError>;
}

/// Why a mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The organization has no way to send mail (no Postmark connected, no sender).
    #[error("{0}")]
    NotConfigured(String),
    /// The provider refused or could not be reached.
    #[error("{0}")]
    Failed(String),
}

/// Sends an organization's email (through its connected Postmark and default sender).
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends a plain-text email; the provider's message id on success.
    async fn send(
        &self,
        organization: OrganizationId,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<String, MailError>;
}

/// Why notifications could not be listed or marked read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// The caller is a key: only users have an inbox.
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Listing and reading notifications.
#[derive(Clone)]
pub struct NotificationService {
    repository: Arc<dyn NotificationRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for NotificationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotificationService")
    }
}

impl NotificationService {
    /// A service over `repository`, with `clock` dating reads.
    pub fn new(repository: Arc<dyn NotificationRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { repository, clock }
    }

    /// The caller's own notifications (users only: keys have no inbox).
    pub async fn list(
        &self,
        caller: &Caller,
        unread_only: bool,
        page: &PageRequest<Uuid>,
    ) -> Result<Page<Notification, Uuid>, NotificationError> {
        caller.require(Need::AnyUser)?;
        Ok(self.repository.list(caller.organization_id(), caller.on_behalf_of(), unread_only, page).await?)
    }

    /// `None` if the caller has no such notification (another user's is not theirs to read).
    pub async fn mark_read(&self, caller: &Caller, id: Uuid) -> Result<Option<Notification>, NotificationError> {
        caller.require(Need::AnyUser)?;
        Ok(self.repository.mark_read(caller.organization_id(), caller.on_behalf_of(), id, self.clock.now()).await?)
    }
}

/// The warning thresholds (K13): days before expiry, and whether admins get an email too.
pub const EXPIRY_THRESHOLDS: [(i64, bool); 3] = [(14, false), (7, true), (1, true)];

/// What one expiry-warning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryWarningRun {
    /// Notifications stored for the first time in this pass.
    pub notifications: u32,
    /// Emails the provider accepted.
    pub emails_sent: u32,
    /// Emails that could not be sent (no Postmark, no sender, refused).
    pub emails_undeliverable: u32,
}

/// A key crossing a threshold (its `api_key.expiring` event was recorded with the notice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryWarning {
    /// The key, as read for the pass.
    pub key: ApiKey,
    /// The threshold crossed, in days: 14, 7 or 1.
    pub days: i64,
}

/// The ports the expiry warnings need.
#[derive(Clone)]
pub struct ExpiryWarningPorts {
    /// Finds the keys expiring soon.
    pub keys: Arc<dyn ApiKeyRepository>,
    /// Lists the organization's admins, for the emails.
    pub users: Arc<dyn UserRepository>,
    /// Stores the notices, their events and the emails' record, once each.
    pub notifications: Arc<dyn NotificationRepository>,
    /// Sends the emails through the organization's Postmark.
    pub mailer: Arc<dyn Mailer>,
    /// The time the windows are measured from.
    pub clock: Arc<dyn Clock>,
}

/// K13: 14 days before a key expires, an in-app notification to its creator; 7 days and 1 day
/// before, that plus an email to each of the organization's admins. Each exactly once.
#[derive(Clone)]
pub struct ExpiryWarnings {
    ports: ExpiryWarningPorts,
}

impl std::fmt::Debug for ExpiryWarnings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExpiryWarnings")
    }
}

impl ExpiryWarnings {
    /// The warnings over `ports`.
    pub fn new(ports: ExpiryWarningPorts) -> Self {
        Self { ports }
    }

    /// The smallest threshold a key is within, if any: a key 5 days from expiry is in the
    /// 7-day window; one found at 5 days that never got its 14-day warning gets only the 7-day
    /// one (the most relevant), not a burst of stale ones.
    pub fn threshold(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<(i64, bool)> {
        let left = expires_at - now;
        if left <= Duration::zero() {
            return None;
        }
        EXPIRY_THRESHOLDS.iter().rev().copied().find(|(days, _)| left <= Duration::days(*days))
    }

    /// One pass over every key expiring within 14 days. Returns what it did and the warnings
    /// it issued for the first time.
    pub async fn run(&self) -> Result<(ExpiryWarningRun, Vec<ExpiryWarning>), StorageError> {
        let now = self.ports.clock.now();
        let horizon = now + Duration::days(EXPIRY_THRESHOLDS[0].0);
        let mut run = ExpiryWarningRun::default();
        let mut issued = Vec::new();
        for key in self.ports.keys.expiring_between(now, horizon).await? {
            if key.revoked_at.is_some_and(|at| at <= now) {
                continue;
            }
            let Some(expires_at) = key.expires_at else { continue };
            let Some((days, email)) = Self::threshold(expires_at, now) else { continue };
            let dedupe = format!("api_key.expiring:{}:{days}d", key.id.0);
            let title = format!("API key \"{}\" expires in {}", key.name.as_str(), plural_days(days));
            let body = format!(
                "The {} API key \"{}\" (ending in {}) expires on {}. Rotate it before then so the programs using \
                 it keep working.",
                key.environment.as_str(),
                key.name.as_str(),
                key.last4,
                expires_at.format("%Y-%m-%d %H:%M UTC"),
            );
            let notification = Notification {
                id: Uuid::now_v7(),
                organization_id: key.organization_id,
                user_id: key.created_by,
                kind: NotificationKind::ApiKeyExpiring,
                title: title.clone(),
                body: body.clone(),
                subject: format!("api_key:{}", key.id.0),
                created_at: now,
                read_at: None,
            };
            // The webhook event goes with the creator's notice: once per key and window.
            let event = DomainEvent::new(
                key.organization_id,
                AuditActor::System,
                now,
                Event::ApiKeyExpiring { key: key.clone(), days_left: days },
            );
            if !self.ports.notifications.insert(&notification, &dedupe, Some(&event)).await? {
                continue;
            }
            run.notifications += 1;
            if email {
                let admins = self.ports.users.list(key.organization_id).await?;
                for admin in admins.iter().filter(|u| u.role == Role::Admin && u.is_active()) {
                    let record = EmailRecord {
                        id: Uuid::now_v7(),
                        organization_id: key.organization_id,
                        to: admin.email.as_str().to_owned(),
                        subject: title.clone(),
                        body: body.clone(),
                        status: EmailStatus::Pending,
                        detail: String::new(),
                        created_at: now,
                    };
                    let email_dedupe = format!("{dedupe}:email:{}", admin.id.0);
                    if !self.ports.notifications.insert_email(&record, &email_dedupe).await? {
                        continue;
                    }
                    let sent =
                        self.ports.mailer.send(key.organization_id, &record.to, &record.subject, &record.body).await;
                    let (status, detail) = match sent {
                        Ok(message_id) => {
                            run.emails_sent += 1;
                            (EmailStatus::Sent, message_id)
                        }
                        Err(err) => {
                            run.emails_undeliverable += 1;
                            (EmailStatus::Undeliverable, err.to_string())
                        }
                    };
                    self.ports.notifications.finish_email(record.id, status, &detail).await?;
                }
            }
            issued.push(ExpiryWarning { key, days });
        }
        Ok((run, issued))
    }
}

fn plural_days(days: i64) -> String {
    if days == 1 { "1 day".to_owned() } else { format!("{days} days") }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::TimeZone;

    use super::*;
    use crate::api_key::fixtures::key_expiring;
    use crate::ports::{MockApiKeyRepository, MockClock, MockUserRepository};
    use crate::user::{Email, User};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    #[test]
    fn the_smallest_window_a_key_is_in_wins() {
        let at = |hours: i64| now() + Duration::hours(hours);
        assert_eq!(ExpiryWarnings::threshold(at(15 * 24), now()), None);
        assert_eq!(ExpiryWarnings::threshold(at(14 * 24), now()), Some((14, false)));
        assert_eq!(ExpiryWarnings::threshold(at(8 * 24), now()), Some((14, false)));
        assert_eq!(ExpiryWarnings::threshold(at(7 * 24), now()), Some((7, true)));
        assert_eq!(ExpiryWarnings::threshold(at(30), now()), Some((7, true)));
        assert_eq!(ExpiryWarnings::threshold(at(24), now()), Some((1, true)));
        assert_eq!(ExpiryWarnings::threshold(at(1), now()), Some((1, true)));
        assert_eq!(ExpiryWarnings::threshold(at(0), now()), None, "expired keys get no warning");
    }

    fn admin(org: OrganizationId, email: &str) -> User {
        User {
            id: UserId(Uuid::now_v7()),
            organization_id: org,
            email: Email::parse(email).unwrap(),
            name: None,
            role: Role::Admin,
            status: crate::user::UserStatus::Active,
            created_at: now(),
        }
    }

    #[derive(Clone)]
    struct Recorded {
        notifications: Vec<String>,
        emails: Vec<(String, String)>,
        finished: Vec<(EmailStatus, String)>,
    }

    async fn run_with(keys: Vec<ApiKey>, mail: Result<String, MailError>) -> (ExpiryWarningRun, Recorded) {
        let org = keys[0].organization_id;
        let mut repo = MockApiKeyRepository::new();
        repo.expect_expiring_between()
            .withf(|from, to| *from == now() && *to == now() + Duration::days(14))
            .returning(move |_, _| Ok(keys.clone()));
        let mut users = MockUserRepository::new();
        let mut viewer = admin(org, "viewer@acme.test");
        viewer.role = Role::Viewer;
        let people = vec![admin(org, "a@acme.test"), viewer, admin(org, "b@acme.test")];
        users.expect_list().returning(move |_| Ok(people.clone()));
        let recorded = Arc::new(Mutex::new(Recorded { notifications: vec![], emails: vec![], finished: vec![] }));
        let mut notifications = MockNotificationRepository::new();
        let log = recorded.clone();
        notifications.expect_insert().returning(move |notification, dedupe, event| {
            // Each notice carries the key's expiring event, with the days left.
            let event = event.expect("an expiry notice carries its webhook event");
            match &event.event {
                Event::ApiKeyExpiring { key, days_left } => {
                    assert_eq!(format!("api_key:{}", key.id.0), notification.subject);
                    assert!(dedupe.ends_with(&format!(":{days_left}d")), "{dedupe}");
                }
                other => panic!("unexpected event {other:?}"),
            }
            assert_eq!(event.actor, AuditActor::System);
            let mut log = log.lock().unwrap();
            let new = !log.notifications.contains(&dedupe.to_owned());
            log.notifications.push(dedupe.to_owned());
            Ok(new)
        });
        let log = recorded.clone();
        notifications.expect_insert_email().returning(move |email, dedupe| {
            log.lock().unwrap().emails.push((email.to.clone(), dedupe.to_owned()));
            Ok(true)
        });
        let log = recorded.clone();
        notifications.expect_finish_email().returning(move |_, status, detail| {
            log.lock().unwrap().finished.push((status, detail.to_owned()));
            Ok(())
        });
        let mut mailer = MockMailer::new();
        mailer.expect_send().returning(move |_, _, _, _| mail.clone());
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        let warnings = ExpiryWarnings::new(ExpiryWarningPorts {
            keys: Arc::new(repo),
            users: Arc::new(users),
            notifications: Arc::new(notifications),
            mailer: Arc::new(mailer),
            clock: Arc::new(clock),
        });
        let (run, _) = warnings.run().await.unwrap();
        let recorded = recorded.lock().unwrap().clone();
        (run, recorded)
    }

    #[tokio::test]
    async fn fourteen_days_notifies_the_creator_only() {
        let key = key_expiring(now() + Duration::days(10));
        let (run, recorded) = run_with(vec![key.clone()], Ok("msg-1".into())).await;
        assert_eq!(run, ExpiryWarningRun { notifications: 1, emails_sent: 0, emails_undeliverable: 0 });
        assert_eq!(recorded.notifications, [format!("api_key.expiring:{}:14d", key.id.0)]);
        assert!(recorded.emails.is_empty());
    }

    #[tokio::test]
    async fn seven_and_one_days_also_email_every_admin_once() {
        let key = key_expiring(now() + Duration::hours(30));
        let (run, recorded) = run_with(vec![key.clone()], Ok("msg-1".into())).await;
        assert_eq!(run, ExpiryWarningRun { notifications: 1, emails_sent: 2, emails_undeliverable: 0 });
        let to: Vec<_> = recorded.emails.iter().map(|(to, _)| to.as_str()).collect();
        assert_eq!(to, ["a@acme.test", "b@acme.test"], "admins only");
        assert!(recorded.emails[0].1.starts_with(&format!("api_key.expiring:{}:7d:email:", key.id.0)));
        assert_eq!(recorded.finished, [(EmailStatus::Sent, "msg-1".into()), (EmailStatus::Sent, "msg-1".into())]);
    }

    #[tokio::test]
    async fn without_postmark_the_email_is_recorded_undeliverable_with_the_reason() {
        let key = key_expiring(now() + Duration::hours(20));
        let reason = "Postmark is not connected".to_owned();
        let (run, recorded) = run_with(vec![key], Err(MailError::NotConfigured(reason.clone()))).await;
        assert_eq!(run.emails_undeliverable, 2);
        assert_eq!(recorded.finished[0], (EmailStatus::Undeliverable, reason));
    }

    #[tokio::test]
    async fn a_warning_already_given_is_not_given_again() {
        let key = key_expiring(now() + Duration::days(3));
        let (run, recorded) = run_with(vec![key.clone(), key], Ok("m".into())).await;
        assert_eq!(run.notifications, 1, "the second insert of the same dedupe key is refused");
        assert_eq!(recorded.emails.len(), 2, "and sends nothing");
    }
}
