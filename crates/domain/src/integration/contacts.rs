//! Postmark's sender emails and Quo's phone numbers (I11): add, edit, delete, set the default,
//! each change recorded with the resource's new value.

use uuid::Uuid;

use super::service::{EDIT, IntegrationError, IntegrationService, VIEW};
use super::{ConnectionView, ContactError, ContactKind, ContactResource, ContactStoreError, parse_label};
use crate::caller::Caller;

impl IntegrationService {
    /// The connection's instance, if its provider offers `kind` (I11).
    async fn contact_instance(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: ContactKind,
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
        kind: ContactKind,
    ) -> Result<Vec<ContactResource>, IntegrationError> {
        caller.require(VIEW)?;
        let view = self.contact_instance(caller, connection, kind).await?;
        Ok(self.ports.contacts.list(caller.organization_id(), view.instance.id, kind).await?)
    }

    /// Adds one; the first of its kind becomes the default.
    pub async fn add_contact(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: ContactKind,
        value: &str,
        label: Option<&str>,
    ) -> Result<ContactResource, IntegrationError> {
        caller.require(EDIT)?;
        let value = kind.parse_value(value)?;
        let label = parse_label(label)?;
        let view = self.contact_instance(caller, connection, kind).await?;
        let now = self.ports.clock.now();
        let resource = ContactResource {
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
        let event = self.updated(caller, &view, &format!("{}.added", kind.as_str()), resource.value.clone());
        self.ports.contacts.insert(&resource, &event).await.map_err(contact_store_error)
    }

    /// Changes a contact's value or label; the change is recorded with the value it has after.
    pub async fn update_contact(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: ContactKind,
        id: Uuid,
        value: Option<&str>,
        label: Option<&str>,
    ) -> Result<ContactResource, IntegrationError> {
        caller.require(EDIT)?;
        let value = value.map(|v| kind.parse_value(v)).transpose()?;
        let label = label.map(|l| parse_label(Some(l))).transpose()?;
        let (view, existing) = self.owned_contact(caller, connection, kind, id).await?;
        let recorded = value.clone().unwrap_or(existing.value);
        let event = self.updated(caller, &view, &format!("{}.updated", kind.as_str()), recorded);
        self.ports
            .contacts
            .update(caller.organization_id(), id, value, label, self.ports.clock.now(), &event)
            .await
            .map_err(contact_store_error)?
            .ok_or(IntegrationError::ResourceNotFound)
    }

    /// Deletes a contact; when it was the default, the oldest remaining one becomes the default.
    pub async fn delete_contact(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: ContactKind,
        id: Uuid,
    ) -> Result<(), IntegrationError> {
        caller.require(EDIT)?;
        let (view, _) = self.owned_contact(caller, connection, kind, id).await?;
        let event = self.updated(caller, &view, &format!("{}.deleted", kind.as_str()), id.to_string());
        if self.ports.contacts.delete(caller.organization_id(), id, &event).await? {
            Ok(())
        } else {
            Err(IntegrationError::ResourceNotFound)
        }
    }

    /// Makes it the one default of its kind.
    pub async fn set_default_contact(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: ContactKind,
        id: Uuid,
    ) -> Result<ContactResource, IntegrationError> {
        caller.require(EDIT)?;
        let (view, existing) = self.owned_contact(caller, connection, kind, id).await?;
        let event = self.updated(caller, &view, &format!("{}.default", kind.as_str()), existing.value);
        self.ports
            .contacts
            .set_default(caller.organization_id(), id, self.ports.clock.now(), &event)
            .await?
            .ok_or(IntegrationError::ResourceNotFound)
    }

    /// The resource must belong to this connection's instance and be of this kind: the
    /// connection, and the resource as it is.
    async fn owned_contact(
        &self,
        caller: &Caller,
        connection: Uuid,
        kind: ContactKind,
        id: Uuid,
    ) -> Result<(ConnectionView, ContactResource), IntegrationError> {
        let view = self.contact_instance(caller, connection, kind).await?;
        let listed = self.ports.contacts.list(caller.organization_id(), view.instance.id, kind).await?;
        let existing = listed.into_iter().find(|c| c.id == id).ok_or(IntegrationError::ResourceNotFound)?;
        Ok((view, existing))
    }
}

fn contact_store_error(err: ContactStoreError) -> IntegrationError {
    match err {
        ContactStoreError::Duplicate => IntegrationError::Contact(ContactError::Duplicate),
        ContactStoreError::Storage(err) => IntegrationError::Storage(err),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Mocks, actor, connected_view};
    use super::*;
    use crate::event::Event;
    use crate::user::{Permission, Role};

    #[tokio::test]
    async fn contacts_are_validated_and_kept_to_providers_that_offer_them() {
        let mut mocks = Mocks::new();
        mocks.repository.expect_find_connection().returning(|_, _| Ok(Some(connected_view("postmark"))));
        mocks.contacts.expect_insert().never();
        mocks.contacts.expect_list().returning(|_, _, _| Ok(vec![]));
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

    fn is_update(event: &crate::event::DomainEvent, expected_change: &str, expected_value: &str) -> bool {
        matches!(&event.event,
            Event::IntegrationUpdated { change, value, provider, .. }
                if change == expected_change && value == expected_value && provider.as_str() == "postmark")
    }

    #[tokio::test]
    async fn a_valid_sender_reaches_storage_normalised_with_its_event() {
        let mut mocks = Mocks::new();
        mocks.repository.expect_find_connection().returning(|_, _| Ok(Some(connected_view("postmark"))));
        mocks
            .contacts
            .expect_insert()
            .withf(|r, event| {
                r.value == "billing@acme.test"
                    && r.label == "Billing"
                    && r.instance_id == Uuid::from_u128(20)
                    && is_update(event, "sender_email.added", "billing@acme.test")
            })
            .times(1)
            .returning(|r, _| Ok(ContactResource { is_default: true, ..r.clone() }));
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
    async fn edits_record_the_value_the_resource_ends_with() {
        let existing = ContactResource {
            id: Uuid::from_u128(7),
            organization_id: crate::organization::OrganizationId(Uuid::from_u128(1)),
            instance_id: Uuid::from_u128(20),
            kind: ContactKind::SenderEmail,
            value: "billing@acme.test".into(),
            label: "Billing".into(),
            is_default: false,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        let mut mocks = Mocks::new();
        mocks.repository.expect_find_connection().returning(|_, _| Ok(Some(connected_view("postmark"))));
        let listed = existing.clone();
        mocks.contacts.expect_list().returning(move |_, _, _| Ok(vec![listed.clone()]));
        let updated = existing.clone();
        // Only the label changes: the event names the value it keeps.
        mocks
            .contacts
            .expect_update()
            .withf(|_, _, value, label, _, event| {
                value.is_none()
                    && label.as_deref() == Some("Invoices")
                    && is_update(event, "sender_email.updated", "billing@acme.test")
            })
            .times(1)
            .returning(move |_, _, _, _, _, _| Ok(Some(updated.clone())));
        let chosen = existing.clone();
        mocks
            .contacts
            .expect_set_default()
            .withf(|_, _, _, event| is_update(event, "sender_email.default", "billing@acme.test"))
            .times(1)
            .returning(move |_, _, _, _| Ok(Some(ContactResource { is_default: true, ..chosen.clone() })));
        mocks
            .contacts
            .expect_delete()
            .withf(|_, _, event| is_update(event, "sender_email.deleted", &Uuid::from_u128(7).to_string()))
            .times(1)
            .returning(|_, _, _| Ok(true));
        let svc = mocks.service();
        let admin = actor(Role::Admin);
        let (conn, id) = (Uuid::from_u128(10), Uuid::from_u128(7));
        svc.update_contact(&admin, conn, ContactKind::SenderEmail, id, None, Some("Invoices")).await.unwrap();
        assert!(svc.set_default_contact(&admin, conn, ContactKind::SenderEmail, id).await.unwrap().is_default);
        svc.delete_contact(&admin, conn, ContactKind::SenderEmail, id).await.unwrap();
    }
}
