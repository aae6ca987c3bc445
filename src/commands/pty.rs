//! A program in a pseudo-terminal (the ground `type: pty` steps and agent
//! CLIs in panes stand on): spawned in a terminal of a stated size as the
//! leader of its own session (so its own process group), with lev's
//! environment minus its provider keys and marked for the lifeline; what it
//! draws is read on a thread of its own into a terminal emulator (vt100,
//! with scrollback), keys are written to it, and it is stopped with HUP,
//! TERM, then KILL of its whole group.
//!
//! `workflow::pty` runs a `pty` step's program on it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use tokio::sync::watch;

use super::{GRACE_PERIOD, PIPE_DRAIN, lifeline};

/// Lines of scrollback the emulator keeps above the screen: what a `pty`
/// step's transcript holds at most besides the screen (a row costs about
/// 32 bytes a column: ≈ 19 MB for a 120-column terminal full).
pub const SCROLLBACK_LINES: usize = 5_000;

/// What to run, where, and in how large a terminal.
#[derive(Debug, Clone)]
pub struct PtyCommand {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Set on top of lev's environment (without its provider keys).
    pub env: BTreeMap<String, String>,
    pub rows: u16,
    pub cols: u16,
    /// Gets a copy of every chunk the program writes, as it comes (for
    /// panes, which run emulators of their own).
    pub tap: Option<tokio::sync::mpsc::UnboundedSender<Vec<u8>>>,
}

/// A running program in its terminal.
pub struct Pty {
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    /// Its process group (the session leader's pid).
    group: Option<Pid>,
    screen: Arc<Mutex<vt100::Parser>>,
    /// Bytes read so far; closed (the sender dropped) when the terminal's
    /// output ended.
    output: watch::Receiver<u64>,
    last_output: Arc<Mutex<Instant>>,
}

impl Pty {
    /// Starts `cmd`; the error says why it could not.
    pub fn spawn(cmd: &PtyCommand) -> Result<Pty, String> {
        if !cmd.cwd.is_dir() {
            return Err(format!(
                "cannot start `{}`: {} is not a directory",
                cmd.program,
                cmd.cwd.display()
            ));
        }
        let rows = NonZeroU16::new(cmd.rows).ok_or("a terminal needs at least one row")?;
        let cols = NonZeroU16::new(cmd.cols).ok_or("a terminal needs at least one column")?;
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: rows.get(),
                cols: cols.get(),
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| format!("cannot open a pseudo-terminal: {e}"))?;
        let mut builder = CommandBuilder::new(&cmd.program);
        builder.args(&cmd.args);
        builder.cwd(&cmd.cwd);
        // lev's provider keys stay with lev; the step's own env may pass one.
        for name in crate::secrets::current().names() {
            builder.env_remove(name);
        }
        builder.env("TERM", "xterm-256color");
        for (k, v) in &cmd.env {
            builder.env(k, v);
        }
        builder.env(lifeline::SUPERVISOR_VAR, lifeline::token());
        let child = pair
            .slave
            .spawn_command(builder)
            .map_err(|e| format!("cannot start `{}`: {e}", cmd.program))?;
        // Only the child holds the terminal's other end: its output ends
        // when it (and whatever it started on the terminal) is gone.
        drop(pair.slave);
        let group = child
            .process_id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw);
        let mut reader = pair
            .master
            .try_clone_reader()
            .map_err(|e| format!("cannot read the terminal: {e}"))?;
        let writer = pair
            .master
            .take_writer()
            .map_err(|e| format!("cannot write to the terminal: {e}"))?;
        let screen = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, SCROLLBACK_LINES)));
        let last_output = Arc::new(Mutex::new(Instant::now()));
        let (tx, output) = watch::channel(0u64);
        let (parser, last) = (screen.clone(), last_output.clone());
        let tap = cmd.tap.clone();
        std::thread::Builder::new()
            .name("lev-pty-reader".into())
            .spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                let mut total = 0u64;
                // EOF or EIO (the other end closed) ends the output.
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut p) = parser.lock() {
                        p.process(&buf[..n]);
                    }
                    if let Some(tap) = &tap {
                        let _ = tap.send(buf[..n].to_vec());
                    }
                    if let Ok(mut at) = last.lock() {
                        *at = Instant::now();
                    }
                    total += n as u64;
                    let _ = tx.send(total);
                }
            })
            .map_err(|e| format!("cannot start the terminal's reader: {e}"))?;
        Ok(Pty {
            master: pair.master,
            writer,
            child,
            group,
            screen,
            output,
            last_output,
        })
    }

    /// Its process group's leader, once started.
    pub fn pid(&self) -> Option<u32> {
        self.group.and_then(|g| u32::try_from(g.as_raw()).ok())
    }

    /// Changes with every chunk the program writes; closed when its output ends.
    pub fn output_watch(&self) -> watch::Receiver<u64> {
        self.output.clone()
    }

    /// Bytes it has written so far: a screen read at one count is the
    /// same at that count.
    pub fn output_seen(&self) -> u64 {
        *self.output.borrow()
    }

    /// How long since it last drew anything (`None`: it has drawn nothing yet).
    pub fn quiet_for(&self) -> Option<Duration> {
        if *self.output.borrow() == 0 {
            return None;
        }
        self.last_output.lock().map(|at| at.elapsed()).ok()
    }

    /// Whether the program asked for pasted text to be bracketed.
    pub fn bracketed_paste(&self) -> bool {
        self.screen
            .lock()
            .map(|p| p.screen().bracketed_paste())
            .unwrap_or(false)
    }

    /// Types text as a paste: bracketed when the program asked for it, so
    /// a newline in it is not taken for Enter.
    pub fn paste(&mut self, text: &str) -> std::io::Result<()> {
        if self.bracketed_paste() {
            let mut bytes = b"\x1b[200~".to_vec();
            bytes.extend(text.replace("\x1b", "").as_bytes());
            bytes.extend(b"\x1b[201~");
            self.type_bytes(&bytes)
        } else {
            self.type_bytes(text.as_bytes())
        }
    }

    /// Types `bytes` into the program.
    pub fn type_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    /// Makes the terminal `rows` × `cols` (the program gets SIGWINCH).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), String> {
        let (Some(r), Some(c)) = (NonZeroU16::new(rows), NonZeroU16::new(cols)) else {
            return Err("a terminal needs at least one row and one column".into());
        };
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| format!("cannot resize the terminal: {e}"))?;
        if let Ok(mut p) = self.screen.lock() {
            p.screen_mut().set_size(r, c);
        }
        Ok(())
    }

    /// What the screen shows now, as text (a line per row, trailing blanks
    /// dropped).
    pub fn screen_text(&self) -> String {
        self.screen
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    /// Everything the terminal showed that is still kept: the scrollback,
    /// then the screen, a line per row.
    pub fn transcript(&self) -> String {
        let Ok(mut p) = self.screen.lock() else {
            return String::new();
        };
        let mut text = all_rows(p.screen_mut());
        while text.last().is_some_and(String::is_empty) {
            text.pop();
        }
        text.join("\n")
    }

    /// Waits until the program has drawn something and then nothing for
    /// `quiet` (it is ready for input), at most `limit`; false when the
    /// limit passed first or its output ended.
    pub async fn settled(&mut self, quiet: Duration, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let seen = *self.output.borrow_and_update() > 0;
            let since = self
                .last_output
                .lock()
                .map(|at| at.elapsed())
                .unwrap_or_default();
            if seen && since >= quiet {
                return true;
            }
            let wait = if seen { quiet - since } else { quiet };
            let until = (tokio::time::Instant::now() + wait).min(deadline);
            tokio::select! {
                changed = self.output.changed() => {
                    if changed.is_err() {
                        return false;
                    }
                }
                _ = tokio::time::sleep_until(until) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// Whether the program has exited (it is reaped; `exited` then gives
    /// its code once its output is read).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the program to exit and its output to end; its exit code
    /// (`None`: ended by a signal).
    pub async fn exited(&mut self) -> Option<i32> {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(_) => break None,
            }
        };
        // What it drew last is read before its end is told; a program it
        // left behind on the terminal (`cmd &`) keeps the output open, and
        // is stopped once the drain time has passed.
        let drained = tokio::time::timeout(PIPE_DRAIN, async {
            while self.output.changed().await.is_ok() {}
        })
        .await;
        if drained.is_err() {
            if let Some(group) = self.group {
                let _ = killpg(group, Signal::SIGKILL);
            }
            let _ = tokio::time::timeout(PIPE_DRAIN, async {
                while self.output.changed().await.is_ok() {}
            })
            .await;
        }
        let status = status?;
        match status.signal() {
            Some(_) => None,
            None => i32::try_from(status.exit_code()).ok(),
        }
    }

    /// Stops its whole process group: HUP (a closed terminal), TERM after
    /// a moment, KILL after the grace period.
    pub async fn stop(&mut self) {
        let Some(group) = self.group else {
            let _ = self.child.kill();
            return;
        };
        // Until no member of the group is left (the leader reaped here,
        // the others by whoever inherited them).
        for (signal, wait) in [
            (Signal::SIGHUP, Duration::from_millis(200)),
            (Signal::SIGTERM, GRACE_PERIOD),
            (Signal::SIGKILL, Duration::from_secs(1)),
        ] {
            let _ = killpg(group, signal);
            let deadline = Instant::now() + wait;
            while Instant::now() < deadline {
                let _ = self.child.try_wait();
                if killpg(group, None).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Every row an emulator keeps, the scrollback's oldest first, then the
/// screen, trailing blanks of each dropped (the screen is shown live again
/// after).
pub fn all_rows(screen: &mut vt100::Screen) -> Vec<String> {
    let shown = screen.scrollback();
    let (rows, cols) = screen.size();
    let rows = usize::from(rows.get());
    screen.set_scrollback(usize::MAX);
    let above = screen.scrollback();
    let mut lines: Vec<Option<String>> = vec![None; above + rows];
    // Windows from the oldest down to the live screen; a window shows
    // lines `above - offset ..` of the whole.
    let mut offset = above;
    loop {
        screen.set_scrollback(offset);
        for (i, line) in screen.rows(0, cols.get()).enumerate() {
            if let Some(slot) = lines.get_mut(above - offset + i)
                && slot.is_none()
            {
                *slot = Some(line);
            }
        }
        if offset == 0 {
            break;
        }
        offset = offset.saturating_sub(rows);
    }
    screen.set_scrollback(shown);
    lines
        .into_iter()
        .map(|l| l.unwrap_or_default().trim_end().to_string())
        .collect()
}

impl Drop for Pty {
    fn drop(&mut self) {
        // Nothing lev started outlives its handle.
        if let Some(group) = self.group
            && matches!(self.child.try_wait(), Ok(None))
        {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bash(script: &str, rows: u16, cols: u16) -> Pty {
        Pty::spawn(&PtyCommand {
            program: "bash".into(),
            args: vec![
                "--norc".into(),
                "--noprofile".into(),
                "-c".into(),
                script.into(),
            ],
            cwd: std::env::temp_dir(),
            env: BTreeMap::new(),
            rows,
            cols,
            tap: None,
        })
        .expect("bash starts in a terminal")
    }

    #[tokio::test]
    async fn the_exit_code_and_what_it_printed_come_back() {
        let mut p = bash(
            "echo hello from a tty; tty -s && echo is-a-tty; exit 3",
            24,
            80,
        );
        assert_eq!(p.exited().await, Some(3));
        let text = p.transcript();
        assert!(text.contains("hello from a tty"), "{text}");
        assert!(text.contains("is-a-tty"), "{text}");
    }

    #[tokio::test]
    async fn a_prompt_is_answered_by_typing_once_it_is_ready() {
        let mut p = bash("read -r -p 'Your name? ' name; echo \"hi $name\"", 24, 80);
        assert!(
            p.settled(Duration::from_millis(200), Duration::from_secs(10))
                .await
        );
        assert!(p.screen_text().contains("Your name?"));
        p.type_bytes(b"Ada\r").unwrap();
        assert_eq!(p.exited().await, Some(0));
        assert!(p.transcript().contains("hi Ada"), "{}", p.transcript());
    }

    #[tokio::test]
    async fn the_size_is_the_programs_and_a_resize_reaches_it() {
        let mut p = bash("stty size; read -r _; stty size", 30, 100);
        assert!(
            p.settled(Duration::from_millis(200), Duration::from_secs(10))
                .await
        );
        assert!(p.screen_text().contains("30 100"), "{}", p.screen_text());
        p.resize(40, 120).unwrap();
        p.type_bytes(b"\r").unwrap();
        assert_eq!(p.exited().await, Some(0));
        assert!(p.transcript().contains("40 120"), "{}", p.transcript());
    }

    #[tokio::test]
    async fn a_long_output_is_kept_in_the_scrollback_and_wide_text_stays_whole() {
        let mut p = bash(
            "for i in $(seq 1 500); do echo \"line $i 添加\"; done",
            24,
            80,
        );
        assert_eq!(p.exited().await, Some(0));
        let text = p.transcript();
        assert!(text.starts_with("line 1 添加"), "{text}");
        assert!(
            text.ends_with("line 500 添加"),
            "{}",
            &text[text.len() - 200..]
        );
        assert_eq!(text.lines().count(), 500);
    }

    #[tokio::test]
    async fn a_program_left_behind_on_the_terminal_does_not_hold_the_end() {
        let mut p = bash("sleep 300 & echo started; exit 0", 24, 80);
        let group = p.group.expect("a process group");
        let ended = tokio::time::timeout(Duration::from_secs(20), p.exited()).await;
        assert_eq!(ended, Ok(Some(0)));
        assert!(p.transcript().contains("started"));
        // Left running like a shell step's detached job (the lifeline ends
        // it with lev); the test cleans up.
        let _ = killpg(group, Signal::SIGKILL);
    }

    #[tokio::test]
    async fn a_stopped_program_and_its_children_are_gone() {
        let mut p = bash("sleep 300 & sleep 300; wait", 24, 80);
        let group = p.group.expect("a process group");
        p.stop().await;
        assert_eq!(p.exited().await, None);
        // No member of the group is left.
        assert!(killpg(group, None).is_err());
    }
}
