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
    /// Where the browser is sent to grant access.
    pub authorization_url: String,
    /// Where codes are exchanged and tokens refreshed.
    pub token_url: String,
    /// RFC 7009 revocation endpoint, when the provider offers one.
    pub revocation_url: Option<String>,
    /// The scopes asked for, sent space-separated.
    pub scopes: Vec<String>,
    /// Send a PKCE S256 challenge with the authorization request.
    pub pkce: bool,
    /// How its refresh tokens behave.
    pub refresh_tokens: RefreshTokens,
}

/// Which of a connection's two tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// The short-lived token sent with API calls.
    Access,
    /// The token that gets new access tokens.
    Refresh,
}

impl TokenKind {
    /// Its name as a sealed field: `oauth_access_token` or `oauth_refresh_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "oauth_access_token",
            TokenKind::Refresh => "oauth_refresh_token",
        }
    }
}
