//! The store's SQL: a connection with its prepared statements, and each
//! operation as redb's store and writer carry it out (`journal::store`,
//! `journal::writer`), transaction for commit.

use futures::future::{join_all, try_join_all};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement, Transaction};

use super::tls::Tls;
use super::{failed, listen, open_client, schema, to_i64, to_u64, words};
use crate::journal::codec::{self, EncodedEntry};
use crate::journal::store::verified;
use crate::journal::{Entry, JournalError, RunMeta};
use crate::protocol::{RunId, RunStatus};

/// A parameter of a statement.
type Param<'a> = &'a (dyn ToSql + Sync);

/// A connection whose schema is up to date, with the statements the store
/// runs prepared once (each call then costs one round trip, not two).
pub(super) struct Conn {
    client: Client,
    st: Statements,
}

struct Statements {
    insert_run: Statement,
    lock_run: Statement,
    update_run: Statement,
    insert_entry: Statement,
    insert_blob: Statement,
    notify: Statement,
    read_entries: Statement,
    read_run: Statement,
    read_runs: Statement,
    read_blob: Statement,
}

impl Conn {
    /// Connects, migrates the schema and prepares the statements.
    pub(super) async fn open(
        config: &tokio_postgres::Config,
        tls: &Tls,
        server: &str,
    ) -> Result<Conn, JournalError> {
        let (mut client, connection) = open_client(config, tls, server).await?;
        let name = server.to_owned();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(server = %name, error = %words(&e), "PostgreSQL connection ended");
            }
        });
        schema::migrate(&mut client, server).await?;
        let st = Statements::prepare(&client, server).await?;
        Ok(Conn { client, st })
    }

    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The client, for the store's rarer operations (the memory bank,
    /// whisper scores, deleting runs, doctor, leases): they send their SQL as they
    /// run it rather than keep statements prepared on every connection.
    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// The client, to open a transaction on.
    pub(super) fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// A read-only transaction whose reads all see one snapshot (several
    /// reads that must agree with each other: a run's record and its
    /// entries, the memory bank's index and its entries).
    pub(super) async fn snapshot(
        &mut self,
        server: &str,
        during: &str,
    ) -> Result<Transaction<'_>, JournalError> {
        self.client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(failed(server, during))
    }
}

impl Statements {
    async fn prepare(client: &Client, server: &str) -> Result<Statements, JournalError> {
        let notify = format!("SELECT pg_notify('{}', $1)", listen::CHANNEL);
        // Sent together: one round trip for all of them.
        let all = try_join_all(
            [
                // A run made by a process that executes it is made leased
                // to it ($7 the holder, $8 the lease in ms): no worker can
                // claim it between its creation and its first step.
                "INSERT INTO lev_runs (id, status, last_seq, updated_ms, parent, record,
                     lease_holder, lease_gen, lease_until, work)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::text,
                     CASE WHEN $7::text IS NULL THEN 0 ELSE 1 END,
                     CASE WHEN $7::text IS NULL THEN NULL
                          ELSE now() + $8::bigint * interval '1 millisecond' END,
                     $9)
                 ON CONFLICT (id) DO NOTHING",
                "SELECT record, lease_holder, lease_gen, coalesce(lease_until > now(), false)
                 FROM lev_runs WHERE id = $1 FOR UPDATE",
                "UPDATE lev_runs SET status = $2, last_seq = $3, updated_ms = $4,
                     parent = $5, record = $6
                 WHERE id = $1",
                "INSERT INTO lev_entries (run, seq, record, blob) VALUES ($1, $2, $3, $4)",
                "INSERT INTO lev_blobs (hash, bytes) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
                notify.as_str(),
                "SELECT e.seq, e.record, e.blob, b.bytes
                 FROM lev_entries e LEFT JOIN lev_blobs b ON b.hash = e.blob
                 WHERE e.run = $1 AND e.seq >= $2
                 ORDER BY e.seq",
                "SELECT record FROM lev_runs WHERE id = $1",
                "SELECT id, record FROM lev_runs ORDER BY id DESC",
                "SELECT bytes FROM lev_blobs WHERE hash = $1",
            ]
            .map(|sql| client.prepare(sql)),
        )
        .await
        .map_err(failed(server, "prepare the journal's statements"))?;
        let [
            insert_run,
            lock_run,
            update_run,
            insert_entry,
            insert_blob,
            notify,
            read_entries,
            read_run,
            read_runs,
            read_blob,
        ] = <[Statement; 10]>::try_from(all).map_err(|_| {
            JournalError::Storage(format!("{server}: prepared statements went missing"))
        })?;
        Ok(Statements {
            insert_run,
            lock_run,
            update_run,
            insert_entry,
            insert_blob,
            notify,
            read_entries,
            read_run,
            read_runs,
            read_blob,
        })
    }
}

/// An append as `PgStore::append` takes it, its entries encoded.
pub(super) struct Append<'a> {
    pub(super) run: &'a RunId,
    /// The seq the first entry must get; `None` appends after the run's
    /// last seq, whatever it is (as redb's writer does).
    pub(super) at_seq: Option<u64>,
    pub(super) entries: Vec<EncodedEntry>,
    pub(super) status: Option<RunStatus>,
    /// Blobs the entries refer to, written in the same transaction.
    pub(super) blobs: &'a [(String, Vec<u8>)],
    /// The generation of the lease the appender holds on the run, if any
    /// (see `fence`).
    pub(super) lease: Option<i64>,
}

/// A new run's lease: who holds it and for how long (milliseconds).
pub(super) type NewLease<'a> = Option<(&'a str, i64)>;

/// Inserts the run's row (its `last_seq` reset to 0), its first entries
/// and the blobs they refer to (an import's), in one transaction.
pub(super) async fn create_run(
    conn: &mut Conn,
    server: &str,
    meta: &RunMeta,
    (first, blobs): (Vec<EncodedEntry>, &[(String, Vec<u8>)]),
    lease: NewLease<'_>,
    work: &str,
) -> Result<Vec<u64>, JournalError> {
    let Conn { client, st } = conn;
    let during = format!("create run {}", meta.id);
    let mut meta = meta.clone();
    meta.last_seq = 0;
    let tx = client
        .transaction()
        .await
        .map_err(failed(server, &during))?;
    let row = RunRow::of(&meta, server)?;
    let (holder, lease_ms) = lease.map_or((None, 0), |(h, ms)| (Some(h), ms));
    let [id, status, last_seq, updated_ms, parent, record] = row.params();
    let inserted = tx
        .execute(
            &st.insert_run,
            &[
                id, status, last_seq, updated_ms, parent, record, &holder, &lease_ms, &work,
            ],
        )
        .await
        .map_err(failed(server, &during))?;
    if inserted == 0 {
        return Err(JournalError::RunExists(meta.id));
    }
    let seqs = write_entries(
        &tx,
        st,
        server,
        &meta.id,
        0,
        (&first, blobs),
        &mut meta.updated_ms,
    )
    .await?;
    if let Some(&last) = seqs.last() {
        meta.last_seq = last;
        save_run(&tx, st, server, &meta, true).await?;
    }
    tx.commit().await.map_err(failed(server, &during))?;
    Ok(seqs)
}

/// `PgStore::append`: the run's row locked, the seq checked, the entries
/// and the updated row written, the listeners notified, in one transaction.
pub(super) async fn append(
    conn: &mut Conn,
    server: &str,
    append: Append<'_>,
) -> Result<Vec<u64>, JournalError> {
    let Conn { client, st } = conn;
    let during = format!("append to run {}", append.run);
    // Dropped uncommitted on every early return: PostgreSQL rolls it back.
    let tx = client
        .transaction()
        .await
        .map_err(failed(server, &during))?;
    let seqs = append_in(&tx, st, server, &append).await?;
    tx.commit().await.map_err(failed(server, &during))?;
    Ok(seqs)
}

/// Appends to several runs in one transaction: one commit (one fsync on
/// the server) for what a process's runs wrote meanwhile. Each append is
/// checked as `append` checks it, and one that is refused (its run gone,
/// its lease lost, a seq that is not the next) is refused alone, having
/// written nothing; a failure of the transaction fails them all. Rows are
/// locked in run order, so two processes' batches never deadlock. The
/// answers are in the order of `appends`.
pub(super) async fn append_batch(
    conn: &mut Conn,
    server: &str,
    appends: Vec<Append<'_>>,
) -> Result<Vec<Result<Vec<u64>, JournalError>>, JournalError> {
    // Sent together, in run order: the server takes the row locks in that
    // order, and the whole batch costs the round trips of one append.
    let mut appends: Vec<(usize, Append<'_>)> = appends.into_iter().enumerate().collect();
    appends.sort_by(|(_, x), (_, y)| x.run.as_str().cmp(y.run.as_str()));
    let mut tries = 0;
    loop {
        tries += 1;
        match batch_once(conn, server, &appends).await {
            // Two transactions waiting for each other (another process's
            // blobs inserted in another order): the server broke the
            // circle by failing this one, which wrote nothing; again.
            Err(e) if tries < DEADLOCK_TRIES && is_deadlock(&e) => {
                tracing::info!(error = %e, "a batch of appends met a deadlock; writing it again");
            }
            done => return done,
        }
    }
}

/// Times a batch of appends is written when the server fails it to break
/// a deadlock.
const DEADLOCK_TRIES: u32 = 3;

/// One transaction of `append_batch`.
async fn batch_once(
    conn: &mut Conn,
    server: &str,
    appends: &[(usize, Append<'_>)],
) -> Result<Vec<Result<Vec<u64>, JournalError>>, JournalError> {
    let Conn { client, st } = conn;
    let during = format!("append to {} runs", appends.len());
    let tx = client
        .transaction()
        .await
        .map_err(failed(server, &during))?;
    let mut answers: Vec<Option<Result<Vec<u64>, JournalError>>> =
        (0..appends.len()).map(|_| None).collect();
    let (open, st): (&Transaction<'_>, &Statements) = (&tx, st);
    let done = join_all(
        appends
            .iter()
            .map(|(i, append)| async move { (*i, append_in(open, st, server, append).await) }),
    )
    .await;
    let mut failure: Option<JournalError> = None;
    for (i, result) in done {
        match result {
            // The failure that aborted the transaction, rather than the
            // "transaction is aborted" of the statements after it.
            Err(e) if !is_refusal(&e) => {
                if failure
                    .as_ref()
                    .is_none_or(|f| cause_rank(&e) > cause_rank(f))
                {
                    failure = Some(e);
                }
            }
            answer => answers[i] = Some(answer),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    tx.commit().await.map_err(failed(server, &during))?;
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(JournalError::Storage(during.clone()))))
        .collect())
}

/// A transaction the server failed to break a deadlock (SQLSTATE 40P01,
/// as `words` puts it in the message).
fn is_deadlock(e: &JournalError) -> bool {
    matches!(e, JournalError::Storage(m) if m.ends_with("[SQLSTATE 40P01]"))
}

/// How surely a statement's failure is what aborted a transaction: a
/// deadlock, then anything but "current transaction is aborted" (25P02,
/// what the statements after the cause are told).
fn cause_rank(e: &JournalError) -> u8 {
    match e {
        _ if is_deadlock(e) => 2,
        JournalError::Storage(m) if m.ends_with("[SQLSTATE 25P02]") => 0,
        _ => 1,
    }
}

/// An append's refusal, found before it wrote anything: the transaction
/// goes on for the others.
fn is_refusal(e: &JournalError) -> bool {
    matches!(
        e,
        JournalError::RunNotFound(_)
            | JournalError::LeaseLost { .. }
            | JournalError::Leased { .. }
            | JournalError::Gap { .. }
    )
}

/// One append inside `tx`: the run's row locked, the lease fenced, the seq
/// checked, then the entries and the updated row written (with the
/// notification). A refusal returns before anything is written.
async fn append_in(
    tx: &Transaction<'_>,
    st: &Statements,
    server: &str,
    append: &Append<'_>,
) -> Result<Vec<u64>, JournalError> {
    let Append {
        run,
        at_seq,
        ref entries,
        status,
        blobs,
        lease,
    } = *append;
    let during = format!("append to run {run}");
    // The row lock makes appenders of one run take turns: the second one
    // reads the row as the first one's commit left it.
    let Some(row) = tx
        .query_opt(&st.lock_run, &[&run.as_str()])
        .await
        .map_err(failed(server, &during))?
    else {
        return Err(JournalError::RunNotFound(run.clone()));
    };
    let mut meta = run_of(&row, 0, server, run)?;
    let columns = |e| failed(server, "read a run's lease")(e);
    let holder: Option<&str> = row.try_get(1).map_err(columns)?;
    let generation: i64 = row.try_get(2).map_err(columns)?;
    let live: bool = row.try_get(3).map_err(columns)?;
    fence(run, lease, (holder, generation, live))?;
    if let Some(at_seq) = at_seq
        && meta.last_seq.checked_add(1) != Some(at_seq)
    {
        return Err(JournalError::Gap {
            run: run.clone(),
            expected: at_seq,
            last: meta.last_seq,
        });
    }
    let seqs = write_entries(
        tx,
        st,
        server,
        run,
        meta.last_seq,
        (entries, blobs),
        &mut meta.updated_ms,
    )
    .await?;
    if let Some(&last) = seqs.last() {
        meta.last_seq = last;
    }
    if let Some(status) = status {
        meta.status = status;
    }
    save_run(tx, st, server, &meta, !seqs.is_empty()).await?;
    Ok(seqs)
}

/// Whether an appender holding `lease` (a generation, or none) may write
/// to a run whose row says `(holder, generation, live)`. A holder whose
/// generation is no longer the row's was claimed over (its lease lapsed
/// while it was stopped or cut off): it is refused, so a process that
/// wakes after losing a run never writes to it again — and never starts
/// a command, whose start it must journal first. Without a lease, a run
/// another process holds a live lease on is refused (it writes the run);
/// one nobody holds, or whose lease lapsed, is anyone's to write.
fn fence(
    run: &RunId,
    lease: Option<i64>,
    (holder, generation, live): (Option<&str>, i64, bool),
) -> Result<(), JournalError> {
    match lease {
        Some(mine) if mine != generation => Err(JournalError::LeaseLost {
            run: run.clone(),
            holder: holder.map(str::to_owned),
        }),
        Some(_) => Ok(()),
        None => match holder {
            Some(holder) if live => Err(JournalError::Leased {
                run: run.clone(),
                holder: holder.to_owned(),
            }),
            _ => Ok(()),
        },
    }
}

/// Writes entries after `last_seq`, their spilled payloads and the blobs
/// they refer to first, and keeps
/// `updated_ms` at the newest entry time (journaled times, not a clock
/// read, as redb's writer does). The inserts are sent together: one
/// round trip for the whole append.
async fn write_entries(
    tx: &Transaction<'_>,
    st: &Statements,
    server: &str,
    run: &RunId,
    last_seq: u64,
    (entries, referred): (&[EncodedEntry], &[(String, Vec<u8>)]),
    updated_ms: &mut u64,
) -> Result<Vec<u64>, JournalError> {
    let mut seqs = Vec::with_capacity(entries.len());
    let mut keys = Vec::with_capacity(entries.len());
    let mut seq = last_seq;
    for entry in entries {
        seq = seq
            .checked_add(1)
            .ok_or_else(|| JournalError::Storage(format!("{server}: run {run} has no seq left")))?;
        keys.push(to_i64(seq, server, "seq")?);
        seqs.push(seq);
        *updated_ms = (*updated_ms).max(entry.at_ms);
    }
    let id = run.as_str();
    let hashes: Vec<Option<&str>> = entries
        .iter()
        .map(|e| e.spilled.as_ref().map(|(hash, _)| hash.as_str()))
        .collect();
    // Blobs in hash order: two appends storing the same blobs at once
    // then wait for each other in one order, never in a deadlock.
    let mut blobs: Vec<&(String, Vec<u8>)> = entries
        .iter()
        .filter_map(|e| e.spilled.as_ref())
        .chain(referred)
        .collect();
    blobs.sort_by(|a, b| a.0.cmp(&b.0));
    blobs.dedup_by(|a, b| a.0 == b.0);
    let mut writes = Vec::with_capacity(blobs.len() + entries.len());
    for (hash, bytes) in blobs {
        let params: Vec<Param> = vec![hash, bytes];
        writes.push(tx.execute_raw(&st.insert_blob, params));
    }
    for ((entry, key), hash) in entries.iter().zip(&keys).zip(&hashes) {
        let params: Vec<Param> = vec![&id, key, &entry.record, hash];
        writes.push(tx.execute_raw(&st.insert_entry, params));
    }
    let during = format!("write entries of run {run}");
    try_join_all(writes)
        .await
        .map_err(failed(server, &during))?;
    Ok(seqs)
}

/// Writes the run's updated row, and (when entries were written) the
/// notification, which PostgreSQL delivers only if the transaction commits.
async fn save_run(
    tx: &Transaction<'_>,
    st: &Statements,
    server: &str,
    meta: &RunMeta,
    notify: bool,
) -> Result<(), JournalError> {
    let during = format!("update run {}", meta.id);
    let row = RunRow::of(meta, server)?;
    let params = row.params();
    let update = tx.execute(&st.update_run, &params);
    if notify {
        let payload = listen::payload(&meta.id, meta.last_seq);
        let notify: [Param; 1] = [&payload];
        tokio::try_join!(update, tx.execute(&st.notify, &notify))
            .map_err(failed(server, &during))?;
    } else {
        update.await.map_err(failed(server, &during))?;
    }
    Ok(())
}

/// The columns of a run's row: the record, and the fields queried by.
struct RunRow<'a> {
    id: &'a str,
    status: &'static str,
    last_seq: i64,
    updated_ms: i64,
    parent: Option<&'a str>,
    record: Vec<u8>,
}

impl<'a> RunRow<'a> {
    fn of(meta: &'a RunMeta, server: &str) -> Result<RunRow<'a>, JournalError> {
        Ok(RunRow {
            id: meta.id.as_str(),
            status: meta.status.as_str(),
            last_seq: to_i64(meta.last_seq, server, "last seq")?,
            updated_ms: to_i64(meta.updated_ms, server, "updated time")?,
            parent: meta.parent.as_ref().map(RunId::as_str),
            record: codec::encode_run(meta),
        })
    }

    /// In the order of `insert_run` and `update_run`.
    fn params(&self) -> [Param<'_>; 6] {
        [
            &self.id,
            &self.status,
            &self.last_seq,
            &self.updated_ms,
            &self.parent,
            &self.record,
        ]
    }
}

/// The run record in column `col` of `row`, decoded.
fn run_of(row: &Row, col: usize, server: &str, run: &RunId) -> Result<RunMeta, JournalError> {
    let record: &[u8] = row
        .try_get(col)
        .map_err(failed(server, "read a run record"))?;
    codec::decode_run(record).map_err(|e| {
        JournalError::Storage(format!("{server}: run {run} record is corrupt: {}", e.0))
    })
}

/// Entries of `run` with seq ≥ `from`, spilled payloads put back: one
/// query (one snapshot) brings each entry with its blob.
pub(super) async fn read(
    conn: &Conn,
    server: &str,
    run: &RunId,
    from: u64,
) -> Result<Vec<(u64, Entry)>, JournalError> {
    // No seq is past bigint's range: a `from` beyond it finds nothing.
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let during = format!("read entries of run {run}");
    let rows = conn
        .client
        .query(&conn.st.read_entries, &[&run.as_str(), &from])
        .await
        .map_err(failed(server, &during))?;
    rows.iter().map(|row| entry_of(row, server, run)).collect()
}

/// One row of `read_entries` as the entry it stores.
fn entry_of(row: &Row, server: &str, run: &RunId) -> Result<(u64, Entry), JournalError> {
    let columns = |e| failed(server, "read an entry row")(e);
    let seq: i64 = row.try_get(0).map_err(columns)?;
    let seq = to_u64(seq, server, "seq")?;
    let record: &[u8] = row.try_get(1).map_err(columns)?;
    let named: Option<&str> = row.try_get(2).map_err(columns)?;
    let bytes: Option<&[u8]> = row.try_get(3).map_err(columns)?;
    let corrupt =
        |why: String| JournalError::Storage(format!("{server}: run {run} entry {seq}{why}"));
    let (mut entry, blob) =
        codec::decode_entry(record).map_err(|e| corrupt(format!(" is corrupt: {}", e.0)))?;
    if let Some(hash) = blob {
        let hex = blake3::Hash::from_bytes(hash).to_hex();
        if named != Some(hex.as_str()) {
            return Err(corrupt(format!(
                ": its record's payload blob {hex} is not the one its row names ({})",
                named.unwrap_or("none")
            )));
        }
        let bytes = bytes.ok_or_else(|| corrupt(format!(": payload blob {hex} is missing")))?;
        entry.payload = verified(bytes, hex.as_str())
            .map_err(|why| corrupt(format!(": payload {why}")))?
            .to_vec();
    }
    Ok((seq, entry))
}

pub(super) async fn run(
    conn: &Conn,
    server: &str,
    run: &RunId,
) -> Result<Option<RunMeta>, JournalError> {
    let during = format!("read run {run}");
    let row = conn
        .client
        .query_opt(&conn.st.read_run, &[&run.as_str()])
        .await
        .map_err(failed(server, &during))?;
    row.map(|row| run_of(&row, 0, server, run)).transpose()
}

pub(super) async fn runs(conn: &Conn, server: &str) -> Result<Vec<RunMeta>, JournalError> {
    let rows = conn
        .client
        .query(&conn.st.read_runs, &[])
        .await
        .map_err(failed(server, "list runs"))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: &str = row.try_get(0).map_err(failed(server, "list runs"))?;
        match run_of(row, 1, server, &RunId(id.to_owned())) {
            Ok(meta) => out.push(meta),
            Err(e) => tracing::warn!(run = id, error = %e, "run record is damaged"),
        }
    }
    Ok(out)
}

pub(super) async fn put_blob(
    conn: &Conn,
    server: &str,
    hash: &str,
    bytes: &[u8],
) -> Result<(), JournalError> {
    let during = format!("write blob {hash}");
    conn.client
        .execute(&conn.st.insert_blob, &[&hash, &bytes])
        .await
        .map_err(failed(server, &during))?;
    Ok(())
}

pub(super) async fn blob(
    conn: &Conn,
    server: &str,
    hash: &str,
) -> Result<Option<Vec<u8>>, JournalError> {
    let during = format!("read blob {hash}");
    let Some(row) = conn
        .client
        .query_opt(&conn.st.read_blob, &[&hash])
        .await
        .map_err(failed(server, &during))?
    else {
        return Ok(None);
    };
    let bytes: &[u8] = row.try_get(0).map_err(failed(server, &during))?;
    verified(bytes, hash)
        .map(|b| Some(b.to_vec()))
        .map_err(|why| JournalError::Storage(format!("{server}: {why}")))
}
