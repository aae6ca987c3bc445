//! Run leases on the real server (`pg/lease.rs`): who may execute and
//! write a run, claims racing, lapsed leases taken over, and a holder that
//! lost its lease fenced out of the run.

use std::time::Duration;

use super::tests::TestDb;
use crate::journal::tests::{entry, meta};
use crate::journal::{Journal, JournalError};
use crate::protocol::RunId;

async fn journal(db: &TestDb) -> Journal {
    Journal::open_url(&db.url).await.unwrap()
}

/// A run made by a journal and let go: anyone's to claim.
async fn free_run(j: &Journal) -> RunId {
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    j.claim(&run).await.unwrap().release().await.unwrap();
    run
}

#[tokio::test]
async fn a_run_is_leased_to_its_maker_and_refused_to_other_processes() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (maker, other) = (journal(&db).await, journal(&db).await);
    let run = RunId::new();
    maker.create_run(meta(&run)).await.unwrap();
    // The maker holds it from its creation on: its appends and its claim
    // go through (the claim hands out the lease it holds).
    maker
        .append(&run, vec![entry("a", "1")], None)
        .await
        .unwrap();
    let lease = maker.claim(&run).await.unwrap();
    assert_eq!(lease.generation(), Some(1));
    match other.claim(&run).await {
        Err(JournalError::Leased { run: r, holder }) => {
            assert_eq!(r, run);
            assert_eq!(Some(holder.as_str()), maker.holder());
        }
        other => panic!("{other:?}"),
    }
    let refused = other.append(&run, vec![entry("b", "2")], None).await;
    assert!(
        matches!(refused, Err(JournalError::Leased { .. })),
        "{refused:?}"
    );
    let (holder, left) = other.lease_of(&run).await.unwrap().unwrap();
    assert_eq!(Some(holder.as_str()), maker.holder());
    assert!(left > 0 && left <= 15_000, "{left}");
    // Let go, it is anyone's: the other claims it (the next generation)
    // and writes.
    lease.release().await.unwrap();
    assert_eq!(other.lease_of(&run).await.unwrap(), None);
    let taken = other.claim(&run).await.unwrap();
    assert_eq!(taken.generation(), Some(2));
    other
        .append(&run, vec![entry("b", "2")], None)
        .await
        .unwrap();
    assert_eq!(other.run(&run).await.unwrap().unwrap().last_seq, 2);
    assert!(matches!(
        other.claim(&RunId::new()).await,
        Err(JournalError::RunNotFound(_))
    ));
}

#[tokio::test]
async fn processes_claiming_one_run_at_once_have_one_winner() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let maker = journal(&db).await;
    let run = free_run(&maker).await;
    let mut claimers = Vec::new();
    for _ in 0..4 {
        claimers.push(journal(&db).await);
    }
    let claims = futures::future::join_all(claimers.iter().map(|j| j.claim(&run))).await;
    let won = claims.iter().filter(|c| c.is_ok()).count();
    assert_eq!(won, 1, "{claims:?}");
    assert!(
        claims
            .iter()
            .all(|c| c.is_ok() || matches!(c, Err(JournalError::Leased { .. }))),
        "{claims:?}"
    );
}

#[tokio::test]
async fn workers_claiming_at_once_each_get_different_runs_and_finished_ones_none() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let maker = journal(&db).await;
    let mut runs = Vec::new();
    for _ in 0..9 {
        runs.push(free_run(&maker).await);
    }
    // A finished run is nobody's to claim.
    let done = RunId::new();
    maker.create_run(meta(&done)).await.unwrap();
    maker
        .append(&done, vec![], Some(crate::protocol::RunStatus::Succeeded))
        .await
        .unwrap();
    maker.claim(&done).await.unwrap().release().await.unwrap();
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(journal(&db).await);
    }
    let claimed = futures::future::join_all(workers.iter().map(|w| async move {
        let mut mine = Vec::new();
        while let Some(lease) = w.claim_next().await.unwrap() {
            mine.push(lease);
        }
        mine
    }))
    .await;
    let mut got: Vec<RunId> = claimed.iter().flatten().map(|l| l.run().clone()).collect();
    got.sort();
    runs.sort();
    assert_eq!(got, runs, "each running run claimed exactly once");
}

#[tokio::test]
async fn a_released_run_is_announced_and_one_held_back_waits_its_time() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (maker, worker) = (journal(&db).await, journal(&db).await);
    let mut ready = worker.ready().await.unwrap().unwrap();
    let run = free_run(&maker).await;
    let announced = tokio::time::timeout(Duration::from_secs(10), ready.recv())
        .await
        .unwrap();
    assert_eq!(announced.as_deref(), Some(run.as_str()));
    // Held back (a worker could not execute it): no worker claims it for
    // now, nothing is announced, yet a process asking for it by name may.
    let lease = worker.claim_next().await.unwrap().unwrap();
    assert_eq!(lease.run(), &run);
    lease.release_for(Duration::from_secs(3600)).await.unwrap();
    assert!(worker.claim_next().await.unwrap().is_none());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), ready.recv())
            .await
            .is_err()
    );
    assert_eq!(maker.claim(&run).await.unwrap().generation(), Some(3));
}

#[tokio::test]
async fn a_holder_whose_run_was_claimed_over_is_fenced_and_told() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    // A short lease: the heartbeat looks every third of a second.
    let first = Journal::open_url_leasing(&db.url, Duration::from_secs(1))
        .await
        .unwrap();
    let run = RunId::new();
    first.create_run(meta(&run)).await.unwrap();
    let mut lease = first.claim(&run).await.unwrap();
    first
        .append(&run, vec![entry("a", "1")], None)
        .await
        .unwrap();
    // Another process claimed it while this one was stopped past its
    // lease (as `claim` does, behind this process's back).
    db.sql()
        .await
        .execute(
            "UPDATE lev_runs SET lease_holder = 'elsewhere:1:x', lease_gen = lease_gen + 1,
                 lease_until = now() + interval '1 hour' WHERE id = $1",
            &[&run.as_str()],
        )
        .await
        .unwrap();
    // Woken, it cannot write a thing more of the run...
    match first.append(&run, vec![entry("b", "2")], None).await {
        Err(JournalError::LeaseLost { run: r, holder }) => {
            assert_eq!(r, run);
            assert_eq!(holder.as_deref(), Some("elsewhere:1:x"));
        }
        other => panic!("{other:?}"),
    }
    // ...and its heartbeat tells the engine, which stops the run here.
    tokio::time::timeout(Duration::from_secs(10), lease.lost())
        .await
        .expect("the lost lease is noticed");
    assert_eq!(first.run(&run).await.unwrap().unwrap().last_seq, 1);
    // Its release lets go of nothing it no longer holds.
    lease.release().await.unwrap();
    let (holder, _) = first.lease_of(&run).await.unwrap().unwrap();
    assert_eq!(holder, "elsewhere:1:x");
}

#[tokio::test]
async fn a_lapsed_lease_is_claimed_and_a_gone_local_holder_need_not_be_waited_out() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let worker = journal(&db).await;
    let sql = db.sql().await;
    // A holder on another machine whose lease lapsed: claimable.
    let lapsed = free_run(&worker).await;
    sql.execute(
        "UPDATE lev_runs SET lease_holder = 'far-away:7:x', lease_until = now() - interval '1 second'
         WHERE id = $1",
        &[&lapsed.as_str()],
    )
    .await
    .unwrap();
    // A live lease of another machine: not.
    let far = free_run(&worker).await;
    sql.execute(
        "UPDATE lev_runs SET lease_holder = 'far-away:7:x', lease_until = now() + interval '1 hour'
         WHERE id = $1",
        &[&far.as_str()],
    )
    .await
    .unwrap();
    let next = worker.claim_next().await.unwrap().unwrap();
    assert_eq!(next.run(), &lapsed);
    assert!(worker.claim_next().await.unwrap().is_none());
    assert!(matches!(
        worker.claim(&far).await,
        Err(JournalError::Leased { .. })
    ));
    // A live lease of a process of this machine that is gone (no such
    // pid): a process asking for the run takes it at once.
    let host = worker
        .holder()
        .unwrap()
        .rsplitn(3, ':')
        .nth(2)
        .unwrap()
        .to_owned();
    let gone = format!("{host}:4194999:dead00");
    sql.execute(
        "UPDATE lev_runs SET lease_holder = $2, lease_until = now() + interval '1 hour'
         WHERE id = $1",
        &[&far.as_str(), &gone],
    )
    .await
    .unwrap();
    assert!(!worker.live_leases().await.unwrap().contains_key(&far));
    let taken = worker.claim(&far).await.unwrap();
    assert_eq!(taken.run(), &far);
    let leases = worker.live_leases().await.unwrap();
    assert_eq!(leases.get(&far).map(String::as_str), worker.holder());
}
