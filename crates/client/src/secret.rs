//! [`Secret`]: a string the API shows once or takes in confidence (a key, a session token, a
//! signing secret, a password), which never prints itself.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string, zeroed on drop. `Debug` prints `Secret([REDACTED])`; read it with
/// [`Secret::expose_secret`]. The generated types use it for every field the OpenAPI document
/// marks `format: password`: a created key's `key`, a webhook endpoint's `secret`, a session
/// `token`, passwords and credentials in requests.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// The secret itself.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value.into())
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.into())
    }
}

impl From<SecretString> for Secret {
    fn from(value: SecretString) -> Self {
        Self(value)
    }
}

impl From<Secret> for SecretString {
    fn from(value: Secret) -> Self {
        value.0
    }
}

/// Requests carry secrets (a password to sign in, credentials to connect): serializing is the
/// one way out, into a request body.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.expose_secret())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret_and_serde_carries_it() {
        let secret = Secret::from("erp_live_0123456789");
        assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"erp_live_0123456789\"");
        let back: Secret = serde_json::from_str("\"whsec_abc\"").unwrap();
        assert_eq!(back.expose_secret(), "whsec_abc");
    }
}
