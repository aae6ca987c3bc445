//! Reading a plan's shape from a tree: the orchestrator's JSON or the review
//! textarea's YAML. One walker serves both through `Tree`, so both report
//! the same problems in the same words; YAML problems also carry `line:col`.

use serde_json::Value;

use crate::spec::yaml::{Node, NodeValue};

use super::{Plan, Problems, Task, shown};

/// A position in the text: `(line, col)`, 1-based.
type Pos = (u32, u32);

/// What a node holds, borrowed from the tree.
pub(super) enum Shape<'a, T: ?Sized> {
    Null,
    Bool(bool),
    Number(String),
    Str(&'a str),
    List(Vec<&'a T>),
    /// Keys in document order, each with its position when known.
    Map(Vec<(&'a str, Option<Pos>, &'a T)>),
}

/// A document tree a plan can be read from.
pub(super) trait Tree {
    /// How a mapping is called in this format's messages.
    const OBJECT: &'static str;
    fn shape(&self) -> Shape<'_, Self>;
    /// `(line, col)` when the format knows positions.
    fn pos(&self) -> Option<(u32, u32)>;
}

impl Tree for Value {
    const OBJECT: &'static str = "an object";

    fn shape(&self) -> Shape<'_, Value> {
        match self {
            Value::Null => Shape::Null,
            Value::Bool(b) => Shape::Bool(*b),
            Value::Number(n) => Shape::Number(n.to_string()),
            Value::String(s) => Shape::Str(s),
            Value::Array(items) => Shape::List(items.iter().collect()),
            Value::Object(map) => {
                Shape::Map(map.iter().map(|(k, v)| (k.as_str(), None, v)).collect())
            }
        }
    }

    fn pos(&self) -> Option<(u32, u32)> {
        None
    }
}

impl Tree for Node {
    const OBJECT: &'static str = "a mapping";

    fn shape(&self) -> Shape<'_, Node> {
        match &self.value {
            NodeValue::Null => Shape::Null,
            NodeValue::Bool(b) => Shape::Bool(*b),
            NodeValue::Int(i) => Shape::Number(i.to_string()),
            NodeValue::Float(f) => Shape::Number(f.to_string()),
            NodeValue::Str(s) => Shape::Str(s),
            NodeValue::Seq(items) => Shape::List(items.iter().collect()),
            NodeValue::Map(entries) => Shape::Map(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.as_str(), Some((k.line, k.col)), v))
                    .collect(),
            ),
        }
    }

    fn pos(&self) -> Option<(u32, u32)> {
        (self.line > 0).then_some((self.line, self.col))
    }
}

const PLAN_FIELDS: &[&str] = &["summary", "tasks"];
const TASK_FIELDS: &[&str] = &[
    "id",
    "title",
    "mode",
    "needs",
    "acceptance",
    "files",
    "model",
];

/// The plan in `root`, or every shape problem (capped).
pub(super) fn read<T: Tree>(root: &T) -> Result<Plan, Vec<String>> {
    let mut r = Reader::default();
    let plan = r.plan(root);
    match plan {
        Some(plan) if r.problems.is_empty() => Ok(plan),
        _ => Err(r.problems.finish()),
    }
}

#[derive(Default)]
struct Reader {
    problems: Problems,
}

/// `3:7: ` for positioned formats, nothing otherwise.
fn prefix(pos: Option<(u32, u32)>) -> String {
    pos.map(|(l, c)| format!("{l}:{c}: ")).unwrap_or_default()
}

/// What was found, for "expected X, found Y": scalars as written.
fn found<T: Tree>(node: &T) -> String {
    match node.shape() {
        Shape::Null => "null".to_string(),
        Shape::Bool(b) => b.to_string(),
        Shape::Number(n) => shown(&n),
        Shape::Str(s) => format!("{:?}", shown(s)),
        Shape::List(_) => "a list".to_string(),
        Shape::Map(_) => T::OBJECT.to_string(),
    }
}

impl Reader {
    fn report(&mut self, pos: Option<(u32, u32)>, path: &str, message: impl FnOnce() -> String) {
        self.problems
            .add(|| format!("{}{path}: {}", prefix(pos), message()));
    }

    fn wrong<T: Tree>(&mut self, node: &T, path: &str, expected: &str) {
        self.report(node.pos(), path, || {
            format!("expected {expected}, found {}", found(node))
        });
    }

    /// The mapping's fields; unknown keys (not `x-`) are problems.
    fn fields<'a, T: Tree>(
        &mut self,
        node: &'a T,
        path: &str,
        expected: &str,
        known: &[&str],
    ) -> Option<Vec<(&'a str, &'a T)>> {
        let Shape::Map(entries) = node.shape() else {
            self.wrong(node, path, expected);
            return None;
        };
        let mut out = Vec::with_capacity(entries.len());
        for (key, pos, value) in entries {
            if known.contains(&key) {
                out.push((key, value));
            } else if !key.starts_with("x-") {
                let at = join(path, key);
                let hint = crate::spec::load::cx::closest(key, known)
                    .map(|k| format!("did you mean `{k}`?"))
                    .unwrap_or_else(|| format!("known: {}", known.join(", ")));
                self.report(pos.or(node.pos()), &shown(&at), || {
                    format!("unknown field ({hint})")
                });
            }
        }
        Some(out)
    }

    fn plan<T: Tree>(&mut self, root: &T) -> Option<Plan> {
        let fields = self.fields(
            root,
            "plan",
            &format!("{} with `summary` and `tasks`", T::OBJECT),
            PLAN_FIELDS,
        )?;
        let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let summary = match get("summary") {
            None => Some(String::new()),
            Some(n) if matches!(n.shape(), Shape::Null) => Some(String::new()),
            Some(n) => self.string(n, "summary"),
        };
        let tasks = match get("tasks") {
            None => {
                self.report(root.pos(), "tasks", || {
                    "missing; expected a list of tasks".to_string()
                });
                None
            }
            Some(n) => match n.shape() {
                Shape::List(items) => {
                    let mut tasks = Vec::with_capacity(items.len());
                    for (i, item) in items.into_iter().enumerate() {
                        if let Some(t) = self.task(item, &format!("tasks[{i}]")) {
                            tasks.push(t);
                        }
                    }
                    Some(tasks)
                }
                _ => {
                    self.wrong(n, "tasks", "a list of tasks");
                    None
                }
            },
        };
        Some(Plan {
            summary: summary?,
            tasks: tasks?,
        })
    }

    fn task<T: Tree>(&mut self, node: &T, path: &str) -> Option<Task> {
        let expected = format!("{} (a task)", T::OBJECT);
        let fields = self.fields(node, path, &expected, TASK_FIELDS)?;
        let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let required = |r: &mut Reader, name: &str| match get(name) {
            Some(n) => r.string(n, &join(path, name)),
            None => {
                r.report(node.pos(), &join(path, name), || "missing".to_string());
                None
            }
        };
        let id = required(self, "id");
        let title = required(self, "title");
        let mode = required(self, "mode");
        let needs = self.strings(get("needs"), &join(path, "needs"));
        let acceptance = self.strings(get("acceptance"), &join(path, "acceptance"));
        let files = self.strings(get("files"), &join(path, "files"));
        let model = match get("model") {
            None => Some(None),
            Some(n) if matches!(n.shape(), Shape::Null) => Some(None),
            Some(n) => self.string(n, &join(path, "model")).map(Some),
        };
        Some(Task {
            id: id?,
            title: title?,
            mode: mode?,
            needs: needs?,
            acceptance: acceptance?,
            files: files?,
            model: model?,
        })
    }

    fn string<T: Tree>(&mut self, node: &T, path: &str) -> Option<String> {
        match node.shape() {
            Shape::Str(s) => Some(s.to_string()),
            _ => {
                self.wrong(node, path, "a string");
                None
            }
        }
    }

    /// A list of strings; absent or `null` is empty. Every bad item is reported.
    fn strings<T: Tree>(&mut self, node: Option<&T>, path: &str) -> Option<Vec<String>> {
        let Some(node) = node else {
            return Some(Vec::new());
        };
        match node.shape() {
            Shape::Null => Some(Vec::new()),
            Shape::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.into_iter().enumerate() {
                    match self.string(item, &format!("{path}[{i}]")) {
                        Some(s) => out.push(s),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            _ => {
                self.wrong(node, path, "a list of strings");
                None
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path == "plan" {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
