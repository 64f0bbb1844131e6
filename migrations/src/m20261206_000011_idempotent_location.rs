//! Where a stored idempotent answer points (its `Location` header): an answer that carried a
//! secret shown once is not kept; a retry gets a 409 pointing at what the first request made.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyRecords::Table)
                    .add_column(text_null(IdempotencyRecords::Location))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(IdempotencyRecords::Table).drop_column(IdempotencyRecords::Location).to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum IdempotencyRecords {
    Table,
    Location,
}
