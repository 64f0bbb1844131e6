//! What a route accepts, stated in its signature. The caller was identified once, by
//! [`crate::identify::identify`]; these extractors only authorize it for their route:
//!
//! - [`ByUser`]: a signed-in user (bearer session token or the dashboard's cookie); keys are
//!   refused.
//! - [`ByKey<R>`]: an API key, allowed by K4's table for this request's method and the route's
//!   resource `R`; sessions are refused.
//! - [`ByEither<R>`]: a user, or a key allowed as `ByKey<R>` is.
//!
//! Each hands the domain's [`Caller`] to the handler; the services decide what it may do with
//! [`Caller::require`].

use std::marker::PhantomData;
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use otesse_domain::api_key::{ApiKey, RequestMethod, Resource, VerifyError};
use otesse_domain::caller::Caller;

use crate::error::{ApiError, ErrorCode};
use crate::identify::{CredentialKind, Identified, Identity, resolve_client_ip};

/// What a keyed route guards.
pub trait RouteResource: 'static {
    const RESOURCE: Option<Resource>;
}

/// Any valid key may call the route (e.g. whoami).
#[derive(Debug)]
pub struct AnyScope;
impl RouteResource for AnyScope {
    const RESOURCE: Option<Resource> = None;
}

#[derive(Debug)]
pub struct CustomersRoute;
impl RouteResource for CustomersRoute {
    const RESOURCE: Option<Resource> = Some(Resource::Customers);
}

#[derive(Debug)]
pub struct IntegrationsRoute;
impl RouteResource for IntegrationsRoute {
    const RESOURCE: Option<Resource> = Some(Resource::Integrations);
}

#[derive(Debug)]
pub struct WebhooksRoute;
impl RouteResource for WebhooksRoute {
    const RESOURCE: Option<Resource> = Some(Resource::Webhooks);
}

/// A signed-in user.
#[derive(Debug)]
pub struct ByUser(pub Caller);

/// An API key authorized for `R`.
#[derive(Debug)]
pub struct ByKey<R> {
    pub caller: Caller,
    _route: PhantomData<R>,
}

impl<R> ByKey<R> {
    pub fn key(&self) -> &ApiKey {
        self.caller.as_key().expect("ByKey holds a key")
    }
}

/// A signed-in user, or an API key authorized for `R`.
#[derive(Debug)]
pub struct ByEither<R> {
    pub caller: Caller,
    _route: PhantomData<R>,
}

fn identity(req: &HttpRequest) -> Result<Identified, ApiError> {
    // Every /v1 route is wrapped by the identification middleware; a route outside it that
    // asks for a caller is a wiring mistake.
    req.extensions().get::<Identity>().map(|identity| identity.identified.clone()).ok_or_else(|| {
        tracing::error!(path = req.path(), "a route asked for its caller outside the identification middleware");
        ApiError::internal()
    })
}

fn session_required() -> ApiError {
    ApiError::new(
        ErrorCode::SessionRequired,
        "This endpoint requires a signed-in user; API keys are not accepted here.",
    )
}

fn sign_in_first() -> ApiError {
    ApiError::new(ErrorCode::MissingCredentials, "Sign in first: send `Authorization: Bearer <session token>`.")
}

fn key_required() -> ApiError {
    ApiError::new(
        ErrorCode::ApiKeyRequired,
        "This endpoint requires an API key; user session tokens are not accepted here.",
    )
}

fn user(identified: Identified) -> Result<Caller, ApiError> {
    match identified {
        Identified::Caller(caller @ Caller::User { .. }) => Ok(caller),
        Identified::Caller(Caller::Key(_)) | Identified::Refused(CredentialKind::ApiKey, _) => Err(session_required()),
        Identified::Refused(CredentialKind::Session, err) | Identified::Invalid(err) => Err(err),
        Identified::Unrecognized => Err(otesse_domain::auth::SessionError::Invalid.into()),
        Identified::Anonymous => Err(sign_in_first()),
    }
}

fn key<R: RouteResource>(req: &HttpRequest, identified: Identified) -> Result<Caller, ApiError> {
    match identified {
        Identified::Caller(Caller::Key(key)) => {
            key.authorize(RequestMethod::parse(req.method().as_str()), R::RESOURCE)?;
            Ok(Caller::Key(key))
        }
        Identified::Caller(Caller::User { .. }) | Identified::Refused(CredentialKind::Session, _) => {
            Err(key_required())
        }
        Identified::Refused(CredentialKind::ApiKey, err) | Identified::Invalid(err) => Err(err),
        Identified::Unrecognized => Err(VerifyError::Malformed.into()),
        Identified::Anonymous => Err(ApiError::new(
            ErrorCode::MissingCredentials,
            "No API key provided. Send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
        )),
    }
}

impl FromRequest for ByUser {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(identity(req).and_then(user).map(ByUser))
    }
}

impl<R: RouteResource> FromRequest for ByKey<R> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            identity(req)
                .and_then(|identified| key::<R>(req, identified))
                .map(|caller| ByKey { caller, _route: PhantomData }),
        )
    }
}

impl<R: RouteResource> FromRequest for ByEither<R> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = identity(req).and_then(|identified| match identified {
            identified @ (Identified::Caller(Caller::Key(_)) | Identified::Refused(CredentialKind::ApiKey, _)) => {
                key::<R>(req, identified)
            }
            identified => user(identified),
        });
        std::future::ready(caller.map(|caller| ByEither { caller, _route: PhantomData }))
    }
}

/// The client address of a request, as the usage log and the sign-in throttle see it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequest for ClientIp {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let known = req.extensions().get::<Identity>().map(|identity| identity.client_ip);
        std::future::ready(Ok(ClientIp(known.unwrap_or_else(|| resolve_client_ip(req)))))
    }
}
