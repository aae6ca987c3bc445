//! Cutting a command off the network, for modes with
//! `permissions.network: false`: the command starts in a network namespace
//! of its own, which has nothing but a loopback interface (brought up, so a
//! test server the command starts itself still answers on 127.0.0.1). No
//! privilege is needed: util-linux's `unshare` makes the network namespace
//! inside a new user namespace where the user is root just long enough to
//! bring the loopback up (with `ip`, when installed), then a nested user
//! namespace maps the user back to itself, so files, `id` and git's
//! ownership checks see the same user as outside. `unshare` execs in place,
//! so the command's process is the one lev spawned (its group and gate
//! stay as they are).
//!
//! This needs Linux with unprivileged user namespaces allowed (some
//! distributions and containers switch them off) and `unshare`; [`available`]
//! finds out once, by trying, and callers say the setting is advisory when
//! it is not.

use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Run by `sh` as root of the first namespace: `$1` is the script.
fn outer_script() -> String {
    let uid = nix::unistd::Uid::current();
    let gid = nix::unistd::Gid::current();
    format!(
        "ip link set lo up </dev/null >/dev/null 2>&1; \
         exec unshare --map-user={uid} --map-group={gid} -- sh -c \"$1\""
    )
}

/// The program and arguments that run `sh -c script` without a network.
pub(super) fn argv(script: &str) -> (&'static str, Vec<String>) {
    let args = [
        "--user",
        "--map-root-user",
        "--net",
        "--",
        "sh",
        "-c",
        &outer_script(),
        "lev-offline",
        script,
    ];
    ("unshare", args.iter().map(|a| a.to_string()).collect())
}

/// True when commands can be started without a network here (tried once
/// per process with `true`).
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let (program, args) = argv("true");
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline_sh(script: &str) -> String {
        let (program, args) = argv(script);
        let out = Command::new(program)
            .args(args)
            .output()
            .expect("unshare starts");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    #[test]
    fn an_offline_command_keeps_its_user_and_has_only_its_own_loopback() {
        if !available() {
            // User namespaces are switched off here: lev says the setting
            // is advisory (tests/modes.rs checks that wording).
            return;
        }
        // Outside, a listener on 127.0.0.1; inside, the same address is
        // another loopback where nothing listens: refused (so it is up), not
        // unreachable (down) and not reached.
        let outside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = outside.local_addr().unwrap().port();
        let text = offline_sh(&format!(
            "id -u; id -g; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; \
             bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' && echo reached"
        ));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], nix::unistd::getuid().to_string(), "{text}");
        assert_eq!(lines[1], nix::unistd::getgid().to_string(), "{text}");
        assert_eq!(lines[2], "lo", "the only interface: {text}");
        // Up (refused) where `ip` could bring it up; down (unreachable)
        // where it is not installed.
        let has_ip = std::process::Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        let expected = if has_ip { "refused" } else { "unreachable" };
        assert!(text.contains(expected), "{text}");
        assert!(!text.contains("reached"), "{text}");
    }
}
