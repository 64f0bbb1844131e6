//! The usage log: batches, the coalesced counters, and newest-first pages (K9, K14).

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use otesse_domain::api_key::{ApiKey, ApiKeyId};
use otesse_domain::page::PageRequest;
use otesse_domain::ports::{ApiKeyRepository, UsageLog};
use otesse_domain::usage::{UsageRecord, UsageSummary};
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::{created, key, setup, t0};

on_both_databases!(
    batches_feed_the_summary_and_the_pages,
    last_used_only_moves_forward_and_addresses_count_once,
    a_burst_of_large_concurrent_batches_keeps_every_row_and_count,
    retention_deletes_the_oldest_rows_in_bounded_batches_and_keeps_the_totals,
);

fn record(key: &ApiKey, at: DateTime<Utc>, ip: Option<&str>, n: usize) -> UsageRecord {
    UsageRecord {
        api_key_id: key.id,
        organization_id: key.organization_id,
        occurred_at: at,
        method: if n.is_multiple_of(2) { "GET" } else { "POST" }.to_owned(),
        path: format!("/v1/customers/{n}"),
        status: 200 + u16::try_from(n % 3).unwrap(),
        response_time_ms: u32::try_from(n).unwrap() * 7,
        client_ip: ip.map(|ip| ip.parse::<IpAddr>().unwrap()),
    }
}

async fn batches_feed_the_summary_and_the_pages(db: Database) {
    let (_, admin) = setup(&db).await;
    let backend = key(&admin, "Backend");
    let other = key(&admin, "Other");
    for key in [&backend, &other] {
        db.api_keys().insert(key, &created(key), 25, t0()).await.unwrap();
    }
    let usage = db.usage();
    assert_eq!(usage.summary(backend.id).await.unwrap(), UsageSummary::default());

    let ips = [Some("203.0.113.7"), Some("2001:db8::1"), None, Some("10.0.0.1")];
    let mut batch: Vec<_> = (0..25)
        .map(|n| {
            let at = t0() + Duration::seconds(i64::try_from(n).unwrap());
            record(&backend, at, ips[n % ips.len()], n)
        })
        .collect();
    // Another key's rows in the same batch are kept apart.
    batch.insert(10, record(&other, t0() + Duration::hours(1), Some("192.0.2.1"), 99));
    usage.append(&batch).await.unwrap();
    usage.append(&[]).await.unwrap();

    assert_eq!(
        usage.summary(backend.id).await.unwrap(),
        UsageSummary { total_requests: 25, unique_ips: 3, last_used_at: Some(t0() + Duration::seconds(24)) }
    );
    assert_eq!(
        usage.summary(other.id).await.unwrap(),
        UsageSummary { total_requests: 1, unique_ips: 1, last_used_at: Some(t0() + Duration::hours(1)) }
    );
    assert_eq!(
        db.api_keys().find(backend.organization_id, backend.id).await.unwrap().unwrap().last_used_at,
        Some(t0() + Duration::seconds(24)),
        "the key itself carries last_used_at"
    );

    // Three pages of 10, 10 and 5, newest first, each row exactly as recorded.
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = usage.recent(backend.id, &PageRequest::new(Some(10), after).unwrap()).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 10);
        seen.extend(page.items);
        match page.next {
            Some(cursor) => {
                assert_eq!(Some(cursor), seen.last().map(|entry| entry.id));
                after = Some(cursor);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|pair| pair[0].id > pair[1].id), "newest first");
    let mut expected: Vec<_> = batch.iter().filter(|record| record.api_key_id == backend.id).cloned().collect();
    expected.reverse();
    assert_eq!(seen.into_iter().map(|entry| entry.record).collect::<Vec<_>>(), expected);

    let unknown = ApiKeyId(Uuid::now_v7());
    assert_eq!(usage.summary(unknown).await.unwrap(), UsageSummary::default());
    let empty = usage.recent(unknown, &PageRequest::new(None, None).unwrap()).await.unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());
}

/// The retention job calls `delete_before` until a call deletes fewer than its limit: each
/// call is one bounded batch, the oldest rows first, and nothing at or after the cutoff goes.
async fn retention_deletes_the_oldest_rows_in_bounded_batches_and_keeps_the_totals(db: Database) {
    let (_, admin) = setup(&db).await;
    let backend = key(&admin, "Backend");
    let other = key(&admin, "Other");
    for key in [&backend, &other] {
        db.api_keys().insert(key, &created(key), 25, t0()).await.unwrap();
    }
    let usage = db.usage();
    let day = |n: usize| t0() + Duration::days(i64::try_from(n).unwrap());
    // 20 days of the key's rows, one a day, and the other key's on days 3 and 15.
    let mut batch: Vec<_> = (0..20).map(|n| record(&backend, day(n), Some("203.0.113.7"), n)).collect();
    batch.insert(4, record(&other, day(3), None, 3));
    batch.push(record(&other, day(15), None, 15));
    usage.append(&batch).await.unwrap();
    let rows_of = |key: ApiKeyId| {
        let usage = db.usage();
        async move {
            let page = usage.recent(key, &PageRequest::new(Some(100), None).unwrap()).await.unwrap();
            page.items.into_iter().map(|entry| entry.record.occurred_at).collect::<Vec<_>>()
        }
    };

    // Days 0 to 9 are older than the cutoff: 10 of the key's rows and 1 of the other's.
    let cutoff = day(10);
    assert_eq!(usage.delete_before(cutoff, 4).await.unwrap(), 4);
    assert_eq!(rows_of(backend.id).await.last(), Some(&day(4)), "the oldest rows go first");
    assert_eq!(usage.delete_before(cutoff, 4).await.unwrap(), 4);
    assert_eq!(usage.delete_before(cutoff, 4).await.unwrap(), 3, "a short batch: the job stops there");
    assert_eq!(usage.delete_before(cutoff, 4).await.unwrap(), 0);

    let left = rows_of(backend.id).await;
    assert_eq!(left, (10..20).rev().map(day).collect::<Vec<_>>(), "the cutoff's own row stays");
    assert_eq!(rows_of(other.id).await, [day(15)]);
    // The totals are counters of every request, not counts of what is left.
    let summary = usage.summary(backend.id).await.unwrap();
    assert_eq!((summary.total_requests, summary.unique_ips, summary.last_used_at), (20, 1, Some(day(19))));
}

async fn last_used_only_moves_forward_and_addresses_count_once(db: Database) {
    let (_, admin) = setup(&db).await;
    let backend = key(&admin, "Backend");
    db.api_keys().insert(&backend, &created(&backend), 25, t0()).await.unwrap();
    let usage = db.usage();
    let latest = t0() + Duration::minutes(10);

    usage.append(&[record(&backend, latest, Some("203.0.113.7"), 1)]).await.unwrap();
    // A late batch with older rows, a known address in its IPv4-mapped form, and a new one.
    usage
        .append(&[
            record(&backend, t0(), Some("::ffff:203.0.113.7"), 2),
            record(&backend, t0() + Duration::minutes(1), Some("203.0.113.7"), 3),
            record(&backend, t0() + Duration::minutes(2), Some("198.51.100.4"), 4),
        ])
        .await
        .unwrap();
    assert_eq!(
        usage.summary(backend.id).await.unwrap(),
        UsageSummary { total_requests: 4, unique_ips: 2, last_used_at: Some(latest) }
    );

    let newer = latest + Duration::microseconds(1);
    usage.append(&[record(&backend, newer, None, 5)]).await.unwrap();
    let summary = usage.summary(backend.id).await.unwrap();
    assert_eq!(summary.last_used_at, Some(newer));
    assert_eq!(summary.total_requests, 5);

    // The log keeps the address as it came.
    let page = usage.recent(backend.id, &PageRequest::new(Some(5), None).unwrap()).await.unwrap();
    assert_eq!(page.items[3].record.client_ip, Some("::ffff:203.0.113.7".parse().unwrap()));
}

/// What the writer does under load: batches of the writer's size, two at once (as two server
/// processes would), several keys in each. Every row arrives with every field, and each key's
/// counters add up.
async fn a_burst_of_large_concurrent_batches_keeps_every_row_and_count(db: Database) {
    const BATCH: usize = 2_500;
    const BATCHES: usize = 4;
    let (_, admin) = setup(&db).await;
    let keys: Vec<ApiKey> = ["One", "Two", "Three"].into_iter().map(|name| key(&admin, name)).collect();
    for key in &keys {
        db.api_keys().insert(key, &created(key), 25, t0()).await.unwrap();
    }
    let ips = [Some("203.0.113.7"), Some("2001:db8::1"), None, Some("::ffff:10.0.0.1"), Some("10.0.0.1")];
    let batches: Vec<Vec<UsageRecord>> = (0..BATCHES)
        .map(|b| {
            (0..BATCH)
                .map(|i| {
                    let n = b * BATCH + i;
                    let at = t0() + Duration::milliseconds(i64::try_from(n).unwrap());
                    record(&keys[n % keys.len()], at, ips[n % ips.len()], n)
                })
                .collect()
        })
        .collect();
    let usage = db.usage();
    for pair in batches.chunks(2) {
        let (first, second) = (usage.clone(), usage.clone());
        let (a, b) = tokio::join!(first.append(&pair[0]), second.append(&pair[1]));
        a.unwrap();
        b.unwrap();
    }

    let all: Vec<&UsageRecord> = batches.iter().flatten().collect();
    for key in &keys {
        let mut expected: Vec<UsageRecord> =
            all.iter().filter(|record| record.api_key_id == key.id).map(|record| (*record).clone()).collect();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = usage.recent(key.id, &PageRequest::new(Some(100), after).unwrap()).await.unwrap();
            seen.extend(page.items.into_iter().map(|entry| entry.record));
            match page.next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
        // Two batches written at once may interleave their ids: compare as sets.
        let order = |record: &UsageRecord| (record.occurred_at, record.path.clone());
        expected.sort_by_key(order);
        seen.sort_by_key(order);
        assert_eq!(seen.len(), expected.len(), "every row of key {:?} once", key.name);
        assert_eq!(seen, expected, "every field as recorded");
        let last = expected.iter().map(|record| record.occurred_at).max();
        assert_eq!(
            usage.summary(key.id).await.unwrap(),
            // 10.0.0.1 and ::ffff:10.0.0.1 are one address; each key sees all four.
            UsageSummary { total_requests: u64::try_from(expected.len()).unwrap(), unique_ips: 3, last_used_at: last }
        );
    }
}
