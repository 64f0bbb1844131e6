//! Loads the provider catalog: the file compiled into the binary, the deployment's extra file,
//! and per-provider switches from the settings. The domain validates the result.

use std::collections::{HashMap, HashSet};

use otesse_domain::integration::{
    AuthType, Catalog, Category, CredentialField, FieldSpec, OAuthSpec, ProviderDefinition, ProviderSlug,
    RefreshTokens, ResourceType,
};
use serde::Deserialize;

use crate::config::ProviderSettings;

/// The providers the product ships with.
pub const BUILT_IN: &str = include_str!("../catalog/providers.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    providers: Vec<ProviderEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEntry {
    slug: String,
    name: String,
    description: String,
    logo_url: String,
    category: String,
    auth_type: String,
    #[serde(default)]
    fields: Vec<FieldEntry>,
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(default)]
    resource_types: Vec<String>,
    docs_url: String,
    #[serde(default = "yes")]
    active: bool,
    /// `auth_type = "oauth2"`: the authorization server.
    oauth: Option<OAuthEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthEntry {
    authorization_url: String,
    token_url: String,
    revocation_url: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    pkce: bool,
    #[serde(default)]
    refresh_token_rotation: bool,
    refresh_token_lifetime_days: Option<u32>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldEntry {
    field: String,
    label: String,
    #[serde(default = "yes")]
    required: bool,
    #[serde(default = "default_max")]
    max_length: usize,
}

fn default_max() -> usize {
    512
}

fn parse(text: &str, origin: &str) -> Result<Vec<ProviderDefinition>, String> {
    let file: CatalogFile = toml_from_str(text).map_err(|e| format!("{origin}: {e}"))?;
    file.providers.into_iter().map(|p| definition(p).map_err(|e| format!("{origin}: {e}"))).collect()
}

fn toml_from_str(text: &str) -> Result<CatalogFile, String> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| e.to_string())
}

fn definition(entry: ProviderEntry) -> Result<ProviderDefinition, String> {
    let slug = ProviderSlug::parse(&entry.slug).ok_or_else(|| format!("bad slug {:?}", entry.slug))?;
    let category =
        Category::parse(&entry.category).ok_or_else(|| format!("{slug}: unknown category {}", entry.category))?;
    let auth_type =
        AuthType::parse(&entry.auth_type).ok_or_else(|| format!("{slug}: unknown auth_type {}", entry.auth_type))?;
    let fields = entry
        .fields
        .into_iter()
        .map(|f| {
            let field = CredentialField::parse(&f.field).ok_or_else(|| format!("{slug}: unknown field {}", f.field))?;
            Ok(FieldSpec { field, label: f.label, required: f.required, max_length: f.max_length.clamp(1, 4096) })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let dependencies = entry
        .dependencies
        .iter()
        .map(|d| ProviderSlug::parse(d).ok_or_else(|| format!("{slug}: bad dependency {d:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    let resource_types = entry
        .resource_types
        .iter()
        .map(|r| ResourceType::parse(r).ok_or_else(|| format!("{slug}: unknown resource type {r}")))
        .collect::<Result<Vec<_>, _>>()?;
    let oauth = match entry.oauth {
        Some(o) => {
            for url in [Some(&o.authorization_url), Some(&o.token_url), o.revocation_url.as_ref()].into_iter().flatten()
            {
                let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
                if !ok {
                    return Err(format!("{slug}: oauth endpoint {url:?} is not an http(s) URL"));
                }
            }
            if auth_type != AuthType::OAuth2 {
                return Err(format!("{slug}: an oauth table needs auth_type = \"oauth2\""));
            }
            Some(OAuthSpec {
                authorization_url: o.authorization_url,
                token_url: o.token_url,
                revocation_url: o.revocation_url,
                scopes: o.scopes,
                pkce: o.pkce,
                refresh_tokens: RefreshTokens {
                    rotating: o.refresh_token_rotation,
                    lifetime_days: o.refresh_token_lifetime_days,
                },
            })
        }
        None => None,
    };
    Ok(ProviderDefinition {
        slug,
        name: entry.name,
        description: entry.description,
        logo_url: entry.logo_url,
        category,
        auth_type,
        fields,
        dependencies,
        resource_types,
        docs_url: entry.docs_url,
        active: entry.active,
        oauth,
    })
}

/// The built-in catalog, plus `extra` (a deployment's file contents), with each provider's
/// `active` switch from the settings applied.
pub fn load(extra: Option<(&str, &str)>, settings: &HashMap<String, ProviderSettings>) -> Result<Catalog, String> {
    let mut providers = parse(BUILT_IN, "built-in catalog")?;
    if let Some((origin, text)) = extra {
        for provider in parse(text, origin)? {
            match providers.iter_mut().find(|p| p.slug == provider.slug) {
                Some(existing) => *existing = provider,
                None => providers.push(provider),
            }
        }
    }
    for (slug, switches) in settings {
        if let Some(active) = switches.active {
            let provider = providers
                .iter_mut()
                .find(|p| p.slug.as_str() == slug)
                .ok_or_else(|| format!("providers.{slug}: no such provider in the catalog"))?;
            provider.active = active;
        }
    }
    Catalog::new(providers).map_err(|e| e.to_string())
}

/// The catalog's providers that `otesse-providers` has no client module for: they can be
/// listed and connected to, but their health checks report "no client for provider".
pub fn without_client(catalog: &Catalog) -> impl Iterator<Item = &ProviderSlug> {
    let clients: HashSet<&str> = otesse_providers::slugs().collect();
    catalog.all().iter().map(|p| &p.slug).filter(move |slug| !clients.contains(slug.as_str()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_built_in_catalog_has_the_eight_providers() {
        let catalog = load(None, &HashMap::new()).unwrap();
        let slugs: Vec<_> = catalog.all().iter().map(|p| p.slug.as_str()).collect();
        assert_eq!(slugs, ["postmark", "stripe", "mapbox", "google_maps", "geoapify", "anthropic", "quo", "xero"]);
        for provider in catalog.all() {
            assert!(provider.active);
            assert!(provider.docs_url.starts_with("https://"));
            match provider.auth_type {
                AuthType::ApiKey => {
                    assert!(provider.fields.iter().any(|f| f.field == CredentialField::ApiKey && f.required))
                }
                AuthType::OAuth2 => assert!(provider.fields.is_empty() && provider.oauth.is_some()),
            }
        }
        let xero = catalog.get("xero").unwrap().oauth.clone().unwrap();
        assert_eq!(xero.token_url, "https://identity.xero.com/connect/token");
        assert!(xero.scopes.contains(&"offline_access".to_owned()), "a refresh token needs offline_access");
        assert_eq!(xero.refresh_tokens, RefreshTokens { rotating: true, lifetime_days: Some(60) });
        assert_eq!(catalog.get("quo").unwrap().resource_types, [ResourceType::PhoneNumbers]);
    }

    /// The provider client's registry is a second list of the providers; it must name the
    /// same slugs as the built-in catalog, so a provider added to only one of them fails here.
    #[test]
    fn the_built_in_catalog_and_the_provider_clients_name_the_same_providers() {
        let catalog = load(None, &HashMap::new()).unwrap();
        let in_catalog: BTreeSet<&str> = catalog.all().iter().map(|p| p.slug.as_str()).collect();
        let with_client: BTreeSet<&str> = otesse_providers::slugs().collect();
        assert_eq!(in_catalog, with_client);
        assert_eq!(without_client(&catalog).count(), 0);
    }

    #[test]
    fn a_deployment_can_add_and_deactivate_providers() {
        let extra = r#"
            [[providers]]
            slug = "twilio"
            name = "Twilio"
            description = "SMS"
            logo_url = "/t.svg"
            category = "communication"
            auth_type = "api_key"
            fields = [{ field = "api_key", label = "Auth Token" }, { field = "account_id", label = "Account SID" }]
            dependencies = ["postmark"]
            docs_url = "https://www.twilio.com/docs"
        "#;
        let mut settings = HashMap::new();
        settings.insert("stripe".to_owned(), ProviderSettings { active: Some(false), ..Default::default() });
        let catalog = load(Some(("extra.toml", extra)), &settings).unwrap();
        assert_eq!(catalog.all().len(), 9);
        assert_eq!(catalog.get("twilio").unwrap().fields.len(), 2);
        assert!(!catalog.get("stripe").unwrap().active);
        let missing: Vec<_> = without_client(&catalog).map(ProviderSlug::as_str).collect();
        assert_eq!(missing, ["twilio"]);
    }

    #[test]
    fn a_broken_catalog_is_refused_with_its_origin() {
        let bad = "[[providers]]\nslug = \"x\"\n";
        assert!(load(Some(("extra.toml", bad)), &HashMap::new()).unwrap_err().contains("extra.toml"));
        let mut settings = HashMap::new();
        settings.insert("nope".to_owned(), ProviderSettings { active: Some(false), ..Default::default() });
        assert!(load(None, &settings).is_err());
    }
}
