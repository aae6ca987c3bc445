//! Run leases on PostgreSQL: which lev process executes a run.
//!
//! A process executes a run only while it holds the run's lease: a row's
//! `lease_holder`, `lease_gen` and `lease_until` (migration 2). Claiming
//! takes the next generation under the row's lock, so of two claimers one
//! wins; the holder renews `lease_until` by heartbeat (every third of the
//! lease), and a lease not renewed in time lapses, so another process
//! (a `lev worker`) may claim the run and resume it. Every append carries
//! the generation its process holds and is refused once the row has moved
//! on (`store::fence`): a process stopped past its lease (SIGSTOP, a cut
//! network) that wakes up cannot write to the run it lost, so it starts
//! nothing whose start it must journal first. Times are the server's
//! (`now()`), so machines' clocks need not agree.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{PgStore, failed, to_u64};
use crate::journal::JournalError;
use crate::protocol::RunId;

/// How long a lease lasts unless renewed, when nothing says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// The channel a run that became claimable is notified on (its id).
pub(crate) const READY_CHANNEL: &str = "lev_ready";

/// The leases this process holds, by run: their generation, and a flag
/// the heartbeat raises when one is found lost. A lost lease stays here
/// (its appends keep carrying the old generation, so they stay refused)
/// until it is released.
pub(crate) struct Leases {
    /// This process as rows name it: `host:pid:nonce`.
    holder: String,
    duration: Duration,
    held: Mutex<HashMap<RunId, Held>>,
}

struct Held {
    generation: i64,
    lost: watch::Sender<bool>,
}

impl Leases {
    pub(crate) fn new(duration: Duration) -> Leases {
        Leases {
            holder: holder_name(),
            duration,
            held: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn holder(&self) -> &str {
        &self.holder
    }

    /// The lease's length in milliseconds, as SQL takes it.
    pub(crate) fn millis(&self) -> i64 {
        i64::try_from(self.duration.as_millis()).unwrap_or(i64::MAX)
    }

    /// The generation this process holds on `run`, if it holds it.
    pub(crate) fn generation(&self, run: &RunId) -> Option<i64> {
        self.lock().get(run).map(|h| h.generation)
    }

    /// Notes a lease just taken; returns the flag that says it was lost.
    pub(crate) fn hold(&self, run: &RunId, generation: i64) -> watch::Receiver<bool> {
        let (lost, watch) = watch::channel(false);
        self.lock().insert(run.clone(), Held { generation, lost });
        watch
    }

    /// The flag of a lease this process holds already, with its generation.
    pub(crate) fn held(&self, run: &RunId) -> Option<(i64, watch::Receiver<bool>)> {
        let held = self.lock();
        let h = held.get(run)?;
        (!*h.lost.borrow()).then(|| (h.generation, h.lost.subscribe()))
    }

    /// Forgets a lease that was released (if still that generation).
    pub(crate) fn forget(&self, run: &RunId, generation: i64) {
        let mut held = self.lock();
        if held.get(run).is_some_and(|h| h.generation == generation) {
            held.remove(run);
        }
    }

    /// The leases to renew: those not known lost.
    fn live(&self) -> Vec<(RunId, i64)> {
        self.lock()
            .iter()
            .filter(|(_, h)| !*h.lost.borrow())
            .map(|(run, h)| (run.clone(), h.generation))
            .collect()
    }

    /// Raises the lost flag of `run`'s lease (of that generation).
    fn lose(&self, run: &RunId, generation: i64) {
        if let Some(h) = self.lock().get(run)
            && h.generation == generation
        {
            h.lost.send_replace(true);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RunId, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// True when `holder` names a process of this machine that is gone (no
/// such pid): its leases need not be waited out. A pid taken again by
/// another process counts as alive (the lease is waited out, the safe
/// way); without `/proc`, every process does.
pub(crate) fn gone_from_here(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (Some(_nonce), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let here = this_host();
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    host == here
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// This machine's name, as holders name it.
fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `host:pid:nonce`: which machine and process holds a lease, and a nonce
/// so a later process that gets the same pid is not taken for this one.
fn holder_name() -> String {
    let host = this_host();
    let pid = std::process::id();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let nonce = blake3::hash(format!("{host}{pid}{now}").as_bytes()).to_hex();
    format!("{host}:{pid}:{}", &nonce[..6])
}

/// Renews this process's leases every third of their length until `leases`
/// is dropped. A lease the database no longer has at its generation is
/// lost (another process claimed the run); when renewals keep failing for
/// a whole lease (the database is out of reach), every lease is taken for
/// lost, since another process may claim them by now.
pub(crate) async fn heartbeat(store: PgStore, leases: std::sync::Weak<Leases>) {
    let mut last_ok = Instant::now();
    loop {
        let Some(l) = leases.upgrade() else { return };
        let every = l.duration / 3;
        let live = l.live();
        if !live.is_empty() {
            match store.renew(l.holder(), l.millis(), &live).await {
                Ok(renewed) => {
                    last_ok = Instant::now();
                    for (run, generation) in &live {
                        if !renewed.contains(run) {
                            tracing::warn!(run = %run, "lease lost: another lev process claimed the run");
                            l.lose(run, *generation);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not renew run leases");
                    if last_ok.elapsed() >= l.duration {
                        for (run, generation) in &live {
                            l.lose(run, *generation);
                        }
                    }
                }
            }
        } else {
            last_ok = Instant::now();
        }
        drop(l);
        tokio::time::sleep(every).await;
    }
}

/// What claiming a run found.
pub(crate) enum Claimed {
    /// The lease is this process's, at this generation.
    Won(i64),
    /// Another process holds a live lease on it.
    Held(String),
    /// No such run.
    Missing,
}

impl PgStore {
    /// Claims `run` for `holder` for `millis`: the next generation, when
    /// nobody holds a live lease on it.
    pub(crate) async fn claim(
        &self,
        run: &RunId,
        holder: &str,
        millis: i64,
    ) -> Result<Claimed, JournalError> {
        let during = format!("claim run {run}");
        let conn = self.conn().await?;
        // Free, or lapsed, or held by `$4`: a process of this machine that
        // is gone (a `lev run` killed a moment ago), whose lease need not
        // be waited out.
        let claim = "UPDATE lev_runs SET lease_holder = $2, lease_gen = lease_gen + 1,
                 lease_until = now() + $3::bigint * interval '1 millisecond',
                 claim_after = NULL
             WHERE id = $1
               AND (lease_until IS NULL OR lease_until <= now() OR lease_holder = $4)
             RETURNING lease_gen";
        let mut gone = String::new();
        loop {
            let row = conn
                .client()
                .query_opt(claim, &[&run.as_str(), &holder, &millis, &gone])
                .await
                .map_err(failed(self.server(), &during))?;
            if let Some(row) = row {
                let generation: i64 = row.try_get(0).map_err(failed(self.server(), &during))?;
                return Ok(Claimed::Won(generation));
            }
            let row = conn
                .client()
                .query_opt(
                    "SELECT coalesce(lease_holder, '') FROM lev_runs WHERE id = $1",
                    &[&run.as_str()],
                )
                .await
                .map_err(failed(self.server(), &during))?;
            let Some(row) = row else {
                return Ok(Claimed::Missing);
            };
            let now: String = row.try_get(0).map_err(failed(self.server(), &during))?;
            // Once: a holder seen gone whose claim still fails was
            // replaced meanwhile by a live one.
            if gone.is_empty() && gone_from_here(&now) {
                gone = now;
                continue;
            }
            return Ok(Claimed::Held(now));
        }
    }

    /// Claims the running run that waited longest for an executor (no live
    /// lease, not held back), skipping rows other claimers or appenders
    /// have locked (`SKIP LOCKED`): workers claiming at once get different
    /// runs, and none waits for another.
    pub(crate) async fn claim_next(
        &self,
        holder: &str,
        millis: i64,
        accept: &crate::journal::Accept,
    ) -> Result<Option<(RunId, i64)>, JournalError> {
        let modes: Vec<String> = accept
            .step_modes
            .iter()
            .flatten()
            .map(|m| crate::journal::work::step(m))
            .collect();
        let any_step = accept.step_modes.is_none();
        let during = "claim a run";
        let conn = self.conn().await?;
        let row = conn
            .client()
            .query_opt(
                "UPDATE lev_runs SET lease_holder = $1, lease_gen = lease_gen + 1,
                     lease_until = now() + $2::bigint * interval '1 millisecond',
                     claim_after = NULL
                 WHERE id = (
                     SELECT id FROM lev_runs
                     WHERE status = 'running'
                       AND (lease_until IS NULL OR lease_until <= now())
                       AND (claim_after IS NULL OR claim_after <= now())
                       AND ((work = 'spread' AND $3) OR (work = 'run' AND $4)
                            OR (work LIKE 'step:%' AND ($5 OR work = ANY($6::text[]))))
                     ORDER BY updated_ms
                     LIMIT 1
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id, lease_gen",
                &[
                    &holder,
                    &millis,
                    &accept.spread,
                    &accept.runs,
                    &any_step,
                    &modes,
                ],
            )
            .await
            .map_err(failed(self.server(), during))?;
        row.map(|row| {
            let id: String = row.try_get(0).map_err(failed(self.server(), during))?;
            let generation: i64 = row.try_get(1).map_err(failed(self.server(), during))?;
            Ok((RunId(id), generation))
        })
        .transpose()
    }

    /// Renews `holder`'s leases on `runs` (each at its generation) for
    /// `millis`; returns the runs renewed — one missing was claimed by
    /// another process (or deleted).
    async fn renew(
        &self,
        holder: &str,
        millis: i64,
        runs: &[(RunId, i64)],
    ) -> Result<Vec<RunId>, JournalError> {
        let ids: Vec<&str> = runs.iter().map(|(r, _)| r.as_str()).collect();
        let generations: Vec<i64> = runs.iter().map(|(_, g)| *g).collect();
        let conn = self.conn().await?;
        let rows = conn
            .client()
            .query(
                // The rows are locked in id order first, as the writer's
                // batches lock them: a renewal and a batch of appends to
                // the same runs never wait for each other in a circle.
                "WITH mine AS MATERIALIZED (
                     SELECT r.id FROM lev_runs r
                     JOIN unnest($1::text[], $2::bigint[]) AS h(id, generation)
                       ON r.id = h.id AND r.lease_gen = h.generation
                     WHERE r.lease_holder = $4
                     ORDER BY r.id
                     FOR UPDATE OF r)
                 UPDATE lev_runs r
                 SET lease_until = now() + $3::bigint * interval '1 millisecond'
                 FROM mine WHERE r.id = mine.id
                 RETURNING r.id",
                &[&ids, &generations, &millis, &holder],
            )
            .await
            .map_err(failed(self.server(), "renew run leases"))?;
        rows.iter()
            .map(|row| {
                row.try_get::<_, String>(0)
                    .map(RunId)
                    .map_err(failed(self.server(), "renew run leases"))
            })
            .collect()
    }

    /// Lets go of `holder`'s lease on `run` (at `generation`; nothing when
    /// it was claimed since), holding the run back from claims for
    /// `hold_back_ms` when given; a run left running is announced on
    /// `READY_CHANNEL` to the workers.
    pub(crate) async fn release(
        &self,
        run: &RunId,
        holder: &str,
        generation: i64,
        hold_back_ms: Option<i64>,
    ) -> Result<(), JournalError> {
        let during = format!("release run {run}");
        let conn = self.conn().await?;
        conn.client()
            .execute(
                &format!(
                    "WITH released AS (
                         UPDATE lev_runs SET lease_holder = NULL, lease_until = NULL,
                             claim_after = CASE WHEN $4::bigint IS NULL THEN NULL
                                 ELSE now() + $4::bigint * interval '1 millisecond' END
                         WHERE id = $1 AND lease_holder = $2 AND lease_gen = $3
                         RETURNING id, status)
                     SELECT pg_notify('{READY_CHANNEL}', id) FROM released
                     WHERE status = 'running' AND $4::bigint IS NULL"
                ),
                &[&run.as_str(), &holder, &generation, &hold_back_ms],
            )
            .await
            .map_err(failed(self.server(), &during))?;
        Ok(())
    }

    /// Every live lease: run, holder (for lists of runs), but those of
    /// processes of this machine that are gone.
    pub async fn live_leases(&self) -> Result<Vec<(RunId, String)>, JournalError> {
        let during = "read the runs' leases";
        let conn = self.conn().await?;
        let rows = conn
            .client()
            .query(
                "SELECT id, lease_holder FROM lev_runs
                 WHERE lease_holder IS NOT NULL AND lease_until > now()",
                &[],
            )
            .await
            .map_err(failed(self.server(), during))?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get(0).map_err(failed(self.server(), during))?;
                let holder: String = row.try_get(1).map_err(failed(self.server(), during))?;
                Ok((RunId(id), holder))
            })
            .filter(|l| !matches!(l, Ok((_, holder)) if gone_from_here(holder)))
            .collect()
    }

    /// Who holds a live lease on `run` and for how many more milliseconds
    /// (`None`: nobody, no such run, or a process of this machine that is
    /// gone — nobody executes the run any more).
    pub async fn lease_of(&self, run: &RunId) -> Result<Option<(String, u64)>, JournalError> {
        let during = format!("read the lease of run {run}");
        let conn = self.conn().await?;
        let row = conn
            .client()
            .query_opt(
                "SELECT lease_holder,
                     (extract(epoch FROM lease_until - now()) * 1000)::bigint
                 FROM lev_runs
                 WHERE id = $1 AND lease_holder IS NOT NULL AND lease_until > now()",
                &[&run.as_str()],
            )
            .await
            .map_err(failed(self.server(), &during))?;
        row.map(|row| {
            let holder: String = row.try_get(0).map_err(failed(self.server(), &during))?;
            let left: i64 = row.try_get(1).map_err(failed(self.server(), &during))?;
            Ok((holder, to_u64(left.max(0), self.server(), "lease time")?))
        })
        .transpose()
        .map(|lease| lease.filter(|(holder, _)| !gone_from_here(holder)))
    }
}

/// Shares `leases` with the heartbeat, which holds it weakly and ends
/// when the journal's last handle drops it.
pub(crate) fn start(store: PgStore, duration: Duration) -> Arc<Leases> {
    let leases = Arc::new(Leases::new(duration));
    tokio::spawn(heartbeat(store, Arc::downgrade(&leases)));
    leases
}
