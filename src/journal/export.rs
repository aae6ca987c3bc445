//! Export and import of one run as JSONL.
//!
//! Layout, one JSON object per line:
//! 1. header `{"lev_export":1,"run":…,"entries":N,"blobs":M}`
//! 2. `{"type":"run","meta":{…}}`
//! 3. one `{"type":"entry","seq":…,…,"payload":…}` per entry, in seq order
//! 4. one `{"type":"blob","hash":…,"b64":…}` per blob the run references
//!
//! A payload that is single-line JSON is embedded verbatim as the entry's
//! last field, so the file is readable and the bytes round-trip exactly;
//! anything else goes as `payload_b64`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use redb::ReadTransaction;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::{RunId, Seq};

use super::codec;
use super::store::{self, BLOBS, storage};
use super::writer::ImportBundle;
use super::{Entry, JournalError, RunMeta};

/// Export format version in the header line.
const EXPORT_VERSION: u64 = 1;
const PAYLOAD_KEY: &str = "\"payload\":";

/// A consistent copy of one run, taken in a single read transaction.
pub(crate) struct Snapshot {
    meta: RunMeta,
    entries: Vec<(Seq, Entry)>,
    blobs: Vec<(String, Vec<u8>)>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    lev_export: u64,
    run: RunId,
    entries: u64,
    blobs: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Run { meta: RunMeta },
    Entry(EntryLine),
    Blob { hash: String, b64: String },
}

#[derive(Serialize, Deserialize)]
struct EntryLine {
    seq: u64,
    kind: String,
    step: Option<String>,
    fingerprint: Option<String>,
    attempt: u32,
    at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_b64: Option<String>,
    /// Written by hand after the other fields (see `entry_line`).
    #[serde(default, skip_serializing)]
    payload: Option<Value>,
}

/// Reads the run, its entries and the blobs they reference.
pub(crate) fn snapshot(txn: &ReadTransaction, run: &RunId) -> Result<Snapshot, JournalError> {
    let meta = store::read_run(txn, run)?.ok_or_else(|| JournalError::RunNotFound(run.clone()))?;
    let entries = store::read_entries(txn, run, Seq(1))?;
    let table = txn.open_table(BLOBS).map_err(storage("open blobs"))?;
    Snapshot::assemble(meta, entries, |hash| {
        match table.get(hash).map_err(storage("read blob"))? {
            Some(bytes) => store::verified(bytes.value(), hash)
                .map(|b| Some(b.to_vec()))
                .map_err(|why| JournalError::Storage(format!("run {run}: {why}"))),
            None => Ok(None),
        }
    })
}

impl Snapshot {
    /// A run's copy from its record and entries, with the blobs they
    /// reference that `blob` finds (a missing one is left out, as before).
    pub(crate) fn assemble(
        meta: RunMeta,
        entries: Vec<(Seq, Entry)>,
        mut blob: impl FnMut(&str) -> Result<Option<Vec<u8>>, JournalError>,
    ) -> Result<Snapshot, JournalError> {
        let mut blobs = Vec::new();
        for hash in wanted(&meta, &entries) {
            if let Some(bytes) = blob(&hash)? {
                blobs.push((hash, bytes));
            }
        }
        Ok(Snapshot {
            meta,
            entries,
            blobs,
        })
    }

    /// The copy as the writer imports it.
    pub(crate) fn bundle(&self) -> ImportBundle {
        ImportBundle {
            meta: self.meta.clone(),
            entries: self
                .entries
                .iter()
                .map(|(_, e)| codec::encode_entry(e.clone()))
                .collect(),
            blobs: self.blobs.clone(),
        }
    }

    pub(crate) fn meta(&self) -> &RunMeta {
        &self.meta
    }

    pub(crate) fn entries(&self) -> &[(Seq, Entry)] {
        &self.entries
    }
}

/// The blobs a run's copy takes along: its pinned definition and every
/// hash its entries' payloads name.
fn wanted(meta: &RunMeta, entries: &[(Seq, Entry)]) -> BTreeSet<String> {
    let mut wanted = BTreeSet::new();
    if !meta.definition_blob.is_empty() {
        wanted.insert(meta.definition_blob.clone());
    }
    for (_, entry) in entries {
        if let Ok(value) = serde_json::from_slice::<Value>(&entry.payload) {
            collect_hashes(&value, &mut wanted);
        }
    }
    wanted
}

/// A run's copy from a PostgreSQL journal: its record, its entries, then
/// the blobs they reference (read after the entries: blobs are never
/// deleted there, so every one the entries name is still found).
pub(crate) async fn pg_snapshot(
    store: &super::pg::PgStore,
    run: &RunId,
) -> Result<Snapshot, JournalError> {
    let meta = store
        .run(run)
        .await?
        .ok_or_else(|| JournalError::RunNotFound(run.clone()))?;
    let entries: Vec<(Seq, Entry)> = store
        .read(run, 1)
        .await?
        .into_iter()
        .map(|(seq, entry)| (Seq(seq), entry))
        .collect();
    let mut found = std::collections::HashMap::new();
    for hash in wanted(&meta, &entries) {
        if let Some(bytes) = store.blob(&hash).await? {
            found.insert(hash, bytes);
        }
    }
    Snapshot::assemble(meta, entries, |hash| Ok(found.remove(hash)))
}

/// Strings shaped like a blob hash (64 lowercase hex) anywhere in a payload,
/// e.g. `stdout_blob`; only those present in `blobs` are exported.
fn collect_hashes(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) if is_hash(s) => {
            out.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| collect_hashes(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_hashes(v, out)),
        _ => {}
    }
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Writes the snapshot as JSONL.
pub(crate) fn write_jsonl(
    snap: &Snapshot,
    out: &mut (dyn Write + Send),
) -> Result<(), JournalError> {
    let io = |e: std::io::Error| JournalError::Storage(format!("export write failed: {e}"));
    let json = |e: serde_json::Error| JournalError::Storage(format!("export encode failed: {e}"));
    let header = Header {
        lev_export: EXPORT_VERSION,
        run: snap.meta.id.clone(),
        entries: snap.entries.len() as u64,
        blobs: snap.blobs.len() as u64,
    };
    let mut line = serde_json::to_string(&header).map_err(json)?;
    writeln!(out, "{line}").map_err(io)?;
    line = serde_json::to_string(&Line::Run {
        meta: snap.meta.clone(),
    })
    .map_err(json)?;
    writeln!(out, "{line}").map_err(io)?;
    for (seq, entry) in &snap.entries {
        line = entry_line(*seq, entry).map_err(json)?;
        writeln!(out, "{line}").map_err(io)?;
    }
    for (hash, bytes) in &snap.blobs {
        line = serde_json::to_string(&Line::Blob {
            hash: hash.clone(),
            b64: B64.encode(bytes),
        })
        .map_err(json)?;
        writeln!(out, "{line}").map_err(io)?;
    }
    out.flush().map_err(io)
}

/// Payload bytes that can sit verbatim inside one JSONL line.
fn embeddable(payload: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(payload).ok()?;
    // A bare `null` would read back as "no payload field".
    if text.contains(['\n', '\r']) || text.trim() == "null" {
        return None;
    }
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    Some(text)
}

fn entry_line(seq: Seq, entry: &Entry) -> Result<String, serde_json::Error> {
    let raw = embeddable(&entry.payload);
    let mut line = serde_json::to_string(&Line::Entry(EntryLine {
        seq: seq.0,
        kind: entry.kind.clone(),
        step: entry.step.clone(),
        fingerprint: entry.fingerprint.clone(),
        attempt: entry.attempt,
        at_ms: entry.at_ms,
        payload_b64: match raw {
            Some(_) => None,
            None => Some(B64.encode(&entry.payload)),
        },
        payload: None,
    }))?;
    if let Some(raw) = raw {
        // The line ends in the object's closing brace; splice the payload in
        // as the last field so its bytes are kept exactly.
        line.pop();
        line.push(',');
        line.push_str(PAYLOAD_KEY);
        line.push_str(raw);
        line.push('}');
    }
    Ok(line)
}

/// Reads and checks an export file; nothing is written here.
pub(crate) fn parse_file(file: &Path) -> Result<ImportBundle, JournalError> {
    let name = file.display().to_string();
    let err = |line: usize, message: String| JournalError::Import {
        file: name.clone(),
        line,
        message,
    };
    let text = std::fs::read_to_string(file).map_err(|e| err(0, format!("cannot read: {e}")))?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));

    let (_, first) = lines
        .next()
        .ok_or_else(|| err(1, "empty file, expected a lev export header".into()))?;
    let header: Value =
        serde_json::from_str(first).map_err(|e| err(1, format!("header is not JSON: {e}")))?;
    match header.get("lev_export").and_then(Value::as_u64) {
        Some(EXPORT_VERSION) => {}
        Some(v) => {
            return Err(err(
                1,
                format!("export version {v} is not supported (expected {EXPORT_VERSION})"),
            ));
        }
        None => return Err(err(1, "not a lev export: no \"lev_export\" header".into())),
    }
    let header: Header =
        serde_json::from_value(header).map_err(|e| err(1, format!("bad header: {e}")))?;

    let mut meta: Option<RunMeta> = None;
    let mut entries = Vec::new();
    let mut blobs = Vec::new();
    let mut last_line = 1;
    for (n, text) in lines {
        last_line = n;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line =
            serde_json::from_str(text).map_err(|e| err(n, format!("bad line: {e}")))?;
        match line {
            Line::Run { meta: m } => {
                if meta.is_some() {
                    return Err(err(n, "second run line".into()));
                }
                if m.id != header.run {
                    return Err(err(
                        n,
                        format!("run {} does not match header run {}", m.id, header.run),
                    ));
                }
                meta = Some(m);
            }
            Line::Entry(e) => {
                if meta.is_none() {
                    return Err(err(n, "entry before the run line".into()));
                }
                let expected = entries.len() as u64 + 1;
                if e.seq != expected {
                    return Err(err(n, format!("expected seq {expected}, found {}", e.seq)));
                }
                let payload = entry_payload(text, &e).map_err(|m| err(n, m))?;
                entries.push(codec::encode_entry(Entry {
                    kind: e.kind,
                    step: e.step,
                    fingerprint: e.fingerprint,
                    attempt: e.attempt,
                    at_ms: e.at_ms,
                    payload,
                }));
            }
            Line::Blob { hash, b64 } => {
                let bytes = B64
                    .decode(b64.as_bytes())
                    .map_err(|e| err(n, format!("blob {hash}: bad base64: {e}")))?;
                let actual = blake3::hash(&bytes).to_hex();
                if actual.as_str() != hash {
                    return Err(err(n, format!("blob {hash}: content hashes to {actual}")));
                }
                blobs.push((hash, bytes));
            }
        }
    }
    let meta = meta.ok_or_else(|| err(last_line, "no run line in the file".into()))?;
    if meta.last_seq != entries.len() as u64 {
        return Err(err(
            last_line,
            format!(
                "run says last_seq {} but the file has {} entries",
                meta.last_seq,
                entries.len()
            ),
        ));
    }
    Ok(ImportBundle {
        meta,
        entries,
        blobs,
    })
}

/// The payload bytes of an entry line: verbatim JSON text when it is the
/// spliced last field (as we write it), else re-encoded, else base64.
fn entry_payload(text: &str, e: &EntryLine) -> Result<Vec<u8>, String> {
    match (&e.payload, &e.payload_b64) {
        (Some(_), Some(_)) => Err("entry has both payload and payload_b64".into()),
        (None, Some(b64)) => B64
            .decode(b64.as_bytes())
            .map_err(|err| format!("bad payload_b64: {err}")),
        (None, None) => Ok(Vec::new()),
        (Some(value), None) => {
            // A `"payload":` key outside strings can only be our own key, and
            // earlier fields are strings and numbers, so the first match is it.
            let verbatim = text.find(PAYLOAD_KEY).and_then(|at| {
                let rest = text[at + PAYLOAD_KEY.len()..].trim_end();
                let raw = rest.strip_suffix('}')?;
                let parsed: Value = serde_json::from_str(raw).ok()?;
                (&parsed == value).then(|| raw.as_bytes().to_vec())
            });
            match verbatim {
                Some(bytes) => Ok(bytes),
                // Hand-edited line with another field order: keep the value.
                None => serde_json::to_vec(value).map_err(|err| format!("bad payload: {err}")),
            }
        }
    }
}
