//! The leaf types of OAuth2 that the catalog and the sealed secrets name: what a provider
//! declares about its authorization server, and which token a sealed token is.

/// How a provider's refresh tokens behave (read from its documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokens {
    /// Each refresh answers a new refresh token and spends the old one.
    pub rotating: bool,
    /// How long an unused refresh token lives, when the provider says.
    pub lifetime_days: Option<u32>,
}

/// A catalog entry's authorization server (`auth_type = "oauth2"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSpec {
    pub authorization_url: String,
    pub token_url: String,
    /// RFC 7009 revocation endpoint, when the provider offers one.
    pub revocation_url: Option<String>,
    pub scopes: Vec<String>,
    /// Send a PKCE S256 challenge with the authorization request.
    pub pkce: bool,
    pub refresh_tokens: RefreshTokens,
}

/// Which of a connection's two tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "oauth_access_token",
            TokenKind::Refresh => "oauth_refresh_token",
        }
    }
}
