//! Checking a journal that may be damaged: each run is read on its own
//! (a panic or a corrupt page in one run's part of the file must not hide
//! the others), every record decoded, seqs checked for gaps, every blob
//! checked against its hash. `lev doctor` and `lev export --all` use it.
//! A journal on PostgreSQL is checked the same way (`pg/doctor.rs`).

use redb::{ReadTransaction, ReadableTable};

use crate::protocol::{RunId, Seq};

use super::codec;
use super::store::{self, BLOBS, ENTRIES, RUNS, storage};
use super::{Entry, Journal, JournalError, RunMeta};

/// What a check of one run found.
#[derive(Debug, Default)]
pub struct RunCheck {
    /// The run's record, when it decodes.
    pub meta: Option<RunMeta>,
    /// Entries that decoded (blobs resolved and verified), in seq order.
    pub entries: Vec<(Seq, Entry)>,
    /// What is wrong, one line each; empty when the run is intact.
    pub problems: Vec<String>,
}

impl RunCheck {
    /// Notes a run record whose count of entries is not what the journal
    /// holds (both backends' check).
    pub(crate) fn check_last_seq(&mut self) {
        let Some(meta) = &self.meta else {
            return;
        };
        let last = self.entries.last().map_or(0, |(s, _)| s.0);
        if last != meta.last_seq {
            self.problems.push(format!(
                "the run record says {} entries, the journal holds entries up to seq {last}",
                meta.last_seq
            ));
        }
    }
}

impl Journal {
    /// Ids of every run in the `runs` table, oldest first, even when their
    /// records do not decode.
    pub async fn run_ids(&self) -> Result<Vec<RunId>, JournalError> {
        if let super::Backend::Pg(pg) = &self.backend {
            return pg.store().run_ids().await;
        }
        self.with_read("lev doctor", |txn| {
            let runs = txn.open_table(RUNS).map_err(storage("open runs"))?;
            let mut out = Vec::new();
            for item in runs.iter().map_err(storage("iterate runs"))? {
                let (key, _) = item.map_err(storage("read run key"))?;
                out.push(RunId(key.value().to_owned()));
            }
            Ok(out)
        })
        .await
    }

    /// Runs whose record does not decode, oldest first, with the cause:
    /// the ones `Journal::runs` leaves out.
    pub async fn damaged_runs(&self) -> Result<Vec<(RunId, String)>, JournalError> {
        if let super::Backend::Pg(pg) = &self.backend {
            return pg.store().damaged_runs().await;
        }
        self.with_read("lev doctor", |txn| {
            let runs = txn.open_table(RUNS).map_err(storage("open runs"))?;
            let mut out = Vec::new();
            for item in runs.iter().map_err(storage("iterate runs"))? {
                let (key, value) = item.map_err(storage("read run"))?;
                if let Err(e) = codec::decode_run(value.value()) {
                    out.push((RunId(key.value().to_owned()), e.0.to_string()));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Checks one run: its record, every entry, seq gaps, blob hashes and
    /// the pinned definition's hash. A storage failure while reading it is
    /// a problem of this run, not an error.
    pub async fn check_run(&self, run: &RunId) -> RunCheck {
        if let super::Backend::Pg(pg) = &self.backend {
            return pg.store().check_run(run).await;
        }
        let id = run.clone();
        match self
            .with_read("lev doctor", move |txn| Ok(check(txn, &id)))
            .await
        {
            Ok(check) => check,
            Err(e) => RunCheck {
                problems: vec![e.to_string()],
                ..RunCheck::default()
            },
        }
    }

    /// Run ids that own entries but have no run record (a damaged key or a
    /// lost record). None on PostgreSQL: a foreign key keeps every entry's
    /// run.
    pub async fn orphaned_runs(&self) -> Result<Vec<String>, JournalError> {
        if let super::Backend::Pg(_) = &self.backend {
            return Ok(Vec::new());
        }
        self.with_read("lev doctor", |txn| {
            let runs = txn.open_table(RUNS).map_err(storage("open runs"))?;
            let entries = txn.open_table(ENTRIES).map_err(storage("open entries"))?;
            let mut out: Vec<String> = Vec::new();
            for item in entries.iter().map_err(storage("iterate entries"))? {
                let (key, _) = item.map_err(storage("read entry key"))?;
                let id = key.value().0;
                if out.last().map(String::as_str) == Some(id) {
                    continue;
                }
                if runs.get(id).map_err(storage("read run"))?.is_none() {
                    out.push(id.to_owned());
                }
            }
            Ok(out)
        })
        .await
    }
}

fn check(txn: &ReadTransaction, run: &RunId) -> RunCheck {
    let mut out = RunCheck::default();
    match store::read_run(txn, run) {
        Ok(Some(meta)) => out.meta = Some(meta),
        Ok(None) => out.problems.push("no run record".into()),
        Err(e) => out.problems.push(e.to_string()),
    }
    if let Err(e) = check_entries(txn, run, &mut out) {
        out.problems.push(e.to_string());
    }
    out.check_last_seq();
    if let Some(meta) = &out.meta
        && !meta.definition_blob.is_empty()
    {
        match store::read_blob(txn, &meta.definition_blob) {
            Ok(Some(_)) => {}
            Ok(None) => out.problems.push(format!(
                "pinned definition blob {} is missing",
                meta.definition_blob
            )),
            Err(e) => out.problems.push(format!("pinned definition: {e}")),
        }
    }
    out
}

/// Decodes every entry of the run, checking seqs run 1, 2, 3… and spilled
/// payloads against their hashes; keeps what decodes.
fn check_entries(
    txn: &ReadTransaction,
    run: &RunId,
    out: &mut RunCheck,
) -> Result<(), JournalError> {
    let entries = txn.open_table(ENTRIES).map_err(storage("open entries"))?;
    let blobs = txn.open_table(BLOBS).map_err(storage("open blobs"))?;
    let id = run.as_str();
    let mut expected = 1u64;
    for item in entries
        .range((id, 0)..=(id, u64::MAX))
        .map_err(storage("range entries"))?
    {
        let (key, value) = item.map_err(storage("read entry"))?;
        let seq = key.value().1;
        if seq != expected {
            out.problems.push(if seq > expected {
                format!("entries {expected}..{} are missing", seq - 1)
            } else {
                format!("entry {seq} is out of order")
            });
        }
        expected = seq.saturating_add(1);
        let (mut entry, blob) = match codec::decode_entry(value.value()) {
            Ok(d) => d,
            Err(e) => {
                out.problems
                    .push(format!("entry {seq} is corrupt: {}", e.0));
                continue;
            }
        };
        if let Some(hash) = blob {
            let hex = blake3::Hash::from_bytes(hash).to_hex();
            match blobs.get(hex.as_str()).map_err(storage("read blob"))? {
                None => {
                    out.problems
                        .push(format!("entry {seq}: payload blob {hex} is missing"));
                    continue;
                }
                Some(bytes) => match store::verified(bytes.value(), hex.as_str()) {
                    Ok(b) => entry.payload = b.to_vec(),
                    Err(why) => {
                        out.problems.push(format!("entry {seq}: payload {why}"));
                        continue;
                    }
                },
            }
        }
        out.entries.push((Seq(seq), entry));
    }
    Ok(())
}
