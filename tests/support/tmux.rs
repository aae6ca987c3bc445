//! The real `lev` binary in a real terminal: a private tmux server with
//! one pane, driven with `send-keys` and read with `capture-pane`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::lev::Lev;

/// A private tmux server (its own socket) with one pane of a fixed size.
pub struct Tmux {
    socket: String,
    exit_file: std::path::PathBuf,
}

impl Tmux {
    pub fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Starts `args` (the lev binary with arguments) in a 140×40 pane that
    /// stays open after the program exits, so its exit is visible.
    pub fn start(lev: &Lev, args: &[&str]) -> Tmux {
        let socket = format!("lev-e2e-{}-{}", std::process::id(), rand_suffix());
        let exit_file = lev.dir.path().join(format!("{socket}.exit"));
        let mut cmd = vec![env!("CARGO_BIN_EXE_lev").to_string()];
        cmd.push("--data-dir".into());
        cmd.push(lev.data_dir().display().to_string());
        cmd.extend(args.iter().map(|s| s.to_string()));
        // remain-on-exit from the start, so even a quick exit leaves its status.
        let conf = lev.dir.path().join("tmux.conf");
        std::fs::write(&conf, "set -g remain-on-exit on\n").unwrap();
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f"])
            .arg(&conf)
            .args(["new-session", "-d", "-s", "main", "-x", "140", "-y", "40"])
            .arg("-c")
            .arg(lev.workspace())
            .args([
                "-e",
                &format!(
                    "XDG_CONFIG_HOME={}",
                    lev.dir.path().join("config").display()
                ),
            ])
            .args([
                "-e",
                "LEV_PROVIDER=",
                "-e",
                "OPENAI_API_KEY=",
                "-e",
                "ANTHROPIC_API_KEY=",
            ])
            .arg(shell_line(&cmd, &exit_file))
            .status()
            .unwrap();
        assert!(status.success(), "tmux new-session failed");
        Tmux { socket, exit_file }
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn send(&self, keys: &str) {
        self.tmux(&["send-keys", "-t", "main", keys]);
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "main"])
    }

    /// The screen with the lines scrolled off its top.
    pub fn screen_and_history(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-S", "-200", "-t", "main"])
    }

    /// The pid of lev: the only child of the pane's shell.
    pub fn lev_pid(&self) -> i32 {
        let shell = self.tmux(&["display-message", "-p", "-t", "main", "#{pane_pid}"]);
        let out = Command::new("pgrep")
            .args(["-P", shell.trim()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no lev under the pane's shell"))
    }

    /// lev's exit code once it has exited (128+N when killed by signal N).
    pub fn pane_dead(&self) -> Option<i32> {
        std::fs::read_to_string(&self.exit_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Polls the screen until `pred` holds; panics with the screen after `secs`.
    pub fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_exit(&self, secs: u64) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(code) = self.pane_dead() {
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "lev did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

/// Runs lev under `sh`, which records lev's exit code in `exit_file`
/// (tmux does not always reap a pane's process in time to report it).
fn shell_line(args: &[String], exit_file: &Path) -> String {
    let q = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
    let quoted: Vec<String> = args.iter().map(|a| q(a)).collect();
    format!(
        "{}; echo $? > {}",
        quoted.join(" "),
        q(&exit_file.display().to_string())
    )
}

pub fn skip_without_tmux() -> bool {
    if Tmux::available() {
        return false;
    }
    // The test command installs tmux; a developer machine without it skips loudly.
    assert!(std::env::var_os("CI").is_none(), "tmux is required in CI");
    true
}
