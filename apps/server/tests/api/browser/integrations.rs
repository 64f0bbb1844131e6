//! Flows 4, 5 and 6 in the browser against fake providers (wiremock): the catalog with search,
//! category filter and a dependency, the Connect modal (a failing key, a good one, a
//! pre-configured provider, a modal closed mid-check), and Connected Apps with health, resources
//! and disconnect.

use std::time::Duration;

use otesse_server::config::{ProviderSettings, Settings};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{DESKTOP, with_browser};
use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp, spawn_app_with};

/// The slow key's check takes this long: long enough to close the modal during it.
pub const SLOW: Duration = Duration::from_millis(1500);
pub const HOSTILE_MODEL: &str = "<img src=x onerror=\"window.pwned=3\">Claude Test";

/// One fake for every provider: each answers its documented health call for `good-<slug>`,
/// and refuses other keys the way the provider does.
pub async fn fake_providers() -> MockServer {
    let server = MockServer::start().await;
    let ok = |body: Value| ResponseTemplate::new(200).set_body_json(body);
    Mock::given(method("GET"))
        .and(path("/server"))
        .and(header("X-Postmark-Server-Token", "good-postmark"))
        .respond_with(ok(json!({"ID": 1, "Name": "Acme"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/server"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"ErrorCode": 10, "Message": "<b>bad</b> token"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .and(header("Authorization", "Bearer good-stripe"))
        .respond_with(ok(json!({"object": "balance", "available": [], "livemode": false, "pending": []})))
        .mount(&server)
        .await;
    let token = json!({"code": "TokenValid", "token": {"usage": "pk", "user": "acme", "authorization": "x"}});
    Mock::given(method("GET"))
        .and(path("/tokens/v2"))
        .and(query_param("access_token", "good-mapbox"))
        .respond_with(ok(token.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/tokens/v2"))
        .and(query_param("access_token", "slow-mapbox"))
        .respond_with(ok(token).set_delay(SLOW))
        .mount(&server)
        .await;
    let model = |id: &str, name: &str| json!({"id": id, "display_name": name, "created_at": "2025-02-19T00:00:00Z", "type": "model"});
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(header("x-api-key", "good-anthropic"))
        .respond_with(ok(json!({
            "data": [model("claude-test-1", HOSTILE_MODEL), model("claude-test-2", "Claude Test Two")],
            "has_more": false, "first_id": "claude-test-1", "last_id": "claude-test-2"
        })))
        .mount(&server)
        .await;
    let today = chrono::Utc::now().date_naive();
    let buckets: Vec<Value> = (0..3)
        .map(|back| {
            let day = today - chrono::Duration::days(back);
            json!({"starting_at": format!("{day}T00:00:00Z"), "ending_at": format!("{day}T23:59:59Z"), "results": [{
                "uncached_input_tokens": 1200 * (back + 1), "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
                "cache_read_input_tokens": 0, "output_tokens": 400 * (back + 1), "model": "claude-test-1"
            }]})
        })
        .rev()
        .collect();
    Mock::given(method("GET"))
        .and(path("/v1/organizations/usage_report/messages"))
        .and(header("x-api-key", "good-anthropic-admin"))
        .respond_with(ok(json!({"data": buckets, "has_more": false, "next_page": null})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/phone-numbers"))
        .and(header("Authorization", "good-quo"))
        .respond_with(ok(json!({"data": []})))
        .mount(&server)
        .await;
    server
}

/// Points every provider at the fake; Quo is pre-configured with the deployment's key.
pub fn use_fakes(settings: &mut Settings, fake: &MockServer) {
    for slug in ["postmark", "stripe", "mapbox", "google_maps", "geoapify", "anthropic", "quo"] {
        let mut provider = ProviderSettings { base_url: Some(fake.uri()), ..Default::default() };
        if slug == "quo" {
            provider.api_key = Some("good-quo".to_owned().into());
        }
        settings.providers.insert(slug.into(), provider);
    }
    settings.provider_timeout_ms = 5_000;
    settings.allow_loopback_urls = true;
}

/// A deployment's extra catalog entry that depends on Stripe (none of the built-in ones does).
fn catalog_with_a_dependency(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("catalog.toml");
    std::fs::write(
        &file,
        r#"[[providers]]
slug = "stripe_tax"
name = "Stripe Tax"
description = "Sales tax on Stripe payments."
logo_url = "/assets/logos/provider.svg"
category = "payment"
auth_type = "api_key"
fields = [{ field = "api_key", label = "API Key", required = true, max_length = 128 }]
dependencies = ["stripe"]
resource_types = []
docs_url = "https://example.com/docs"
"#,
    )
    .unwrap();
    file
}

async fn connections(app: &TestApp, session: &str) -> Vec<Value> {
    app.get("/v1/integrations/connections", session).await.expect(200)["data"].as_array().unwrap().clone()
}

async fn card_count(page: &super::Page) -> u64 {
    page.eval("return document.querySelectorAll('#provider-cards .card').length").await.as_u64().unwrap()
}

/// Flows 4 and 5.
#[tokio::test]
async fn browse_the_catalog_and_connect_through_the_modal() {
    let fake = fake_providers().await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_with_a_dependency(dir.path());
    let app = spawn_app_with(|s| {
        use_fakes(s, &fake);
        s.catalog_file = Some(catalog);
    })
    .await;
    let admin = app.admin().await;
    app.user(&admin, "viewer@acme.test", "viewer").await;
    let app = &app;
    with_browser(app, DESKTOP, |page| async move {
        page.sign_in(ADMIN_EMAIL, PASSWORD).await;
        page.click_text("#main .tabs a", "All Integrations").await;
        page.find_text("#main h1", "All Integrations").await;
        page.until("nine cards", || async { (card_count(&page).await == 9).then_some(()) }).await;
        let postmark = page.find("#provider-postmark").await.text().await.unwrap();
        for part in ["Postmark", "Transactional email", "Communication", "Connect"] {
            assert!(postmark.contains(part), "{part} in {postmark}");
        }
        let logo = page
            .eval("const i = document.querySelector('#provider-postmark img'); return [i.complete, i.naturalWidth]")
            .await;
        assert_eq!(logo, json!([true, 64]), "the logo loads");

        // Search, then the category filter.
        page.fill("#main", "Search integrations", "openphone").await;
        page.until("one card", || async { (card_count(&page).await == 1).then_some(()) }).await;
        page.find("#provider-quo").await;
        page.fill("#main", "Search integrations", "").await;
        page.click_text(".category-list button", "Mapping").await;
        page.until("three mapping cards", || async { (card_count(&page).await == 3).then_some(()) }).await;
        assert_eq!(page.find("[data-category=mapping]").await.attr("aria-pressed").await.unwrap().unwrap(), "true");
        page.click_text(".category-list button", "All categories").await;
        page.until("nine cards", || async { (card_count(&page).await == 9).then_some(()) }).await;

        // A provider whose dependency is not connected explains it and links to it.
        page.click("#provider-stripe_tax .connect-button").await;
        page.find_text("[role=dialog] .dependency-message", "Stripe Tax depends on Stripe").await;
        page.click_text("[role=dialog] a", "Go to Stripe").await;
        page.gone("[role=dialog]").await;
        page.find("#provider-stripe.highlight").await;
        assert_eq!(page.focused().await["text"], "Connect", "focus lands on Stripe's Connect button");

        // A failing key: the product's message, the modal stays open; then a good key.
        page.click("#provider-postmark .connect-button").await;
        page.find_text("[role=dialog] h2", "Connect Postmark").await;
        page.fill("[role=dialog]", "Server API Token", "wrong-key").await;
        page.click("#connect-submit").await;
        page.find_text(
            "[role=dialog] .connect-error",
            "The API key you entered is invalid. Please check your credentials.",
        )
        .await;
        page.find("[role=dialog] #connect-submit").await;
        assert_eq!(
            page.eval("return window.pwned === undefined && !document.querySelector('.modal b')").await,
            json!(true)
        );
        page.fill("[role=dialog]", "Server API Token", "good-postmark").await;
        page.click("#connect-submit").await;
        page.find_text("[role=dialog] .connect-success", "Postmark connected successfully").await;
        page.find_text("[role=dialog] .checkmark", "✓").await;
        page.find_text(".toast", "Postmark connected successfully").await;
        page.click("#connect-done").await;
        page.gone("[role=dialog]").await;
        page.find_text("#provider-postmark .status-line", "Connected").await;
        page.find("#provider-postmark .dot.green").await;

        // "Verifying connection..." shows while the check runs. Closing the modal then does not
        // cancel it: the check goes on, and a toast says how it ended.
        page.click("#provider-mapbox .connect-button").await;
        page.fill("[role=dialog]", "Access Token", "slow-mapbox").await;
        page.click("#connect-submit").await;
        page.find_text("[role=dialog] .progress", "Verifying connection...").await;
        page.click_text("[role=dialog] button", "Cancel").await;
        page.gone("[role=dialog]").await;
        page.find_text(".toast", "Mapbox connected successfully").await;
        page.find_text("#provider-mapbox .status-line", "Connected").await;

        // Pre-configured: connect without typing a key.
        page.click("#provider-quo .connect-button").await;
        let field = page.find("[role=dialog] input[type=checkbox]").await;
        assert!(field.is_selected().await.unwrap());
        page.click("#connect-submit").await;
        page.find_text("[role=dialog] .connect-success", "Quo (OpenPhone) connected successfully").await;
        page.click("#connect-done").await;

        // A viewer sees the catalog and no Connect button.
        page.click("#sign-out").await;
        page.sign_in("viewer@acme.test", PASSWORD).await;
        page.goto("/settings/integrations/all").await;
        page.until("nine cards", || async { (card_count(&page).await == 9).then_some(()) }).await;
        assert_eq!(page.eval("return document.querySelectorAll('.connect-button').length").await, json!(0));
    })
    .await;
    let connected: Vec<String> =
        connections(app, &admin).await.iter().map(|c| c["provider"].as_str().unwrap().to_owned()).collect();
    assert_eq!(connected.len(), 3, "{connected:?}");
    for slug in ["postmark", "mapbox", "quo"] {
        assert!(connected.iter().any(|c| c == slug), "{slug} in {connected:?}");
    }
}

/// Flow 6: health and history, Check now, resources (Postmark senders, Anthropic models and
/// usage, the Mapbox toggle) and disconnect.
#[tokio::test]
async fn connected_apps_show_health_resources_and_disconnect() {
    let fake = fake_providers().await;
    let app = spawn_app_with(|s| use_fakes(s, &fake)).await;
    let admin = app.admin().await;
    for (slug, credentials) in [
        ("postmark", json!({"api_key": "good-postmark"})),
        ("mapbox", json!({"api_key": "good-mapbox"})),
        ("anthropic", json!({"api_key": "good-anthropic", "api_secret": "good-anthropic-admin"})),
    ] {
        app.post(&format!("/v1/integrations/providers/{slug}/connect"), &admin, &json!({"credentials": credentials}))
            .await
            .expect(201);
    }
    let app = &app;
    with_browser(app, DESKTOP, |page| async move {
        page.sign_in(ADMIN_EMAIL, PASSWORD).await;
        page.click_text("#main .tabs a", "Connected Apps").await;
        page.find_text("#main h1", "Connected Apps").await;
        page.until("three connections", || async {
            let n = page.eval("return document.querySelectorAll('.connection-card').length").await;
            (n == json!(3)).then_some(())
        })
        .await;
        let card = page.find("[data-provider=postmark]").await.text().await.unwrap();
        assert!(card.contains("Healthy") && card.contains(" ms"), "{card}");

        // Postmark: check now, the history grows; sender emails.
        page.click("a[aria-label='Manage Postmark']").await;
        page.find_text("#main h1", "Postmark").await;
        page.click_text("#main button", "Check now").await;
        page.find_text(".toast", "Health check: Healthy").await;
        page.until("two checks in the history", || async {
            let rows = page.eval("return document.querySelectorAll('#health-title ~ table tbody tr').length").await;
            (rows == json!(2)).then_some(())
        })
        .await;
        page.fill(".resource", "Email address", "billing@acme.test").await;
        page.fill(".resource", "Label (optional)", "<script>window.pwned=4</script>Billing").await;
        page.click_text(".resource button", "Add").await;
        page.find_text(".resource td", "billing@acme.test").await;
        page.find_text(".resource td", "<script>window.pwned=4</script>Billing").await;
        page.fill(".resource", "Email address", "ops@acme.test").await;
        page.fill(".resource", "Label (optional)", "").await;
        page.click_text(".resource button", "Add").await;
        page.find_text(".resource td", "ops@acme.test").await;
        // The first is the default; make the second one the default.
        page.click("button[aria-label='Make ops@acme.test the default']").await;
        page.find_text(".toast", "ops@acme.test is now the default.").await;
        page.find("button[aria-label='Make billing@acme.test the default']").await;
        page.click("button[aria-label='Edit billing@acme.test']").await;
        page.fill(".resource", "Label (optional)", "Invoices").await;
        page.click_text(".resource button", "Save").await;
        page.find_text(".resource td", "Invoices").await;
        page.click("button[aria-label='Delete billing@acme.test']").await;
        page.click_text("[role=alertdialog] button", "Delete").await;
        page.gone("button[aria-label='Delete billing@acme.test']").await;
        assert_eq!(page.eval("return window.pwned === undefined").await, json!(true));

        // Disconnect with a confirmation.
        page.click("#disconnect").await;
        page.find_text("[role=alertdialog]", "deletes its stored credentials").await;
        page.click_text("[role=alertdialog] button", "Disconnect").await;
        page.find_text(".toast", "Postmark was disconnected.").await;
        page.find_text("#main h1", "Connected Apps").await;
        page.until("two connections", || async {
            let n = page.eval("return document.querySelectorAll('.connection-card').length").await;
            (n == json!(2)).then_some(())
        })
        .await;

        // Anthropic: the models come from the provider (their names stay text), the usage chart.
        page.click("a[aria-label='Manage Anthropic']").await;
        page.find_text("#main h1", "Anthropic").await;
        let options = page
            .eval("return Array.from(document.querySelectorAll('.resource select option')).map(o => o.textContent)")
            .await;
        assert!(options.to_string().contains("Claude Test"), "{options}");
        assert!(options[1].as_str().unwrap().starts_with("<img"), "{options}");
        page.labelled("#main", "Model").await.select_by_value("claude-test-2").await.unwrap();
        page.click_text(".resource button", "Save model").await;
        page.find_text(".resource [role=status]", "Otesse uses claude-test-2.").await;
        page.find_text(".resource", "7,200 input and 2,400 output tokens in 7 days.").await;
        assert_eq!(
            page.eval("return document.querySelectorAll('.resource svg.chart rect.bar').length").await,
            json!(6)
        );

        // Mapbox: the active toggle.
        page.click_text("#main .tabs a", "Connected Apps").await;
        page.click("a[aria-label='Manage Mapbox']").await;
        page.find_text("#main h1", "Mapbox").await;
        page.click_text(".resource label", "Use this provider").await;
        page.find_text(".resource [role=status]", "Mapbox is inactive.").await;
    })
    .await;
    let listed = connections(app, &admin).await;
    let mapbox = listed.iter().find(|c| c["provider"] == "mapbox").unwrap();
    assert_eq!(mapbox["enabled"], false);
    let anthropic = listed.iter().find(|c| c["provider"] == "anthropic").unwrap();
    assert_eq!(anthropic["selected_model"], "claude-test-2");
    assert!(listed.iter().filter(|c| c["provider"] == "postmark").all(|c| c["status"] == "disconnected"));
}
