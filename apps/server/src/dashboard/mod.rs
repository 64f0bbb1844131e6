//! The browser dashboard (D1-D3): server-rendered shell pages at `/` (sign-in, first-run setup)
//! and `/settings/...` (one shell; the script routes with the History API), and the compiled-in
//! assets. The dashboard is the public API's first client: its script calls the same `/v1`
//! routes as everyone else, through the session cookie that [`session_cookies`] sets.
//!
//! Every answer here carries [`security_headers`]: a strict Content-Security-Policy (no inline
//! script or style, nothing from another origin), no framing, no referrer, no sniffing.

pub mod assets;
mod pages;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, web};

use crate::config::{Mode, Settings};
use crate::identify::{CSRF_COOKIE, SESSION_COOKIE};

/// The policy every dashboard answer carries.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// How browser sessions are set up, from the settings: cookies are `Secure` outside
/// development, and a cookie sign-in must come from the server's own origin.
#[derive(Debug, Clone)]
pub struct BrowserPolicy {
    pub secure_cookies: bool,
    /// `scheme://host[:port]` of `public_url`, when configured.
    pub public_origin: Option<String>,
}

impl BrowserPolicy {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            secure_cookies: settings.mode != Mode::Development,
            public_origin: settings.public_url.as_deref().and_then(origin_of),
        }
    }
}

/// `scheme://host[:port]` of a URL (default ports dropped, as browsers send `Origin`).
fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

impl BrowserPolicy {
    /// A cookie sign-in must not come from another site: a present `Origin` must be this
    /// server's own (`public_url`, or the scheme and host the request came in on), and a
    /// browser's `Sec-Fetch-Site` must not say `cross-site` or `same-site`.
    pub fn is_same_origin(&self, req: &HttpRequest) -> bool {
        if let Some(site) = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok())
            && !matches!(site, "same-origin" | "none")
        {
            return false;
        }
        let Some(origin) = req.headers().get(header::ORIGIN) else {
            // Not sent by a browser making a cross-site request (they always send it on POST).
            return true;
        };
        let Ok(origin) = origin.to_str() else { return false };
        let expected = match &self.public_origin {
            Some(public) => public.clone(),
            None => {
                let info = req.connection_info();
                match origin_of(&format!("{}://{}", info.scheme(), info.host())) {
                    Some(own) => own,
                    None => return false,
                }
            }
        };
        origin_of(origin).is_some_and(|sent| sent == expected)
    }

    fn attributes(&self) -> &'static str {
        if self.secure_cookies { "; Secure" } else { "" }
    }

    /// The `Set-Cookie` values of a cookie sign-in: the session (HttpOnly: no script ever reads
    /// it) and its CSRF token (readable: the script echoes it in `X-CSRF-Token`).
    pub fn session_cookies(&self, session_token: &str, csrf_token: &str, max_age_secs: i64) -> [String; 2] {
        let secure = self.attributes();
        [
            format!(
                "{SESSION_COOKIE}={session_token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}"
            ),
            format!("{CSRF_COOKIE}={csrf_token}; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}"),
        ]
    }

    /// The `Set-Cookie` values that clear both cookies (sign-out).
    pub fn cleared_cookies(&self) -> [String; 2] {
        let secure = self.attributes();
        [
            format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
            format!("{CSRF_COOKIE}=; SameSite=Strict; Path=/; Max-Age=0{secure}"),
        ]
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Adds the headers of every dashboard answer.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    let set = |headers: &mut header::HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    set(headers, HeaderName::from_static("cross-origin-resource-policy"), "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    Ok(response)
}

/// Registers the dashboard's routes (each wrapped in [`security_headers`]) and its policy.
pub fn configure(cfg: &mut web::ServiceConfig, policy: &BrowserPolicy) {
    let wrap = || actix_web::middleware::from_fn(security_headers);
    cfg.app_data(web::Data::new(policy.clone()))
        .service(web::resource("/").wrap(wrap()).route(web::get().to(pages::root)))
        .service(web::resource("/settings").wrap(wrap()).route(web::get().to(pages::settings)))
        .service(web::resource("/settings/{tail:.*}").wrap(wrap()).route(web::get().to(pages::settings)))
        .service(web::resource("/assets/{tail:.*}").wrap(wrap()).route(web::get().to(serve_asset)));
}

async fn serve_asset(req: HttpRequest, tail: web::Path<String>) -> HttpResponse {
    let Some((asset, etag, versioned)) = assets::lookup(&tail) else {
        return HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body("Not found");
    };
    let cache = if versioned { "public, max-age=31536000, immutable" } else { "no-cache" };
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sent| sent.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut response = if unchanged { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    response.insert_header((header::CACHE_CONTROL, cache)).insert_header((header::ETAG, etag));
    if unchanged {
        return response.finish();
    }
    response.content_type(asset.content_type).body(asset.bytes)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn policy(public: Option<&str>) -> BrowserPolicy {
        BrowserPolicy { secure_cookies: true, public_origin: public.and_then(origin_of) }
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let req = |origin: &str| {
            TestRequest::post()
                .insert_header((header::HOST, "127.0.0.1:8080"))
                .insert_header((header::ORIGIN, origin.to_owned()))
                .to_http_request()
        };
        assert!(policy(None).is_same_origin(&req("http://127.0.0.1:8080")));
        assert!(!policy(None).is_same_origin(&req("http://127.0.0.1:9999")));
        assert!(!policy(None).is_same_origin(&req("https://127.0.0.1:8080")));
        assert!(!policy(None).is_same_origin(&req("http://evil.test")));
        assert!(!policy(None).is_same_origin(&req("null")));
        let public = policy(Some("https://otesse.example.com/"));
        assert!(public.is_same_origin(&req("https://otesse.example.com")));
        assert!(public.is_same_origin(&req("https://otesse.example.com:443")));
        assert!(!public.is_same_origin(&req("http://127.0.0.1:8080")), "public_url decides when set");
        assert!(policy(None).is_same_origin(&TestRequest::post().to_http_request()), "no Origin: not a browser");
        let cross = TestRequest::post().insert_header(("sec-fetch-site", "cross-site")).to_http_request();
        assert!(!policy(None).is_same_origin(&cross));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_outside_development() {
        let [session, csrf] = policy(None).session_cookies("ses_abc", "csrf123", 43200);
        assert_eq!(session, "otesse_session=ses_abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200; Secure");
        assert_eq!(csrf, "otesse_csrf=csrf123; SameSite=Strict; Path=/; Max-Age=43200; Secure");
        let development = BrowserPolicy { secure_cookies: false, public_origin: None };
        let [session, _] = development.session_cookies("ses_abc", "csrf123", 10);
        assert!(!session.contains("Secure"));
        let [session, csrf] = development.cleared_cookies();
        assert!(session.starts_with("otesse_session=;") && session.contains("Max-Age=0"));
        assert!(csrf.starts_with("otesse_csrf=;") && csrf.contains("Max-Age=0"));
    }
}
