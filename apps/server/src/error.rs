//! The one error shape (P4): `{"error": {"type", "code", "message"}}`, decided in one place.
//!
//! Every failure a client can see is an [`ErrorCode`]; [`ErrorCode::spec`] is the exhaustive
//! table of its HTTP status and error type. Domain errors become codes through the `From`
//! impls below, so a new domain error that is not mapped does not compile.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use otesse_domain::StorageError;
use otesse_domain::api_key::{AccessDenied, CreateKeyError, KeyAccessError, RotateKeyError, VerifyError};
use otesse_domain::auth::{AddUserError, SessionError, SetupError, SignInError};
use otesse_domain::caller::Denied;
use otesse_domain::customer::CustomerError;
use otesse_domain::page::InvalidPageSize;
use serde::Serialize;
use utoipa::ToSchema;

/// What went wrong, for programs to branch on (`error.code`). Every code is listed in
/// [`ErrorCode::ALL`]; its status and type come from [`ErrorCode::spec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // 400: the request itself is wrong.
    InvalidJson,
    InvalidBody,
    InvalidParameter,
    ApiKeyInQuery,
    WebhookSignatureInvalid,
    /// A user-configured URL that the SSRF guard refuses (W5).
    UrlNotAllowed,
    /// A password change whose current password is wrong.
    CurrentPasswordInvalid,
    /// A password reset token that is unknown, used or expired.
    ResetTokenInvalid,
    /// An OAuth callback whose `state` is unknown, used or expired.
    OauthStateInvalid,
    /// The user denied access on the provider's consent page.
    AuthorizationDenied,
    /// The provider ended the authorization with another error, or refused the code.
    AuthorizationFailed,
    // 401: who are you?
    MissingCredentials,
    ApiKeyMalformed,
    ApiKeyInvalid,
    ApiKeyRevoked,
    ApiKeyExpired,
    ApiKeyRequired,
    SessionRequired,
    SessionInvalid,
    InvalidCredentials,
    /// A service token that is not one (the verification API).
    ServiceTokenInvalid,
    // 403: you may not.
    PermissionDenied,
    SetupTokenInvalid,
    IpNotAllowed,
    ReadOnlyKey,
    ScopeLevelTooLow,
    ScopeMissing,
    /// A change through the dashboard's session cookie without the session's CSRF token.
    CsrfTokenInvalid,
    // 404 / 405
    ResourceMissing,
    MethodNotAllowed,
    // 409: conflicts with the current state.
    NameTaken,
    ApiKeyLimitReached,
    EmailTaken,
    SetupAlreadyCompleted,
    KeyNotActive,
    KeyAlreadyRotated,
    AlreadyConnected,
    ResourceExists,
    DependencyMissing,
    ProviderInactive,
    AdminKeyRequired,
    ResourceLimitReached,
    IdempotencyInProgress,
    /// A retry of a request whose answer carried a secret shown once: not shown again.
    IdempotencySecretShown,
    /// The change would leave the organization without an active admin.
    LastAdmin,
    /// An OAuth provider without the deployment's client id and secret.
    ProviderNotConfigured,
    /// An OAuth connection the provider no longer honours: connect again.
    ReauthorizationRequired,
    IdempotencyError,
    // 422: the provider refused the credentials.
    ProviderCredentialsInvalid,
    // 413, 415
    PayloadTooLarge,
    UnsupportedMediaType,
    // 429
    RateLimited,
    // 5xx
    InternalError,
    ServiceUnavailable,
    /// 502: the provider could not be reached.
    ProviderUnreachable,
    /// 503: the provider rate-limited the check.
    ProviderRateLimited,
}

/// The `type` field: the family of the error, as Stripe clients expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequestError,
    AuthenticationError,
    PermissionError,
    RateLimitError,
    ApiError,
}

impl ErrorCode {
    /// Every code, in declaration order. Complete by construction: see [`position`].
    pub const ALL: [ErrorCode; 56] = {
        use ErrorCode::*;
        [
            InvalidJson,
            InvalidBody,
            InvalidParameter,
            ApiKeyInQuery,
            WebhookSignatureInvalid,
            UrlNotAllowed,
            CurrentPasswordInvalid,
            ResetTokenInvalid,
            OauthStateInvalid,
            AuthorizationDenied,
            AuthorizationFailed,
            MissingCredentials,
            ApiKeyMalformed,
            ApiKeyInvalid,
            ApiKeyRevoked,
            ApiKeyExpired,
            ApiKeyRequired,
            SessionRequired,
            SessionInvalid,
            InvalidCredentials,
            ServiceTokenInvalid,
            PermissionDenied,
            SetupTokenInvalid,
            IpNotAllowed,
            ReadOnlyKey,
            ScopeLevelTooLow,
            ScopeMissing,
            CsrfTokenInvalid,
            ResourceMissing,
            MethodNotAllowed,
            NameTaken,
            ApiKeyLimitReached,
            EmailTaken,
            SetupAlreadyCompleted,
            KeyNotActive,
            KeyAlreadyRotated,
            AlreadyConnected,
            ResourceExists,
            DependencyMissing,
            ProviderInactive,
            AdminKeyRequired,
            ResourceLimitReached,
            IdempotencyInProgress,
            IdempotencySecretShown,
            LastAdmin,
            ProviderNotConfigured,
            ReauthorizationRequired,
            IdempotencyError,
            ProviderCredentialsInvalid,
            PayloadTooLarge,
            UnsupportedMediaType,
            RateLimited,
            InternalError,
            ServiceUnavailable,
            ProviderUnreachable,
            ProviderRateLimited,
        ]
    };

    /// The table: status and type of every code.
    pub fn spec(self) -> (StatusCode, ErrorType) {
        use ErrorCode::*;
        use ErrorType::*;
        match self {
            InvalidJson
            | InvalidBody
            | InvalidParameter
            | ApiKeyInQuery
            | WebhookSignatureInvalid
            | UrlNotAllowed
            | CurrentPasswordInvalid
            | ResetTokenInvalid
            | OauthStateInvalid
            | AuthorizationDenied
            | AuthorizationFailed => (StatusCode::BAD_REQUEST, InvalidRequestError),
            MissingCredentials | ApiKeyMalformed | ApiKeyInvalid | ApiKeyRevoked | ApiKeyExpired | ApiKeyRequired
            | SessionRequired | SessionInvalid | InvalidCredentials | ServiceTokenInvalid => {
                (StatusCode::UNAUTHORIZED, AuthenticationError)
            }
            PermissionDenied | SetupTokenInvalid | IpNotAllowed | ReadOnlyKey | ScopeLevelTooLow | ScopeMissing
            | CsrfTokenInvalid => (StatusCode::FORBIDDEN, PermissionError),
            ResourceMissing => (StatusCode::NOT_FOUND, InvalidRequestError),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, InvalidRequestError),
            NameTaken
            | ApiKeyLimitReached
            | EmailTaken
            | SetupAlreadyCompleted
            | KeyNotActive
            | KeyAlreadyRotated
            | AlreadyConnected
            | ResourceExists
            | DependencyMissing
            | ProviderInactive
            | AdminKeyRequired
            | ResourceLimitReached
            | IdempotencyInProgress
            | IdempotencySecretShown
            | LastAdmin
            | ProviderNotConfigured
            | ReauthorizationRequired => (StatusCode::CONFLICT, InvalidRequestError),
            IdempotencyError => (StatusCode::UNPROCESSABLE_ENTITY, InvalidRequestError),
            ProviderCredentialsInvalid => (StatusCode::UNPROCESSABLE_ENTITY, InvalidRequestError),
            PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, InvalidRequestError),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, InvalidRequestError),
            RateLimited => (StatusCode::TOO_MANY_REQUESTS, RateLimitError),
            InternalError => (StatusCode::INTERNAL_SERVER_ERROR, ApiError),
            ServiceUnavailable | ProviderRateLimited => (StatusCode::SERVICE_UNAVAILABLE, ApiError),
            ProviderUnreachable => (StatusCode::BAD_GATEWAY, ApiError),
        }
    }
}

/// Where a code sits in [`ErrorCode::ALL`]. The match is exhaustive, so a new variant does not
/// compile until it has an arm here, and every arm is evaluated at compile time and fails unless
/// `ALL` holds its variant: a code can never be missing from the list.
const fn position(code: ErrorCode) -> usize {
    use ErrorCode::*;
    macro_rules! listed {
        ($variant:ident) => {
            const { index_in_all($variant) }
        };
    }
    match code {
        InvalidJson => listed!(InvalidJson),
        InvalidBody => listed!(InvalidBody),
        InvalidParameter => listed!(InvalidParameter),
        ApiKeyInQuery => listed!(ApiKeyInQuery),
        WebhookSignatureInvalid => listed!(WebhookSignatureInvalid),
        UrlNotAllowed => listed!(UrlNotAllowed),
        CurrentPasswordInvalid => listed!(CurrentPasswordInvalid),
        ResetTokenInvalid => listed!(ResetTokenInvalid),
        OauthStateInvalid => listed!(OauthStateInvalid),
        AuthorizationDenied => listed!(AuthorizationDenied),
        AuthorizationFailed => listed!(AuthorizationFailed),
        MissingCredentials => listed!(MissingCredentials),
        ApiKeyMalformed => listed!(ApiKeyMalformed),
        ApiKeyInvalid => listed!(ApiKeyInvalid),
        ApiKeyRevoked => listed!(ApiKeyRevoked),
        ApiKeyExpired => listed!(ApiKeyExpired),
        ApiKeyRequired => listed!(ApiKeyRequired),
        SessionRequired => listed!(SessionRequired),
        SessionInvalid => listed!(SessionInvalid),
        InvalidCredentials => listed!(InvalidCredentials),
        ServiceTokenInvalid => listed!(ServiceTokenInvalid),
        PermissionDenied => listed!(PermissionDenied),
        SetupTokenInvalid => listed!(SetupTokenInvalid),
        IpNotAllowed => listed!(IpNotAllowed),
        ReadOnlyKey => listed!(ReadOnlyKey),
        ScopeLevelTooLow => listed!(ScopeLevelTooLow),
        ScopeMissing => listed!(ScopeMissing),
        CsrfTokenInvalid => listed!(CsrfTokenInvalid),
        ResourceMissing => listed!(ResourceMissing),
        MethodNotAllowed => listed!(MethodNotAllowed),
        NameTaken => listed!(NameTaken),
        ApiKeyLimitReached => listed!(ApiKeyLimitReached),
        EmailTaken => listed!(EmailTaken),
        SetupAlreadyCompleted => listed!(SetupAlreadyCompleted),
        KeyNotActive => listed!(KeyNotActive),
        KeyAlreadyRotated => listed!(KeyAlreadyRotated),
        AlreadyConnected => listed!(AlreadyConnected),
        ResourceExists => listed!(ResourceExists),
        DependencyMissing => listed!(DependencyMissing),
        ProviderInactive => listed!(ProviderInactive),
        AdminKeyRequired => listed!(AdminKeyRequired),
        ResourceLimitReached => listed!(ResourceLimitReached),
        IdempotencyInProgress => listed!(IdempotencyInProgress),
        IdempotencySecretShown => listed!(IdempotencySecretShown),
        LastAdmin => listed!(LastAdmin),
        ProviderNotConfigured => listed!(ProviderNotConfigured),
        ReauthorizationRequired => listed!(ReauthorizationRequired),
        IdempotencyError => listed!(IdempotencyError),
        ProviderCredentialsInvalid => listed!(ProviderCredentialsInvalid),
        PayloadTooLarge => listed!(PayloadTooLarge),
        UnsupportedMediaType => listed!(UnsupportedMediaType),
        RateLimited => listed!(RateLimited),
        InternalError => listed!(InternalError),
        ServiceUnavailable => listed!(ServiceUnavailable),
        ProviderUnreachable => listed!(ProviderUnreachable),
        ProviderRateLimited => listed!(ProviderRateLimited),
    }
}

const fn index_in_all(code: ErrorCode) -> usize {
    let mut i = 0;
    while i < ErrorCode::ALL.len() {
        if ErrorCode::ALL[i] as u8 == code as u8 {
            return i;
        }
        i += 1;
    }
    panic!("an ErrorCode is missing from ErrorCode::ALL");
}

// `ALL` in declaration order, each code once.
const _: () = {
    let mut i = 0;
    while i < ErrorCode::ALL.len() {
        assert!(position(ErrorCode::ALL[i]) == i, "ErrorCode::ALL lists a code twice");
        i += 1;
    }
};

/// An error answer. The message is shown to clients: it never holds a secret.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    /// Seconds, for `Retry-After` on 429s.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self { code, message: message.into(), retry_after: None }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::ResourceMissing, format!("No such {what}."))
    }

    pub fn internal() -> Self {
        Self::new(ErrorCode::InternalError, "Something went wrong on our side. Please try again.")
    }

    /// The JSON body of this error's answer (what [`ResponseError::error_response`] sends).
    pub fn body(&self) -> String {
        let (_, kind) = self.code.spec();
        let envelope = Envelope { error: Body { kind, code: self.code, message: &self.message } };
        serde_json::to_string(&envelope).unwrap_or_default()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

/// The body of every error answer (P4). The OpenAPI document's `Error` schema is derived from
/// this very type.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct Envelope<'a> {
    error: Body<'a>,
}

/// What went wrong: `type` is the family, `code` the precise reason, `message` for people.
#[derive(Serialize, ToSchema)]
#[schema(as = ErrorDetail)]
pub struct Body<'a> {
    #[serde(rename = "type")]
    kind: ErrorType,
    code: ErrorCode,
    /// Never repeats a value the client sent.
    message: &'a str,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.spec().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, kind) = self.code.spec();
        let mut response = HttpResponse::build(status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(Envelope { error: Body { kind, code: self.code, message: &self.message } })
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        // Logged here, once, with the detail the client must not see.
        tracing::error!(error = %err, "storage failure");
        ApiError::internal()
    }
}

impl From<InvalidPageSize> for ApiError {
    fn from(err: InvalidPageSize) -> Self {
        ApiError::new(ErrorCode::InvalidParameter, err.to_string())
    }
}

impl From<CreateKeyError> for ApiError {
    fn from(err: CreateKeyError) -> Self {
        use CreateKeyError::*;
        let code = match &err {
            Forbidden(denied) => return (*denied).into(),
            Storage(err) => return err.clone().into(),
            Name(_)
            | Description(_)
            | InvalidScopeLevel
            | UnknownScope(_)
            | ScopeNotAllowed { .. }
            | LiveOnlyScope(_)
            | InvalidExpiration
            | InvalidEnvironment
            | InvalidIp(_)
            | TooManyIps => ErrorCode::InvalidParameter,
            SensitiveScope(_) => ErrorCode::PermissionDenied,
            NameTaken => ErrorCode::NameTaken,
            LimitReached => ErrorCode::ApiKeyLimitReached,
        };
        ApiError::new(code, err.to_string())
    }
}

fn permission_denied() -> ApiError {
    ApiError::new(ErrorCode::PermissionDenied, "Your role does not allow this action.")
}

impl From<Denied> for ApiError {
    fn from(err: Denied) -> Self {
        match err {
            Denied::Role(_) => permission_denied(),
            Denied::Key(denied) => denied.into(),
            Denied::UsersOnly => ApiError::new(ErrorCode::SessionRequired, err.to_string()),
            Denied::KeysOnly => ApiError::new(ErrorCode::ApiKeyRequired, err.to_string()),
        }
    }
}

impl From<KeyAccessError> for ApiError {
    fn from(err: KeyAccessError) -> Self {
        match err {
            KeyAccessError::Forbidden(denied) => denied.into(),
            KeyAccessError::NotFound => ApiError::not_found("API key"),
            KeyAccessError::Storage(err) => err.into(),
        }
    }
}

impl From<RotateKeyError> for ApiError {
    fn from(err: RotateKeyError) -> Self {
        match err {
            RotateKeyError::Access(err) => err.into(),
            RotateKeyError::Create(err) => err.into(),
            RotateKeyError::NotActive(_) => ApiError::new(ErrorCode::KeyNotActive, err.to_string()),
            RotateKeyError::AlreadyRotated => ApiError::new(ErrorCode::KeyAlreadyRotated, err.to_string()),
            RotateKeyError::RevokeAfterExpiry => ApiError::new(ErrorCode::InvalidParameter, err.to_string()),
        }
    }
}

impl From<VerifyError> for ApiError {
    fn from(err: VerifyError) -> Self {
        let code = match &err {
            VerifyError::Malformed => ErrorCode::ApiKeyMalformed,
            VerifyError::Unknown => ErrorCode::ApiKeyInvalid,
            VerifyError::Revoked => ErrorCode::ApiKeyRevoked,
            VerifyError::Expired => ErrorCode::ApiKeyExpired,
            VerifyError::TooManyGuesses(seconds) => {
                return ApiError {
                    code: ErrorCode::RateLimited,
                    message: err.to_string().into(),
                    retry_after: Some(*seconds),
                };
            }
            VerifyError::Storage(err) => return err.clone().into(),
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<AccessDenied> for ApiError {
    fn from(err: AccessDenied) -> Self {
        let code = match err {
            AccessDenied::MethodNotAllowed(_) => ErrorCode::ReadOnlyKey,
            AccessDenied::LevelTooLow => ErrorCode::ScopeLevelTooLow,
            AccessDenied::MissingScope(_) => ErrorCode::ScopeMissing,
            AccessDenied::NotSupported => ErrorCode::MethodNotAllowed,
            AccessDenied::LiveOnly(_) => ErrorCode::PermissionDenied,
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<SetupError> for ApiError {
    fn from(err: SetupError) -> Self {
        let code = match &err {
            SetupError::InvalidToken => ErrorCode::SetupTokenInvalid,
            SetupError::AlreadyDone => ErrorCode::SetupAlreadyCompleted,
            SetupError::OrganizationName(_) | SetupError::Email(_) | SetupError::Password(_) => {
                ErrorCode::InvalidParameter
            }
            SetupError::Busy(busy) => return (*busy).into(),
            SetupError::Storage(err) => return err.clone().into(),
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<SignInError> for ApiError {
    fn from(err: SignInError) -> Self {
        match err {
            SignInError::InvalidCredentials => ApiError::new(ErrorCode::InvalidCredentials, err.to_string()),
            SignInError::Throttled(seconds) => {
                ApiError { code: ErrorCode::RateLimited, message: err.to_string().into(), retry_after: Some(seconds) }
            }
            SignInError::Busy(busy) => busy.into(),
            SignInError::Storage(err) => err.into(),
        }
    }
}

impl From<otesse_domain::ports::HashingBusy> for ApiError {
    fn from(busy: otesse_domain::ports::HashingBusy) -> Self {
        ApiError { code: ErrorCode::ServiceUnavailable, message: busy.to_string().into(), retry_after: Some(1) }
    }
}

impl From<SessionError> for ApiError {
    fn from(err: SessionError) -> Self {
        match err {
            SessionError::Invalid => ApiError::new(ErrorCode::SessionInvalid, err.to_string()),
            SessionError::Storage(err) => err.into(),
        }
    }
}

impl From<AddUserError> for ApiError {
    fn from(err: AddUserError) -> Self {
        let code = match &err {
            AddUserError::Forbidden(denied) => return (*denied).into(),
            AddUserError::Email(_) | AddUserError::Password(_) | AddUserError::InvalidRole | AddUserError::Name(_) => {
                ErrorCode::InvalidParameter
            }
            AddUserError::EmailTaken => ErrorCode::EmailTaken,
            AddUserError::Busy(busy) => return (*busy).into(),
            AddUserError::Storage(err) => return err.clone().into(),
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<otesse_domain::account::UserAdminError> for ApiError {
    fn from(err: otesse_domain::account::UserAdminError) -> Self {
        use otesse_domain::account::UserAdminError as E;
        let code = match &err {
            E::Forbidden(denied) => return (*denied).into(),
            E::InvalidRole | E::InvalidStatus | E::Name(_) | E::NothingToChange => ErrorCode::InvalidParameter,
            E::NotFound => return ApiError::not_found("user"),
            E::LastAdmin => ErrorCode::LastAdmin,
            E::Storage(err) => return err.clone().into(),
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<otesse_domain::account::PasswordChangeError> for ApiError {
    fn from(err: otesse_domain::account::PasswordChangeError) -> Self {
        use otesse_domain::account::PasswordChangeError as E;
        let code = match &err {
            E::Forbidden(denied) => return (*denied).into(),
            E::WrongCurrentPassword => ErrorCode::CurrentPasswordInvalid,
            E::Password(_) => ErrorCode::InvalidParameter,
            E::Busy(busy) => return (*busy).into(),
            E::Storage(err) => return err.clone().into(),
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<otesse_domain::account::PasswordResetError> for ApiError {
    fn from(err: otesse_domain::account::PasswordResetError) -> Self {
        use otesse_domain::account::PasswordResetError as E;
        let code = match &err {
            E::InvalidToken => ErrorCode::ResetTokenInvalid,
            E::Password(_) => ErrorCode::InvalidParameter,
            E::Busy(busy) => return (*busy).into(),
            E::Storage(err) => return err.clone().into(),
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<otesse_domain::account::OwnSessionError> for ApiError {
    fn from(err: otesse_domain::account::OwnSessionError) -> Self {
        use otesse_domain::account::OwnSessionError as E;
        match err {
            E::Forbidden(denied) => denied.into(),
            E::NotFound => ApiError::not_found("session"),
            E::Storage(err) => err.into(),
        }
    }
}

impl From<otesse_domain::notification::NotificationError> for ApiError {
    fn from(err: otesse_domain::notification::NotificationError) -> Self {
        use otesse_domain::notification::NotificationError as E;
        match err {
            E::Forbidden(denied) => denied.into(),
            E::Storage(err) => err.into(),
        }
    }
}

impl From<CustomerError> for ApiError {
    fn from(err: CustomerError) -> Self {
        let code = match &err {
            CustomerError::InvalidName | CustomerError::InvalidEmail(_) | CustomerError::InvalidPhone => {
                ErrorCode::InvalidParameter
            }
            CustomerError::NotFound => return ApiError::not_found("customer"),
            CustomerError::Forbidden(denied) => return (*denied).into(),
            CustomerError::Storage(err) => return err.clone().into(),
        };
        ApiError::new(code, err.to_string())
    }
}

/// Turns actix's JSON body errors into the error shape without echoing the body's values
/// (a misplaced secret must not come back in an error message).
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => {
            ApiError::new(ErrorCode::PayloadTooLarge, "The request body is too large.")
        }
        E::ContentType => ApiError::new(ErrorCode::UnsupportedMediaType, "Send the body as application/json."),
        E::Deserialize(err) => {
            use serde_json::error::Category;
            match err.classify() {
                Category::Data => {
                    let text = err.to_string();
                    let safe = text.starts_with("unknown field") || text.starts_with("missing field");
                    let message = if safe {
                        format!("Invalid body: {text}")
                    } else {
                        format!(
                            "Invalid body: a field has the wrong type (line {}, column {}).",
                            err.line(),
                            err.column()
                        )
                    };
                    ApiError::new(ErrorCode::InvalidBody, message)
                }
                Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("The body is not valid JSON (line {}, column {}).", err.line(), err.column()),
                ),
            }
        }
        _ => ApiError::new(ErrorCode::InvalidJson, "The body could not be read as JSON."),
    }
}

impl From<otesse_domain::integration::IntegrationError> for ApiError {
    fn from(err: otesse_domain::integration::IntegrationError) -> Self {
        use otesse_domain::integration::IntegrationError as E;
        match err {
            E::Forbidden(denied) => denied.into(),
            E::UnknownProvider => ApiError::not_found("provider"),
            E::ConnectionNotFound => ApiError::not_found("connection"),
            E::NotSupported => ApiError::new(ErrorCode::MethodNotAllowed, "This provider does not support that."),
            E::ResourceNotFound => ApiError::not_found("resource"),
            E::UnknownModel(_) => ApiError::new(ErrorCode::InvalidParameter, err.to_string()),
            E::AdminKeyRequired => ApiError::new(ErrorCode::AdminKeyRequired, err.to_string()),
            E::Webhook(otesse_domain::integration::WebhookEndpointError::TooMany) => {
                ApiError::new(ErrorCode::ResourceLimitReached, err.to_string())
            }
            E::Webhook(_) => ApiError::new(ErrorCode::InvalidParameter, err.to_string()),
            E::Contact(otesse_domain::integration::ContactError::Duplicate) => {
                ApiError::new(ErrorCode::ResourceExists, err.to_string())
            }
            E::Contact(_) => ApiError::new(ErrorCode::InvalidParameter, err.to_string()),
            E::Undecryptable => {
                tracing::error!("stored credentials could not be decrypted");
                ApiError::new(ErrorCode::InternalError, err.to_string())
            }
            E::NeedsReauthorization(_) => ApiError::new(ErrorCode::ReauthorizationRequired, err.to_string()),
            E::OAuthNotConfigured(_) => ApiError::new(ErrorCode::ProviderNotConfigured, err.to_string()),
            E::TokenRefreshFailed(otesse_domain::integration::HealthOutcome::RateLimited) => ApiError {
                code: ErrorCode::ProviderRateLimited,
                message: err.to_string().into(),
                retry_after: Some(30),
            },
            E::TokenRefreshFailed(_) => ApiError::new(ErrorCode::ProviderUnreachable, err.to_string()),
            E::Storage(err) => err.into(),
        }
    }
}

impl From<otesse_domain::integration::ConnectError> for ApiError {
    fn from(err: otesse_domain::integration::ConnectError) -> Self {
        use otesse_domain::integration::{ConnectError as E, HealthOutcome};
        let code = match &err {
            E::Integration(inner) => return inner.clone().into(),
            E::InactiveProvider(_) => ErrorCode::ProviderInactive,
            E::OAuthNotConfigured(_) => ErrorCode::ProviderNotConfigured,
            E::CredentialsForOAuth(_)
            | E::NoCredentials
            | E::MissingField(_)
            | E::UnknownField(_)
            | E::FieldTooLong { .. }
            | E::FieldInvalid(_)
            | E::NotPreconfigured(_) => ErrorCode::InvalidParameter,
            E::DependencyMissing { required, .. } => {
                return ApiError::new(
                    ErrorCode::DependencyMissing,
                    format!("{err} Connect it first: /v1/integrations/providers/{required}"),
                );
            }
            E::AlreadyConnected(_) => ErrorCode::AlreadyConnected,
            E::CheckFailed { outcome, .. } => match outcome {
                HealthOutcome::InvalidCredentials => ErrorCode::ProviderCredentialsInvalid,
                HealthOutcome::RateLimited => {
                    return ApiError {
                        code: ErrorCode::ProviderRateLimited,
                        message: err.to_string().into(),
                        retry_after: Some(30),
                    };
                }
                HealthOutcome::Unreachable | HealthOutcome::Healthy => ErrorCode::ProviderUnreachable,
            },
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<otesse_domain::integration::CallbackError> for ApiError {
    fn from(err: otesse_domain::integration::CallbackError) -> Self {
        use otesse_domain::integration::CallbackError as E;
        let code = match &err {
            E::Connect(inner) => return inner.clone().into(),
            E::InvalidState => ErrorCode::OauthStateInvalid,
            E::Denied => ErrorCode::AuthorizationDenied,
            E::ProviderError { .. } | E::CodeRejected(_) => ErrorCode::AuthorizationFailed,
            E::ClientRejected(_) => ErrorCode::ProviderNotConfigured,
        };
        ApiError::new(code, err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    #[test]
    fn every_code_has_a_client_or_server_status() {
        for code in ErrorCode::ALL {
            let (status, kind) = code.spec();
            assert!(status.is_client_error() || status.is_server_error(), "{code:?}");
            assert_eq!(status.is_server_error(), kind == ErrorType::ApiError, "{code:?}");
        }
    }

    #[test]
    fn every_code_is_listed_once_under_a_snake_case_name() {
        let names: std::collections::BTreeSet<String> = ErrorCode::ALL
            .into_iter()
            .map(|code| serde_json::to_value(code).unwrap().as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')), "{names:?}");
        assert!(names.contains("csrf_token_invalid") && names.contains("idempotency_error"));
    }

    #[test]
    fn the_body_has_the_one_shape() {
        let response = ApiError::from(VerifyError::Revoked).error_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let bytes = response.into_body().try_into_bytes().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["error"]["type"], "authentication_error");
        assert_eq!(json["error"]["code"], "api_key_revoked");
        assert_eq!(json["error"]["message"], "This API key has been revoked.");
    }

    #[test]
    fn a_busy_password_hasher_is_a_503_to_retry_in_a_second() {
        let response = ApiError::from(SignInError::Busy(otesse_domain::ports::HashingBusy)).error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    }

    #[test]
    fn json_type_errors_do_not_echo_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            password: String,
        }
        let err = serde_json::from_str::<Body>(r#"{"password": 1234567890123}"#).unwrap_err();
        let api = json_error(actix_web::error::JsonPayloadError::Deserialize(err));
        assert_eq!(api.code, ErrorCode::InvalidBody);
        assert!(!api.message.contains("1234567890123"), "{}", api.message);
    }
}
