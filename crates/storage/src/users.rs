//! Users, organizations and the first-run setup ([`UserRepository`]).

use async_trait::async_trait;
use otesse_domain::StorageError;
use otesse_domain::organization::{Organization, OrganizationId, OrganizationName};
use otesse_domain::ports::{InsertUserError, SetupStoreError, UserDirectory, UserRepository};
use otesse_domain::user::{Email, PasswordHash, Role, User, UserId, UserName, UserStatus};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};

use crate::Database;
use crate::entity::{installation, organization, user};
use crate::support::{begin, corrupt, db_err, finish, is_unique_violation, stored};

/// Users and organizations on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct UserStore {
    conn: DatabaseConnection,
}

impl UserStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone() }
    }
}

#[async_trait]
impl UserRepository for UserStore {
    async fn complete_setup(
        &self,
        organization: &Organization,
        admin: &User,
        hash: &PasswordHash,
    ) -> Result<(), SetupStoreError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            // The singleton row goes first: a second setup, even a concurrent one, fails here
            // on the primary key before anything else is written.
            let marker = installation::ActiveModel {
                id: Set(installation::SINGLETON_ID),
                completed_at: Set(stored(organization.created_at)),
            };
            installation::Entity::insert(marker).exec_without_returning(&txn).await.map_err(|err| {
                if is_unique_violation(&err) { SetupStoreError::AlreadyDone } else { db_err(err).into() }
            })?;
            let created_at = stored(organization.created_at);
            organization::Entity::insert(organization::ActiveModel {
                id: Set(organization.id.0),
                name: Set(organization.name.as_str().to_owned()),
                created_at: Set(created_at),
                updated_at: Set(created_at),
            })
            .exec_without_returning(&txn)
            .await
            .map_err(db_err)?;
            insert_user(&txn, admin, hash).await.map_err(|err| match err {
                InsertUserError::EmailTaken => StorageError::new("setup: the admin's email is already taken").into(),
                InsertUserError::Storage(err) => SetupStoreError::Storage(err),
            })
        }
        .await;
        finish(txn, outcome).await
    }

    async fn is_setup_done(&self) -> Result<bool, StorageError> {
        let marker =
            installation::Entity::find_by_id(installation::SINGLETON_ID).one(&self.conn).await.map_err(db_err)?;
        Ok(marker.is_some())
    }

    async fn insert(&self, user: &User, hash: &PasswordHash) -> Result<(), InsertUserError> {
        insert_user(&self.conn, user, hash).await
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<(User, PasswordHash)>, StorageError> {
        let row = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(&self.conn)
            .await
            .map_err(db_err)?;
        row.map(|row| {
            let hash = PasswordHash(row.password_hash.clone());
            Ok((to_domain(row)?, hash))
        })
        .transpose()
    }

    async fn find(&self, id: UserId) -> Result<Option<User>, StorageError> {
        user::Entity::find_by_id(id.0).one(&self.conn).await.map_err(db_err)?.map(to_domain).transpose()
    }

    async fn list(&self, organization: OrganizationId) -> Result<Vec<User>, StorageError> {
        user::Entity::find()
            .filter(user::Column::OrganizationId.eq(organization.0))
            .filter(user::Column::Status.ne(UserStatus::Deleted.as_str()))
            .order_by_asc(user::Column::Id)
            .all(&self.conn)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn organization(&self, id: OrganizationId) -> Result<Option<Organization>, StorageError> {
        let Some(row) = organization::Entity::find_by_id(id.0).one(&self.conn).await.map_err(db_err)? else {
            return Ok(None);
        };
        let name = OrganizationName::parse(&row.name).map_err(|_| corrupt("organizations", "name", &row.name))?;
        Ok(Some(Organization { id: OrganizationId(row.id), name, created_at: row.created_at }))
    }
}

#[async_trait]
impl UserDirectory for UserStore {
    async fn find_many(&self, organization: OrganizationId, ids: Vec<UserId>) -> Result<Vec<User>, StorageError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        user::Entity::find()
            .filter(user::Column::OrganizationId.eq(organization.0))
            .filter(user::Column::Id.is_in(ids.into_iter().map(|id| id.0)))
            .all(&self.conn)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(to_domain)
            .collect()
    }
}

async fn insert_user(conn: &impl ConnectionTrait, user: &User, hash: &PasswordHash) -> Result<(), InsertUserError> {
    let row = user::ActiveModel {
        id: Set(user.id.0),
        organization_id: Set(user.organization_id.0),
        email: Set(user.email.as_str().to_owned()),
        role: Set(user.role.as_str().to_owned()),
        password_hash: Set(hash.0.clone()),
        created_at: Set(stored(user.created_at)),
        status: Set(user.status.as_str().to_owned()),
        name: Set(user.name.as_ref().map(|name| name.as_str().to_owned())),
        former_email: Set(None),
        deleted_at: Set(None),
    };
    match user::Entity::insert(row).exec_without_returning(conn).await {
        Ok(_) => Ok(()),
        // The email is the only unique column besides the UUID v7 id.
        Err(err) if is_unique_violation(&err) => Err(InsertUserError::EmailTaken),
        Err(err) => Err(db_err(err).into()),
    }
}

pub(crate) fn to_domain(row: user::Model) -> Result<User, StorageError> {
    // A tombstone is named by the address it had.
    let address = row.former_email.as_deref().unwrap_or(&row.email);
    let email = Email::parse(address).map_err(|_| corrupt("users", "email", address))?;
    let role = Role::parse(&row.role).ok_or_else(|| corrupt("users", "role", &row.role))?;
    let status = UserStatus::parse(&row.status).ok_or_else(|| corrupt("users", "status", &row.status))?;
    let name = row.name.as_deref().map(|name| UserName::parse(name).map_err(|_| corrupt("users", "name", name)));
    Ok(User {
        id: UserId(row.id),
        organization_id: OrganizationId(row.organization_id),
        email,
        name: name.transpose()?,
        role,
        status,
        created_at: row.created_at,
    })
}
