//! Following appends as they commit, from any process on the database:
//! every commit that writes entries runs `pg_notify('lev_entries',
//! '<run id> <last seq>')` inside its transaction, so PostgreSQL delivers
//! it only when (and once) the commit lands, in commit order.

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Config, Notification};

use super::tls::Tls;
use super::{failed, open_client, words};
use crate::journal::JournalError;
use crate::protocol::RunId;

/// The channel appends notify.
pub(super) const CHANNEL: &str = "lev_entries";

/// A notification's payload: the run and its last seq after the commit.
pub(super) fn payload(run: &RunId, last_seq: u64) -> String {
    format!("{run} {last_seq}")
}

/// A payload read back; `None` for one lev did not send (anyone may
/// notify the channel).
fn parse(payload: &str) -> Option<(RunId, u64)> {
    let (run, seq) = payload.rsplit_once(' ')?;
    let seq = seq.parse().ok()?;
    (!run.is_empty()).then(|| (RunId(run.to_owned()), seq))
}

/// Opens a connection of its own, listens on `CHANNEL` (before returning,
/// so every commit after this is seen) and forwards what arrives. When the
/// receiver is dropped the task ends and drops the client, which closes
/// the connection: PostgreSQL unlistens a closed session.
pub(super) async fn listen(
    config: &Config,
    tls: &Tls,
    server: &str,
) -> Result<mpsc::UnboundedReceiver<(RunId, u64)>, JournalError> {
    let mut payloads = listen_to(config, tls, server, CHANNEL).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tx.closed() => break,
                p = payloads.recv() => {
                    let Some(p) = p else { break };
                    match parse(&p) {
                        Some(append) => {
                            if tx.send(append).is_err() {
                                break;
                            }
                        }
                        None => tracing::debug!(payload = p, "not a lev append notification"),
                    }
                }
            }
        }
    });
    Ok(rx)
}

/// The payloads notified on `channel` (a constant of lev's), from a
/// connection of its own listening before this returns; dropping the
/// receiver closes it.
pub(super) async fn listen_to(
    config: &Config,
    tls: &Tls,
    server: &str,
    channel: &'static str,
) -> Result<mpsc::UnboundedReceiver<String>, JournalError> {
    let mut config = config.clone();
    config.application_name("lev-listen");
    let (client, mut connection) = open_client(&config, tls, server).await?;
    // Notifications come out of the connection itself: it is polled for
    // them here, which also drives the client's queries.
    let (raw_tx, mut raw) = mpsc::unbounded_channel::<Notification>();
    let name = server.to_owned();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if raw_tx.send(n).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(server = %name, error = %words(&e), "PostgreSQL listen connection ended");
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .map_err(failed(server, &format!("listen on {channel}")))?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Owned here: dropping it at the end closes the connection.
        let _client = client;
        loop {
            tokio::select! {
                () = tx.closed() => break,
                n = raw.recv() => {
                    let Some(n) = n else { break };
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_strangers_are_ignored() {
        let run = RunId("01HZY3 odd id".into());
        assert_eq!(parse(&payload(&run, 42)), Some((run, 42)));
        assert_eq!(parse("01HZY 7"), Some((RunId("01HZY".into()), 7)));
        assert_eq!(parse(""), None);
        assert_eq!(parse(" 7"), None);
        assert_eq!(parse("run seven"), None);
        assert_eq!(parse("run -1"), None);
    }
}
