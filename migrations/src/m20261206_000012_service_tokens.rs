//! Platform service tokens (S1): the credential of the platform's own services that check
//! organizations' keys. They belong to no organization; only their SHA-256 is stored.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ServiceTokens::Table)
                    .col(pk_uuid(ServiceTokens::Id))
                    .col(text(ServiceTokens::Name))
                    .col(binary_len_uniq(ServiceTokens::TokenHash, 32))
                    .col(text(ServiceTokens::LastFour))
                    .col(timestamp_with_time_zone(ServiceTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(ServiceTokens::RevokedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ServiceTokens::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ServiceTokens {
    Table,
    Id,
    Name,
    TokenHash,
    LastFour,
    CreatedAt,
    RevokedAt,
}
