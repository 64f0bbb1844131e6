//! At most one connected connection per organization, provider and user: two concurrent
//! connects of one provider by one user could both pass the service's read-then-write check.
//! The partial unique index makes the second insert fail, whatever the timing.
//!
//! A database that already holds such twins keeps the newest connected (by id, which is a
//! UUIDv7 and so in creation order) and marks the older ones disconnected, as a disconnect
//! would have; their credentials stay, like any disconnected connection's.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_integration_connections_one_connected";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE integration_connections SET status = 'disconnected', disconnected_at = created_at \
             WHERE status = 'connected' AND EXISTS (SELECT 1 FROM integration_connections newer \
             WHERE newer.organization_id = integration_connections.organization_id \
             AND newer.provider = integration_connections.provider \
             AND newer.user_id = integration_connections.user_id \
             AND newer.status = 'connected' AND newer.id > integration_connections.id)",
        )
        .await?;
        db.execute_unprepared(&format!(
            "CREATE UNIQUE INDEX {INDEX} ON integration_connections (organization_id, provider, user_id) \
             WHERE status = 'connected'"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(&format!("DROP INDEX {INDEX}")).await?;
        Ok(())
    }
}
