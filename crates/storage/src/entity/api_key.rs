use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub description: String,
    pub environment: String,
    pub scope_level: String,
    /// JSON array of scope names.
    pub scopes: String,
    pub expires_in: String,
    /// JSON array of CIDR strings.
    pub allowed_ips: String,
    pub key_hash: Vec<u8>,
    pub last4: String,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub rotated_from: Option<Uuid>,
    pub last_used_at: Option<DateTimeUtc>,
    pub request_count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
