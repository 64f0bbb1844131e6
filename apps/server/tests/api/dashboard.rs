//! The dashboard over HTTP (D1, D2): the shell pages and assets with their security headers,
//! browser sign-in through cookies, CSRF, cross-site refusals, and what a cookie may reach.

use reqwest::Method;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp, key_body, spawn_app, spawn_app_with};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A browser's session: the two cookies a cookie sign-in set.
pub struct BrowserSession {
    pub session: String,
    pub csrf: String,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl BrowserSession {
    pub fn cookie_header(&self) -> String {
        format!("otesse_session={}; otesse_csrf={}", self.session, self.csrf)
    }
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

fn cookie_value(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap().to_owned())
}

/// Signs in as a browser does (`"cookie": true`, from the server's own origin).
pub async fn cookie_sign_in(app: &TestApp, email: &str) -> BrowserSession {
    let answer = app
        .send(
            app.request(Method::POST, "/v1/sessions")
                .header("Origin", app.address.clone())
                .json(&json!({"email": email, "password": PASSWORD, "cookie": true})),
        )
        .await;
    answer.expect(201);
    let set_cookies = set_cookies(&answer.headers);
    BrowserSession {
        session: cookie_value(&set_cookies, "otesse_session").expect("a session cookie"),
        csrf: cookie_value(&set_cookies, "otesse_csrf").expect("a CSRF cookie"),
        set_cookies,
        body: answer.text,
    }
}

fn assert_dashboard_headers(headers: &HeaderMap, what: &str) {
    assert_eq!(headers["content-security-policy"], CSP, "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert!(headers.contains_key("cache-control"), "{what}");
}

/// The asset URLs a shell page refers to.
fn referenced_assets(html: &str) -> Vec<String> {
    html.split(['"', '\'']).filter(|part| part.starts_with("/assets/")).map(str::to_owned).collect()
}

#[tokio::test]
async fn shell_pages_and_assets_carry_the_security_headers() {
    let app = spawn_app().await;
    let first_run = app.send(app.request(Method::GET, "/")).await;
    first_run.expect(200);
    assert_dashboard_headers(&first_run.headers, "first run");
    assert!(first_run.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(first_run.headers["cache-control"], "no-store");
    assert!(first_run.text.contains("id=\"setup\""), "the first-run form: {}", first_run.text);
    // No inline script or style anywhere: the policy would block them.
    assert!(!first_run.text.contains("style="));
    assert!(!first_run.text.contains("<style"));
    for script in first_run.text.split("<script").skip(1) {
        assert!(script.trim_start().starts_with("type=\"module\" src=\"/assets/"), "{script}");
    }

    app.setup().await.expect(201);
    let sign_in = app.send(app.request(Method::GET, "/")).await;
    assert!(sign_in.text.contains("id=\"sign-in\"") && !sign_in.text.contains("id=\"setup\""));
    assert_dashboard_headers(&sign_in.headers, "sign-in");

    let assets = referenced_assets(&sign_in.text);
    assert_eq!(assets.len(), 3, "favicon, stylesheet, script: {assets:?}");
    for url in &assets {
        let answer = app.send(app.request(Method::GET, url)).await;
        answer.expect(200);
        assert_dashboard_headers(&answer.headers, url);
        assert_eq!(answer.headers["cache-control"], "public, max-age=31536000, immutable", "{url}");
    }
    let script = app.send(app.request(Method::GET, assets.iter().find(|u| u.ends_with(".js")).unwrap())).await;
    assert_eq!(script.headers["content-type"], "text/javascript; charset=utf-8");

    // Unversioned paths (the catalog's logos) revalidate.
    let logo = app.send(app.request(Method::GET, "/assets/logos/stripe.svg")).await;
    logo.expect(200);
    assert_eq!(logo.headers["cache-control"], "no-cache");
    assert_eq!(logo.headers["content-type"], "image/svg+xml");
    let etag = logo.headers["etag"].to_str().unwrap().to_owned();
    let again = app.send(app.request(Method::GET, "/assets/logos/stripe.svg").header("If-None-Match", etag)).await;
    assert_eq!(again.status.as_u16(), 304);
    assert_dashboard_headers(&again.headers, "304");
    let missing = app.send(app.request(Method::GET, "/assets/nothing.js")).await;
    assert_eq!(missing.status.as_u16(), 404);
    assert_dashboard_headers(&missing.headers, "404");

    // The settings need a session: without one, the sign-in page.
    let settings = app.send(app.request(Method::GET, "/settings/integrations/api-keys")).await;
    assert_eq!(settings.status.as_u16(), 303);
    assert_eq!(settings.headers["location"], "/");
    assert_dashboard_headers(&settings.headers, "redirect");
}

#[tokio::test]
async fn every_catalog_logo_is_served() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let providers = app.get("/v1/integrations/providers", &admin).await;
    for provider in providers.expect(200)["data"].as_array().unwrap() {
        let url = provider["logo_url"].as_str().unwrap();
        let answer = app.send(app.request(Method::GET, url)).await;
        answer.expect(200);
        assert_eq!(answer.headers["content-type"], "image/svg+xml", "{url}");
        assert!(answer.text.contains("<svg"), "{url}");
    }
}

#[tokio::test]
async fn a_cookie_sign_in_sets_http_only_strict_cookies_and_never_answers_the_token() {
    let app = spawn_app().await;
    app.setup().await.expect(201);
    let browser = cookie_sign_in(&app, ADMIN_EMAIL).await;
    let session = browser.set_cookies.iter().find(|c| c.starts_with("otesse_session=")).unwrap();
    let csrf = browser.set_cookies.iter().find(|c| c.starts_with("otesse_csrf=")).unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    assert!(!session.contains("Secure"), "development serves plain http: {session}");
    assert!(csrf.contains("SameSite=Strict") && csrf.contains("Path=/") && !csrf.contains("HttpOnly"), "{csrf}");
    let body: serde_json::Value = serde_json::from_str(&browser.body).unwrap();
    assert!(body.get("token").is_none(), "{body}");
    assert_eq!(body["csrf_token"], browser.csrf.as_str());
    assert!(!browser.body.contains(&browser.session), "the session token never reaches script");
    assert_eq!(browser.csrf, otesse_server::identify::csrf_token(&browser.session));

    // The cookie alone identifies the browser.
    let me = app.send(app.request(Method::GET, "/v1/me").header("Cookie", browser.cookie_header())).await;
    assert_eq!(me.expect(200)["user"]["email"], ADMIN_EMAIL);
    let shell =
        app.send(app.request(Method::GET, "/settings/audit-log").header("Cookie", browser.cookie_header())).await;
    shell.expect(200);
    assert!(shell.text.contains("js/app.js"));
    let home = app.send(app.request(Method::GET, "/").header("Cookie", browser.cookie_header())).await;
    assert_eq!(home.status.as_u16(), 303);
    assert_eq!(home.headers["location"], "/settings/integrations/api-keys");

    // API callers keep their bearer token, and get no cookie.
    let bearer = app.sign_in(ADMIN_EMAIL, PASSWORD).await;
    assert!(bearer.expect(201)["token"].as_str().unwrap().starts_with("ses_"));
    assert!(bearer.headers.get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn cookies_are_secure_outside_development() {
    let app = spawn_app_with(|s| {
        s.mode = otesse_server::config::Mode::Production;
        s.master_keys = Some(otesse_crypto::generate_master_key_entry(1).into());
    })
    .await;
    app.setup().await.expect(201);
    let browser = cookie_sign_in(&app, ADMIN_EMAIL).await;
    assert_eq!(browser.set_cookies.len(), 2);
    for cookie in &browser.set_cookies {
        assert!(cookie.ends_with("; Secure"), "{cookie}");
    }
    let out = app
        .send(
            app.request(Method::DELETE, "/v1/sessions/current")
                .header("Cookie", browser.cookie_header())
                .header("X-CSRF-Token", &browser.csrf),
        )
        .await;
    out.expect(204);
    for cookie in set_cookies(&out.headers) {
        assert!(cookie.contains("Max-Age=0") && cookie.ends_with("; Secure"), "{cookie}");
    }
}

#[tokio::test]
async fn a_change_through_the_cookie_needs_this_session_s_csrf_token() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let browser = cookie_sign_in(&app, ADMIN_EMAIL).await;
    let other = cookie_sign_in(&app, ADMIN_EMAIL).await;
    let create = |csrf: Option<&str>| {
        let mut request = app
            .request(Method::POST, "/v1/api-keys")
            .header("Cookie", browser.cookie_header())
            .json(&key_body(&format!("csrf {}", uuid::Uuid::new_v4()), "live"));
        if let Some(csrf) = csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        request
    };
    for (csrf, what) in
        [(None, "missing"), (Some("forged"), "forged"), (Some(other.csrf.as_str()), "another session's")]
    {
        let refused = app.send(create(csrf)).await;
        refused.expect_error(403, "csrf_token_invalid");
        assert_eq!(app.key_count(&admin).await, 0, "{what} token created a key");
    }
    app.send(create(Some(&browser.csrf))).await.expect(201);
    assert_eq!(app.key_count(&admin).await, 1);
    // Reading needs no token.
    let list = app.send(app.request(Method::GET, "/v1/api-keys").header("Cookie", browser.cookie_header())).await;
    assert_eq!(list.expect(200)["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_cross_site_sign_in_or_form_post_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let body = json!({"email": ADMIN_EMAIL, "password": PASSWORD, "cookie": true});
    for (name, value) in [
        ("Origin", "http://evil.example"),
        ("Origin", "null"),
        ("Origin", &*app.address.replace("127.0.0.1", "localhost")),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let refused = app.send(app.request(Method::POST, "/v1/sessions").header(name, value).json(&body)).await;
        refused.expect_error(403, "csrf_token_invalid");
        assert!(refused.headers.get(SET_COOKIE).is_none(), "{name}: {value}");
    }
    // A classic cross-site form post (no JSON, no CSRF header) with the victim's cookie.
    let browser = cookie_sign_in(&app, ADMIN_EMAIL).await;
    let form = app
        .send(
            app.request(Method::POST, "/v1/api-keys")
                .header("Cookie", browser.cookie_header())
                .header("Origin", "http://evil.example")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("name=stolen&scope_level=admin&expires_in=never&environment=live"),
        )
        .await;
    form.expect_error(403, "csrf_token_invalid");
    let sign_in_form = app
        .send(
            app.request(Method::POST, "/v1/sessions")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(format!("email={ADMIN_EMAIL}&password={PASSWORD}&cookie=true")),
        )
        .await;
    assert!(sign_in_form.status.is_client_error(), "{}", sign_in_form.text);
    assert!(sign_in_form.headers.get(SET_COOKIE).is_none());
    assert_eq!(app.key_count(&admin).await, 0);
}

#[tokio::test]
async fn signing_out_through_the_cookie_ends_the_session_and_clears_both_cookies() {
    let app = spawn_app().await;
    app.setup().await.expect(201);
    let browser = cookie_sign_in(&app, ADMIN_EMAIL).await;
    let without_csrf =
        app.send(app.request(Method::DELETE, "/v1/sessions/current").header("Cookie", browser.cookie_header())).await;
    without_csrf.expect_error(403, "csrf_token_invalid");
    let out = app
        .send(
            app.request(Method::DELETE, "/v1/sessions/current")
                .header("Cookie", browser.cookie_header())
                .header("X-CSRF-Token", &browser.csrf),
        )
        .await;
    out.expect(204);
    let cleared = set_cookies(&out.headers);
    assert_eq!(cleared.len(), 2, "{cleared:?}");
    assert!(
        cleared.iter().any(|c| c.starts_with("otesse_session=;") && c.contains("Max-Age=0") && c.contains("HttpOnly"))
    );
    assert!(cleared.iter().any(|c| c.starts_with("otesse_csrf=;") && c.contains("Max-Age=0")));
    let me = app.send(app.request(Method::GET, "/v1/me").header("Cookie", browser.cookie_header())).await;
    me.expect_error(401, "session_invalid");
    let shell = app.send(app.request(Method::GET, "/settings").header("Cookie", browser.cookie_header())).await;
    assert_eq!(shell.status.as_u16(), 303, "an ended session gets the sign-in page");
}

#[tokio::test]
async fn a_viewer_crafting_requests_by_hand_is_refused_admin_actions() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    app.user(&admin, "viewer@acme.test", "viewer").await;
    let (_, key_id) = app.key(&admin, key_body("kept", "live")).await;
    let viewer = cookie_sign_in(&app, "viewer@acme.test").await;
    let send = |method: Method, path: &str, body: serde_json::Value| {
        app.request(method, path)
            .header("Cookie", viewer.cookie_header())
            .header("X-CSRF-Token", &viewer.csrf)
            .json(&body)
    };
    app.send(send(Method::POST, "/v1/api-keys", key_body("mine", "live"))).await.expect_error(403, "permission_denied");
    app.send(send(Method::POST, &format!("/v1/api-keys/{key_id}/revoke"), json!({})))
        .await
        .expect_error(403, "permission_denied");
    app.send(send(Method::POST, "/v1/users", json!({"email": "x@acme.test", "password": PASSWORD, "role": "admin"})))
        .await
        .expect_error(403, "permission_denied");
    app.send(send(
        Method::POST,
        "/v1/integrations/providers/postmark/connect",
        json!({"credentials": {"api_key": "k"}}),
    ))
    .await
    .expect_error(403, "permission_denied");
    app.send(send(
        Method::POST,
        "/v1/webhook-endpoints",
        json!({"url": "https://example.com/h", "events": ["webhook.test"]}),
    ))
    .await
    .expect_error(403, "permission_denied");
    // What a viewer may do, it can.
    let list = app.send(app.request(Method::GET, "/v1/api-keys").header("Cookie", viewer.cookie_header())).await;
    assert_eq!(list.expect(200)["data"][0]["status"], "active");
}

#[tokio::test]
async fn a_session_cookie_from_another_organization_reaches_nothing_of_this_one() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (key, key_id) = app.key(&admin, key_body("ours", "live")).await;
    app.other_organization("boss@other.test").await;
    let other = cookie_sign_in(&app, "boss@other.test").await;
    let get = |path: String| app.request(Method::GET, &path).header("Cookie", other.cookie_header());
    let list = app.send(get("/v1/api-keys".into())).await;
    assert_eq!(list.expect(200)["data"].as_array().unwrap().len(), 0);
    app.send(get(format!("/v1/api-keys/{key_id}"))).await.expect_error(404, "resource_missing");
    let revoke = app
        .send(
            app.request(Method::POST, &format!("/v1/api-keys/{key_id}/revoke"))
                .header("Cookie", other.cookie_header())
                .header("X-CSRF-Token", &other.csrf),
        )
        .await;
    revoke.expect_error(404, "resource_missing");
    app.send(app.request(Method::GET, "/v1/whoami").bearer_auth(&key)).await.expect(200);
}
