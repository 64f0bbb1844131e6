//! Connecting an OAuth2 provider in the browser (I12): Connect sends the browser to the fake
//! authorization server's consent page; "Deny" comes back to Connected Apps with the denial's
//! message, "Allow" comes back with the provider connected and the success message.

use otesse_server::config::ProviderSettings;
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::{DESKTOP, with_browser};
use crate::helpers::{ADMIN_EMAIL, PASSWORD, XeroCatalog, spawn_app_with, xero_catalog};

const CODE: &str = "browser-code-7f1";
const ACCESS: &str = "browser-access-canary-2b9";

/// The consent page: "Allow" and "Deny" send the browser back to the redirect URI with the
/// state, and a code or `error=access_denied`.
fn consent(request: &Request) -> ResponseTemplate {
    let query: std::collections::HashMap<String, String> = request.url.query_pairs().into_owned().collect();
    let back = |tail: &str| {
        let state: String = url::form_urlencoded::byte_serialize(query["state"].as_bytes()).collect();
        format!("{}?state={state}&{tail}", query["redirect_uri"])
    };
    let html = format!(
        "<!doctype html><title>Fake Xero</title><h1>Allow Otesse to use Xero?</h1>\
         <a id=allow href=\"{}\">Allow</a> <a id=deny href=\"{}\">Deny</a>",
        back(&format!("code={CODE}")),
        back("error=access_denied")
    );
    ResponseTemplate::new(200).set_body_raw(html, "text/html")
}

#[tokio::test]
async fn connect_an_oauth_provider_through_its_consent_page_and_back() {
    let fake = MockServer::start().await;
    Mock::given(method("GET")).and(path("/authorize")).respond_with(consent).mount(&fake).await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains(format!("code={CODE}")))
        .and(body_string_contains("code_verifier="))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": ACCESS, "refresh_token": "browser-refresh", "expires_in": 1800, "token_type": "Bearer"}),
        ))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/connections"))
        .and(header("Authorization", format!("Bearer {ACCESS}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"tenantId": "t-1"}])))
        .mount(&fake)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.toml");
    std::fs::write(&file, xero_catalog(&fake.uri(), XeroCatalog::default())).unwrap();
    let uri = fake.uri();
    let app = spawn_app_with(move |s| {
        s.catalog_file = Some(file);
        s.providers.insert(
            "xero".into(),
            ProviderSettings {
                base_url: Some(uri),
                client_id: Some("client-1".into()),
                client_secret: Some("browser-client-secret".to_owned().into()),
                ..Default::default()
            },
        );
        s.provider_timeout_ms = 5_000;
    })
    .await;
    let admin = app.admin().await;
    let app = &app;
    let fake_origin = fake.uri();
    with_browser(app, DESKTOP, |page| async move {
        page.sign_in(ADMIN_EMAIL, PASSWORD).await;
        let connect = || async {
            page.goto("/settings/integrations/all").await;
            page.click("#provider-xero .connect-button").await;
            page.find_text("[role=dialog] h2", "Connect Xero").await;
            page.click("#connect-submit").await;
            // The provider's own page, on its own origin.
            page.find_text("h1", "Allow Otesse to use Xero?").await;
            let at = page.client.current_url().await.unwrap();
            assert!(at.as_str().starts_with(&format!("{fake_origin}/authorize?")), "{at}");
        };

        // A crafted link: the address bar's text is never shown, only the page's own words.
        page.goto("/settings/integrations/connected?error=made_up&message=Call%20us%20at%20555-0100").await;
        page.find_text(".callback-message[role=alert]", "The connection was not made. Connect the provider again.")
            .await;
        let shown = page.text(".callback-message").await;
        assert!(!shown.contains("555"), "a link's message was shown: {shown}");

        // Denied: back on Connected Apps with the denial's message, nothing connected.
        connect().await;
        page.click("#deny").await;
        page.find_text(".callback-message[role=alert]", "Connection was cancelled. You denied access.").await;
        assert_eq!(page.path().await, "/settings/integrations/connected");
        page.find_text("#main .empty", "Nothing is connected yet.").await;

        // Allowed: back on Connected Apps, connected, with the success message.
        connect().await;
        page.click("#allow").await;
        page.find_text(".callback-message[role=status]", "Xero connected successfully").await;
        page.find_text(".connection-card[data-provider=xero]", "Healthy").await;
        let search = page.eval("return window.location.search").await;
        assert_eq!(search, json!(""), "the message is shown once: the address loses its query");
    })
    .await;

    // A fresh client: the pooled connection from before the browser ran may have idled out.
    let connections: serde_json::Value = reqwest::Client::new()
        .get(app.url("/v1/integrations/connections"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let connections = connections["data"].as_array().unwrap().clone();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["provider"], "xero");
    assert_eq!(connections[0]["status"], "connected");
}
