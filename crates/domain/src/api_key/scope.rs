//! Scope levels, granular scopes, and the policy table that ties them to request methods
//! (K4, K5, K6). This file is the one place the policy is written down; docs/api.md quotes it.

/// The broad access level of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeLevel {
    /// `read_only`: GET, HEAD and OPTIONS only, on standard resources.
    ReadOnly,
    /// `read_write`: every method on standard resources.
    ReadWrite,
    /// `admin`: every method on standard and admin resources (settings, users, billing,
    /// integrations, webhooks).
    Admin,
}

impl ScopeLevel {
    /// Every level, least access first.
    pub const ALL: [ScopeLevel; 3] = [ScopeLevel::ReadOnly, ScopeLevel::ReadWrite, ScopeLevel::Admin];

    /// The name clients send and see: `read_only`, `read_write` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeLevel::ReadOnly => "read_only",
            ScopeLevel::ReadWrite => "read_write",
            ScopeLevel::Admin => "admin",
        }
    }

    /// The level named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.as_str() == raw)
    }

    /// Which request methods a key of this level may send at all (K4).
    pub fn allows_method(self, method: RequestMethod) -> bool {
        match self {
            ScopeLevel::ReadOnly => method.is_read(),
            ScopeLevel::ReadWrite | ScopeLevel::Admin => true,
        }
    }

    /// Which resource classes a key of this level may reach (K4): admin resources (settings,
    /// user management, billing, integrations) need the Admin level.
    pub fn allows_class(self, class: ResourceClass) -> bool {
        match class {
            ResourceClass::Standard => true,
            ResourceClass::Admin => self == ScopeLevel::Admin,
        }
    }

    /// Whether a key of this level may hold `scope` (K4: "granular scopes must fit the level").
    pub fn allows_scope(self, scope: Scope) -> bool {
        let info = scope.info();
        self.allows_class(info.class)
            && match info.access {
                Access::Read => true,
                Access::Write => self != ScopeLevel::ReadOnly,
            }
    }
}

/// A request's method, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestMethod {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `OPTIONS`.
    Options,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// Any other method; the policy treats it as a write.
    Other,
}

impl RequestMethod {
    /// The method named `raw`, upper case as HTTP sends it; anything else is [`Self::Other`].
    pub fn parse(raw: &str) -> Self {
        match raw {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "OPTIONS" => Self::Options,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            _ => Self::Other,
        }
    }

    /// Whether the method only reads (`GET`, `HEAD`, `OPTIONS`): all a Read-Only key may send.
    pub fn is_read(self) -> bool {
        matches!(self, Self::Get | Self::Head | Self::Options)
    }

    /// The access the method needs: reading for `GET`, `HEAD` and `OPTIONS`, writing otherwise.
    pub fn access(self) -> Access {
        if self.is_read() { Access::Read } else { Access::Write }
    }
}

/// Whether a request or a scope reads or changes data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Looks only: the `.read` scopes, and the reading methods.
    Read,
    /// Changes data: the `.write` and `.manage` scopes, and every other method.
    Write,
}

/// Standard resources are reachable by Read-Write keys; admin ones only by Admin keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceClass {
    /// The platform's business data (customers, invoices, ...): Read-Write keys reach it.
    Standard,
    /// The organization's configuration (settings, integrations, webhooks): only Admin keys.
    Admin,
}

/// A resource family guarded by scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Customers (P7): `customers.read` / `customers.write`.
    Customers,
    /// Invoices: `invoices.read` / `invoices.write`.
    Invoices,
    /// Payments: `payments.read` / `payments.write`.
    Payments,
    /// Jobs and work orders: `jobs.read` / `jobs.write`.
    Jobs,
    /// Bookings: `bookings.read` / `bookings.write`.
    Bookings,
    /// Products: `products.read` / `products.write`.
    Products,
    /// Service configurations: `services.read` / `services.write`.
    Services,
    /// Employee records: `employees.read` / `employees.write`.
    Employees,
    /// Organization settings: `settings.read` / `settings.write`.
    Settings,
    /// Reports: `reports.read`; never written.
    Reports,
    /// Webhook endpoints: `webhooks.manage`, to read and to change.
    Webhooks,
    /// Connected integrations: `integrations.manage`, to read and to change.
    Integrations,
}

impl Resource {
    /// The scope a request needs to touch this resource with this kind of access, or `None`
    /// when the resource cannot be accessed that way at all (e.g. writing reports).
    pub fn required_scope(self, access: Access) -> Option<Scope> {
        use Scope::*;
        let (read, write) = match self {
            Resource::Customers => (CustomersRead, Some(CustomersWrite)),
            Resource::Invoices => (InvoicesRead, Some(InvoicesWrite)),
            Resource::Payments => (PaymentsRead, Some(PaymentsWrite)),
            Resource::Jobs => (JobsRead, Some(JobsWrite)),
            Resource::Bookings => (BookingsRead, Some(BookingsWrite)),
            Resource::Products => (ProductsRead, Some(ProductsWrite)),
            Resource::Services => (ServicesRead, Some(ServicesWrite)),
            Resource::Employees => (EmployeesRead, Some(EmployeesWrite)),
            Resource::Settings => (SettingsRead, Some(SettingsWrite)),
            Resource::Reports => (ReportsRead, None),
            Resource::Webhooks => (WebhooksManage, Some(WebhooksManage)),
            Resource::Integrations => (IntegrationsManage, Some(IntegrationsManage)),
        };
        match access {
            Access::Read => Some(read),
            Access::Write => write,
        }
    }
}

/// A granular scope (K5). One string mapping each, `resource.action`; the `resource:action`
/// spelling of the older documentation is accepted as input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `customers.read`: list and view customers.
    CustomersRead,
    /// `customers.write`: create, update and delete customers.
    CustomersWrite,
    /// `invoices.read`: list and view invoices.
    InvoicesRead,
    /// `invoices.write`: create and update invoices.
    InvoicesWrite,
    /// `payments.read`: view payments.
    PaymentsRead,
    /// `payments.write`: process payments and refunds. Sensitive.
    PaymentsWrite,
    /// `jobs.read`: list and view jobs and work orders.
    JobsRead,
    /// `jobs.write`: create and update jobs and work orders.
    JobsWrite,
    /// `bookings.read`: list and view bookings.
    BookingsRead,
    /// `bookings.write`: create and update bookings.
    BookingsWrite,
    /// `products.read`: list and view products.
    ProductsRead,
    /// `products.write`: create and update products.
    ProductsWrite,
    /// `services.read`: view service configurations.
    ServicesRead,
    /// `services.write`: change service configurations.
    ServicesWrite,
    /// `employees.read`: view employee records.
    EmployeesRead,
    /// `employees.write`: manage employee records. Sensitive.
    EmployeesWrite,
    /// `settings.read`: view organization settings. Admin level.
    SettingsRead,
    /// `settings.write`: modify organization settings. Admin level, sensitive.
    SettingsWrite,
    /// `reports.read`: generate and view reports.
    ReportsRead,
    /// `webhooks.manage`: create, update and delete webhook endpoints. Admin level, sensitive,
    /// live keys only.
    WebhooksManage,
    /// `integrations.manage`: connect, configure and disconnect integrations. Admin level,
    /// sensitive, live keys only.
    IntegrationsManage,
}

/// What the catalog says of a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeInfo {
    /// The scope's name, `resource.action` (`customers.read`).
    pub name: &'static str,
    /// One line for people, as the catalog (`GET /v1/scopes`) shows it.
    pub description: &'static str,
    /// Whether it reads or changes data: a Read-Only key holds only reading scopes.
    pub access: Access,
    /// Standard, or admin (only Admin keys may hold it).
    pub class: ResourceClass,
    /// Only a user with the admin role may grant it (K6).
    pub sensitive: bool,
    /// Test keys may not hold it: it reaches organization-wide resources that are not separated
    /// by environment (connected integrations with their live credentials and Stripe events,
    /// webhook endpoints that receive live events).
    pub live_only: bool,
}

impl Scope {
    /// Every scope, in the catalog's order.
    pub const ALL: [Scope; 21] = [
        Scope::CustomersRead,
        Scope::CustomersWrite,
        Scope::InvoicesRead,
        Scope::InvoicesWrite,
        Scope::PaymentsRead,
        Scope::PaymentsWrite,
        Scope::JobsRead,
        Scope::JobsWrite,
        Scope::BookingsRead,
        Scope::BookingsWrite,
        Scope::ProductsRead,
        Scope::ProductsWrite,
        Scope::ServicesRead,
        Scope::ServicesWrite,
        Scope::EmployeesRead,
        Scope::EmployeesWrite,
        Scope::SettingsRead,
        Scope::SettingsWrite,
        Scope::ReportsRead,
        Scope::WebhooksManage,
        Scope::IntegrationsManage,
    ];

    /// The scope catalog: one row per scope. Sensitive scopes are those that change who can do
    /// what, move money, or reach third-party credentials.
    pub fn info(self) -> ScopeInfo {
        use Access::{Read, Write};
        use ResourceClass::{Admin, Standard};
        let (name, description, access, class, sensitive) = match self {
            Scope::CustomersRead => ("customers.read", "List and view customers", Read, Standard, false),
            Scope::CustomersWrite => ("customers.write", "Create, update and delete customers", Write, Standard, false),
            Scope::InvoicesRead => ("invoices.read", "List and view invoices", Read, Standard, false),
            Scope::InvoicesWrite => ("invoices.write", "Create and update invoices", Write, Standard, false),
            Scope::PaymentsRead => ("payments.read", "View payments", Read, Standard, false),
            Scope::PaymentsWrite => ("payments.write", "Process payments and refunds", Write, Standard, true),
            Scope::JobsRead => ("jobs.read", "List and view jobs and work orders", Read, Standard, false),
            Scope::JobsWrite => ("jobs.write", "Create and update jobs and work orders", Write, Standard, false),
            Scope::BookingsRead => ("bookings.read", "List and view bookings", Read, Standard, false),
            Scope::BookingsWrite => ("bookings.write", "Create and update bookings", Write, Standard, false),
            Scope::ProductsRead => ("products.read", "List and view products", Read, Standard, false),
            Scope::ProductsWrite => ("products.write", "Create and update products", Write, Standard, false),
            Scope::ServicesRead => ("services.read", "View service configurations", Read, Standard, false),
            Scope::ServicesWrite => ("services.write", "Change service configurations", Write, Standard, false),
            Scope::EmployeesRead => ("employees.read", "View employee records", Read, Standard, false),
            Scope::EmployeesWrite => ("employees.write", "Manage employee records", Write, Standard, true),
            Scope::SettingsRead => ("settings.read", "View organization settings", Read, Admin, false),
            Scope::SettingsWrite => ("settings.write", "Modify organization settings", Write, Admin, true),
            Scope::ReportsRead => ("reports.read", "Generate and view reports", Read, Standard, false),
            Scope::WebhooksManage => {
                // Admin and sensitive: an endpoint receives every key and integration event of
                // the organization, which is more than a standard resource's data.
                ("webhooks.manage", "Create, update and delete webhook endpoints", Write, Admin, true)
            }
            Scope::IntegrationsManage => {
                ("integrations.manage", "Connect, configure and disconnect integrations", Write, Admin, true)
            }
        };
        let live_only = matches!(self, Scope::WebhooksManage | Scope::IntegrationsManage);
        ScopeInfo { name, description, access, class, sensitive, live_only }
    }

    /// The scope's name, `resource.action`.
    pub fn as_str(self) -> &'static str {
        self.info().name
    }

    /// Accepts `customers.read` and the older `customers:read` spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        let normalised = raw.trim().replacen(':', ".", 1);
        Self::ALL.into_iter().find(|scope| scope.as_str() == normalised)
    }
}

/// Why a key may not make a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    /// A Read-Only key sent a method that writes.
    #[error("This API key is read-only and cannot send {0:?} requests.")]
    MethodNotAllowed(RequestMethod),
    /// The resource is an admin one and the key's level is not Admin, or the key holds a scope its
    /// level no longer reaches.
    #[error("This API key's scope level does not reach this resource; an admin key is required.")]
    LevelTooLow,
    /// The key lacks the scope the route needs.
    #[error("This API key is missing the {} scope.", .0.as_str())]
    MissingScope(Scope),
    /// The resource cannot be reached with this method at all (writing reports, say).
    #[error("This resource does not support this method.")]
    NotSupported,
    /// A test key asked for a live-only scope (integrations, webhooks), even one it holds.
    #[error(
        "Test keys cannot use the {} scope: it reaches the organization's live integrations and webhooks. Use a live key.",
        .0.as_str()
    )]
    LiveOnly(Scope),
}

/// The whole K4 check for one request: level against method, level against the resource class,
/// and the granular scope the route needs. `resource` is `None` for routes any valid key may
/// call (such as whoami).
pub fn authorize(
    level: ScopeLevel,
    scopes: &[Scope],
    method: RequestMethod,
    resource: Option<Resource>,
) -> Result<(), AccessDenied> {
    if !level.allows_method(method) {
        return Err(AccessDenied::MethodNotAllowed(method));
    }
    let Some(resource) = resource else {
        return Ok(());
    };
    let required = resource.required_scope(method.access()).ok_or(AccessDenied::NotSupported)?;
    if !level.allows_class(required.info().class) {
        return Err(AccessDenied::LevelTooLow);
    }
    if !scopes.contains(&required) {
        return Err(AccessDenied::MissingScope(required));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_and_accepts_the_colon_spelling() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            assert_eq!(Scope::parse(&scope.as_str().replace('.', ":")), Some(scope));
        }
        assert_eq!(Scope::parse("customers.delete"), None);
        assert_eq!(Scope::parse(""), None);
    }

    #[test]
    fn scope_names_are_unique_and_the_catalog_is_complete() {
        let mut names: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Scope::ALL.len());
        for required in ["reports.read", "webhooks.manage", "integrations.manage", "settings.write"] {
            assert!(names.contains(&required), "{required} missing");
        }
    }

    #[test]
    fn the_product_names_settings_write_and_employees_write_sensitive() {
        assert!(Scope::SettingsWrite.info().sensitive);
        assert!(Scope::EmployeesWrite.info().sensitive);
        assert!(!Scope::CustomersRead.info().sensitive);
    }

    #[test]
    fn read_only_keys_hold_only_standard_read_scopes() {
        assert!(ScopeLevel::ReadOnly.allows_scope(Scope::CustomersRead));
        assert!(!ScopeLevel::ReadOnly.allows_scope(Scope::CustomersWrite));
        assert!(!ScopeLevel::ReadOnly.allows_scope(Scope::WebhooksManage));
        assert!(!ScopeLevel::ReadOnly.allows_scope(Scope::SettingsRead));
        assert!(ScopeLevel::ReadWrite.allows_scope(Scope::CustomersWrite));
        assert!(!ScopeLevel::ReadWrite.allows_scope(Scope::SettingsWrite));
        assert!(!ScopeLevel::ReadWrite.allows_scope(Scope::IntegrationsManage));
        for scope in Scope::ALL {
            assert!(ScopeLevel::Admin.allows_scope(scope));
        }
    }

    #[test]
    fn only_admin_keys_reach_webhooks_which_only_admins_grant() {
        // An endpoint receives every key and integration event of the organization.
        assert!(!ScopeLevel::ReadWrite.allows_scope(Scope::WebhooksManage));
        assert!(Scope::WebhooksManage.info().sensitive);
        let held = [Scope::WebhooksManage];
        for method in [RequestMethod::Get, RequestMethod::Post, RequestMethod::Delete] {
            assert_eq!(
                authorize(ScopeLevel::ReadWrite, &held, method, Some(Resource::Webhooks)),
                Err(AccessDenied::LevelTooLow)
            );
            assert_eq!(authorize(ScopeLevel::Admin, &held, method, Some(Resource::Webhooks)), Ok(()));
        }
    }

    #[test]
    fn integrations_and_webhooks_are_live_only() {
        let live_only: Vec<_> = Scope::ALL.into_iter().filter(|s| s.info().live_only).collect();
        assert_eq!(live_only, [Scope::WebhooksManage, Scope::IntegrationsManage]);
    }

    #[test]
    fn read_only_keys_may_only_get() {
        let scopes = [Scope::CustomersRead, Scope::CustomersWrite];
        assert_eq!(authorize(ScopeLevel::ReadOnly, &scopes, RequestMethod::Get, Some(Resource::Customers)), Ok(()));
        for method in [RequestMethod::Post, RequestMethod::Put, RequestMethod::Patch, RequestMethod::Delete] {
            assert_eq!(
                authorize(ScopeLevel::ReadOnly, &scopes, method, Some(Resource::Customers)),
                Err(AccessDenied::MethodNotAllowed(method))
            );
        }
    }

    #[test]
    fn the_route_scope_must_be_held() {
        let scopes = [Scope::CustomersRead];
        assert_eq!(
            authorize(ScopeLevel::ReadWrite, &scopes, RequestMethod::Post, Some(Resource::Customers)),
            Err(AccessDenied::MissingScope(Scope::CustomersWrite))
        );
        assert_eq!(
            authorize(ScopeLevel::ReadWrite, &scopes, RequestMethod::Get, Some(Resource::Invoices)),
            Err(AccessDenied::MissingScope(Scope::InvoicesRead))
        );
        assert_eq!(authorize(ScopeLevel::ReadOnly, &[], RequestMethod::Get, None), Ok(()));
    }

    #[test]
    fn admin_resources_need_the_admin_level() {
        let scopes = [Scope::SettingsRead];
        assert_eq!(
            authorize(ScopeLevel::ReadWrite, &scopes, RequestMethod::Get, Some(Resource::Settings)),
            Err(AccessDenied::LevelTooLow)
        );
        assert_eq!(authorize(ScopeLevel::Admin, &scopes, RequestMethod::Get, Some(Resource::Settings)), Ok(()));
    }

    #[test]
    fn write_only_resources_refuse_unsupported_access() {
        assert_eq!(
            authorize(ScopeLevel::Admin, &[Scope::ReportsRead], RequestMethod::Post, Some(Resource::Reports)),
            Err(AccessDenied::NotSupported)
        );
    }
}
