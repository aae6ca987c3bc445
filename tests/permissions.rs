//! Only the owner may read what lev keeps: the data dir and the log dir are
//! 0700, the journal and the log 0600, under a normal umask, and an older,
//! looser data dir is tightened when lev opens it.

#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::lev::Lev;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn demo(lev: &Lev) {
    // `sh -c` to run lev under the usual umask whatever the test runner's is.
    let cmd = lev.cmd(&["demo", "--headless"]);
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c")
        .arg("umask 022; exec \"$@\"")
        .arg("sh")
        .arg(program)
        .args(args);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.current_dir(cmd.get_current_dir().unwrap());
    let out = sh.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_journal_the_log_and_their_dirs_are_private() {
    let lev = Lev::new();
    // lev makes its data dir itself.
    std::fs::remove_dir_all(lev.data_dir()).unwrap();
    demo(&lev);
    let data = lev.data_dir();
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("lev.redb")), 0o600, "journal");
    assert_eq!(mode(&data.join("logs")), 0o700, "log dir");
    assert_eq!(mode(&data.join("logs/lev.log")), 0o600, "log");
}

#[test]
fn a_loose_data_dir_from_before_is_tightened() {
    let lev = Lev::new();
    demo(&lev);
    let data = lev.data_dir();
    for (p, m) in [
        (data.clone(), 0o755),
        (data.join("lev.redb"), 0o644),
        (data.join("logs"), 0o755),
        (data.join("logs/lev.log"), 0o644),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    demo(&lev);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("lev.redb")), 0o600);
    assert_eq!(mode(&data.join("logs")), 0o700);
    assert_eq!(mode(&data.join("logs/lev.log")), 0o600);
}
