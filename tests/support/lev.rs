//! Running the real `lev` binary from tests: a temp data dir and workspace,
//! a controlled environment (no keys from the developer's shell), helpers to
//! read a run back through `lev show --json` and `lev export`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use super::pg::PgDb;

/// A sandbox for one lev "machine": its data dir and workspace.
pub struct Lev {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    /// With `LEV_TEST_BACKEND=postgres`, the sandbox's journal is a
    /// database of its own (`LEV_JOURNAL`): the same tests, the other
    /// backend.
    pub pg: Option<std::sync::Arc<PgDb>>,
}

impl Lev {
    pub fn new() -> Lev {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::create_dir_all(dir.path().join("ws")).unwrap();
        let pg = match std::env::var("LEV_TEST_BACKEND").as_deref() {
            Ok("postgres") => Some(std::sync::Arc::new(
                PgDb::new().expect("LEV_TEST_BACKEND=postgres needs LEV_TEST_POSTGRES"),
            )),
            Ok("redb") | Ok("") | Err(_) => None,
            Ok(other) => panic!("LEV_TEST_BACKEND={other}: redb or postgres"),
        };
        Lev {
            dir,
            env: Vec::new(),
            pg,
        }
    }

    /// True when the sandbox's journal is in PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// How `lev runs`/`show` call a run no process executes any more: on
    /// PostgreSQL it waits for a `lev worker` (or a `lev resume`).
    pub fn interrupted(&self) -> &'static str {
        if self.on_postgres() {
            "waiting"
        } else {
            "interrupted"
        }
    }

    /// Points the OpenAI provider at a loopback server.
    pub fn with_openai(mut self, base_url: &str) -> Lev {
        self.env.push(("LEV_PROVIDER".into(), "openai".into()));
        self.env.push(("OPENAI_BASE_URL".into(), base_url.into()));
        self.env
            .push(("OPENAI_API_KEY".into(), "sk-test-not-a-real-key".into()));
        self.env.push(("LEV_MODEL".into(), "test-model".into()));
        self
    }

    /// Sets a variable in lev's environment.
    pub fn with_env(mut self, name: &str, value: &str) -> Lev {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    /// A `lev` command with the sandbox's data dir and environment, run in
    /// the workspace with the repo's modes available.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lev"));
        c.args(args);
        c.arg("--data-dir").arg(self.data_dir());
        c.current_dir(self.workspace());
        for k in [
            "LEV_PROVIDER",
            "LEV_MODEL",
            "LEV_CASSETTE",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "OLLAMA_HOST",
            "LEV_DATA_DIR",
        ] {
            c.env_remove(k);
        }
        c.env("XDG_CONFIG_HOME", self.dir.path().join("config"));
        c.env_remove("LEV_JOURNAL");
        if let Some(db) = &self.pg {
            c.env("LEV_JOURNAL", &db.url);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Writes `yaml` as the sandbox's workflow file (`wf.yaml` beside the
    /// workspace) and returns its path.
    pub fn write_workflow(&self, yaml: &str) -> PathBuf {
        self.write_workflow_as("wf.yaml", yaml)
    }

    /// `write_workflow`, as `name` (for a test with several).
    pub fn write_workflow_as(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// `lev run WF --headless [extra…] --workspace WS`, to the end.
    pub fn run_headless(&self, wf: &Path, extra: &[&str]) -> Output {
        let args = self.headless_args(wf, extra);
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The same, as a child to kill or wait for.
    pub fn spawn_headless(&self, wf: &Path, extra: &[&str]) -> Child {
        let args = self.headless_args(wf, extra);
        self.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn headless_args(&self, wf: &Path, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "run".to_string(),
            wf.display().to_string(),
            "--headless".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args.push("--workspace".into());
        args.push(self.workspace().display().to_string());
        args
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `lev show RUN --json`.
    pub fn show(&self, run: &str) -> Value {
        let out = self.run(&["show", run, "--json"]);
        assert!(
            out.status.success(),
            "lev show failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The run's events, from `lev export`.
    pub fn events(&self, run: &str) -> Vec<Value> {
        let out = self.run(&["export", run]);
        assert!(
            out.status.success(),
            "lev export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| event_of(&v))
            .collect()
    }

    pub fn replay(&self, run: &str) -> String {
        let out = self.run(&["replay", run, "--headless"]);
        assert!(
            out.status.success(),
            "lev replay failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The event inside one export line, if the line is an entry, with its
/// seq added as `_seq`.
fn event_of(line: &Value) -> Option<Value> {
    let mut payload = line.get("payload")?.clone();
    payload.get("type")?;
    payload
        .as_object_mut()?
        .insert("_seq".into(), line.get("seq")?.clone());
    Some(payload)
}

/// The run id from the first line `run <id> started: ...`.
/// The events of one type (`lev export`'s JSON, as `Lev::events` gives
/// them).
pub fn of_type(events: &[Value], kind: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .cloned()
        .collect()
}

pub fn run_id_from(stdout: &str) -> Option<String> {
    let first = stdout.lines().next()?;
    let rest = first.strip_prefix("run ")?;
    rest.split_whitespace().next().map(str::to_string)
}

pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
