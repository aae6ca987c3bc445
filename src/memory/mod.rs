//! The memory bank: knowledge agents and users keep across steps and runs,
//! in namespaces (`run`, `project`, `global`), found again by ranked text
//! search (BM25 over text and tags) with tag filters.
//!
//! Storage is the journal's (its `memory` tables, written through its one
//! writer thread, so a stored entry is durable when `store` returns). This
//! module owns what entries mean: validation, keys, tokenizing, ranking and
//! the agent tools `memory_store` / `memory_search`.
//!
//! Search speed: the journal keeps an inverted index (term → entries, with
//! counts and lengths) updated in the same transaction as each entry, so a
//! search reads only the postings of its query terms and then the few
//! entries it returns, never every entry. With ~10k entries a query touches
//! a few thousand index rows at most.
//!
//! Must not depend on `workflow` or any participant.

mod namespace;
mod rank;
#[cfg(test)]
mod tests;
pub mod tool;

use serde::{Deserialize, Serialize};

use crate::journal::{Journal, JournalError, MemoryAuthor, MemoryRecord};

pub use namespace::{Namespace, label};
pub use rank::{entry_terms, query_terms, tokenize};

/// Longest text one entry may hold, in bytes.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;
/// Most tags one entry may carry.
pub const MAX_TAGS: usize = 16;
/// Longest key or tag, in characters.
pub const MAX_NAME_CHARS: usize = 120;
/// Results a search returns when no limit is given.
pub const DEFAULT_LIMIT: usize = 5;
/// Most results one search returns.
pub const MAX_LIMIT: usize = 50;

/// What can go wrong with the memory bank.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The request itself is invalid (empty text, too many tags, ...).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// An entry to store.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub namespace: Namespace,
    /// `None`: a key derived from the text, so storing the same text twice
    /// (or re-running a store after a crash) updates one entry.
    pub key: Option<String>,
    pub text: String,
    pub tags: Vec<String>,
    pub author: MemoryAuthor,
    /// The time to record, ms since the Unix epoch.
    pub at_ms: u64,
}

/// A search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// Free text; entries matching any of its words are ranked. Empty (or
    /// without words): the newest entries matching the tags.
    pub text: String,
    /// Only entries carrying every one of these tags.
    pub tags: Vec<String>,
    /// Stored namespace keys to search; `None` searches every namespace.
    pub namespaces: Option<Vec<String>>,
    /// Most results (clamped to 1..=`MAX_LIMIT`).
    pub limit: usize,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub entry: MemoryRecord,
    /// BM25 score (0 for a tag-only listing).
    pub score: f64,
}

/// The key an entry without one gets: a hash of its text.
pub fn derived_key(text: &str) -> String {
    let hex = blake3::hash(text.trim().as_bytes()).to_hex();
    format!("m-{}", &hex[..12])
}

/// Tags as stored: trimmed, lowercase, without empties or repeats.
pub fn normalize_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn check_name(what: &str, name: &str) -> Result<(), MemoryError> {
    if name.is_empty() {
        return Err(MemoryError::Invalid(format!("the {what} is empty")));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(MemoryError::Invalid(format!(
            "the {what} `{}…` is longer than {MAX_NAME_CHARS} characters",
            name.chars().take(20).collect::<String>()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(MemoryError::Invalid(format!(
            "the {what} `{name}` contains control characters"
        )));
    }
    Ok(())
}

/// Upserts an entry by (namespace, key), durably. Returns the entry as
/// stored and whether the key is new.
pub async fn store(
    journal: &Journal,
    entry: NewEntry,
) -> Result<(MemoryRecord, bool), MemoryError> {
    let text = entry.text.trim().to_string();
    if text.is_empty() {
        return Err(MemoryError::Invalid(
            "nothing to remember: the text is empty".into(),
        ));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(MemoryError::Invalid(format!(
            "the text is {} bytes; one memory holds at most {MAX_TEXT_BYTES} (store a summary, or split it under several keys)",
            text.len()
        )));
    }
    let tags = normalize_tags(&entry.tags);
    if tags.len() > MAX_TAGS {
        return Err(MemoryError::Invalid(format!(
            "{} tags given; at most {MAX_TAGS}",
            tags.len()
        )));
    }
    for t in &tags {
        check_name("tag", t)?;
    }
    let key = match entry.key.as_deref().map(str::trim) {
        Some(k) if !k.is_empty() => k.to_string(),
        _ => derived_key(&text),
    };
    check_name("key", &key)?;
    let terms = entry_terms(&text, &tags);
    let record = MemoryRecord {
        namespace: entry.namespace.key(),
        key,
        text,
        tags,
        author: entry.author,
        created_ms: entry.at_ms,
        updated_ms: entry.at_ms,
    };
    Ok(journal.memory_put(record, terms).await?)
}

/// Ranked entries for a query, best first.
pub async fn search(journal: &Journal, query: &Query) -> Result<Vec<Hit>, MemoryError> {
    let limit = query.limit.clamp(1, MAX_LIMIT);
    let tags = normalize_tags(&query.tags);
    let has_tags = |r: &MemoryRecord| tags.iter().all(|t| r.tags.contains(t));
    let terms = query_terms(&query.text);
    if terms.is_empty() {
        let mut all = journal.memory_list(query.namespaces.clone()).await?;
        all.retain(&has_tags);
        all.sort_by(|a, b| {
            b.updated_ms
                .cmp(&a.updated_ms)
                .then_with(|| (&a.namespace, &a.key).cmp(&(&b.namespace, &b.key)))
        });
        all.truncate(limit);
        return Ok(all
            .into_iter()
            .map(|entry| Hit { entry, score: 0.0 })
            .collect());
    }
    let postings = journal
        .memory_postings(terms, query.namespaces.clone())
        .await?;
    let ranked = rank::bm25(&postings);
    let mut hits = Vec::new();
    // Fetch in pages: without a tag filter the first page is the answer;
    // with one, later pages fill in for entries the filter dropped.
    for page in ranked.chunks(limit.max(16)) {
        let keys: Vec<(String, String)> = page.iter().map(|(k, _)| k.clone()).collect();
        let entries = journal.memory_get_many(keys).await?;
        for (entry, (_, score)) in entries.into_iter().zip(page) {
            if let Some(entry) = entry.filter(&has_tags) {
                hits.push(Hit {
                    entry,
                    score: *score,
                });
                if hits.len() == limit {
                    return Ok(hits);
                }
            }
        }
    }
    Ok(hits)
}

/// Entries of some namespaces (every one when `None`), by namespace and key.
pub async fn list(
    journal: &Journal,
    namespaces: Option<Vec<String>>,
) -> Result<Vec<MemoryRecord>, MemoryError> {
    Ok(journal.memory_list(namespaces).await?)
}

/// Deletes an entry; returns it, or `None` when there was none.
pub async fn remove(
    journal: &Journal,
    namespace: &str,
    key: &str,
) -> Result<Option<MemoryRecord>, MemoryError> {
    Ok(journal.memory_delete(namespace, key).await?)
}
