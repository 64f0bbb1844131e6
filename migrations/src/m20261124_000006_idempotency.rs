//! Idempotency records (W1): one per (caller scope, key), the first answer sealed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyRecords::Table)
                    .col(pk_uuid(IdempotencyRecords::Id))
                    // `key:<api key id>` or `user:<user id>`.
                    .col(text(IdempotencyRecords::Scope))
                    .col(text(IdempotencyRecords::IdempotencyKey))
                    .col(blob(IdempotencyRecords::Fingerprint))
                    // Null while the first request runs.
                    .col(integer_null(IdempotencyRecords::Status))
                    .col(text_null(IdempotencyRecords::ContentType))
                    .col(integer_null(IdempotencyRecords::KeyVersion))
                    .col(blob_null(IdempotencyRecords::Body))
                    .col(timestamp_with_time_zone(IdempotencyRecords::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_records_key")
                    .table(IdempotencyRecords::Table)
                    .col(IdempotencyRecords::Scope)
                    .col(IdempotencyRecords::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_records_created")
                    .table(IdempotencyRecords::Table)
                    .col(IdempotencyRecords::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(IdempotencyRecords::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum IdempotencyRecords {
    Table,
    Id,
    Scope,
    IdempotencyKey,
    Fingerprint,
    Status,
    ContentType,
    KeyVersion,
    Body,
    CreatedAt,
}
