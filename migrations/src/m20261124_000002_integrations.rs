//! Integrations: each organization's instance of a provider, the users' connections to it, their
//! encrypted credentials and health checks; and a `provider` column on the audit trail, so that
//! integration entries can be filtered by provider.
//!
//! Same portable choices as the initial schema (UUID v7 ids, enums as their domain strings).
//! Credentials are AES-256-GCM ciphertexts (nonce, sealed bytes and tag) with the version of the
//! master key that sealed them; the `key_version` index finds the ones a key rotation must
//! rewrap.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IntegrationInstances::Table)
                    .col(pk_uuid(IntegrationInstances::Id))
                    .col(uuid(IntegrationInstances::OrganizationId))
                    .col(text(IntegrationInstances::Provider))
                    // 'active', 'error' or 'disconnected'.
                    .col(text(IntegrationInstances::Status))
                    .col(boolean(IntegrationInstances::Enabled))
                    .col(timestamp_with_time_zone(IntegrationInstances::CreatedAt))
                    .col(timestamp_with_time_zone(IntegrationInstances::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integration_instances_organization")
                            .from(IntegrationInstances::Table, IntegrationInstances::OrganizationId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One instance per provider and organization: connects upsert on it.
        manager
            .create_index(
                Index::create()
                    .name("idx_integration_instances_provider")
                    .table(IntegrationInstances::Table)
                    .col(IntegrationInstances::OrganizationId)
                    .col(IntegrationInstances::Provider)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IntegrationConnections::Table)
                    .col(pk_uuid(IntegrationConnections::Id))
                    .col(uuid(IntegrationConnections::InstanceId))
                    // Copied from the instance, so that every query can be bound to the
                    // organization without a join.
                    .col(uuid(IntegrationConnections::OrganizationId))
                    .col(text(IntegrationConnections::Provider))
                    .col(uuid(IntegrationConnections::UserId))
                    // 'api_key' or 'preconfigured'.
                    .col(text(IntegrationConnections::AuthMethod))
                    // 'connected' or 'disconnected'.
                    .col(text(IntegrationConnections::Status))
                    .col(timestamp_with_time_zone(IntegrationConnections::CreatedAt))
                    .col(timestamp_with_time_zone_null(IntegrationConnections::DisconnectedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integration_connections_instance")
                            .from(IntegrationConnections::Table, IntegrationConnections::InstanceId)
                            .to(IntegrationInstances::Table, IntegrationInstances::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integration_connections_user")
                            .from(IntegrationConnections::Table, IntegrationConnections::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_integration_connections_organization_id")
                    .table(IntegrationConnections::Table)
                    .col(IntegrationConnections::OrganizationId)
                    .col(IntegrationConnections::Id)
                    .to_owned(),
            )
            .await?;
        // The connections of an instance, for the "is any still connected" check.
        manager
            .create_index(
                Index::create()
                    .name("idx_integration_connections_instance")
                    .table(IntegrationConnections::Table)
                    .col(IntegrationConnections::InstanceId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IntegrationCredentials::Table)
                    .col(pk_uuid(IntegrationCredentials::Id))
                    .col(uuid(IntegrationCredentials::ConnectionId))
                    // Part of the ciphertext's associated data, with the connection and field.
                    .col(uuid(IntegrationCredentials::OrganizationId))
                    // 'api_key', 'api_secret' or 'account_id'.
                    .col(text(IntegrationCredentials::Field))
                    .col(integer(IntegrationCredentials::KeyVersion))
                    .col(blob(IntegrationCredentials::Ciphertext))
                    .col(timestamp_with_time_zone(IntegrationCredentials::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integration_credentials_connection")
                            .from(IntegrationCredentials::Table, IntegrationCredentials::ConnectionId)
                            .to(IntegrationConnections::Table, IntegrationConnections::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_integration_credentials_field")
                    .table(IntegrationCredentials::Table)
                    .col(IntegrationCredentials::ConnectionId)
                    .col(IntegrationCredentials::Field)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_integration_credentials_key_version")
                    .table(IntegrationCredentials::Table)
                    .col(IntegrationCredentials::KeyVersion)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IntegrationHealthChecks::Table)
                    .col(pk_uuid(IntegrationHealthChecks::Id))
                    .col(uuid(IntegrationHealthChecks::ConnectionId))
                    // 'healthy', 'invalid_credentials', 'unreachable' or 'rate_limited'.
                    .col(text(IntegrationHealthChecks::Outcome))
                    .col(integer(IntegrationHealthChecks::ResponseTimeMs))
                    .col(text(IntegrationHealthChecks::Detail))
                    .col(timestamp_with_time_zone(IntegrationHealthChecks::CheckedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integration_health_checks_connection")
                            .from(IntegrationHealthChecks::Table, IntegrationHealthChecks::ConnectionId)
                            .to(IntegrationConnections::Table, IntegrationConnections::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // A connection's checks newest first, and its latest one.
        manager
            .create_index(
                Index::create()
                    .name("idx_integration_health_checks_connection_id")
                    .table(IntegrationHealthChecks::Table)
                    .col(IntegrationHealthChecks::ConnectionId)
                    .col(IntegrationHealthChecks::Id)
                    .to_owned(),
            )
            .await?;

        // Entries written before this migration have no provider: none concerned an integration.
        manager
            .alter_table(Table::alter().table(AuditLog::Table).add_column(text_null(AuditLog::Provider)).to_owned())
            .await?;
        // `id` last: a provider filter walks the index newest first, like the unfiltered list.
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_organization_provider")
                    .table(AuditLog::Table)
                    .col(AuditLog::OrganizationId)
                    .col(AuditLog::Provider)
                    .col(AuditLog::Id)
                    .to_owned(),
            )
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite refuses to drop a column that an index still uses.
        manager
            .drop_index(Index::drop().name("idx_audit_log_organization_provider").table(AuditLog::Table).to_owned())
            .await?;
        manager.alter_table(Table::alter().table(AuditLog::Table).drop_column(AuditLog::Provider).to_owned()).await?;
        // Children before parents, for the foreign keys.
        for table in [
            IntegrationHealthChecks::Table.into_iden(),
            IntegrationCredentials::Table.into_iden(),
            IntegrationConnections::Table.into_iden(),
            IntegrationInstances::Table.into_iden(),
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
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    OrganizationId,
    Id,
    Provider,
}

#[derive(DeriveIden)]
enum IntegrationInstances {
    Table,
    Id,
    OrganizationId,
    Provider,
    Status,
    Enabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IntegrationConnections {
    Table,
    Id,
    InstanceId,
    OrganizationId,
    Provider,
    UserId,
    AuthMethod,
    Status,
    CreatedAt,
    DisconnectedAt,
}

#[derive(DeriveIden)]
enum IntegrationCredentials {
    Table,
    Id,
    ConnectionId,
    OrganizationId,
    Field,
    KeyVersion,
    Ciphertext,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IntegrationHealthChecks {
    Table,
    Id,
    ConnectionId,
    Outcome,
    ResponseTimeMs,
    Detail,
    CheckedAt,
}
