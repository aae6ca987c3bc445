//! Reads through the engine handle: runs, a run's events, an export, the
//! memory bank, a step's worktree diff. Queries change nothing; the control
//! socket carries them as they are.

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError};
use crate::isolation::{self, StepWorktree};
use crate::journal::{MemoryRecord, RunMeta};
use crate::memory;
use crate::protocol::{Recorded, RunId, StepKey};
use crate::workflow;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
pub enum Query {
    /// Every run in the journal.
    Runs,
    Run {
        id: RunId,
    },
    /// A run's recorded events, in order.
    Events {
        id: RunId,
    },
    /// A run as `lev export` writes it (JSON lines).
    Export {
        id: RunId,
    },
    /// Memory entries of some namespaces (all when `None`).
    Memory {
        namespaces: Option<Vec<String>>,
    },
    MemorySearch {
        query: memory::Query,
    },
    /// The diff of a step's worktree against its merge-base.
    WorktreeDiff {
        run: RunId,
        step: StepKey,
    },
    /// What an agent step's request at `turn` (default: its last) was made
    /// of, with each part's text.
    Context {
        run: RunId,
        step: StepKey,
        turn: Option<u32>,
    },
    /// FlowMind's whisper scores, by category.
    WhisperScores,
    /// The root workflow text a run is pinned to, and its path.
    Definition {
        id: RunId,
    },
    /// What the `runs` newest runs suggest (patterns across them), newest
    /// first.
    Suggestions {
        runs: usize,
    },
    /// The recorded answer to question `question` of `run`, if it has one
    /// (what `lev hook` waits on for an approval).
    Answer {
        run: RunId,
        question: String,
    },
    /// The workflow text `lev template save RUN NAME` writes for `run`,
    /// checked against this process's modes.
    Template {
        run: RunId,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum Reply {
    Runs(Vec<RunMeta>),
    Run(Option<RunMeta>),
    Events(Vec<Recorded>),
    Export(String),
    Memory(Vec<MemoryRecord>),
    WhisperScores(Vec<crate::protocol::WhisperScore>),
    Hits(Vec<memory::Hit>),
    Diff(String),
    Context(Box<super::context::ContextShown>),
    Suggestions(Vec<super::Suggestion>),
    Definition {
        path: std::path::PathBuf,
        text: String,
    },
    /// A template's text and how many steps it has.
    Template {
        text: String,
        steps: usize,
    },
    Answer(Option<String>),
}

impl Engine {
    /// Folds a run's events up to `upto` into `state` as they are read, in
    /// this process only: a participant that needs a little of a long
    /// run's past (the headless printer's clock) never holds all of it.
    pub async fn fold_events<S: Send + 'static>(
        &self,
        run: &RunId,
        upto: crate::protocol::Seq,
        state: S,
        mut each: impl FnMut(&mut S, Recorded) + Send + 'static,
    ) -> Result<S, EngineError> {
        let id = run.clone();
        let folded = self
            .journal()
            .fold_run(run, crate::protocol::Seq(1), state, move |s, seq, entry| {
                if seq <= upto {
                    each(s, workflow::from_entry(&id, seq, &entry)?);
                }
                Ok(())
            })
            .await?;
        Ok(folded)
    }

    pub async fn query(&self, query: Query) -> Result<Reply, EngineError> {
        let journal = self.journal();
        let failed = |e: memory::MemoryError| EngineError::Failed(e.to_string());
        Ok(match query {
            Query::Runs => Reply::Runs(journal.runs().await?),
            Query::Run { id } => Reply::Run(journal.run(&id).await?),
            Query::Events { id } => Reply::Events(workflow::read_run(journal, &id).await?),
            Query::Export { id } => {
                let mut buf = Vec::new();
                journal.export(&id, &mut buf).await?;
                Reply::Export(String::from_utf8_lossy(&buf).into_owned())
            }
            Query::Memory { namespaces } => {
                Reply::Memory(memory::list(journal, namespaces).await.map_err(failed)?)
            }
            Query::MemorySearch { query } => {
                Reply::Hits(memory::search(journal, &query).await.map_err(failed)?)
            }
            Query::WorktreeDiff { run, step } => {
                let found = self.step_worktree(&run, &step).await?;
                let (w, pushed) = (found.worktree, found.pushed);
                let diff = tokio::task::spawn_blocking(move || {
                    if let Some(p) = pushed {
                        // Made on another machine: its branch comes from the remote.
                        isolation::fetch(&w.repo, &w.branch, &p.remote, &p.commit)?;
                    }
                    isolation::diff(&w.repo, &w.path, &w.base, &w.branch)
                })
                .await
                .map_err(|e| EngineError::Failed(format!("git stopped: {e}")))?;
                Reply::Diff(diff.map_err(|e| EngineError::Failed(e.to_string()))?)
            }
            Query::Context { run, step, turn } => {
                Reply::Context(Box::new(self.context(&run, &step, turn).await?))
            }
            Query::WhisperScores => Reply::WhisperScores(journal.whisper_scores().await?),
            Query::Definition { id } => {
                let meta = journal
                    .run(&id)
                    .await?
                    .ok_or_else(|| EngineError::RunNotFound(id.clone()))?;
                let bytes = journal.blob(&meta.definition_blob).await?.ok_or_else(|| {
                    EngineError::Failed(format!("run {id} has no pinned definition"))
                })?;
                let (path, text) =
                    workflow::pinning::root_text(&bytes).map_err(EngineError::Failed)?;
                Reply::Definition { path, text }
            }
            Query::Suggestions { runs } => {
                Reply::Suggestions(super::suggest::suggest(&self.run_endings(runs).await?))
            }
            Query::Template { run, name } => self.template(&run, &name).await?,
            Query::Answer { run, question } => Reply::Answer(self.answer(&run, question).await?),
        })
    }

    /// The answer to `question` as recorded, reading only `question_answered`
    /// entries.
    async fn answer(&self, run: &RunId, question: String) -> Result<Option<String>, EngineError> {
        let id = run.clone();
        let found = self
            .journal()
            .fold_run(
                run,
                crate::protocol::Seq(1),
                None,
                move |found, seq, entry| {
                    if entry.kind == "question_answered" {
                        let r = workflow::from_entry(&id, seq, &entry)?;
                        if let crate::protocol::Event::QuestionAnswered { id, answer, .. } = r.event
                            && id == question
                        {
                            *found = Some(answer);
                        }
                    }
                    Ok(())
                },
            )
            .await?;
        Ok(found)
    }

    /// The template of `run` named `name`, refused when it would not load
    /// as a workflow here.
    async fn template(&self, run: &RunId, name: &str) -> Result<Reply, EngineError> {
        let journal = self.journal();
        let meta = journal
            .run(run)
            .await?
            .ok_or_else(|| EngineError::RunNotFound(run.clone()))?;
        let events = workflow::read_run(journal, run).await?;
        let planned =
            crate::swarm::saved::plan_template(&meta, &events, name).map_err(|r| {
                match r.usage {
                    true => EngineError::Refused(r.message),
                    false => EngineError::Failed(r.message),
                }
            })?;
        let text = match planned {
            Some(text) => text,
            None => {
                let bytes = journal.blob(&meta.definition_blob).await?.ok_or_else(|| {
                    EngineError::Failed(format!("run {run} has no pinned definition"))
                })?;
                let (_, pinned) =
                    workflow::pinning::root_text(&bytes).map_err(EngineError::Failed)?;
                crate::swarm::saved::renamed(&pinned, name, run.as_str())
            }
        };
        let settings = self.inner.settings.as_ref().map_err(|e| {
            EngineError::Failed(format!("the template cannot be checked here: {e}"))
        })?;
        let path = std::path::Path::new("template.yaml");
        let steps = match crate::spec::load_workflow_str(path, &text, &settings.modes) {
            Ok(wf) => wf.steps.len(),
            Err(diags) => {
                return Err(EngineError::Refused(format!(
                    "run {run} does not make a valid workflow (a child workflow it uses is not there?): {diags}"
                )));
            }
        };
        Ok(Reply::Template { text, steps })
    }

    /// The worktree of `step` as `run`'s journal folds it.
    pub(super) async fn step_worktree(
        &self,
        run: &RunId,
        step: &StepKey,
    ) -> Result<StepWorktree, EngineError> {
        let events = workflow::read_run(self.journal(), run).await?;
        if events.is_empty() {
            return Err(EngineError::RunNotFound(run.clone()));
        }
        let all = isolation::fold(&events);
        if let Some(found) = all.iter().find(|w| &w.step == step) {
            isolation::check_owned(&found.worktree)
                .map_err(|e| EngineError::Refused(e.to_string()))?;
        }
        match all.iter().find(|w| &w.step == step) {
            Some(found) if found.pushed.is_some() => {
                // A branch that travels is acted on in the clone this
                // process works in (the step may have run on another
                // machine, or in another clone here); in the one it was
                // made in when this process works in none.
                let workspace = self.local_workspace();
                let made = found.worktree.clone();
                let here =
                    tokio::task::spawn_blocking(move || isolation::relocated(&made, &workspace))
                        .await
                        .map_err(|e| EngineError::Failed(format!("git stopped: {e}")))?;
                match here {
                    Ok(worktree) => Ok(StepWorktree {
                        worktree,
                        ..found.clone()
                    }),
                    Err(_) if found.worktree.repo.is_dir() => Ok(found.clone()),
                    Err(e) => Err(EngineError::Refused(e.to_string())),
                }
            }
            Some(found) if !found.worktree.repo.is_dir() => Err(EngineError::Refused(format!(
                "step `{step}`'s branch {} is in {} on the machine that ran it, not on this one; act on it there, or run with --push-to REMOTE so its branch can be merged from any machine",
                found.worktree.branch,
                found.worktree.repo.display()
            ))),
            Some(found) => Ok(found.clone()),
            None => Err(EngineError::Refused(isolation::no_worktree(
                run,
                step.as_str(),
                &all,
            ))),
        }
    }
}

impl Reply {
    /// What a caller that expected another kind of reply says.
    pub fn unexpected(&self) -> String {
        let kind = match self {
            Reply::Runs(_) => "runs",
            Reply::Run(_) => "run",
            Reply::Events(_) => "events",
            Reply::Export(_) => "export",
            Reply::Memory(_) => "memory",
            Reply::WhisperScores(_) => "whisper scores",
            Reply::Hits(_) => "hits",
            Reply::Diff(_) => "diff",
            Reply::Context(_) => "context",
            Reply::Suggestions(_) => "suggestions",
            Reply::Definition { .. } => "definition",
            Reply::Template { .. } => "template",
            Reply::Answer(_) => "answer",
        };
        format!("unexpected `{kind}` reply from the engine")
    }
}
