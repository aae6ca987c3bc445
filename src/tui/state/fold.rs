//! The run as seen on screen: a pure fold of recorded events and deltas into
//! panes, step rows (overview and timeline), prompts and totals. No UI state
//! lives here, so replay can rebuild it from any prefix of the events and
//! compare it with the live fold.

use crate::protocol::{
    AnswerSource, Attempt, ChoiceRecord, Delta, EscalationEnd, Event, FlowmindLevel, Millis,
    Notice, Recorded, RunStatus, StepKey, StepStatus, Usage, describe, reply_end_note,
};
use crate::text::{ms, one_line};

use super::pane::{LineKind, Pane};
use super::run_view::{
    Answered, Folded, Initiative, LlmRetry, Prompt, PromptKind, RunView, Segment, StepRow,
};
use super::swarm;

impl RunView {
    /// Folds one notice.
    pub fn apply(&mut self, notice: &Notice) -> Folded {
        match notice {
            Notice::Event(r) => self.apply_event(r, false),
            Notice::Pending(r) => self.apply_event(r, true),
            Notice::Delta(run, d) => {
                if self.run.as_ref().is_some_and(|cur| cur != run) {
                    return Folded::default();
                }
                self.apply_delta(d);
                Folded::default()
            }
            // Not a fact about the run: `State` shows it as a message.
            Notice::Refused(..) | Notice::Ended(..) => Folded::default(),
        }
    }

    /// Remembers a breaker's state; a closed one is no longer shown.
    fn set_provider_breaker(&mut self, name: String, state: &str) {
        if state == "closed" {
            self.provider_breakers.remove(&name);
        } else {
            self.provider_breakers.insert(name, state.to_string());
        }
    }

    /// A note about `step`: on its pane, else among the run's notes.
    /// FlowMind's escalation about a step is settled by what the user did
    /// (dismissed it, messaged, paused or cancelled the agent) or by the
    /// step's end.
    fn settle_escalation(&mut self, event: &Event, at: Millis) {
        let Some((step, end)) = EscalationEnd::of(event) else {
            return;
        };
        let source = match end {
            EscalationEnd::StepEnded => AnswerSource::Default,
            _ => AnswerSource::User,
        };
        for p in &mut self.prompts {
            if p.is_pending() && p.kind == PromptKind::Escalation && p.step.as_ref() == Some(step) {
                p.answered = Some(Answered {
                    text: end.as_str().to_string(),
                    source,
                    at,
                });
            }
        }
    }

    /// Something lev did on its own initiative, for the sidebar.
    fn initiated(&mut self, at: Millis, text: String) {
        self.initiative.push(Initiative {
            at,
            text,
            awaiting: None,
            reply: None,
            about: None,
        });
    }

    /// An agent's final reply: the answer to the question lev last put to
    /// it, when one waits.
    fn replied(&mut self, step: &StepKey, text: &str) {
        if let Some(asked) = self
            .initiative
            .iter_mut()
            .rev()
            .find(|i| i.awaiting.as_ref() == Some(step))
        {
            asked.awaiting = None;
            asked.reply = Some(one_line(text, 300));
        }
    }

    fn step_note(&mut self, step: &StepKey, text: String) {
        match self.pane_index(step) {
            Some(i) => self.panes[i].note(text, LineKind::Note),
            None => self.notes.push(format!("{step}: {text}")),
        }
    }

    /// The pane showing `step`: its own, or its swarm slot's.
    pub fn pane_index(&self, step: &StepKey) -> Option<usize> {
        if let Some(a) = self.assignments.get(step)
            && let Some(i) = self.slot_pane(a.slot)
        {
            return Some(i);
        }
        self.panes.iter().position(|p| &p.step == step)
    }

    /// Total usage: the run's final figure, or the sum over panes.
    pub fn usage(&self) -> Usage {
        if let Some(u) = self.final_usage {
            return u;
        }
        let mut total = self.judge_usage;
        total.add(&self.flowmind_usage);
        for p in &self.panes {
            total.add(&p.usage);
        }
        total
    }

    pub fn pending(&self) -> impl Iterator<Item = (usize, &Prompt)> {
        self.prompts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_pending())
    }

    /// True when a pending prompt belongs to `step`.
    pub fn needs_input(&self, step: &StepKey) -> bool {
        self.prompts
            .iter()
            .any(|p| p.is_pending() && p.step.as_ref() == Some(step))
    }

    /// The run can still change (not finished).
    pub fn active(&self) -> bool {
        matches!(
            self.status,
            Some(RunStatus::Running) | Some(RunStatus::Paused)
        )
    }

    fn apply_delta(&mut self, d: &Delta) {
        match d {
            Delta::Token { step, text } => self.pane_mut(step).push_tokens(text),
            Delta::ShellOutput { step, stderr, text } => {
                self.pane_mut(step).push_shell(text, *stderr)
            }
            Delta::PtyOutput { step, bytes } => self.pane_mut(step).push_terminal(bytes),
            Delta::PtyState { step, state } => self.pane_mut(step).terminal_state = Some(*state),
        }
    }

    /// The pane of `step`, created when output arrives before its start event.
    pub(super) fn pane_mut(&mut self, step: &StepKey) -> &mut Pane {
        let idx = match self.pane_index(step) {
            Some(i) => i,
            None => {
                let at = self.last_at;
                self.place_pane(
                    Pane::new(step.clone(), "agent".into(), None, Attempt(1), at)
                        .with_max_lines(self.scrollback),
                )
            }
        };
        &mut self.panes[idx]
    }

    /// Adds a step's pane where its step is declared, whatever order the
    /// steps start in, so a workflow's panes are numbered the same every
    /// run: steps of the outline in its order, then steps it does not list
    /// (a child workflow's, follow-ups) as they come, then swarm slots.
    /// Returns the pane's index.
    pub(super) fn place_pane(&mut self, pane: Pane) -> usize {
        let rank = self.outline_rank(&pane.step);
        // Step panes are kept in rank order, ahead of the slot panes.
        let at = self
            .panes
            .partition_point(|p| p.slot.is_none() && self.outline_rank(&p.step) <= rank);
        self.panes.insert(at, pane);
        at
    }

    /// Where `step` (or the step of the outline it belongs to: `parent` of
    /// `parent/child`) is declared; after every declared step when it is not.
    fn outline_rank(&self, step: &StepKey) -> usize {
        if let Some(i) = self.step_rows.get(step) {
            return *i;
        }
        match step.as_str().split_once('/') {
            Some((root, _)) => self
                .step_rows
                .get(&StepKey::new(root))
                .copied()
                .unwrap_or(usize::MAX),
            None => usize::MAX,
        }
    }

    /// Adds a row for `row.key`, which has none yet; returns its index.
    pub(super) fn add_step_row(&mut self, row: StepRow) -> usize {
        let i = self.steps.len();
        self.step_rows.insert(row.key.clone(), i);
        self.steps.push(row);
        i
    }

    pub(super) fn step_row(&mut self, step: &StepKey) -> &mut StepRow {
        let idx = match self.step_rows.get(step).copied() {
            Some(i) => {
                let row = &mut self.steps[i];
                if row.segments.is_empty() && row.status == StepStatus::Pending {
                    // Listed by the outline; this is the first event about it.
                    row.first_index = self.events.saturating_sub(1);
                }
                i
            }
            None => self.add_step_row(StepRow {
                key: step.clone(),
                status: StepStatus::Pending,
                segments: Vec::new(),
                first_index: self.events.saturating_sub(1),
                needs: Vec::new(),
            }),
        };
        &mut self.steps[idx]
    }

    pub(super) fn set_status(&mut self, step: &StepKey, status: StepStatus, at: Millis) {
        self.llm_retries.remove(step);
        // A slot pane that moved on to another task keeps that task's status.
        if let Some(i) = self.pane_index(step)
            && &self.panes[i].step == step
        {
            let p = &mut self.panes[i];
            p.status = status;
            if status.is_terminal() || status == StepStatus::Retrying {
                p.finished_at = Some(at);
                // The engine drops an agent's own pause when its attempt ends.
                p.paused = false;
            }
        }
        let row = self.step_row(step);
        row.status = status;
        if let Some(seg) = row.segments.last_mut()
            && seg.end.is_none()
            && status != StepStatus::Waiting
            && status != StepStatus::Running
        {
            seg.end = Some(at);
            seg.status = status;
        }
    }

    fn apply_event(&mut self, r: &Recorded, pending: bool) -> Folded {
        match &self.run {
            Some(cur) if cur != &r.run => return Folded::default(),
            None => self.run = Some(r.run.clone()),
            _ => {}
        }
        if !pending {
            self.events += 1;
        }
        let at = r.event.at();
        if at > self.last_at {
            self.last_at = at;
        }
        let mut out = Folded::default();
        self.settle_escalation(&r.event, at);
        match &r.event {
            Event::RunStarted {
                workflow_id,
                name,
                source,
                steps,
                flowmind,
                ..
            } => {
                self.flowmind_mode = flowmind.as_ref().and_then(|f| f.mode.clone());
                self.workflow_id = workflow_id.clone();
                self.name = name.clone();
                self.source = source.clone();
                self.status = Some(RunStatus::Running);
                self.started_at = Some(at);
                self.apply_outline(steps);
            }
            Event::RunResumed { .. } => {
                self.status = Some(RunStatus::Running);
                // Live pauses do not survive a restart (see workflow::steer).
                self.clear_pauses();
                self.notes.push("run resumed".into());
            }
            Event::QuestionAsked {
                id,
                step,
                header,
                ask,
                options,
                default,
                timeout_ms,
                ..
            } => {
                let exists = self.prompts.iter().any(|p| {
                    p.is_pending()
                        && matches!(&p.kind, PromptKind::Question { id: q, .. } if q == id)
                });
                if !exists {
                    self.prompts.push(Prompt {
                        kind: PromptKind::Question {
                            id: id.clone(),
                            header: header.as_deref().map(safe),
                            options: recommended_first(options, default.as_deref()),
                            default: default.clone(),
                        },
                        step: step.clone(),
                        text: safe(ask),
                        asked_at: at,
                        deadline: timeout_ms.map(|t| Millis(at.0.saturating_add(t))),
                        answered: None,
                        review: swarm::plan_review(id, ask),
                        proposal: None,
                    });
                    // A finished step may still ask (a swarm's plan review):
                    // it needs input, but it does not run again.
                    if let Some(s) = step
                        && !self.settled(s)
                    {
                        self.set_status(s, StepStatus::Waiting, at);
                    }
                    // Its pane says what it waits for and how to answer.
                    let title = header.as_deref().unwrap_or(ask.as_str());
                    self.pane_note(step.as_ref(), format!("? {}", safe(title)));
                    if header.is_some() {
                        self.pane_note(step.as_ref(), format!("  {}", safe(ask)));
                    }
                    for o in recommended_first(options, default.as_deref()) {
                        let text = if o.label.is_empty() || o.label == o.value {
                            o.value.clone()
                        } else {
                            format!("{} — {}", o.value, o.label)
                        };
                        let dflt = if Some(&o.value) == default.as_ref() {
                            " (default)"
                        } else {
                            ""
                        };
                        self.pane_note(step.as_ref(), format!("  · {}{dflt}", safe(&text)));
                    }
                    self.pane_note(
                        step.as_ref(),
                        "  waits for your answer: Enter here, or in the sidebar".into(),
                    );
                    out.attention = Some(format!("question: {}", one_line(ask, 80)));
                }
            }
            Event::AnswerProposed {
                id,
                answer,
                confidence,
                category,
                reason,
                auto,
                grace_ms,
                usage,
                ..
            } => {
                self.flowmind_usage.add(usage);
                let line = describe::answer_proposed(
                    id,
                    answer.as_deref(),
                    *confidence,
                    category,
                    reason,
                    *auto,
                    *grace_ms,
                );
                self.initiated(at, line);
                let found = self.prompts.iter_mut().find(|p| {
                    p.is_pending()
                        && matches!(&p.kind, PromptKind::Question { id: q, .. } if q == id)
                });
                if let (Some(p), Some(answer)) = (found, answer) {
                    let deadline = auto.then(|| Millis(at.0 + grace_ms));
                    p.proposal = Some((safe(answer), deadline));
                }
            }
            Event::QuestionAnswered {
                id, answer, source, ..
            } => {
                let found = self.prompts.iter_mut().find(|p| {
                    p.is_pending()
                        && matches!(&p.kind, PromptKind::Question { id: q, .. } if q == id)
                });
                if let Some(p) = found {
                    p.answered = Some(Answered {
                        text: safe(answer),
                        source: *source,
                        at,
                    });
                    if let Some(s) = p.step.clone() {
                        self.resume_step(&s, at);
                        self.pane_note(Some(&s), format!("✓ answered: {}", one_line(answer, 80)));
                    }
                }
            }
            Event::ApprovalRequested {
                step,
                message,
                timeout_ms,
                ..
            } => {
                let exists = self.prompts.iter().any(|p| {
                    p.is_pending()
                        && p.kind == PromptKind::Approval
                        && p.step.as_ref() == Some(step)
                });
                if !exists {
                    self.prompts.push(Prompt {
                        kind: PromptKind::Approval,
                        step: Some(step.clone()),
                        text: safe(message),
                        asked_at: at,
                        deadline: timeout_ms.map(|t| Millis(at.0.saturating_add(t))),
                        answered: None,
                        review: None,
                        proposal: None,
                    });
                    self.set_status(step, StepStatus::Waiting, at);
                    self.pane_note(Some(step), format!("⚠ {}", safe(message)));
                    self.pane_note(
                        Some(step),
                        "  waits for your approval: a approves, d denies (here or in the sidebar)"
                            .into(),
                    );
                    out.attention = Some(format!("approve {step}? {}", one_line(message, 80)));
                }
            }
            Event::ApprovalDecided {
                step,
                approved,
                comment,
                source,
                ..
            } => {
                let found = self.prompts.iter_mut().find(|p| {
                    p.is_pending()
                        && p.kind == PromptKind::Approval
                        && p.step.as_ref() == Some(step)
                });
                if let Some(p) = found {
                    let verdict = if *approved { "approved" } else { "denied" };
                    let text = if comment.is_empty() {
                        verdict.to_string()
                    } else {
                        format!("{verdict}: {}", safe(comment))
                    };
                    let note = format!("✓ {text}");
                    p.answered = Some(Answered {
                        text,
                        source: *source,
                        at,
                    });
                    self.pane_note(Some(step), note);
                }
                self.resume_step(step, at);
            }
            Event::StepStarted {
                step,
                attempt,
                kind,
                mode,
                hints,
                ..
            } => {
                self.apply_hints(step, hints, at);
                match self.pane_index(step) {
                    Some(i) => {
                        let p = &mut self.panes[i];
                        if p.take_task_start(step) {
                            // A slot's new task: its separator is already shown.
                            p.attempt = *attempt;
                            p.started_at = at;
                        } else if p.attempt != *attempt
                            || p.status.is_terminal()
                            || p.status == StepStatus::Retrying
                        {
                            p.restart(*attempt, at);
                        }
                        // A re-run of the same attempt (resume) is running again.
                        p.status = StepStatus::Running;
                        p.halted = false;
                        p.finished_at = None;
                        p.kind = kind.clone();
                        p.mode = mode.clone();
                    }
                    None => {
                        self.place_pane(
                            Pane::new(step.clone(), kind.clone(), mode.clone(), *attempt, at)
                                .with_max_lines(self.scrollback),
                        );
                    }
                }
                let row = self.step_row(step);
                row.status = StepStatus::Running;
                row.segments.push(Segment {
                    attempt: *attempt,
                    start: at,
                    end: None,
                    status: StepStatus::Running,
                });
            }
            Event::LlmReplied {
                step,
                text,
                tool_calls,
                usage,
                stop_reason,
                refusal,
                ..
            } => {
                self.llm_retries.remove(step);
                if tool_calls.is_empty() || !text.trim().is_empty() {
                    self.replied(step, text);
                }
                let p = self.pane_mut(step);
                p.replace_live(text);
                for c in tool_calls {
                    p.add_tool(&c.id, &c.name, &c.arguments);
                }
                p.add_usage(step, usage);
                if let Some(note) = reply_end_note(stop_reason.as_deref(), refusal.as_deref()) {
                    p.note(note, LineKind::Error);
                }
            }
            Event::LlmRetrying {
                step,
                failed,
                tries,
                error,
                delay_ms,
                ..
            } => {
                // A retry journaled as its step was stopped is no longer pending.
                if self.settled(step) {
                    return out;
                }
                let next = Millis(at.0.saturating_add(*delay_ms));
                let p = self.pane_mut(step);
                // What the failed request streamed is not the reply; the
                // retried one streams in its place.
                p.replace_live("");
                let text = describe::llm_retry(*failed, *tries, None, error, *delay_ms);
                p.note(format!("↻ {text}"), LineKind::Note);
                self.llm_retries.insert(
                    step.clone(),
                    LlmRetry {
                        at: next,
                        error: error.clone(),
                    },
                );
            }
            Event::ToolStarted {
                step,
                call_id,
                name,
                ..
            } => {
                let p = self.pane_mut(step);
                if p.tool_by_call(call_id).is_none() {
                    p.add_tool(call_id, name, "");
                }
            }
            Event::ToolFinished {
                step,
                call_id,
                name,
                arguments,
                output,
                is_error,
                ..
            } => {
                let p = self.pane_mut(step);
                let idx = match p.tool_by_call(call_id) {
                    Some(i) => i,
                    None => p.add_tool(call_id, name, arguments),
                };
                p.finish_tool(idx, arguments, output, *is_error);
            }
            Event::ProcessStarted { .. } => {}
            Event::PtyLaunched {
                step, rows, cols, ..
            } => {
                let text = describe::line(r, None);
                let pane = self.pane_mut(step);
                pane.note(text, LineKind::Note);
                pane.open_terminal(*rows, *cols);
            }
            Event::PtySession { step, .. } => {
                let text = describe::line(r, None);
                self.pane_mut(step).note(text, LineKind::Note);
            }
            Event::PtyFinished {
                step,
                exit_code,
                ended_by,
                transcript_tail,
                duration_ms,
                ..
            } => {
                let summary = describe::pty_summary(*exit_code, ended_by, *duration_ms);
                self.pane_mut(step)
                    .terminal_finished(transcript_tail, summary);
            }
            Event::StepDelegated { step, run, .. } => {
                self.delegated.insert(step.clone(), run.clone());
                let text = describe::line(r, None);
                self.pane_mut(step).note(text, LineKind::Note);
            }
            Event::EarlierCopyStopped { step, killed, .. } => {
                let text = crate::protocol::earlier_copy_stopped_text(*killed);
                self.pane_mut(step).note(text, LineKind::Note);
            }
            Event::ShellFinished {
                step,
                exit_code,
                timed_out,
                stdout_tail,
                stderr_tail,
                duration_ms,
                ..
            } => {
                let failed = *timed_out || exit_code.is_none_or(|c| c != 0);
                let code = describe::shell_end(*exit_code, *timed_out);
                let summary = format!("$ {code} in {}", ms(*duration_ms));
                self.pane_mut(step)
                    .shell_finished(stdout_tail, stderr_tail, summary, failed);
            }
            Event::StepSucceeded {
                step,
                usage,
                outputs,
                ..
            } => {
                self.settle_usage(step, usage);
                if self.delegated.contains_key(step) {
                    // Its output went to its step run's panes: its results
                    // are what this run has of it.
                    for (name, value) in outputs {
                        let value = describe::value_text(value);
                        self.step_note(step, format!("→ {name}: {value}"));
                    }
                }
                self.set_status(step, StepStatus::Succeeded, at);
            }
            Event::StepFailed {
                step,
                attempt,
                error,
                retry_in_ms,
                usage,
                ..
            } => {
                self.settle_usage(step, usage);
                let status = if retry_in_ms.is_some() {
                    StepStatus::Retrying
                } else {
                    StepStatus::Failed
                };
                let retry = retry_in_ms
                    .map(|d| format!("; retrying in {}", ms(d)))
                    .unwrap_or_default();
                if let Some(i) = self.pane_index(step) {
                    self.panes[i].note(
                        format!(
                            "✗ attempt {attempt} failed: {}{retry}",
                            one_line(error, 200)
                        ),
                        LineKind::Error,
                    );
                }
                self.set_status(step, status, at);
            }
            Event::StepSkipped { step, reason, .. } => {
                if let Some(i) = self.pane_index(step) {
                    self.panes[i].note(format!("skipped: {reason}"), LineKind::Note);
                }
                self.set_status(step, StepStatus::Skipped, at);
            }
            Event::StepCancelled { step, .. } => {
                self.set_status(step, StepStatus::Cancelled, at);
            }
            Event::GuardTripped {
                guard,
                limit,
                observed,
                step,
                ..
            } => {
                let text = describe::guard_tripped(guard, limit, observed, step.as_ref());
                self.initiated(at, text.clone());
                self.notes.push(text);
            }
            Event::PriceUnknown { model, step, .. } => {
                self.notes.push(describe::price_unknown(model, step));
            }
            Event::ContextAssembled {
                step,
                attempt,
                turn,
                counter,
                budget,
                total,
                parts,
                left_out,
                ..
            } => {
                if let Some(i) = self.pane_index(step) {
                    let view = super::pane::ContextView {
                        attempt: *attempt,
                        turn: *turn,
                        counter: counter.clone(),
                        budget: *budget,
                        total: *total,
                        parts: parts.clone(),
                        left_out: left_out.clone(),
                    };
                    let contexts = &mut self.panes[i].contexts;
                    // A resumed turn is journaled once; a replayed fold may see it again.
                    contexts.retain(|c| (c.attempt, c.turn) != (*attempt, *turn));
                    contexts.push(view);
                }
            }
            Event::FollowupSpawned {
                step,
                parent,
                depth,
                mode,
                title,
                by,
                ..
            } => {
                let text = describe::followup_spawned(step, *depth, mode, title, by);
                self.initiative.retain(|i| i.about.as_ref() != Some(step));
                self.initiated(at, format!("{parent}: {text}"));
                self.step_note(parent, text);
            }
            Event::FollowupRefused {
                step,
                parent,
                title,
                guard,
                limit,
                observed,
                ..
            } => {
                let text = describe::followup_refused(step, title, guard, limit, observed);
                self.initiative.retain(|i| i.about.as_ref() != Some(step));
                self.initiated(at, text.clone());
                self.step_note(parent, text.clone());
                self.notes.push(text);
            }
            Event::CallbacksStopped { by, reason, .. } => {
                let text = describe::callbacks_stopped(by, reason);
                self.initiated(at, text.clone());
                self.notes.push(text);
            }
            Event::FlowmindDecided {
                step,
                rule,
                observed,
                level,
                text,
                ..
            } => {
                let line = describe::flowmind_decided(step, rule, observed, *level, text);
                if *level == FlowmindLevel::Escalate {
                    // A whisper that waits for the user: act on the agent,
                    // or dismiss it.
                    self.prompts.push(Prompt {
                        kind: PromptKind::Escalation,
                        step: Some(step.clone()),
                        text: format!("{rule}: {}\n{}", one_line(observed, 300), safe(text)),
                        asked_at: at,
                        deadline: None,
                        answered: None,
                        review: None,
                        proposal: None,
                    });
                    out.attention = Some(format!("{step} looks stuck: {}", one_line(observed, 80)));
                }
                self.initiated(at, line.clone());
                if *level == FlowmindLevel::Ask
                    && let Some(asked) = self.initiative.last_mut()
                {
                    // Its next words answer it.
                    asked.awaiting = Some(step.clone());
                }
                self.step_note(step, line.clone());
                if *level != FlowmindLevel::Instruct {
                    self.notes.push(line);
                }
            }
            Event::FlowmindProposed {
                step,
                title,
                mode,
                why,
                ..
            } => {
                let line = describe::flowmind_proposed(step, title, mode, why);
                self.initiated(at, line.clone());
                self.step_note(step, line);
            }
            Event::FlowmindDismissed { step, .. } => {
                self.step_note(
                    step,
                    format!("FlowMind's escalation about {step} dismissed"),
                );
            }
            Event::FlowmindLedger {
                step,
                turn,
                ledger,
                usage,
                ..
            } => {
                self.flowmind_usage.add(usage);
                let line = describe::flowmind_ledger(step, *turn, ledger);
                let verdict = describe::ledger_verdict(ledger);
                if let Some(i) = self.pane_index(step) {
                    self.panes[i].ledger = Some(verdict.clone());
                }
                self.ledgers.insert(step.clone(), verdict);
                self.step_note(step, line);
            }
            Event::FlowmindFellBack { why, .. } => {
                let text = describe::flowmind_fell_back(why);
                self.flowmind_fallback = Some(why.clone());
                self.initiated(at, text.clone());
                self.notes.push(text);
            }
            Event::AgentAsked { step, question, .. } => {
                let text = describe::agent_asked(question);
                self.initiative.push(Initiative {
                    at,
                    text: format!("{step}: {text}"),
                    awaiting: Some(step.clone()),
                    reply: None,
                    about: None,
                });
                self.step_note(step, text);
            }
            Event::SemanticVerdict {
                step,
                condition,
                holds,
                confidence,
                reason,
                judge,
                usage,
                ..
            } => {
                self.judge_usage.add(usage);
                let text =
                    describe::semantic_verdict(condition, *holds, *confidence, reason, judge);
                self.initiative.push(Initiative {
                    at,
                    text: format!("{step}: {text}"),
                    awaiting: None,
                    reply: None,
                    about: Some(step.clone()),
                });
                self.step_note(step, text);
            }
            Event::InFlightResolved { step, decision, .. } => {
                self.notes.push(describe::in_flight(step, decision));
            }
            Event::AgentMessaged { .. }
            | Event::PauseRequested { .. }
            | Event::PauseLifted { .. }
            | Event::EmergencyStopped { .. } => self.apply_steering(&r.event, at),
            Event::StepRetryRequested { .. } | Event::RunForked { .. } => {
                self.apply_retry_fork(&r.event, at)
            }
            Event::Worktree { step, fact, .. } => {
                self.apply_worktree(r);
                let text = describe::worktree(fact);
                self.step_note(step, text);
            }
            Event::RunPaused { reason, .. } => {
                self.status = Some(RunStatus::Paused);
                self.clear_pauses();
                self.halt_running(at);
                let why = describe::pause(reason);
                out.attention = Some(format!("{} paused: {}", self.name, one_line(&why, 80)));
                self.notes.push(format!("paused: {why}"));
            }
            Event::PlanProposed { .. }
            | Event::PlanAccepted { .. }
            | Event::PlanRevised { .. }
            | Event::TaskAssigned { .. }
            | Event::SlotBreaker { .. } => self.apply_swarm(&r.event, at),
            Event::ProviderBreaker {
                endpoint,
                state,
                reason,
                step,
                ..
            } => {
                let text = describe::provider_breaker(endpoint, state, reason, step.as_ref());
                self.notes.push(text);
                self.set_provider_breaker(endpoint.clone(), state);
            }
            Event::McpServerStarted { server, .. } => {
                self.notes.push(describe::line(r, None));
                self.mcp_down.remove(server);
            }
            Event::McpServerDown { server, error, .. } => {
                self.notes.push(describe::line(r, None));
                self.mcp_down.insert(server.clone(), error.clone());
            }
            // The tools offered show as the agent calls them.
            Event::McpToolsListed { .. } => {}
            Event::RunCancelRequested { .. } => {
                self.notes.push("cancel requested".into());
            }
            Event::RunFinished {
                status,
                error,
                usage,
                ..
            } => {
                self.status = Some(*status);
                self.clear_pauses();
                self.halt_running(at);
                self.llm_retries.clear();
                self.finished_at = Some(at);
                if usage.total_tokens() > 0 || usage.cost_usd > 0.0 {
                    self.final_usage = Some(*usage);
                }
                out.attention = Some(format!("{} {}", self.name, status.as_str()));
                // The newest note is the status line's: after the end it
                // says the end, not an earlier "run resumed".
                match error {
                    Some(e) => {
                        self.notes
                            .push(format!("run {}: {}", status.as_str(), one_line(e, 200)))
                    }
                    None => self.notes.push(format!("run {}", status.as_str())),
                }
            }
        }
        out
    }

    /// A note in `step`'s pane, when it has one (a prompt's own step).
    fn pane_note(&mut self, step: Option<&StepKey>, text: String) {
        if let Some(i) = step.and_then(|s| self.pane_index(s)) {
            self.panes[i].note(text, LineKind::Note);
        }
    }

    /// The step has ended (its row's status is terminal).
    fn settled(&self, step: &StepKey) -> bool {
        self.steps
            .iter()
            .any(|s| &s.key == step && s.status.is_terminal())
    }

    /// A step that waited for the user runs again once nothing else waits.
    fn resume_step(&mut self, step: &StepKey, at: Millis) {
        if self.needs_input(step) {
            return;
        }
        let running = self
            .pane_index(step)
            .map(|i| self.panes[i].status == StepStatus::Waiting)
            .unwrap_or(false)
            || self
                .steps
                .iter()
                .any(|s| &s.key == step && s.status == StepStatus::Waiting);
        if running {
            self.set_status(step, StepStatus::Running, at);
        }
    }

    /// A step's reported usage wins over the sum of its replies when larger
    /// (the engine may count tokens the replies did not report).
    fn settle_usage(&mut self, step: &StepKey, usage: &Usage) {
        if let Some(i) = self.pane_index(step) {
            self.panes[i].settle_usage(step, usage);
        }
    }
}

/// The recommended option first: the default, else one labelled "Recommended".
fn recommended_first(options: &[ChoiceRecord], default: Option<&str>) -> Vec<ChoiceRecord> {
    let rec = options
        .iter()
        .position(|o| Some(o.value.as_str()) == default)
        .or_else(|| {
            options
                .iter()
                .position(|o| o.label.to_lowercase().contains("recommended"))
        });
    let mut out: Vec<ChoiceRecord> = options
        .iter()
        .map(|o| ChoiceRecord {
            // The value is what an answer sends back; only the label is shown.
            value: o.value.clone(),
            label: safe(&o.label),
        })
        .collect();
    if let Some(i) = rec {
        let o = out.remove(i);
        out.insert(0, o);
    }
    out
}

/// Text from a workflow, a model or a command, terminal-safe for the sidebar.
fn safe(text: &str) -> String {
    crate::text::sanitize(text).into_owned()
}
