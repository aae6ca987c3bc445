//! PostgreSQL as a journal backend, for teams: runs, entries and blobs in a
//! database several lev processes (later on several machines) share.
//!
//! The records are those of `journal::codec`, byte for byte as redb stores
//! them, so the two backends agree on what a run is and a journal can move
//! between them. What redb's single writer thread guarantees by being the
//! only writer, PostgreSQL gets from row locks: an append locks its run's
//! row, so two processes appending to one run are serialized and the one
//! that counted on a seq already taken is refused (`JournalError::Gap`).
//! Every commit that writes entries notifies `lev_entries`, so a process
//! can follow runs other processes write (`PgStore::listen`).
//!
//! Beside runs, the store keeps what redb's journal keeps: the memory bank
//! (`memory`) and FlowMind's whisper scores (`whispers`), each write one
//! transaction or one statement, so processes writing at once lose
//! nothing; it deletes runs with the blobs no remaining run refers to
//! (`prune`), and checks runs as `lev doctor` does (`doctor`). Compacting
//! is the server's (autovacuum), and salvaging a damaged file is redb's
//! alone.
//!
//! `Journal::open_url` puts a `Journal` on it (`PgJournal`: a writer task
//! applies appends in submission order).
//!
//! Authentication and transport are PostgreSQL's own: roles and passwords
//! (in the URL, or `PGPASSWORD` when the URL has none), and TLS with
//! libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` (`tls`), on
//! every connection lev makes (the store's, `listen`'s).

mod doctor;
mod inbox;
mod journal;
#[cfg(test)]
mod journal_tests;
mod lease;
#[cfg(test)]
mod lease_tests;
mod listen;
mod memory;
#[cfg(test)]
mod parity_tests;
mod prune;
mod schema;
mod store;
#[cfg(test)]
pub(crate) mod tests;
mod tls;
#[cfg(test)]
mod tls_tests;
mod whispers;

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard, mpsc};
use tokio_postgres::Config;
use tokio_postgres::config::Host;
use tokio_postgres::tls::MakeTlsConnect;

pub use inbox::InboxRequest;
pub(crate) use journal::{Append as PgAppend, PgJournal, Request};
pub(crate) use lease::Claimed;
pub use lease::DEFAULT_LEASE;
pub use schema::PG_SCHEMA_VERSION;

use super::codec::EncodedEntry;
use super::{Entry, JournalError, RunMeta};
use crate::protocol::{RunId, RunStatus};

/// Longest a connection attempt waits when the URL sets no
/// `connect_timeout`: an unreachable server is an error, not a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A journal store in a PostgreSQL database; cheap to clone, shared by
/// every task.
///
/// One connection serves a store (a transaction needs the connection to
/// itself, so calls take turns on it); a connection found lost is made
/// again at the next call. `listen` opens a connection of its own.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    tls: tls::Tls,
    /// The server and database as errors name them (never the password).
    server: String,
    conn: Mutex<store::Conn>,
}

/// The password a journal URL holds (`postgres://lev:PASSWORD@…`,
/// `password=…`), if any: a secret of the process (never shown, never
/// given to a child process).
pub fn password_in(url: &str) -> Option<String> {
    let (rest, _) = tls::split(url).ok()?;
    let config: Config = rest.parse().ok()?;
    config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

impl PgStore {
    /// Connects (`url`: a postgres:// URL or key-value string, with
    /// libpq's TLS parameters: see `tls`) and brings the schema up to date
    /// (see `schema`); a database whose schema is newer than this build
    /// knows is `JournalError::Schema`. A failed connection is
    /// `JournalError::Open` naming the server (host and database, never a
    /// password) with PostgreSQL's words, or what failed in TLS.
    pub async fn connect(url: &str) -> Result<PgStore, JournalError> {
        let unparsed = |message| JournalError::Open {
            path: "PostgreSQL".to_owned(),
            message,
        };
        let (rest, ssl) = tls::split(url).map_err(unparsed)?;
        let mut config: Config = rest.parse().map_err(|e| unparsed(words(&e)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("lev");
        }
        // As libpq: the environment's password when the URL gives none.
        if config.get_password().is_none()
            && let Some(password) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty())
        {
            config.password(password.as_encoded_bytes());
        }
        let home = etcetera::home_dir().ok();
        let tls =
            ssl.apply(&mut config, home.as_deref())
                .map_err(|message| JournalError::Open {
                    path: describe(&config),
                    message,
                })?;
        let server = describe(&config);
        let conn = store::Conn::open(&config, &tls, &server).await?;
        Ok(PgStore {
            inner: Arc::new(Inner {
                config,
                tls,
                server,
                conn: Mutex::new(conn),
            }),
        })
    }

    /// The server and database, as errors name them.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// Records a new run (its `last_seq` is reset to 0: no entries yet);
    /// `RunExists` when the id is taken.
    pub async fn create_run(&self, meta: &RunMeta) -> Result<(), JournalError> {
        self.create_run_with(meta, Vec::new()).await.map(|_| ())
    }

    /// Records a new run together with its first entries (seqs 1, 2, …),
    /// in one transaction, so no crash leaves a run without them.
    pub async fn create_run_with(
        &self,
        meta: &RunMeta,
        first: Vec<Entry>,
    ) -> Result<Vec<u64>, JournalError> {
        let first = first.into_iter().map(super::codec::encode_entry).collect();
        self.create_run_encoded(meta, first, &[], None, crate::journal::work::RUN)
            .await
    }

    /// `create_run_with` of entries already encoded, with the blobs they
    /// refer to in the same transaction (an import), leased to `lease`'s
    /// holder for its milliseconds when given (a run its maker executes);
    /// `work` is what workers see it as (migration 5).
    pub(crate) async fn create_run_encoded(
        &self,
        meta: &RunMeta,
        first: Vec<EncodedEntry>,
        blobs: &[(String, Vec<u8>)],
        lease: Option<(&str, i64)>,
        work: &str,
    ) -> Result<Vec<u64>, JournalError> {
        let mut conn = self.conn().await?;
        store::create_run(
            &mut conn,
            &self.inner.server,
            meta,
            (first, blobs),
            lease,
            work,
        )
        .await
    }

    /// Appends `entries` as seqs `at_seq`, `at_seq + 1`, … of `run` in one
    /// transaction, `status` (if any) becoming the run's status, as redb's
    /// writer does: `updated_ms` the newest of the entries' `at_ms` (never
    /// moving back), `last_seq` the last seq. `Gap` when `at_seq` is not
    /// the run's `last_seq + 1` (its row is locked, so concurrent appenders
    /// of one seq get one winner), `RunNotFound` when there is no run.
    /// Payloads over the inline limit go to blobs in the same transaction.
    /// A commit that wrote entries notifies `lev_entries` (see `listen`).
    /// Returns the seqs written.
    pub async fn append(
        &self,
        run: &RunId,
        at_seq: u64,
        entries: Vec<Entry>,
        status: Option<RunStatus>,
    ) -> Result<Vec<u64>, JournalError> {
        // Encoded and hashed before the connection is taken: other calls
        // need not wait for it.
        let entries = entries
            .into_iter()
            .map(super::codec::encode_entry)
            .collect();
        self.append_encoded(run, Some(at_seq), entries, status, &[], None)
            .await
    }

    /// `append` of entries already encoded, with the blobs they refer to
    /// in the same transaction; `at_seq: None` appends after the run's
    /// last seq, whatever it is. `lease`: the generation of the run's lease
    /// the appender holds, checked in the transaction (`LeaseLost` when the
    /// run was claimed since; `Leased` without one while another process
    /// holds a live lease).
    pub(crate) async fn append_encoded(
        &self,
        run: &RunId,
        at_seq: Option<u64>,
        entries: Vec<EncodedEntry>,
        status: Option<RunStatus>,
        blobs: &[(String, Vec<u8>)],
        lease: Option<i64>,
    ) -> Result<Vec<u64>, JournalError> {
        let mut conn = self.conn().await?;
        store::append(
            &mut conn,
            &self.inner.server,
            store::Append {
                run,
                at_seq,
                entries,
                status,
                blobs,
                lease,
            },
        )
        .await
    }

    /// Several appends (of runs of their own) in one transaction: see
    /// `store::append_batch`. The answers are in the order of `appends`.
    async fn append_batch(
        &self,
        appends: Vec<store::Append<'_>>,
    ) -> Result<Vec<Result<Vec<u64>, JournalError>>, JournalError> {
        let mut conn = self.conn().await?;
        store::append_batch(&mut conn, &self.inner.server, appends).await
    }

    /// Entries of `run` with seq ≥ `from`, in order, spilled payloads put
    /// back (verified against their hash). No run reads as no entries.
    pub async fn read(&self, run: &RunId, from: u64) -> Result<Vec<(u64, Entry)>, JournalError> {
        let conn = self.conn().await?;
        store::read(&conn, &self.inner.server, run, from).await
    }

    /// A run's metadata, or `None` when no such run exists.
    pub async fn run(&self, run: &RunId) -> Result<Option<RunMeta>, JournalError> {
        let conn = self.conn().await?;
        store::run(&conn, &self.inner.server, run).await
    }

    /// Every run whose record decodes, newest first (descending id order,
    /// as redb's `Journal::runs` lists them); a damaged record is left out
    /// and logged rather than hiding every other run.
    pub async fn runs(&self) -> Result<Vec<RunMeta>, JournalError> {
        let conn = self.conn().await?;
        store::runs(&conn, &self.inner.server).await
    }

    /// Stores bytes under their `blob_hash` (idempotent); returns the hash.
    pub async fn put_blob(&self, bytes: Vec<u8>) -> Result<String, JournalError> {
        let hash = super::blob_hash(&bytes);
        let conn = self.conn().await?;
        store::put_blob(&conn, &self.inner.server, &hash, &bytes).await?;
        Ok(hash)
    }

    /// The bytes stored under `hash`, or `None`; verified against the hash
    /// when read, so a damaged blob is an error naming it, never data.
    pub async fn blob(&self, hash: &str) -> Result<Option<Vec<u8>>, JournalError> {
        let conn = self.conn().await?;
        store::blob(&conn, &self.inner.server, hash).await
    }

    /// `(run, last seq)` each time a commit that wrote entries lands, from
    /// any process on the database, in commit order (LISTEN `lev_entries`
    /// on a connection of its own, listening before this returns).
    /// Dropping the receiver closes that connection, which unlistens; the
    /// stream ends when the connection is lost (listen again then).
    pub async fn listen(&self) -> Result<mpsc::UnboundedReceiver<(RunId, u64)>, JournalError> {
        listen::listen(&self.inner.config, &self.inner.tls, &self.inner.server).await
    }

    /// The ids of runs that became claimable (a lease let go of a run
    /// still running, `lev run --detach`), from any process, as they are
    /// announced; a listening connection of its own, as `listen`'s.
    pub(crate) async fn listen_ready(
        &self,
    ) -> Result<mpsc::UnboundedReceiver<String>, JournalError> {
        listen::listen_to(
            &self.inner.config,
            &self.inner.tls,
            &self.inner.server,
            lease::READY_CHANNEL,
        )
        .await
    }

    /// The store's connection, made again first when it was lost (the
    /// server restarted, a network blip): only the call that was on it
    /// when it went fails.
    async fn conn(&self) -> Result<MutexGuard<'_, store::Conn>, JournalError> {
        let mut conn = self.inner.conn.lock().await;
        if conn.is_closed() {
            tracing::warn!(server = %self.inner.server, "PostgreSQL connection lost; reconnecting");
            *conn =
                store::Conn::open(&self.inner.config, &self.inner.tls, &self.inner.server).await?;
        }
        Ok(conn)
    }
}

/// A connection as `open_client` makes it: TLS or not, as `tls` decided.
type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

/// Connects with the TLS `tls` enforces; the caller drives the connection
/// (a task of its own, which ends when the client is dropped or the
/// connection is lost).
async fn open_client(
    config: &Config,
    tls: &tls::Tls,
    server: &str,
) -> Result<(tokio_postgres::Client, Connection), JournalError> {
    config
        .connect(tls.connector.clone())
        .await
        .map_err(|e| JournalError::Open {
            path: server.to_owned(),
            message: tls.explain(&e),
        })
}

/// How errors name a server: `PostgreSQL database D on H:P as U` (never
/// the password).
fn describe(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first());
            match (host, port) {
                (Host::Tcp(name), Some(port)) => format!("{name}:{port}"),
                (Host::Tcp(name), None) => name.clone(),
                (Host::Unix(dir), Some(port)) => format!("{} (port {port})", dir.display()),
                (Host::Unix(dir), None) => dir.display().to_string(),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "no host".to_owned()
    } else {
        hosts.join(",")
    };
    let user = config.get_user().unwrap_or("(default user)");
    // PostgreSQL's default database is the user's name.
    let db = config.get_dbname().unwrap_or(user);
    format!("PostgreSQL database {db} on {hosts} as {user}")
}

/// PostgreSQL's own words for an error: the server's message with its
/// detail, hint and code, or the client's error with its causes.
fn words(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut out = db.message().to_owned();
        if let Some(detail) = db.detail() {
            out.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            out.push_str(&format!("; hint: {hint}"));
        }
        out.push_str(&format!(" [SQLSTATE {}]", db.code().code()));
        return out;
    }
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Turns a driver error into `JournalError::Storage` saying where (the
/// server), during what, and PostgreSQL's words.
fn failed<'a>(
    server: &'a str,
    during: &'a str,
) -> impl FnOnce(tokio_postgres::Error) -> JournalError + 'a {
    move |e| JournalError::Storage(format!("{server}: {during}: {}", words(&e)))
}

/// A u64 of the journal as PostgreSQL's `bigint`.
fn to_i64(v: u64, server: &str, what: &str) -> Result<i64, JournalError> {
    i64::try_from(v).map_err(|_| {
        JournalError::Storage(format!(
            "{server}: {what} {v} does not fit PostgreSQL's bigint"
        ))
    })
}

/// A `bigint` read back as the journal's u64.
fn to_u64(v: i64, server: &str, what: &str) -> Result<u64, JournalError> {
    u64::try_from(v).map_err(|_| JournalError::Storage(format!("{server}: {what} {v} is negative")))
}
