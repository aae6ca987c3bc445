//! An agent CLI's session: the arguments an attempt launches it with (a
//! new session of an id lev chose, or the interrupted attempt's resumed),
//! and its id as learned while it runs, journaled once.

use crate::config::agent_cli::{self, AgentCli};
use crate::protocol::{Event, StepKey};
use crate::workflow::attempt::{AttemptCtx, StepError};
use crate::workflow::context::RunCtx;

use super::PtyPlan;

/// What this attempt launches: the step's arguments, after the agent
/// CLI's hook arguments (its hooks report to lev) and its resume (an
/// interrupted attempt's session) or new-session arguments.
pub(super) struct Launch {
    pub(super) args: Vec<String>,
    pub(super) session: Option<String>,
    pub(super) resumed: bool,
}

impl Launch {
    pub(super) fn for_attempt(actx: &AttemptCtx, plan: &PtyPlan) -> Launch {
        let Some(cli) = &plan.cli else {
            return Launch {
                args: plan.args.clone(),
                session: None,
                resumed: false,
            };
        };
        let lev = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "lev".into());
        let mut args = cli.hook_args(&lev);
        let (session, resumed) = match resumable_session(&actx.ctx, &actx.key, cli) {
            Some(id) => {
                args.extend(AgentCli::with_session(&cli.resume, &id));
                (Some(id), true)
            }
            None if cli.new_session.is_empty() => (None, false),
            None => {
                let id = agent_cli::new_session_id();
                args.extend(AgentCli::with_session(&cli.new_session, &id));
                (Some(id), false)
            }
        };
        args.extend(plan.args.iter().cloned());
        Launch {
            args,
            session,
            resumed,
        }
    }
}

/// The session of `key`'s interrupted attempt (in flight when lev
/// stopped), when `cli` can resume it by id.
pub fn resumable_session(ctx: &RunCtx, key: &StepKey, cli: &AgentCli) -> Option<String> {
    if cli.resume.is_empty() || ctx.retried(key).is_some() {
        return None;
    }
    let interrupted = ctx
        .history
        .steps
        .get(key)
        .is_some_and(|r| r.settled.is_none());
    let known = ctx.history.pty_sessions.get(key)?;
    let same_cli = known.cli.as_deref().is_none_or(|c| c == cli.name);
    (interrupted && same_cli)
        .then(|| known.session.clone())
        .flatten()
}

/// The agent CLI's session id as far as it is known, and journaled once
/// learned.
pub(super) struct Session {
    pub(super) known: Option<String>,
    /// Where the screen names the session id, compiled once.
    pub(super) pattern: Option<regex::Regex>,
}

impl Session {
    /// Journals `id` when it is new (`source`: where it came from).
    pub(super) async fn learned(
        &mut self,
        actx: &AttemptCtx,
        id: String,
        source: &str,
    ) -> Result<(), StepError> {
        if self.known.as_deref() == Some(id.as_str()) || id.is_empty() || id.len() > 200 {
            return Ok(());
        }
        self.known = Some(id.clone());
        let event = Event::PtySession {
            step: actx.key.clone(),
            attempt: actx.attempt,
            session: id,
            source: source.into(),
            at: actx.ctx.now(),
        };
        actx.record(event).await.map(|_| ())
    }

    /// Looks for the session id in what the screen shows.
    pub(super) async fn look(
        &mut self,
        actx: &AttemptCtx,
        text: &str,
        source: &str,
    ) -> Result<(), StepError> {
        let Some(re) = &self.pattern else {
            return Ok(());
        };
        match agent_cli::session_in(re, text) {
            Some(id) => self.learned(actx, id, source).await,
            None => Ok(()),
        }
    }
}
