//! In-app notifications and the emails sent with them (K13). Both carry a unique dedupe key:
//! that index is what makes each warning happen once, across restarts and processes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(pk_uuid(Notifications::Id))
                    .col(uuid(Notifications::OrganizationId))
                    .col(uuid(Notifications::UserId))
                    .col(text(Notifications::Kind))
                    .col(text(Notifications::Title))
                    .col(text(Notifications::Body))
                    .col(text(Notifications::Subject))
                    .col(text(Notifications::DedupeKey))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notifications::ReadAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_dedupe")
                    .table(Notifications::Table)
                    .col(Notifications::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_user")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Emails::Table)
                    .col(pk_uuid(Emails::Id))
                    .col(uuid(Emails::OrganizationId))
                    .col(text(Emails::Recipient))
                    .col(text(Emails::Subject))
                    .col(text(Emails::Body))
                    // 'pending', 'sent' or 'undeliverable'.
                    .col(text(Emails::Status))
                    // The provider's message id, or why it could not be sent.
                    .col(text(Emails::Detail))
                    .col(text(Emails::DedupeKey))
                    .col(timestamp_with_time_zone(Emails::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_emails_dedupe")
                    .table(Emails::Table)
                    .col(Emails::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_emails_organization")
                    .table(Emails::Table)
                    .col(Emails::OrganizationId)
                    .col(Emails::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Emails::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Notifications::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    OrganizationId,
    UserId,
    Kind,
    Title,
    Body,
    Subject,
    DedupeKey,
    CreatedAt,
    ReadAt,
}

#[derive(DeriveIden)]
enum Emails {
    Table,
    Id,
    OrganizationId,
    Recipient,
    Subject,
    Body,
    Status,
    Detail,
    DedupeKey,
    CreatedAt,
}
