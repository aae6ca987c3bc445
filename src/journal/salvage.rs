//! Salvage: the runs a journal file still holds when redb cannot open it
//! (its header or root pages are destroyed) or cannot walk its tables.
//!
//! The file is read as raw pages, without redb. Every page-aligned offset
//! that looks like a B-tree leaf (redb's documented layout: type byte 1, a
//! pair count, key and value end offsets, then keys, then values) is
//! parsed, and each pair is kept only when it proves itself: a run or
//! entry record must pass its own checksum (`codec`), a blob must hash to
//! its key. Nothing that does not prove itself is served.
//!
//! Stale copies of pages (redb copies a page on every change) hold older
//! versions of the same records; entries never change once written, and
//! of a run's records the one with the most entries wins. A run is
//! recoverable when its record, every entry from 1 to its last and every
//! blob it needs were found, and no entry past its record's last: that
//! record may be a stale copy whose newer page was destroyed.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::protocol::{RunId, Seq};

use super::codec;
use super::export::Snapshot;
use super::{Entry, JournalError, RunMeta};

/// redb's page size (the default, which lev never changes).
const PAGE: u64 = 4096;
/// The leaf page type byte.
const LEAF: u8 = 1;
/// Pages larger than this are not believed (a stray length would make the
/// scan read gigabytes).
const MAX_LEAF: u64 = 1 << 30;

/// What a scan found.
pub struct Salvage {
    /// Every run any record or entry names, oldest first.
    pub runs: Vec<SalvagedRun>,
    /// Leaf pages that parsed.
    pub leaves: u64,
}

/// One run as the scan found it.
pub struct SalvagedRun {
    pub id: RunId,
    /// Entries found (whatever their seqs).
    pub entries: usize,
    /// Why the run cannot be recovered whole; empty when it can.
    pub problems: Vec<String>,
    /// The run as an export would copy it, when it is whole.
    pub(crate) snapshot: Option<Snapshot>,
}

impl SalvagedRun {
    /// The run's record (when one was found and the run is whole).
    pub fn meta(&self) -> Option<&RunMeta> {
        self.snapshot.as_ref().map(Snapshot::meta)
    }

    /// Entries of a recoverable run, in seq order.
    pub fn history(&self) -> &[(Seq, Entry)] {
        self.snapshot.as_ref().map_or(&[], Snapshot::entries)
    }

    pub(crate) fn bundle(&self) -> Option<super::writer::ImportBundle> {
        self.snapshot.as_ref().map(Snapshot::bundle)
    }

    /// Writes a recoverable run as `lev export` would (JSONL).
    pub fn write_jsonl(&self, out: &mut (dyn std::io::Write + Send)) -> Result<(), JournalError> {
        match &self.snapshot {
            Some(snap) => super::export::write_jsonl(snap, out),
            None => Err(JournalError::Storage(format!(
                "run {} cannot be recovered: {}",
                self.id,
                self.problems.join("; ")
            ))),
        }
    }
}

/// Everything the pages hold, before runs are assembled.
#[derive(Default)]
struct Found {
    runs: HashMap<String, RunMeta>,
    /// (run, seq) → entry, its spilled payload's hash.
    entries: BTreeMap<(String, u64), codec::DecodedEntry>,
    blobs: HashMap<String, Vec<u8>>,
    leaves: u64,
}

/// Scans the file at `path` for the runs it holds.
pub fn salvage(path: &Path) -> Result<Salvage, JournalError> {
    let io = |e: std::io::Error| JournalError::Io {
        path: path.display().to_string(),
        cause: e.to_string(),
        during: "salvage read".into(),
        disk_full: false,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut found = Found::default();
    let mut at = 0;
    while at < len {
        if let Some(page) = leaf_at(&file, at, len) {
            found.leaves += 1;
            read_pairs(&page, &mut found);
        }
        at += PAGE;
    }
    Ok(assemble(found))
}

/// The bytes of the leaf page starting at `at`, when its header is
/// consistent (end offsets in order and inside the file).
fn leaf_at(file: &File, at: u64, len: u64) -> Option<Vec<u8>> {
    let mut head = [0u8; 4];
    file.read_exact_at(&mut head, at).ok()?;
    if head[0] != LEAF {
        return None;
    }
    let pairs = usize::from(u16::from_le_bytes([head[2], head[3]]));
    if pairs == 0 {
        return None;
    }
    // Key ends then value ends, both variable for every table salvaged.
    let mut ends = vec![0u8; 8 * pairs];
    file.read_exact_at(&mut ends, at + 4).ok()?;
    let ends: Vec<u64> = ends
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    let mut previous = 4 + 8 * pairs as u64;
    for &end in &ends {
        if end < previous {
            return None;
        }
        previous = end;
    }
    let total = previous;
    if total > MAX_LEAF || at + total > len {
        return None;
    }
    let mut page = vec![0u8; usize::try_from(total).ok()?];
    file.read_exact_at(&mut page, at).ok()?;
    Some(page)
}

/// Each key/value pair of a parsed leaf, kept when it proves itself.
fn read_pairs(page: &[u8], found: &mut Found) {
    let pairs = usize::from(u16::from_le_bytes([page[2], page[3]]));
    let end = |i: usize| {
        let o = 4 + 4 * i;
        u32::from_le_bytes([page[o], page[o + 1], page[o + 2], page[o + 3]]) as usize
    };
    let mut key_start = 4 + 8 * pairs;
    let mut value_start = end(pairs - 1);
    for i in 0..pairs {
        let (key_end, value_end) = (end(i), end(pairs + i));
        let key = &page[key_start..key_end];
        let value = &page[value_start..value_end];
        classify(key, value, found);
        key_start = key_end;
        value_start = value_end;
    }
}

/// A pair is a blob (it hashes to its key), a run record (it passes its
/// checksum and names its key) or an entry (its key is a (run, seq) tuple
/// and its record passes its checksum).
fn classify(key: &[u8], value: &[u8], found: &mut Found) {
    if let Ok(text) = std::str::from_utf8(key) {
        if text.len() == 64 && blake3::hash(value).to_hex().as_str() == text {
            found.blobs.insert(text.to_owned(), value.to_vec());
            return;
        }
        if let Ok(meta) = codec::decode_run(value)
            && meta.id.as_str() == text
        {
            let newer = found.runs.get(text).is_none_or(|known| {
                (meta.last_seq, meta.updated_ms) > (known.last_seq, known.updated_ms)
            });
            if newer {
                found.runs.insert(text.to_owned(), meta);
            }
            return;
        }
    }
    if let Some((run, seq)) = entry_key(key)
        && seq > 0
        && let Ok(decoded) = codec::decode_entry(value)
    {
        found
            .entries
            .entry((run.to_owned(), seq))
            .or_insert(decoded);
    }
}

/// An `entries` key, `(&str, u64)` as redb writes it: the string's length
/// (one byte under 254, else a marker and two or four bytes), the string,
/// then the seq as 8 little-endian bytes.
fn entry_key(key: &[u8]) -> Option<(&str, u64)> {
    let (len, head) = match *key.first()? {
        n @ 0..=253 => (usize::from(n), 1),
        254 => (
            usize::from(u16::from_le_bytes(key.get(1..3)?.try_into().ok()?)),
            3,
        ),
        255 => (
            usize::try_from(u32::from_le_bytes(key.get(1..5)?.try_into().ok()?)).ok()?,
            5,
        ),
    };
    if key.len() != head + len + 8 {
        return None;
    }
    let run = std::str::from_utf8(&key[head..head + len]).ok()?;
    let seq = u64::from_le_bytes(key[head + len..].try_into().ok()?);
    Some((run, seq))
}

/// Runs from what was found: each checked for a record, entries 1..last
/// without gaps, payload blobs and the pinned definition.
fn assemble(mut found: Found) -> Salvage {
    let mut ids: Vec<String> = found.runs.keys().cloned().collect();
    ids.extend(found.entries.keys().map(|(run, _)| run.clone()));
    ids.sort();
    ids.dedup();
    let runs = ids
        .into_iter()
        .map(|id| assemble_run(id, &mut found))
        .collect();
    Salvage {
        runs,
        leaves: found.leaves,
    }
}

fn assemble_run(id: String, found: &mut Found) -> SalvagedRun {
    let meta = found.runs.remove(&id);
    let last = meta.as_ref().map_or(u64::MAX, |m| m.last_seq);
    let Gathered {
        entries,
        count,
        next,
        mut problems,
    } = gather_entries(&id, last, found);
    let run = RunId(id);
    let unrecoverable = |problems| SalvagedRun {
        id: run.clone(),
        entries: count,
        problems,
        snapshot: None,
    };
    let Some(meta) = meta else {
        problems.insert(0, "its run record was not found".into());
        return unrecoverable(problems);
    };
    if next <= meta.last_seq {
        problems.push(format!("entries {next}..{} were not found", meta.last_seq));
    }
    if !meta.definition_blob.is_empty() && !found.blobs.contains_key(&meta.definition_blob) {
        problems.push(format!(
            "the pinned definition {} was not found",
            meta.definition_blob
        ));
    }
    if !problems.is_empty() {
        return unrecoverable(problems);
    }
    match Snapshot::assemble(meta, entries, |hash| Ok(found.blobs.get(hash).cloned())) {
        Ok(snap) => SalvagedRun {
            id: run.clone(),
            entries: count,
            problems,
            snapshot: Some(snap),
        },
        Err(e) => unrecoverable(vec![e.to_string()]),
    }
}

/// A run's entries as the scan found them, up to its record's last.
struct Gathered {
    /// Entries 1..=last that were found, payloads resolved.
    entries: Vec<(Seq, Entry)>,
    /// Entries found, whatever their seqs.
    count: usize,
    /// The seq after the last one found in order.
    next: u64,
    problems: Vec<String>,
}

fn gather_entries(id: &str, last: u64, found: &Found) -> Gathered {
    let mut out = Gathered {
        entries: Vec::new(),
        count: 0,
        next: 1,
        problems: Vec::new(),
    };
    let range = found
        .entries
        .range((id.to_owned(), 0)..=(id.to_owned(), u64::MAX));
    for ((_, seq), (entry, blob)) in range {
        // Entries past the record's last one: either a commit that never
        // completed wrote them, or they are committed and the record found
        // is a stale copy (its newest page destroyed). The scan cannot
        // tell which, so the run is not proven whole.
        if *seq > last {
            out.problems.push(format!(
                "entries after {last} were found past its run record: the record may be an older copy"
            ));
            break;
        }
        out.count += 1;
        if *seq != out.next {
            out.problems
                .push(format!("entries {}..{} were not found", out.next, seq - 1));
        }
        out.next = seq + 1;
        let mut entry = entry.clone();
        if let Some(hash) = blob {
            let hex = blake3::Hash::from_bytes(*hash).to_hex();
            match found.blobs.get(hex.as_str()) {
                Some(bytes) => entry.payload = bytes.clone(),
                None => {
                    out.problems
                        .push(format!("entry {seq}: payload blob {hex} was not found"));
                    continue;
                }
            }
        }
        for hash in blob_fields(&entry.payload) {
            if !found.blobs.contains_key(&hash) {
                out.problems
                    .push(format!("entry {seq}: its blob {hash} was not found"));
            }
        }
        out.entries.push((Seq(*seq), entry));
    }
    out
}

/// Blobs an event points at by name (`stdout_blob`, `stderr_blob`, …): a
/// run whose output is missing is not whole.
fn blob_fields(payload: &[u8]) -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match v {
                        serde_json::Value::String(hash) if key.ends_with("_blob") => {
                            out.push(hash.clone());
                        }
                        other => walk(other, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::from_slice(payload) {
        walk(&value, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::Value;

    #[test]
    fn entry_keys_decode_as_redb_encodes_them() {
        for run in ["01J", &"r".repeat(300), &"x".repeat(70_000), ""] {
            for seq in [0u64, 1, 255, u64::MAX] {
                let bytes = <(&str, u64)>::as_bytes(&(run, seq));
                assert_eq!(entry_key(&bytes), Some((run, seq)), "{} {seq}", run.len());
            }
        }
        assert_eq!(entry_key(b""), None);
        assert_eq!(entry_key(&[3, b'a', b'b']), None);
        assert_eq!(entry_key(&[255, 1]), None);
    }
}
