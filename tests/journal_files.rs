//! The files lev keeps: private modes under a normal umask (also when an
//! older lev left them looser), and a disk that fills up mid-run on a real
//! small filesystem (a tmpfs, when this test may mount one).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::lev::Lev;

const SHELL_ONLY: &str = r#"version: 1
kind: workflow
id: files
name: Files
steps:
  hello:
    type: shell
    run: echo hello
"#;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `lev ARGS` under umask 022, as a user's shell would start it.
fn under_umask(lev: &Lev, args: &[&str]) -> Output {
    let inner = lev.cmd(args);
    let program = inner.get_program().to_owned();
    let all: Vec<_> = inner.get_args().map(|a| a.to_owned()).collect();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 022; exec \"$@\"")
        .arg("sh")
        .arg(program)
        .args(all);
    c.current_dir(lev.workspace());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.stdin(std::process::Stdio::null());
    c.output().unwrap()
}

fn assert_private(data: &Path) {
    assert_eq!(mode(data), 0o700, "data dir");
    assert_eq!(mode(&data.join("lev.redb")), 0o600, "journal");
    assert_eq!(mode(&data.join("lev.redb.reserve")), 0o600, "space reserve");
    assert_eq!(mode(&data.join("logs")), 0o700, "log dir");
    assert_eq!(mode(&data.join("logs/lev.log")), 0o600, "log file");
}

#[test]
fn a_new_data_dir_journal_and_log_are_private() {
    let lev = Lev::new();
    std::fs::remove_dir_all(lev.data_dir()).unwrap();
    let wf = lev.workspace().join("files.yaml");
    std::fs::write(&wf, SHELL_ONLY).unwrap();
    let out = under_umask(&lev, &["run", wf.to_str().unwrap(), "--headless"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_private(&lev.data_dir());
}

#[test]
fn looser_files_of_an_older_lev_are_tightened_when_opened() {
    let lev = Lev::new();
    let wf = lev.workspace().join("files.yaml");
    std::fs::write(&wf, SHELL_ONLY).unwrap();
    let out = under_umask(&lev, &["run", wf.to_str().unwrap(), "--headless"]);
    assert!(out.status.success());
    let data = lev.data_dir();
    for (path, m) in [
        (data.clone(), 0o755),
        (data.join("logs"), 0o755),
        (data.join("lev.redb"), 0o644),
        (data.join("lev.redb.reserve"), 0o644),
        (data.join("logs/lev.log"), 0o644),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
    }
    let out = under_umask(&lev, &["runs"]);
    assert!(out.status.success());
    assert_private(&data);
}

/// A tmpfs mounted for one test; unmounted when dropped, whatever happened.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let done = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !done {
            // Busy (a child still holds a file): detach it now, it goes
            // away with its last user.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

const FILLS_THE_DISK: &str = r#"version: 1
kind: workflow
id: disk-full
name: Disk full
inputs:
  fill: { type: string }
steps:
  fill:
    type: shell
    # Not idempotent: had its outcome been lost, resume would have to ask.
    run: |
      echo ran >> fill-count.txt
      dd if=/dev/zero of="${{ inputs.fill }}" bs=64k 2>/dev/null || true
      head -c 600000 /dev/zero | tr '\0' 'z'
  after:
    needs: [fill]
    type: shell
    run: echo after >> after-count.txt
"#;

#[test]
// A skip must be visible in the test output.
#[allow(clippy::print_stderr)]
fn a_full_disk_pauses_the_run_cleanly_and_resume_needs_no_decision() {
    let lev = Lev::new();
    let Some(mount) = Mount::tmpfs(&lev.data_dir(), "24m") else {
        // No tmpfs here (not root, or no mount): the injected-fault
        // backend tests of the journal cover the same path.
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let data = mount.0.clone();
    let wf = lev.workspace().join("disk-full.yaml");
    std::fs::write(&wf, FILLS_THE_DISK).unwrap();
    let fill = data.join("filler");
    let input = format!("fill={}", fill.display());
    let out = lev.run(&["run", wf.to_str().unwrap(), "--headless", "--input", &input]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "not paused: {stdout}\n{stderr}");
    let journal = data.join("lev.redb");
    let cause = format!(
        "journal {}: no space left on device (os error 28)",
        journal.display()
    );
    assert!(stderr.contains(&cause), "{stderr}");
    assert!(stderr.contains("disk is full"), "{stderr}");
    let run = support::lev::run_id_from(&stdout).unwrap();
    let log = std::fs::read_to_string(data.join("logs/lev.log")).unwrap_or_default();
    assert!(log.contains("no space left on device"), "log: {log}");

    // The step that filled the disk has its outcome; nothing else started.
    let ws = lev.workspace();
    assert!(!ws.join("after-count.txt").exists());
    std::fs::remove_file(&fill).unwrap();
    let out = lev.run(&["resume", &run, "--headless"]);
    assert!(
        out.status.success(),
        "resume: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |f: &str| std::fs::read_to_string(ws.join(f)).unwrap().lines().count();
    assert_eq!(count("fill-count.txt"), 1, "the finished step ran again");
    assert_eq!(count("after-count.txt"), 1);
    assert!(
        data.join("lev.redb.reserve").exists(),
        "reserve not recreated"
    );
    let doctor = lev.run(&["doctor"]);
    assert!(
        doctor.status.success(),
        "{}",
        String::from_utf8_lossy(&doctor.stdout)
    );
    drop(mount);
}
