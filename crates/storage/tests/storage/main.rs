//! The storage adapter against real databases: every scenario runs on SQLite (a fresh file per
//! test) and on PostgreSQL (a fresh schema per test) when `OTESSE_TEST_POSTGRES_URL` is set,
//! e.g. `OTESSE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p
//! otesse-storage`. Without it the PostgreSQL tests are listed as ignored, with that reason.

/// For each `async fn scenario(db: Database)` listed, generates `sqlite::scenario` and
/// `postgres::scenario` tests that run it on a fresh database.
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let test_db = crate::harness::TestDb::sqlite().await;
                    super::$scenario(test_db.db.clone()).await;
                    test_db.finish().await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[cfg_attr(
                    not(otesse_postgres),
                    ignore = "set OTESSE_TEST_POSTGRES_URL to run on PostgreSQL"
                )]
                async fn $scenario() {
                    let test_db = crate::harness::TestDb::postgres().await;
                    super::$scenario(test_db.db.clone()).await;
                    test_db.finish().await;
                }
            )*
        }
    };
}

mod accounts;
mod api_keys;
mod audit;
mod contacts;
mod customers;
mod fixtures;
mod harness;
mod idempotency;
mod integrations;
mod jobs;
mod key_invalidation;
mod notifications;
mod oauth;
mod rows;
mod sealed;
mod service_tokens;
mod usage;
mod users;
mod webhooks;
