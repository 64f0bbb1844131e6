//! Customers: the protected resource API keys exist to guard (P7). Live and test data are kept
//! apart by the environment of the key used.

use std::sync::Arc;

use async_trait::async_trait;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StorageError;
use crate::api_key::Environment;
use crate::api_key::Scope;
pub use crate::caller::Tenant;
use crate::caller::{Caller, Denied, Need};
use crate::organization::OrganizationId;
use crate::page::{Page, PageRequest};
use crate::ports::Clock;
use crate::user::{Email, EmailError};

#[cfg(any(test, feature = "mocks"))]
use mockall::automock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerId(pub Uuid);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub organization_id: OrganizationId,
    pub environment: Environment,
    pub name: String,
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a client sends to create a customer.
#[derive(Debug, Clone, Default)]
pub struct CustomerInput {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// A validated partial update. `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerPatch {
    pub name: Option<String>,
    pub email: Option<Option<Email>>,
    pub phone: Option<Option<String>>,
}

/// What a client sends to update a customer; `Some(None)` clears.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatchInput {
    pub name: Option<String>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
}

#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait CustomerRepository: Send + Sync {
    async fn insert(&self, customer: &Customer) -> Result<(), StorageError>;
    /// The customer with this id in this tenant (organization and environment), or `None`.
    async fn find(&self, tenant: Tenant, id: CustomerId) -> Result<Option<Customer>, StorageError>;
    /// Newest first; the cursor is the id of the last customer of the previous page.
    async fn list(
        &self,
        tenant: Tenant,
        page: &PageRequest<CustomerId>,
    ) -> Result<Page<Customer, CustomerId>, StorageError>;
    /// Applies the patch and returns the customer as stored, or `None` if absent.
    async fn update(
        &self,
        tenant: Tenant,
        id: CustomerId,
        patch: &CustomerPatch,
        now: DateTime<Utc>,
    ) -> Result<Option<Customer>, StorageError>;
    /// Whether a customer was deleted.
    async fn delete(&self, tenant: Tenant, id: CustomerId) -> Result<bool, StorageError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    #[error("name must be 1 to 200 characters")]
    InvalidName,
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    #[error("phone must be at most 40 characters of digits, spaces and + ( ) - .")]
    InvalidPhone,
    #[error("no such customer")]
    NotFound,
    #[error(transparent)]
    Forbidden(#[from] Denied),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn parse_name(raw: &str) -> Result<String, CustomerError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > 200 || name.chars().any(char::is_control) {
        return Err(CustomerError::InvalidName);
    }
    Ok(name.to_owned())
}

fn parse_phone(raw: &str) -> Result<String, CustomerError> {
    let phone = raw.trim();
    let ok = !phone.is_empty()
        && phone.len() <= 40
        && phone.chars().any(|c| c.is_ascii_digit())
        && phone.chars().all(|c| c.is_ascii_digit() || " +()-.".contains(c));
    if ok { Ok(phone.to_owned()) } else { Err(CustomerError::InvalidPhone) }
}

fn parse_email(raw: &str) -> Result<Email, CustomerError> {
    Ok(Email::parse(raw)?)
}

/// Customers are the platform's data, reached with API keys (P7): reading needs
/// `customers.read`, changing `customers.write`.
const READ: Need = Need::Key(Scope::CustomersRead);
const WRITE: Need = Need::Key(Scope::CustomersWrite);

/// The tenant a caller may reach with `need`: the key's organization and environment.
fn tenant(caller: &Caller, need: Need) -> Result<Tenant, CustomerError> {
    caller.require(need)?;
    caller.tenant().ok_or(CustomerError::Forbidden(Denied::KeysOnly))
}

/// Customer operations, always within the caller's tenant.
#[derive(Clone)]
pub struct CustomerService {
    customers: Arc<dyn CustomerRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for CustomerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerService")
    }
}

impl CustomerService {
    pub fn new(customers: Arc<dyn CustomerRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { customers, clock }
    }

    pub async fn create(&self, caller: &Caller, input: CustomerInput) -> Result<Customer, CustomerError> {
        let tenant = tenant(caller, WRITE)?;
        let now = self.clock.now();
        let customer = Customer {
            id: CustomerId(Uuid::now_v7()),
            organization_id: tenant.organization_id,
            environment: tenant.environment,
            name: parse_name(&input.name)?,
            email: input.email.as_deref().map(parse_email).transpose()?,
            phone: input.phone.as_deref().map(parse_phone).transpose()?,
            created_at: now,
            updated_at: now,
        };
        self.customers.insert(&customer).await?;
        Ok(customer)
    }

    pub async fn get(&self, caller: &Caller, id: CustomerId) -> Result<Customer, CustomerError> {
        self.customers.find(tenant(caller, READ)?, id).await?.ok_or(CustomerError::NotFound)
    }

    pub async fn list(
        &self,
        caller: &Caller,
        page: &PageRequest<CustomerId>,
    ) -> Result<Page<Customer, CustomerId>, CustomerError> {
        Ok(self.customers.list(tenant(caller, READ)?, page).await?)
    }

    pub async fn update(
        &self,
        caller: &Caller,
        id: CustomerId,
        input: CustomerPatchInput,
    ) -> Result<Customer, CustomerError> {
        let tenant = tenant(caller, WRITE)?;
        let patch = CustomerPatch {
            name: input.name.as_deref().map(parse_name).transpose()?,
            email: input.email.map(|email| email.as_deref().map(parse_email).transpose()).transpose()?,
            phone: input.phone.map(|phone| phone.as_deref().map(parse_phone).transpose()).transpose()?,
        };
        self.customers.update(tenant, id, &patch, self.clock.now()).await?.ok_or(CustomerError::NotFound)
    }

    pub async fn delete(&self, caller: &Caller, id: CustomerId) -> Result<(), CustomerError> {
        if self.customers.delete(tenant(caller, WRITE)?, id).await? { Ok(()) } else { Err(CustomerError::NotFound) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockClock, MockCustomerRepository};

    /// A test-environment key of organization 1 with both customer scopes.
    fn caller() -> Caller {
        let mut key = crate::api_key::fixtures::key(Utc::now());
        key.environment = Environment::Test;
        Caller::key(Arc::new(key))
    }

    fn service(repo: MockCustomerRepository) -> CustomerService {
        let mut clock = MockClock::new();
        clock.expect_now().returning(Utc::now);
        CustomerService::new(Arc::new(repo), Arc::new(clock))
    }

    #[tokio::test]
    async fn create_stores_the_customer_in_the_callers_environment() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_insert()
            .withf(|c| c.environment == Environment::Test && c.name == "Ada" && c.email.is_some())
            .times(1)
            .returning(|_| Ok(()));
        let created = service(repo)
            .create(&caller(), CustomerInput { name: " Ada ".into(), email: Some("ADA@x.io".into()), phone: None })
            .await
            .unwrap();
        assert_eq!(created.email.unwrap().as_str(), "ada@x.io");
    }

    #[tokio::test]
    async fn invalid_input_stores_nothing() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_insert().never();
        let svc = service(repo);
        for input in [
            CustomerInput { name: "  ".into(), ..Default::default() },
            CustomerInput { name: "Ada".into(), email: Some("nope".into()), phone: None },
            CustomerInput { name: "Ada".into(), email: None, phone: Some("call me".into()) },
        ] {
            assert!(svc.create(&caller(), input).await.is_err());
        }
    }

    #[tokio::test]
    async fn missing_customers_are_not_found() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_find().returning(|_, _| Ok(None));
        repo.expect_delete().returning(|_, _| Ok(false));
        repo.expect_update().returning(|_, _, _, _| Ok(None));
        let svc = service(repo);
        let id = CustomerId(Uuid::now_v7());
        assert_eq!(svc.get(&caller(), id).await.unwrap_err(), CustomerError::NotFound);
        assert_eq!(svc.delete(&caller(), id).await.unwrap_err(), CustomerError::NotFound);
        let patch = CustomerPatchInput { name: Some("Bo".into()), ..Default::default() };
        assert_eq!(svc.update(&caller(), id, patch).await.unwrap_err(), CustomerError::NotFound);
    }

    #[tokio::test]
    async fn patch_can_clear_optional_fields() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_update()
            .withf(|_, _, patch, _| patch.email == Some(None) && patch.name.is_none())
            .returning(|_, _, _, _| Ok(None));
        let svc = service(repo);
        let patch = CustomerPatchInput { email: Some(None), ..Default::default() };
        // The mock answers "absent", which proves the patch reached it in the expected shape.
        assert_eq!(
            svc.update(&caller(), CustomerId(Uuid::now_v7()), patch).await.unwrap_err(),
            CustomerError::NotFound
        );
    }
}

#[cfg(test)]
mod authorization {
    use super::*;
    use crate::api_key::{AccessDenied, ScopeLevel};
    use crate::ports::{MockClock, MockCustomerRepository};
    use crate::user::Role;

    #[tokio::test]
    async fn reading_needs_customers_read_and_writing_customers_write_and_users_are_refused() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_insert().never();
        repo.expect_find().never();
        let svc = CustomerService::new(Arc::new(repo), Arc::new(MockClock::new()));
        let mut key = crate::api_key::fixtures::key(Utc::now());
        key.scope_level = ScopeLevel::ReadOnly;
        key.scopes = vec![Scope::CustomersRead];
        let reader = Caller::key(Arc::new(key));
        let input = CustomerInput { name: "Ada".into(), ..Default::default() };
        assert_eq!(
            svc.create(&reader, input.clone()).await.unwrap_err(),
            CustomerError::Forbidden(Denied::Key(AccessDenied::MissingScope(Scope::CustomersWrite)))
        );
        let user = crate::caller::fixtures::user(Role::Admin);
        assert_eq!(
            svc.get(&user, CustomerId(Uuid::nil())).await.unwrap_err(),
            CustomerError::Forbidden(Denied::KeysOnly)
        );
    }
}
