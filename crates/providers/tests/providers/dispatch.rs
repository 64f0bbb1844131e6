//! Dispatch by slug through the registry: operations a provider's module does not offer, and
//! every operation on a slug without a module, are reports made without any call.

use chrono::{DateTime, Utc};
use otesse_domain::integration::{Credentials, HealthOutcome, HealthReport};
use otesse_domain::ports::{OutgoingMessage, ProviderClient};
use secrecy::SecretString;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{assert_no_key, client, credentials, slug};

const ADMIN_KEY: &str = "admin_canary_4Rk";

fn with_admin_key() -> Credentials {
    Credentials { api_secret: Some(SecretString::from(ADMIN_KEY)), ..credentials() }
}

fn message() -> OutgoingMessage {
    OutgoingMessage { from: "a@acme.test".into(), to: "b@acme.test".into(), subject: "s".into(), body: "b".into() }
}

fn since() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-18T00:00:00Z").unwrap().to_utc()
}

/// A server that fails the test if anything calls it.
async fn untouched() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any()).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;
    server
}

fn assert_report(report: &HealthReport, detail: &str) {
    assert_no_key(report);
    assert!(!report.detail.contains(ADMIN_KEY), "{report:?}");
    assert_eq!(
        (report.outcome, report.detail.as_str(), report.response_time_ms),
        (HealthOutcome::Unreachable, detail, 0)
    );
}

#[tokio::test]
async fn operations_a_provider_does_not_offer_are_reported_without_a_call() {
    let server = untouched().await;
    let stripe = client("stripe", &server.uri());
    let email = stripe.send_email(&slug("stripe"), &credentials(), &message()).await;
    assert_report(&email.expect_err("stripe sends no email"), "provider does not send email");
    let usage = stripe.usage_report(&slug("stripe"), &with_admin_key(), since()).await;
    assert_report(&usage.expect_err("stripe has no usage report"), "no usage report for this provider");

    let postmark = client("postmark", &server.uri());
    let models = postmark.list_models(&slug("postmark"), &credentials()).await;
    assert_report(&models.expect_err("postmark has no models"), "provider has no models");

    // Anthropic reads usage with the admin key only; without one nothing is asked.
    let anthropic = client("anthropic", &server.uri());
    let usage = anthropic.usage_report(&slug("anthropic"), &credentials(), since()).await;
    assert_report(&usage.expect_err("no admin key, no usage report"), "no usage report for this provider");
    server.verify().await;
}

#[tokio::test]
async fn every_operation_on_a_provider_without_a_client_reports_no_client() {
    let server = untouched().await;
    let known = client("stripe", &server.uri());
    let sendgrid = slug("sendgrid");
    assert_report(&known.health_check(&sendgrid, &credentials()).await, "no client for provider");
    assert_report(
        &known.list_models(&sendgrid, &credentials()).await.expect_err("no client"),
        "no client for provider",
    );
    assert_report(
        &known.send_email(&sendgrid, &credentials(), &message()).await.expect_err("no client"),
        "no client for provider",
    );
    assert_report(
        &known.usage_report(&sendgrid, &with_admin_key(), since()).await.expect_err("no client"),
        "no client for provider",
    );
    server.verify().await;
}
