//! Children die with lev, even when lev is SIGKILLed.
//!
//! The first time lev starts a command it also starts a small watcher
//! (`sh`, in its own process group so a terminal's Ctrl-C does not reach
//! it) whose standard input is a pipe only lev holds. When lev ends for any
//! reason the kernel closes that pipe; the watcher then TERMs, and a second
//! later KILLs, every process whose environment carries this lev's token
//! (`LEV_SUPERVISOR=<token>`, set on every command lev starts and inherited
//! by their children, also those that left the process group).
//!
//! Why not `PR_SET_PDEATHSIG`: it reaches only the direct child, not the
//! grandchildren a shell script starts, it fires when the spawning *thread*
//! ends, and setting it in the child needs `unsafe` code.

use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The environment variable that marks lev's commands.
pub const SUPERVISOR_VAR: &str = "LEV_SUPERVISOR";

/// Runs in the watcher: block until lev's end of stdin closes, then stop
/// every process marked with this lev's token (`$1`).
const WATCHER: &str = r#"
while read -r _; do :; done
marked() {
  grep -lzx -- "LEV_SUPERVISOR=$1" /proc/[0-9]*/environ 2>/dev/null \
    | sed -n 's#^/proc/\([0-9]*\)/environ$#\1#p'
}
p=$(marked "$1")
[ -n "$p" ] || exit 0
kill -TERM $p 2>/dev/null
sleep 1
p=$(marked "$1")
[ -n "$p" ] && kill -KILL $p 2>/dev/null
exit 0
"#;

struct Lifeline {
    token: String,
    /// Kept open for lev's lifetime; never written to.
    _pipe: Mutex<Option<ChildStdin>>,
}

static LIFELINE: OnceLock<Lifeline> = OnceLock::new();

/// This lev's token, starting the watcher the first time. Every command lev
/// starts must carry `LEV_SUPERVISOR=<token>`.
pub fn token() -> &'static str {
    &LIFELINE.get_or_init(start).token
}

fn start() -> Lifeline {
    let token = format!("{}-{}", std::process::id(), ulid::Ulid::generate());
    let mut watcher = Command::new("sh");
    // The watcher needs none of lev's provider keys.
    crate::secrets::current().withhold(&mut watcher);
    let pipe = watcher
        .arg("-c")
        .arg(WATCHER)
        .arg("lev-lifeline")
        .arg(&token)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // A lev started by another lev's command must not mark its own
        // watcher as the outer lev's child: the outer watcher would stop it
        // before it could stop this lev's commands.
        .env_remove(SUPERVISOR_VAR)
        .process_group(0)
        .spawn()
        .map_err(|e| {
            tracing::warn!(
                "cannot start the lifeline watcher: {e}; commands may outlive a killed lev"
            )
        })
        .ok()
        .and_then(|mut child| child.stdin.take());
    Lifeline {
        token,
        _pipe: Mutex::new(pipe),
    }
}
