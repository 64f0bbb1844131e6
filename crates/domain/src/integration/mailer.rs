//! Sends an organization's email through its connected Postmark, from its default sender: the
//! [`Mailer`] of K13's emails.

use super::service::IntegrationService;
use super::{ConnectionStatus, ContactKind, OutgoingMessage, ProviderSlug};
use crate::StorageError;
use crate::notification::{MailError, Mailer};
use crate::organization::OrganizationId;

/// The [`Mailer`] over the organization's Postmark connection: sends from its default sender
/// email, and says [`MailError::NotConfigured`] when there is no connected Postmark or no
/// default sender.
#[derive(Clone, Debug)]
pub struct PostmarkMailer {
    service: IntegrationService,
}

impl PostmarkMailer {
    /// A mailer that reaches Postmark through `service`'s ports.
    pub fn new(service: IntegrationService) -> Self {
        Self { service }
    }
}

#[async_trait::async_trait]
impl Mailer for PostmarkMailer {
    async fn send(
        &self,
        organization: OrganizationId,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<String, MailError> {
        let ports = &self.service.ports;
        let storage = |err: StorageError| MailError::Failed(format!("storage failure: {err}"));
        let postmark = ProviderSlug::parse("postmark").expect("a valid slug");
        let connections = ports.repository.list_connections(organization).await.map_err(storage)?;
        let Some(view) = connections
            .into_iter()
            .find(|v| v.connection.provider == postmark && v.connection.status == ConnectionStatus::Connected)
        else {
            return Err(MailError::NotConfigured("Postmark is not connected".into()));
        };
        let senders =
            ports.contacts.list(organization, view.instance.id, ContactKind::SenderEmail).await.map_err(storage)?;
        let Some(sender) = senders.into_iter().find(|s| s.is_default) else {
            return Err(MailError::NotConfigured("Postmark has no default sender email".into()));
        };
        let credentials = self
            .service
            .credentials_of(&view)
            .await
            .map_err(|_| MailError::NotConfigured("Postmark's credentials could not be read".into()))?;
        let message = OutgoingMessage {
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

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use secrecy::ExposeSecret;
    use uuid::Uuid;

    use super::super::testing::{Mocks, connected_view, preconfigured};
    use super::super::{
        AuthMethod, ConnectionView, ContactResource, MockContactRepository, MockIntegrationRepository,
        MockProviderClient,
    };
    use super::*;

    fn org() -> OrganizationId {
        OrganizationId(Uuid::from_u128(1))
    }

    fn mailer(
        repository: MockIntegrationRepository,
        contacts: MockContactRepository,
        client: MockProviderClient,
    ) -> PostmarkMailer {
        let mocks = Mocks {
            repository,
            client,
            preconfigured: preconfigured("postmark", "pm-token"),
            contacts,
            ..Mocks::new()
        };
        PostmarkMailer::new(mocks.with_postmark())
    }

    fn postmark_connection() -> ConnectionView {
        let mut view = connected_view("postmark");
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
