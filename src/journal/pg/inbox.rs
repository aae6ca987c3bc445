//! Requests for the process that executes a run, from processes on other
//! machines (PostgreSQL's side of what the control socket is on one
//! machine): a row of `lev_ops` addressed to the run's lease holder,
//! announced on `lev_ops` (payload: the holder); the holder takes it,
//! carries it out on its engine handle and writes the reply into the row,
//! announced on `lev_op_replies` (payload: the row's id). The journal
//! knows nothing of what a request says: it carries text.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{PgStore, failed, listen};
use crate::journal::JournalError;
use crate::protocol::RunId;

/// Where requests are announced, by holder.
const OPS: &str = "lev_ops";
/// Where replies are announced, by request id.
const REPLIES: &str = "lev_op_replies";
/// How often a waiting sender looks at its row anyway (a notification is
/// the fast way; this is the sure one).
const RECHECK: Duration = Duration::from_millis(500);

/// A request taken by its addressee: its id (to reply to), run and text.
#[derive(Debug, Clone)]
pub struct InboxRequest {
    pub id: i64,
    pub run: RunId,
    pub text: String,
}

impl PgStore {
    /// Sends `text` to `holder` about `run` and waits up to `patience` for
    /// its reply. A request still untaken then is withdrawn (it is never
    /// carried out late) and the wait is `None`; one taken is waited for
    /// as long again.
    pub(crate) async fn ask_holder(
        &self,
        run: &RunId,
        holder: &str,
        text: &str,
        patience: Duration,
    ) -> Result<Option<String>, JournalError> {
        // Listening before sending: the reply cannot come unseen.
        let mut replies =
            listen::listen_to(&self.inner.config, &self.inner.tls, self.server(), REPLIES).await?;
        let id = {
            let conn = self.conn().await?;
            let row = conn
                .client()
                .query_one(
                    &format!(
                        "WITH sent AS (
                             INSERT INTO lev_ops (run, holder, request) VALUES ($1, $2, $3)
                             RETURNING id)
                         SELECT id, pg_notify('{OPS}', $2) FROM sent"
                    ),
                    &[&run.as_str(), &holder, &text],
                )
                .await
                .map_err(failed(self.server(), "send a request to a run's process"))?;
            let id: i64 = row
                .try_get(0)
                .map_err(failed(self.server(), "send a request to a run's process"))?;
            id
        };
        let wanted = id.to_string();
        let mut deadline = tokio::time::Instant::now() + patience;
        let mut extended = false;
        loop {
            if let Some(reply) = self.reply_to(id).await? {
                return Ok(Some(reply));
            }
            if tokio::time::Instant::now() >= deadline {
                if self.withdraw(id).await? {
                    return Ok(None);
                }
                if extended {
                    return Ok(None);
                }
                // Taken: it is being carried out; its reply is coming.
                extended = true;
                deadline = tokio::time::Instant::now() + patience;
            }
            let _ = tokio::time::timeout(RECHECK, async {
                while let Some(p) = replies.recv().await {
                    if p == wanted {
                        return;
                    }
                }
            })
            .await;
        }
    }

    /// The reply written to request `id`, if any: read once, and the
    /// request is done with (its row goes).
    async fn reply_to(&self, id: i64) -> Result<Option<String>, JournalError> {
        let conn = self.conn().await?;
        let row = conn
            .client()
            .query_opt(
                "DELETE FROM lev_ops WHERE id = $1 AND reply IS NOT NULL RETURNING reply",
                &[&id],
            )
            .await
            .map_err(failed(self.server(), "read a request's reply"))?;
        match row {
            Some(row) => row
                .try_get::<_, Option<String>>(0)
                .map_err(failed(self.server(), "read a request's reply")),
            None => Ok(None),
        }
    }

    /// Deletes request `id` unless it was taken; true when it was deleted.
    async fn withdraw(&self, id: i64) -> Result<bool, JournalError> {
        let conn = self.conn().await?;
        let n = conn
            .client()
            .execute("DELETE FROM lev_ops WHERE id = $1 AND NOT taken", &[&id])
            .await
            .map_err(failed(self.server(), "withdraw a request"))?;
        Ok(n > 0)
    }

    /// Wake-ups for `holder`: one each time a request is announced for it
    /// (a listening connection of its own; dropping the receiver closes it).
    pub(crate) async fn inbox_bell(
        &self,
        holder: &str,
    ) -> Result<mpsc::UnboundedReceiver<()>, JournalError> {
        let mut all =
            listen::listen_to(&self.inner.config, &self.inner.tls, self.server(), OPS).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let me = holder.to_owned();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tx.closed() => break,
                    p = all.recv() => match p {
                        Some(p) if p == me => {
                            if tx.send(()).is_err() {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => break,
                    },
                }
            }
        });
        Ok(rx)
    }

    /// Takes the requests waiting for `holder`, oldest first (each taken
    /// once, whoever else looks at the same time).
    pub(crate) async fn take_requests(
        &self,
        holder: &str,
    ) -> Result<Vec<InboxRequest>, JournalError> {
        let during = "take requests";
        let conn = self.conn().await?;
        let rows = conn
            .client()
            .query(
                "UPDATE lev_ops SET taken = true
                 WHERE id IN (SELECT id FROM lev_ops WHERE holder = $1 AND NOT taken
                              ORDER BY id FOR UPDATE SKIP LOCKED)
                 RETURNING id, run, request",
                &[&holder],
            )
            .await
            .map_err(failed(self.server(), during))?;
        let mut out = rows
            .iter()
            .map(|row| {
                Ok(InboxRequest {
                    id: row.try_get(0).map_err(failed(self.server(), during))?,
                    run: RunId(row.try_get(1).map_err(failed(self.server(), during))?),
                    text: row.try_get(2).map_err(failed(self.server(), during))?,
                })
            })
            .collect::<Result<Vec<_>, JournalError>>()?;
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    /// Writes the reply to request `id` and announces it.
    pub(crate) async fn reply(&self, id: i64, text: &str) -> Result<(), JournalError> {
        let conn = self.conn().await?;
        conn.client()
            .execute(
                &format!(
                    "WITH done AS (UPDATE lev_ops SET reply = $2 WHERE id = $1 RETURNING id)
                     SELECT pg_notify('{REPLIES}', id::text) FROM done"
                ),
                &[&id, &text],
            )
            .await
            .map_err(failed(self.server(), "reply to a request"))?;
        Ok(())
    }
}
