//! The `run_shell` tool: a command in the workspace root through
//! `commands::run_shell`, summarised for the model.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::text::tail;
use super::{Run, Tool};
use super::{ToolEnv, ToolOutput};
use crate::commands::{ShellCommand, run_shell};

/// Bytes of each stream's end shown to the model.
pub const SHELL_TAIL_BYTES: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
pub(crate) struct ShellArgs {
    command: String,
    timeout_secs: Option<u64>,
}

/// The timeout asked for, capped by the environment's (zero there: no cap).
fn timeout(env: &ToolEnv, asked: Option<u64>) -> Option<Duration> {
    let cap = (!env.shell_timeout.is_zero()).then_some(env.shell_timeout);
    match (asked.map(Duration::from_secs), cap) {
        (Some(asked), Some(cap)) => Some(asked.min(cap)),
        (asked, cap) => asked.or(cap),
    }
}

pub(crate) async fn run(env: &ToolEnv, args: ShellArgs) -> ToolOutput {
    if args.command.trim().is_empty() {
        return ToolOutput {
            content: "`command` is empty".into(),
            is_error: true,
        };
    }
    let timeout = timeout(env, args.timeout_secs);
    let cmd = ShellCommand {
        script: args.command,
        cwd: env.root.clone(),
        env: BTreeMap::new(),
        timeout,
        idempotency_key: env.idempotency_key.clone(),
        started: env.process_started.clone(),
        offline: env.offline,
    };
    // No cancel here: the caller cancels by dropping this future, which
    // kills the process group.
    let result = match run_shell(&cmd, CancellationToken::new(), None).await {
        Ok(result) => result,
        Err(e) => {
            return ToolOutput {
                content: e.to_string(),
                is_error: true,
            };
        }
    };
    let status = match (result.exit_code, result.timed_out) {
        (_, true) => format!(
            "timed out after {}s; the command was stopped",
            timeout.map_or(0, |t| t.as_secs())
        ),
        (Some(code), false) => format!("exit code: {code}"),
        (None, false) => "killed by a signal".to_string(),
    };
    let mut content = status;
    content.push('\n');
    for (name, bytes) in [("stdout", &result.stdout), ("stderr", &result.stderr)] {
        if bytes.is_empty() {
            content.push_str(&format!("{name}: (empty)\n"));
        } else {
            content.push_str(&format!("--- {name} ---\n"));
            content.push_str(&tail(bytes, SHELL_TAIL_BYTES));
            if !content.ends_with('\n') {
                content.push('\n');
            }
        }
    }
    ToolOutput {
        content,
        is_error: result.exit_code != Some(0),
    }
}

/// `run_shell`: offered to models, run as a shell command once allowed.
pub(super) const RUN_SHELL: Tool = Tool {
    name: "run_shell",
    description: "Run a command with `sh -c` in the workspace root; stdin is empty. Returns the exit \
     code and the ends of stdout and stderr. Commands may need the user's approval; \
     chaining operators (`;`, `&&`, `|`, redirections) make approval more likely to be \
     required. Long-running commands are stopped at the timeout.",
    parameters: || {
        serde_json::json!({
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The shell command line."},
                "timeout_secs": {"type": "integer", "minimum": 1, "description": "Stop the command after this many seconds (capped by the configured maximum)."}
            },
            "required": ["command"],
            "additionalProperties": false
        })
    },
    side_effects: true,
    run: Run::Shell,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::ShellPolicy;

    fn env(secs: u64) -> ToolEnv {
        ToolEnv {
            root: ".".into(),
            shell: ShellPolicy::default(),
            shell_timeout: Duration::from_secs(secs),
            idempotency_key: String::new(),
            process_started: None,
            ask_before: Vec::new(),
            offline: false,
        }
    }

    #[test]
    fn timeouts_are_capped() {
        let s = Duration::from_secs;
        assert_eq!(timeout(&env(60), None), Some(s(60)));
        assert_eq!(timeout(&env(60), Some(5)), Some(s(5)));
        assert_eq!(timeout(&env(60), Some(600)), Some(s(60)));
        assert_eq!(timeout(&env(0), Some(7)), Some(s(7)));
        assert_eq!(timeout(&env(0), None), None);
    }
}
