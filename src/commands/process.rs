//! Knowing whether a process group lev started is still alive, across lev
//! restarts and PID reuse, and stopping it.
//!
//! A group is identified by its leader's pid (= the group id), the leader's
//! start time in clock ticks since boot (`/proc/PID/stat` field 22) and the
//! boot id: a reused pid has another start time, a reboot another boot id.
//! Processes lev started also carry markers in their environment
//! (`LEV_IDEMPOTENCY_KEY`, `LEV_SUPERVISOR`), which survive `setsid` and
//! reach grandchildren; [`with_env`] finds them by those.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::protocol::ProcessGroup;

/// The identity of the group led by `pid` (a process just spawned with
/// `process_group(0)`), if `/proc` can tell.
pub fn identify(pid: u32) -> Option<ProcessGroup> {
    let pgid = i32::try_from(pid).ok()?;
    let stat = ProcStat::read(pgid)?;
    Some(ProcessGroup {
        pgid,
        start_ticks: stat.start_ticks,
        boot_id: boot_id().to_string(),
    })
}

/// True while any process of this very group runs.
pub fn is_alive(group: &ProcessGroup) -> bool {
    if group.boot_id != boot_id() {
        return false;
    }
    match ProcStat::read(group.pgid) {
        // The leader itself: ours only if it started when ours did.
        Some(stat) => stat.start_ticks == group.start_ticks && stat.state != 'Z',
        // The leader is gone; while members remain, the kernel does not
        // reuse the group id, so a live member with it is ours.
        None => members(group.pgid) > 0,
    }
}

/// Sends `signal` to the group, when it is still this group.
pub fn signal(group: &ProcessGroup, signal: Signal) {
    if is_alive(group) {
        let _ = killpg(Pid::from_raw(group.pgid), signal);
    }
}

/// Fields of `/proc/PID/stat` this module reads.
struct ProcStat {
    state: char,
    pgrp: i32,
    start_ticks: u64,
}

impl ProcStat {
    fn read(pid: i32) -> Option<ProcStat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        ProcStat::parse(&text)
    }

    /// The command name (field 2) may hold spaces and parentheses, so the
    /// fields are counted after its last `)`.
    fn parse(text: &str) -> Option<ProcStat> {
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `fields[0]` is field 3 (state); field N is `fields[N - 3]`.
        Some(ProcStat {
            state: fields.first()?.chars().next()?,
            pgrp: fields.get(2)?.parse().ok()?,
            start_ticks: fields.get(19)?.parse().ok()?,
        })
    }
}

/// This boot's id, read once: it cannot change while lev runs.
fn boot_id() -> &'static str {
    static BOOT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT_ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

fn pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Live (not zombie) processes in group `pgid`.
fn members(pgid: i32) -> usize {
    pids()
        .into_iter()
        .filter_map(ProcStat::read)
        .filter(|s| s.pgrp == pgid && s.state != 'Z')
        .count()
}

/// Live processes whose environment holds `name=value` exactly.
pub fn with_env(name: &str, value: &str) -> Vec<i32> {
    let wanted = format!("{name}={value}");
    let me = std::process::id() as i32;
    pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == wanted.as_bytes()))
        })
        .filter(|&pid| ProcStat::read(pid).is_some_and(|s| s.state != 'Z'))
        .collect()
}

/// How an earlier copy of a command was dealt with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It ended by itself (or through lev's lifeline) within the wait.
    EndedWhileWaiting,
    /// It was still running and was killed.
    Killed,
}

/// Makes sure no earlier copy of a command is still running: the groups
/// recorded for it and every process carrying `LEV_IDEMPOTENCY_KEY=key`.
/// Waits up to `wait` for them to end (the lifeline of the lev that
/// started them stops them within about a second), then TERMs, and KILLs
/// what is left. Returns `None` when nothing was running.
pub fn stop_earlier_copies(groups: &[ProcessGroup], key: &str, wait: Duration) -> Option<Stopped> {
    let running =
        || groups.iter().any(is_alive) || !with_env("LEV_IDEMPOTENCY_KEY", key).is_empty();
    if !running() {
        return None;
    }
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        if !running() {
            return Some(Stopped::EndedWhileWaiting);
        }
    }
    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        for g in groups {
            self::signal(g, signal);
        }
        for pid in with_env("LEV_IDEMPOTENCY_KEY", key) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !running() {
            break;
        }
    }
    Some(Stopped::Killed)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let text = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let s = ProcStat::parse(text).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.pgrp, 4242);
        assert_eq!(s.start_ticks, 987654);
    }

    #[test]
    fn a_live_group_is_alive_and_a_reused_identity_is_not() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let id = identify(child.id()).unwrap();
        assert!(is_alive(&id));
        let other = ProcessGroup {
            start_ticks: id.start_ticks + 1,
            ..id.clone()
        };
        assert!(!is_alive(&other), "another start time is another process");
        let stopped = stop_earlier_copies(std::slice::from_ref(&id), "no-such-key", Duration::ZERO);
        assert_eq!(stopped, Some(Stopped::Killed));
        child.wait().unwrap();
        assert!(!is_alive(&id));
        assert_eq!(
            stop_earlier_copies(&[id], "no-such-key", Duration::ZERO),
            None
        );
    }
}
