//! A real journal, written by the real `lev`, then damaged on disk: flipped
//! bytes (one chosen, many seeded at random) and zeroed pages. No command
//! may panic or hang; `lev doctor` names the damaged runs; `lev export
//! --all` still saves the intact ones; a run doctor calls intact exports
//! exactly as before the damage (nothing altered is served silently).

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use support::lev::Lev;

const WORKFLOW: &str = r#"version: 1
kind: workflow
id: damage
name: Damage test
inputs:
  fill: { type: string, default: "a" }
steps:
  big:
    type: shell
    run: |
      head -c 30000 /dev/zero | tr '\0' '${{ inputs.fill }}'
  small:
    needs: [big]
    type: shell
    run: echo small-${{ inputs.fill }}
outputs:
  said: "${{ steps.small.outputs.stdout }}"
"#;

/// Longest a command may take on a damaged journal before it counts as hung.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs a lev command to its end (or kills it at the deadline and fails).
/// Its output is drained by threads: an export fills a pipe quickly.
fn run(lev: &Lev, args: &[&str]) -> Output {
    use std::io::Read;
    let mut child = lev
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`lev {}` hung on a damaged journal; stderr: {}",
                args.join(" "),
                String::from_utf8_lossy(&stderr.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// A command that ran on a damaged journal: it ended with an exit code
/// (not a signal), and not with a panic.
fn no_panic(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some(),
        "{what}: killed by a signal; stderr: {stderr}"
    );
    assert_ne!(out.status.code(), Some(101), "{what} panicked: {stderr}");
    assert!(!stderr.contains("panicked"), "{what} panicked: {stderr}");
}

/// Three finished runs (fill a, b, c); returns their ids in that order.
fn three_runs(lev: &Lev) -> Vec<String> {
    let wf = lev.workspace().join("damage.yaml");
    std::fs::write(&wf, WORKFLOW).unwrap();
    let mut ids = Vec::new();
    for fill in ["a", "b", "c"] {
        let input = format!("fill={fill}");
        let out = lev.run(&["run", wf.to_str().unwrap(), "--headless", "--input", &input]);
        assert!(
            out.status.success(),
            "run {fill}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ids.push(support::lev::run_id_from(&String::from_utf8_lossy(&out.stdout)).unwrap());
    }
    ids
}

fn export(lev: &Lev, id: &str) -> Output {
    run(lev, &["export", id])
}

/// Every read command, on every run; none may panic or hang.
fn every_command(lev: &Lev, ids: &[String], what: &str) -> Output {
    no_panic(&run(lev, &["runs"]), &format!("{what}: runs"));
    for id in ids {
        for args in [
            vec!["show", id.as_str()],
            vec!["show", id.as_str(), "--json"],
            vec!["replay", id.as_str(), "--headless"],
            vec!["export", id.as_str()],
            vec!["resume", id.as_str(), "--headless"],
        ] {
            no_panic(&run(lev, &args), &format!("{what}: {}", args.join(" ")));
        }
    }
    let doctor = run(lev, &["doctor"]);
    no_panic(&doctor, &format!("{what}: doctor"));
    doctor
}

/// The middle of the longest stretch of `byte` in the file.
fn longest_run_of(bytes: &[u8], byte: u8) -> usize {
    let (mut best, mut best_len, mut start) = (0, 0, None);
    for (i, &b) in bytes.iter().enumerate() {
        match (b == byte, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s > best_len {
                    (best, best_len) = (s, i - s);
                }
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start
        && bytes.len() - s > best_len
    {
        (best, best_len) = (s, bytes.len() - s);
    }
    assert!(
        best_len > 10_000,
        "no long stretch of {byte} in the journal"
    );
    best + best_len / 2
}

#[test]
fn a_flipped_blob_byte_is_detected_and_the_other_runs_are_saved() {
    let lev = Lev::new();
    let ids = three_runs(&lev);
    let file = lev.data_dir().join("lev.redb");
    let before: Vec<Vec<u8>> = ids.iter().map(|id| export(&lev, id).stdout).collect();

    let mut bytes = std::fs::read(&file).unwrap();
    let at = longest_run_of(&bytes, b'b');
    bytes[at] = b'B';
    std::fs::write(&file, &bytes).unwrap();

    let doctor = every_command(&lev, &ids, "flipped blob byte");
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(1), "{report}");
    assert!(report.contains(&format!("{}  DAMAGED", ids[1])), "{report}");
    assert!(report.contains(&format!("{}  ok", ids[0])), "{report}");
    assert!(report.contains(&format!("{}  ok", ids[2])), "{report}");
    assert!(report.contains("is corrupt"), "{report}");

    // The damaged run is refused, never served altered.
    let damaged = export(&lev, &ids[1]);
    assert!(!damaged.status.success());
    let why = String::from_utf8_lossy(&damaged.stderr);
    assert!(why.contains("is corrupt"), "{why}");

    let out = lev.dir.path().join("saved");
    let all = run(
        &lev,
        &["export", "--all", "--output", out.to_str().unwrap()],
    );
    no_panic(&all, "export --all");
    assert_eq!(all.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&all.stderr);
    assert!(
        stderr.contains(&format!("{}  NOT exported", ids[1])),
        "{stderr}"
    );
    for i in [0, 2] {
        let saved = std::fs::read(out.join(format!("{}.jsonl", ids[i]))).unwrap();
        assert_eq!(saved, before[i], "run {} was not saved as it was", ids[i]);
    }
    assert!(!out.join(format!("{}.jsonl", ids[1])).exists());

    // The saved runs import into a fresh journal.
    let fresh = Lev::new();
    for i in [0, 2] {
        let file = out.join(format!("{}.jsonl", ids[i]));
        let imported = fresh.run(&["import", file.to_str().unwrap()]);
        assert!(imported.status.success());
    }
}

/// Seeded xorshift: the same seed damages the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn seed() -> u64 {
    std::env::var("LEV_DAMAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0005_EED0_F1A6)
}

/// Runs doctor calls intact must export exactly as before the damage.
fn intact_runs_are_unaltered(
    lev: &Lev,
    ids: &[String],
    before: &[Vec<u8>],
    report: &str,
    what: &str,
) {
    for (id, pristine) in ids.iter().zip(before) {
        if report.contains(&format!("{id}  ok")) {
            let now = export(lev, id);
            assert!(
                now.status.success() && now.stdout == *pristine,
                "{what}: doctor calls run {id} intact, but it exports differently: {}",
                String::from_utf8_lossy(&now.stderr)
            );
        }
    }
}

fn damage_loop(what: &str, rounds: u64, damage: impl Fn(&mut Vec<u8>, &mut Rng)) {
    let lev = Lev::new();
    let ids = three_runs(&lev);
    let file = lev.data_dir().join("lev.redb");
    let before: Vec<Vec<u8>> = ids.iter().map(|id| export(&lev, id).stdout).collect();
    let pristine = std::fs::read(&file).unwrap();
    let mut rng = Rng(seed() | 1);
    for round in 0..rounds {
        let mut bytes = pristine.clone();
        damage(&mut bytes, &mut rng);
        write_over(&file, &bytes);
        let what = format!("{what} round {round} (seed {})", seed());
        let doctor = every_command(&lev, &ids, &what);
        let report = String::from_utf8_lossy(&doctor.stdout).into_owned();
        assert!(
            matches!(doctor.status.code(), Some(0 | 1)),
            "{what}: doctor: {report}"
        );
        intact_runs_are_unaltered(&lev, &ids, &before, &report, &what);
        // `export --all` saves every run doctor calls intact, as it was.
        let out = lev.dir.path().join(format!("saved-{round}"));
        let all = run(
            &lev,
            &["export", "--all", "--output", out.to_str().unwrap()],
        );
        no_panic(&all, &format!("{what}: export --all"));
        for (id, pristine) in ids.iter().zip(&before) {
            if report.contains(&format!("{id}  ok")) {
                let saved = std::fs::read(out.join(format!("{id}.jsonl"))).unwrap_or_default();
                assert_eq!(&saved, pristine, "{what}: intact run {id} not saved");
            }
        }
    }
}

fn write_over(file: &Path, bytes: &[u8]) {
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn seeded_random_byte_flips_never_panic_and_never_pass_as_intact() {
    damage_loop("byte flips", 10, |bytes, rng| {
        let flips = 1 + rng.next() % 4;
        for _ in 0..flips {
            let at = (rng.next() % bytes.len() as u64) as usize;
            bytes[at] ^= 1 << (rng.next() % 8);
        }
    });
}

#[test]
fn zeroed_pages_never_panic_a_command() {
    damage_loop("zeroed pages", 8, |bytes, rng| {
        // 8 KiB of zeros at a page boundary, as the campaign did.
        let pages = (bytes.len() / 4096).max(3) as u64;
        let at = ((1 + rng.next() % (pages - 2)) * 4096) as usize;
        let end = (at + 8192).min(bytes.len());
        bytes[at..end].fill(0);
    });
}

/// One run's record damaged (its name flipped wherever it is stored):
/// `lev runs` still lists every other run and names the damaged one.
#[test]
fn a_damaged_run_record_does_not_hide_the_other_runs() {
    let lev = Lev::new();
    let ids = three_runs(&lev);
    let name = "Lonely record 7f3a";
    let wf = lev.workspace().join("lonely.yaml");
    std::fs::write(&wf, WORKFLOW.replace("Damage test", name)).unwrap();
    let out = lev.run(&["run", wf.to_str().unwrap(), "--headless"]);
    assert!(out.status.success());
    let lonely = support::lev::run_id_from(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let file = lev.data_dir().join("lev.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    let mut flipped = 0;
    for at in 0..bytes.len().saturating_sub(name.len()) {
        if &bytes[at..at + name.len()] == name.as_bytes() {
            bytes[at + 3] ^= 0x20;
            flipped += 1;
        }
    }
    assert!(flipped > 0, "the run's name is not in the file");
    write_over(&file, &bytes);
    let out = run(&lev, &["runs"]);
    no_panic(&out, "runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for id in &ids {
        assert!(stdout.contains(id.as_str()), "{id} not listed: {stdout}");
    }
    assert!(!stdout.contains(&lonely), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "run {lonely} is not listed: its record is damaged"
        )),
        "{stderr}"
    );
    let json = run(&lev, &["runs", "--json"]);
    let damaged = String::from_utf8_lossy(&json.stdout)
        .lines()
        .filter(|l| l.contains("\"damaged\"") && l.contains(&lonely))
        .count();
    assert_eq!(damaged, 1);
}

/// A destroyed header (redb cannot open the file at all), alone and with
/// more zeroed pages: no command panics; doctor scans the raw pages and
/// calls recoverable only runs that export exactly as before; `export
/// --all` saves them; `doctor --repair` moves the file aside and rebuilds a
/// journal in which they read, export and resume as before.
#[test]
fn a_journal_redb_cannot_open_is_salvaged_from_its_pages() {
    let lev = Lev::new();
    let ids = three_runs(&lev);
    let file = lev.data_dir().join("lev.redb");
    let before: Vec<Vec<u8>> = ids.iter().map(|id| export(&lev, id).stdout).collect();
    let pristine = std::fs::read(&file).unwrap();
    let mut rng = Rng(seed() | 1);
    for round in 0..4 {
        let what = format!("destroyed header round {round} (seed {})", seed());
        let mut bytes = pristine.clone();
        bytes[..8192].fill(0);
        if round > 0 {
            let pages = (bytes.len() / 4096) as u64;
            let at = ((2 + rng.next() % (pages - 2)) * 4096) as usize;
            let end = (at + 8192).min(bytes.len());
            bytes[at..end].fill(0);
        }
        write_over(&file, &bytes);
        let doctor = every_command(&lev, &ids, &what);
        let report = String::from_utf8_lossy(&doctor.stdout).into_owned();
        assert_eq!(doctor.status.code(), Some(1), "{what}: {report}");
        assert!(
            report.contains("cannot be read as a database"),
            "{what}: {report}"
        );
        let recoverable: Vec<&String> = ids
            .iter()
            .filter(|id| report.contains(&format!("{id}  recoverable")))
            .collect();
        if round == 0 {
            assert_eq!(recoverable.len(), 3, "{what}: {report}");
        }
        let out = lev.dir.path().join(format!("salvaged-{round}"));
        let all = run(
            &lev,
            &["export", "--all", "--output", out.to_str().unwrap()],
        );
        no_panic(&all, &format!("{what}: export --all"));
        for (id, pristine) in ids.iter().zip(&before) {
            let saved = std::fs::read(out.join(format!("{id}.jsonl")));
            if recoverable.contains(&id) {
                let saved = saved.unwrap_or_default();
                assert!(
                    saved == *pristine,
                    "{what}: recoverable run {id} not saved as it was ({} bytes, was {})",
                    saved.len(),
                    pristine.len()
                );
            } else {
                assert!(
                    saved.is_err(),
                    "{what}: run {id} saved though not recoverable"
                );
            }
        }
        let repair = run(&lev, &["doctor", "--repair"]);
        no_panic(&repair, &format!("{what}: doctor --repair"));
        let repaired = String::from_utf8_lossy(&repair.stdout);
        assert!(repaired.contains("moved it aside"), "{what}: {repaired}");
        for (id, pristine) in ids.iter().zip(&before) {
            if recoverable.contains(&id) {
                let now = export(&lev, id);
                assert!(
                    now.stdout == *pristine,
                    "{what}: run {id} exports differently after the repair"
                );
                let show = run(&lev, &["show", id]);
                assert!(show.status.success(), "{what}: show {id} after the repair");
            }
        }
        let after = run(&lev, &["doctor"]);
        assert!(
            after.status.success(),
            "{what}: the rebuilt journal is not intact: {}",
            String::from_utf8_lossy(&after.stdout)
        );
        // The damaged file is kept beside the new one.
        let kept = std::fs::read_dir(lev.data_dir())
            .unwrap()
            .filter(|e| {
                e.as_ref().is_ok_and(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("lev.redb.damaged-")
                })
            })
            .count();
        assert!(kept >= 1, "{what}: the damaged file was not kept");
    }
}
