//! The engine handle: the one way every participant (the workbench, the
//! headless printer, the control socket, and the controller, MCP server and
//! PTY hosts to come) reaches the engine. Ops go in (`submit`), notices come
//! out (`subscribe`), reads are queries (`query`). The handle owns the
//! registry of the runs this process executes, so no participant wires
//! engine tasks or channels itself.
//!
//! Every op that changes something is journaled before it acts: a retry or
//! a fork is recorded before the run is driven, a merged or discarded
//! worktree is a `worktree` event, a cancel of an idle run is
//! `run_cancel_requested` then `run_finished`.

mod context;
mod deps;
mod elsewhere;
mod endings;
mod query;
mod start;
mod submit;
pub mod suggest;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use crate::journal::{Journal, JournalError, Lease};
use crate::protocol::{Notice, Op, Recorded, RunId, Seq};
use crate::workflow::{self, EngineDeps, EngineError, RunOutcome, Start};

pub use context::{ContextShown, PartShown};
pub use deps::RunSettings;
pub use endings::{RunEnding, StepFailure};
pub use query::{Query, Reply};
pub use start::provider_for;
pub use submit::{Done, Submitted};
pub use suggest::Suggestion;

/// A cheap, cloneable handle on the engine of this process.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    journal: Journal,
    /// What executing a recorded run needs (config, modes, workspace,
    /// options); `Err` says why this process cannot execute runs.
    settings: Result<RunSettings, String>,
    /// Runs this process executes, with the channel that takes their ops.
    active: Mutex<BTreeMap<RunId, mpsc::UnboundedSender<Op>>>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Notice>>>,
    /// Runs other processes execute whose facts this handle follows
    /// (`watch`, a shared journal).
    watched: Mutex<std::collections::BTreeSet<RunId>>,
}

/// A run this handle began executing: the fact that asked for it (a retry
/// or a fork request, when there was one), where the journal stood when
/// the drive began, and how it ends.
pub struct Driving {
    pub run: RunId,
    pub request: Option<Recorded>,
    /// The run's last recorded seq before this drive (`None`: a fresh run,
    /// whose `run_started` the subscribers get as a notice). A participant
    /// that reads the history up to here and then follows the notices sees
    /// every fact once.
    pub resumed_after: Option<Seq>,
    done: oneshot::Receiver<Result<RunOutcome, EngineError>>,
}

impl Driving {
    /// Waits for the run to finish or pause.
    pub async fn outcome(self) -> Result<RunOutcome, EngineError> {
        let run = self.run;
        self.done.await.unwrap_or_else(|_| {
            Err(EngineError::Failed(format!(
                "the engine task of run {run} vanished"
            )))
        })
    }
}

impl std::fmt::Debug for Driving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driving")
            .field("run", &self.run)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The engine over `journal`. With `settings` it can execute recorded
    /// runs (resume, retry, fork); without, it reads and records only.
    pub fn open(journal: Journal, settings: Result<RunSettings, String>) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                journal,
                settings,
                active: Mutex::new(BTreeMap::new()),
                subscribers: Mutex::new(Vec::new()),
                watched: Mutex::new(Default::default()),
            }),
        }
    }

    /// Every notice from now on, of every run this handle executes: facts
    /// after they are journaled, live deltas, refusals, and `Ended`.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Notice> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.inner.subscribers).push(tx);
        rx
    }

    /// True while this handle executes `run`.
    pub fn is_active(&self, run: &RunId) -> bool {
        lock(&self.inner.active).contains_key(run)
    }

    /// True while this handle follows `run`, which another process
    /// executes (`watch`).
    pub fn is_watched(&self, run: &RunId) -> bool {
        lock(&self.inner.watched).contains(run)
    }

    /// The runs this handle executes now.
    pub fn active(&self) -> Vec<RunId> {
        lock(&self.inner.active).keys().cloned().collect()
    }

    /// Executes `run` (just created by `workflow::start_run`, or recorded)
    /// with `deps` until it finishes or pauses.
    pub async fn start(
        &self,
        deps: Arc<EngineDeps>,
        run: RunId,
        start: Start,
    ) -> Result<Driving, EngineError> {
        let (held, lease) = self.take(&run).await?;
        let resumed_after = match start {
            Start::Fresh => None,
            Start::Resume => Some(Seq(self
                .journal()
                .run(&run)
                .await?
                .ok_or_else(|| EngineError::RunNotFound(run.clone()))?
                .last_seq)),
        };
        Ok(self.drive(held, lease, deps, start, None, resumed_after))
    }

    /// Takes `run` for executing here: its place in the registry (so no
    /// other task of this process executes it), then its lease in the
    /// journal (so no other process does). Refused when either is taken.
    async fn take(&self, run: &RunId) -> Result<(Held, Lease), EngineError> {
        let held = self
            .hold(run)
            .ok_or_else(|| EngineError::Refused(format!("run {run} is already executing")))?;
        let lease = self.journal().claim(run).await.map_err(|e| match e {
            JournalError::Leased { .. } => EngineError::Refused(e.to_string()),
            JournalError::RunNotFound(run) => EngineError::RunNotFound(run),
            e => EngineError::Journal(e),
        })?;
        Ok((held, lease))
    }

    /// Executes the run `held` and `lease` are for (see `take`) until it
    /// ends, its lease is lost (then the run stops here at once: another
    /// process executes it now), or this process stops.
    fn drive(
        &self,
        held: Held,
        mut lease: Lease,
        deps: Arc<EngineDeps>,
        start: Start,
        request: Option<Recorded>,
        resumed_after: Option<Seq>,
    ) -> Driving {
        let run = lease.run().clone();
        let (ops_tx, ops_rx) = mpsc::unbounded_channel();
        let (notice_tx, mut notices) = mpsc::unbounded_channel();
        held.keep(ops_tx);
        let other_runs: Arc<dyn workflow::OtherRuns> = Arc::new(OtherRuns {
            inner: Arc::downgrade(&self.inner),
        });
        let mut task = tokio::spawn(workflow::drive_with(
            deps,
            run.clone(),
            start,
            ops_rx,
            vec![notice_tx],
            Some(other_runs),
        ));
        let (done_tx, done) = oneshot::channel();
        let inner = self.inner.clone();
        let id = run.clone();
        tokio::spawn(async move {
            // Notices first, in order; the end only after the last of them.
            let mut lost = false;
            let joined = loop {
                tokio::select! {
                    biased;
                    Some(n) = notices.recv() => inner.publish(n),
                    joined = &mut task => break joined,
                    () = lease.lost(), if !lost => {
                        // Nothing more of the run is written here (its
                        // appends are refused): stop its steps now.
                        lost = true;
                        task.abort();
                    }
                }
            };
            while let Ok(n) = notices.try_recv() {
                inner.publish(n);
            }
            let result = match joined {
                _ if lost => Err(EngineError::Journal(JournalError::LeaseLost {
                    run: id.clone(),
                    holder: None,
                })),
                Ok(result) => result,
                Err(e) => Err(EngineError::Failed(format!("the engine task stopped: {e}"))),
            };
            if let Err(e) = &result {
                tracing::error!(run = %id, error = %e, "engine stopped");
            }
            // After the run's last append (the release is queued behind
            // it); bounded, so a database out of reach cannot keep the
            // run's end from being told: the lease lapses by itself.
            match tokio::time::timeout(RELEASE_PATIENCE, lease.release()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(run = %id, error = %e, "lease not released; it lapses by itself")
                }
                Err(_) => tracing::warn!(run = %id, "lease release timed out; it lapses by itself"),
            }
            lock(&inner.active).remove(&id);
            inner.publish(Notice::Ended(id));
            let _ = done_tx.send(result);
        });
        Driving {
            run,
            request,
            resumed_after,
            done,
        }
    }

    fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// The journal, for a transport of this handle that is carried by the
    /// journal itself (`host::serve_inbox`: requests from other machines
    /// on a shared journal). Not for reading or writing runs: that is the
    /// handle's.
    pub fn transport_journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// Takes `run` in the registry without executing it (`None`: it is
    /// executing, or held already); it is let go when the hold drops.
    /// Ops sent to it meanwhile are refused as for a run that is finishing.
    fn hold(&self, run: &RunId) -> Option<Held> {
        let mut active = lock(&self.inner.active);
        if active.contains_key(run) {
            return None;
        }
        // A sender whose receiver is gone: nothing executes the run.
        let (tx, _) = mpsc::unbounded_channel();
        active.insert(run.clone(), tx);
        Some(Held {
            inner: self.inner.clone(),
            run: Some(run.clone()),
        })
    }

    /// The ops channel of `run` when this handle executes it.
    fn live(&self, run: &RunId) -> Option<mpsc::UnboundedSender<Op>> {
        lock(&self.inner.active).get(run).cloned()
    }

    /// This process's settings for executing runs, or why it has none.
    fn settings(&self) -> Result<&RunSettings, EngineError> {
        self.inner.settings.as_ref().map_err(|why| {
            EngineError::Refused(format!("this lev process cannot execute runs: {why}"))
        })
    }

    /// This process's workspace (`--workspace`, else the current folder),
    /// even when it cannot execute runs.
    fn local_workspace(&self) -> std::path::PathBuf {
        self.inner
            .settings
            .as_ref()
            .ok()
            .and_then(|s| s.workspace.clone())
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| ".".into())
    }

    /// What executing a run of the definition at `source` needs (this
    /// process's settings with it). Checked before anything is recorded.
    fn deps_for(&self, source: &str) -> Result<Arc<EngineDeps>, EngineError> {
        self.settings()?
            .deps(self.journal().clone(), Some(std::path::Path::new(source)))
            .map(|(deps, notes)| {
                for note in notes {
                    tracing::info!("{note}");
                }
                deps
            })
            .map_err(EngineError::Refused)
    }
}

/// A run's way to other runs through this handle (a spread run stops its
/// step runs): weak, so a run does not keep its engine alive.
struct OtherRuns {
    inner: std::sync::Weak<Inner>,
}

impl workflow::OtherRuns for OtherRuns {
    fn submit(&self, op: Op) -> futures::future::BoxFuture<'static, Result<(), String>> {
        let engine = self.inner.upgrade().map(|inner| Engine { inner });
        Box::pin(async move {
            let Some(engine) = engine else {
                return Err("the engine is gone".into());
            };
            engine
                .submit(op)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// How long the end of a run waits for its lease to be let go.
const RELEASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// A run held in the registry (`Engine::hold`).
struct Held {
    inner: Arc<Inner>,
    /// `None` once the place is kept for executing the run (`keep`).
    run: Option<RunId>,
}

impl Held {
    /// The run executes now: its place takes `ops`, and stays when this
    /// goes (the drive removes it when the run ends).
    fn keep(mut self, ops: mpsc::UnboundedSender<Op>) {
        if let Some(run) = self.run.take() {
            lock(&self.inner.active).insert(run, ops);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(run) = &self.run {
            lock(&self.inner.active).remove(run);
        }
    }
}

impl Inner {
    /// Sends to every subscriber still listening; forgets the others.
    fn publish(&self, notice: Notice) {
        lock(&self.subscribers).retain(|s| s.send(notice.clone()).is_ok());
    }
}

/// The registry stays usable even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run held for a delete counts as taken under the same lock `drive`
    /// checks, and is let go when the hold ends.
    #[tokio::test]
    async fn a_held_run_is_taken_until_the_hold_ends() {
        let dir = tempfile::tempdir().unwrap();
        let journal = crate::journal::testing::open(dir.path()).await;
        let engine = Engine::open(journal.journal.clone(), Err("no runs here".into()));
        let run = RunId("r1".into());
        let held = engine.hold(&run).expect("a free run can be held");
        assert!(engine.is_active(&run));
        assert!(engine.hold(&run).is_none(), "held once only");
        let refused = engine
            .submit(Op::Pause {
                run: run.clone(),
                step: None,
            })
            .await;
        assert!(refused.is_err(), "{refused:?}");
        drop(held);
        assert!(!engine.is_active(&run));
    }
}
