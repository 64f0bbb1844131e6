//! Durable background jobs (O5). `dedupe_key` is unique (several NULLs allowed): recurring work
//! enqueued by several processes for one period gets one row.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(pk_uuid(Jobs::Id))
                    .col(text(Jobs::Kind))
                    .col(text(Jobs::Payload))
                    // 'queued', 'running', 'succeeded' or 'failed'.
                    .col(text(Jobs::State))
                    .col(integer(Jobs::Attempts))
                    .col(integer(Jobs::MaxAttempts))
                    .col(timestamp_with_time_zone(Jobs::RunAt))
                    .col(text_null(Jobs::LockedBy))
                    .col(timestamp_with_time_zone_null(Jobs::LockedUntil))
                    .col(text_null(Jobs::LastError))
                    .col(text_null(Jobs::DedupeKey))
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_jobs_dedupe").table(Jobs::Table).col(Jobs::DedupeKey).unique().to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_jobs_due").table(Jobs::Table).col(Jobs::State).col(Jobs::RunAt).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Jobs::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    Payload,
    State,
    Attempts,
    MaxAttempts,
    RunAt,
    LockedBy,
    LockedUntil,
    LastError,
    DedupeKey,
    CreatedAt,
    UpdatedAt,
}
