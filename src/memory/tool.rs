//! The agent tools `memory_store` and `memory_search`: arguments in, text
//! for the model out. The engine journals each call's result, so a resumed
//! run reuses it and never stores or searches twice.

use std::path::PathBuf;

use serde::Deserialize;

use super::{DEFAULT_LIMIT, Hit, Namespace, NewEntry, Query, label};
use crate::journal::{Journal, MemoryAuthor};
use crate::protocol::Millis;
use crate::tools::ToolOutput;

/// Longest text of one hit shown to the model, in characters.
const HIT_TEXT_CHARS: usize = 2000;

/// Who is calling: the namespaces an agent sees and the author it records.
#[derive(Debug, Clone)]
pub struct Caller {
    pub run: String,
    pub step: String,
    pub mode: String,
    /// Canonical workspace root: the project namespace.
    pub workspace: PathBuf,
    /// The time to record on stored entries.
    pub now: Millis,
}

impl Caller {
    /// `run`, `project` or `global` as this caller's namespace.
    fn namespace(&self, word: &str) -> Result<Namespace, String> {
        match word.trim() {
            "run" => Ok(Namespace::Run(self.run.clone())),
            "project" => Ok(Namespace::project(&self.workspace)),
            "global" => Ok(Namespace::Global),
            other => Err(format!(
                "unknown namespace `{other}`; use run, project or global"
            )),
        }
    }

    /// What a search without a namespace covers.
    fn visible(&self) -> Vec<String> {
        vec![
            Namespace::Run(self.run.clone()).key(),
            Namespace::project(&self.workspace).key(),
            Namespace::Global.key(),
        ]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreArgs {
    key: Option<String>,
    text: String,
    #[serde(default)]
    tags: Vec<String>,
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    #[serde(default)]
    tags: Vec<String>,
    namespace: Option<String>,
    limit: Option<usize>,
}

fn error(content: String) -> ToolOutput {
    ToolOutput {
        content,
        is_error: true,
    }
}

fn parse<A: serde::de::DeserializeOwned>(tool: &str, arguments: &str) -> Result<A, ToolOutput> {
    let text = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    serde_json::from_str(text).map_err(|e| {
        error(format!(
            "invalid arguments for {tool}: {e}; send one JSON object matching the tool's parameters"
        ))
    })
}

/// `memory_store {key?, text, tags?, namespace?}`; the namespace defaults
/// to `project`, so later runs in the same workspace find the entry.
pub async fn store(journal: &Journal, caller: &Caller, arguments: &str) -> ToolOutput {
    let args: StoreArgs = match parse("memory_store", arguments) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let namespace = match caller.namespace(args.namespace.as_deref().unwrap_or("project")) {
        Ok(n) => n,
        Err(e) => return error(e),
    };
    let kind = namespace.kind();
    let entry = NewEntry {
        namespace,
        key: args.key,
        text: args.text,
        tags: args.tags,
        author: MemoryAuthor {
            run: Some(caller.run.clone()),
            step: Some(caller.step.clone()),
            mode: Some(caller.mode.clone()),
        },
        at_ms: caller.now.0,
    };
    match super::store(journal, entry).await {
        Ok((record, created)) => ToolOutput {
            content: format!(
                "{} memory `{}` in the {kind} namespace{}.",
                if created { "stored" } else { "updated" },
                record.key,
                if record.tags.is_empty() {
                    String::new()
                } else {
                    format!(" (tags: {})", record.tags.join(", "))
                }
            ),
            is_error: false,
        },
        Err(e) => error(format!("memory_store failed: {e}")),
    }
}

/// `memory_search {query, tags?, namespace?, limit?}`; without a namespace
/// it searches this run, this project and global, and says where each hit
/// is from.
pub async fn search(journal: &Journal, caller: &Caller, arguments: &str) -> ToolOutput {
    let args: SearchArgs = match parse("memory_search", arguments) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let (namespaces, scope) = match args.namespace.as_deref() {
        None => (caller.visible(), "run, project and global".to_string()),
        Some(word) => match caller.namespace(word) {
            Ok(n) => (vec![n.key()], n.kind().to_string()),
            Err(e) => return error(e),
        },
    };
    let query = Query {
        text: args.query.clone(),
        tags: args.tags,
        namespaces: Some(namespaces),
        limit: args.limit.unwrap_or(DEFAULT_LIMIT),
    };
    match super::search(journal, &query).await {
        Ok(hits) => ToolOutput {
            content: render_hits(&args.query, &query.tags, &scope, &hits),
            is_error: false,
        },
        Err(e) => error(format!("memory_search failed: {e}")),
    }
}

/// The model's view of search results.
fn render_hits(query: &str, tags: &[String], scope: &str, hits: &[Hit]) -> String {
    let tag_note = if tags.is_empty() {
        String::new()
    } else {
        format!(" with tags {}", tags.join(", "))
    };
    if hits.is_empty() {
        return format!("No memories match \"{query}\"{tag_note} in {scope}.");
    }
    let mut out = format!(
        "{} memor{} for \"{query}\"{tag_note} (searched {scope}), best first:\n",
        hits.len(),
        if hits.len() == 1 { "y" } else { "ies" }
    );
    for (i, h) in hits.iter().enumerate() {
        let e = &h.entry;
        let mut by = Vec::new();
        if let Some(m) = &e.author.mode {
            by.push(format!("mode {m}"));
        }
        if let Some(s) = &e.author.step {
            by.push(format!("step {s}"));
        }
        if let Some(r) = &e.author.run {
            by.push(format!("run {r}"));
        }
        out.push_str(&format!(
            "\n{}. [{}] key `{}`{}{}\n",
            i + 1,
            label(&e.namespace),
            e.key,
            if e.tags.is_empty() {
                String::new()
            } else {
                format!(", tags: {}", e.tags.join(", "))
            },
            if by.is_empty() {
                String::new()
            } else {
                format!(", stored by {}", by.join(", "))
            }
        ));
        let text: String = e.text.chars().take(HIT_TEXT_CHARS).collect();
        out.push_str(&text);
        if e.text.chars().count() > HIT_TEXT_CHARS {
            out.push_str(" […]");
        }
        out.push('\n');
    }
    out
}
