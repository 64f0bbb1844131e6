use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "integration_connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub instance_id: Uuid,
    pub organization_id: Uuid,
    pub provider: String,
    pub user_id: Uuid,
    /// `api_key` or `preconfigured`.
    pub auth_method: String,
    /// `connected` or `disconnected`.
    pub status: String,
    pub created_at: DateTimeUtc,
    pub disconnected_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::integration_instance::Entity",
        from = "Column::InstanceId",
        to = "super::integration_instance::Column::Id"
    )]
    Instance,
}

impl Related<super::integration_instance::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Instance.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
