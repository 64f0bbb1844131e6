//! OAuth2 providers (I12): authorizations in progress (the `state` kept only as its SHA-256,
//! the PKCE verifier sealed) and the sealed tokens of OAuth connections, with the refresh
//! lease that lets one process at a time refresh a connection.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum IntegrationConnections {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum IntegrationOauthAuthorizations {
    Table,
    Id,
    StateHash,
    OrganizationId,
    UserId,
    Provider,
    RedirectUri,
    VerifierKeyVersion,
    VerifierCiphertext,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum IntegrationOauthTokens {
    Table,
    ConnectionId,
    OrganizationId,
    AccessKeyVersion,
    AccessCiphertext,
    RefreshKeyVersion,
    RefreshCiphertext,
    AccessExpiresAt,
    UpdatedAt,
    LeaseHolder,
    LeaseUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IntegrationOauthAuthorizations::Table)
                    .col(pk_uuid(IntegrationOauthAuthorizations::Id))
                    .col(binary_len_uniq(IntegrationOauthAuthorizations::StateHash, 32))
                    .col(uuid(IntegrationOauthAuthorizations::OrganizationId))
                    .col(uuid(IntegrationOauthAuthorizations::UserId))
                    .col(text(IntegrationOauthAuthorizations::Provider))
                    .col(text(IntegrationOauthAuthorizations::RedirectUri))
                    .col(integer_null(IntegrationOauthAuthorizations::VerifierKeyVersion))
                    .col(blob_null(IntegrationOauthAuthorizations::VerifierCiphertext))
                    .col(timestamp_with_time_zone(IntegrationOauthAuthorizations::CreatedAt))
                    .col(timestamp_with_time_zone(IntegrationOauthAuthorizations::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integration_oauth_authorizations_organization")
                            .from(IntegrationOauthAuthorizations::Table, IntegrationOauthAuthorizations::OrganizationId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IntegrationOauthTokens::Table)
                    .col(pk_uuid(IntegrationOauthTokens::ConnectionId))
                    .col(uuid(IntegrationOauthTokens::OrganizationId))
                    .col(integer(IntegrationOauthTokens::AccessKeyVersion))
                    .col(blob(IntegrationOauthTokens::AccessCiphertext))
                    .col(integer_null(IntegrationOauthTokens::RefreshKeyVersion))
                    .col(blob_null(IntegrationOauthTokens::RefreshCiphertext))
                    .col(timestamp_with_time_zone_null(IntegrationOauthTokens::AccessExpiresAt))
                    .col(timestamp_with_time_zone(IntegrationOauthTokens::UpdatedAt))
                    .col(uuid_null(IntegrationOauthTokens::LeaseHolder))
                    .col(timestamp_with_time_zone_null(IntegrationOauthTokens::LeaseUntil))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integration_oauth_tokens_connection")
                            .from(IntegrationOauthTokens::Table, IntegrationOauthTokens::ConnectionId)
                            .to(IntegrationConnections::Table, IntegrationConnections::Id),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(IntegrationOauthTokens::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(IntegrationOauthAuthorizations::Table).to_owned()).await?;
        Ok(())
    }
}
