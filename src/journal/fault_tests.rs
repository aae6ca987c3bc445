//! The journal on a disk that fails: writes and syncs refused with ENOSPC
//! or EIO at chosen or seeded random points, and power cuts that keep only
//! what was synced. Every acknowledged entry must survive, no entry may be
//! half there, and the run must go on after a reopen.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::faults::{Fault, FaultyDisk};
use super::tests::{entry, meta};
use super::*;
use crate::protocol::{RunId, Seq};

const NAME: &str = "/faulty/lev.redb";

fn open(disk: &FaultyDisk) -> Journal {
    let d = disk.clone();
    Journal::open_backend(NAME, move || d.backend(), None).unwrap()
}

/// A journal whose space reserve, when released, makes the disk work
/// again (as deleting the reserve file frees room on a full disk).
fn open_with_reserve(disk: &FaultyDisk) -> (Journal, Arc<AtomicBool>) {
    let d = disk.clone();
    let released = Arc::new(AtomicBool::new(false));
    let r = released.clone();
    let heal = disk.clone();
    let reserve: Box<dyn Fn() -> bool + Send + Sync> = Box::new(move || {
        if r.swap(true, Ordering::SeqCst) {
            return false;
        }
        heal.heal();
        true
    });
    let j =
        Journal::open_backend(NAME, move || d.backend(), Some(db::Reserve::Hook(reserve))).unwrap();
    (j, released)
}

/// Small deterministic generator: the same seed gives the same faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[tokio::test]
async fn a_full_disk_names_the_file_and_the_cause_and_the_journal_recovers() {
    let disk = FaultyDisk::new();
    let j = open(&disk);
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    j.append(&run, vec![entry("a", "1")], None).await.unwrap();

    disk.fail_after(0, Fault::NoSpace);
    let err = j
        .append(&run, vec![entry("b", "2")], None)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(err.is_disk_full(), "{text}");
    assert!(
        text.starts_with("journal /faulty/lev.redb: no space left on device (os error 28)"),
        "{text}"
    );
    assert!(j.disk_full().is_some());

    // Space is back: the same handle goes on (no "writer stopped"), and
    // the failed append left nothing behind.
    disk.heal();
    let seqs = j.append(&run, vec![entry("c", "3")], None).await.unwrap();
    assert_eq!(seqs, vec![Seq(2)]);
    let kinds: Vec<String> = j
        .read(&run, Seq(1))
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.kind)
        .collect();
    assert_eq!(kinds, ["a", "c"]);
}

#[tokio::test]
async fn eio_is_reported_as_such() {
    let disk = FaultyDisk::new();
    let j = open(&disk);
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    disk.fail_after(0, Fault::Io);
    let err = j
        .append(&run, vec![entry("a", "1")], None)
        .await
        .unwrap_err();
    assert!(!err.is_disk_full());
    assert!(
        err.to_string().contains("input/output error (os error 5)"),
        "{err}"
    );
    assert!(j.disk_full().is_none());
}

#[tokio::test]
async fn the_commit_that_fills_the_disk_lands_in_the_reserve_once() {
    let disk = FaultyDisk::new();
    let (j, released) = open_with_reserve(&disk);
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    j.append(&run, vec![entry("started", "{}")], None)
        .await
        .unwrap();

    disk.fail_after(0, Fault::NoSpace);
    // The step's outcome is acknowledged although the disk was full...
    let seqs = j
        .append(&run, vec![entry("succeeded", "{\"ok\":1}")], None)
        .await
        .unwrap();
    assert_eq!(seqs, vec![Seq(2)]);
    assert!(released.load(Ordering::SeqCst), "the reserve was not used");
    // ...and the journal says why the engine must pause.
    let why = j.disk_full().unwrap();
    assert!(why.contains("no space left on device"), "{why}");
    let kinds: Vec<String> = j
        .read(&run, Seq(1))
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.kind)
        .collect();
    assert_eq!(kinds, ["started", "succeeded"], "written exactly once");
    // Space came back: a check clears the state.
    assert!(j.check_space().await);
    assert!(j.disk_full().is_none());
}

/// Seeded random faults and power cuts. Each round writes from several
/// tasks (small and spilled payloads), injects ENOSPC or EIO after a random
/// number of disk operations, then "loses power": the journal is reopened
/// from the last synced image only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_faults_and_crashes_keep_every_acknowledged_entry() {
    for seed in 1..=24u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let disk = FaultyDisk::new();
        let j = open(&disk);
        let run = RunId::new();
        j.create_run(meta(&run)).await.unwrap();
        // payload text → acknowledged seq
        let mut acked: BTreeMap<String, u64> = BTreeMap::new();
        let mut attempted: Vec<String> = Vec::new();
        let fault = if rng.below(2) == 0 {
            Fault::NoSpace
        } else {
            Fault::Io
        };
        // A disk that fails from some point on, or one that is small.
        match rng.below(3) {
            0 => disk.limit_growth(rng.below(3) * 1024 * 1024),
            _ => disk.fail_after(rng.below(120), fault),
        }
        let mut failures = 0;
        for i in 0..60u64 {
            let big = rng.below(5) == 0;
            let body = if big {
                // Spilled into a blob: the blob and its entry must land together.
                format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(20_000))
            } else {
                format!("{{\"i\":{i}}}")
            };
            attempted.push(body.clone());
            match j
                .append(&run, vec![entry("tick", body.clone())], None)
                .await
            {
                Ok(seqs) => {
                    acked.insert(body, seqs[0].0);
                }
                Err(e) => {
                    assert!(
                        matches!(e, JournalError::Io { .. }),
                        "seed {seed}: a disk fault must read as one: {e}"
                    );
                    failures += 1;
                    if failures > 3 {
                        break;
                    }
                }
            }
        }
        assert!(disk.injected() > 0 || acked.len() == 60, "seed {seed}");

        // Power cut: only what was synced survives.
        let image = disk.crash_image();
        drop(j);
        let after = FaultyDisk::from_image(image);
        let j = open(&after);
        let m = j.run(&run).await.unwrap().expect("the run survives");
        let entries = j.read(&run, Seq(1)).await.unwrap();
        assert_eq!(m.last_seq, entries.len() as u64, "seed {seed}");
        let mut last_index = None;
        for (n, (seq, e)) in entries.iter().enumerate() {
            assert_eq!(seq.0, n as u64 + 1, "seed {seed}: not a gap-free prefix");
            let body = String::from_utf8(e.payload.clone()).unwrap();
            // Whole, and one of ours, in the order written.
            let index = attempted
                .iter()
                .position(|a| *a == body)
                .unwrap_or_else(|| panic!("seed {seed}: entry {} is not one we wrote", seq.0));
            assert!(last_index < Some(index), "seed {seed}: order");
            last_index = Some(index);
        }
        for (body, seq) in &acked {
            let found = entries.iter().find(|(s, _)| s.0 == *seq);
            let (_, e) = found.unwrap_or_else(|| {
                panic!("seed {seed}: acknowledged entry {seq} lost after the crash")
            });
            assert_eq!(&String::from_utf8(e.payload.clone()).unwrap(), body);
        }
        // Every check of the run passes after the crash.
        let check = j.check_run(&run).await;
        assert!(
            check.problems.is_empty(),
            "seed {seed}: {:?}",
            check.problems
        );
        // And the run goes on where it stopped.
        let next = j
            .append(&run, vec![entry("resumed", "{}")], None)
            .await
            .unwrap();
        assert_eq!(next, vec![Seq(m.last_seq + 1)], "seed {seed}");
    }
}

/// Whole shell output is written only while there is room: on a full disk
/// it is refused without spending the space reserve, which then takes the
/// step's outcome.
#[tokio::test]
async fn an_expendable_blob_never_spends_the_reserve() {
    let disk = FaultyDisk::new();
    let (j, released) = open_with_reserve(&disk);
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    disk.fail_after(0, Fault::NoSpace);
    let err = j.put_blob_if_room(vec![7u8; 300_000]).await.unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    assert!(
        !released.load(Ordering::SeqCst),
        "the whole output spent the reserve"
    );
    assert!(
        j.disk_full().is_some(),
        "the engine was not told the disk is full"
    );
    // The outcome that follows lands in the reserve.
    let seqs = j
        .append(&run, vec![entry("succeeded", "{}")], None)
        .await
        .unwrap();
    assert_eq!(seqs, vec![Seq(1)]);
    assert!(released.load(Ordering::SeqCst));
}

/// A disk without room for the space reserve is full for lev: the journal
/// says so (the engine then pauses runs before they start a step).
#[tokio::test]
async fn no_room_for_the_reserve_is_a_full_disk() {
    let disk = FaultyDisk::new();
    let d = disk.clone();
    let j = Journal::open_backend(NAME, move || d.backend(), Some(db::Reserve::NoRoom)).unwrap();
    let why = j
        .disk_full()
        .expect("the journal did not say the disk is full");
    assert!(why.contains("space reserve"), "{why}");
    assert!(why.contains("no space left on device"), "{why}");
    assert!(!j.check_space().await, "still no room");
}

/// A batch that does not fit even in the released reserve is committed one
/// request at a time: the small facts land, only the big one fails.
#[test]
fn a_batch_too_big_for_the_reserve_lands_request_by_request() {
    use super::writer::{OnFull, Request, Writer};
    use std::sync::atomic::AtomicU64;
    use tokio::sync::oneshot;

    let disk = FaultyDisk::new();
    let d = disk.clone();
    let opener: db::Opener = Box::new(move || store::open_backend(d.backend()));
    let heal = disk.clone();
    // Releasing the reserve frees a little room only.
    let reserve = db::Reserve::Hook(Box::new(move || {
        heal.heal();
        heal.limit_growth(1 << 20);
        true
    }));
    let shared = db::Shared::open(NAME.into(), opener, Some(reserve)).unwrap();
    let commits = AtomicU64::new(0);
    let mut writer = Writer::new(&shared, &commits);
    let run = RunId::new();
    let (reply, created) = oneshot::channel();
    let create = Request::CreateRun {
        meta: meta(&run),
        first: Vec::new(),
        reply,
    };
    writer.commit_and_answer(vec![create], OnFull::UseReserve);
    created.blocking_recv().unwrap().unwrap();

    disk.fail_after(0, Fault::NoSpace);
    let append = |payload: String| {
        let (reply, answer) = oneshot::channel();
        let req = Request::Append {
            run: run.clone(),
            entries: vec![codec::encode_entry(entry("fact", payload.as_str()))],
            status: None,
            durable: true,
            blobs: Vec::new(),
            at_seq: None,
            reply,
        };
        (req, answer)
    };
    let (small, small_answer) = append("{\"small\":1}".into());
    let big_payload = format!("\"{}\"", "x".repeat(3 << 20));
    let (big, big_answer) = append(big_payload);
    let (last, last_answer) = append("{\"small\":2}".into());
    writer.commit_and_answer(vec![small, big, last], OnFull::UseReserve);
    assert_eq!(small_answer.blocking_recv().unwrap().unwrap(), vec![Seq(1)]);
    let err = big_answer.blocking_recv().unwrap().unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    assert_eq!(last_answer.blocking_recv().unwrap().unwrap(), vec![Seq(2)]);
}

/// An unsynced append is visible at once; a failed write's reopen rolls the
/// file back past it, and the writer applies it again before the next
/// commit, under the same seq. A power cut before any durable commit loses
/// it, and only it.
#[tokio::test]
async fn unsynced_appends_survive_a_reopen_and_are_lost_only_to_a_crash() {
    let disk = FaultyDisk::new();
    let j = open(&disk);
    let run = RunId::new();
    j.create_run(meta(&run)).await.unwrap();
    j.append(&run, vec![entry("one", "1")], None).await.unwrap();
    let seqs = j
        .append_unsynced(&run, vec![entry("started", "2")])
        .await
        .unwrap();
    assert_eq!(seqs, vec![Seq(2)]);
    let kinds = |j: Journal, run: RunId| async move {
        j.read(&run, Seq(1))
            .await
            .unwrap()
            .into_iter()
            .map(|(seq, e)| (seq.0, e.kind))
            .collect::<Vec<_>>()
    };
    // A power cut now keeps the durable entry only.
    let cut = Journal::open_backend(
        NAME,
        {
            let image = disk.crash_image();
            move || FaultyDisk::from_image(image.clone()).backend()
        },
        None,
    )
    .unwrap();
    assert_eq!(kinds(cut, run.clone()).await, [(1, "one".to_string())]);

    disk.fail_after(0, Fault::Io);
    j.append(&run, vec![entry("failed", "3")], None)
        .await
        .unwrap_err();
    disk.heal();
    let seqs = j.append(&run, vec![entry("end", "4")], None).await.unwrap();
    assert_eq!(seqs, vec![Seq(3)]);
    assert_eq!(
        kinds(j.clone(), run.clone()).await,
        [
            (1, "one".to_string()),
            (2, "started".to_string()),
            (3, "end".to_string())
        ]
    );
    // Durable now: a power cut keeps all three.
    let image = disk.crash_image();
    drop(j);
    let after = Journal::open_backend(
        NAME,
        move || FaultyDisk::from_image(image.clone()).backend(),
        None,
    )
    .unwrap();
    assert_eq!(kinds(after, run).await.len(), 3);
}
