//! The memory bank's tools, which the engine answers from the journal
//! (`crate::memory`).

use super::{Run, Tool};

/// `memory_store`: offered to models, run by the engine against the memory bank.
pub(super) const MEMORY_STORE: Tool = Tool {
    name: "memory_store",
    description: "Remember a fact, decision or lesson for later agents and later runs (the memory \
     bank). Store one self-contained statement per call, written so it makes sense \
     without this conversation. Storing again under the same key (in the same \
     namespace) replaces the entry. Namespaces: `project` (default: this workspace, \
     every run), `run` (only this run), `global` (every project).",
    parameters: || {
        serde_json::json!({
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "What to remember, self-contained."},
                "key": {"type": "string", "description": "A short stable name, e.g. `auth-token-store`; storing under an existing key updates it. Default: derived from the text."},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "Topics for filtering, e.g. [\"auth\", \"db\"]."},
                "namespace": {"type": "string", "enum": ["project", "run", "global"], "description": "Where to keep it. Default project."}
            },
            "required": ["text"],
            "additionalProperties": false
        })
    },
    side_effects: true,
    run: Run::Engine,
};

/// `memory_search`: offered to models, run by the engine against the memory bank.
pub(super) const MEMORY_SEARCH: Tool = Tool {
    name: "memory_search",
    description: "Search the memory bank for what earlier agents and runs stored (ranked text search \
     over text and tags, best match first). Without a namespace it searches this run, \
     this project and global, and says where each hit is from. Search before deciding \
     something an earlier agent may already have settled.",
    parameters: || {
        serde_json::json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Words to look for. Empty: the newest entries (with the given tags)."},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "Only entries carrying all of these tags."},
                "namespace": {"type": "string", "enum": ["project", "run", "global"], "description": "Search only this namespace."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50, "description": "Most results. Default 5."}
            },
            "required": ["query"],
            "additionalProperties": false
        })
    },
    side_effects: false,
    run: Run::Engine,
};
