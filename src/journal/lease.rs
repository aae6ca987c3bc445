//! The right to execute a run (`Journal::claim`). On redb the journal's
//! file lock is that right already (one process opens it), so a lease is
//! a token that is never lost. On PostgreSQL it is the run's lease row
//! (`pg/lease.rs`): renewed by heartbeat while this process lives, lost
//! when another process claimed the run after it lapsed, let go when the
//! run stops executing here (`release`, or when dropped).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::JournalError;
use super::pg::{PgJournal, Request};
use crate::protocol::RunId;

/// This process's right to execute one run; see the module docs.
pub struct Lease {
    run: RunId,
    pg: Option<PgLease>,
}

struct PgLease {
    journal: Arc<PgJournal>,
    generation: i64,
    lost: watch::Receiver<bool>,
    /// Set once released explicitly, so dropping does not release again.
    released: bool,
}

impl Lease {
    /// The lease a redb journal hands out: never lost, nothing to release.
    pub(super) fn local(run: RunId) -> Lease {
        Lease { run, pg: None }
    }

    pub(super) fn on_pg(
        run: RunId,
        journal: Arc<PgJournal>,
        generation: i64,
        lost: watch::Receiver<bool>,
    ) -> Lease {
        Lease {
            run,
            pg: Some(PgLease {
                journal,
                generation,
                lost,
                released: false,
            }),
        }
    }

    pub fn run(&self) -> &RunId {
        &self.run
    }

    /// The claim's generation on PostgreSQL (each claim of a run takes the
    /// next); `None` on redb.
    pub fn generation(&self) -> Option<i64> {
        self.pg.as_ref().map(|p| p.generation)
    }

    /// Returns once the lease is found lost (another process claimed the
    /// run); never on redb, or while it holds.
    pub async fn lost(&mut self) {
        let Some(pg) = &mut self.pg else {
            return std::future::pending().await;
        };
        // An error means the heartbeat's side is gone with the journal:
        // nothing will say the lease was lost any more.
        if pg.lost.wait_for(|lost| *lost).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Lets go of the run after every append submitted before this, and
    /// waits until the database says so: a worker may claim it at once.
    pub async fn release(self) -> Result<(), JournalError> {
        self.release_holding_back(None).await
    }

    /// `release`, keeping workers from claiming the run for `hold_back`
    /// (this process could not execute it; another may, later).
    pub async fn release_for(self, hold_back: Duration) -> Result<(), JournalError> {
        let ms = i64::try_from(hold_back.as_millis()).unwrap_or(i64::MAX);
        self.release_holding_back(Some(ms)).await
    }

    async fn release_holding_back(mut self, hold_back_ms: Option<i64>) -> Result<(), JournalError> {
        let Some(pg) = &mut self.pg else {
            return Ok(());
        };
        pg.released = true;
        let (reply, answer) = oneshot::channel();
        pg.journal
            .send(Request::Release {
                run: self.run.clone(),
                generation: pg.generation,
                hold_back_ms,
                reply: Some(reply),
            })
            .await?;
        answer.await.map_err(|_| JournalError::Closed)?
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(pg) = &self.pg else { return };
        if pg.released {
            return;
        }
        // Without waiting: ordered after this process's earlier appends
        // all the same. When the queue is full the lease lapses by itself.
        let queued = pg.journal.try_send(Request::Release {
            run: self.run.clone(),
            generation: pg.generation,
            hold_back_ms: None,
            reply: None,
        });
        if !queued {
            tracing::warn!(run = %self.run, "lease not released; it lapses by itself");
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("run", &self.run)
            .field("generation", &self.generation())
            .finish()
    }
}
