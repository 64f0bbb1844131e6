//! The model an organization chose for a provider with model selection (Anthropic, I11).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IntegrationInstances::Table)
                    .add_column(ColumnDef::new(IntegrationInstances::SelectedModel).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IntegrationInstances::Table)
                    .drop_column(IntegrationInstances::SelectedModel)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum IntegrationInstances {
    Table,
    SelectedModel,
}
