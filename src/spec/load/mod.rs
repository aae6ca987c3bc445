//! Workflow loading: YAML → spanned tree → checks → `Workflow`.
//!
//! Every problem is collected as a `Diagnostic` (file, line, column, dotted
//! path, expected/found, hint) and reported together, sorted by position.
//! Child workflows (`uses:`) load relative to the parent's folder through a
//! caller-supplied reader, so a pinned run can be re-loaded from stored texts.
//!
//! Rules worth knowing (the format itself is docs/workflows.md):
//! - A step's `type` is required unless `mode:` is set (then `agent`). Keys
//!   of another step type are errors; unknown keys are errors unless `x-`.
//! - Implicit outputs: agent `text`, `json`; shell `stdout`, `stderr`,
//!   `exit_code`; approval `approved`, `comment`; question `answer`; pty
//!   `text`, `exit_code`; workflow: the child's `outputs`. `outputs:` adds
//!   names (`plan: json.plan` or `{from: json.plan, default: []}`); `from`
//!   must start with an implicit output.
//! - `${{ steps.X.outputs.Y }}` needs X upstream (transitively via `needs`);
//!   a step reads its own outputs only inside `followups`; `item` only in
//!   `followups.spawn`; workflow `outputs` may read any step.
//! - `defaults.retry` is merged field by field under a step's `retry`;
//!   `followups.max` defaults to (and may not exceed) `limits.max_followups`.
//! - `if:` takes `${{ expr }}`, a bare expression or a boolean.
//! - Hostile input: files over 4 MiB are refused unread; nesting over 64,
//!   alias bombs and invalid UTF-8 are clear errors; at most 500 diagnostics
//!   per file; child workflows nest at most `MAX_CHILD_DEPTH` deep.

use std::path::{Component, Path, PathBuf};

use super::diagnostics::{Diagnostic, Severity};
use super::model::Limits;
use super::yaml::{self, Node};
use super::{Diagnostics, ModeRegistry, Workflow};

mod check;
pub(crate) mod cx;
pub mod duration;
mod env;
mod outputs;
mod retry;
pub(crate) mod step;
pub(crate) mod workflow;

use cx::{Cx, join};

/// How deep child workflows may nest (`a` uses `b` uses `c` ...).
pub const MAX_CHILD_DEPTH: usize = 8;

/// Reads and validates a workflow file. Child workflows (`uses:`) load
/// relative to its folder.
pub fn load_workflow(path: &Path, modes: &ModeRegistry) -> Result<Workflow, Diagnostics> {
    let text = read_text(path).map_err(|d| Diagnostics(vec![*d]))?;
    load_workflow_str(path, &text, modes)
}

/// Validates workflow text; `path` is used for messages and `uses:` paths.
pub fn load_workflow_str(
    path: &Path,
    text: &str,
    modes: &ModeRegistry,
) -> Result<Workflow, Diagnostics> {
    load_workflow_with(path, text, modes, &|p: &Path| {
        read_text(p).map_err(|d| std::io::Error::other(d.message))
    })
}

/// Like `load_workflow_str`, with child workflow texts from `read_child`
/// (the engine passes stored texts to re-load a pinned run).
pub fn load_workflow_with(
    path: &Path,
    text: &str,
    modes: &ModeRegistry,
    read_child: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Workflow, Diagnostics> {
    let mut loader = Loader {
        modes,
        read_child,
        stack: vec![normalize(path)],
        child_diags: Vec::new(),
    };
    let (wf, mut diags) = loader.load_one(path, text);
    diags.append(&mut loader.child_diags);
    let diags = Diagnostics(diags);
    match wf {
        Some(wf) if !diags.has_errors() => Ok(wf),
        _ => Err(diags),
    }
}

/// Every problem in a workflow file, warnings included (what `lev validate`
/// prints); empty when the file is clean. `load_workflow` drops warnings
/// when there are no errors.
pub fn validate_workflow(path: &Path, modes: &ModeRegistry) -> Diagnostics {
    let text = match read_text(path) {
        Ok(t) => t,
        Err(d) => return Diagnostics(vec![*d]),
    };
    let read_child = |p: &Path| read_text(p).map_err(|d| std::io::Error::other(d.message));
    let mut loader = Loader {
        modes,
        read_child: &read_child,
        stack: vec![normalize(path)],
        child_diags: Vec::new(),
    };
    let (_, mut diags) = loader.load_one(path, &text);
    diags.append(&mut loader.child_diags);
    Diagnostics(diags)
}

/// Reads a file as UTF-8, refusing huge files before reading them.
pub(crate) fn read_text(path: &Path) -> Result<String, Box<Diagnostic>> {
    let file = path.display().to_string();
    let fail = |message: String| Diagnostic {
        severity: Severity::Error,
        message,
        file: file.clone(),
        line: 0,
        col: 0,
        path: String::new(),
        expected: None,
        found: None,
        hint: None,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read `{file}`: {e}")))?;
    // A FIFO or device would block the read forever (or never end).
    if !meta.is_file() {
        return Err(Box::new(fail(format!(
            "cannot read `{file}`: not a regular file"
        ))));
    }
    if meta.len() > yaml::MAX_FILE_BYTES as u64 {
        let mut d = fail(format!(
            "file is too large: {} bytes (the limit is {} bytes)",
            meta.len(),
            yaml::MAX_FILE_BYTES
        ));
        d.hint = Some("workflow and mode files are small; check it is the right file".to_string());
        return Err(Box::new(d));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read `{file}`: {e}")))?;
    // `yaml::parse` reports size and UTF-8 problems with positions.
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => Err(yaml::parse(&file, e.as_bytes())
            .err()
            .unwrap_or_else(|| Box::new(fail("file is not valid UTF-8".to_string())))),
    }
}

/// Lexically resolves `.` and `..` so `a/../b.yaml` and `b.yaml` compare
/// equal for cycle detection (children may be stored texts, not files).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

struct Loader<'a> {
    modes: &'a ModeRegistry,
    read_child: &'a dyn Fn(&Path) -> std::io::Result<String>,
    /// Files being loaded, outermost first (for cycles and depth).
    stack: Vec<PathBuf>,
    /// Diagnostics from child files, in load order.
    child_diags: Vec<Diagnostic>,
}

impl Loader<'_> {
    /// Loads one file; its own diagnostics come back sorted by position.
    fn load_one(&mut self, path: &Path, text: &str) -> (Option<Workflow>, Vec<Diagnostic>) {
        let file = path.display().to_string();
        let root = match yaml::parse_str(&file, text) {
            Ok(r) => r,
            Err(d) => return (None, vec![*d]),
        };
        let mut cx = Cx::new(file, text);
        let wf = self.build(&mut cx, path, &root);
        let mut diags = cx.diags;
        diags.sort_by_key(|a| (a.line, a.col));
        (wf, diags)
    }

    fn build(&mut self, cx: &mut Cx<'_>, path: &Path, root: &Node) -> Option<Workflow> {
        let f = cx.map(root, "", workflow::TOP_KEYS)?;
        let (id, name, description) = workflow::envelope(cx, root, "workflow");
        let inputs = f
            .get("inputs")
            .map(|n| workflow::inputs(cx, n))
            .unwrap_or_default();
        let defaults = f
            .get("defaults")
            .map(|n| workflow::defaults(cx, n))
            .unwrap_or_default();
        let limits = f
            .get("limits")
            .map(|n| workflow::limits(cx, n))
            .unwrap_or_else(Limits::default);
        let whisper = f
            .get("whisper")
            .map(|n| workflow::whisper(cx, n))
            .unwrap_or_default();
        let followups = f
            .get("followups")
            .map(|n| workflow::followup_policy(cx, n, self.modes))
            .unwrap_or_default();
        let flowmind = f
            .get("flowmind")
            .and_then(|n| workflow::flowmind(cx, n))
            .map(Box::new);

        let mut steps = Vec::new();
        let mut infos = Vec::new();
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mcp_servers = f
            .get("mcp_servers")
            .map(|n| workflow::mcp_servers(cx, n, &base))
            .unwrap_or_default();
        let modes = self.modes;
        let mut load_child = |cx: &mut Cx<'_>, node: &Node, uses: &str, at: &str| {
            self.load_child(cx, node, &base, uses, at)
        };
        let mut env = env::Env {
            defaults: &defaults,
            limits: &limits,
            modes,
            sites: Vec::new(),
            load_child: &mut load_child,
        };
        match f.get("steps") {
            Some(sn) => match sn.as_map() {
                Some(entries) if !entries.is_empty() => {
                    for (k, v) in entries {
                        if !workflow::valid_id(&k.name) {
                            cx.error(
                                k.line,
                                k.col,
                                &join("steps", &k.name),
                                format!("invalid step id `{}`", k.name),
                            )
                            .hint = Some(
                                "use letters, digits, `-` and `_`, starting with a letter"
                                    .to_string(),
                            );
                            continue;
                        }
                        let (s, info) = step::build_step(cx, k, v, &mut env);
                        infos.push(info);
                        if let Some(s) = s {
                            steps.push(s);
                        }
                    }
                }
                Some(_) => {
                    cx.at(sn, "steps", "`steps` is empty").hint =
                        Some("add at least one step".to_string());
                }
                None => cx.type_error(sn, "steps", "a mapping of step ids to steps"),
            },
            None => {
                cx.error(root.line, root.col, "steps", "missing `steps`")
                    .hint = Some("a workflow needs at least one step".to_string());
            }
        }
        let mut sites = std::mem::take(&mut env.sites);

        let mut outputs = std::collections::BTreeMap::new();
        if let Some(on) = f.get("outputs") {
            match on.as_map() {
                Some(entries) => {
                    for (k, v) in entries {
                        let p = join("outputs", &k.name);
                        if let Some(t) = cx.template(v, &p) {
                            sites.push(env::Site {
                                template: t.clone(),
                                line: v.line,
                                col: v.col,
                                offset: v.offset,
                                path: p,
                                owner: None,
                                in_followups: false,
                                item_ok: false,
                            });
                            outputs.insert(k.name.clone(), t);
                        }
                    }
                }
                None => cx.type_error(on, "outputs", "a mapping of output names to templates"),
            }
        }

        check::needs(cx, &infos);
        check::cycles(cx, &infos);
        check::references(cx, &infos, &sites, &inputs, &whisper);

        let id = id?;
        Some(Workflow {
            name: name.unwrap_or_else(|| id.clone()),
            id,
            description,
            inputs,
            limits,
            whisper,
            steps,
            outputs,
            followups,
            flowmind,
            mcp_servers,
            source_path: path.to_path_buf(),
            source_text: cx.text.to_string(),
        })
    }

    fn load_child(
        &mut self,
        cx: &mut Cx<'_>,
        node: &Node,
        base: &Path,
        uses: &str,
        at: &str,
    ) -> Option<Workflow> {
        let child_path = base.join(uses);
        let key = normalize(&child_path);
        if let Some(pos) = self.stack.iter().position(|p| *p == key) {
            let mut chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            chain.push(key.display().to_string());
            let d = cx.at(
                node,
                at,
                format!("child workflows form a cycle: {}", chain.join(" -> ")),
            );
            d.hint =
                Some("a workflow cannot use itself, directly or through its children".to_string());
            return None;
        }
        if self.stack.len() >= MAX_CHILD_DEPTH {
            let d = cx.at(
                node,
                at,
                format!("child workflows nest more than {MAX_CHILD_DEPTH} deep"),
            );
            d.hint = Some("flatten the workflow".to_string());
            return None;
        }
        let text = match (self.read_child)(&child_path) {
            Ok(t) => t,
            Err(e) => {
                let d = cx.at(
                    node,
                    at,
                    format!("cannot read child workflow `{}`: {e}", child_path.display()),
                );
                d.hint =
                    Some("`uses:` is relative to the folder of the file that uses it".to_string());
                return None;
            }
        };
        self.stack.push(key);
        // Grandchildren report into `child_diags` while the child loads;
        // the child's own problems go before theirs.
        let mark = self.child_diags.len();
        let (wf, diags) = self.load_one(&child_path, &text);
        self.stack.pop();
        let failed = wf.is_none() || diags.iter().any(|d| d.severity == Severity::Error);
        self.child_diags.splice(mark..mark, diags);
        if failed {
            cx.at(
                node,
                at,
                format!("child workflow `{}` has errors", child_path.display()),
            )
            .hint = Some("see the errors reported for that file".to_string());
            return None;
        }
        wf
    }
}
