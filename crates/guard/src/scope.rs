//! The scopes of Otesse's catalog, as types for [`Authorized`](crate::Authorized).
//!
//! A service with a scope of its own names it with [`required_scope!`](crate::required_scope).

/// Declares a type that names a scope, for [`Authorized`](crate::Authorized).
///
/// ```
/// otesse_guard::required_scope!(
///     /// Lets a key read the service's widgets.
///     WidgetsRead = "widgets.read"
/// );
/// assert_eq!(<WidgetsRead as otesse_guard::RequiredScope>::SCOPE, "widgets.read");
/// ```
#[macro_export]
macro_rules! required_scope {
    ($($(#[$doc:meta])* $name:ident = $scope:literal),+ $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl $crate::RequiredScope for $name {
            const SCOPE: &'static str = $scope;
        }
    )+};
}

required_scope! {
    /// `customers.read`
    CustomersRead = "customers.read",
    /// `customers.write`
    CustomersWrite = "customers.write",
    /// `invoices.read`
    InvoicesRead = "invoices.read",
    /// `invoices.write`
    InvoicesWrite = "invoices.write",
    /// `payments.read`
    PaymentsRead = "payments.read",
    /// `payments.write`
    PaymentsWrite = "payments.write",
    /// `jobs.read`
    JobsRead = "jobs.read",
    /// `jobs.write`
    JobsWrite = "jobs.write",
    /// `bookings.read`
    BookingsRead = "bookings.read",
    /// `bookings.write`
    BookingsWrite = "bookings.write",
    /// `products.read`
    ProductsRead = "products.read",
    /// `products.write`
    ProductsWrite = "products.write",
    /// `services.read`
    ServicesRead = "services.read",
    /// `services.write`
    ServicesWrite = "services.write",
    /// `employees.read`
    EmployeesRead = "employees.read",
    /// `employees.write`
    EmployeesWrite = "employees.write",
    /// `settings.read`
    SettingsRead = "settings.read",
    /// `settings.write`
    SettingsWrite = "settings.write",
    /// `reports.read`
    ReportsRead = "reports.read",
    /// `webhooks.manage`
    WebhooksManage = "webhooks.manage",
    /// `integrations.manage`
    IntegrationsManage = "integrations.manage",
}

/// Every scope above, for the test that holds them to Otesse's catalog.
pub const ALL: [&str; 21] = [
    <CustomersRead as crate::RequiredScope>::SCOPE,
    <CustomersWrite as crate::RequiredScope>::SCOPE,
    <InvoicesRead as crate::RequiredScope>::SCOPE,
    <InvoicesWrite as crate::RequiredScope>::SCOPE,
    <PaymentsRead as crate::RequiredScope>::SCOPE,
    <PaymentsWrite as crate::RequiredScope>::SCOPE,
    <JobsRead as crate::RequiredScope>::SCOPE,
    <JobsWrite as crate::RequiredScope>::SCOPE,
    <BookingsRead as crate::RequiredScope>::SCOPE,
    <BookingsWrite as crate::RequiredScope>::SCOPE,
    <ProductsRead as crate::RequiredScope>::SCOPE,
    <ProductsWrite as crate::RequiredScope>::SCOPE,
    <ServicesRead as crate::RequiredScope>::SCOPE,
    <ServicesWrite as crate::RequiredScope>::SCOPE,
    <EmployeesRead as crate::RequiredScope>::SCOPE,
    <EmployeesWrite as crate::RequiredScope>::SCOPE,
    <SettingsRead as crate::RequiredScope>::SCOPE,
    <SettingsWrite as crate::RequiredScope>::SCOPE,
    <ReportsRead as crate::RequiredScope>::SCOPE,
    <WebhooksManage as crate::RequiredScope>::SCOPE,
    <IntegrationsManage as crate::RequiredScope>::SCOPE,
];
