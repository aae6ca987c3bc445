//! Storage of the memory bank: entries keyed (namespace, key), an inverted
//! index of their terms, and per-namespace counts for ranking.
//!
//! The journal does not tokenize or rank: callers (the `memory` module) hand
//! in each entry's terms with their counts, and read back postings to score.
//! The journal keeps the index consistent with the entries: every put or
//! delete replaces the entry's postings and counts in the same transaction,
//! through the one writer thread, so a search never sees half an update.
//!
//! Tables:
//! - `memory`: (namespace, key) → stored entry (version byte + JSON, with
//!   its term list so a later put or delete can remove its postings);
//! - `memory_terms`: (term, namespace, key) → (count in the entry, entry
//!   length in terms); one term's postings are one contiguous range;
//! - `memory_stats`: namespace → (entries, total length in terms).

use redb::{ReadTransaction, ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::JournalError;
use super::store::storage;

/// `memory`: (namespace, key) → stored entry record.
pub(crate) const MEMORY: redb::TableDefinition<(&str, &str), &[u8]> =
    redb::TableDefinition::new("memory");
/// `memory_terms`: (term, namespace, key) → (term count, entry length).
pub(crate) const MEMORY_TERMS: redb::TableDefinition<(&str, &str, &str), (u32, u32)> =
    redb::TableDefinition::new("memory_terms");
/// `memory_stats`: namespace → (entries, total length).
pub(crate) const MEMORY_STATS: redb::TableDefinition<&str, (u64, u64)> =
    redb::TableDefinition::new("memory_stats");

/// Who stored a memory entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryAuthor {
    /// Run the storing agent belonged to (none for the CLI).
    pub run: Option<String>,
    /// Step key of the storing agent.
    pub step: Option<String>,
    /// Mode the storing agent ran in.
    pub mode: Option<String>,
}

/// One memory bank entry as stored; the `memory` module gives it meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryRecord {
    /// Stored namespace key (`global`, `project:<path>`, `run:<id>`).
    pub namespace: String,
    /// Key, unique within the namespace.
    pub key: String,
    /// The remembered text.
    pub text: String,
    /// Tags, as given (normalised by the caller).
    pub tags: Vec<String>,
    /// Who stored (or last updated) the entry.
    pub author: MemoryAuthor,
    /// When the key was first stored, ms since the Unix epoch; kept on update.
    pub created_ms: u64,
    /// When the entry was last stored, ms since the Unix epoch.
    pub updated_ms: u64,
}

/// One entry's index terms with their counts, computed by the caller.
pub type MemoryTerms = Vec<(String, u32)>;

/// One posting: an entry that contains a term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPosting {
    pub namespace: String,
    pub key: String,
    /// How often the term occurs in the entry.
    pub count: u32,
    /// The entry's length in terms.
    pub len: u32,
}

/// What ranking needs from the index, over the namespaces searched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryPostings {
    /// Entries in those namespaces.
    pub entries: u64,
    /// Sum of their lengths in terms.
    pub total_len: u64,
    /// For each term asked for, in order: its postings.
    pub postings: Vec<(String, Vec<MemoryPosting>)>,
}

/// Layout version of stored memory entries.
const MEMORY_V1: u8 = 1;

/// The stored form, separate from `MemoryRecord` so that record can change
/// while old journals still decode.
#[derive(Serialize, Deserialize)]
struct StoredV1 {
    text: String,
    tags: Vec<String>,
    author_run: Option<String>,
    author_step: Option<String>,
    author_mode: Option<String>,
    created_ms: u64,
    updated_ms: u64,
    terms: Vec<(String, u32)>,
}

/// The stored form of an entry with its terms (PostgreSQL stores the same
/// bytes, `pg/memory.rs`).
pub(super) fn encode(
    record: &MemoryRecord,
    terms: &[(String, u32)],
) -> Result<Vec<u8>, JournalError> {
    let stored = StoredV1 {
        text: record.text.clone(),
        tags: record.tags.clone(),
        author_run: record.author.run.clone(),
        author_step: record.author.step.clone(),
        author_mode: record.author.mode.clone(),
        created_ms: record.created_ms,
        updated_ms: record.updated_ms,
        terms: terms.to_vec(),
    };
    let mut out = vec![MEMORY_V1];
    serde_json::to_writer(&mut out, &stored)
        .map_err(|e| JournalError::Storage(format!("encode memory entry: {e}")))?;
    Ok(out)
}

/// An entry's stored form read back, with the terms it was stored with.
pub(super) fn decode(
    namespace: &str,
    key: &str,
    bytes: &[u8],
) -> Result<(MemoryRecord, MemoryTerms), JournalError> {
    let corrupt = |why: String| {
        JournalError::Storage(format!("memory entry {namespace}/{key} is corrupt: {why}"))
    };
    let (version, body) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty record".into()))?;
    if *version != MEMORY_V1 {
        return Err(corrupt(format!("unknown record version {version}")));
    }
    let s: StoredV1 = serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))?;
    let record = MemoryRecord {
        namespace: namespace.to_string(),
        key: key.to_string(),
        text: s.text,
        tags: s.tags,
        author: MemoryAuthor {
            run: s.author_run,
            step: s.author_step,
            mode: s.author_mode,
        },
        created_ms: s.created_ms,
        updated_ms: s.updated_ms,
    };
    Ok((record, s.terms))
}

/// An entry's length in terms (what ranking normalises by).
pub(super) fn doc_len(terms: &[(String, u32)]) -> u32 {
    terms.iter().fold(0u32, |n, (_, c)| n.saturating_add(*c))
}

/// The memory tables of one write transaction.
struct WriteTables<'t> {
    entries: Table<'t, (&'static str, &'static str), &'static [u8]>,
    terms: Table<'t, (&'static str, &'static str, &'static str), (u32, u32)>,
    stats: Table<'t, &'static str, (u64, u64)>,
}

impl<'t> WriteTables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<WriteTables<'t>, JournalError> {
        Ok(WriteTables {
            entries: txn.open_table(MEMORY).map_err(storage("open memory"))?,
            terms: txn
                .open_table(MEMORY_TERMS)
                .map_err(storage("open memory terms"))?,
            stats: txn
                .open_table(MEMORY_STATS)
                .map_err(storage("open memory stats"))?,
        })
    }

    /// Adds `entries`/`len` (negative to remove) to a namespace's counts.
    fn adjust(&mut self, namespace: &str, entries: i64, len: i64) -> Result<(), JournalError> {
        let (n, total) = self
            .stats
            .get(namespace)
            .map_err(storage("read memory stats"))?
            .map_or((0, 0), |v| v.value());
        let n = n.saturating_add_signed(entries);
        let total = total.saturating_add_signed(len);
        if n == 0 {
            self.stats
                .remove(namespace)
                .map_err(storage("write memory stats"))?;
        } else {
            self.stats
                .insert(namespace, (n, total))
                .map_err(storage("write memory stats"))?;
        }
        Ok(())
    }

    /// Removes an entry and its postings; returns the removed record.
    fn remove(&mut self, namespace: &str, key: &str) -> Result<Option<MemoryRecord>, JournalError> {
        let old = self
            .entries
            .remove((namespace, key))
            .map_err(storage("remove memory entry"))?
            .map(|v| v.value().to_vec());
        let Some(bytes) = old else {
            return Ok(None);
        };
        let (record, terms) = decode(namespace, key, &bytes)?;
        for (term, _) in &terms {
            self.terms
                .remove((term.as_str(), namespace, key))
                .map_err(storage("remove memory posting"))?;
        }
        self.adjust(namespace, -1, -i64::from(doc_len(&terms)))?;
        Ok(Some(record))
    }
}

/// Stores `record` under its (namespace, key), replacing any entry there and
/// its postings; an existing entry's `created_ms` is kept. Returns the
/// record as stored and whether the key is new.
pub(crate) fn put(
    txn: &WriteTransaction,
    mut record: MemoryRecord,
    terms: MemoryTerms,
) -> Result<(MemoryRecord, bool), JournalError> {
    let mut t = WriteTables::open(txn)?;
    let (ns, key) = (record.namespace.clone(), record.key.clone());
    let old = t.remove(&ns, &key)?;
    let created = old.is_none();
    if let Some(old) = old {
        record.created_ms = old.created_ms;
    }
    let len = doc_len(&terms);
    for (term, count) in &terms {
        t.terms
            .insert((term.as_str(), ns.as_str(), key.as_str()), (*count, len))
            .map_err(storage("write memory posting"))?;
    }
    let bytes = encode(&record, &terms)?;
    t.entries
        .insert((ns.as_str(), key.as_str()), bytes.as_slice())
        .map_err(storage("write memory entry"))?;
    t.adjust(&ns, 1, i64::from(len))?;
    Ok((record, created))
}

/// Deletes an entry and its postings; returns the deleted record.
pub(crate) fn delete(
    txn: &WriteTransaction,
    namespace: &str,
    key: &str,
) -> Result<Option<MemoryRecord>, JournalError> {
    WriteTables::open(txn)?.remove(namespace, key)
}

/// One entry, or `None`.
pub(crate) fn get(
    txn: &ReadTransaction,
    namespace: &str,
    key: &str,
) -> Result<Option<MemoryRecord>, JournalError> {
    let table = txn.open_table(MEMORY).map_err(storage("open memory"))?;
    let Some(v) = table
        .get((namespace, key))
        .map_err(storage("read memory entry"))?
    else {
        return Ok(None);
    };
    decode(namespace, key, v.value()).map(|(r, _)| Some(r))
}

/// Entries of the given namespaces (all when `None`), ordered by
/// (namespace, key).
pub(crate) fn list(
    txn: &ReadTransaction,
    namespaces: Option<&[String]>,
) -> Result<Vec<MemoryRecord>, JournalError> {
    let table = txn.open_table(MEMORY).map_err(storage("open memory"))?;
    let mut out = Vec::new();
    match namespaces {
        None => {
            for item in table.iter().map_err(storage("iterate memory"))? {
                let (k, v) = item.map_err(storage("read memory entry"))?;
                let (ns, key) = k.value();
                out.push(decode(ns, key, v.value())?.0);
            }
        }
        Some(list) => {
            let mut sorted: Vec<&String> = list.iter().collect();
            sorted.sort();
            sorted.dedup();
            for wanted in sorted {
                let range = table
                    .range((wanted.as_str(), "")..)
                    .map_err(storage("range memory"))?;
                for item in range {
                    let (k, v) = item.map_err(storage("read memory entry"))?;
                    let (ns, key) = k.value();
                    if ns != wanted.as_str() {
                        break;
                    }
                    out.push(decode(ns, key, v.value())?.0);
                }
            }
        }
    }
    Ok(out)
}

/// Every namespace holding entries, with its entry count, by name.
pub(crate) fn namespaces(txn: &ReadTransaction) -> Result<Vec<(String, u64)>, JournalError> {
    let stats = txn
        .open_table(MEMORY_STATS)
        .map_err(storage("open memory stats"))?;
    let mut out = Vec::new();
    for item in stats.iter().map_err(storage("iterate memory stats"))? {
        let (k, v) = item.map_err(storage("read memory stats"))?;
        out.push((k.value().to_string(), v.value().0));
    }
    Ok(out)
}

/// Postings of `terms` and the counts BM25 needs, restricted to
/// `namespaces` (all when `None`).
pub(crate) fn postings(
    txn: &ReadTransaction,
    terms: &[String],
    namespaces: Option<&[String]>,
) -> Result<MemoryPostings, JournalError> {
    let stats = txn
        .open_table(MEMORY_STATS)
        .map_err(storage("open memory stats"))?;
    let index = txn
        .open_table(MEMORY_TERMS)
        .map_err(storage("open memory terms"))?;
    let mut out = MemoryPostings::default();
    let wanted = |ns: &str| namespaces.is_none_or(|list| list.iter().any(|n| n == ns));
    for item in stats.iter().map_err(storage("iterate memory stats"))? {
        let (k, v) = item.map_err(storage("read memory stats"))?;
        if wanted(k.value()) {
            let (n, len) = v.value();
            out.entries += n;
            out.total_len += len;
        }
    }
    for term in terms {
        let mut list = Vec::new();
        let range = index
            .range((term.as_str(), "", "")..)
            .map_err(storage("range memory terms"))?;
        for item in range {
            let (k, v) = item.map_err(storage("read memory posting"))?;
            let (t, ns, key) = k.value();
            if t != term.as_str() {
                break;
            }
            if wanted(ns) {
                let (count, len) = v.value();
                list.push(MemoryPosting {
                    namespace: ns.to_string(),
                    key: key.to_string(),
                    count,
                    len,
                });
            }
        }
        out.postings.push((term.clone(), list));
    }
    Ok(out)
}
