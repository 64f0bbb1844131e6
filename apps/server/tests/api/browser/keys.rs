//! Flows 2 and 3 in the browser: the API Keys table, "Generate API Key" and its one-time key,
//! the key detail with its usage, Rotate and Revoke.

use fantoccini::key::Key;
use reqwest::Method;
use serde_json::json;

use super::{DESKTOP, Page, with_browser};
use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp, key_body, spawn_app, spawn_app_with};

const HOSTILE_NAME: &str = "<img src=x onerror=\"window.pwned=1\"> Zapier";
const HOSTILE_DESCRIPTION: &str = "<script>window.pwned=2</script> CRM sync";

async fn keys_via_api(app: &TestApp, session: &str) -> Vec<serde_json::Value> {
    app.get("/v1/api-keys", session).await.expect(200)["data"].as_array().unwrap().clone()
}

async fn open_generate(page: &Page) {
    page.click("#generate-key").await;
    page.find_text("[role=dialog] h2", "Generate API Key").await;
}

/// Flows 2 and 3 end to end: generate (a double click makes one key), the key shown once with
/// its copy button and the seed's question, use it over HTTP and see its usage, rotate with the
/// old key ending later, revoke with the seed's confirmation, and the revoked key's 401.
#[tokio::test]
async fn generate_use_rotate_and_revoke_a_key() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let app = &app;
    with_browser(app, DESKTOP, |page| async move {
        page.sign_in(ADMIN_EMAIL, PASSWORD).await;
        page.sees("No API keys yet.").await;

        // The modal keeps the keyboard inside, and Escape closes it and returns focus.
        open_generate(&page).await;
        assert_eq!(page.focused().await["in_dialog"], json!(true));
        for _ in 0..40 {
            page.press(Key::Tab).await;
            assert_eq!(page.focused().await["in_dialog"], json!(true), "Tab left the modal");
        }
        page.press(Key::Escape).await;
        page.gone("[role=dialog]").await;
        assert_eq!(page.focused().await["id"], "generate-key", "focus returns to the button that opened it");

        open_generate(&page).await;
        page.fill("[role=dialog]", "Name", HOSTILE_NAME).await;
        page.fill("[role=dialog]", "Description (optional)", HOSTILE_DESCRIPTION).await;
        page.labelled("[role=dialog]", "Permission Scope").await.select_by_value("read_write").await.unwrap();
        // Sensitive scopes carry a warning; an admin may grant them.
        let sensitive = page.find_text("[role=dialog] .choice", "employees.write").await;
        assert!(sensitive.text().await.unwrap().contains('⚠'));
        assert!(page.find("[role=dialog] input[value='employees.write']").await.is_enabled().await.unwrap());
        // A read-write key cannot hold admin-class scopes.
        assert!(!page.find("[role=dialog] input[value='settings.write']").await.is_enabled().await.unwrap());
        page.click("[role=dialog] input[value='customers.read']").await;
        page.click("[role=dialog] input[value='customers.write']").await;
        page.labelled("[role=dialog]", "Expiration").await.select_by_value("90d").await.unwrap();
        // A double click on Generate: one key.
        page.eval("const b = document.querySelector('#generate-submit'); b.click(); b.click();").await;
        let key = page.find(".secret-value").await.prop("value").await.unwrap().unwrap();
        assert!(key.starts_with("erp_live_") && key.len() == 49, "{key}");
        assert_eq!(keys_via_api(app, &admin).await.len(), 1, "one key for a double click");

        // Closing without copying asks first; "Cancel" keeps the key on screen.
        page.click("#reveal-done").await;
        page.find_text("[role=alertdialog]", "Are you sure? This key will not be shown again.").await;
        page.click_text("[role=alertdialog] button", "Cancel").await;
        page.gone("[role=alertdialog]").await;
        assert_eq!(page.find(".secret-value").await.prop("value").await.unwrap().unwrap(), key);
        page.click(".copy-button").await;
        page.find_text(".copy-button", "Copied").await;
        page.click("#reveal-done").await;
        page.gone("[role=dialog]").await;

        // The table: the name as text, the masked key, the level badge, the status.
        let row = page.find("#main tbody tr").await;
        let cells = row.text().await.unwrap();
        assert!(cells.contains(HOSTILE_NAME), "{cells}");
        assert!(cells.contains(&format!("erp_live_...{}", &key[key.len() - 4..])), "{cells}");
        assert!(cells.contains("Read-Write") && cells.contains("Active") && cells.contains("Never"), "{cells}");
        assert_eq!(
            page.eval("return [window.pwned, document.querySelectorAll('#main img').length]").await,
            json!([null, 0])
        );

        // Use the key; its usage shows in the detail.
        for _ in 0..3 {
            app.send(app.request(Method::GET, "/v1/customers").bearer_auth(&key)).await.expect(200);
        }
        app.send(app.request(Method::POST, "/v1/customers").bearer_auth(&key).json(&json!({"name": "Ada"})))
            .await
            .expect(201);
        app.flush_usage().await;
        page.click("a.key-name").await;
        page.find_text("#main h1", "Zapier").await;
        assert_eq!(page.text("#usage-total").await, "4");
        assert_eq!(page.text("#usage-ips").await, "1");
        page.find_text("#main td", "/v1/customers").await;
        page.find_text("#main td", "POST").await;
        page.find_text("#chart-summary", "4 requests in the last 14 days").await;
        page.find_text("#main li", "customers.write").await;
        page.sees(HOSTILE_DESCRIPTION).await;
        assert_eq!(page.eval("return document.querySelectorAll('svg.chart rect.bar').length").await, json!(14));

        // Rotate: the old key ends at a chosen time (tomorrow by default).
        page.click("#rotate-key").await;
        page.click_text("[role=dialog] label", "Stops working at a chosen time").await;
        page.click("#rotate-submit").await;
        let rotated = page.find(".secret-value").await.prop("value").await.unwrap().unwrap();
        assert!(rotated.starts_with("erp_live_") && rotated != key);
        page.click(".copy-button").await;
        page.click("#reveal-done").await;
        page.find_text("#main h1", "(rotated)").await;
        app.send(app.request(Method::GET, "/v1/whoami").bearer_auth(&rotated)).await.expect(200);
        app.send(app.request(Method::GET, "/v1/whoami").bearer_auth(&key)).await.expect(200);
        let old = keys_via_api(app, &admin).await.into_iter().find(|k| k["name"] == HOSTILE_NAME).unwrap();
        assert!(old["revoked_at"].is_string(), "the old key's end is scheduled: {old}");

        // Revoke the old key from the table: the seed's words, and the 24-hour warning.
        page.click_text("#nav a", "API Keys").await;
        page.click(&format!("button[aria-label='Revoke {}']", HOSTILE_NAME.replace('"', "\\\""))).await;
        page.find_text("[role=alertdialog]", "Revoking this key will immediately disable all API access using it")
            .await;
        page.find_text("[role=alertdialog] .confirm-extra", "used in the last 24 hours").await;
        page.click_text("[role=alertdialog] button", "Revoke key").await;
        page.find_text(".toast", "was revoked").await;
        page.find_text("#main tr.revoked", "Revoked").await;
        let refused = app.send(app.request(Method::GET, "/v1/customers").bearer_auth(&key)).await;
        assert_eq!(refused.expect_error(401, "api_key_revoked"), "This API key has been revoked.");
        app.send(app.request(Method::GET, "/v1/whoami").bearer_auth(&rotated)).await.expect(200);
        // Revoked keys stay listed.
        assert_eq!(page.eval("return document.querySelectorAll('#main tbody tr').length").await, json!(2));
    })
    .await;
}

/// At 25 active keys the button explains the limit; a key expiring within 7 days shows red.
#[tokio::test]
async fn the_generate_button_explains_the_25_key_limit() {
    let app = spawn_app_with(|s| s.rate_limit.key_creation_requests = 100).await;
    let admin = app.admin().await;
    for n in 0..25 {
        let mut body = key_body(&format!("key {n:02}"), "test");
        body["expires_in"] = json!("30d");
        app.key(&admin, body).await;
    }
    // One expires within 7 days.
    let soon = chrono::Utc::now() + chrono::Duration::days(3);
    app.sql("UPDATE api_keys SET expires_at = $1 WHERE name = $2", vec![soon.into(), "key 00".into()]).await;
    with_browser(&app, DESKTOP, |page| async move {
        page.sign_in(ADMIN_EMAIL, PASSWORD).await;
        let button = page.find("#generate-key").await;
        assert!(!button.is_enabled().await.unwrap());
        let note = button.attr("aria-describedby").await.unwrap().expect("the button points at its explanation");
        let text = page.text(&format!("#{note}")).await;
        assert!(text.contains("25 active API keys"), "{text}");
        let soon = page.find_text("#main tr", "key 00").await;
        assert_eq!(page.eval("return document.querySelectorAll('#main .expires-soon').length").await, json!(1));
        assert!(soon.text().await.unwrap().contains("key 00"));
    })
    .await;
}

/// Non-admins see sensitive scopes disabled; viewers get neither Generate nor Revoke.
#[tokio::test]
async fn sensitive_scopes_are_for_admins_and_viewers_only_look() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    app.user(&admin, "manager@acme.test", "manager").await;
    app.user(&admin, "viewer@acme.test", "viewer").await;
    app.key(&admin, key_body("shared", "live")).await;
    with_browser(&app, DESKTOP, |page| async move {
        page.sign_in("manager@acme.test", PASSWORD).await;
        open_generate(&page).await;
        page.labelled("[role=dialog]", "Permission Scope").await.select_by_value("admin").await.unwrap();
        let sensitive = page.find("[role=dialog] input[value='employees.write']").await;
        assert!(!sensitive.is_enabled().await.unwrap(), "a manager cannot grant a sensitive scope");
        page.find_text("[role=dialog] .choice", "Only an admin can grant this scope.").await;
        assert!(page.find("[role=dialog] input[value='customers.write']").await.is_enabled().await.unwrap());
        page.press(Key::Escape).await;
        page.gone("[role=dialog]").await;
        page.click("#sign-out").await;

        page.sign_in("viewer@acme.test", PASSWORD).await;
        page.find_text("#main td", "shared").await;
        let counts = page.eval("return [document.querySelectorAll('#generate-key').length, document.querySelectorAll('.revoke-button').length]").await;
        assert_eq!(counts, json!([0, 0]));
    })
    .await;
}
