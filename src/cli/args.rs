//! `lev` arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "lev",
    version,
    about = "Durable multi-agent AI workflows in your terminal"
)]
pub struct Cli {
    /// Where the journal lives (default: $XDG_DATA_HOME/lev).
    #[arg(long, global = true, env = "LEV_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The journal in a PostgreSQL database instead of the data dir's
    /// file: a postgres:// URL or key-value string (early: see README).
    #[arg(long, global = true, env = "LEV_JOURNAL", value_name = "URL")]
    pub journal: Option<String>,
    /// Workbench theme: dark, light, high-contrast, abyss, or a theme file.
    #[arg(long, global = true, env = "LEV_THEME", value_name = "NAME")]
    pub theme: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check workflow files; print every problem with file:line:col.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a workflow file.
    Run {
        file: PathBuf,
        /// Workflow input, repeatable: --input feature="login form".
        #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        /// Submit the run to the `lev worker`s of a PostgreSQL journal
        /// (`--journal`) and return at once, printing its id.
        #[arg(long, conflicts_with_all = ["headless", "json", "answers", "wait_for_answers"])]
        detach: bool,
        /// Share the run's agent and shell steps among the `lev worker`s of
        /// a PostgreSQL journal (`--journal`): each becomes a step run that
        /// any worker whose `--modes` take it executes; this run's process
        /// schedules them.
        #[arg(long)]
        spread: bool,
        /// Push the branch of each step that works in its own worktree
        /// (`workspace: { worktree: true }`) to this git remote (a name or
        /// URL) when the step ends, so `lev worktrees RUN` diffs and merges
        /// it on any machine: for runs whose steps other machines execute.
        #[arg(long, value_name = "REMOTE")]
        push_to: Option<String>,
        #[command(flatten)]
        drive: DriveArgs,
    },
    /// Continue an interrupted or paused run from its journal.
    Resume {
        run: String,
        /// For a non-idempotent step that was running at a crash.
        #[arg(long, value_enum, value_name = "DECISION")]
        in_flight: Option<InFlightArg>,
        #[command(flatten)]
        drive: DriveArgs,
    },
    /// Run a failed step again, then the steps that were skipped or failed
    /// because of it; a run that ended resumes (a live run takes it as an op).
    Retry {
        run: String,
        step: String,
        #[command(flatten)]
        drive: DriveArgs,
    },
    /// A new run from RUN's journal up to STEP: the steps settled before it
    /// are adopted, STEP and everything after it run again. RUN is untouched.
    Fork {
        run: String,
        /// The step to run again from.
        #[arg(long, value_name = "STEP")]
        from: String,
        #[command(flatten)]
        drive: DriveArgs,
    },
    /// List runs, newest first.
    Runs {
        #[arg(long)]
        json: bool,
    },
    /// A run's timeline: steps with status, attempts, durations, tokens, cost.
    Show {
        run: String,
        #[arg(long)]
        json: bool,
        /// What this agent step's request was made of: each part, its
        /// tokens and its text.
        #[arg(long, value_name = "STEP")]
        context: Option<String>,
        /// With --context: the turn (default: the last).
        #[arg(long, value_name = "N", requires = "context")]
        turn: Option<u32>,
    },
    /// Play a run back from the journal alone (no network); `--headless`
    /// prints its transcript instead.
    Replay {
        run: String,
        #[arg(long)]
        headless: bool,
        #[arg(long)]
        json: bool,
    },
    /// Write a run (meta, events, blobs) as JSONL; `--all -o DIR` writes
    /// every intact run to DIR/<run>.jsonl (damaged runs are reported).
    Export {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        run: Option<String>,
        /// Every run, one file each, into the folder given with --output.
        #[arg(long, requires = "output")]
        all: bool,
        /// Output file (default: standard output); with --all, a folder.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
    /// Import a run exported with `lev export`.
    Import { file: PathBuf },
    /// Verify the journal: every run's entries decode, seqs have no gaps,
    /// blobs and pinned definitions match their hashes. Prints `ok` or what
    /// is wrong per run; exits 0 when every run is intact, 1 otherwise.
    ///
    /// A journal that cannot be read as a database at all (a destroyed
    /// header or root page) is scanned page by page instead: doctor lists
    /// the runs it still holds whole, `--repair` moves the file aside and
    /// makes a new journal of them.
    #[command(alias = "check")]
    Doctor {
        #[arg(long)]
        json: bool,
        /// Move a journal that cannot be read aside and rebuild it from the
        /// runs its pages still hold whole.
        #[arg(long, conflicts_with = "json")]
        repair: bool,
    },
    /// Delete runs from the journal (with the blobs only they used), then
    /// compact the file. An unfinished run needs --force.
    Rm {
        #[arg(required = true)]
        runs: Vec<String>,
        /// Also delete runs that are running or paused (they could be resumed).
        #[arg(long)]
        force: bool,
    },
    /// Delete finished runs older than a duration (`30d`, `12h`), then
    /// compact the file. Unfinished runs are kept.
    Prune {
        #[arg(long, value_name = "DURATION")]
        older_than: String,
        /// Keep failed runs (to look at them later).
        #[arg(long)]
        keep_failed: bool,
        /// Only say what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Compact the journal file: space freed by deleted runs goes back to the disk.
    Compact,
    /// Execute runs of a PostgreSQL journal (`--journal`) as they need a
    /// process: runs submitted with `lev run --detach`, and runs whose
    /// process died or was cut off (its lease lapsed; they resume by the
    /// in-flight rules). Several workers on several machines share the
    /// runs, and the steps of spread runs (`--spread`). Questions are answered as `lev run --headless` answers them;
    /// `lev answer`, `lev cancel`, … from any machine reach the worker that
    /// executes the run. Ctrl-C lets the runs it executes end first; a
    /// second Ctrl-C stops at once (other workers take its runs over once
    /// their leases lapse).
    Worker {
        /// How many runs this worker executes at once.
        #[arg(long, default_value_t = 4, value_name = "N")]
        slots: u32,
        /// How long a run's lease lasts unless renewed (it is renewed every
        /// third of it): after a crash or a cut, other workers take its
        /// runs over this long after the last renewal.
        #[arg(long, default_value = "15s", value_name = "DURATION")]
        lease: String,
        /// Approve approval gates without asking.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Let agents run any shell command without asking.
        #[arg(long)]
        allow_shell: bool,
        /// Questions and approvals not answered by a default (or `--yes`)
        /// wait for an answer from `lev answer` (any machine) or an MCP
        /// client, until their own timeout, instead of taking it at once.
        #[arg(long)]
        wait_for_answers: bool,
        /// This machine's copy of the runs' workspace (a clone of the same
        /// repository): the runs it executes work here, whatever path they
        /// were started in. Default: the path each run was started in.
        #[arg(long, value_name = "DIR")]
        workspace: Option<PathBuf>,
        /// Take only the step runs of spread runs (`--spread`) of these
        /// agent modes, `shell` for shell steps (comma-separated), and the
        /// scheduling of spread runs; no whole runs. Default: every run.
        #[arg(long, value_delimiter = ',', value_name = "MODE,…")]
        modes: Option<Vec<String>>,
    },
    /// Serve MCP on standard input and output: an MCP client (Claude Code,
    /// Codex, an IDE) starts workflows, follows runs and answers what they
    /// wait for. `lev mcp install claude|codex` says how to add it.
    Mcp {
        /// Serve streamable HTTP on this loopback address instead
        /// (`127.0.0.1:8765`; port 0 picks one), each request carrying
        /// `Authorization: Bearer <token>` — `LEV_MCP_TOKEN`, else one lev
        /// makes and prints.
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
        #[command(subcommand)]
        command: Option<McpCommand>,
    },
    /// Cancel a run: running steps are stopped, the run ends cancelled.
    Cancel {
        run: String,
        /// Cancel only this running step; the rest of the run goes on.
        #[arg(long, value_name = "STEP")]
        step: Option<String>,
    },
    /// Pause a run another lev process is executing: no new step starts and
    /// agents hold before their next LLM request (running shell steps go on).
    Pause {
        run: String,
        /// Pause only this running agent step.
        #[arg(long, value_name = "STEP")]
        step: Option<String>,
    },
    /// Lift a pause of a live run (`lev resume` is for runs no process executes).
    Unpause {
        run: String,
        /// Unpause only this agent step.
        #[arg(long, value_name = "STEP")]
        step: Option<String>,
    },
    /// For an agent CLI's hooks, inside a `pty` step: tells the lev running
    /// it what the agent is doing (`needs-input`, `needs-approval`,
    /// `working`, `stop`) and its session id. With no STATE, reads the
    /// hook's JSON payload (Claude Code's and gemini-cli's on standard
    /// input, Codex's `notify` as the argument) and takes both from it.
    /// Reaches lev through `LEV_HOOK_SOCKET`, `LEV_RUN` and `LEV_STEP`,
    /// which lev sets for the step's program.
    Hook {
        /// needs-input | needs-approval | working | stop | session, or a
        /// JSON payload.
        state: Option<String>,
        /// The agent CLI's session id.
        #[arg(long)]
        session: Option<String>,
        /// What it asks or wants approved.
        #[arg(long)]
        message: Option<String>,
        /// With `needs-approval`: wait for the user's decision in lev and
        /// print `allow` (exit 0) or `deny` (exit 2). A Claude Code
        /// `PermissionRequest` payload always waits, and gets Claude Code's
        /// JSON answer.
        #[arg(long)]
        wait: bool,
    },
    /// Open a program in a pane of a live run (beside its steps, as step
    /// `adhoc-N`; the run's end stops it): `lev spawn RUN htop`.
    Spawn {
        run: String,
        command: String,
        /// The program's arguments (after `--` when they start with `-`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Send a message to a running agent; it reads it before its next LLM request.
    Message {
        run: String,
        step: String,
        text: String,
    },
    /// Answer a question a live run waits for (its id as `lev show` or the
    /// transcript names it: `? ID: …`); your answer wins over one FlowMind
    /// proposed while its grace period runs.
    Answer {
        run: String,
        question: String,
        answer: String,
    },
    /// Emergency stop: every running step of a live run is stopped now; the
    /// run ends paused and `lev resume` continues it.
    Stop { run: String },
    /// Stop the system's initiative in a run: no new follow-up is spawned
    /// and no new system question is asked from now on, while running steps
    /// finish. Durable: a resumed run keeps it.
    StopCallbacks { run: String },
    /// The memory bank: what agents stored for later agents and runs.
    Memory {
        #[command(subcommand)]
        command: MemoryCommand,
    },
    /// FlowMind's whisper scores: how often you accepted, edited or
    /// dismissed each category of what it raised, across runs (mostly
    /// dismissed categories are raised less; never safety-critical ones).
    Whispers {
        /// Forget the scores (of one category, or all): start learning anew.
        #[arg(long)]
        reset: bool,
        /// With --reset: only this category.
        category: Option<String>,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Plan an objective with the orchestrator, review the plan, and run it
    /// with a swarm of agents: `lev workflow "implement auth system"`.
    Workflow {
        /// What the swarm should achieve.
        objective: String,
        /// Agent slots working at once (each slot is a pane).
        #[arg(long, default_value_t = 4, value_name = "N")]
        agents: u32,
        /// Most tasks the plan may have.
        #[arg(long, value_name = "N")]
        max_tasks: Option<u32>,
        /// Token budget for the whole swarm.
        #[arg(long, value_name = "TOKENS")]
        max_tokens: Option<u64>,
        /// Cost budget for the whole swarm, in US dollars.
        #[arg(long, value_name = "USD")]
        max_cost: Option<f64>,
        /// Each task whose mode can write files works in its own git
        /// worktree and branch; `lev worktrees RUN` merges or discards them.
        #[arg(long)]
        worktrees: bool,
        /// With --worktrees: the branch the worktrees start from (default:
        /// the one checked out).
        #[arg(long, value_name = "BRANCH", requires = "worktrees")]
        base: Option<String>,
        /// Submit the swarm to the `lev worker`s of a PostgreSQL journal
        /// (`--journal`) and return at once, printing its id.
        #[arg(long, conflicts_with_all = ["headless", "json", "answers", "wait_for_answers"])]
        detach: bool,
        /// Share the run's tasks among the `lev worker`s of
        /// a PostgreSQL journal (`--journal`): each becomes a step run that
        /// any worker whose `--modes` take it executes; this run's process
        /// schedules them.
        #[arg(long)]
        spread: bool,
        /// With --worktrees: push each task's branch to this git remote (a
        /// name or URL) when the task ends, so `lev worktrees RUN` diffs and
        /// merges it on any machine.
        #[arg(long, value_name = "REMOTE", requires = "worktrees")]
        push_to: Option<String>,
        #[command(flatten)]
        drive: DriveArgs,
    },
    /// Run the demo workflow with the scripted provider (no key, no network).
    Demo {
        #[command(flatten)]
        drive: DriveArgs,
    },
    /// List the agent modes lev uses here (built-in, or overridden by the
    /// user's or the project's mode folder).
    Modes {
        /// Print one JSON object per mode instead of a table.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<ModesAction>,
    },
    /// A run's git worktrees (steps with `workspace: { worktree: true }`,
    /// tasks of `lev workflow --worktrees`): each step's branch, path and
    /// diff size; or one step's diff, merged into its base, or discarded.
    Worktrees {
        run: String,
        /// Print the step's diff against its merge-base (uncommitted work included).
        #[arg(long, value_name = "STEP", group = "action")]
        diff: Option<String>,
        /// Merge the step's branch into its base branch (git merge --no-ff)
        /// in the main worktree.
        #[arg(long, value_name = "STEP", group = "action")]
        merge: Option<String>,
        /// Remove the step's worktree and delete its branch.
        #[arg(long, value_name = "STEP", group = "action")]
        discard: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Workflow templates made from runs.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Print how to add `lev mcp` to an MCP client, with this lev's path
    /// and data directory.
    Install {
        #[arg(value_enum)]
        client: McpClient,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum McpClient {
    /// Claude Code (`claude mcp add`).
    Claude,
    /// Codex (`~/.codex/config.toml`).
    Codex,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Write a swarm run's accepted plan, or the workflow any succeeded run
    /// was pinned to, as a workflow file that `lev validate` accepts and
    /// `lev run` runs.
    Save {
        run: String,
        /// Template name; it also makes the file name and the workflow id.
        name: String,
        /// Folder to write to (default: workflows/ under the current directory).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModesAction {
    /// Print one mode as lev resolved it: role prompt, tools, permissions,
    /// limits, model, and the file it came from.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// List entries by namespace and key.
    Ls {
        /// global, project (this directory's), project:<PATH> or run:<RUN-ID>.
        #[arg(long, short = 'n', value_name = "NAMESPACE")]
        namespace: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Ranked search over text and tags (every namespace unless one is named).
    Search {
        /// Words to look for; none lists the newest entries (with --tag).
        query: Vec<String>,
        /// Only entries with this tag, repeatable.
        #[arg(long = "tag", short = 't', value_name = "TAG")]
        tags: Vec<String>,
        /// global, project (this directory's), project:<PATH> or run:<RUN-ID>.
        #[arg(long, short = 'n', value_name = "NAMESPACE")]
        namespace: Option<String>,
        /// Most results.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Delete an entry.
    Rm {
        key: String,
        /// Needed when the key exists in several namespaces.
        #[arg(long, short = 'n', value_name = "NAMESPACE")]
        namespace: Option<String>,
    },
}

#[derive(Debug, Args, Clone)]
pub struct DriveArgs {
    /// Run without the workbench, printing one line per event.
    #[arg(long)]
    pub headless: bool,
    /// With --headless: print JSONL events instead of text.
    #[arg(long)]
    pub json: bool,
    /// Approve approval gates without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Let agents run any shell command without asking.
    #[arg(long)]
    pub allow_shell: bool,
    /// Answer a question up front, repeatable: --answer token_store=db.
    #[arg(long = "answer", value_name = "ID=VALUE")]
    pub answers: Vec<String>,
    /// With --headless: questions and approvals not answered up front wait
    /// for an answer from `lev answer` or an MCP client (`lev mcp`), until
    /// their own timeout, instead of failing at once.
    #[arg(long)]
    pub wait_for_answers: bool,
    /// Root for agents' file tools and shell steps (default: current directory).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

impl DriveArgs {
    /// No flags: the workbench, asking for everything (the runs browser,
    /// replay).
    pub fn interactive() -> DriveArgs {
        DriveArgs {
            headless: false,
            json: false,
            yes: false,
            allow_shell: false,
            answers: Vec::new(),
            wait_for_answers: false,
            workspace: None,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InFlightArg {
    /// Run the step again.
    Rerun,
    /// Skip the step.
    Skip,
    /// Treat the step as done.
    Done,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// Everything (meta, events, blobs); `lev import` reads it back.
    Jsonl,
    /// A readable transcript.
    Md,
}
