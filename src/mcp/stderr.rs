//! The last lines a stdio server wrote to its stderr: read all the time (a
//! full pipe would block the server), kept for the error that says why it
//! stopped, logged at debug level, never shown on lev's own stderr (lev has
//! a TUI).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::ChildStderr;
use tokio_util::sync::CancellationToken;

const KEEP_LINES: usize = 20;
/// A longer line is cut: a server that writes no newline must not grow
/// lev's memory.
const MAX_LINE: usize = 1000;

#[derive(Clone)]
pub(crate) struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    /// Cancelled when the pipe closed: the server exited (or closed it).
    closed: CancellationToken,
}

impl StderrTail {
    pub(crate) fn start(server: &str, mut stderr: ChildStderr) -> StderrTail {
        let tail = StderrTail {
            lines: Arc::default(),
            closed: CancellationToken::new(),
        };
        let task = tail.clone();
        let server = server.to_string();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let mut line: Vec<u8> = Vec::new();
            loop {
                let n = match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                for &b in &buf[..n] {
                    if b == b'\n' {
                        task.push(&server, &line);
                        line.clear();
                    } else if line.len() < MAX_LINE {
                        line.push(b);
                    }
                }
            }
            if !line.is_empty() {
                task.push(&server, &line);
            }
            task.closed.cancel();
        });
        tail
    }

    fn push(&self, server: &str, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim_end_matches('\r');
        let text = crate::secrets::current().redact(text).into_owned();
        tracing::debug!(server, stderr = %text, "MCP server stderr");
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == KEEP_LINES {
            lines.pop_front();
        }
        lines.push_back(text);
    }

    /// The pipe closed: the server exited.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// The kept lines, after waiting up to `wait` for the server's last
    /// words (its pipe closing) when it is exiting.
    pub(crate) async fn last_lines(&self, wait: Duration) -> Vec<String> {
        let _ = tokio::time::timeout(wait, self.closed.cancelled()).await;
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines
            .iter()
            .filter(|l| !l.trim().is_empty())
            .cloned()
            .collect()
    }
}

/// `lines` as the end of an error message: nothing when there are none.
pub(crate) fn as_suffix(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    format!("; the last lines of its stderr:\n{}", lines.join("\n"))
}
