//! Customers guarded by keys (P7): tenant and environment isolation, CRUD, validation.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn customers_can_be_created_read_updated_listed_and_deleted() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let key = app.customers_key(&admin, "live").await;
    let created = app
        .post(
            "/v1/customers",
            &key,
            &json!({"name": "Ada Lovelace", "email": "ADA@example.com", "phone": "+1 555 0100"}),
        )
        .await;
    let created = created.expect(201).clone();
    assert_eq!(created["email"], "ada@example.com");
    assert_eq!(created["environment"], "live");
    let id = created["id"].as_str().unwrap();

    let fetched = app.get(&format!("/v1/customers/{id}"), &key).await;
    assert_eq!(fetched.expect(200)["name"], "Ada Lovelace");

    let patch = app
        .send(
            app.request(reqwest::Method::PATCH, &format!("/v1/customers/{id}"))
                .bearer_auth(&key)
                .json(&json!({"email": null, "name": "Ada K."})),
        )
        .await;
    let patched = patch.expect(200);
    assert_eq!(patched["name"], "Ada K.");
    assert!(patched["email"].is_null());
    assert_eq!(patched["phone"], "+1 555 0100", "absent fields are left alone");

    for n in 0..3 {
        app.post("/v1/customers", &key, &json!({"name": format!("c{n}")})).await.expect(201);
    }
    let page1 = app.get("/v1/customers?limit=2", &key).await;
    let page1 = page1.expect(200).clone();
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    assert_eq!(page1["data"][0]["name"], "c2", "newest first");
    assert_eq!(page1["has_more"], true);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = app.get(&format!("/v1/customers?limit=2&cursor={cursor}"), &key).await;
    let page2 = page2.expect(200);
    assert_eq!(page2["data"].as_array().unwrap().len(), 2);
    assert_eq!(page2["has_more"], false);
    app.get("/v1/customers?limit=500", &key).await.expect_error(400, "invalid_parameter");
    app.get("/v1/customers?cursor=garbage", &key).await.expect_error(400, "invalid_parameter");

    app.send(app.request(reqwest::Method::DELETE, &format!("/v1/customers/{id}")).bearer_auth(&key)).await.expect(204);
    app.get(&format!("/v1/customers/{id}"), &key).await.expect_error(404, "resource_missing");
}

#[tokio::test]
async fn invalid_customers_are_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let key = app.customers_key(&admin, "live").await;
    for body in [
        json!({"name": ""}),
        json!({"name": "A", "email": "nope"}),
        json!({"name": "A", "phone": "call me"}),
        json!({"email": "a@b.co"}),
    ] {
        let answer = app.post("/v1/customers", &key, &body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        answer.error();
    }
    assert_eq!(app.get("/v1/customers", &key).await.expect(200)["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn test_keys_never_see_live_data_and_other_organizations_see_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let live = app.customers_key(&admin, "live").await;
    let test = app.customers_key(&admin, "test").await;
    let created = app.post("/v1/customers", &live, &json!({"name": "Live customer"})).await;
    let id = created.expect(201)["id"].as_str().unwrap().to_owned();

    app.get(&format!("/v1/customers/{id}"), &test).await.expect_error(404, "resource_missing");
    assert_eq!(app.get("/v1/customers", &test).await.expect(200)["data"].as_array().unwrap().len(), 0);

    let other_admin = app.other_organization("boss@other.test").await;
    let other = app.customers_key(&other_admin, "live").await;
    app.get(&format!("/v1/customers/{id}"), &other).await.expect_error(404, "resource_missing");
    let patch = app
        .request(reqwest::Method::PATCH, &format!("/v1/customers/{id}"))
        .bearer_auth(&other)
        .json(&json!({"name": "pwned"}));
    app.send(patch).await.expect_error(404, "resource_missing");
    let delete = app.request(reqwest::Method::DELETE, &format!("/v1/customers/{id}")).bearer_auth(&other);
    app.send(delete).await.expect_error(404, "resource_missing");
    assert_eq!(app.get(&format!("/v1/customers/{id}"), &live).await.expect(200)["name"], "Live customer");
}

/// Found by schemathesis: `web::Json` built a struct from a JSON array of its fields in order,
/// so `["Acme", null, null]` created a customer. Every JSON body must be an object.
#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let key = app.customers_key(&admin, "live").await;
    for body in [json!(["Acme", null, null]), json!(["Acme", "a@b.test", "+15550100"]), json!("Acme"), json!(null)] {
        let answer = app.post("/v1/customers", &key, &body).await;
        answer.expect_error(400, "invalid_body");
    }
    let created = app.post("/v1/customers", &key, &json!({"name": "Acme"})).await.expect(201).clone();
    let id = created["id"].as_str().unwrap();
    let patch = app
        .send(
            app.request(Method::PATCH, &format!("/v1/customers/{id}"))
                .bearer_auth(&key)
                .json(&json!(["Renamed", null, null])),
        )
        .await;
    patch.expect_error(400, "invalid_body");
    let listed = app.get("/v1/customers", &key).await;
    let names: Vec<&str> =
        listed.expect(200)["data"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Acme"]);
    let created = app
        .send(app.request(Method::POST, "/v1/setup").json(&json!(["t", "Org", "x@y.test", "long password 1"])))
        .await;
    created.expect_error(400, "invalid_body");
}
