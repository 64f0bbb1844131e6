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

#[async_trait]
impl UsageLog for UsageStore {
    async fn append(&self, batch: &[UsageRecord]) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Sorted by key, so concurrent batches lock the keys' rows in the same order.
        let mut tallies: BTreeMap<Uuid, KeyTally> = BTreeMap::new();
        // As addresses, not text: most rows of a batch repeat a few, and only those few are
        // formatted.
        let mut addresses: BTreeSet<(Uuid, IpAddr)> = BTreeSet::new();
        for record in batch {
            let at = stored(record.occurred_at);
            tallies
                .entry(record.api_key_id.0)
                .and_modify(|tally| {
                    tally.requests += 1;
                    tally.last_used_at = std::cmp::max(tally.last_used_at, at);
                })
                .or_insert(KeyTally { requests: 1, last_used_at: at });
            if let Some(ip) = record.client_ip {
                addresses.insert((record.api_key_id.0, ip.to_canonical()));
            }
        }

        let txn = begin(&self.conn).await?;
        let outcome = async {
            let backend = txn.get_database_backend();
            for rows in insert_chunks(batch) {
                txn.execute_raw(insert_rows(backend, rows)).await.map_err(db_err)?;
            }
            for (key, tally) in &tallies {
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
            let addresses: Vec<_> = addresses.into_iter().map(|(key, ip)| (key, canonical_ip(ip))).collect();
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
