//! The client against the real server: keys, customers, pagination, idempotency, errors,
//! webhook endpoints and integrations, each through the client's own methods.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use otesse_client::generated::{
    Category, ConnectRequest, CreateCustomerRequest, CreateEndpointRequest, CreateKeyRequest, CreatedKeyView,
    CustomerView, Environment, EventType, ExpiresIn, RotateKeyRequest, Scope, ScopeLevel, UpdateCustomerRequest,
};
use otesse_client::{Client, Error, ListParams, ProviderFilter, Secret};
use reqwest::Method;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::server::Server;

fn key_request(name: &str) -> CreateKeyRequest {
    CreateKeyRequest {
        name: name.into(),
        description: Some("made by the Rust client's tests".into()),
        scope_level: ScopeLevel::ReadWrite,
        scopes: vec![Scope::CustomersRead, Scope::CustomersWrite],
        expires_in: ExpiresIn::X90d,
        environment: Environment::Live,
        allowed_ips: vec![],
    }
}

/// A client holding a new customers key, and the key's record.
async fn key_client(server: &Server, admin: &Client, name: &str) -> (Client, CreatedKeyView) {
    let created = admin.api_keys().create(&key_request(name)).await.unwrap();
    let client = Client::with_api_key(&server.base_url, created.key.expose_secret().to_owned()).unwrap();
    (client, created)
}

fn customer(name: &str) -> CreateCustomerRequest {
    CreateCustomerRequest {
        name: name.into(),
        email: Some(format!("{}@example.test", name.to_lowercase())),
        phone: None,
    }
}

#[tokio::test]
async fn a_key_created_through_the_client_works_and_is_listed() {
    let server = Server::spawn().await;
    let admin = server.admin().await;
    let me = admin.me().await.unwrap();
    assert_eq!(me.user.email, crate::server::ADMIN_EMAIL);

    let (client, created) = key_client(&server, &admin, "Bookings backend").await;
    assert!(created.key.expose_secret().starts_with("erp_live_"), "the plaintext is answered once");
    assert!(!format!("{created:?}").contains(created.key.expose_secret()), "Debug hides the key");
    assert!(!format!("{client:?}").contains(created.key.expose_secret()), "the client's Debug hides the key");

    let whoami = client.whoami().await.unwrap();
    assert_eq!((whoami.id, whoami.scope_level), (created.id, ScopeLevel::ReadWrite));
    assert_eq!(whoami.scopes, vec![Scope::CustomersRead, Scope::CustomersWrite]);

    // The key's usage log has the request once its batch is written (every 100 ms).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let usage: Vec<_> = admin.api_keys().usage(created.id, Some(1)).try_collect().await.unwrap();
        if let Some(request) = usage.first() {
            assert_eq!(
                (request.method.as_str(), request.endpoint.as_str(), request.status),
                ("GET", "/v1/whoami", 200)
            );
            break;
        }
        assert!(Instant::now() < deadline, "the whoami request never reached the usage log");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let keys: Vec<_> = admin.api_keys().list().try_collect().await.unwrap();
    assert_eq!(keys.iter().map(|key| key.id).collect::<Vec<_>>(), vec![created.id]);
    let detail = admin.api_keys().get(created.id).await.unwrap();
    assert_eq!(detail.name, "Bookings backend");
    assert_eq!(detail.masked_key, created.masked_key);

    let rotated =
        admin.api_keys().rotate(created.id, &RotateKeyRequest { name: None, revoke_old_at: None }).await.unwrap();
    assert_eq!(rotated.name, "Bookings backend (rotated)");
    assert_ne!(rotated.key.expose_secret(), created.key.expose_secret());
    let keys: Vec<_> = admin.api_keys().list().try_collect().await.unwrap();
    assert_eq!(keys.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn customers_are_created_read_updated_and_deleted_through_the_client() {
    let server = Server::spawn().await;
    let admin = server.admin().await;
    let (client, _) = key_client(&server, &admin, "customers").await;
    let customers = client.customers();

    let made = customers.create(&customer("Ada")).await.unwrap();
    assert_eq!((made.name.as_str(), made.email.as_deref()), ("Ada", Some("ada@example.test")));
    assert_eq!(made.environment, Environment::Live);
    assert_eq!(customers.get(made.id).await.unwrap().id, made.id);

    let change = UpdateCustomerRequest { name: Some("Ada Lovelace".into()), ..Default::default() };
    let updated = customers.update(made.id, &change).await.unwrap();
    assert_eq!(updated.name, "Ada Lovelace");
    assert_eq!(updated.email.as_deref(), Some("ada@example.test"), "an absent field is left alone");

    customers.delete(made.id).await.unwrap();
    let error = customers.get(made.id).await.unwrap_err();
    let api = error.api().expect("the server's error");
    assert_eq!(
        (api.status.as_u16(), api.code.as_str(), api.kind.as_str()),
        (404, "resource_missing", "invalid_request_error")
    );
    assert!(api.request_id.is_some(), "every answer carries X-Request-Id");
    server.stop().await;
}

#[tokio::test]
async fn a_list_streams_every_item_across_pages() {
    let server = Server::spawn().await;
    let admin = server.admin().await;
    let (client, _) = key_client(&server, &admin, "pages").await;
    let mut made = Vec::new();
    for n in 0..7 {
        made.push(client.customers().create(&customer(&format!("Customer{n}"))).await.unwrap().id);
    }

    let first = client.customers().list_page(&ListParams::limit(3)).await.unwrap();
    assert_eq!(first.data.len(), 3);
    assert!(first.has_more && first.next_cursor.is_some(), "7 customers need more than one page of 3");
    let second =
        client.customers().list_page(&ListParams { limit: Some(3), cursor: first.next_cursor.clone() }).await.unwrap();
    assert_eq!(second.data.len(), 3);
    assert!(second.data.iter().all(|c| !first.data.iter().any(|f| f.id == c.id)), "the cursor moves on");

    // Pages of 3: the stream must fetch three of them to yield all seven.
    let streamed: Vec<CustomerView> = client.customers().list(Some(3)).try_collect().await.unwrap();
    let mut newest_first = made.clone();
    newest_first.reverse();
    assert_eq!(streamed.iter().map(|c| c.id).collect::<Vec<_>>(), newest_first);
    server.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_answers_the_first_create_and_never_repeats_a_secret() {
    let server = Server::spawn().await;
    let admin = server.admin().await;
    let (client, _) = key_client(&server, &admin, "idempotency").await;

    // A customer: the retry gets the first answer back, and no second customer exists.
    let key = uuid::Uuid::new_v4().to_string();
    let body = customer("Grace");
    let first: CustomerView =
        client.send_with_idempotency_key(Method::POST, "customers", Some(&body), &key).await.unwrap();
    let again: CustomerView =
        client.send_with_idempotency_key(Method::POST, "/customers", Some(&body), &key).await.unwrap();
    assert_eq!(first.id, again.id);
    let all: Vec<_> = client.customers().list(None).try_collect().await.unwrap();
    assert_eq!(all.len(), 1);

    // A key: its answer held the plaintext, so the retry is refused with where the key is.
    let key = uuid::Uuid::new_v4().to_string();
    let request = key_request("made once");
    let created: CreatedKeyView =
        admin.send_with_idempotency_key(Method::POST, "api-keys", Some(&request), &key).await.unwrap();
    let retry =
        admin.send_with_idempotency_key::<_, CreatedKeyView>(Method::POST, "api-keys", Some(&request), &key).await;
    match retry {
        Err(Error::SecretAlreadyShown { location, error }) => {
            assert_eq!(location.as_deref(), Some(format!("/v1/api-keys/{}", created.id).as_str()));
            assert_eq!((error.status.as_u16(), error.code.as_str()), (409, "idempotency_secret_shown"));
        }
        other => panic!("expected SecretAlreadyShown, got {other:?}"),
    }
    let keys: Vec<_> = admin.api_keys().list().try_collect().await.unwrap();
    assert_eq!(keys.iter().filter(|k| k.name == "made once").count(), 1, "the retry made no second key");

    // The same key with another body is the server's 422, not a retry.
    let other = customer("Someone else");
    let key = uuid::Uuid::new_v4().to_string();
    let _: CustomerView = client.send_with_idempotency_key(Method::POST, "customers", Some(&body), &key).await.unwrap();
    let error = client
        .send_with_idempotency_key::<_, CustomerView>(Method::POST, "customers", Some(&other), &key)
        .await
        .unwrap_err();
    assert_eq!(error.api().map(|e| (e.status.as_u16(), e.code.as_str())), Some((422, "idempotency_error")));
    server.stop().await;
}

#[tokio::test]
async fn a_revoked_key_fails_with_the_servers_type_code_and_message() {
    let server = Server::spawn().await;
    let admin = server.admin().await;
    let (client, created) = key_client(&server, &admin, "to revoke").await;
    client.customers().list_page(&ListParams::default()).await.unwrap();

    let revoked = admin.api_keys().revoke(created.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    let error = client.customers().list_page(&ListParams::default()).await.unwrap_err();
    let Error::Api(api) = &error else { panic!("expected the server's error, got {error:?}") };
    assert_eq!(api.status.as_u16(), 401);
    assert_eq!(api.kind, "authentication_error");
    assert_eq!(api.code, "api_key_revoked");
    assert_eq!(api.message, "This API key has been revoked.");
    assert_eq!(api.error_code(), Some(otesse_client::generated::ErrorCode::ApiKeyRevoked));
    assert_eq!(error.to_string(), "401 api_key_revoked (authentication_error): This API key has been revoked.");
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(created.key.expose_secret()), "no key in {shown}");
    }

    // A session on a keyed route: the server's own refusal, not retried (a 401).
    let error = admin.customers().list_page(&ListParams::default()).await.unwrap_err();
    assert_eq!(error.api().map(|e| e.code.as_str()), Some("api_key_required"));
    server.stop().await;
}

#[tokio::test]
async fn webhook_endpoints_are_made_listed_and_deleted_and_deliveries_listed() {
    let server = Server::spawn_with(|s| s.allow_loopback_urls = true).await;
    let admin = server.admin().await;
    let webhooks = admin.webhooks();
    let types = webhooks.event_types().await.unwrap();
    assert!(types.data.iter().any(|t| t.name == EventType::ApiKeyRevoked));

    let request = CreateEndpointRequest {
        url: "http://127.0.0.1:9/hooks".into(),
        events: vec![EventType::ApiKeyRevoked],
        description: Some("the client's test".into()),
    };
    let endpoint = webhooks.create(&request).await.unwrap();
    assert!(endpoint.secret.expose_secret().starts_with("whsec_"));
    assert!(otesse_client::webhooks::WebhookSecret::parse(endpoint.secret.expose_secret()).is_ok());
    assert_eq!(webhooks.list().await.unwrap().data.iter().map(|e| e.id).collect::<Vec<_>>(), vec![endpoint.id]);
    assert_eq!(webhooks.get(endpoint.id).await.unwrap().events, vec![EventType::ApiKeyRevoked]);

    let delivery = webhooks.send_test(endpoint.id).await.unwrap();
    let deliveries: Vec<_> = webhooks.deliveries(endpoint.id, Some(1)).try_collect().await.unwrap();
    assert_eq!(deliveries.iter().map(|d| d.id).collect::<Vec<_>>(), vec![delivery.id]);

    webhooks.delete(endpoint.id).await.unwrap();
    assert_eq!(webhooks.get(endpoint.id).await.unwrap_err().api().map(|e| e.status.as_u16()), Some(404));
    server.stop().await;
}

#[tokio::test]
async fn an_integration_is_browsed_connected_checked_and_disconnected() {
    const TOKEN: &str = "postmark-server-token-for-the-client";
    let fake = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/server"))
        .and(header("X-Postmark-Server-Token", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ID": 1, "Name": "Acme"})))
        .mount(&fake)
        .await;
    Mock::given(method("GET"))
        .and(path("/server"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({"ErrorCode": 10, "Message": "no"})))
        .mount(&fake)
        .await;
    let uri = fake.uri();
    let server = Server::spawn_with(move |s| {
        s.providers.insert(
            "postmark".into(),
            otesse_server::config::ProviderSettings { base_url: Some(uri), ..Default::default() },
        );
    })
    .await;
    let admin = server.admin().await;
    let integrations = admin.integrations();

    let all = integrations.providers(&ProviderFilter::default()).await.unwrap();
    assert!(all.data.iter().any(|p| p.slug == "postmark") && all.data.iter().any(|p| p.slug == "stripe"));
    let communication =
        integrations.providers(&ProviderFilter { category: Some(Category::Communication), q: None }).await.unwrap();
    assert!(communication.data.iter().all(|p| p.category == Category::Communication));
    assert!(communication.data.iter().any(|p| p.slug == "postmark") && communication.data.len() < all.data.len());
    assert_eq!(integrations.provider("postmark").await.unwrap().slug, "postmark");

    let credentials = |token: &str| ConnectRequest {
        credentials: Some([("api_key".to_owned(), Secret::from(token))].into_iter().collect()),
        use_preconfigured: None,
    };
    let refused = integrations.connect("postmark", &credentials("wrong")).await.unwrap_err();
    assert_eq!(
        refused.api().map(|e| (e.status.as_u16(), e.code.as_str())),
        Some((422, "provider_credentials_invalid"))
    );

    let connection = integrations.connect("postmark", &credentials(TOKEN)).await.unwrap();
    let listed = integrations.connections().await.unwrap();
    assert_eq!(listed.data.iter().map(|c| c.id).collect::<Vec<_>>(), vec![connection.id]);
    let check = integrations.check_health(connection.id).await.unwrap();
    let history = integrations.health_checks(connection.id).await.unwrap();
    assert!(history.data.iter().any(|h| h.id == check.id));
    assert!(!integrations.connection(connection.id).await.unwrap().health_history.is_empty());

    integrations.disconnect(connection.id).await.unwrap();
    assert!(
        integrations
            .connections()
            .await
            .unwrap()
            .data
            .iter()
            .all(|c| c.id != connection.id || c.disconnected_at.is_some())
    );
    server.stop().await;
}
