//! Customers ([`CustomerRepository`]). Every query is bound to one tenant: the organization
//! AND the environment. A customer of another tenant is indistinguishable from a missing one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::api_key::Environment;
use otesse_domain::customer::{Customer, CustomerId, CustomerPatch, Tenant};
use otesse_domain::organization::OrganizationId;
use otesse_domain::page::{Page, PageRequest};
use otesse_domain::ports::CustomerRepository;
use otesse_domain::user::Email;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::Database;
use crate::entity::customer;
use crate::support::{begin, corrupt, db_err, finish, overfetch, stored};

/// Customers on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct CustomerStore {
    conn: DatabaseConnection,
}

impl CustomerStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone() }
    }
}

/// The tenant filter every query carries.
fn in_tenant(tenant: Tenant) -> Condition {
    Condition::all()
        .add(customer::Column::OrganizationId.eq(tenant.organization_id.0))
        .add(customer::Column::Environment.eq(tenant.environment.as_str()))
}

fn one_in_tenant(tenant: Tenant, id: CustomerId) -> Condition {
    in_tenant(tenant).add(customer::Column::Id.eq(id.0))
}

#[async_trait]
impl CustomerRepository for CustomerStore {
    async fn insert(&self, customer: &Customer) -> Result<(), StorageError> {
        let row = customer::ActiveModel {
            id: Set(customer.id.0),
            organization_id: Set(customer.organization_id.0),
            environment: Set(customer.environment.as_str().to_owned()),
            name: Set(customer.name.clone()),
            email: Set(customer.email.as_ref().map(|email| email.as_str().to_owned())),
            phone: Set(customer.phone.clone()),
            created_at: Set(stored(customer.created_at)),
            updated_at: Set(stored(customer.updated_at)),
        };
        customer::Entity::insert(row).exec_without_returning(&self.conn).await.map_err(db_err)?;
        Ok(())
    }

    async fn find(&self, tenant: Tenant, id: CustomerId) -> Result<Option<Customer>, StorageError> {
        find_in(&self.conn, tenant, id).await
    }

    async fn list(
        &self,
        tenant: Tenant,
        page: &PageRequest<CustomerId>,
    ) -> Result<Page<Customer, CustomerId>, StorageError> {
        let mut query = customer::Entity::find().filter(in_tenant(tenant));
        if let Some(after) = page.after() {
            query = query.filter(customer::Column::Id.lt(after.0));
        }
        let rows = query
            .order_by_desc(customer::Column::Id)
            .limit(overfetch(page.limit()))
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        let customers = rows.into_iter().map(to_domain).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(customers, page.limit(), |customer| customer.id))
    }

    async fn update(
        &self,
        tenant: Tenant,
        id: CustomerId,
        patch: &CustomerPatch,
        now: DateTime<Utc>,
    ) -> Result<Option<Customer>, StorageError> {
        let mut update = customer::Entity::update_many()
            .col_expr(customer::Column::UpdatedAt, Expr::value(stored(now)))
            .filter(one_in_tenant(tenant, id));
        if let Some(name) = &patch.name {
            update = update.col_expr(customer::Column::Name, Expr::value(name.as_str()));
        }
        if let Some(email) = &patch.email {
            let email = email.as_ref().map(|email| email.as_str().to_owned());
            update = update.col_expr(customer::Column::Email, Expr::value(email));
        }
        if let Some(phone) = &patch.phone {
            update = update.col_expr(customer::Column::Phone, Expr::value(phone.clone()));
        }
        // The update and the read-back in one transaction, so the customer returned is the one
        // this patch produced.
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let updated = update.exec(&txn).await.map_err(db_err)?;
            if updated.rows_affected == 0 {
                return Ok(None);
            }
            find_in(&txn, tenant, id).await
        }
        .await;
        finish(txn, outcome).await
    }

    async fn delete(&self, tenant: Tenant, id: CustomerId) -> Result<bool, StorageError> {
        let deleted =
            customer::Entity::delete_many().filter(one_in_tenant(tenant, id)).exec(&self.conn).await.map_err(db_err)?;
        Ok(deleted.rows_affected > 0)
    }
}

async fn find_in(
    conn: &impl ConnectionTrait,
    tenant: Tenant,
    id: CustomerId,
) -> Result<Option<Customer>, StorageError> {
    customer::Entity::find()
        .filter(one_in_tenant(tenant, id))
        .one(conn)
        .await
        .map_err(db_err)?
        .map(to_domain)
        .transpose()
}

fn to_domain(row: customer::Model) -> Result<Customer, StorageError> {
    let environment =
        Environment::parse(&row.environment).ok_or_else(|| corrupt("customers", "environment", &row.environment))?;
    let email = row
        .email
        .as_deref()
        .map(|raw| Email::parse(raw).map_err(|_| corrupt("customers", "email", raw)))
        .transpose()?;
    Ok(Customer {
        id: CustomerId(row.id),
        organization_id: OrganizationId(row.organization_id),
        environment,
        name: row.name,
        email,
        phone: row.phone,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
