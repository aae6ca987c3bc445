//! The process's CPU time, shared by the benches that sample it.

use std::time::Duration;

/// Linux reports process times in USER_HZ ticks, fixed at 100 for user space.
const USER_HZ: f64 = 100.0;

/// CPU time (user + system) this process has used so far
/// (`/proc/self/stat`, in 10 ms ticks).
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_secs_f64((tick(11) + tick(12)) as f64 / USER_HZ)
}
