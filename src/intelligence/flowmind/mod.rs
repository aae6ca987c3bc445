//! FlowMind, the controller: a participant that folds the events of every
//! run the engine executes and, when an agent looks stuck (`rules`),
//! submits its decision as `Op::Flowmind` — instruct the agent first, then
//! hand it to the user. The engine journals each decision before it acts,
//! and a run the controller first meets (a resumed one) is folded from its
//! journal before anything new, so no decision is made twice.
//!
//! With `flowmind: { mode: model }` its model also keeps a progress ledger
//! per agent (`ledger`: every `cadence` working turns, and on the clock
//! when one turn runs long), asked beside the agent, never in its way; each
//! ledger is journaled (`Op::FlowmindLedger`) and the rules act on it from
//! there, so a replay shows the same ledgers and decisions without a
//! model. Past its budget, or after three failures in a row, the model
//! stops for the run (`Op::FlowmindFellBack`) and the rules go on alone.
//! `mode: fallback` (the default) runs the rules only; `mode: off` nothing.

pub mod conductor;
pub mod ledger;
mod model;
pub mod rules;
pub mod whispers;

use std::collections::HashMap;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::engine::{Engine, Query, Reply};
use crate::protocol::{Delta, Event, Millis, Notice, Op, RunId, Seq};
use ledger::{Answer, Due, LedgerModel, Ledgers};
use rules::{Rules, Thresholds};

/// Model failures in a row that stop it for the run.
const FAILURES_TO_STOP: u32 = 3;

/// The controller while it runs; dropping it stops it.
pub struct Controller {
    task: JoinHandle<()>,
    /// The runs whose end it has taken in (the latest `ENDS_KEPT`).
    ended: tokio::sync::watch::Receiver<std::collections::VecDeque<RunId>>,
}

/// Ends of runs a controller remembers for `settled`.
const ENDS_KEPT: usize = 256;

impl Controller {
    /// Waits, at most `patience`, until the controller has taken in the
    /// end of `run`: what it does with the run's last facts (a whisper's
    /// outcome counted in the journal) is done. A process that exits when
    /// its run ends waits for this first, or loses that.
    pub async fn settled(&self, run: &RunId, patience: std::time::Duration) {
        let mut ended = self.ended.clone();
        let taken_in = ended.wait_for(|ended| ended.contains(run));
        if tokio::time::timeout(patience, taken_in).await.is_err() {
            tracing::warn!(%run, "FlowMind had not taken in the run's end when lev stopped");
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How the controller runs by the config: its mode, its rules'
/// thresholds, its model when one can be built (a workflow may turn it on),
/// and its conductor's settings.
#[derive(Clone)]
pub struct Settings {
    pub mode: crate::config::FlowmindMode,
    pub thresholds: Thresholds,
    pub model: Option<LedgerModel>,
    pub conductor: crate::config::ConductorSettings,
}

/// What FlowMind does in one run: the config's settings with the
/// workflow's `flowmind:` over them.
#[derive(Clone)]
struct RunSettings {
    /// `mode: off`: the run is not watched.
    off: bool,
    thresholds: Thresholds,
    /// With `mode: model` and a model that can be used.
    model: Option<LedgerModel>,
    conductor: Option<crate::config::ConductorSettings>,
}

impl Settings {
    fn for_run(&self, o: Option<&crate::protocol::FlowmindOverride>) -> RunSettings {
        use crate::config::FlowmindMode;
        let o = o.cloned().unwrap_or_default();
        let mode = match o.mode.as_deref() {
            Some("off") => FlowmindMode::Off,
            Some("fallback") => FlowmindMode::Fallback,
            Some("model") => FlowmindMode::Model,
            _ => self.mode,
        };
        let t = self.thresholds;
        let thresholds = Thresholds {
            repeats: o.repeats.unwrap_or(t.repeats),
            instructions: o.instructions.unwrap_or(t.instructions),
            stalls: o.stalls.unwrap_or(t.stalls),
            silence_ms: o.silence_ms.unwrap_or(t.silence_ms),
        };
        let model = self
            .model
            .clone()
            .filter(|_| mode == FlowmindMode::Model)
            .map(|m| LedgerModel {
                cadence: o.cadence.unwrap_or(m.cadence),
                budget: o.budget.unwrap_or(m.budget),
                ..m
            });
        let mut c = self.conductor.clone();
        c.confidence = o.confidence.unwrap_or(c.confidence);
        c.categories = o.categories.clone().unwrap_or(c.categories);
        c.grace_ms = o.grace_ms.unwrap_or(c.grace_ms);
        RunSettings {
            off: mode == FlowmindMode::Off,
            thresholds,
            conductor: (model.is_some() && c.enabled).then_some(c),
            model,
        }
    }
}

/// Starts the controller on `engine`'s runs (from now on).
pub fn start(engine: Engine, settings: Settings) -> Controller {
    let notices = engine.subscribe();
    let (ended_tx, ended) = tokio::sync::watch::channel(Default::default());
    Controller {
        task: tokio::spawn(watch(engine, notices, settings, ended_tx)),
        ended,
    }
}

/// One run as the controller knows it.
struct Watched {
    settings: RunSettings,
    rules: Rules,
    ledgers: Ledgers,
    /// What the user does with what FlowMind raised.
    feedback: whispers::Feedback,
    /// Events up to here were folded from the journal.
    folded_to: Seq,
    /// Tokens held for ledger requests under way.
    reserved: u64,
    /// Model failures in a row.
    failures: u32,
}

/// A conductor request that came back.
struct Conducted {
    run: RunId,
    id: String,
    options: Vec<String>,
    reserved: u64,
    answer: model::Answer<conductor::Proposal>,
}

/// A ledger request that came back.
struct Asked {
    run: RunId,
    due: Due,
    reserved: u64,
    answer: Answer,
}

async fn watch(
    engine: Engine,
    mut notices: mpsc::UnboundedReceiver<Notice>,
    settings: Settings,
    ended: tokio::sync::watch::Sender<std::collections::VecDeque<RunId>>,
) {
    let mut runs: HashMap<RunId, Watched> = HashMap::new();
    // The whisper scores across runs, as the journal held them at start.
    let mut scores = match engine.query(Query::WhisperScores).await {
        Ok(Reply::WhisperScores(s)) => whispers::Scores::new(s),
        _ => whispers::Scores::default(),
    };
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<Asked>();
    let (conducted_tx, mut conducted) = mpsc::unbounded_channel::<Conducted>();
    // Silence is noticed on a clock, not on an event.
    let mut tick = tokio::time::interval(SILENCE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let notice = tokio::select! {
            n = notices.recv() => match n {
                Some(n) => n,
                None => return,
            },
            Some(asked) = answers.recv() => {
                answered(&engine, &mut runs, asked).await;
                continue;
            }
            Some(c) = conducted.recv() => {
                if let Some(watched) = runs.get_mut(&c.run)
                    && let Some(settings) = watched.settings.conductor.clone()
                {
                    proposed(&engine, watched, &settings, c).await;
                }
                continue;
            }
            _ = tick.tick() => {
                let now = Millis::now();
                for (run, watched) in &mut runs {
                    for decision in watched.rules.silent(now) {
                        raise_or_hold(&engine, run, watched, &mut scores, decision).await;
                    }
                    // A long turn gets its ledger on the clock.
                    if let Some(model) = watched.settings.model.clone() {
                        for due in watched.ledgers.overdue(now.0) {
                            ask_for(&engine, watched, &model, run, due, &answers_tx).await;
                        }
                    }
                }
                continue;
            }
        };
        let r = match notice {
            // A run another process executes (one the workbench follows on
            // a shared journal) is that process's FlowMind's to watch.
            Notice::Event(r) if engine.is_watched(&r.run) => continue,
            Notice::Event(r) => r,
            // An agent's question still open after a resume, that FlowMind
            // said nothing of before the crash.
            Notice::Pending(r) => {
                if let Some(watched) = runs.get_mut(&r.run)
                    && let Some(model) = watched.settings.model.clone()
                {
                    conduct_asked(&engine, watched, &model, &r, &conducted_tx).await;
                }
                continue;
            }
            Notice::Ended(run) => {
                runs.remove(&run);
                // Every notice of the run came before this one.
                ended.send_modify(|ends| {
                    if ends.len() == ENDS_KEPT {
                        ends.pop_front();
                    }
                    ends.push_back(run);
                });
                continue;
            }
            Notice::Delta(run, Delta::Token { step, .. } | Delta::ShellOutput { step, .. }) => {
                if let Some(watched) = runs.get_mut(&run) {
                    watched.rules.touched(&step, Millis::now());
                    watched.ledgers.touched(&step);
                }
                continue;
            }
            _ => continue,
        };
        if !runs.contains_key(&r.run) {
            let watched = first_sight(&engine, &r.run, &settings).await;
            runs.insert(r.run.clone(), watched);
        }
        let Some(watched) = runs.get_mut(&r.run) else {
            continue;
        };
        if r.seq <= watched.folded_to || watched.settings.off {
            continue;
        }
        if let Some((step, f)) = watched.ledgers.followup(&r.event) {
            // Decided with the agent's own proposals when it succeeds.
            let op = Op::FlowmindPropose {
                run: r.run.clone(),
                step,
                title: f.title,
                mode: f.mode,
                why: f.why,
            };
            if let Err(e) = engine.submit(op).await {
                tracing::warn!(run = %r.run, error = %e, "FlowMind's follow-up was not proposed");
            }
        }
        if let Some(model) = watched.settings.model.clone() {
            let due = watched.ledgers.fold(&r.event, model.cadence);
            if let Some(due) = due {
                ask_for(&engine, watched, &model, &r.run, due, &answers_tx).await;
            }
            conduct_asked(&engine, watched, &model, &r, &conducted_tx).await;
        }
        if let Some((category, outcome)) = watched.feedback.fold(&r.event) {
            scores.add(&category, outcome);
            let op = Op::WhisperFeedback { category, outcome };
            if let Err(e) = engine.submit(op).await {
                tracing::warn!(run = %r.run, error = %e, "a whisper's outcome was not counted");
            }
        }
        let Some(decision) = watched.rules.fold(&r.event) else {
            continue;
        };
        watched.rules.submitted(&decision.step);
        raise_or_hold(&engine, &r.run, watched, &mut scores, decision).await;
    }
}

/// Hands a decision to the engine, unless it hands a stuck agent to the
/// user in a category the user mostly dismisses and this one is held back
/// (`whispers`). Instructions to agents are never held back.
async fn raise_or_hold(
    engine: &Engine,
    run: &RunId,
    watched: &mut Watched,
    scores: &mut whispers::Scores,
    decision: rules::Decision,
) {
    if decision.level == crate::protocol::FlowmindLevel::Escalate
        && !scores.should_raise(&whispers::stuck(decision.rule))
    {
        tracing::info!(%run, step = %decision.step, rule = decision.rule, "FlowMind held back a whisper you mostly dismiss");
        watched.rules.withheld(&decision);
        return;
    }
    submit(engine, run, decision).await;
}

/// How often silence is looked for.
const SILENCE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Hands a decision to the engine, which journals it before it acts.
async fn submit(engine: &Engine, run: &RunId, decision: rules::Decision) {
    let op = Op::Flowmind {
        run: run.clone(),
        step: decision.step.clone(),
        rule: decision.rule.to_string(),
        observed: decision.observed,
        level: decision.level,
        text: decision.text,
    };
    if let Err(e) = engine.submit(op).await {
        tracing::warn!(%run, step = %decision.step, error = %e, "FlowMind's decision was not taken");
    }
}

/// Starts asking for a due ledger, when the budget has room for it
/// (counting the requests under way); otherwise the model stops for the run.
async fn ask_for(
    engine: &Engine,
    watched: &mut Watched,
    model: &LedgerModel,
    run: &RunId,
    due: Due,
    answers: &mpsc::UnboundedSender<Asked>,
) {
    let task = agent_task(engine, run, &due.step).await;
    let question = ledger::question(task.as_deref(), &due);
    let left = model
        .budget
        .saturating_sub(watched.ledgers.spent + watched.reserved);
    // Room for the question asked twice (a reply that is not a ledger is
    // asked again, with that reply), each at its most.
    let need = model::reserve(ledger::SYSTEM, &question);
    if need > left {
        fall_back(
            engine,
            watched,
            run,
            format!(
                "its budget of {} tokens is spent ({} used)",
                model.budget, watched.ledgers.spent
            ),
        )
        .await;
        return;
    }
    watched.reserved += need;
    let model = model.clone();
    let (run, answers) = (run.clone(), answers.clone());
    tokio::spawn(async move {
        let answer = ledger::ask(&model, run.as_str(), &due, question, need).await;
        let _ = answers.send(Asked {
            run,
            due,
            reserved: need,
            answer,
        });
    });
}

/// A ledger request came back: journal the ledger (its tokens count even
/// when the agent moved on), or count the failure.
async fn answered(engine: &Engine, runs: &mut HashMap<RunId, Watched>, asked: Asked) {
    let Some(watched) = runs.get_mut(&asked.run) else {
        return;
    };
    watched.reserved = watched.reserved.saturating_sub(asked.reserved);
    let Asked {
        run, due, answer, ..
    } = asked;
    match answer {
        Ok((ledger, usage, model)) => {
            watched.failures = 0;
            // Counted now, not when its event is back: the next request's
            // room is measured against it.
            watched.ledgers.spent += usage.total_tokens();
            let op = Op::FlowmindLedger {
                run: run.clone(),
                step: due.step.clone(),
                attempt: due.attempt,
                turn: due.turn,
                ledger,
                model,
                usage,
            };
            if let Err(e) = engine.submit(op).await {
                tracing::warn!(%run, step = %due.step, error = %e, "FlowMind's ledger was not journaled");
            }
        }
        Err((why, usage)) => {
            watched.ledgers.spent += usage.total_tokens();
            watched.failures += 1;
            tracing::warn!(%run, step = %due.step, "FlowMind's ledger: {why}");
            if watched.failures >= FAILURES_TO_STOP {
                let why = format!("{why}; {FAILURES_TO_STOP} failures in a row");
                fall_back(engine, watched, &run, why).await;
            }
        }
    }
}

/// An agent's question FlowMind said nothing of yet goes to the conductor.
async fn conduct_asked(
    engine: &Engine,
    watched: &mut Watched,
    model: &LedgerModel,
    r: &crate::protocol::Recorded,
    results: &mpsc::UnboundedSender<Conducted>,
) {
    let Event::QuestionAsked {
        id,
        step: Some(step),
        ask,
        options,
        from_agent: true,
        ..
    } = &r.event
    else {
        return;
    };
    if watched.settings.conductor.is_none() || watched.ledgers.proposed.contains(id) {
        return;
    }
    let question = Question {
        id: id.clone(),
        step: step.clone(),
        ask: ask.clone(),
        options: options.iter().map(|o| o.value.clone()).collect(),
    };
    conduct(engine, watched, model, &r.run, question, results).await;
}

/// An agent's question, as the conductor looks at it.
struct Question {
    id: String,
    step: crate::protocol::StepKey,
    ask: String,
    options: Vec<String>,
}

/// Asks the model for the answer to an agent's question, when the budget
/// has room; otherwise says at once that FlowMind has none (the headless
/// printer waits for FlowMind's word before its own policy answers).
async fn conduct(
    engine: &Engine,
    watched: &mut Watched,
    model: &LedgerModel,
    run: &RunId,
    q: Question,
    results: &mpsc::UnboundedSender<Conducted>,
) {
    watched.ledgers.proposed.insert(q.id.clone());
    let task = agent_task(engine, run, &q.step).await;
    let recent = watched.ledgers.recent(&q.step);
    let question = conductor::question(task.as_deref(), &recent, &q.ask, &q.options);
    let need = model::reserve(conductor::SYSTEM, &question);
    let left = model
        .budget
        .saturating_sub(watched.ledgers.spent + watched.reserved);
    if watched.ledgers.fell_back || need > left {
        let why = if watched.ledgers.fell_back {
            "its model is stopped for this run".to_string()
        } else {
            format!("its budget of {} tokens has no room left", model.budget)
        };
        propose(engine, run, &q.id, Err((why, Default::default())), false, 0).await;
        return;
    }
    watched.reserved += need;
    let (model, run, results) = (model.clone(), run.clone(), results.clone());
    tokio::spawn(async move {
        let asking = model::Asking {
            run: run.as_str(),
            step: q.step.as_str(),
            mode: conductor::CONDUCTOR_MODE,
            system: conductor::SYSTEM,
            correction: conductor::CORRECTION,
            what: "answer",
        };
        let answer = model::ask_json(&model, &asking, question, need, conductor::parse).await;
        let _ = results.send(Conducted {
            run,
            id: q.id,
            options: q.options,
            reserved: need,
            answer,
        });
    });
}

/// The conductor's answer came back: proposed to the engine, to stand on
/// its own (after the grace period) when the settings allow it.
async fn proposed(
    engine: &Engine,
    watched: &mut Watched,
    settings: &crate::config::ConductorSettings,
    c: Conducted,
) {
    watched.reserved = watched.reserved.saturating_sub(c.reserved);
    let auto = match &c.answer {
        Ok((p, usage, _)) => {
            watched.failures = 0;
            watched.ledgers.spent += usage.total_tokens();
            conductor::answers_alone(settings, p, &c.options)
        }
        Err((_, usage)) => {
            watched.failures += 1;
            watched.ledgers.spent += usage.total_tokens();
            false
        }
    };
    propose(engine, &c.run, &c.id, c.answer, auto, settings.grace_ms).await;
}

async fn propose(
    engine: &Engine,
    run: &RunId,
    id: &str,
    answer: model::Answer<conductor::Proposal>,
    auto: bool,
    grace_ms: u64,
) {
    let op = match answer {
        Ok((p, usage, model)) => Op::ProposeAnswer {
            run: run.clone(),
            question: id.to_string(),
            answer: Some(p.answer),
            confidence: p.confidence,
            category: p.category,
            reason: p.reason,
            auto,
            grace_ms,
            model,
            usage,
        },
        Err((why, usage)) => Op::ProposeAnswer {
            run: run.clone(),
            question: id.to_string(),
            answer: None,
            confidence: 0.0,
            category: "other".into(),
            reason: why,
            auto: false,
            grace_ms: 0,
            model: String::new(),
            usage,
        },
    };
    if let Err(e) = engine.submit(op).await {
        tracing::warn!(%run, question = id, error = %e, "FlowMind's answer was not journaled");
    }
}

/// The model stops for `run`; journaled so the workbench and a resumed
/// controller know.
async fn fall_back(engine: &Engine, watched: &mut Watched, run: &RunId, why: String) {
    if watched.ledgers.fell_back {
        return;
    }
    watched.ledgers.fell_back = true;
    let op = Op::FlowmindFellBack {
        run: run.clone(),
        why,
    };
    if let Err(e) = engine.submit(op).await {
        tracing::warn!(%run, error = %e, "FlowMind's fallback was not journaled");
    }
}

/// The agent's task as its first request carried it (the `prompt` part).
async fn agent_task(
    engine: &Engine,
    run: &RunId,
    step: &crate::protocol::StepKey,
) -> Option<String> {
    let query = Query::Context {
        run: run.clone(),
        step: step.clone(),
        turn: Some(1),
    };
    match engine.query(query).await {
        Ok(Reply::Context(shown)) => shown
            .parts
            .into_iter()
            .find(|p| p.part.kind == "prompt")
            .and_then(|p| p.text),
        _ => None,
    }
}

/// A run met for the first time: its journal so far, folded without
/// deciding (what was decided then is in it), under the settings its start
/// names (the workflow's `flowmind:` over the config's). Each entry is
/// folded as it is read and dropped: a long run's history is never held in
/// memory here.
async fn first_sight(engine: &Engine, run: &RunId, settings: &Settings) -> Watched {
    let fresh = |settings: RunSettings| Watched {
        rules: Rules::new(settings.thresholds),
        settings,
        ledgers: Ledgers::default(),
        feedback: whispers::Feedback::default(),
        folded_to: Seq(0),
        reserved: 0,
        failures: 0,
    };
    let all = settings.clone();
    let folded = engine
        .fold_events(run, Seq(u64::MAX), None::<Watched>, move |w, r| {
            let w = w.get_or_insert_with(|| {
                let o = match &r.event {
                    Event::RunStarted { flowmind, .. } => flowmind.as_deref(),
                    _ => None,
                };
                fresh(all.for_run(o))
            });
            let cadence = w.settings.model.as_ref().map_or(0, |m| m.cadence);
            let _ = w.rules.fold(&r.event);
            let _ = w.ledgers.fold(&r.event, cadence);
            let _ = w.feedback.fold(&r.event);
            w.folded_to = r.seq;
        })
        .await;
    match folded {
        Ok(Some(watched)) => watched,
        Ok(None) => fresh(settings.for_run(None)),
        Err(e) => {
            tracing::warn!(%run, error = %e, "FlowMind cannot read the run; it watches from now on");
            fresh(settings.for_run(None))
        }
    }
}
