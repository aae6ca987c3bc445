//! FlowMind's whisper scores on PostgreSQL: what `journal::whispers` keeps
//! in redb, one row a category (`lev_whisper_scores`). Several processes
//! may count at once, so a count is one statement that increments the row
//! in place (inserting it the first time): no increment is lost to a
//! read-then-write race.

use tokio_postgres::Row;

use super::{PgStore, failed, to_u64};
use crate::journal::JournalError;
use crate::protocol::{WhisperOutcome, WhisperScore};

impl PgStore {
    /// Counts one outcome of a whisper of `category`; returns the
    /// category's score as this count left it.
    pub async fn whisper_record(
        &self,
        category: &str,
        outcome: WhisperOutcome,
    ) -> Result<WhisperScore, JournalError> {
        let server = self.server();
        let during = format!("count a whisper of {category}");
        let (a, e, d): (i64, i64, i64) = match outcome {
            WhisperOutcome::Accepted => (1, 0, 0),
            WhisperOutcome::Edited => (0, 1, 0),
            WhisperOutcome::Dismissed => (0, 0, 1),
        };
        let conn = self.conn().await?;
        let row = conn
            .client()
            .query_one(
                "INSERT INTO lev_whisper_scores AS s (category, accepted, edited, dismissed)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (category) DO UPDATE SET
                     accepted = s.accepted + EXCLUDED.accepted,
                     edited = s.edited + EXCLUDED.edited,
                     dismissed = s.dismissed + EXCLUDED.dismissed
                 RETURNING category, accepted, edited, dismissed",
                &[&category, &a, &e, &d],
            )
            .await
            .map_err(failed(server, &during))?;
        score(&row, server)
    }

    /// Forgets `category`'s score (every one when `None`); returns how
    /// many went.
    pub async fn whisper_reset(&self, category: Option<&str>) -> Result<u64, JournalError> {
        let server = self.server();
        let conn = self.conn().await?;
        conn.client()
            .execute(
                "DELETE FROM lev_whisper_scores WHERE $1::text IS NULL OR category = $1",
                &[&category],
            )
            .await
            .map_err(failed(server, "reset whisper scores"))
    }

    /// Every category's score, by category (byte order, as redb lists them).
    pub async fn whisper_scores(&self) -> Result<Vec<WhisperScore>, JournalError> {
        let server = self.server();
        let conn = self.conn().await?;
        let rows = conn
            .client()
            .query(
                "SELECT category, accepted, edited, dismissed FROM lev_whisper_scores
                 ORDER BY category",
                &[],
            )
            .await
            .map_err(failed(server, "read whisper scores"))?;
        rows.iter().map(|row| score(row, server)).collect()
    }
}

/// A row of (category, accepted, edited, dismissed).
fn score(row: &Row, server: &str) -> Result<WhisperScore, JournalError> {
    let during = "read a whisper score";
    let count = |col: usize| -> Result<u64, JournalError> {
        let n: i64 = row.try_get(col).map_err(failed(server, during))?;
        to_u64(n, server, "whisper count")
    };
    Ok(WhisperScore {
        category: row.try_get(0).map_err(failed(server, during))?,
        accepted: count(1)?,
        edited: count(2)?,
        dismissed: count(3)?,
    })
}
