//! Post-connection resources with a default (I11): Postmark sender emails and Quo phone
//! numbers. Each belongs to the organization's instance of the provider; among each kind
//! exactly one is the default whenever any exist.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ResourceType;
use crate::organization::OrganizationId;
use crate::user::Email;

/// Which kind of contact resource (I11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContactKind {
    /// A Postmark sender address.
    SenderEmail,
    /// A Quo phone number.
    PhoneNumber,
}

impl ContactKind {
    /// The name clients see: `sender_email` or `phone_number`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::SenderEmail => "sender_email",
            ContactKind::PhoneNumber => "phone_number",
        }
    }

    /// The kind named `raw` ([`Self::as_str`]), if there is one.
    pub fn parse(raw: &str) -> Option<Self> {
        [ContactKind::SenderEmail, ContactKind::PhoneNumber].into_iter().find(|k| k.as_str() == raw)
    }

    /// The catalog resource type that offers this kind.
    pub fn resource_type(self) -> ResourceType {
        match self {
            ContactKind::SenderEmail => ResourceType::SenderEmails,
            ContactKind::PhoneNumber => ResourceType::PhoneNumbers,
        }
    }

    /// Validates and normalises a value: an email address, or an E.164 number (`+` and 2 to 15
    /// digits, no leading zero).
    pub fn parse_value(self, raw: &str) -> Result<String, ContactError> {
        match self {
            ContactKind::SenderEmail => {
                Email::parse(raw).map(|e| e.as_str().to_owned()).map_err(|_| ContactError::InvalidEmail)
            }
            ContactKind::PhoneNumber => {
                let number = raw.trim();
                let digits = number.strip_prefix('+').unwrap_or_default();
                let ok = (2..=15).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && !digits.starts_with('0');
                if ok { Ok(number.to_owned()) } else { Err(ContactError::InvalidPhone) }
            }
        }
    }
}

/// A sender email or phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactResource {
    /// The resource's id.
    pub id: Uuid,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// The organization's instance of the provider that holds it.
    pub instance_id: Uuid,
    /// Sender email or phone number.
    pub kind: ContactKind,
    /// The address (lower-cased) or the E.164 number.
    pub value: String,
    /// A display name ("Billing", "Front desk").
    pub label: String,
    /// Whether it is the default of its kind: exactly one is while any exist.
    pub is_default: bool,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When its value, label or default flag last changed.
    pub updated_at: DateTime<Utc>,
}

/// Why a sender email or phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    /// The sender address is not an email address.
    #[error("email is not a valid email address")]
    InvalidEmail,
    /// The phone number is not E.164: `+`, then 2 to 15 digits, no leading zero.
    #[error("phone number must be in E.164 format, e.g. +14155550123")]
    InvalidPhone,
    /// The label is longer than 100 characters or holds a control character.
    #[error("label must be at most 100 characters, without control characters")]
    InvalidLabel,
    /// The instance already lists this value for this kind.
    #[error("This value is already listed.")]
    Duplicate,
}

/// A contact's label: trimmed, empty when absent, at most 100 characters without control
/// characters.
pub fn parse_label(raw: Option<&str>) -> Result<String, ContactError> {
    let label = raw.unwrap_or_default().trim();
    if label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(ContactError::InvalidLabel);
    }
    Ok(label.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_must_be_e164() {
        let phone = ContactKind::PhoneNumber;
        assert_eq!(phone.parse_value(" +14155550123 ").unwrap(), "+14155550123");
        for bad in ["14155550123", "+0155550123", "+1", "+1415555012345678", "+1 415 555", "+1415abc", ""] {
            assert_eq!(phone.parse_value(bad), Err(ContactError::InvalidPhone), "{bad}");
        }
    }

    #[test]
    fn sender_emails_are_normalised() {
        let email = ContactKind::SenderEmail;
        assert_eq!(email.parse_value("Billing@Acme.Test").unwrap(), "billing@acme.test");
        assert_eq!(email.parse_value("nope"), Err(ContactError::InvalidEmail));
    }

    #[test]
    fn labels_are_bounded() {
        assert_eq!(parse_label(None).unwrap(), "");
        assert!(parse_label(Some(&"l".repeat(101))).is_err());
        assert!(parse_label(Some("a\tb")).is_err());
    }
}
