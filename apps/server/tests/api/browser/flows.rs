//! Flows 1, 7, 8, 9 and 10 of the dashboard in the browser: first run and sign-in, webhooks,
//! users, notifications and the audit log.

use fantoccini::key::Key;
use reqwest::Method;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{DESKTOP, with_browser};
use crate::helpers::{ADMIN_EMAIL, PASSWORD, SETUP_TOKEN, key_body, spawn_app, spawn_app_with};

/// Flow 1: setup with the printed token, sign-out, a wrong password and an unknown email read
/// the same, sign-in.
#[tokio::test]
async fn first_run_setup_then_sign_out_and_sign_in() {
    let app = spawn_app().await;
    with_browser(&app, DESKTOP, |page| async move {
        page.goto("/").await;
        page.find_text("h1", "Set up Otesse").await;
        page.fill("#setup", "Setup token", "not the token").await;
        page.fill("#setup", "Organization name", "Acme <b>Cleaning</b>").await;
        page.fill("#setup", "Your email", ADMIN_EMAIL).await;
        page.fill("#setup", "Password", PASSWORD).await;
        page.click("#setup button[type=submit]").await;
        let refused = page.text("#form-error").await;
        assert!(refused.to_lowercase().contains("setup token"), "{refused}");
        page.fill("#setup", "Setup token", SETUP_TOKEN).await;
        page.click("#setup button[type=submit]").await;
        page.find_text("#main h1", "API Keys").await;
        assert_eq!(page.path().await, "/settings/integrations/api-keys");
        // The organization's name is text, not markup.
        assert_eq!(page.text("#organization-name").await, "Acme <b>Cleaning</b>");
        assert_eq!(page.eval("return document.querySelectorAll('#organization-name b').length").await, json!(0));
        // The session cookie is not readable by script; the CSRF one is.
        let cookies = page.eval("return document.cookie").await;
        assert!(!cookies.as_str().unwrap().contains("otesse_session"), "{cookies}");
        assert!(cookies.as_str().unwrap().contains("otesse_csrf="), "{cookies}");

        page.click("#sign-out").await;
        page.find_text("h1", "Sign in").await;
        page.goto("/settings/integrations/api-keys").await;
        page.find_text("h1", "Sign in").await;
        assert_eq!(page.path().await, "/", "signed out, the settings send the browser to the sign-in");

        page.fill("#sign-in", "Email", ADMIN_EMAIL).await;
        page.fill("#sign-in", "Password", "a wrong password").await;
        page.click("#sign-in button[type=submit]").await;
        let wrong_password = page.text("#form-error").await;
        page.fill("#sign-in", "Email", "nobody@acme.test").await;
        page.fill("#sign-in", "Password", PASSWORD).await;
        // Submitting hides the previous message; this waits for the new one.
        page.click("#sign-in button[type=submit]").await;
        let unknown_email = page.text("#form-error").await;
        assert_eq!(wrong_password, unknown_email, "a wrong password and an unknown email read the same");
        assert!(!wrong_password.is_empty());

        page.sign_in(ADMIN_EMAIL, PASSWORD).await;
        page.find_text("#main h1", "API Keys").await;
        assert_eq!(page.text("#user-email").await, ADMIN_EMAIL);
    })
    .await;
}

/// Flow 7: add an endpoint with its event types, the `whsec_` secret shown once, send a test
/// event to a local receiver and see it in the delivery log, rotate the secret, disable.
#[tokio::test]
async fn webhooks_add_an_endpoint_send_a_test_event_rotate_and_disable() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).and(path("/hooks")).respond_with(ResponseTemplate::new(204)).mount(&receiver).await;
    let app = spawn_app_with(|s| {
        s.allow_loopback_urls = true;
        s.jobs.enabled = true;
        s.jobs.poll_interval_ms = 50;
    })
    .await;
    app.admin().await;
    let hook_url = format!("{}/hooks", receiver.uri());
    with_browser(&app, DESKTOP, |page| async move {
        page.sign_in(ADMIN_EMAIL, PASSWORD).await;
        page.goto("/settings/integrations/webhooks").await;
        page.find_text("#main h1", "Webhooks").await;
        page.click("#add-endpoint").await;
        page.fill("[role=dialog]", "Endpoint URL", &hook_url).await;
        page.fill("[role=dialog]", "Description (optional)", "<script>alert('hook')</script>").await;
        page.click_text("[role=dialog] label", "webhook.test").await;
        page.click_text("[role=dialog] label", "api_key.revoked").await;
        page.click("#endpoint-submit").await;
        let secret = page.find(".secret-value").await.prop("value").await.unwrap().unwrap();
        assert!(secret.starts_with("whsec_"), "{secret}");
        page.click(".copy-button").await;
        page.click("#reveal-done").await;
        page.gone("[role=dialog]").await;

        let panel = page.find(".endpoint").await;
        assert!(panel.text().await.unwrap().contains("<script>alert('hook')</script>"), "the description is text");
        page.click_text(".endpoint button", "Send test event").await;
        page.find_text(".delivery-log td", "Succeeded").await;
        page.find_text(".delivery-log td", "webhook.test").await;
        page.find_text(".delivery-log td", "HTTP 204").await;

        page.click_text(".endpoint button", "Rotate secret").await;
        page.click_text("[role=alertdialog] button", "Rotate secret").await;
        let rotated = page.find(".secret-value").await.prop("value").await.unwrap().unwrap();
        assert!(rotated.starts_with("whsec_") && rotated != secret);
        // Closing without copying asks first; Escape answers "no" to the question.
        page.press(Key::Escape).await;
        page.find_text("[role=alertdialog]", "This signing secret will not be shown again").await;
        page.click_text("[role=alertdialog] button", "Close anyway").await;
        page.gone("[role=dialog]").await;

        page.click_text(".endpoint button", "Disable").await;
        page.find_text(".endpoint .badge", "Disabled").await;
    })
    .await;
    let received = receiver.received_requests().await.unwrap();
    assert!(
        received.iter().any(|r| String::from_utf8_lossy(&r.body).contains("webhook.test")),
        "the receiver got the test event"
    );
    assert!(received.iter().all(|r| r.headers.contains_key("webhook-signature")));
}

/// Flow 8: an admin adds a user; the role and status controls wait for `PATCH /v1/users/{id}`;
/// a viewer has no Users page.
#[tokio::test]
async fn users_admins_add_users_and_viewers_do_not_see_the_page() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    app.user(&admin, "viewer@acme.test", "viewer").await;
    let has_patch = {
        let doc = app.send(app.request(Method::GET, "/v1/openapi.json")).await;
        doc.body["paths"]["/v1/users/{id}"]["patch"].is_object()
    };
    with_browser(&app, DESKTOP, |page| async move {
        page.sign_in(ADMIN_EMAIL, PASSWORD).await;
        page.click_text("#nav a", "Users").await;
        page.find_text("#main h1", "Users").await;
        page.find_text("td", "viewer@acme.test").await;
        page.fill("#main", "Email", "manager@acme.test").await;
        page.fill("#main", "Temporary password", PASSWORD).await;
        page.labelled("#main", "Role").await.select_by_value("manager").await.unwrap();
        page.click("#add-user").await;
        page.find_text("td", "manager@acme.test").await;
        page.find_text(".toast", "manager@acme.test was added.").await;
        let selects = page.eval("return document.querySelectorAll('#main table select').length").await;
        assert_eq!(
            selects.as_u64().unwrap() > 0,
            has_patch,
            "role controls exactly when PATCH /v1/users/{{id}} exists"
        );

        page.click("#sign-out").await;
        page.sign_in("viewer@acme.test", PASSWORD).await;
        let nav = page.text("#nav").await;
        assert!(!nav.contains("Users"), "{nav}");
        // Generate and Connect are not offered to a viewer.
        assert_eq!(page.eval("return document.querySelectorAll('#generate-key').length").await, json!(0));
    })
    .await;
    app.sign_in("manager@acme.test", PASSWORD).await.expect(201);
}

/// Flow 8b (P8): an admin makes a viewer a manager and deactivates them, whose session is then
/// refused; on My account the admin changes their password.
#[tokio::test]
async fn users_change_a_role_deactivate_and_change_my_password() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let viewer = app.user(&admin, "viewer@acme.test", "viewer").await;
    with_browser(&app, DESKTOP, |page| async move {
        page.sign_in(ADMIN_EMAIL, PASSWORD).await;
        page.click_text("#nav a", "Users").await;
        page.find_text("td", "viewer@acme.test").await;
        page.find("select[aria-label='Role of viewer@acme.test']").await.select_by_value("manager").await.unwrap();
        page.find_text(".toast", "viewer@acme.test is now Manager.").await;
        page.click("button[aria-label='Deactivate viewer@acme.test']").await;
        page.click_text("[role=alertdialog] button", "Deactivate").await;
        page.find("button[aria-label='Reactivate viewer@acme.test']").await;
        page.find_text("#main td .badge", "Deactivated").await;

        page.click_text("#nav a", "My account").await;
        page.find_text("#main h1", "My account").await;
        page.find_text("#main .badge", "This session").await;
        page.fill("#main", "Current password", "not my password").await;
        page.fill("#main", "New password", "a brand new password").await;
        page.click("#change-password").await;
        page.find_text("#main [role=alert]", "The current password is not correct.").await;
        page.fill("#main", "Current password", PASSWORD).await;
        page.click("#change-password").await;
        page.find_text(".toast", "Your password was changed.").await;
        // Still signed in: the page reloads its sessions with this one.
        page.find_text("#main .badge", "This session").await;
    })
    .await;
    let me = app.get("/v1/me", &viewer).await;
    me.expect_error(401, "session_invalid");
    // The browser's password change ended this other session of the admin's.
    app.get("/v1/me", &admin).await.expect_error(401, "session_invalid");
    let fresh = app.sign_in(ADMIN_EMAIL, "a brand new password").await;
    let fresh = fresh.expect(201)["token"].as_str().unwrap().to_owned();
    let users = app.get("/v1/users", &fresh).await;
    let viewer =
        users.body["data"].as_array().unwrap().iter().find(|u| u["email"] == "viewer@acme.test").unwrap().clone();
    assert_eq!((viewer["role"].clone(), viewer["status"].clone()), (json!("manager"), json!("deactivated")));
}

/// Flow 9: the bell shows the unread count; notifications are listed and marked read.
#[tokio::test]
async fn notifications_the_bell_counts_unread_and_marking_read_clears_it() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let me = app.get("/v1/me", &admin).await.expect(200).clone();
    let (_, key_id) = app.key(&admin, key_body("Zapier", "live")).await;
    let user_id = uuid::Uuid::parse_str(me["user"]["id"].as_str().unwrap()).unwrap();
    let org_id = uuid::Uuid::parse_str(me["organization"]["id"].as_str().unwrap()).unwrap();
    for (days, title) in [(14, "API key Zapier expires in 14 days"), (7, "API key Zapier expires in 7 days")] {
        let now = chrono::Utc::now();
        app.sql(
            "INSERT INTO notifications (id, organization_id, user_id, kind, title, body, subject, dedupe_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                uuid::Uuid::now_v7().into(),
                org_id.into(),
                user_id.into(),
                "api_key.expiring".into(),
                title.into(),
                format!("Rotate it before it stops working ({days} days left).").into(),
                format!("api_key:{key_id}").into(),
                format!("test:{days}").into(),
                now.into(),
            ],
        )
        .await;
    }
    with_browser(&app, DESKTOP, |page| async move {
        page.sign_in(ADMIN_EMAIL, PASSWORD).await;
        page.find_text("#bell-count", "2").await;
        assert_eq!(page.find("#bell").await.attr("aria-label").await.unwrap().unwrap(), "Notifications, 2 unread");
        page.click("#bell").await;
        page.find_text("#main h1", "Notifications").await;
        page.find_text(".notification.unread", "expires in 14 days").await;
        page.click_text(".notification button", "Mark as read").await;
        page.find_text("#bell-count", "1").await;
        page.click_text(".notification button", "Mark as read").await;
        page.gone("#bell-count").await;
        assert_eq!(page.find("#bell").await.attr("aria-label").await.unwrap().unwrap(), "Notifications, none unread");
        page.sees("You are all caught up.").await;
        page.click_text(".notification a", "View key").await;
        page.find_text("#main h1", "Zapier").await;
    })
    .await;
}

/// Flow 10: the audit log, filtered by action, actor and date.
#[tokio::test]
async fn the_audit_log_filters_by_action_actor_and_date() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let manager = app.user(&admin, "manager@acme.test", "manager").await;
    let (_, first) = app.key(&admin, key_body("Admin key", "live")).await;
    app.post(&format!("/v1/api-keys/{first}/revoke"), &admin, &json!({})).await.expect(200);
    app.key(&manager, key_body("Manager key", "test")).await;
    with_browser(&app, DESKTOP, |page| async move {
        page.sign_in(ADMIN_EMAIL, PASSWORD).await;
        page.click_text("#nav a", "Audit log").await;
        page.find_text("#main h1", "Audit log").await;
        page.find_text("#audit-results td", "Manager key").await;
        assert_eq!(row_count(&page).await, 3);

        page.labelled("#main", "Action").await.select_by_value("api_key.revoked").await.unwrap();
        page.click_text("#main button", "Apply filters").await;
        page.until("one revoked entry", || async { (row_count(&page).await == 1).then_some(()) }).await;
        page.find_text("#audit-results td", "API key revoked").await;

        page.labelled("#main", "Action").await.select_by_value("").await.unwrap();
        page.labelled("#main", "Actor").await.select_by_label("manager@acme.test").await.unwrap();
        page.click_text("#main button", "Apply filters").await;
        page.until("the manager's entry", || async { (row_count(&page).await == 1).then_some(()) }).await;
        page.find_text("#audit-results td", "Manager key").await;

        // A day before anything happened.
        page.labelled("#main", "Actor").await.select_by_value("").await.unwrap();
        page.eval("const to = document.querySelector('input[name=to]'); to.value = '2020-01-01';").await;
        page.click_text("#main button", "Apply filters").await;
        page.sees("No entries match these filters.").await;
        assert!(page.client.current_url().await.unwrap().query().unwrap_or("").contains("to=2020-01-01"));
    })
    .await;
}

async fn row_count(page: &super::Page) -> usize {
    page.eval("return document.querySelectorAll('#audit-results tbody tr').length").await.as_u64().unwrap() as usize
}

/// Sign-in and setup forms, and the settings pages, through the keyboard only.
#[tokio::test]
async fn sign_in_by_keyboard_only() {
    let app = spawn_app().await;
    app.setup().await.expect(201);
    with_browser(&app, DESKTOP, |page| async move {
        page.goto("/").await;
        page.find("#sign-in").await;
        page.press(Key::Tab).await;
        assert_eq!(page.focused().await["id"], "email");
        page.client.active_element().await.unwrap().send_keys(ADMIN_EMAIL).await.unwrap();
        page.press(Key::Tab).await;
        page.client.active_element().await.unwrap().send_keys(PASSWORD).await.unwrap();
        page.press(Key::Enter).await;
        page.find_text("#main h1", "API Keys").await;
    })
    .await;
}
