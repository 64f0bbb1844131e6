//! The user lifecycle (P8): a user's status, display name and deletion tombstone; where a
//! session was opened from; one-time password reset tokens (stored as SHA-256 only).
//!
//! A deleted user stays as a row, so that the keys, audit entries and connections that name
//! them keep naming them (and their foreign keys hold): `deleted_at` is set, the address moves
//! to `former_email` and `email` holds a placeholder, which frees the address for a new user
//! without touching the unique constraint SQLite cannot drop.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Status,
    Name,
    FormerEmail,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    UserAgent,
    IpAddress,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum PasswordResets {
    Table,
    Id,
    OrganizationId,
    UserId,
    TokenHash,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        let columns = [
            (Users::Table.into_iden(), string(Users::Status).default("active").to_owned()),
            (Users::Table.into_iden(), text_null(Users::Name).to_owned()),
            (Users::Table.into_iden(), text_null(Users::FormerEmail).to_owned()),
            (Users::Table.into_iden(), timestamp_with_time_zone_null(Users::DeletedAt).to_owned()),
            (Sessions::Table.into_iden(), text_null(Sessions::UserAgent).to_owned()),
            (Sessions::Table.into_iden(), text_null(Sessions::IpAddress).to_owned()),
        ];
        for (table, mut column) in columns {
            manager.alter_table(Table::alter().table(table).add_column(&mut column).to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(PasswordResets::Table)
                    .col(pk_uuid(PasswordResets::Id))
                    .col(uuid(PasswordResets::OrganizationId))
                    .col(uuid(PasswordResets::UserId))
                    .col(binary_len_uniq(PasswordResets::TokenHash, 32))
                    .col(uuid(PasswordResets::CreatedBy))
                    .col(timestamp_with_time_zone(PasswordResets::CreatedAt))
                    .col(timestamp_with_time_zone(PasswordResets::ExpiresAt))
                    .col(timestamp_with_time_zone_null(PasswordResets::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_password_resets_organization")
                            .from(PasswordResets::Table, PasswordResets::OrganizationId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_password_resets_user")
                            .from(PasswordResets::Table, PasswordResets::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_password_resets_user")
                    .table(PasswordResets::Table)
                    .col(PasswordResets::UserId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PasswordResets::Table).to_owned()).await?;
        let columns = [
            (Users::Table.into_iden(), Users::Status.into_iden()),
            (Users::Table.into_iden(), Users::Name.into_iden()),
            (Users::Table.into_iden(), Users::FormerEmail.into_iden()),
            (Users::Table.into_iden(), Users::DeletedAt.into_iden()),
            (Sessions::Table.into_iden(), Sessions::UserAgent.into_iden()),
            (Sessions::Table.into_iden(), Sessions::IpAddress.into_iden()),
        ];
        for (table, column) in columns {
            manager.alter_table(Table::alter().table(table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
