//! The jobs table: dedupe keys, due times, leases, retries, pruning, and concurrent claimers
//! that never take one job twice (on PostgreSQL, `FOR UPDATE SKIP LOCKED`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use otesse_domain::jobs::{JobKind, JobQueue, JobState, NewJob};
use otesse_domain::page::PageRequest;
use otesse_storage::Database;

use crate::fixtures::t0;

on_both_databases!(
    a_job_runs_when_due_and_a_dedupe_key_admits_one,
    failures_retry_then_give_up_with_the_error,
    an_expired_lease_is_taken_again_and_a_live_one_is_not,
    concurrent_claimers_take_each_job_exactly_once,
    finished_jobs_are_pruned_and_states_are_listed,
);

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

fn lease() -> Duration {
    Duration::seconds(60)
}

async fn a_job_runs_when_due_and_a_dedupe_key_admits_one(db: Database) {
    let jobs = db.jobs();
    let job = NewJob::new(JobKind::ExpiryWarnings, at(10)).deduplicated("expiry_warnings:2026-11-24T13");
    assert!(jobs.enqueue(&job, at(0)).await.unwrap());
    let again = NewJob::new(JobKind::ExpiryWarnings, at(10)).deduplicated("expiry_warnings:2026-11-24T13");
    assert!(!jobs.enqueue(&again, at(0)).await.unwrap(), "the period's job exists");

    assert_eq!(jobs.claim("w1", at(9), lease()).await.unwrap(), None, "not due yet");
    let claimed = jobs.claim("w1", at(10), lease()).await.unwrap().expect("due");
    assert_eq!(
        (claimed.id, claimed.kind, claimed.state, claimed.attempts),
        (job.id, JobKind::ExpiryWarnings, JobState::Running, 1)
    );
    assert_eq!(claimed.locked_by.as_deref(), Some("w1"));
    assert_eq!(claimed.locked_until, Some(at(70)));
    assert_eq!(jobs.claim("w2", at(11), lease()).await.unwrap(), None, "held by w1");
    jobs.succeed(job.id, at(12)).await.unwrap();
    assert_eq!(jobs.claim("w2", at(1000), lease()).await.unwrap(), None, "done jobs stay done");
}

async fn failures_retry_then_give_up_with_the_error(db: Database) {
    let jobs = db.jobs();
    let job = NewJob { max_attempts: 2, ..NewJob::new(JobKind::HealthChecks, at(0)) };
    jobs.enqueue(&job, at(0)).await.unwrap();
    jobs.claim("w", at(0), lease()).await.unwrap().unwrap();
    jobs.fail(job.id, "provider unreachable", Some(at(30)), at(1)).await.unwrap();
    assert_eq!(jobs.claim("w", at(29), lease()).await.unwrap(), None, "backing off");
    let second = jobs.claim("w", at(30), lease()).await.unwrap().unwrap();
    assert_eq!(second.attempts, 2);
    assert_eq!(second.last_error.as_deref(), Some("provider unreachable"));
    jobs.fail(job.id, &"x".repeat(5000), None, at(31)).await.unwrap();
    let listed = jobs.list(Some(JobState::Failed), &PageRequest::new(Some(10), None).unwrap()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].last_error.as_ref().unwrap().len(), 1000, "errors are cut");
    assert_eq!(jobs.claim("w", at(10_000), lease()).await.unwrap(), None, "given up");
}

async fn an_expired_lease_is_taken_again_and_a_live_one_is_not(db: Database) {
    let jobs = db.jobs();
    let job = NewJob::new(JobKind::UsageRetention, at(0));
    jobs.enqueue(&job, at(0)).await.unwrap();
    jobs.claim("crashed", at(0), lease()).await.unwrap().unwrap();
    assert_eq!(jobs.claim("w2", at(59), lease()).await.unwrap(), None);
    let retaken = jobs.claim("w2", at(61), lease()).await.unwrap().expect("the lease ended");
    assert_eq!((retaken.attempts, retaken.locked_by.as_deref()), (2, Some("w2")));
}

async fn concurrent_claimers_take_each_job_exactly_once(db: Database) {
    let jobs = db.jobs();
    let mut ids = HashSet::new();
    for n in 0..50 {
        let job = NewJob::new(JobKind::Pruning, at(n));
        ids.insert(job.id);
        jobs.enqueue(&job, at(0)).await.unwrap();
    }
    let taken = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let jobs = db.jobs();
            let taken = taken.clone();
            tokio::spawn(async move {
                while let Some(job) = jobs.claim(&format!("w{w}"), at(100), lease()).await.unwrap() {
                    taken.lock().unwrap().push(job.id);
                    jobs.succeed(job.id, at(101)).await.unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let taken = taken.lock().unwrap().clone();
    assert_eq!(taken.len(), 50, "every job once, none twice");
    assert_eq!(taken.into_iter().collect::<HashSet<_>>(), ids);
}

async fn finished_jobs_are_pruned_and_states_are_listed(db: Database) {
    let jobs = db.jobs();
    let done = NewJob::new(JobKind::Pruning, at(0));
    let waiting = NewJob::new(JobKind::Pruning, at(500));
    jobs.enqueue(&done, at(0)).await.unwrap();
    jobs.enqueue(&waiting, at(0)).await.unwrap();
    jobs.claim("w", at(0), lease()).await.unwrap().unwrap();
    jobs.succeed(done.id, at(1)).await.unwrap();
    let page = PageRequest::new(Some(10), None).unwrap();
    assert_eq!(jobs.list(Some(JobState::Succeeded), &page).await.unwrap().items[0].id, done.id);
    assert_eq!(jobs.list(None, &page).await.unwrap().items.len(), 2);
    assert_eq!(jobs.prune_finished(at(1)).await.unwrap(), 0, "not older than the cut-off");
    assert_eq!(jobs.prune_finished(at(2)).await.unwrap(), 1);
    assert_eq!(jobs.list(None, &page).await.unwrap().items.iter().map(|j| j.id).collect::<Vec<_>>(), [waiting.id]);
}
