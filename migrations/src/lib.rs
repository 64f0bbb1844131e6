//! The Otesse database schema, as sea-orm migrations portable across SQLite and PostgreSQL.
//!
//! The storage adapter runs [`Migrator`] when it connects; the `otesse-migration` binary runs
//! it on demand. Migrations are append-only: once released, a migration is never edited, a new
//! one is added instead.

use sea_orm_migration::prelude::*;

/// Re-exported so that callers can run [`Migrator::up`] without depending on sea-orm-migration.
pub use sea_orm_migration::{MigrationStatus, MigratorTrait};

mod m20261124_000001_initial;
mod m20261124_000002_integrations;
mod m20261124_000003_contacts;
mod m20261124_000004_selected_model;
mod m20261124_000005_jobs;
mod m20261124_000006_idempotency;
mod m20261124_000007_stripe_webhooks;
mod m20261124_000008_notifications;
mod m20261124_000009_outbound_webhooks;
mod m20261206_000010_one_connection_per_user;
mod m20261206_000011_idempotent_location;
mod m20261206_000012_service_tokens;
mod m20261206_000013_user_lifecycle;
mod m20261206_000014_oauth;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_initial::Migration),
            Box::new(m20261124_000002_integrations::Migration),
            Box::new(m20261124_000003_contacts::Migration),
            Box::new(m20261124_000004_selected_model::Migration),
            Box::new(m20261124_000005_jobs::Migration),
            Box::new(m20261124_000006_idempotency::Migration),
            Box::new(m20261124_000007_stripe_webhooks::Migration),
            Box::new(m20261124_000008_notifications::Migration),
            Box::new(m20261124_000009_outbound_webhooks::Migration),
            Box::new(m20261206_000010_one_connection_per_user::Migration),
            Box::new(m20261206_000011_idempotent_location::Migration),
            Box::new(m20261206_000012_service_tokens::Migration),
            Box::new(m20261206_000013_user_lifecycle::Migration),
            Box::new(m20261206_000014_oauth::Migration),
        ]
    }
}
