//! The initial schema: organizations, users and sessions, API keys with their usage log, the
//! audit trail, and customers.
//!
//! Portable choices: identifiers are UUID v7 (time-ordered, so `ORDER BY id DESC` is newest
//! first on both databases); enums are stored as their domain strings; lists and maps are JSON
//! text; hashes are 32-byte binaries. No PostgreSQL-only type is used.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(pk_uuid(Organizations::Id))
                    .col(text(Organizations::Name))
                    .col(timestamp_with_time_zone(Organizations::CreatedAt))
                    .col(timestamp_with_time_zone(Organizations::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        // The first-run setup singleton. Its id is always 1, so a second setup fails on the
        // primary key: that is how concurrent setups are refused atomically.
        manager
            .create_table(
                Table::create()
                    .table(Installation::Table)
                    .col(integer(Installation::Id).primary_key())
                    .col(timestamp_with_time_zone(Installation::CompletedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(uuid(Users::OrganizationId))
                    .col(text_uniq(Users::Email))
                    .col(text(Users::Role))
                    .col(text(Users::PasswordHash))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_users_organization")
                            .from(Users::Table, Users::OrganizationId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_organization")
                    .table(Users::Table)
                    .col(Users::OrganizationId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(pk_uuid(Sessions::Id))
                    .col(uuid(Sessions::UserId))
                    .col(binary_len_uniq(Sessions::TokenHash, 32))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sessions_user")
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(pk_uuid(ApiKeys::Id))
                    .col(uuid(ApiKeys::OrganizationId))
                    .col(text(ApiKeys::Name))
                    .col(text(ApiKeys::Description))
                    .col(text(ApiKeys::Environment))
                    .col(text(ApiKeys::ScopeLevel))
                    // JSON array of scope names.
                    .col(text(ApiKeys::Scopes))
                    .col(text(ApiKeys::ExpiresIn))
                    // JSON array of CIDR strings.
                    .col(text(ApiKeys::AllowedIps))
                    .col(binary_len_uniq(ApiKeys::KeyHash, 32))
                    .col(text(ApiKeys::Last4))
                    .col(uuid(ApiKeys::CreatedBy))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .col(uuid_null(ApiKeys::RotatedFrom))
                    // Coalesced by the usage writer, never written per request.
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                    .col(big_integer(ApiKeys::RequestCount).default(0))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_keys_organization")
                            .from(ApiKeys::Table, ApiKeys::OrganizationId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_keys_created_by")
                            .from(ApiKeys::Table, ApiKeys::CreatedBy)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_keys_organization")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::OrganizationId)
                    .to_owned(),
            )
            .await?;

        // Append-only and large: no foreign keys, so the background writer's batches stay cheap.
        manager
            .create_table(
                Table::create()
                    .table(ApiKeyUsage::Table)
                    .col(big_pk_auto(ApiKeyUsage::Id))
                    .col(uuid(ApiKeyUsage::ApiKeyId))
                    .col(uuid(ApiKeyUsage::OrganizationId))
                    .col(timestamp_with_time_zone(ApiKeyUsage::OccurredAt))
                    .col(text(ApiKeyUsage::Method))
                    .col(text(ApiKeyUsage::Path))
                    .col(integer(ApiKeyUsage::Status))
                    .col(integer(ApiKeyUsage::ResponseTimeMs))
                    .col(text_null(ApiKeyUsage::ClientIp))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_key_usage_key_id")
                    .table(ApiKeyUsage::Table)
                    .col(ApiKeyUsage::ApiKeyId)
                    .col(ApiKeyUsage::Id)
                    .to_owned(),
            )
            .await?;

        // The distinct client addresses of each key, so that counting them does not scan the
        // usage log.
        manager
            .create_table(
                Table::create()
                    .table(ApiKeyIps::Table)
                    .col(uuid(ApiKeyIps::ApiKeyId))
                    .col(text(ApiKeyIps::Ip))
                    .primary_key(Index::create().col(ApiKeyIps::ApiKeyId).col(ApiKeyIps::Ip))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(pk_uuid(AuditLog::Id))
                    .col(uuid(AuditLog::OrganizationId))
                    // 'user', 'api_key' or 'system'.
                    .col(text(AuditLog::ActorType))
                    .col(uuid_null(AuditLog::ActorId))
                    .col(text(AuditLog::Action))
                    .col(text(AuditLog::TargetType))
                    .col(text(AuditLog::TargetId))
                    .col(timestamp_with_time_zone(AuditLog::OccurredAt))
                    // JSON object of string to string.
                    .col(text(AuditLog::Details))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_organization_id")
                    .table(AuditLog::Table)
                    .col(AuditLog::OrganizationId)
                    .col(AuditLog::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Customers::Table)
                    .col(pk_uuid(Customers::Id))
                    .col(uuid(Customers::OrganizationId))
                    .col(text(Customers::Environment))
                    .col(text(Customers::Name))
                    .col(text_null(Customers::Email))
                    .col(text_null(Customers::Phone))
                    .col(timestamp_with_time_zone(Customers::CreatedAt))
                    .col(timestamp_with_time_zone(Customers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_customers_tenant_id")
                    .table(Customers::Table)
                    .col(Customers::OrganizationId)
                    .col(Customers::Environment)
                    .col(Customers::Id)
                    .to_owned(),
            )
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, for the foreign keys.
        for table in [
            Customers::Table.into_iden(),
            AuditLog::Table.into_iden(),
            ApiKeyIps::Table.into_iden(),
            ApiKeyUsage::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
            Installation::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Installation {
    Table,
    Id,
    CompletedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    OrganizationId,
    Email,
    Role,
    PasswordHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    OrganizationId,
    Name,
    Description,
    Environment,
    ScopeLevel,
    Scopes,
    ExpiresIn,
    AllowedIps,
    KeyHash,
    Last4,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    RotatedFrom,
    LastUsedAt,
    RequestCount,
}

#[derive(DeriveIden)]
enum ApiKeyUsage {
    Table,
    Id,
    ApiKeyId,
    OrganizationId,
    OccurredAt,
    Method,
    Path,
    Status,
    ResponseTimeMs,
    ClientIp,
}

#[derive(DeriveIden)]
enum ApiKeyIps {
    Table,
    ApiKeyId,
    Ip,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    OrganizationId,
    ActorType,
    ActorId,
    Action,
    TargetType,
    TargetId,
    OccurredAt,
    Details,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
    OrganizationId,
    Environment,
    Name,
    Email,
    Phone,
    CreatedAt,
    UpdatedAt,
}
