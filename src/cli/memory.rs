//! `lev memory ls | search | rm`: the memory bank from the command line,
//! directly or (while a run executes) through the host's control socket.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use serde_json::json;

use super::access::Access;
use super::args::MemoryCommand;
use super::context::error;
use super::exit;
use crate::engine::Done;
use crate::journal::MemoryRecord;
use crate::memory::{self, Namespace};
use crate::paths::Paths;
use crate::protocol::{Millis, Op};
use crate::text::one_line;

pub async fn run(paths: &Paths, command: MemoryCommand) -> u8 {
    match command {
        MemoryCommand::Ls { namespace, json } => ls(paths, namespace.as_deref(), json).await,
        MemoryCommand::Search {
            query,
            tags,
            namespace,
            limit,
            json,
        } => {
            let query = memory::Query {
                text: query.join(" "),
                tags,
                namespaces: None,
                limit,
            };
            search(paths, query, namespace.as_deref(), json).await
        }
        MemoryCommand::Rm { key, namespace } => rm(paths, &key, namespace.as_deref()).await,
    }
}

/// The stored key of `--namespace`, printing the problem when it is invalid.
fn namespace_key(given: Option<&str>) -> Result<Option<String>, u8> {
    let Some(text) = given else {
        return Ok(None);
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    Namespace::parse_cli(text, &cwd)
        .map(|n| Some(n.key()))
        .map_err(|e| {
            error(&e);
            exit::USAGE
        })
}

fn record_json(r: &MemoryRecord) -> serde_json::Value {
    json!({
        "namespace": r.namespace, "scope": memory::label(&r.namespace), "key": r.key,
        "text": r.text, "tags": r.tags, "author": r.author,
        "created_ms": r.created_ms, "updated_ms": r.updated_ms,
    })
}

fn tags_note(r: &MemoryRecord) -> String {
    if r.tags.is_empty() {
        String::new()
    } else {
        format!("  [{}]", r.tags.join(", "))
    }
}

async fn ls(paths: &Paths, namespace: Option<&str>, json: bool) -> u8 {
    let namespaces = match namespace_key(namespace) {
        Ok(n) => n.map(|k| vec![k]),
        Err(c) => return c,
    };
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let entries = match access.memory_list(namespaces).await {
        Ok(e) => e,
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    if json {
        for r in &entries {
            println!("{}", record_json(r));
        }
        return exit::OK;
    }
    if entries.is_empty() {
        println!(
            "no memories{} — agents store them with the memory_store tool",
            namespace.map(|n| format!(" in {n}")).unwrap_or_default()
        );
        return exit::OK;
    }
    let mut current: Option<&str> = None;
    for r in &entries {
        if current != Some(r.namespace.as_str()) {
            let n = entries
                .iter()
                .filter(|e| e.namespace == r.namespace)
                .count();
            if current.is_some() {
                println!();
            }
            println!("{} ({n})", r.namespace);
            current = Some(&r.namespace);
        }
        println!(
            "  {}  {}{}  {}",
            r.key,
            Millis(r.updated_ms).utc(),
            tags_note(r),
            one_line(&r.text, 100)
        );
    }
    exit::OK
}

async fn search(
    paths: &Paths,
    mut query: memory::Query,
    namespace: Option<&str>,
    json: bool,
) -> u8 {
    query.namespaces = match namespace_key(namespace) {
        Ok(n) => n.map(|k| vec![k]),
        Err(c) => return c,
    };
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let hits = match access.memory_search(&query).await {
        Ok(h) => h,
        Err(e) => {
            error(&e);
            return exit::FAILED;
        }
    };
    if json {
        for h in &hits {
            let mut v = record_json(&h.entry);
            v["score"] = json!(h.score);
            println!("{v}");
        }
        return exit::OK;
    }
    if hits.is_empty() {
        println!("no memories match \"{}\"", query.text);
        return exit::OK;
    }
    for (i, h) in hits.iter().enumerate() {
        let r = &h.entry;
        let score = if query.text.trim().is_empty() {
            String::new()
        } else {
            format!("  score {:.2}", h.score)
        };
        println!(
            "{}. {}  {}{score}{}",
            i + 1,
            r.namespace,
            r.key,
            tags_note(r)
        );
        println!("   {}", one_line(&r.text, 200));
    }
    exit::OK
}

async fn rm(paths: &Paths, key: &str, namespace: Option<&str>) -> u8 {
    let given = match namespace_key(namespace) {
        Ok(n) => n,
        Err(c) => return c,
    };
    let mut access = match Access::open(paths).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let target = match given {
        Some(ns) => ns,
        None => {
            let all = match access.memory_list(None).await {
                Ok(e) => e,
                Err(e) => {
                    error(&e);
                    return exit::FAILED;
                }
            };
            let mut holders: Vec<String> = all
                .into_iter()
                .filter(|r| r.key == key)
                .map(|r| r.namespace)
                .collect();
            match holders.len() {
                0 => {
                    error(&format!("no memory `{key}` (see `lev memory ls`)"));
                    return exit::USAGE;
                }
                1 => holders.remove(0),
                _ => {
                    error(&format!(
                        "memory `{key}` is in several namespaces: {}; say which with --namespace",
                        holders.join(", ")
                    ));
                    return exit::USAGE;
                }
            }
        }
    };
    let op = Op::ForgetMemory {
        namespace: target.clone(),
        key: key.to_string(),
    };
    match access.submit(op).await {
        Ok(Done::Forgot { entry: Some(_) }) => {
            println!("removed memory `{key}` from {target}");
            exit::OK
        }
        Ok(Done::Forgot { entry: None }) => {
            error(&format!("no memory `{key}` in {target}"));
            exit::USAGE
        }
        Ok(other) => {
            error(&format!("unexpected answer: {}", other.describe()));
            exit::FAILED
        }
        Err(e) => {
            error(&e);
            exit::FAILED
        }
    }
}
