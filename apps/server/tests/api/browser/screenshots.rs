//! Every page over sample data made through the API: each must fit a 375 px phone as well as a
//! desktop and name every control (a test), and `cargo xtask screenshots` photographs each at
//! both widths into `docs/screenshots/` (an ignored test the task runs).

use std::path::PathBuf;

use otesse_domain::api_key::ApiKeyId;
use otesse_domain::organization::OrganizationId;
use otesse_domain::ports::UsageSink;
use otesse_domain::usage::UsageRecord;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::integrations::{fake_providers, use_fakes};
use super::{DESKTOP, PHONE, Page, with_browser};
use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestApp, eventually, spawn_app_with};

/// What the sample organization holds, for the pages' paths.
struct Sample {
    key_id: String,
    postmark: String,
    stripe: String,
    anthropic: String,
    _fakes: (MockServer, MockServer),
}

fn key(name: &str, level: &str, scopes: &[&str], expires: &str, environment: &str) -> Value {
    json!({"name": name, "description": format!("{name}: sample key"), "scope_level": level, "scopes": scopes,
           "expires_in": expires, "environment": environment, "allowed_ips": []})
}

/// An organization with keys, usage over two weeks, connections with resources, a webhook
/// endpoint with a delivered test event, users and notifications.
async fn sample(app: &TestApp, fakes: (MockServer, MockServer)) -> Sample {
    let admin = app.admin().await;
    app.user(&admin, "manager@acme.test", "manager").await;
    app.user(&admin, "viewer@acme.test", "viewer").await;
    let me = app.get("/v1/me", &admin).await.expect(200).clone();
    let org = OrganizationId(uuid::Uuid::parse_str(me["organization"]["id"].as_str().unwrap()).unwrap());

    let (live, key_id) = app
        .key(&admin, key("Production Backend", "read_write", &["customers.read", "customers.write"], "90d", "live"))
        .await;
    let (_, old) = app.key(&admin, key("Old Staging Server", "read_only", &["customers.read"], "1y", "test")).await;
    app.post(&format!("/v1/api-keys/{old}/revoke"), &admin, &json!({})).await.expect(200);
    let (_, reporting) =
        app.key(&admin, key("Reporting Dashboard", "read_only", &["reports.read"], "30d", "live")).await;
    let soon = chrono::Utc::now() + chrono::Duration::days(5);
    app.sql(
        "UPDATE api_keys SET expires_at = $1 WHERE id = $2",
        vec![soon.into(), uuid::Uuid::parse_str(&reporting).unwrap().into()],
    )
    .await;
    app.key(
        &admin,
        key("Zapier Integration", "admin", &["settings.read", "settings.write", "webhooks.manage"], "never", "live"),
    )
    .await;
    // Two weeks of earlier traffic, so the chart has a shape.
    let id = ApiKeyId(uuid::Uuid::parse_str(&key_id).unwrap());
    for day in (1..14_i64).rev() {
        for n in 0..((day * 7) % 11 + 2) {
            app.usage.record(UsageRecord {
                api_key_id: id,
                organization_id: org,
                occurred_at: chrono::Utc::now() - chrono::Duration::days(day) + chrono::Duration::minutes(n),
                method: if n % 3 == 0 { "POST" } else { "GET" }.into(),
                path: "/v1/customers".into(),
                status: if n % 5 == 4 { 404 } else { 200 },
                response_time_ms: 3 + (n as u32 % 7),
                client_ip: Some(std::net::IpAddr::from([203, 0, 113, (n % 3) as u8 + 7])),
            });
        }
    }
    for _ in 0..3 {
        app.send(app.request(Method::GET, "/v1/customers").bearer_auth(&live)).await.expect(200);
    }
    app.send(app.request(Method::POST, "/v1/customers").bearer_auth(&live).json(&json!({"name": "Ada Lovelace"})))
        .await
        .expect(201);
    app.flush_usage().await;

    let mut ids = std::collections::HashMap::new();
    for (slug, credentials) in [
        ("postmark", json!({"api_key": "good-postmark"})),
        ("stripe", json!({"api_key": "good-stripe"})),
        ("mapbox", json!({"api_key": "good-mapbox"})),
        ("anthropic", json!({"api_key": "good-anthropic", "api_secret": "good-anthropic-admin"})),
    ] {
        let connected = app
            .post(&format!("/v1/integrations/providers/{slug}/connect"), &admin, &json!({"credentials": credentials}))
            .await;
        ids.insert(slug, connected.expect(201)["id"].as_str().unwrap().to_owned());
    }
    for (value, label) in [("billing@acme.test", "Billing"), ("hello@acme.test", "Support")] {
        app.post(
            &format!("/v1/integrations/connections/{}/senders", ids["postmark"]),
            &admin,
            &json!({"value": value, "label": label}),
        )
        .await
        .expect(201);
    }
    app.post(
        &format!("/v1/integrations/connections/{}/webhook-endpoints", ids["stripe"]),
        &admin,
        &json!({"events": ["charge.succeeded", "invoice.paid"], "signing_secret": "whsec_sample", "description": "Payments"}),
    )
    .await
    .expect(201);
    app.send(
        app.request(Method::PUT, &format!("/v1/integrations/connections/{}/model", ids["anthropic"]))
            .bearer_auth(&admin)
            .json(&json!({"model": "claude-test-2"})),
    )
    .await
    .expect(200);

    let hook = app
        .post(
            "/v1/webhook-endpoints",
            &admin,
            &json!({"url": format!("{}/hooks", fakes.1.uri()), "events": ["api_key.revoked", "integration.connected", "webhook.test"],
                    "description": "Our CRM"}),
        )
        .await;
    let hook = hook.expect(201)["id"].as_str().unwrap().to_owned();
    app.post(&format!("/v1/webhook-endpoints/{hook}/test"), &admin, &json!({})).await.expect(202);
    eventually("the test delivery", || async {
        let log = app.get(&format!("/v1/webhook-endpoints/{hook}/deliveries"), &admin).await;
        (log.body["data"][0]["state"] == "succeeded").then_some(())
    })
    .await;

    let user = uuid::Uuid::parse_str(me["user"]["id"].as_str().unwrap()).unwrap();
    for (days, read) in [(14, true), (7, false)] {
        let now = chrono::Utc::now();
        app.sql(
            "INSERT INTO notifications (id, organization_id, user_id, kind, title, body, subject, dedupe_key, created_at, read_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            vec![
                uuid::Uuid::now_v7().into(),
                org.0.into(),
                user.into(),
                "api_key.expiring".into(),
                format!("API key Reporting Dashboard expires in {days} days").into(),
                "Rotate it before it stops working: generate a new key, update the integration, then revoke this one.".into(),
                format!("api_key:{reporting}").into(),
                format!("sample:{days}").into(),
                (now - chrono::Duration::days(14 - days)).into(),
                if read { Some(now) } else { None }.into(),
            ],
        )
        .await;
    }
    Sample {
        key_id,
        postmark: ids["postmark"].clone(),
        stripe: ids["stripe"].clone(),
        anthropic: ids["anthropic"].clone(),
        _fakes: fakes,
    }
}

async fn sample_app() -> (TestApp, Sample) {
    let providers = fake_providers().await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).and(path("/hooks")).respond_with(ResponseTemplate::new(204)).mount(&receiver).await;
    let app = spawn_app_with(|s| {
        use_fakes(s, &providers);
        s.jobs.enabled = true;
        s.jobs.poll_interval_ms = 50;
    })
    .await;
    let sample = sample(&app, (providers, receiver)).await;
    (app, sample)
}

/// Each page: a file name, its path, what shows it is drawn, and an action after loading.
fn pages(sample: &Sample) -> Vec<(&'static str, String, &'static str, Option<&'static str>)> {
    vec![
        ("api-keys", "/settings/integrations/api-keys".into(), "#main tbody tr", None),
        ("generate-key", "/settings/integrations/api-keys".into(), "#main tbody tr", Some("#generate-key")),
        ("key-detail", format!("/settings/integrations/api-keys/{}", sample.key_id), "svg.chart", None),
        ("all-integrations", "/settings/integrations/all".into(), "#provider-cards .card", None),
        (
            "connect-modal",
            "/settings/integrations/all".into(),
            "#provider-quo .connect-button",
            Some("#provider-quo .connect-button"),
        ),
        ("connected-apps", "/settings/integrations/connected".into(), ".connection-card", None),
        ("connection-postmark", format!("/settings/integrations/connected/{}", sample.postmark), ".resource td", None),
        ("connection-stripe", format!("/settings/integrations/connected/{}", sample.stripe), ".resource code", None),
        (
            "connection-anthropic",
            format!("/settings/integrations/connected/{}", sample.anthropic),
            ".resource svg.chart",
            None,
        ),
        ("webhooks", "/settings/integrations/webhooks".into(), ".delivery-log td", None),
        ("users", "/settings/users".into(), "#main tbody tr", None),
        ("notifications", "/settings/notifications".into(), ".notification", None),
        ("audit-log", "/settings/audit-log".into(), "#audit-results tbody tr", None),
    ]
}

async fn show(page: &Page, path: &str, ready: &str, action: Option<&str>) {
    page.goto(path).await;
    page.find(ready).await;
    if let Some(action) = action {
        page.click(action).await;
        page.find("[role=dialog] input, [role=dialog] select").await;
    }
    // Fonts and images settle before anything is measured.
    page.until("images to load", || async {
        let done = page.eval("return Array.from(document.images).every(i => i.complete)").await;
        (done == json!(true)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn every_page_fits_a_phone_and_a_desktop_and_names_its_controls() {
    let (app, sample) = sample_app().await;
    let pages = pages(&sample);
    for size in [PHONE, DESKTOP] {
        let pages = pages.clone();
        with_browser(&app, size, move |page| async move {
            page.goto("/").await;
            page.assert_fits("the sign-in page").await;
            page.assert_controls_named("the sign-in page").await;
            page.sign_in(ADMIN_EMAIL, PASSWORD).await;
            for (name, path, ready, action) in &pages {
                show(&page, path, ready, *action).await;
                let what = format!("{name} at {} px", size.0);
                page.assert_fits(&what).await;
                page.assert_controls_named(&what).await;
            }
        })
        .await;
    }
}

/// `cargo xtask screenshots`: PNGs of every page at 1280 and 375 px into `OTESSE_SCREENSHOTS_DIR`.
#[tokio::test]
#[ignore = "writes docs/screenshots; run with `cargo xtask screenshots`"]
async fn screenshots() {
    let dir =
        PathBuf::from(std::env::var("OTESSE_SCREENSHOTS_DIR").expect("OTESSE_SCREENSHOTS_DIR names the output folder"));
    std::fs::create_dir_all(&dir).unwrap();
    let (app, sample) = sample_app().await;
    let pages = pages(&sample);
    for (size, suffix) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        let dir = dir.clone();
        let pages = pages.clone();
        with_browser(&app, size, move |page| {
            async move {
                page.goto("/").await;
                page.find("#sign-in").await;
                page.screenshot(&dir.join(format!("sign-in-{suffix}.png"))).await;
                page.sign_in(ADMIN_EMAIL, PASSWORD).await;
                for (name, path, ready, action) in &pages {
                    show(&page, path, ready, *action).await;
                    // A full-page picture: the window as tall as the page (within reason).
                    let height = page.eval("return Math.max(document.documentElement.scrollHeight, document.querySelector('.modal') ? document.querySelector('.modal').scrollHeight + 40 : 0)").await;
                    let height = height.as_u64().unwrap_or(900).clamp(u64::from(size.1), 4000) as u32;
                    page.resize((size.0, height)).await;
                    page.eval("window.scrollTo(0, 0)").await;
                    page.screenshot(&dir.join(format!("{name}-{suffix}.png"))).await;
                    page.resize(size).await;
                }
            }
        })
        .await;
    }
    eprintln!("screenshots written to {}", dir.display());
}
