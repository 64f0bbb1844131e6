//! The provider catalog (I1, I2): data, not code. The server loads it from a file compiled
//! into the binary plus the deployment's additions; this module holds the validated shape.

/// A provider's identifier: `[a-z0-9_]`, 1 to 40 characters (`postmark`, `google_maps`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderSlug(String);

impl ProviderSlug {
    /// The slug `raw`, if it is 1 to 40 characters of `[a-z0-9_]`.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 40
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    /// The slug, as in routes (`/v1/integrations/providers/{slug}`) and configuration keys.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProviderSlug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A provider's category (I1), the catalog's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// `communication`: email and phone (Postmark, Quo).
    Communication,
    /// `payment`: Stripe.
    Payment,
    /// `mapping`: Mapbox, Google Maps, Geoapify.
    Mapping,
    /// `ai`: Anthropic.
    Ai,
    /// `accounting`: Xero.
    Accounting,
}

impl Category {
    /// Every category, in the catalog's order.
    pub const ALL: [Category; 5] =
        [Category::Communication, Category::Payment, Category::Mapping, Category::Ai, Category::Accounting];

    /// The name clients see: `communication`, `payment`, `mapping` or `ai`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Communication => "communication",
            Category::Payment => "payment",
            Category::Mapping => "mapping",
            Category::Ai => "ai",
            Category::Accounting => "accounting",
        }
    }

    /// Case-insensitive: `Mapping`, `mapping`, `AI`.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(raw.trim()))
    }
}

/// How a provider is connected (I1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// `api_key`: the user types credentials into the connect form (I4), or the deployment
    /// supplies them (I13).
    ApiKey,
    /// `oauth2`: the user grants access at the provider (I12).
    OAuth2,
}

impl AuthType {
    /// The name clients see: `api_key` or `oauth2`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::ApiKey => "api_key",
            AuthType::OAuth2 => "oauth2",
        }
    }

    /// The auth type named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        [AuthType::ApiKey, AuthType::OAuth2].into_iter().find(|t| t.as_str() == raw)
    }
}

/// The credential fields a provider may ask for (seed 002's connect form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialField {
    /// `api_key`: the provider's API key or token; every API-key provider asks for it.
    ApiKey,
    /// `api_secret`: a second secret, for providers that need one.
    ApiSecret,
    /// `account_id`: an account or project identifier, for providers that need one.
    AccountId,
}

impl CredentialField {
    /// Every field, in the form's order.
    pub const ALL: [CredentialField; 3] =
        [CredentialField::ApiKey, CredentialField::ApiSecret, CredentialField::AccountId];

    /// The name of the field in the connect body: `api_key`, `api_secret` or `account_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialField::ApiKey => "api_key",
            CredentialField::ApiSecret => "api_secret",
            CredentialField::AccountId => "account_id",
        }
    }

    /// The field named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == raw)
    }
}

/// One field of a provider's connect form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// Which credential the field takes.
    pub field: CredentialField,
    /// The label the form shows (`Server API token`, ...).
    pub label: String,
    /// Whether connecting needs it.
    pub required: bool,
    /// Longest accepted value, in characters.
    pub max_length: usize,
}

/// What can be configured on a provider after connecting (I11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// `sender_emails`: Postmark's sender addresses, one of them the default.
    SenderEmails,
    /// `phone_numbers`: Quo's phone numbers, one of them the default.
    PhoneNumbers,
    /// `webhook_endpoints`: Stripe's inbound webhook endpoints (W4).
    WebhookEndpoints,
    /// `connection_status`: Stripe's account status.
    ConnectionStatus,
    /// `model_selection`: the Anthropic model the organization uses.
    ModelSelection,
    /// `usage_monitoring`: Anthropic's usage by day.
    UsageMonitoring,
    /// `active_toggle`: turning a mapping provider on or off without disconnecting it.
    ActiveToggle,
}

impl ResourceType {
    /// Every resource type.
    pub const ALL: [ResourceType; 7] = [
        ResourceType::SenderEmails,
        ResourceType::PhoneNumbers,
        ResourceType::WebhookEndpoints,
        ResourceType::ConnectionStatus,
        ResourceType::ModelSelection,
        ResourceType::UsageMonitoring,
        ResourceType::ActiveToggle,
    ];

    /// The name the catalog file and clients use: `sender_emails`, `active_toggle`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::SenderEmails => "sender_emails",
            ResourceType::PhoneNumbers => "phone_numbers",
            ResourceType::WebhookEndpoints => "webhook_endpoints",
            ResourceType::ConnectionStatus => "connection_status",
            ResourceType::ModelSelection => "model_selection",
            ResourceType::UsageMonitoring => "usage_monitoring",
            ResourceType::ActiveToggle => "active_toggle",
        }
    }

    /// The resource type named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

/// A catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderDefinition {
    /// The provider's slug: its identifier everywhere.
    pub slug: ProviderSlug,
    /// Its display name (`Google Maps`).
    pub name: String,
    /// One or two sentences on what it does for the organization.
    pub description: String,
    /// Where its logo is served from.
    pub logo_url: String,
    /// Its category.
    pub category: Category,
    /// How it is connected.
    pub auth_type: AuthType,
    /// The connect form's fields, in order.
    pub fields: Vec<FieldSpec>,
    /// Providers that must be connected first (I3).
    pub dependencies: Vec<ProviderSlug>,
    /// What can be configured on it once connected (I11).
    pub resource_types: Vec<ResourceType>,
    /// A link to the provider's API documentation (the call the health check makes).
    pub docs_url: String,
    /// Whether it may be connected; an inactive provider is listed, marked, but refused.
    pub active: bool,
    /// The authorization server of an `oauth2` provider.
    pub oauth: Option<super::OAuthSpec>,
}

/// Why a catalog is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Two entries share a slug.
    #[error("provider {0} is defined twice")]
    Duplicate(String),
    /// An entry depends on a slug the catalog does not hold.
    #[error("provider {provider} depends on unknown provider {dependency}")]
    UnknownDependency {
        /// The entry's slug.
        provider: String,
        /// The slug it depends on.
        dependency: String,
    },
    /// An API-key provider does not ask for an `api_key` field.
    #[error("provider {0} must ask for an api_key field")]
    NoApiKeyField(String),
    /// An `oauth2` entry without its authorization or token endpoint.
    #[error("provider {0} uses oauth2 and must name its authorization and token endpoints")]
    NoOAuthEndpoints(String),
}

/// The validated catalog: unique slugs, known dependencies, every API-key provider asking for
/// an `api_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    providers: Vec<ProviderDefinition>,
}

impl Catalog {
    /// Validates `providers`: unique slugs, known dependencies, an `api_key` field for every
    /// API-key provider.
    pub fn new(providers: Vec<ProviderDefinition>) -> Result<Self, CatalogError> {
        for (i, p) in providers.iter().enumerate() {
            if providers[..i].iter().any(|q| q.slug == p.slug) {
                return Err(CatalogError::Duplicate(p.slug.to_string()));
            }
            for dep in &p.dependencies {
                if !providers.iter().any(|q| &q.slug == dep) {
                    return Err(CatalogError::UnknownDependency {
                        provider: p.slug.to_string(),
                        dependency: dep.to_string(),
                    });
                }
            }
            if p.auth_type == AuthType::ApiKey && !p.fields.iter().any(|f| f.field == CredentialField::ApiKey) {
                return Err(CatalogError::NoApiKeyField(p.slug.to_string()));
            }
            if p.auth_type == AuthType::OAuth2 && p.oauth.is_none() {
                return Err(CatalogError::NoOAuthEndpoints(p.slug.to_string()));
            }
        }
        Ok(Self { providers })
    }

    /// The entry with slug `slug`, active or not.
    pub fn get(&self, slug: &str) -> Option<&ProviderDefinition> {
        self.providers.iter().find(|p| p.slug.as_str() == slug)
    }

    /// Entries matching `q` (case-insensitive, in name, slug, description or category) and
    /// `category`, in catalog order. Inactive providers are listed (marked) so a deployment's
    /// users see why one cannot be connected.
    pub fn search(&self, q: Option<&str>, category: Option<Category>) -> Vec<&ProviderDefinition> {
        let needle = q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
        self.providers
            .iter()
            .filter(|p| category.is_none_or(|c| p.category == c))
            .filter(|p| {
                needle.as_ref().is_none_or(|n| {
                    p.name.to_lowercase().contains(n)
                        || p.slug.as_str().contains(n.as_str())
                        || p.description.to_lowercase().contains(n)
                        || p.category.as_str().contains(n.as_str())
                })
            })
            .collect()
    }

    /// Every entry, in catalog order.
    pub fn all(&self) -> &[ProviderDefinition] {
        &self.providers
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn provider(slug: &str, category: Category, deps: &[&str]) -> ProviderDefinition {
        ProviderDefinition {
            slug: ProviderSlug::parse(slug).unwrap(),
            name: slug.to_uppercase(),
            description: format!("{slug} does things"),
            logo_url: format!("/logos/{slug}.svg"),
            category,
            auth_type: AuthType::ApiKey,
            fields: vec![FieldSpec {
                field: CredentialField::ApiKey,
                label: "API Key".into(),
                required: true,
                max_length: 256,
            }],
            dependencies: deps.iter().map(|d| ProviderSlug::parse(d).unwrap()).collect(),
            resource_types: vec![],
            docs_url: format!("https://docs.example/{slug}"),
            active: true,
            oauth: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::provider;
    use super::*;

    #[test]
    fn slugs_are_lowercase_identifiers() {
        assert!(ProviderSlug::parse("google_maps").is_some());
        for bad in ["", "Google", "a-b", "a b", &"x".repeat(41)] {
            assert!(ProviderSlug::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_catalog_refuses_duplicates_unknown_dependencies_and_keyless_providers() {
        let dup = Catalog::new(vec![provider("a", Category::Ai, &[]), provider("a", Category::Ai, &[])]);
        assert_eq!(dup.unwrap_err(), CatalogError::Duplicate("a".into()));
        let unknown = Catalog::new(vec![provider("a", Category::Ai, &["b"])]);
        assert!(matches!(unknown.unwrap_err(), CatalogError::UnknownDependency { .. }));
        let mut keyless = provider("a", Category::Ai, &[]);
        keyless.fields.clear();
        assert_eq!(Catalog::new(vec![keyless]).unwrap_err(), CatalogError::NoApiKeyField("a".into()));
    }

    #[test]
    fn search_filters_by_text_and_category() {
        let catalog = Catalog::new(vec![
            provider("postmark", Category::Communication, &[]),
            provider("mapbox", Category::Mapping, &[]),
            provider("geoapify", Category::Mapping, &[]),
        ])
        .unwrap();
        let slugs =
            |found: Vec<&ProviderDefinition>| found.iter().map(|p| p.slug.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(slugs(catalog.search(None, Some(Category::Mapping))), ["mapbox", "geoapify"]);
        assert_eq!(slugs(catalog.search(Some("POST"), None)), ["postmark"]);
        assert_eq!(slugs(catalog.search(Some("box"), Some(Category::Mapping))), ["mapbox"]);
        assert_eq!(slugs(catalog.search(Some("mapping"), None)), ["mapbox", "geoapify"], "the category matches too");
        assert_eq!(slugs(catalog.search(Some("  "), None)).len(), 3);
        assert!(catalog.search(Some("stripe"), None).is_empty());
        assert_eq!(Category::parse("AI"), Some(Category::Ai));
    }
}
