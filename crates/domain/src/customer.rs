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

/// Identifies a customer: a UUID v7, so ids sort by creation time (the list's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerId(pub Uuid);

/// A customer of the organization (P7), in one environment: live and test data never mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// The customer's id.
    pub id: CustomerId,
    /// The organization the customer belongs to.
    pub organization_id: OrganizationId,
    /// Live or test: the environment of the key that created it.
    pub environment: Environment,
    /// The customer's name, trimmed (1-200 characters).
    pub name: String,
    /// The customer's email address, lower-cased, if known.
    pub email: Option<Email>,
    /// The customer's phone number as given, trimmed (digits, spaces and `+ ( ) - .`), if known.
    pub phone: Option<String>,
    /// When the customer was created.
    pub created_at: DateTime<Utc>,
    /// When the customer was last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a client sends to create a customer.
#[derive(Debug, Clone, Default)]
pub struct CustomerInput {
    /// The name; trimmed, then 1-200 characters without control characters.
    pub name: String,
    /// An email address, if any; checked as [`Email::parse`] does.
    pub email: Option<String>,
    /// A phone number, if any: at most 40 characters of digits, spaces and `+ ( ) - .`.
    pub phone: Option<String>,
}

/// A validated partial update. `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerPatch {
    /// A new name, when `Some`.
    pub name: Option<String>,
    /// A new email address (`Some(Some)`), or none any more (`Some(None)`).
    pub email: Option<Option<Email>>,
    /// A new phone number (`Some(Some)`), or none any more (`Some(None)`).
    pub phone: Option<Option<String>>,
}

/// What a client sends to update a customer; `Some(None)` clears.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatchInput {
    /// A new name, when `Some`; checked as at creation.
    pub name: Option<String>,
    /// A new email address (`Some(Some)`), or none any more (`Some(None)`).
    pub email: Option<Option<String>>,
    /// A new phone number (`Some(Some)`), or none any more (`Some(None)`).
    pub phone: Option<Option<String>>,
}

/// Stores customers. Every method reaches one tenant's customers only, and fails only with
/// [`StorageError`].
#[cfg_attr(any(test, feature = "mocks"), automock)]
#[async_trait]
pub trait CustomerRepository: Send + Sync {
    /// Stores a new customer.
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

/// Why a customer operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    /// The name is empty once trimmed, longer than 200 characters, or holds a control character.
    #[error("name must be 1 to 200 characters")]
    InvalidName,
    /// The email is not an email address.
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    /// The phone number is empty, longer than 40 characters, has no digit, or holds a character
    /// other than digits, spaces and `+ ( ) - .`.
    #[error("phone must be at most 40 characters of digits, spaces and + ( ) - .")]
    InvalidPhone,
    /// No customer with this id in the key's organization and environment.
    #[error("no such customer")]
    NotFound,
    /// The caller is not a key holding `customers.read` (reads) or `customers.write` (changes).
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// The store failed.
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
    /// A service over `customers`, with `clock` dating creations and changes.
    pub fn new(customers: Arc<dyn CustomerRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { customers, clock }
    }

    /// Creates a customer in the key's tenant; needs `customers.write`.
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

    /// The customer `id` of the key's tenant; needs `customers.read`.
    pub async fn get(&self, caller: &Caller, id: CustomerId) -> Result<Customer, CustomerError> {
        self.customers.find(tenant(caller, READ)?, id).await?.ok_or(CustomerError::NotFound)
    }

    /// A page of the key's tenant's customers, newest first; needs `customers.read`.
    pub async fn list(
        &self,
        caller: &Caller,
        page: &PageRequest<CustomerId>,
    ) -> Result<Page<Customer, CustomerId>, CustomerError> {
        Ok(self.customers.list(tenant(caller, READ)?, page).await?)
    }

    /// Applies a partial update to the customer `id` of the key's tenant; needs `customers.write`.
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

    /// Deletes the customer `id` of the key's tenant; needs `customers.write`.
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
