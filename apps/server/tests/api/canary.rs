//! Secrets appear nowhere they should not: a canary key, password and session token are
//! looked for in the database, the logs and every later response.

use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, captured_logs, key_body, spawn_app};

#[tokio::test]
async fn a_canary_key_and_password_leak_nowhere() {
    let app = spawn_app().await;
    app.setup().await.expect(201);
    let session = app.session(ADMIN_EMAIL).await;
    let (key, id) = app.key(&session, key_body("Canary", "live")).await;

    // Use the key the ways clients do, including wrong ways.
    app.get("/v1/whoami", &key).await.expect(200);
    app.post("/v1/customers", &key, &json!({"name": "Canary customer"})).await.expect(201);
    app.send(app.request(Method::GET, &format!("/v1/whoami?api_key={key}")).bearer_auth(&key)).await.expect(400);
    app.get("/v1/api-keys", &key).await.expect(401);
    app.flush_usage().await;

    let secrets = [key.as_str(), PASSWORD, session.as_str()];
    let mut later = Vec::new();
    for path in [
        "/v1/api-keys".to_owned(),
        format!("/v1/api-keys/{id}"),
        format!("/v1/api-keys/{id}/usage"),
        "/v1/integrations/audit-log".to_owned(),
        "/v1/me".to_owned(),
        "/v1/users".to_owned(),
    ] {
        later.push(app.get(&path, &session).await.text);
    }
    later.push(app.get("/v1/whoami", &key).await.text);
    later.push(app.get("/v1/customers", &key).await.text);
    for text in &later {
        for secret in secrets {
            assert!(!text.contains(secret), "a secret came back in a response: {text}");
        }
    }

    let (_db, raw, sqlite_file, _dir) = app.stop().await;
    let logs = captured_logs();
    assert!(logs.contains("api key created"), "the log capture works");
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    match sqlite_file {
        Some(file) => {
            let mut bytes = std::fs::read(&file).unwrap();
            if let Ok(wal) = std::fs::read(file.with_extension("db-wal")) {
                bytes.extend(wal);
            }
            assert!(contains(&bytes, b"Canary customer"), "the scan reads the right file");
            for secret in secrets {
                assert!(!contains(&bytes, secret.as_bytes()), "a secret is stored in the database file");
            }
        }
        None => {
            // PostgreSQL: dump every text column of every table of this schema.
            let backend = raw.get_database_backend();
            let tables = raw
                .query_all_raw(Statement::from_string(
                    backend,
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()".to_owned(),
                ))
                .await
                .unwrap();
            for table in tables {
                let name: String = table.try_get("", "table_name").unwrap();
                let rows = raw
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("SELECT row_to_json(t)::text AS j FROM \"{name}\" t"),
                    ))
                    .await
                    .unwrap();
                for row in rows {
                    let text: String = row.try_get("", "j").unwrap();
                    for secret in secrets {
                        assert!(!text.contains(secret), "a secret is stored in {name}");
                    }
                }
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}
