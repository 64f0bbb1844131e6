//! Organizations: the tenants. Every other record belongs to exactly one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Identifies an organization (P1): the tenant every record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrganizationId(pub Uuid);

impl std::fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An organization's display name: 1 to 200 characters once trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationName(String);

/// An organization name that is empty once trimmed, longer than 200 characters, or holds a
/// control character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("organization_name must be 1 to 200 characters")]
pub struct OrganizationNameError;

impl OrganizationName {
    /// The longest name allowed, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Trims `raw` and checks it: 1 to [`Self::MAX_CHARS`] characters, no control characters.
    pub fn parse(raw: &str) -> Result<Self, OrganizationNameError> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(OrganizationNameError);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant (P1): made at first-run setup (P3) with its first admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// The organization's id.
    pub id: OrganizationId,
    /// Its display name, as given at setup.
    pub name: OrganizationName,
    /// When the organization was created, at setup.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(OrganizationName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert!(OrganizationName::parse("   ").is_err());
        assert!(OrganizationName::parse(&"a".repeat(201)).is_err());
        assert!(OrganizationName::parse("a\u{0}b").is_err());
    }
}
