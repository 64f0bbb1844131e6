//! Post-connection contacts (I11): the sender emails and phone numbers of an integration
//! instance, each with a label, one of each kind being the default.
//!
//! A value is listed once per instance and kind. The partial unique index on
//! `(instance_id, kind) WHERE is_default` makes two defaults of one kind impossible at the
//! database level, whatever the code above it does; the store keeps "at least one default while
//! any exist" itself. The schema builder cannot express a partial index, so it is raw SQL that
//! both SQLite and PostgreSQL accept.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const DEFAULT_INDEX: &str = "idx_integration_contacts_default";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IntegrationContacts::Table)
                    .col(pk_uuid(IntegrationContacts::Id))
                    // Copied from the instance, so that every query can be bound to the
                    // organization without a join.
                    .col(uuid(IntegrationContacts::OrganizationId))
                    .col(uuid(IntegrationContacts::InstanceId))
                    // 'sender_email' or 'phone_number'.
                    .col(text(IntegrationContacts::Kind))
                    .col(text(IntegrationContacts::Value))
                    .col(text(IntegrationContacts::Label))
                    .col(boolean(IntegrationContacts::IsDefault))
                    .col(timestamp_with_time_zone(IntegrationContacts::CreatedAt))
                    .col(timestamp_with_time_zone(IntegrationContacts::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integration_contacts_instance")
                            .from(IntegrationContacts::Table, IntegrationContacts::InstanceId)
                            .to(IntegrationInstances::Table, IntegrationInstances::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_integration_contacts_value")
                    .table(IntegrationContacts::Table)
                    .col(IntegrationContacts::InstanceId)
                    .col(IntegrationContacts::Kind)
                    .col(IntegrationContacts::Value)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE UNIQUE INDEX {DEFAULT_INDEX} ON integration_contacts (instance_id, kind) WHERE is_default"
            ))
            .await?;
        // An organization's contacts of one kind, for the organization-scoped reads.
        manager
            .create_index(
                Index::create()
                    .name("idx_integration_contacts_organization")
                    .table(IntegrationContacts::Table)
                    .col(IntegrationContacts::OrganizationId)
                    .col(IntegrationContacts::InstanceId)
                    .col(IntegrationContacts::Kind)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Dropping the table drops its indexes too.
        manager.drop_table(Table::drop().table(IntegrationContacts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum IntegrationInstances {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum IntegrationContacts {
    Table,
    Id,
    OrganizationId,
    InstanceId,
    Kind,
    Value,
    Label,
    IsDefault,
    CreatedAt,
    UpdatedAt,
}
