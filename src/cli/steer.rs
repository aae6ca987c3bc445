//! Steering a live run from another terminal: `pause`, `unpause`,
//! `message`, `spawn`, `stop`, `stop-callbacks`. Each sends one op through the control socket of the
//! lev process executing the run.
#![allow(clippy::print_stdout)]

use super::access::Access;
use super::context::error;
use super::exit;
use crate::paths::Paths;
use crate::protocol::{Op, RunId, StepKey};

async fn send(paths: &Paths, op: Op, done: String) -> u8 {
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    match access.submit(op).await {
        Ok(_) => {
            println!("{done}");
            exit::OK
        }
        Err(e) => {
            error(&e);
            exit::FAILED
        }
    }
}

/// `lev pause` (`pause: true`) and `lev unpause`.
pub async fn pause(paths: &Paths, run: &str, step: Option<String>, pause: bool) -> u8 {
    let run = RunId(run.to_string());
    let step = step.map(StepKey::new);
    let what = match &step {
        Some(s) => format!("step {s} of run {run}"),
        None => format!("run {run}"),
    };
    let (op, done) = if pause {
        let done = match &step {
            Some(_) => format!("pausing {what}: it holds before its next LLM request"),
            None => format!(
                "pausing {what}: no new step starts, agents hold before their next LLM request, running shell steps go on"
            ),
        };
        (Op::Pause { run, step }, done)
    } else {
        (Op::Unpause { run, step }, format!("unpausing {what}"))
    };
    send(paths, op, done).await
}

/// `lev spawn RUN COMMAND [ARGS]…`.
pub async fn spawn(paths: &Paths, run: &str, command: String, args: Vec<String>) -> u8 {
    if command.trim().is_empty() {
        error("nothing to spawn: give a command");
        return exit::USAGE;
    }
    let done = format!("{command} opens in a pane of run {run} (step adhoc-N)");
    let op = Op::Spawn {
        run: RunId(run.to_string()),
        command,
        args,
    };
    send(paths, op, done).await
}

/// `lev message RUN STEP TEXT`.
pub async fn message(paths: &Paths, run: &str, step: &str, text: String) -> u8 {
    if text.trim().is_empty() {
        error("an empty message is not sent");
        return exit::USAGE;
    }
    let op = Op::Message {
        run: RunId(run.to_string()),
        step: StepKey::new(step),
        text,
    };
    let done = format!("message queued for {step}: the agent reads it before its next LLM request");
    send(paths, op, done).await
}

/// `lev answer RUN QUESTION ANSWER`.
pub async fn answer(paths: &Paths, run: &str, question: &str, answer: String) -> u8 {
    if answer.trim().is_empty() {
        error("an empty answer is not sent: an empty answer is never consent");
        return exit::USAGE;
    }
    let op = Op::Answer {
        run: RunId(run.to_string()),
        question: question.to_string(),
        answer,
        source: crate::protocol::AnswerSource::User,
    };
    let done = format!("answer sent for {question}");
    send(paths, op, done).await
}

/// `lev stop RUN`.
pub async fn stop(paths: &Paths, run: &str) -> u8 {
    let op = Op::EmergencyStop {
        run: RunId(run.to_string()),
    };
    let done = format!(
        "stopping every running step of run {run}; it ends paused: `lev resume {run}` continues it"
    );
    send(paths, op, done).await
}

/// `lev stop-callbacks RUN`.
pub async fn stop_callbacks(paths: &Paths, run: &str) -> u8 {
    let op = Op::StopCallbacks {
        run: RunId(run.to_string()),
    };
    let done = format!(
        "callbacks stopped in run {run}: no new follow-up or system question; running steps finish"
    );
    send(paths, op, done).await
}
