//! `pty` steps: a program in a pseudo-terminal, run to its end.
//!
//! Its launch (command, arguments, directory, the names of the variables
//! set for it, the terminal's size, the agent CLI's session id when lev
//! chose it) is journaled durably before the program starts; its process
//! group right after. What it writes goes to every participant as it comes
//! (`Delta::PtyOutput`, each runs its own emulator); keys, sizes and its
//! hooks' reports come back through the run's ops (`Op::PtyInput`,
//! `Op::PtyResize`, `Op::PtyHook`). The step's prompt is typed once the
//! program has drawn and gone quiet. A screen (or a hook) asking for input
//! becomes a journaled question whose answer is typed in. The step ends
//! when the program exits (its exit code decides), or when its `done_when`
//! rule holds; what its terminal showed is its transcript (secrets
//! redacted), journaled with its end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

mod adhoc;
mod asks;
mod screen;
mod session;

pub use adhoc::{Adhoc, is_adhoc, spawn_adhoc, stop_adhoc};
pub use session::resumable_session;

use super::attempt::{AttemptCtx, StepError, humantime};
use super::context::RunCtx;
use crate::commands::pty::{Pty, PtyCommand};
use crate::config::agent_cli::{self, AgentCli};
use crate::protocol::{Delta, Event, HookReport, StepKey, TerminalState};
use crate::spec::{DoneWhen, ScreenRule, TerminalSize};
use asks::{approve, ask, asked_before};
use screen::{REDACT_PAUSE, Rule, ScreenRedactor, ScreenWatch, last_lines};
use session::{Launch, Session};

/// What reaches a running `pty` step from outside.
#[derive(Debug)]
pub enum TerminalInput {
    Keys(Vec<u8>),
    Resize(u16, u16),
    Hook(HookReport),
}

pub type TerminalSender = mpsc::UnboundedSender<TerminalInput>;

/// Hands `input` to the step's terminal, or says why it cannot.
pub fn deliver(ctx: &RunCtx, step: &StepKey, input: TerminalInput) {
    // A pane resized as its program ends has nothing to be told.
    let quietly = matches!(input, TerminalInput::Resize(..));
    let sent = ctx
        .terminals
        .lock()
        .ok()
        .and_then(|t| t.get(step).map(|tx| tx.send(input).is_ok()))
        .unwrap_or(false);
    if !sent && !quietly {
        ctx.rec.refuse(format!(
            "step `{step}` has no program running in a terminal"
        ));
    }
}

/// A `pty` step as rendered for one attempt.
#[derive(Debug, Clone)]
pub struct PtyPlan {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    pub size: TerminalSize,
    pub prompt: Option<String>,
    pub cli: Option<AgentCli>,
    pub done_when: DoneWhen,
    pub input_when: Option<ScreenRule>,
}

/// Output kept inline in the event and the step's `text`; the whole
/// transcript is in the blob.
const TAIL_BYTES: usize = 16 * 1024;
/// The program is ready for its prompt once it drew and then nothing for this long.
const READY_QUIET: Duration = Duration::from_millis(600);
/// A program that draws nothing at all gets its prompt after this long.
const READY_LIMIT: Duration = Duration::from_secs(2);
/// How often the screen is looked at while a rule or the prompt waits on it.
const TICK: Duration = Duration::from_millis(100);
/// A running program that drew nothing this long (and no hook said it
/// waits) shows as stalled.
const STALLED_AFTER: Duration = Duration::from_secs(120);
/// How often an idle program is checked on otherwise.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// Whether anything waits on the screen: the prompt, a rule, a session id
/// to find on it.
fn watching(
    prompt: &Option<String>,
    done_rule: &Option<Rule>,
    input_rule: &Option<Rule>,
    session: &Session,
) -> bool {
    prompt.is_some()
        || done_rule.is_some()
        || input_rule.is_some()
        || (session.known.is_none() && session.pattern.is_some())
}

/// How the attempt's program ended.
enum End {
    Exited(Option<i32>),
    Done(&'static str),
    TimedOut,
    Cancelled,
    Failed(String),
}

/// One attempt of a `pty` step: launched, driven to its end, its end and
/// transcript deferred to the step's end; the raw outputs (`text`,
/// `exit_code`, `session`) or why it failed.
pub async fn run(actx: &AttemptCtx, plan: &PtyPlan) -> Result<Map<String, Value>, StepError> {
    let ctx = &actx.ctx;
    let secrets = crate::secrets::current();
    let started = Instant::now();
    let launch = Launch::for_attempt(actx, plan);
    let mut env = plan.env.clone();
    env.insert("LEV_IDEMPOTENCY_KEY".into(), actx.idempotency_key.clone());
    env.insert("LEV_RUN".into(), ctx.rec.run().to_string());
    env.insert("LEV_STEP".into(), actx.key.to_string());
    if let Some(socket) = &ctx.deps.options.terminals.hook_socket {
        env.insert("LEV_HOOK_SOCKET".into(), socket.display().to_string());
    }
    if let Ok(exe) = std::env::current_exe() {
        env.insert("LEV_BIN".into(), exe.display().to_string());
    }
    if let Some(id) = &launch.session {
        env.insert("LEV_SESSION".into(), id.clone());
    }
    let event = Event::PtyLaunched {
        step: actx.key.clone(),
        attempt: actx.attempt,
        program: plan.program.clone(),
        // A key written into the arguments is not journaled.
        args: launch
            .args
            .iter()
            .map(|a| secrets.redact(a).into_owned())
            .collect(),
        cwd: plan.cwd.display().to_string(),
        env: env.keys().cloned().collect(),
        rows: plan.size.rows,
        cols: plan.size.cols,
        cli: plan.cli.as_ref().map(|c| c.name.clone()),
        session: launch.session.clone(),
        resumed: launch.resumed,
        at: ctx.now(),
    };
    // Durable before the program starts (with the step's start): a crash
    // after this knows what ran, and with which session. The terminal's
    // inputs are registered first: a pane sizes it as soon as it learns of
    // the launch, and the program's first hook may come at once; what comes
    // before the program runs waits in the channel.
    let (tx, inputs) = mpsc::unbounded_channel();
    if let Ok(mut t) = ctx.terminals.lock() {
        t.insert(actx.key.clone(), tx);
    }
    let unregister = || {
        if let Ok(mut t) = ctx.terminals.lock() {
            t.remove(&actx.key);
        }
    };
    if let Err(e) = actx.record(event).await {
        unregister();
        return Err(e);
    }

    let (tap, mut output) = mpsc::unbounded_channel();
    let cmd = PtyCommand {
        program: plan.program.clone(),
        args: launch.args.clone(),
        cwd: plan.cwd.clone(),
        env,
        rows: plan.size.rows,
        cols: plan.size.cols,
        tap: Some(tap),
    };
    let mut pty = match Pty::spawn(&cmd) {
        Ok(pty) => pty,
        Err(e) => {
            unregister();
            return Err(StepError::Fatal(e));
        }
    };
    // Its copy of the tap would keep the forwarder below waiting forever.
    drop(cmd);
    if let Some(group) = pty.pid().and_then(crate::commands::process::identify) {
        let event = Event::ProcessStarted {
            step: actx.key.clone(),
            attempt: actx.attempt,
            turn: 0,
            position: 0,
            group,
            at: ctx.now(),
        };
        if let Err(e) = actx.record(event).await {
            unregister();
            pty.stop().await;
            return Err(e);
        }
    }
    let rec = ctx.rec.clone();
    let key = actx.key.clone();
    let forward = tokio::spawn(async move {
        let mut clean = ScreenRedactor::new();
        loop {
            // A held-back start of what might be a key goes out once the
            // program pauses: a typed `s` is not kept waiting for more.
            let bytes = match tokio::time::timeout(REDACT_PAUSE, output.recv()).await {
                Ok(Some(bytes)) => clean.push(&bytes),
                Ok(None) => break,
                Err(_) => clean.flush(),
            };
            if !bytes.is_empty() {
                rec.delta(Delta::PtyOutput {
                    step: key.clone(),
                    bytes,
                });
            }
        }
        let bytes = clean.flush();
        if !bytes.is_empty() {
            rec.delta(Delta::PtyOutput { step: key, bytes });
        }
    });
    let mut session = Session {
        known: launch.session.clone(),
        pattern: plan
            .cli
            .as_ref()
            .and_then(|c| c.session_pattern.as_deref())
            .and_then(agent_cli::session_regex),
    };
    let end = drive(actx, plan, &mut pty, inputs, &launch, &mut session).await;
    unregister();
    if !matches!(end, End::Exited(_)) {
        pty.stop().await;
        // What it drew until then is read before the transcript is taken.
        let _ = tokio::time::timeout(Duration::from_secs(2), pty.exited()).await;
    }
    let exit_code = match end {
        End::Exited(code) => code,
        _ => None,
    };
    let _ = forward.await;
    let ended = match end {
        End::Exited(Some(0)) | End::Done(_) => TerminalState::Exited,
        _ => TerminalState::Error,
    };
    ctx.rec.delta(Delta::PtyState {
        step: actx.key.clone(),
        state: ended,
    });

    let transcript = secrets.redact(&pty.transcript()).into_owned();
    session.look(actx, &transcript, "output").await?;
    let tail = tail(&transcript);
    let blob = (transcript.len() > tail.len()).then(|| transcript.clone().into_bytes());
    let ended_by = match &end {
        End::Exited(_) => "exit",
        End::Done(by) => by,
        End::TimedOut => "timeout",
        End::Cancelled => "cancel",
        End::Failed(_) => "error",
    };
    let event = Event::PtyFinished {
        step: actx.key.clone(),
        attempt: actx.attempt,
        exit_code,
        ended_by: ended_by.into(),
        transcript_tail: tail.clone(),
        transcript_blob: blob.as_ref().map(|b| crate::journal::blob_hash(b)),
        duration_ms: started.elapsed().as_millis() as u64,
        at: ctx.now(),
    };
    // Nothing acts on how it ended before the step's end: one commit.
    actx.defer_with_blobs(event, blob.into_iter().collect());
    let command = one_line(&plan.program, &launch.args);
    match end {
        End::Cancelled => Err(StepError::Cancelled),
        End::TimedOut => Err(StepError::Timeout(format!(
            "`{command}` timed out after {}",
            humantime(actx.step.timeout.unwrap_or_default())
        ))),
        End::Failed(why) => Err(StepError::Fatal(why)),
        End::Exited(code) if code != Some(0) => {
            let last = tail.trim_end().lines().last().unwrap_or("").trim();
            let code = code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "none (killed by a signal)".into());
            let mut msg = format!("`{command}` exited with code {code}");
            if !last.is_empty() {
                msg.push_str(&format!(": {last}"));
            }
            Err(StepError::Failed(msg))
        }
        End::Exited(_) | End::Done(_) => {
            let mut raw = Map::new();
            raw.insert("text".into(), Value::String(tail.trim_end().to_string()));
            raw.insert(
                "exit_code".into(),
                exit_code.map(Value::from).unwrap_or(Value::Null),
            );
            raw.insert(
                "session".into(),
                session.known.map(Value::String).unwrap_or(Value::Null),
            );
            Ok(raw)
        }
    }
}

/// Runs the attempt's program to its end: types the prompt when it is
/// ready, serves keys, sizes and hooks, asks the user what it waits for.
async fn drive(
    actx: &AttemptCtx,
    plan: &PtyPlan,
    pty: &mut Pty,
    mut inputs: mpsc::UnboundedReceiver<TerminalInput>,
    launch: &Launch,
    session: &mut Session,
) -> End {
    let ctx = &actx.ctx;
    let begun = Instant::now();
    // A resumed conversation has its prompt already.
    let mut prompt = plan.prompt.clone().filter(|_| !launch.resumed);
    let mut screen = ScreenWatch::default();
    let done_rule = match &plan.done_when {
        DoneWhen::Screen(rule) => Some(Rule::of(rule)),
        _ => None,
    };
    let input_rule = plan.input_when.as_ref().map(Rule::of);
    let mut question: Option<BoxFuture<'static, Result<String, String>>> = None;
    // Approvals the program's hooks wait on.
    let mut approvals = futures::stream::FuturesUnordered::<BoxFuture<'static, ()>>::new();
    let mut asked = asked_before(ctx, &actx.key);
    let timeout = tokio::time::sleep(
        actx.step
            .timeout
            .unwrap_or(Duration::from_secs(u64::MAX / 4)),
    );
    tokio::pin!(timeout);
    // The program's output ending is (nearly always) the program ending.
    let mut output = pty.output_watch();
    let mut output_open = true;
    let mut next_look = tokio::time::Instant::now();
    let mut state = TerminalState::Running;
    let set_state = |new: TerminalState, state: &mut TerminalState| {
        if *state != new {
            *state = new;
            ctx.rec.delta(Delta::PtyState {
                step: actx.key.clone(),
                state: new,
            });
        }
    };
    loop {
        tokio::select! {
            _ = actx.cancel.cancelled() => return End::Cancelled,
            _ = &mut timeout => return End::TimedOut,
            answer = async {
                match question.as_mut() {
                    Some(q) => q.await,
                    None => std::future::pending().await,
                }
            }, if question.is_some() => {
                question = None;
                match answer {
                    Ok(text) => {
                        set_state(TerminalState::Running, &mut state);
                        screen.acted();
                        let typed = pty.paste(&text).and_then(|_| pty.type_bytes(b"\r"));
                        if let Err(e) = typed {
                            return End::Failed(format!("cannot type into the terminal: {e}"));
                        }
                    }
                    Err(why) => {
                        let shows = last_lines(&pty.screen_text(), 3);
                        return End::Failed(format!("`{}` waits for input (its screen shows: {shows}), and {why}", plan.program));
                    }
                }
            }
            input = inputs.recv() => match input {
                Some(TerminalInput::Keys(bytes)) => {
                    if let Err(e) = pty.type_bytes(&bytes) {
                        tracing::warn!(step = %actx.key, "cannot type into the terminal: {e}");
                    }
                }
                Some(TerminalInput::Resize(rows, cols)) => {
                    tracing::debug!(step = %actx.key, rows, cols, "terminal resized");
                    if let Err(e) = pty.resize(rows, cols) {
                        ctx.rec.refuse(format!("step `{}`: {e}", actx.key));
                    }
                }
                Some(TerminalInput::Hook(report)) => {
                    if let Some(id) = report.session.clone()
                        && let Err(e) = session.learned(actx, id, "hook").await
                    {
                        return End::Failed(format!("{e:?}"));
                    }
                    match report.state {
                        Some(TerminalState::Idle) if plan.done_when == DoneWhen::Stop => {
                            return End::Done("stop");
                        }
                        Some(TerminalState::NeedsApproval) if report.wait.is_some() => {
                            // Its hook waits for the decision: asked here,
                            // answered back to the hook, nothing typed.
                            set_state(TerminalState::NeedsApproval, &mut state);
                            let what = report.message.clone().unwrap_or_else(|| last_lines(&pty.screen_text(), 3));
                            let request = report.wait.clone().unwrap_or_default();
                            approvals.push(approve(actx, &request, &plan.program, what));
                        }
                        Some(s @ (TerminalState::NeedsInput | TerminalState::NeedsApproval)) if question.is_none() => {
                            set_state(s, &mut state);
                            asked += 1;
                            let what = report.message.clone().unwrap_or_else(|| last_lines(&pty.screen_text(), 3));
                            question = Some(ask(actx, asked, &plan.program, what, s));
                        }
                        Some(s) => set_state(s, &mut state),
                        None => {}
                    }
                }
                None => {}
            },
            Some(()) = futures::StreamExt::next(&mut approvals), if !approvals.is_empty() => {
                if approvals.is_empty() {
                    set_state(TerminalState::Running, &mut state);
                }
            }
            changed = output.changed(), if output_open => {
                if changed.is_err() {
                    // Look now whether the program ended.
                    output_open = false;
                    next_look = tokio::time::Instant::now();
                }
                continue;
            }
            _ = tokio::time::sleep_until(next_look) => {}
        }
        if tokio::time::Instant::now() < next_look {
            continue;
        }
        // Screens are looked at often only while the prompt or a rule waits
        // on them, or the output has ended; otherwise only whether the
        // program is still there (a job it left on the terminal keeps the
        // output open), once a second.
        let often = !output_open || watching(&prompt, &done_rule, &input_rule, session);
        next_look = tokio::time::Instant::now() + if often { TICK } else { IDLE_TICK };
        if pty.has_exited() {
            tracing::debug!(step = %actx.key, "the program exited");
            return End::Exited(pty.exited().await);
        }
        // The screen is read only when the program drew since the
        // last look: eight idle programs cost next to nothing.
        let drawn = pty.output_seen();
        // Long quiet with no hook saying why is worth showing; drawing again
        // is running again.
        if state == TerminalState::Running && pty.quiet_for().is_some_and(|q| q >= STALLED_AFTER) {
            set_state(TerminalState::Stalled, &mut state);
        } else if state == TerminalState::Stalled && drawn != screen.drawn {
            set_state(TerminalState::Running, &mut state);
        }
        if drawn != screen.drawn {
            screen.drawn = drawn;
            screen.saw(&pty.screen_text());
            if session.known.is_none()
                && let Err(e) = session.look(actx, &screen.text, "output").await
            {
                return End::Failed(format!("{e:?}"));
            }
        }
        if let Some(p) = &prompt {
            let ready = match pty.quiet_for() {
                Some(quiet) => quiet >= READY_QUIET,
                None => begun.elapsed() >= READY_LIMIT,
            };
            if ready {
                let typed = pty.paste(p).and_then(|_| pty.type_bytes(b"\r"));
                if let Err(e) = typed {
                    return End::Failed(format!("cannot type the prompt: {e}"));
                }
                tracing::debug!(step = %actx.key, "typed the prompt");
                prompt = None;
                screen.acted();
                continue;
            }
        }
        if let Some(rule) = &done_rule
            && prompt.is_none()
            && screen.holds(rule)
        {
            return End::Done("done_when");
        }
        if let Some(rule) = &input_rule
            && question.is_none()
            && prompt.is_none()
            && screen.holds(rule)
        {
            set_state(TerminalState::NeedsInput, &mut state);
            asked += 1;
            let shows = last_lines(&screen.text, 3);
            question = Some(ask(
                actx,
                asked,
                &plan.program,
                shows,
                TerminalState::NeedsInput,
            ));
        }
    }
}

fn one_line(program: &str, args: &[String]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    if s.chars().count() > 80 {
        s = s.chars().take(79).collect::<String>() + "…";
    }
    s
}

/// The last `TAIL_BYTES` of the transcript, cut at a line start.
fn tail(text: &str) -> String {
    if text.len() <= TAIL_BYTES {
        return text.to_string();
    }
    let mut from = text.len() - TAIL_BYTES;
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let cut = &text[from..];
    match cut.find('\n') {
        Some(i) => cut[i + 1..].to_string(),
        None => cut.to_string(),
    }
}
