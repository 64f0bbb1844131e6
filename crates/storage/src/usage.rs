//! The per-request usage log ([`UsageLog`]).
//!
//! The log itself grows without bound, so nothing on a read path scans it: each batch also
//! bumps the key's `request_count` and `last_used_at` and records the key's distinct client
//! addresses in `api_key_ips`, which makes [`UsageLog::summary`] a couple of index lookups.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use otesse_domain::StorageError;
use otesse_domain::api_key::ApiKeyId;
use otesse_domain::organization::OrganizationId;
use otesse_domain::page::{Page, PageRequest};
use otesse_domain::ports::UsageLog;
use otesse_domain::usage::{UsageEntry, UsageRecord, UsageSummary};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, ExprTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement, Value,
};
use std::fmt::Write as _;
use uuid::Uuid;

use crate::Database;
use crate::entity::{api_key, api_key_ip, api_key_usage};
use crate::support::{begin, corrupt, db_err, finish, overfetch, stored};

/// Rows per multi-row INSERT: 8 bound values each keeps a statement far below the bind
/// parameter limits of SQLite (32766) and PostgreSQL (65535). A power of two: see
/// [`insert_chunks`].
const ROWS_PER_INSERT: usize = 512;

/// The usage log on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct UsageStore {
    conn: DatabaseConnection,
}

impl UsageStore {
    pub fn new(db: &Database) -> Self {
        Self { conn: db.connection().clone() }
    }
}

/// What a batch changes on one key.
struct KeyTally {
    requests: i64,
    last_used_at: DateTime<Utc>,
}

/// What a batch changes: each key's tally, sorted by key (so that concurrent batches lock the
/// keys' rows in the same order), and the distinct (key, client address) pairs, sorted too.
struct Tallies {
    keys: BTreeMap<Uuid, KeyTally>,
    // As addresses, not text: most rows of a batch repeat a few, and only those few are
    // formatted.
    addresses: BTreeSet<(Uuid, IpAddr)>,
}

impl Tallies {
    fn of(batch: &[UsageRecord]) -> Self {
        let mut keys: BTreeMap<Uuid, KeyTally> = BTreeMap::new();
        let mut addresses = BTreeSet::new();
        for record in batch {
            let at = stored(record.occurred_at);
            keys.entry(record.api_key_id.0)
                .and_modify(|tally| {
                    tally.requests += 1;
                    tally.last_used_at = std::cmp::max(tally.last_used_at, at);
                })
                .or_insert(KeyTally { requests: 1, last_used_at: at });
            if let Some(ip) = record.client_ip {
                addresses.insert((record.api_key_id.0, ip.to_canonical()));
            }
        }
        Self { keys, addresses }
    }
}

#[async_trait]
impl UsageLog for UsageStore {
    async fn append(&self, batch: &[UsageRecord]) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let tallies = Tallies::of(batch);
        match self.conn.get_database_backend() {
            DbBackend::Postgres => append_postgres(self.conn.get_postgres_connection_pool(), batch, &tallies).await,
            _ => self.append_rows(batch, tallies).await,
        }
    }

    async fn summary(&self, key: ApiKeyId) -> Result<UsageSummary, StorageError> {
        let counters: Option<(i64, Option<DateTime<Utc>>)> = api_key::Entity::find_by_id(key.0)
            .select_only()
            .column(api_key::Column::RequestCount)
            .column(api_key::Column::LastUsedAt)
            .into_tuple()
            .one(&self.conn)
            .await
            .map_err(db_err)?;
        let Some((requests, last_used_at)) = counters else {
            return Ok(UsageSummary::default());
        };
        let unique_ips = api_key_ip::Entity::find()
            .filter(api_key_ip::Column::ApiKeyId.eq(key.0))
            .count(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(UsageSummary {
            total_requests: u64::try_from(requests).map_err(|_| corrupt("api_keys", "request_count", requests))?,
            unique_ips,
            last_used_at,
        })
    }

    async fn recent(&self, key: ApiKeyId, page: &PageRequest<i64>) -> Result<Page<UsageEntry, i64>, StorageError> {
        let mut query = api_key_usage::Entity::find().filter(api_key_usage::Column::ApiKeyId.eq(key.0));
        if let Some(after) = page.after() {
            query = query.filter(api_key_usage::Column::Id.lt(*after));
        }
        let rows = query
            .order_by_desc(api_key_usage::Column::Id)
            .limit(overfetch(page.limit()))
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        let entries = rows.into_iter().map(to_domain).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(entries, page.limit(), |entry| entry.id))
    }

    async fn delete_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StorageError> {
        // By id, in batches: ids grow with time, so the oldest rows go first and each batch is
        // one short transaction instead of one long one over millions of rows.
        let oldest: Vec<i64> = api_key_usage::Entity::find()
            .select_only()
            .column(api_key_usage::Column::Id)
            .filter(api_key_usage::Column::OccurredAt.lt(stored(before)))
            .order_by_asc(api_key_usage::Column::Id)
            .limit(u64::from(limit))
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(db_err)?;
        if oldest.is_empty() {
            return Ok(0);
        }
        let deleted = api_key_usage::Entity::delete_many()
            .filter(api_key_usage::Column::Id.is_in(oldest))
            .exec(&self.conn)
            .await
            .map_err(db_err)?;
        Ok(deleted.rows_affected)
    }
}

impl UsageStore {
    /// SQLite: multi-row INSERTs of a few fixed sizes, then one UPDATE per key and the new
    /// addresses, in one transaction (one writer at a time, so the round trips cost little).
    async fn append_rows(&self, batch: &[UsageRecord], tallies: Tallies) -> Result<(), StorageError> {
        let txn = begin(&self.conn).await?;
        let outcome = async {
            let backend = txn.get_database_backend();
            for rows in insert_chunks(batch) {
                txn.execute_raw(insert_rows(backend, rows)).await.map_err(db_err)?;
            }
            for (key, tally) in &tallies.keys {
                let last_used = api_key::Column::LastUsedAt;
                // last_used_at only moves forward: batches may arrive out of order.
                let newer = Expr::case(
                    Condition::any().add(last_used.is_null()).add(last_used.lt(tally.last_used_at)),
                    Expr::value(Some(tally.last_used_at)),
                )
                .finally(Expr::col(last_used));
                api_key::Entity::update_many()
                    .col_expr(
                        api_key::Column::RequestCount,
                        Expr::col(api_key::Column::RequestCount).add(tally.requests),
                    )
                    .col_expr(last_used, newer.into())
                    .filter(api_key::Column::Id.eq(*key))
                    .exec(&txn)
                    .await
                    .map_err(db_err)?;
            }
            let addresses: Vec<_> = tallies.addresses.into_iter().map(|(key, ip)| (key, canonical_ip(ip))).collect();
            for pairs in addresses.chunks(ROWS_PER_INSERT) {
                let rows = pairs
                    .iter()
                    .map(|(key, ip)| api_key_ip::ActiveModel { api_key_id: Set(*key), ip: Set(ip.clone()) });
                api_key_ip::Entity::insert_many(rows)
                    .on_conflict_do_nothing_on([api_key_ip::Column::ApiKeyId, api_key_ip::Column::Ip])
                    .exec_without_returning(&txn)
                    .await
                    .map_err(db_err)?;
            }
            Ok(())
        }
        .await;
        finish(txn, outcome).await
    }
}

/// PostgreSQL: the rows go in with a binary `COPY` (PostgreSQL's bulk-loading path: no
/// statement per row, rows packed into pages in groups), then one statement bumps each key's
/// counters and records its new addresses from arrays (`unnest`), all in one transaction. The
/// keys' rows are locked in key order first (`locked`), so that two processes writing the same
/// keys cannot deadlock. A transaction of five round trips per batch of thousands of rows.
const POSTGRES_COPY: &str = "COPY api_key_usage \
    (api_key_id, organization_id, occurred_at, method, path, status, response_time_ms, client_ip) \
    FROM STDIN (FORMAT binary)";

const POSTGRES_TALLY: &str = "\
WITH tally (id, requests, last_used_at) AS (
    SELECT * FROM unnest($1::uuid[], $2::int8[], $3::timestamptz[])
),
locked AS MATERIALIZED (
    SELECT k.id FROM api_keys k JOIN tally t ON t.id = k.id ORDER BY k.id FOR UPDATE OF k
),
counted AS (
    UPDATE api_keys k
    SET request_count = k.request_count + t.requests,
        -- GREATEST skips NULL: the first use sets it; later batches only move it forward.
        last_used_at = GREATEST(k.last_used_at, t.last_used_at)
    FROM tally t JOIN locked l ON l.id = t.id
    WHERE k.id = t.id
)
INSERT INTO api_key_ips (api_key_id, ip)
SELECT * FROM unnest($4::uuid[], $5::text[])
ON CONFLICT DO NOTHING";

async fn append_postgres(
    pool: &sea_orm::sqlx::PgPool,
    batch: &[UsageRecord],
    tallies: &Tallies,
) -> Result<(), StorageError> {
    let failed = |err: sea_orm::sqlx::Error| StorageError::new(format!("writing usage rows: {err}"));
    let rows = copy_binary(batch)?;
    let tally_keys: Vec<Uuid> = tallies.keys.keys().copied().collect();
    let tally_requests: Vec<i64> = tallies.keys.values().map(|tally| tally.requests).collect();
    let tally_times: Vec<DateTime<Utc>> = tallies.keys.values().map(|tally| tally.last_used_at).collect();
    let address_keys: Vec<Uuid> = tallies.addresses.iter().map(|(key, _)| *key).collect();
    let address_texts: Vec<String> = tallies.addresses.iter().map(|(_, ip)| canonical_ip(*ip)).collect();

    let mut txn = pool.begin().await.map_err(failed)?;
    let mut copy = txn.copy_in_raw(POSTGRES_COPY).await.map_err(failed)?;
    if let Err(err) = copy.send(rows).await {
        // The connection is unusable until the COPY ends; the rollback then discards it all.
        let _ = copy.abort("the usage batch could not be sent").await;
        return Err(failed(err));
    }
    copy.finish().await.map_err(failed)?;
    sea_orm::sqlx::query(POSTGRES_TALLY)
        .bind(tally_keys)
        .bind(tally_requests)
        .bind(tally_times)
        .bind(address_keys)
        .bind(address_texts)
        .execute(&mut *txn)
        .await
        .map_err(failed)?;
    txn.commit().await.map_err(failed)
}

/// The batch in PostgreSQL's binary `COPY` format, in [`POSTGRES_COPY`]'s column order: a
/// header, then per row the field count and each field as its length and its bytes in the
/// type's binary form (NULL as length -1), then a trailer.
fn copy_binary(batch: &[UsageRecord]) -> Result<Vec<u8>, StorageError> {
    /// 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix microseconds.
    const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
    fn field(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), StorageError> {
        let len = i32::try_from(bytes.len()).map_err(|_| StorageError::new("a usage field is over 2 GiB"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
        Ok(())
    }
    let mut out = Vec::with_capacity(32 + batch.len() * 120);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0_i32.to_be_bytes()); // flags: no OIDs
    out.extend_from_slice(&0_i32.to_be_bytes()); // header extension: none
    // Consecutive rows mostly come from one client: format its address once.
    let mut last_ip: Option<(IpAddr, String)> = None;
    for record in batch {
        out.extend_from_slice(&8_i16.to_be_bytes());
        field(&mut out, record.api_key_id.0.as_bytes())?;
        field(&mut out, record.organization_id.0.as_bytes())?;
        let micros = stored(record.occurred_at).timestamp_micros() - POSTGRES_EPOCH_MICROS;
        field(&mut out, &micros.to_be_bytes())?;
        field(&mut out, record.method.as_bytes())?;
        field(&mut out, record.path.as_bytes())?;
        field(&mut out, &i32::from(record.status).to_be_bytes())?;
        // A request longer than 24 days is recorded as lasting 24 days.
        field(&mut out, &i32::try_from(record.response_time_ms).unwrap_or(i32::MAX).to_be_bytes())?;
        match record.client_ip {
            Some(ip) => {
                let text = match &last_ip {
                    Some((last, text)) if *last == ip => text,
                    _ => &last_ip.insert((ip, ip.to_string())).1,
                };
                field(&mut out, text.as_bytes())?;
            }
            None => out.extend_from_slice(&(-1_i32).to_be_bytes()),
        }
    }
    out.extend_from_slice(&(-1_i16).to_be_bytes());
    Ok(out)
}

/// The form an address takes in `api_key_ips`: an IPv4-mapped IPv6 address
/// (`::ffff:10.0.0.1`) counts as the IPv4 address it carries, as the allow-list treats it.
fn canonical_ip(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

/// The batch cut into INSERTs of [`ROWS_PER_INSERT`] rows, then the rest in halving powers of
/// two (a rest of 300 goes as 256 + 32 + 8 + 4). Only ten statement texts ever occur, so the
/// driver's prepared-statement cache always hits: parsing a statement of a few thousand bind
/// parameters cost more than a few extra round trips.
fn insert_chunks(batch: &[UsageRecord]) -> impl Iterator<Item = &[UsageRecord]> {
    let mut rest = batch;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = if rest.len() >= ROWS_PER_INSERT { ROWS_PER_INSERT } else { 1 << rest.len().ilog2() };
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

/// One multi-row INSERT, written by hand: this runs for every keyed request, and building it
/// through the query builder cost several times more than the database's own work. Chunks of
/// one size produce the same SQL text, so the driver's prepared-statement cache is hit.
fn insert_rows(backend: DbBackend, rows: &[UsageRecord]) -> Statement {
    const COLUMNS: usize = 8;
    let mut sql = String::with_capacity(128 + rows.len() * COLUMNS * 5);
    sql.push_str(
        "INSERT INTO api_key_usage \
         (api_key_id, organization_id, occurred_at, method, path, status, response_time_ms, client_ip) VALUES ",
    );
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * COLUMNS);
    // Consecutive rows mostly come from one client: format its address once.
    let mut last_ip: Option<(IpAddr, String)> = None;
    for (i, record) in rows.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ",(" });
        for column in 0..COLUMNS {
            if column > 0 {
                sql.push(',');
            }
            match backend {
                DbBackend::Postgres => {
                    let _ = write!(sql, "${}", i * COLUMNS + column + 1);
                }
                _ => sql.push('?'),
            }
        }
        sql.push(')');
        values.extend([
            record.api_key_id.0.into(),
            record.organization_id.0.into(),
            stored(record.occurred_at).into(),
            record.method.clone().into(),
            record.path.clone().into(),
            i32::from(record.status).into(),
            // A request longer than 24 days is recorded as lasting 24 days.
            i32::try_from(record.response_time_ms).unwrap_or(i32::MAX).into(),
            record
                .client_ip
                .map(|ip| match &last_ip {
                    Some((last, text)) if *last == ip => text.clone(),
                    _ => last_ip.insert((ip, ip.to_string())).1.clone(),
                })
                .into(),
        ]);
    }
    Statement::from_sql_and_values(backend, sql, values)
}

const TABLE: &str = "api_key_usage";

fn to_domain(row: api_key_usage::Model) -> Result<UsageEntry, StorageError> {
    let status = u16::try_from(row.status).map_err(|_| corrupt(TABLE, "status", row.status))?;
    let response_time_ms =
        u32::try_from(row.response_time_ms).map_err(|_| corrupt(TABLE, "response_time_ms", row.response_time_ms))?;
    let client_ip = row
        .client_ip
        .as_deref()
        .map(|raw| raw.parse::<IpAddr>().map_err(|_| corrupt(TABLE, "client_ip", raw)))
        .transpose()?;
    Ok(UsageEntry {
        id: row.id,
        record: UsageRecord {
            api_key_id: ApiKeyId(row.api_key_id),
            organization_id: OrganizationId(row.organization_id),
            occurred_at: row.occurred_at,
            method: row.method,
            path: row.path,
            status,
            response_time_ms,
            client_ip,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<UsageRecord> {
        let row = UsageRecord {
            api_key_id: ApiKeyId(Uuid::nil()),
            organization_id: OrganizationId(Uuid::nil()),
            occurred_at: Utc::now(),
            method: "GET".into(),
            path: "/v1/whoami".into(),
            status: 200,
            response_time_ms: 1,
            client_ip: None,
        };
        vec![row; n]
    }

    fn sizes(n: usize) -> Vec<usize> {
        insert_chunks(&rows(n)).map(<[UsageRecord]>::len).collect()
    }

    #[test]
    fn batches_are_cut_into_a_few_statement_sizes_in_order() {
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(300), [256, 32, 8, 4]);
        assert_eq!(sizes(512), [512]);
        assert_eq!(sizes(1_100), [512, 512, 64, 8, 4]);
        let batch = rows(2_047);
        let chunks: Vec<_> = insert_chunks(&batch).collect();
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 2_047, "every row once");
        assert!(chunks.iter().all(|c| c.len().is_power_of_two() && c.len() <= ROWS_PER_INSERT));
        // Contiguous and in order: each chunk starts where the previous one ended.
        let mut next = batch.as_ptr();
        for chunk in chunks {
            assert_eq!(chunk.as_ptr(), next);
            next = next.wrapping_add(chunk.len());
        }
    }
}
