//! The PostgreSQL schema and its versioned migrations.
//!
//! `lev_schema` holds one row per migration applied. Each migration runs in
//! a transaction of its own that first takes a transaction-level advisory
//! lock, so two lev processes starting at once against a fresh database
//! apply it once: the second waits for the first's commit, then finds the
//! version already there. A database whose version is newer than this
//! build knows is refused (`JournalError::Schema`): an older lev must not
//! write into tables whose meaning it does not know.
//!
//! Migrations are append-only: a released one is never edited, a change is
//! a new one.

use tokio_postgres::Client;

use super::{failed, to_u64};
use crate::journal::JournalError;

/// The schema, one migration a version (index 0 brings version 1).
///
/// Runs, entries and blobs hold the records of `journal::codec`, exactly
/// as redb stores them. Ids are `COLLATE "C"`: byte order, as redb sorts
/// its keys, so ULID ids list in creation order whatever the database's
/// locale. A run's row repeats the record's fields lev queries by (status,
/// last seq, updated time, parent); the record stays the truth a read
/// returns. An entry's row names the blob its payload spilled to, so a read
/// takes the payload in the same query; entries go with their run
/// (`ON DELETE CASCADE`), blobs stay (content-addressed, shared by runs).
///
/// Migration 2 brings run leases, migration 3 the memory bank and whisper
/// scores, migration 4 requests to a run's executor, migration 5 what work
/// a run is to workers (see their headings).
const MIGRATIONS: &[&str] = &[
    // 1: runs, entries, blobs.
    r#"
CREATE TABLE lev_runs (
    id text COLLATE "C" PRIMARY KEY,
    status text NOT NULL,
    last_seq bigint NOT NULL,
    updated_ms bigint NOT NULL,
    parent text COLLATE "C",
    record bytea NOT NULL
);
CREATE INDEX lev_runs_parent ON lev_runs (parent) WHERE parent IS NOT NULL;
CREATE TABLE lev_entries (
    run text COLLATE "C" NOT NULL REFERENCES lev_runs (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    record bytea NOT NULL,
    blob text COLLATE "C",
    PRIMARY KEY (run, seq)
);
CREATE TABLE lev_blobs (
    hash text COLLATE "C" PRIMARY KEY,
    bytes bytea NOT NULL
);
"#,
    // 2: run leases. A lev process that executes a run holds its lease:
    // `lease_holder` names the process, `lease_gen` counts the claims
    // (every claim takes the next, and an append carrying an older one is
    // refused: fencing), `lease_until` is when it lapses unless renewed
    // (the server's clock, so machines' clocks need not agree), and
    // `claim_after` holds a run back from claims a while (a worker that
    // could not execute it). The index finds what workers may claim.
    r#"
ALTER TABLE lev_runs
    ADD COLUMN lease_holder text,
    ADD COLUMN lease_gen bigint NOT NULL DEFAULT 0,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN claim_after timestamptz;
CREATE INDEX lev_runs_claimable ON lev_runs (updated_ms) WHERE status = 'running';
"#,
    // 3: the memory bank and FlowMind's whisper scores (`pg/memory.rs`,
    // `pg/whispers.rs`). A memory entry's row holds its record as redb
    // stores it (`journal::memory`'s encoding, its terms included) and its
    // length in terms; its postings are rows of `lev_memory_terms` that go
    // with it (`ON DELETE CASCADE`). redb's per-namespace counts are a
    // `GROUP BY` here: no counter row for concurrent writers to fight over.
    // Scores are three counters a category, incremented in place.
    r#"
CREATE TABLE lev_memory (
    namespace text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    record bytea NOT NULL,
    len bigint NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE TABLE lev_memory_terms (
    term text COLLATE "C" NOT NULL,
    namespace text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (term, namespace, key),
    FOREIGN KEY (namespace, key) REFERENCES lev_memory (namespace, key) ON DELETE CASCADE
);
CREATE INDEX lev_memory_terms_entry ON lev_memory_terms (namespace, key);
CREATE TABLE lev_whisper_scores (
    category text COLLATE "C" PRIMARY KEY,
    accepted bigint NOT NULL,
    edited bigint NOT NULL,
    dismissed bigint NOT NULL
);
"#,
    // 4: requests for the process that executes a run, from other
    // processes (`pg/inbox.rs`): addressed to a lease holder, taken once,
    // replied to in the row, which the sender deletes once read. They go
    // with their run.
    r#"
CREATE TABLE lev_ops (
    id bigserial PRIMARY KEY,
    run text COLLATE "C" NOT NULL REFERENCES lev_runs (id) ON DELETE CASCADE,
    holder text NOT NULL,
    request text NOT NULL,
    sent timestamptz NOT NULL DEFAULT now(),
    taken boolean NOT NULL DEFAULT false,
    reply text
);
CREATE INDEX lev_ops_waiting ON lev_ops (holder) WHERE NOT taken;
"#,
    // 5: what work a run is, for the workers that choose (`--modes`):
    // `run` (a whole run), `spread` (a spread run: its process only
    // schedules, its steps are runs of their own) or `step:<mode>` (a step
    // run of an agent step of that mode, or `step:shell`).
    r#"
ALTER TABLE lev_runs ADD COLUMN work text NOT NULL DEFAULT 'run';
"#,
];

/// The schema version this build writes and understands.
pub const PG_SCHEMA_VERSION: u64 = MIGRATIONS.len() as u64;

/// Key of the advisory lock migrations take ("lev_sche" in ASCII): any
/// fixed number works, as long as every lev uses the same one.
const MIGRATION_LOCK: i64 = 0x6c65_765f_7363_6865;

/// Brings the database's schema up to `PG_SCHEMA_VERSION`, one migration
/// a transaction; a database already there costs one short transaction.
pub(super) async fn migrate(client: &mut Client, server: &str) -> Result<(), JournalError> {
    loop {
        let tx = client
            .transaction()
            .await
            .map_err(failed(server, "begin schema transaction"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(failed(server, "take the schema lock"))?;
        // Under the lock: two processes never race to create it.
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS lev_schema (
                 version bigint PRIMARY KEY,
                 applied_ms bigint NOT NULL
             )",
        )
        .await
        .map_err(failed(server, "create lev_schema"))?;
        let row = tx
            .query_one("SELECT coalesce(max(version), 0) FROM lev_schema", &[])
            .await
            .map_err(failed(server, "read the schema version"))?;
        let found: i64 = row
            .try_get(0)
            .map_err(failed(server, "read the schema version"))?;
        let found = to_u64(found, server, "schema version")?;
        if found > PG_SCHEMA_VERSION {
            return Err(JournalError::Schema {
                found,
                supported: PG_SCHEMA_VERSION,
            });
        }
        let Some(sql) = usize::try_from(found)
            .ok()
            .and_then(|applied| MIGRATIONS.get(applied))
        else {
            // Up to date: the lock goes with the transaction.
            tx.commit()
                .await
                .map_err(failed(server, "end schema transaction"))?;
            return Ok(());
        };
        let next = found as i64 + 1;
        let during = format!("apply schema migration {next}");
        tx.batch_execute(sql)
            .await
            .map_err(failed(server, &during))?;
        tx.execute(
            "INSERT INTO lev_schema (version, applied_ms)
             VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
            &[&next],
        )
        .await
        .map_err(failed(server, &during))?;
        tx.commit().await.map_err(failed(server, &during))?;
        tracing::info!(server, version = next, "PostgreSQL journal schema migrated");
    }
}
