use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "integration_oauth_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub connection_id: Uuid,
    pub organization_id: Uuid,
    pub access_key_version: i32,
    pub access_ciphertext: Vec<u8>,
    pub refresh_key_version: Option<i32>,
    pub refresh_ciphertext: Option<Vec<u8>>,
    pub access_expires_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    /// Who is refreshing, until when.
    pub lease_holder: Option<Uuid>,
    pub lease_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
