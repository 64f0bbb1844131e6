//! How many usage rows per second the usage log's `append` sustains on its own, with nothing
//! else on the machine asking for CPU: `cargo xtask bench usage-writer [--database postgres]`,
//! or directly `cargo bench -p otesse-storage --bench usage_writer -- [<database url>]`.
//!
//! Writes `OTESSE_BENCH_ROWS` rows (default 500,000) in batches of the server's default batch
//! size (5,000), spread over 10 keys and a few client addresses like real traffic, one batch at
//! a time as the server's writer does, into a fresh SQLite file or a fresh PostgreSQL schema
//! (dropped afterwards). Prints rows per second, and fails if any row or count is missing.

use std::time::Instant;

use chrono::{Duration, Utc};
use otesse_domain::api_key::{
    ApiKey, ApiKeyDescription, ApiKeyId, ApiKeyName, Environment, ExpiresIn, KeyHash, Scope, ScopeLevel,
};
use otesse_domain::event::{AuditActor, DomainEvent, Event};
use otesse_domain::organization::{Organization, OrganizationId, OrganizationName};
use otesse_domain::ports::{ApiKeyRepository, UsageLog, UserRepository};
use otesse_domain::usage::UsageRecord;
use otesse_domain::user::{Email, PasswordHash, Role, User, UserId};
use otesse_storage::Database;
use uuid::Uuid;

const BATCH: usize = 5_000;
const KEYS: usize = 10;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; the only other argument is the URL.
    let url = std::env::args().skip(1).find(|arg| !arg.starts_with("--"));
    let rows: usize = std::env::var("OTESSE_BENCH_ROWS").ok().map(|v| v.parse()).transpose()?.unwrap_or(500_000);
    let dir = tempfile::tempdir()?;
    let (url, schema) = match url {
        Some(url) => (url, Some(format!("bench_{}", Uuid::new_v4().simple()))),
        None => (format!("sqlite://{}", dir.path().join("bench.db").display()), None),
    };
    let db = Database::connect(&url, schema.as_deref()).await?;
    let result = run(&db, rows).await;
    if let Some(schema) = &schema {
        use sea_orm::ConnectionTrait;
        let raw = sea_orm::Database::connect(url.as_str()).await?;
        raw.execute_unprepared(&format!(r#"DROP SCHEMA "{schema}" CASCADE"#)).await?;
    }
    result
}

async fn run(db: &Database, rows: usize) -> Result<(), Box<dyn std::error::Error>> {
    let now = Utc::now();
    let organization =
        Organization { id: OrganizationId(Uuid::now_v7()), name: OrganizationName::parse("Bench")?, created_at: now };
    let admin = User {
        id: UserId(Uuid::now_v7()),
        organization_id: organization.id,
        email: Email::parse("bench@example.com")?,
        name: None,
        role: Role::Admin,
        status: otesse_domain::user::UserStatus::Active,
        created_at: now,
    };
    db.users().complete_setup(&organization, &admin, &PasswordHash("unused".into())).await?;
    let mut keys = Vec::new();
    for n in 0..KEYS {
        let key = ApiKey {
            id: ApiKeyId(Uuid::now_v7()),
            organization_id: organization.id,
            name: ApiKeyName::parse(&format!("bench {n}"))?,
            description: ApiKeyDescription::default(),
            environment: Environment::Live,
            scope_level: ScopeLevel::ReadOnly,
            scopes: vec![Scope::CustomersRead],
            expires_in: ExpiresIn::Never,
            allowed_ips: vec![],
            key_hash: KeyHash(*otesse_domain_hash(n)),
            last4: format!("{n:04}"),
            created_by: admin.id,
            created_at: now,
            expires_at: None,
            revoked_at: None,
            rotated_from: None,
            last_used_at: None,
        };
        let created = DomainEvent::new(
            organization.id,
            AuditActor::User(admin.id),
            now,
            Event::ApiKeyCreated { key: key.clone() },
        );
        db.api_keys().insert(&key, &created, 25, now).await?;
        keys.push(key);
    }
    let addresses = ["203.0.113.7", "203.0.113.8", "2001:db8::1", "198.51.100.20"].map(|ip| ip.parse().ok());
    let batch_of = |first: usize| -> Vec<UsageRecord> {
        (first..first + BATCH)
            .map(|n| {
                let key = &keys[n % KEYS];
                UsageRecord {
                    api_key_id: key.id,
                    organization_id: key.organization_id,
                    occurred_at: now + Duration::microseconds(n as i64),
                    method: "GET".into(),
                    path: "/v1/whoami".into(),
                    status: 200,
                    response_time_ms: 1,
                    client_ip: addresses[n % addresses.len()],
                }
            })
            .collect()
    };
    let usage = db.usage();
    // One batch first, so that connections are open and statements prepared.
    usage.append(&batch_of(0)).await?;
    let batches = rows.div_ceil(BATCH);
    let prepared: Vec<_> = (1..=batches).map(|b| batch_of(b * BATCH)).collect();
    let started = Instant::now();
    for batch in &prepared {
        usage.append(batch).await?;
    }
    let elapsed = started.elapsed();
    let written = batches * BATCH;
    let mut total = 0;
    for key in &keys {
        total += usage.summary(key.id).await?.total_requests;
    }
    let expected = (written + BATCH) as u64;
    println!(
        "usage writer on {}: {written} rows in {} batches of {BATCH} in {:.2} s: {:.0} rows/s",
        db.backend_name(),
        batches,
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64()
    );
    if total != expected {
        return Err(format!("the keys count {total} requests, {expected} were written").into());
    }
    Ok(())
}

/// A distinct stand-in for a key's SHA-256.
fn otesse_domain_hash(n: usize) -> Box<[u8; 32]> {
    let mut bytes = [0; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..24].copy_from_slice(&(n as u64).to_le_bytes());
    Box::new(bytes)
}
