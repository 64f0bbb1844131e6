//! `otesse-migration`: sea-orm's migrate command line over the Otesse migrations, for operators
//! (`otesse-migration status`, `up`, `down`, ...). The server runs the same migrations itself
//! at start-up, so this binary is only needed for inspection and rollbacks.
//!
//! The database is read from `DATABASE_URL` (or `-u`), the PostgreSQL schema from
//! `DATABASE_SCHEMA` (or `-s`).

#[tokio::main]
async fn main() {
    sea_orm_migration::cli::run_cli(otesse_migration::Migrator).await;
}
