//! `lev mcp`: lev as an MCP server on standard input and output, so that an
//! MCP client (Claude Code, Codex, an IDE) can start workflows, follow their
//! runs and answer what they wait for.
//!
//! Every tool goes through the engine handle (`Access`), opened for that one
//! call: the lev process executing a run answers on its control socket,
//! otherwise this process opens the journal for the call and lets it go, so
//! the runs it starts (each a `lev run --headless` of its own, which outlives
//! this server) can take the journal. Standard output carries the protocol
//! only; what lev has to say goes to standard error and the log.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::Access;
use super::context::error;
use super::exit;
use crate::paths::Paths;
use crate::protocol::{AnswerSource, Event, Op, RunId, StepKey};

/// Serves MCP on stdio until the client closes it.
pub async fn serve(paths: &Paths) -> u8 {
    let server = LevMcp::new(paths);
    let running = match server.serve(rmcp::transport::stdio()).await {
        Ok(r) => r,
        Err(e) => {
            error(&format!("lev mcp: the client did not start a session: {e}"));
            return exit::FAILED;
        }
    };
    match running.waiting().await {
        Ok(_) => exit::OK,
        Err(e) => {
            error(&format!("lev mcp: {e}"));
            exit::FAILED
        }
    }
}

/// `lev mcp install claude|codex`: what adds this lev to that client, with
/// this binary's path and data directory (nothing is written: the client's
/// own command or file, which the user may keep elsewhere, does that).
/// The one place here that prints: `lev mcp` itself keeps standard output
/// for the protocol.
#[allow(clippy::print_stdout)]
pub fn install(paths: &Paths, client: super::args::McpClient) -> u8 {
    let bin = match std::env::current_exe() {
        Ok(b) => b,
        Err(e) => {
            error(&format!("cannot tell where this lev is: {e}"));
            return exit::FAILED;
        }
    };
    let data = std::path::absolute(&paths.data_dir).unwrap_or(paths.data_dir.clone());
    let (bin, data) = (bin.display().to_string(), data.display().to_string());
    let text = match client {
        super::args::McpClient::Claude => format!(
            "Run this to add lev to Claude Code (`claude mcp add --scope user …` adds it for every project):\n\n  claude mcp add lev -- {} --data-dir {} mcp\n",
            shell_word(&bin),
            shell_word(&data)
        ),
        super::args::McpClient::Codex => format!(
            "Add this to ~/.codex/config.toml:\n\n[mcp_servers.lev]\ncommand = {}\nargs = [\"--data-dir\", {}, \"mcp\"]\n",
            toml_string(&bin),
            toml_string(&data)
        ),
    };
    print!("{text}");
    // The URL is not written into the client's command line: it may hold
    // a password, and command lines are anyone's to read.
    if paths.journal_url.is_some() {
        print!(
            "\nThis lev's journal is not the data dir's file: give the client's lev the same journal, with LEV_JOURNAL in the environment the client starts it with, or `journal: {{ url: … }}` in lev's config.\n"
        );
    }
    exit::OK
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

impl LevMcp {
    /// The server of one session (stdio: the only one; HTTP: one each).
    pub(super) fn new(paths: &Paths) -> LevMcp {
        LevMcp {
            paths: paths.clone(),
            tool_router: LevMcp::tool_router(),
        }
    }
}

#[derive(Clone)]
pub(super) struct LevMcp {
    paths: Paths,
    tool_router: ToolRouter<Self>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct RunArgs {
    /// The run's id, as `list_runs` or `start_workflow` gave it.
    run: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct AnswerArgs {
    /// The run's id.
    run: String,
    /// The question's id (`waiting` lists them); for an approval, the
    /// step's id.
    question: String,
    /// The answer: one of the question's options or free text; for an
    /// approval `approve` or `deny`.
    answer: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct StartArgs {
    /// The workflow file (YAML): absolute, or relative to where `lev mcp`
    /// runs.
    path: String,
    /// The workflow's inputs, name to value.
    #[serde(default)]
    inputs: BTreeMap<String, String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ObjectiveArgs {
    /// What the swarm should achieve, in plain words.
    objective: String,
    /// Agent slots working at once (default 4).
    #[serde(default)]
    agents: Option<u32>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct PathArgs {
    /// The workflow file (YAML): absolute, or relative to where `lev mcp`
    /// runs.
    path: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct MessageArgs {
    /// The run's id.
    run: String,
    /// The running agent step's id (`show_run` lists the steps).
    step: String,
    /// What to tell it: it reads this before its next model request.
    text: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct PauseArgs {
    /// The run's id.
    run: String,
    /// One running agent step to pause; the whole run when left out (no
    /// new step starts; running steps finish).
    #[serde(default)]
    step: Option<String>,
    /// False lifts the pause instead.
    #[serde(default = "yes")]
    pause: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, schemars::JsonSchema)]
struct SearchArgs {
    /// Words to look for (ranked by BM25); empty lists the newest entries.
    #[serde(default)]
    text: String,
    /// Only entries carrying every one of these tags.
    #[serde(default)]
    tags: Vec<String>,
    /// Most results (default 10).
    #[serde(default)]
    limit: Option<usize>,
}

/// How long `start_workflow` waits for the new run to say its id.
const START_PATIENCE: Duration = Duration::from_secs(30);

#[tool_router]
impl LevMcp {
    #[tool(
        description = "List lev's runs in this data directory, newest first: id, workflow, status (running, paused, succeeded, failed, cancelled, interrupted; on a PostgreSQL journal `waiting` for a `lev worker`, and the executing process as `executor`), start time and number of journal entries."
    )]
    async fn list_runs(&self) -> Result<CallToolResult, ErrorData> {
        let mut access = self.access().await?;
        let live = access.is_remote();
        let runs = access.runs().await.map_err(failed)?;
        let leases = super::inspect::leases(&access).await;
        let list: Vec<Value> = runs
            .iter()
            .map(|m| {
                let executor = super::inspect::Executor::of(&m.id, leases.as_ref());
                super::inspect::run_json(m, live, executor)
            })
            .collect();
        json_result(&Value::Array(list))
    }

    #[tool(
        description = "A run's status, its steps (status, attempts, outputs) and the run's outputs once it ended, as `lev show RUN --json` prints them."
    )]
    async fn show_run(
        &self,
        Parameters(RunArgs { run }): Parameters<RunArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut access = self.access().await?;
        let (summary, status) = super::inspect::summary(&mut access, &RunId(run.clone()))
            .await
            .map_err(failed)?
            .ok_or_else(|| ErrorData::invalid_params(format!("no run {run}"), None))?;
        let text = summary.json(status).map_err(|e| failed(e.to_string()))?;
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }

    #[tool(
        description = "What a run waits for from a human: its unanswered questions (id, question, options, default) and approvals (the step's id, the message). Answer them with `answer`."
    )]
    async fn waiting(
        &self,
        Parameters(RunArgs { run }): Parameters<RunArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut access = self.access().await?;
        let events = access
            .events(&RunId(run))
            .await
            .map_err(failed)?
            .into_iter()
            .map(|r| r.event);
        json_result(&Value::Array(open_asks(events)))
    }

    #[tool(
        description = "Answer what a run waits for: a question by its id (an option's value or free text), or an approval by its step's id with `approve` or `deny`. The answer is journaled before the run acts on it; a question already answered keeps its first answer."
    )]
    async fn answer(
        &self,
        Parameters(AnswerArgs {
            run,
            question,
            answer,
        }): Parameters<AnswerArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if answer.trim().is_empty() {
            return Err(ErrorData::invalid_params(
                "an empty answer is not sent: an empty answer is never consent",
                None,
            ));
        }
        let mut access = self.access().await?;
        let id = RunId(run);
        let events = access.events(&id).await.map_err(failed)?;
        let open = open_asks(events.into_iter().map(|r| r.event));
        let Some(asked) = open.iter().find(|a| a["id"] == question.as_str()) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "nothing waits for an answer to `{question}` in run {id} (`waiting` lists what does)"
                ),
                None,
            ));
        };
        let op = match asked["kind"] == "approval" {
            true => Op::Decide {
                run: id,
                step: StepKey::new(question.clone()),
                approved: match answer.trim() {
                    "approve" | "approved" | "yes" | "y" => true,
                    "deny" | "denied" | "no" | "n" => false,
                    other => {
                        return Err(ErrorData::invalid_params(
                            format!(
                                "`{question}` is an approval: answer `approve` or `deny`, not `{other}`"
                            ),
                            None,
                        ));
                    }
                },
                comment: "answered over MCP".into(),
                source: AnswerSource::User,
            },
            false => Op::Answer {
                run: id,
                question: question.clone(),
                answer,
                source: AnswerSource::User,
            },
        };
        let done = access.submit(op).await.map_err(failed)?;
        json_result(&json!({ "question": question, "done": done }))
    }

    #[tool(
        description = "Check and start a workflow file as a new run, executed by a `lev run --headless` process of its own (it keeps running when this MCP session ends). Returns the run's id; follow it with `show_run` and `waiting`."
    )]
    async fn start_workflow(
        &self,
        Parameters(StartArgs { path, inputs }): Parameters<StartArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let file = checked_workflow(&path, &self.paths)?;
        let mut args = vec!["run".into(), file.display().to_string()];
        for (k, v) in &inputs {
            args.extend(["--input".into(), format!("{k}={v}")]);
        }
        let run = self.start(args).await?;
        json_result(&json!({ "run": run }))
    }

    #[tool(
        description = "Start a swarm on an objective (`lev workflow \"…\"`): an orchestrator plans tasks for agents of several roles, and the run waits for the plan's review (`waiting` shows it as `plan-review`; answer `accept`, `regenerate` or an edited plan). Returns the run's id."
    )]
    async fn start_objective(
        &self,
        Parameters(ObjectiveArgs { objective, agents }): Parameters<ObjectiveArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if objective.trim().is_empty() {
            return Err(ErrorData::invalid_params("the objective is empty", None));
        }
        let mut args = vec!["workflow".into()];
        if let Some(n) = agents {
            args.extend(["--agents".into(), n.to_string()]);
        }
        // After `--`: an objective that starts with `-` is not an option.
        args.extend(["--".into(), objective]);
        let run = self.start(args).await?;
        json_result(&json!({ "run": run }))
    }

    #[tool(
        description = "Check a workflow file without running it: every problem with file:line:col, what was expected and what was found (`lev validate`)."
    )]
    async fn validate_workflow(
        &self,
        Parameters(PathArgs { path }): Parameters<PathArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let file = std::path::absolute(&path)
            .map_err(|e| ErrorData::invalid_params(format!("{path}: {e}"), None))?;
        let problems = match load(&file, &self.paths) {
            Ok(()) => Vec::new(),
            Err(e) => vec![e],
        };
        json_result(&json!({ "file": file, "valid": problems.is_empty(), "problems": problems }))
    }

    #[tool(
        description = "A run's transcript: one line per journaled event, as `lev replay RUN` prints it (questions, answers, agents' replies and tool calls, commands and their output, the end)."
    )]
    async fn transcript(
        &self,
        Parameters(RunArgs { run }): Parameters<RunArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut access = self.access().await?;
        let events = access.events(&RunId(run.clone())).await.map_err(failed)?;
        if events.is_empty() {
            return Err(ErrorData::invalid_params(format!("no run {run}"), None));
        }
        let mut out = Vec::new();
        crate::headless::replay(&events, false, &mut out);
        Ok(CallToolResult::success(vec![ContentBlock::text(
            String::from_utf8_lossy(&out).into_owned(),
        )]))
    }

    #[tool(
        description = "Send a message to a running agent step of a live run; the agent reads it before its next model request (`lev message`)."
    )]
    async fn message(
        &self,
        Parameters(MessageArgs { run, step, text }): Parameters<MessageArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if text.trim().is_empty() {
            return Err(ErrorData::invalid_params(
                "an empty message is not sent",
                None,
            ));
        }
        let op = Op::Message {
            run: RunId(run),
            step: StepKey::new(step),
            text,
        };
        self.submit(op).await
    }

    #[tool(
        description = "Pause a live run (no new step starts; running steps finish) or one running agent step; with `pause: false`, lift the pause."
    )]
    async fn pause(
        &self,
        Parameters(PauseArgs { run, step, pause }): Parameters<PauseArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let (run, step) = (RunId(run), step.map(StepKey::new));
        let op = match pause {
            true => Op::Pause { run, step },
            false => Op::Unpause { run, step },
        };
        self.submit(op).await
    }

    #[tool(
        description = "Stop callbacks in a run: no new follow-up work and no system-initiated question from then on; running steps finish (`lev stop-callbacks`)."
    )]
    async fn stop_callbacks(
        &self,
        Parameters(RunArgs { run }): Parameters<RunArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.submit(Op::StopCallbacks { run: RunId(run) }).await
    }

    #[tool(
        description = "Search lev's memory bank (what agents and users stored across runs): entries ranked by the words, filtered by tags."
    )]
    async fn search_memory(
        &self,
        Parameters(SearchArgs { text, tags, limit }): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut access = self.access().await?;
        let query = crate::memory::Query {
            text,
            tags,
            namespaces: None,
            limit: limit.unwrap_or(10),
        };
        let hits = access.memory_search(&query).await.map_err(failed)?;
        let hits = serde_json::to_value(&hits).map_err(|e| failed(e.to_string()))?;
        json_result(&hits)
    }

    #[tool(
        description = "Cancel a run: its running steps are stopped and it ends cancelled (`lev cancel RUN`)."
    )]
    async fn cancel_run(
        &self,
        Parameters(RunArgs { run }): Parameters<RunArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        self.submit(Op::Cancel { run: RunId(run) }).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for LevMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("lev", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "lev runs durable multi-agent workflows. Start one with start_workflow, follow it with show_run, answer what it waits for (waiting, answer).",
            )
    }
}

impl LevMcp {
    /// Submits `op` through the engine handle and says what it did.
    async fn submit(&self, op: Op) -> Result<CallToolResult, ErrorData> {
        let mut access = self.access().await?;
        let done = access.submit(op).await.map_err(failed)?;
        json_result(&json!({ "done": done }))
    }

    async fn access(&self) -> Result<Access, ErrorData> {
        Access::open(&self.paths).await.map_err(|_| {
            failed(format!(
                "cannot reach lev's journal in {}",
                self.paths.data_dir.display()
            ))
        })
    }

    /// Starts `lev ARGS --headless --wait-for-answers` as a process of its
    /// own (its output in a log file beside lev's log) and returns the run
    /// id it reports.
    async fn start(&self, args: Vec<String>) -> Result<String, ErrorData> {
        let bin = std::env::current_exe().map_err(|e| failed(e.to_string()))?;
        let logs = self.paths.data_dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| failed(e.to_string()))?;
        let log = logs.join(format!("mcp-run-{}.log", ulid::Ulid::generate()));
        let out = std::fs::File::create(&log).map_err(|e| failed(e.to_string()))?;
        let err = out.try_clone().map_err(|e| failed(e.to_string()))?;
        let mut cmd = tokio::process::Command::new(bin);
        // The subcommand, then how it is driven, then its own arguments
        // (which may end with `--` and a positional one).
        let (command, rest) = args
            .split_first()
            .ok_or_else(|| failed("nothing to start"))?;
        // The same journal as this server's, however it was given (in the
        // environment: a URL's password stays out of `ps`).
        match &self.paths.journal_url {
            Some(url) => cmd.env("LEV_JOURNAL", url),
            None => cmd.env_remove("LEV_JOURNAL"),
        };
        cmd.arg("--data-dir")
            .arg(&self.paths.data_dir)
            .arg(command)
            .arg("--headless")
            .arg("--wait-for-answers")
            .args(rest);
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own session: it outlives this server and its client.
            .process_group(0)
            .spawn()
            .map_err(|e| failed(format!("cannot start lev run: {e}")))?;
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(id) = run_id_in(&text) {
                // Reaped when it ends, so it leaves no zombie behind.
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
                return Ok(id);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(failed(format!(
                    "lev run ended ({status}) before it started a run: {}",
                    text.trim()
                )));
            }
            if Instant::now() > deadline {
                return Err(failed(format!(
                    "lev run said no run id within {}s (its output: {})",
                    START_PATIENCE.as_secs(),
                    log.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The workflow file at `path`, checked: a workflow that does not load is
/// refused here, with where and what, instead of failing in a run's log.
fn checked_workflow(path: &str, paths: &Paths) -> Result<std::path::PathBuf, ErrorData> {
    let file = std::path::absolute(path)
        .map_err(|e| ErrorData::invalid_params(format!("{path}: {e}"), None))?;
    if !file.is_file() {
        return Err(ErrorData::invalid_params(
            format!("no workflow file at {}", file.display()),
            None,
        ));
    }
    load(&file, paths).map_err(|e| ErrorData::invalid_params(e, None))?;
    Ok(file)
}

/// Loads a workflow with the modes `lev validate` uses here (built in, the
/// config's, the workspace's); the problems as it prints them.
fn load(file: &std::path::Path, paths: &Paths) -> Result<(), String> {
    let modes =
        crate::spec::ModeRegistry::for_cwd(paths.config_dir.as_deref(), std::path::Path::new("."))
            .map_err(|e| e.to_string())?;
    crate::spec::load_workflow(file, &modes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The id in the first line `lev run --headless` prints (`run ID …`).
fn run_id_in(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("run"))
            .then(|| words.next())
            .flatten()
            .filter(|w| w.len() == 26 && w.chars().all(|c| c.is_ascii_alphanumeric()))
            .map(str::to_string)
    })
}

/// The questions and approvals `events` leave unanswered, oldest first.
fn open_asks(events: impl Iterator<Item = Event>) -> Vec<Value> {
    let mut open: Vec<(String, Value)> = Vec::new();
    for event in events {
        match event {
            Event::QuestionAsked {
                id,
                ask,
                header,
                options,
                default,
                step,
                ..
            } => {
                let options: Vec<Value> = options
                    .iter()
                    .map(|o| serde_json::to_value(o).unwrap_or(Value::Null))
                    .collect();
                let ask = json!({
                    "kind": "question", "id": id, "step": step, "header": header,
                    "question": ask, "options": options, "default": default,
                });
                open.push((id, ask));
            }
            Event::QuestionAnswered { id, .. } => open.retain(|(k, _)| *k != id),
            Event::ApprovalRequested { step, message, .. } => {
                let ask = json!({
                    "kind": "approval", "id": step, "message": message,
                    "answers": ["approve", "deny"],
                });
                open.push((format!("approval:{step}"), ask));
            }
            Event::ApprovalDecided { step, .. } => {
                let key = format!("approval:{step}");
                open.retain(|(k, _)| *k != key);
            }
            _ => {}
        }
    }
    open.into_iter().map(|(_, v)| v).collect()
}

fn json_result(value: &Value) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::success(vec![ContentBlock::text(
        value.to_string(),
    )]))
}

fn failed(message: impl Into<String>) -> ErrorData {
    ErrorData::internal_error(message.into(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_id_is_read_from_the_first_line_that_names_one() {
        let out = "loading…\nrun 01M95775GDQE00PXQCMBABZ4GR started: Chain\nstep a: started\n";
        assert_eq!(
            run_id_in(out).as_deref(),
            Some("01M95775GDQE00PXQCMBABZ4GR")
        );
        assert_eq!(run_id_in("run failed to start\n"), None);
    }

    #[test]
    fn install_lines_quote_what_needs_it() {
        assert_eq!(shell_word("/usr/bin/lev"), "/usr/bin/lev");
        assert_eq!(shell_word("/home/a b/it's"), "'/home/a b/it'\\''s'");
        assert_eq!(toml_string("C:\\x \"y\""), "\"C:\\\\x \\\"y\\\"\"");
    }
}
