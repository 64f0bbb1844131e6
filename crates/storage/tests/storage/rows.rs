//! Rows the domain would never write (a hand-edited database, a downgrade) are reported as
//! storage errors, never a panic or a silently wrong value.

use otesse_domain::audit::AuditFilter;
use otesse_domain::event::EventKind;
use otesse_domain::page::PageRequest;
use otesse_domain::ports::{ApiKeyRepository, AuditLog, UserRepository};
use sea_orm::ConnectionTrait;

use crate::fixtures::{created, key, setup};
use crate::harness::TestDb;

#[tokio::test]
async fn sqlite_unmappable_rows_are_storage_errors() {
    unmappable_rows_are_storage_errors(TestDb::sqlite().await).await;
}

#[tokio::test]
#[cfg_attr(not(otesse_postgres), ignore = "set OTESSE_TEST_POSTGRES_URL to run on PostgreSQL")]
async fn postgres_unmappable_rows_are_storage_errors() {
    unmappable_rows_are_storage_errors(TestDb::postgres().await).await;
}

async fn unmappable_rows_are_storage_errors(test_db: TestDb) {
    let db = &test_db.db;
    let (organization, admin) = setup(db).await;
    let backend = key(&admin, "Backend");
    db.api_keys().insert(&backend, &created(&backend), 25, backend.created_at).await.unwrap();

    let raw = test_db.raw().await;
    for sql in [
        "UPDATE api_keys SET scope_level = 'superuser'",
        "UPDATE users SET role = 'owner'",
        "UPDATE audit_log SET action = 'api_key.deleted'",
    ] {
        raw.execute_unprepared(sql).await.unwrap();
    }
    raw.close().await.unwrap();

    let keys = db.api_keys();
    let err = keys.find(organization.id, backend.id).await.unwrap_err();
    assert!(err.0.contains("scope_level"), "{err}");
    assert!(keys.find_by_hash(&backend.key_hash).await.is_err());
    assert!(keys.list(organization.id).await.is_err());
    let err = db.users().find(admin.id).await.unwrap_err();
    assert!(err.0.contains("role"), "{err}");
    let page = PageRequest::new(None, None).unwrap();
    let everything = AuditFilter::default();
    assert!(db.audit().list(organization.id, &everything, &page).await.is_err());
    // A filter on a known action simply does not match the unknown one.
    let created_only = AuditFilter { action: Some(EventKind::ApiKeyCreated), ..AuditFilter::default() };
    assert!(db.audit().list(organization.id, &created_only, &page).await.unwrap().items.is_empty());

    test_db.finish().await;
}
