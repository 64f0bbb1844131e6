//! The shell pages. They hold no data: only fixed text and asset URLs, so nothing a user typed
//! is ever written into HTML here; the script fills the pages from the API with `textContent`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use otesse_domain::auth::AuthService;

use super::assets;
use crate::identify::SESSION_COOKIE;

/// Where a signed-in browser lands.
pub const HOME: &str = "/settings/integrations/api-keys";

async fn signed_in(req: &HttpRequest, auth: &AuthService) -> bool {
    match super::cookie(req, SESSION_COOKIE) {
        Some(token) => auth.authenticate(token).await.is_ok(),
        None => false,
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location.to_owned())).finish()
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body)
}

fn head(title: &str, script: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · Otesse</title>\n\
         <link rel=\"icon\" href=\"{favicon}\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"{css}\">\n\
         <script type=\"module\" src=\"{script}\"></script>\n</head>\n",
        favicon = assets::url("favicon.svg"),
        css = assets::url("app.css"),
        script = assets::url(script),
    )
}

/// `GET /`: first-run setup while no admin exists, else sign-in; a signed-in browser goes on to
/// the settings.
pub async fn root(req: HttpRequest, auth: web::Data<AuthService>) -> Result<HttpResponse, crate::error::ApiError> {
    if !auth.is_setup_done().await? {
        return Ok(html(format!("{}{SETUP}", head("First run", "js/signin.js"))));
    }
    if signed_in(&req, &auth).await {
        return Ok(see_other(HOME));
    }
    Ok(html(format!("{}{SIGN_IN}", head("Sign in", "js/signin.js"))))
}

/// `GET /settings/...`: the one shell of every settings page; without a session, the sign-in.
pub async fn settings(req: HttpRequest, auth: web::Data<AuthService>) -> HttpResponse {
    if !signed_in(&req, &auth).await {
        return see_other("/");
    }
    html(format!("{}{SETTINGS}", head("Settings", "js/app.js")))
}

const SIGN_IN: &str = r#"<body class="auth-page">
<main id="main" class="auth-card">
<div class="brand-lockup"><span class="brand-mark" aria-hidden="true">O</span><span class="brand-name">Otesse</span></div>
<h1>Sign in</h1>
<form id="sign-in" class="form" novalidate>
<div class="field"><label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required></div>
<div class="field"><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required></div>
<p id="form-error" class="form-error" role="alert" hidden></p>
<button type="submit" class="button primary wide">Sign in</button>
</form>
</main>
</body>
</html>
"#;

const SETUP: &str = r#"<body class="auth-page">
<main id="main" class="auth-card">
<div class="brand-lockup"><span class="brand-mark" aria-hidden="true">O</span><span class="brand-name">Otesse</span></div>
<h1>Set up Otesse</h1>
<p class="lead">Create your organization and its first admin. The setup token was printed once when the server started.</p>
<form id="setup" class="form" novalidate>
<div class="field"><label for="setup-token">Setup token</label><input id="setup-token" name="setup_token" type="password" autocomplete="off" required></div>
<div class="field"><label for="organization">Organization name</label><input id="organization" name="organization_name" type="text" autocomplete="organization" required maxlength="100"></div>
<div class="field"><label for="email">Your email</label><input id="email" name="email" type="email" autocomplete="username" required></div>
<div class="field"><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="new-password" required minlength="10" maxlength="128" aria-describedby="password-hint"><p id="password-hint" class="hint">10 to 128 characters.</p></div>
<p id="form-error" class="form-error" role="alert" hidden></p>
<button type="submit" class="button primary wide">Create organization</button>
</form>
</main>
</body>
</html>
"#;

const SETTINGS: &str = r##"<body>
<a class="skip-link" href="#main">Skip to content</a>
<header class="topbar">
<a class="brand-lockup" href="/settings/integrations/api-keys"><span class="brand-mark" aria-hidden="true">O</span><span class="brand-name">Otesse</span></a>
<span id="organization-name" class="org-name"></span>
<div class="topbar-actions">
<a id="bell" class="bell" href="/settings/notifications" aria-label="Notifications"><svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false"><path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z"/></svg><span id="bell-count" class="bell-count" hidden></span></a>
<span id="user-email" class="user-email"></span>
<button id="sign-out" type="button" class="button ghost small">Sign out</button>
</div>
</header>
<div class="layout">
<nav id="nav" class="sidenav" aria-label="Settings"></nav>
<main id="main" class="content" tabindex="-1"><p class="loading" role="status">Loading…</p></main>
</div>
<div id="toasts" class="toasts" role="status" aria-live="polite"></div>
</body>
</html>
"##;
