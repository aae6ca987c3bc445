//! A redb storage backend for tests that injects faults: writes and syncs
//! fail with EIO or ENOSPC at chosen (or seeded random) points, and a crash
//! keeps only what the last successful `sync_data` made durable.
//!
//! Two images of the file are kept: `live` (what redb wrote, as the page
//! cache would hold it) and `synced` (what survived the last fsync). A
//! simulated crash reopens the journal on a copy of `synced`.

use std::io::{Error, ErrorKind};
use std::sync::{Arc, Mutex};

use redb::StorageBackend;

/// What a failing operation reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// ENOSPC: the disk is full.
    NoSpace,
    /// EIO: the device failed.
    Io,
}

impl Fault {
    fn error(self) -> Error {
        match self {
            Fault::NoSpace => Error::from_raw_os_error(28),
            Fault::Io => Error::from_raw_os_error(5),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    live: Vec<u8>,
    synced: Vec<u8>,
    /// Writes and syncs seen so far (both count as one operation each).
    ops: u64,
    /// Fail every operation from this one on (a disk that stays full or dead).
    fail_from: Option<(u64, Fault)>,
    /// The file may not grow past this many bytes (a small disk): writes
    /// and growth beyond it fail with ENOSPC.
    capacity: Option<u64>,
    /// Faults injected so far.
    injected: u64,
    /// How long each sync takes (a slow disk).
    sync_time: std::time::Duration,
}

/// The faulty disk; clones share it (the journal reopens on the same bytes).
#[derive(Debug, Clone, Default)]
pub(crate) struct FaultyDisk {
    state: Arc<Mutex<State>>,
}

/// One backend handed to redb; all of them write to the same disk.
#[derive(Debug)]
pub(crate) struct FaultyBackend {
    disk: FaultyDisk,
}

impl FaultyDisk {
    pub(crate) fn new() -> FaultyDisk {
        FaultyDisk::default()
    }

    /// A disk that starts with `image` (as durable as it is live).
    pub(crate) fn from_image(image: Vec<u8>) -> FaultyDisk {
        let disk = FaultyDisk::default();
        {
            let mut s = disk.state.lock().unwrap();
            s.live = image.clone();
            s.synced = image;
        }
        disk
    }

    pub(crate) fn backend(&self) -> FaultyBackend {
        FaultyBackend { disk: self.clone() }
    }

    /// Every write and sync from `after` operations from now fails with `fault`.
    pub(crate) fn fail_after(&self, after: u64, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        s.fail_from = Some((s.ops + after, fault));
    }

    /// The disk works again.
    pub(crate) fn heal(&self) {
        let mut s = self.state.lock().unwrap();
        s.fail_from = None;
        s.capacity = None;
    }

    /// The file cannot grow past its current length plus `extra` bytes.
    pub(crate) fn limit_growth(&self, extra: u64) {
        let mut s = self.state.lock().unwrap();
        s.capacity = Some(s.live.len() as u64 + extra);
    }

    /// Every sync takes `time` from now on (outside the disk's lock, as a
    /// real fsync does not stop other writes to the page cache).
    pub(crate) fn slow_sync(&self, time: std::time::Duration) {
        self.state.lock().unwrap().sync_time = time;
    }

    pub(crate) fn injected(&self) -> u64 {
        self.state.lock().unwrap().injected
    }

    /// What a power cut leaves: the bytes of the last successful sync.
    pub(crate) fn crash_image(&self) -> Vec<u8> {
        self.state.lock().unwrap().synced.clone()
    }

    fn check(&self, s: &mut State, grows_to: Option<u64>) -> Result<(), Error> {
        s.ops += 1;
        if let Some((from, fault)) = s.fail_from
            && s.ops > from
        {
            s.injected += 1;
            return Err(fault.error());
        }
        if let (Some(cap), Some(len)) = (s.capacity, grows_to)
            && len > cap
        {
            s.injected += 1;
            return Err(Fault::NoSpace.error());
        }
        Ok(())
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, Error> {
        Ok(self.disk.state.lock().unwrap().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), Error> {
        let s = self.disk.state.lock().unwrap();
        let start = usize::try_from(offset).map_err(|_| Error::from(ErrorKind::InvalidInput))?;
        let end = start + out.len();
        if end > s.live.len() {
            return Err(Error::from(ErrorKind::UnexpectedEof));
        }
        out.copy_from_slice(&s.live[start..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), Error> {
        let mut s = self.disk.state.lock().unwrap();
        let grows = len > s.live.len() as u64;
        self.disk.check(&mut s, grows.then_some(len))?;
        s.live.resize(usize::try_from(len).unwrap(), 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), Error> {
        let (time, image) = {
            let mut s = self.disk.state.lock().unwrap();
            self.disk.check(&mut s, None)?;
            (s.sync_time, s.live.clone())
        };
        std::thread::sleep(time);
        self.disk.state.lock().unwrap().synced = image;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        let mut s = self.disk.state.lock().unwrap();
        let end = offset + data.len() as u64;
        let grows = end > s.live.len() as u64;
        self.disk.check(&mut s, grows.then_some(end))?;
        let (start, end) = (usize::try_from(offset).unwrap(), end as usize);
        if end > s.live.len() {
            s.live.resize(end, 0);
        }
        s.live[start..end].copy_from_slice(data);
        Ok(())
    }
}
