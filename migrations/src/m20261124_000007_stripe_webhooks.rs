//! Stripe webhook endpoints (I11) and the events received on them (W4).
//!
//! An endpoint's signing secret is sealed like a credential (`key_version` + `secret_ciphertext`,
//! bound to the endpoint), so the master-key rewrap covers it too. Events are unique per
//! (endpoint, Stripe event id): that index is the de-duplication.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StripeWebhookEndpoints::Table)
                    .col(pk_uuid(StripeWebhookEndpoints::Id))
                    .col(uuid(StripeWebhookEndpoints::OrganizationId))
                    .col(uuid(StripeWebhookEndpoints::ConnectionId))
                    .col(text(StripeWebhookEndpoints::Description))
                    // A JSON array of event types.
                    .col(text(StripeWebhookEndpoints::Events))
                    .col(integer(StripeWebhookEndpoints::KeyVersion))
                    .col(blob(StripeWebhookEndpoints::SecretCiphertext))
                    .col(timestamp_with_time_zone(StripeWebhookEndpoints::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_stripe_webhook_endpoints_connection")
                            .from(StripeWebhookEndpoints::Table, StripeWebhookEndpoints::ConnectionId)
                            .to(IntegrationConnections::Table, IntegrationConnections::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_stripe_webhook_endpoints_connection")
                    .table(StripeWebhookEndpoints::Table)
                    .col(StripeWebhookEndpoints::OrganizationId)
                    .col(StripeWebhookEndpoints::ConnectionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StripeWebhookEvents::Table)
                    .col(pk_uuid(StripeWebhookEvents::Id))
                    .col(uuid(StripeWebhookEvents::EndpointId))
                    .col(uuid(StripeWebhookEvents::OrganizationId))
                    .col(text(StripeWebhookEvents::EventId))
                    .col(text(StripeWebhookEvents::EventType))
                    .col(boolean(StripeWebhookEvents::Livemode))
                    .col(text(StripeWebhookEvents::Payload))
                    .col(timestamp_with_time_zone(StripeWebhookEvents::ReceivedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_stripe_webhook_events_endpoint")
                            .from(StripeWebhookEvents::Table, StripeWebhookEvents::EndpointId)
                            .to(StripeWebhookEndpoints::Table, StripeWebhookEndpoints::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_stripe_webhook_events_dedupe")
                    .table(StripeWebhookEvents::Table)
                    .col(StripeWebhookEvents::EndpointId)
                    .col(StripeWebhookEvents::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(StripeWebhookEvents::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(StripeWebhookEndpoints::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum StripeWebhookEndpoints {
    Table,
    Id,
    OrganizationId,
    ConnectionId,
    Description,
    Events,
    KeyVersion,
    SecretCiphertext,
    CreatedAt,
}

#[derive(DeriveIden)]
enum StripeWebhookEvents {
    Table,
    Id,
    EndpointId,
    OrganizationId,
    EventId,
    EventType,
    Livemode,
    Payload,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum IntegrationConnections {
    Table,
    Id,
}
