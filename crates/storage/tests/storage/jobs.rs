//! The jobs table: dedupe keys, due times, leases, retries, pruning, and concurrent claimers
//! that never take one job twice (on PostgreSQL, `FOR UPDATE SKIP LOCKED`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use otesse_domain::jobs::{JobBacklog, JobFilter, JobId, JobKind, JobQueue, JobState, MAX_ERROR_CHARS, NewJob};
use otesse_domain::page::PageRequest;
use otesse_storage::Database;
use sea_orm::ConnectionTrait;

use crate::fixtures::t0;
use crate::harness::TestDb;

on_both_databases!(
    a_job_runs_when_due_and_a_dedupe_key_admits_one,
    the_oldest_due_job_is_claimed_first,
    one_claim_takes_up_to_its_limit_oldest_first,
    failures_retry_then_give_up_with_the_error,
    an_expired_lease_is_taken_again_and_a_live_one_is_not,
    a_holder_extends_its_lease_and_no_one_else_can,
    a_lease_lost_on_the_last_attempt_gives_the_job_up,
    a_stale_worker_cannot_reopen_a_finished_job,
    a_worker_whose_lease_ended_cannot_finish_a_job_another_holds,
    concurrent_claimers_take_each_job_exactly_once,
    concurrent_claimers_of_several_take_each_job_exactly_once,
    finished_jobs_are_pruned_and_states_are_listed,
    the_backlog_counts_queued_jobs_by_kind_and_dates_the_oldest_due_one,
);

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

fn lease() -> Duration {
    Duration::seconds(60)
}

fn page() -> PageRequest<JobId> {
    PageRequest::new(Some(100), None).unwrap()
}

fn in_state(state: JobState) -> JobFilter {
    JobFilter { state: Some(state), ..JobFilter::default() }
}

async fn a_job_runs_when_due_and_a_dedupe_key_admits_one(db: Database) {
    let jobs = db.jobs();
    let job = NewJob::new(JobKind::ExpiryWarnings, at(10)).deduplicated("expiry_warnings:2026-11-24T13");
    assert_eq!(jobs.enqueue(&job, at(0)).await.unwrap(), Some(job.id));
    let again = NewJob::new(JobKind::ExpiryWarnings, at(5)).deduplicated("expiry_warnings:2026-11-24T13");
    assert_eq!(jobs.enqueue(&again, at(1)).await.unwrap(), None, "the period's job exists");
    let stored = jobs.list(&JobFilter::default(), &page()).await.unwrap().items;
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].id, stored[0].run_at, stored[0].state), (job.id, at(10), JobState::Queued));

    assert_eq!(jobs.claim("w1", at(9), lease()).await.unwrap(), None, "not due yet");
    let claimed = jobs.claim("w1", at(10), lease()).await.unwrap().expect("due");
    assert_eq!(
        (claimed.id, claimed.kind, claimed.state, claimed.attempts),
        (job.id, JobKind::ExpiryWarnings, JobState::Running, 1)
    );
    assert_eq!(claimed.locked_by.as_deref(), Some("w1"));
    assert_eq!(claimed.locked_until, Some(at(70)));
    assert_eq!(claimed.dedupe_key.as_deref(), Some("expiry_warnings:2026-11-24T13"));
    assert_eq!(jobs.claim("w2", at(11), lease()).await.unwrap(), None, "held by w1");
    jobs.succeed(&claimed, at(12)).await.unwrap();
    assert_eq!(jobs.claim("w2", at(1000), lease()).await.unwrap(), None, "done jobs stay done");
    assert_eq!(jobs.enqueue(&again, at(13)).await.unwrap(), None, "a finished job still holds its key");

    // Jobs without a dedupe key never conflict (several NULLs in the unique index).
    let plain = [NewJob::new(JobKind::HealthChecks, at(0)), NewJob::new(JobKind::HealthChecks, at(0))];
    for job in &plain {
        assert_eq!(jobs.enqueue(job, at(0)).await.unwrap(), Some(job.id));
    }
}

async fn the_oldest_due_job_is_claimed_first(db: Database) {
    let jobs = db.jobs();
    let late = NewJob::new(JobKind::HealthChecks, at(30));
    let early = NewJob::new(JobKind::UsageRetention, at(10));
    let middle = NewJob { payload: r#"{"n":2}"#.into(), ..NewJob::new(JobKind::ExpiryWarnings, at(20)) };
    let future = NewJob::new(JobKind::Pruning, at(1000));
    for job in [&late, &early, &middle, &future] {
        jobs.enqueue(job, at(0)).await.unwrap();
    }
    let mut order = Vec::new();
    while let Some(job) = jobs.claim("w", at(100), lease()).await.unwrap() {
        order.push((job.id, job.payload));
    }
    assert_eq!(order, [(early.id, "{}".into()), (middle.id, r#"{"n":2}"#.into()), (late.id, "{}".into())]);
}

async fn one_claim_takes_up_to_its_limit_oldest_first(db: Database) {
    let jobs = db.jobs();
    let due: Vec<_> = (0..5).map(|n| NewJob::new(JobKind::ALL[n % JobKind::ALL.len()], at(50 - n as i64))).collect();
    let future = NewJob::new(JobKind::Pruning, at(1000));
    for job in due.iter().chain([&future]) {
        jobs.enqueue(job, at(0)).await.unwrap();
    }
    let oldest_first: Vec<_> = due.iter().rev().map(|j| j.id).collect();

    let first = jobs.claim_up_to("w", at(100), lease(), 3).await.unwrap();
    assert_eq!(first.iter().map(|j| j.id).collect::<Vec<_>>(), oldest_first[..3], "the three oldest, in order");
    assert!(first.iter().all(|j| j.state == JobState::Running
        && j.attempts == 1
        && j.locked_by.as_deref() == Some("w")
        && j.locked_until == Some(at(160))));
    let rest = jobs.claim_up_to("w2", at(100), lease(), 10).await.unwrap();
    assert_eq!(rest.iter().map(|j| j.id).collect::<Vec<_>>(), oldest_first[3..], "the due rest, not the future one");
    assert_eq!(jobs.claim_up_to("w3", at(100), lease(), 10).await.unwrap(), [], "none left");
    assert_eq!(jobs.list(&in_state(JobState::Running), &page()).await.unwrap().items.len(), 5);
    assert_eq!(jobs.list(&in_state(JobState::Queued), &page()).await.unwrap().items[0].id, future.id);
}

async fn failures_retry_then_give_up_with_the_error(db: Database) {
    let jobs = db.jobs();
    let job = NewJob { max_attempts: 2, ..NewJob::new(JobKind::HealthChecks, at(0)) };
    jobs.enqueue(&job, at(0)).await.unwrap();
    let first = jobs.claim("w", at(0), lease()).await.unwrap().unwrap();
    jobs.fail(&first, "provider unreachable", Some(at(30)), at(1)).await.unwrap();
    let queued = jobs.list(&in_state(JobState::Queued), &page()).await.unwrap().items;
    assert_eq!((queued[0].run_at, queued[0].locked_until), (at(30), None), "back in the queue for later");
    assert_eq!(jobs.claim("w", at(29), lease()).await.unwrap(), None, "backing off");
    let second = jobs.claim("w", at(30), lease()).await.unwrap().unwrap();
    assert_eq!(second.attempts, 2);
    assert_eq!(second.last_error.as_deref(), Some("provider unreachable"));

    // The second of two attempts failed: given up even though the caller asked for a retry.
    let long = format!("{}{}", "é".repeat(MAX_ERROR_CHARS - 1), "xyz");
    jobs.fail(&second, &long, Some(at(90)), at(31)).await.unwrap();
    let failed = jobs.list(&in_state(JobState::Failed), &page()).await.unwrap().items;
    assert_eq!(failed.len(), 1);
    let error = failed[0].last_error.as_deref().unwrap();
    assert_eq!(error.chars().count(), MAX_ERROR_CHARS, "errors are cut");
    assert!(error.ends_with("éx"), "at a character boundary");
    assert_eq!((failed[0].attempts, failed[0].run_at, failed[0].locked_until), (2, at(30), None));
    assert_eq!(jobs.claim("w", at(10_000), lease()).await.unwrap(), None, "given up");

    // No retry time: given up at once, whatever attempts remain.
    let once = NewJob::new(JobKind::HealthChecks, at(0));
    jobs.enqueue(&once, at(0)).await.unwrap();
    let claimed = jobs.claim("w", at(0), lease()).await.unwrap().unwrap();
    jobs.fail(&claimed, "bad payload", None, at(1)).await.unwrap();
    assert_eq!(jobs.list(&in_state(JobState::Failed), &page()).await.unwrap().items.len(), 2);
}

async fn an_expired_lease_is_taken_again_and_a_live_one_is_not(db: Database) {
    let jobs = db.jobs();
    let job = NewJob::new(JobKind::UsageRetention, at(0));
    jobs.enqueue(&job, at(0)).await.unwrap();
    jobs.claim("crashed", at(0), lease()).await.unwrap().unwrap();
    assert_eq!(jobs.claim("w2", at(59), lease()).await.unwrap(), None, "the lease holds");
    assert_eq!(jobs.claim("w2", at(60), lease()).await.unwrap(), None, "up to its last instant");
    let retaken = jobs.claim("w2", at(61), lease()).await.unwrap().expect("the lease ended");
    assert_eq!((retaken.attempts, retaken.locked_by.as_deref()), (2, Some("w2")));
    assert_eq!(retaken.locked_until, Some(at(121)));
}

async fn a_holder_extends_its_lease_and_no_one_else_can(db: Database) {
    let jobs = db.jobs();
    let job = NewJob::new(JobKind::UsageRetention, at(0));
    jobs.enqueue(&job, at(0)).await.unwrap();
    let long = jobs.claim("long", at(0), lease()).await.unwrap().unwrap();
    // Its heartbeat at 40 s moves the lease's end from 60 s to 100 s.
    assert!(jobs.extend(&long, at(100)).await.unwrap());
    assert_eq!(jobs.claim("other", at(61), lease()).await.unwrap(), None, "still held past the first lease");
    assert_eq!(jobs.list(&in_state(JobState::Running), &page()).await.unwrap().items[0].locked_until, Some(at(100)));
    // It stopped beating: past 100 s another worker takes it, and the first can no longer extend.
    let retaken = jobs.claim("other", at(101), lease()).await.unwrap().expect("the extended lease ended");
    assert_eq!((retaken.id, retaken.attempts), (job.id, 2));
    assert!(!jobs.extend(&long, at(500)).await.unwrap(), "the old claim holds nothing");
    let running = jobs.list(&in_state(JobState::Running), &page()).await.unwrap().items;
    assert_eq!((running[0].locked_by.as_deref(), running[0].locked_until), (Some("other"), Some(at(161))));
    jobs.succeed(&retaken, at(102)).await.unwrap();
    assert!(!jobs.extend(&retaken, at(500)).await.unwrap(), "a finished job has no lease");
}

async fn a_lease_lost_on_the_last_attempt_gives_the_job_up(db: Database) {
    let jobs = db.jobs();
    let poison = NewJob { max_attempts: 2, ..NewJob::new(JobKind::HealthChecks, at(0)) };
    jobs.enqueue(&poison, at(0)).await.unwrap();
    jobs.claim("w1", at(0), lease()).await.unwrap().unwrap();
    let last = jobs.claim("w2", at(61), lease()).await.unwrap().unwrap();
    assert_eq!(last.attempts, 2);
    // The worker dies again, on the last attempt: the job is not handed out a third time.
    let healthy = NewJob::new(JobKind::Pruning, at(100));
    jobs.enqueue(&healthy, at(100)).await.unwrap();
    assert_eq!(jobs.claim("w3", at(200), lease()).await.unwrap().unwrap().id, healthy.id);
    let failed = jobs.list(&in_state(JobState::Failed), &page()).await.unwrap().items;
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].id, failed[0].attempts, failed[0].locked_until), (poison.id, 2, None));
    assert!(failed[0].last_error.as_deref().unwrap().contains("lease ended"));
    // The worker was only slow: its late report does not revive the given-up job.
    jobs.succeed(&last, at(201)).await.unwrap();
    assert_eq!(jobs.list(&in_state(JobState::Failed), &page()).await.unwrap().items[0].id, poison.id);
}

async fn a_stale_worker_cannot_reopen_a_finished_job(db: Database) {
    let jobs = db.jobs();
    let job = NewJob::new(JobKind::ExpiryWarnings, at(0));
    jobs.enqueue(&job, at(0)).await.unwrap();
    let slow = jobs.claim("slow", at(0), lease()).await.unwrap().unwrap();
    let fast = jobs.claim("fast", at(61), lease()).await.unwrap().unwrap();
    jobs.succeed(&fast, at(62)).await.unwrap();
    // The first worker, whose lease ended, reports late: the job stays succeeded.
    jobs.fail(&slow, "timed out", Some(at(100)), at(63)).await.unwrap();
    let listed = jobs.list(&JobFilter::default(), &page()).await.unwrap().items;
    assert_eq!((listed[0].state, listed[0].last_error.as_deref()), (JobState::Succeeded, None));
    assert_eq!(jobs.claim("w", at(1000), lease()).await.unwrap(), None);
}

async fn a_worker_whose_lease_ended_cannot_finish_a_job_another_holds(db: Database) {
    let jobs = db.jobs();
    let job = NewJob::new(JobKind::HealthChecks, at(0));
    jobs.enqueue(&job, at(0)).await.unwrap();
    let slow = jobs.claim("slow", at(0), lease()).await.unwrap().unwrap();
    let fast = jobs.claim("fast", at(61), lease()).await.unwrap().unwrap();
    // While `fast` still runs it, the slow worker's late reports change nothing.
    jobs.succeed(&slow, at(62)).await.unwrap();
    jobs.fail(&slow, "timed out", None, at(62)).await.unwrap();
    let listed = jobs.list(&JobFilter::default(), &page()).await.unwrap().items;
    assert_eq!((listed[0].state, listed[0].locked_by.as_deref()), (JobState::Running, Some("fast")));
    assert_eq!(listed[0].last_error, None);
    // The holder finishes it.
    jobs.succeed(&fast, at(100)).await.unwrap();
    assert_eq!(jobs.list(&in_state(JobState::Succeeded), &page()).await.unwrap().items.len(), 1);

    // Nor does a worker's report for an earlier attempt of a job it claimed again.
    let again = NewJob::new(JobKind::Pruning, at(0));
    jobs.enqueue(&again, at(0)).await.unwrap();
    let first = jobs.claim("w", at(200), lease()).await.unwrap().unwrap();
    let second = jobs.claim("w", at(261), lease()).await.unwrap().unwrap();
    assert_eq!((first.id, second.id, second.attempts), (again.id, again.id, 2));
    jobs.succeed(&first, at(262)).await.unwrap();
    assert_eq!(jobs.list(&in_state(JobState::Running), &page()).await.unwrap().items.len(), 1);
    jobs.succeed(&second, at(300)).await.unwrap();
    assert_eq!(jobs.list(&in_state(JobState::Succeeded), &page()).await.unwrap().items.len(), 2);
}

async fn concurrent_claimers_take_each_job_exactly_once(db: Database) {
    claim_concurrently(db, 50, 8, 1).await;
}

async fn concurrent_claimers_of_several_take_each_job_exactly_once(db: Database) {
    claim_concurrently(db, 60, 6, 4).await;
}

/// `count` due jobs, `workers` claiming at once until none is left, `per_claim` at a time (one
/// through `claim`, more through `claim_up_to`): each job is taken once and succeeds.
async fn claim_concurrently(db: Database, count: usize, workers: usize, per_claim: u32) {
    let jobs = db.jobs();
    let mut ids = HashSet::new();
    for n in 0..count {
        let job = NewJob::new(JobKind::ALL[n % JobKind::ALL.len()], at(n as i64));
        ids.insert(job.id);
        jobs.enqueue(&job, at(0)).await.unwrap();
    }
    let taken = Arc::new(Mutex::new(HashMap::<JobId, u32>::new()));
    let workers: Vec<_> = (0..workers)
        .map(|w| {
            let jobs = db.jobs();
            let taken = taken.clone();
            tokio::spawn(async move {
                let worker = format!("w{w}");
                loop {
                    let batch = if per_claim == 1 {
                        jobs.claim(&worker, at(100), lease()).await.unwrap().into_iter().collect()
                    } else {
                        jobs.claim_up_to(&worker, at(100), lease(), per_claim).await.unwrap()
                    };
                    if batch.is_empty() {
                        break;
                    }
                    assert!(batch.len() <= per_claim as usize, "at most the limit: {}", batch.len());
                    for job in batch {
                        *taken.lock().unwrap().entry(job.id).or_default() += 1;
                        jobs.succeed(&job, at(101)).await.unwrap();
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let taken = taken.lock().unwrap().clone();
    assert_eq!(taken.keys().copied().collect::<HashSet<_>>(), ids, "every job taken");
    let twice: Vec<_> = taken.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "taken more than once: {twice:?}");
    let succeeded = jobs.list(&in_state(JobState::Succeeded), &page()).await.unwrap().items;
    assert!(succeeded.len() == count && succeeded.iter().all(|j| j.attempts == 1));
}

async fn finished_jobs_are_pruned_and_states_are_listed(db: Database) {
    let jobs = db.jobs();
    let done = NewJob::new(JobKind::Pruning, at(0));
    let gave_up = NewJob::new(JobKind::HealthChecks, at(1));
    let running = NewJob::new(JobKind::HealthChecks, at(2));
    let waiting = NewJob::new(JobKind::Pruning, at(500));
    for job in [&done, &gave_up, &running, &waiting] {
        jobs.enqueue(job, at(0)).await.unwrap();
    }
    let first = jobs.claim("w", at(2), lease()).await.unwrap().unwrap();
    assert_eq!(first.id, done.id);
    jobs.succeed(&first, at(3)).await.unwrap();
    let second = jobs.claim("w", at(3), lease()).await.unwrap().unwrap();
    assert_eq!(second.id, gave_up.id);
    jobs.fail(&second, "no", None, at(3)).await.unwrap();
    jobs.claim("w", at(3), lease()).await.unwrap().unwrap();

    let everything = jobs.list(&JobFilter::default(), &page()).await.unwrap().items;
    let states: Vec<_> = everything.iter().map(|j| (j.id, j.state)).collect();
    assert_eq!(
        states,
        [
            (waiting.id, JobState::Queued),
            (running.id, JobState::Running),
            (gave_up.id, JobState::Failed),
            (done.id, JobState::Succeeded),
        ],
        "newest first, each in its state"
    );
    let pruning = JobFilter { kind: Some(JobKind::Pruning), ..JobFilter::default() };
    let ids = |items: Vec<otesse_domain::jobs::Job>| items.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(ids(jobs.list(&pruning, &page()).await.unwrap().items), [waiting.id, done.id]);
    let queued_pruning = JobFilter { state: Some(JobState::Queued), ..pruning };
    assert_eq!(ids(jobs.list(&queued_pruning, &page()).await.unwrap().items), [waiting.id]);
    let first = jobs.list(&JobFilter::default(), &PageRequest::new(Some(3), None).unwrap()).await.unwrap();
    assert_eq!(first.next, Some(gave_up.id));
    let rest = jobs.list(&JobFilter::default(), &PageRequest::new(Some(3), first.next).unwrap()).await.unwrap();
    assert_eq!((ids(rest.items), rest.next), (vec![done.id], None));

    assert_eq!(jobs.prune_finished(at(3)).await.unwrap(), 0, "not older than the cut-off");
    assert_eq!(jobs.prune_finished(at(1000)).await.unwrap(), 2, "succeeded and failed only");
    assert_eq!(ids(jobs.list(&JobFilter::default(), &page()).await.unwrap().items), [waiting.id, running.id]);
}

#[tokio::test]
async fn sqlite_a_kind_this_build_does_not_know_is_left_alone() {
    a_kind_this_build_does_not_know_is_left_alone(TestDb::sqlite().await).await;
}

#[tokio::test]
#[cfg_attr(not(otesse_postgres), ignore = "set OTESSE_TEST_POSTGRES_URL to run on PostgreSQL")]
async fn postgres_a_kind_this_build_does_not_know_is_left_alone() {
    a_kind_this_build_does_not_know_is_left_alone(TestDb::postgres().await).await;
}

/// A newer process (a rolling upgrade) enqueued a kind this one cannot run: it is not claimed
/// here, and does not stop the jobs behind it.
async fn a_kind_this_build_does_not_know_is_left_alone(test_db: TestDb) {
    let jobs = test_db.db.jobs();
    let newer = NewJob::new(JobKind::HealthChecks, at(0));
    let known = NewJob::new(JobKind::Pruning, at(1));
    jobs.enqueue(&newer, at(0)).await.unwrap();
    jobs.enqueue(&known, at(0)).await.unwrap();
    let raw = test_db.raw().await;
    raw.execute_unprepared("UPDATE jobs SET kind = 'report_export' WHERE kind = 'health_checks'").await.unwrap();
    raw.close().await.unwrap();

    assert_eq!(jobs.claim("w", at(10), lease()).await.unwrap().unwrap().id, known.id);
    assert_eq!(jobs.claim("w", at(10), lease()).await.unwrap(), None);
    test_db.finish().await;
}

async fn the_backlog_counts_queued_jobs_by_kind_and_dates_the_oldest_due_one(db: Database) {
    let jobs = db.jobs();
    assert_eq!(jobs.backlog(at(100)).await.unwrap(), [], "nothing queued");
    // A running job and a finished one are not waiting.
    let running = NewJob::new(JobKind::ExpiryWarnings, at(0));
    let done = NewJob::new(JobKind::ExpiryWarnings, at(1));
    for job in [&running, &done] {
        jobs.enqueue(job, at(0)).await.unwrap();
    }
    jobs.claim("w", at(1), lease()).await.unwrap().unwrap();
    let claimed = jobs.claim("w", at(1), lease()).await.unwrap().unwrap();
    jobs.succeed(&claimed, at(2)).await.unwrap();
    // Pruning: two due (the oldest since 10 s) and one for later; health checks: only later.
    for (kind, run_at) in
        [(JobKind::Pruning, 50), (JobKind::Pruning, 10), (JobKind::Pruning, 500), (JobKind::HealthChecks, 200)]
    {
        jobs.enqueue(&NewJob::new(kind, at(run_at)), at(0)).await.unwrap();
    }

    let mut backlog = jobs.backlog(at(100)).await.unwrap();
    backlog.sort_by_key(|b| b.kind.as_str());
    assert_eq!(
        backlog,
        [
            JobBacklog { kind: JobKind::HealthChecks, queued: 1, oldest_due: None },
            JobBacklog { kind: JobKind::Pruning, queued: 3, oldest_due: Some(at(10)) },
        ]
    );
    // Later, the health check is due too.
    let mut later = jobs.backlog(at(300)).await.unwrap();
    later.sort_by_key(|b| b.kind.as_str());
    assert_eq!(later[0], JobBacklog { kind: JobKind::HealthChecks, queued: 1, oldest_due: Some(at(200)) });
}
