//! The stored record formats of entries and run metadata.
//!
//! A record is a version byte followed by a compact hand-written encoding
//! (LEB128 varints, length-prefixed byte strings) and, from version 2, an
//! 8-byte checksum (blake3 of everything before it): redb does not check
//! leaf pages when it reads them, so a flipped byte in a record would
//! otherwise decode into a different, plausible entry. It is deliberately
//! separate from the in-memory `Entry`/`RunMeta` so that a journal written
//! today still decodes after those types change: a new layout gets a new
//! version byte and the old decoder stays.

use crate::protocol::{RunId, RunStatus};

use super::{Entry, RunMeta};

/// Entry records without a checksum (journals of earlier builds).
const ENTRY_V1: u8 = 1;
/// Entry records with a trailing checksum (journals of earlier builds).
const ENTRY_V2: u8 = 2;
/// Entry records whose payload leaves out what the header already says
/// (`Cuts`) and whose hex fingerprint is stored as raw bytes; checksummed.
/// What this build writes.
const ENTRY_V3: u8 = 3;
/// Run records without a checksum (journals of earlier builds).
const RUN_V1: u8 = 1;
/// Run records with a trailing checksum; what this build writes.
const RUN_V2: u8 = 2;
/// Bytes of the trailing checksum.
const SUM_LEN: usize = 8;

const FLAG_STEP: u8 = 1;
const FLAG_FINGERPRINT: u8 = 2;
const FLAG_BLOB: u8 = 4;
/// The fingerprint is a lowercase hex digest, stored as its raw bytes.
const FLAG_FINGERPRINT_RAW: u8 = 8;

/// Payloads larger than this are stored in `blobs` and referenced by hash.
pub(crate) const INLINE_PAYLOAD_MAX: usize = 16 * 1024;

/// Why a stored record could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) &'static str);

/// A decoded entry record: the entry, and the blob hash (raw bytes) its
/// payload lives under when it was spilled (then `payload` is empty).
pub(crate) type DecodedEntry = (Entry, Option<[u8; 32]>);

/// An entry encoded for storage, plus the blob its payload moved to (if any).
#[derive(Clone)]
pub(crate) struct EncodedEntry {
    pub(crate) record: Vec<u8>,
    /// (hex hash, bytes) to put in `blobs` in the same transaction.
    pub(crate) spilled: Option<(String, Vec<u8>)>,
    pub(crate) at_ms: u64,
}

/// Encodes an entry; payloads over `INLINE_PAYLOAD_MAX` are split off as a blob.
pub(crate) fn encode_entry(entry: Entry) -> EncodedEntry {
    let Entry {
        kind,
        step,
        fingerprint,
        attempt,
        at_ms,
        mut payload,
    } = entry;
    let spill = payload.len() > INLINE_PAYLOAD_MAX;
    let raw_fingerprint = fingerprint.as_deref().and_then(hex_digest);
    let mut flags = 0;
    if step.is_some() {
        flags |= FLAG_STEP;
    }
    if fingerprint.is_some() {
        flags |= FLAG_FINGERPRINT;
    }
    if raw_fingerprint.is_some() {
        flags |= FLAG_FINGERPRINT_RAW;
    }
    if spill {
        flags |= FLAG_BLOB;
    }
    let payload_len = if spill { 32 } else { payload.len() + 5 };
    let mut out = Vec::with_capacity(
        24 + kind.len()
            + step.as_ref().map_or(0, |s| s.len() + 5)
            + fingerprint.as_ref().map_or(0, |s| s.len() + 5)
            + payload_len,
    );
    out.push(ENTRY_V3);
    out.push(flags);
    put_varint(&mut out, u64::from(attempt));
    put_varint(&mut out, at_ms);
    put_bytes(&mut out, kind.as_bytes());
    if let Some(step) = &step {
        put_bytes(&mut out, step.as_bytes());
    }
    match (&fingerprint, raw_fingerprint) {
        (_, Some(raw)) => out.extend_from_slice(&raw),
        (Some(fp), None) => put_bytes(&mut out, fp.as_bytes()),
        (None, None) => {}
    }
    let spilled = if spill {
        let hash = blake3::hash(&payload);
        out.extend_from_slice(hash.as_bytes());
        Some((hash.to_hex().to_string(), payload))
    } else {
        let header = Header {
            kind: &kind,
            step: step.as_deref(),
            fingerprint: fingerprint.as_deref(),
            at_ms,
        };
        let cuts = cut_repeats(&header, &mut payload);
        cuts.write(&mut out);
        put_bytes(&mut out, &payload);
        None
    };
    seal(&mut out);
    EncodedEntry {
        record: out,
        spilled,
        at_ms,
    }
}

/// The raw bytes of a lowercase hex digest of 32 bytes (what fingerprints
/// are); `None` for anything else, which is then stored as it is.
fn hex_digest(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut raw = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        raw[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(raw)
}

fn hex_text(raw: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(raw.len() * 2);
    for b in raw {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    text
}

/// What an entry's header says, which its JSON payload (an event) usually
/// says again.
struct Header<'a> {
    kind: &'a str,
    step: Option<&'a str>,
    fingerprint: Option<&'a str>,
    at_ms: u64,
}

/// How many fragments `Header::fragment` knows.
const FRAGMENTS: usize = 4;

impl Header<'_> {
    /// The bytes of the `i`th fragment a payload may repeat, as serde_json
    /// writes them: `"type":KIND,`, `"step":STEP,`, `"fingerprint":FP,`,
    /// `,"at":AT`.
    fn fragment(&self, i: usize, out: &mut Vec<u8>) -> bool {
        let field = |out: &mut Vec<u8>, name: &str, value: &str| {
            out.extend_from_slice(name.as_bytes());
            // Writing a string into a vector cannot fail.
            let _ = serde_json::to_writer(&mut *out, value);
            out.push(b',');
        };
        match i {
            0 => field(out, "\"type\":", self.kind),
            1 => match self.step {
                Some(step) => field(out, "\"step\":", step),
                None => return false,
            },
            2 => match self.fingerprint {
                Some(fp) => field(out, "\"fingerprint\":", fp),
                None => return false,
            },
            3 => {
                out.extend_from_slice(b",\"at\":");
                out.extend_from_slice(self.at_ms.to_string().as_bytes());
            }
            _ => return false,
        }
        true
    }
}

/// Where fragments were cut out of a payload: for the `i`th fragment, the
/// offset it was cut at in the payload as it was after the earlier cuts.
#[derive(Default)]
struct Cuts {
    at: [Option<u64>; FRAGMENTS],
}

impl Cuts {
    /// A bit per fragment, then the offsets of those cut.
    fn write(&self, out: &mut Vec<u8>) {
        let mask = (0..FRAGMENTS).fold(0u8, |m, i| m | (u8::from(self.at[i].is_some()) << i));
        out.push(mask);
        for offset in self.at.iter().flatten() {
            put_varint(out, *offset);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Cuts, DecodeError> {
        let mask = r.u8()?;
        if mask >> FRAGMENTS != 0 {
            return Err(DecodeError("unknown payload cuts"));
        }
        let mut cuts = Cuts::default();
        for i in 0..FRAGMENTS {
            if mask & (1 << i) != 0 {
                cuts.at[i] = Some(r.varint()?);
            }
        }
        Ok(cuts)
    }
}

/// Cuts each fragment the header names out of `payload` at its first
/// occurrence. Wherever a fragment was found, `put_back` restores it at the
/// same offset, so every payload round-trips byte for byte; the fields of
/// an event are where it is found in practice.
fn cut_repeats(header: &Header<'_>, payload: &mut Vec<u8>) -> Cuts {
    let mut cuts = Cuts::default();
    let mut fragment = Vec::with_capacity(96);
    for i in 0..FRAGMENTS {
        fragment.clear();
        if !header.fragment(i, &mut fragment) {
            continue;
        }
        if let Some(at) = memchr::memmem::find(payload, &fragment) {
            payload.drain(at..at + fragment.len());
            cuts.at[i] = Some(at as u64);
        }
    }
    cuts
}

/// Puts back what `cut_repeats` cut, last cut first.
fn put_back(header: &Header<'_>, cuts: &Cuts, stored: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut payload = Vec::with_capacity(stored.len() + 160);
    payload.extend_from_slice(stored);
    let mut fragment = Vec::with_capacity(96);
    for i in (0..FRAGMENTS).rev() {
        let Some(at) = cuts.at[i] else { continue };
        fragment.clear();
        if !header.fragment(i, &mut fragment) {
            return Err(DecodeError("a payload cut names a field the entry lacks"));
        }
        let at = usize::try_from(at)
            .ok()
            .filter(|at| *at <= payload.len())
            .ok_or(DecodeError("a payload cut lies past its end"))?;
        payload.splice(at..at, fragment.iter().copied());
    }
    Ok(payload)
}

/// Decodes an entry record of any known version.
pub(crate) fn decode_entry(bytes: &[u8]) -> Result<DecodedEntry, DecodeError> {
    let version = match bytes.first() {
        Some(&v @ (ENTRY_V1 | ENTRY_V2 | ENTRY_V3)) => v,
        _ => return Err(DecodeError("unknown entry record version")),
    };
    let mut r = Reader {
        buf: if version == ENTRY_V1 {
            bytes
        } else {
            unseal(bytes)?
        },
    };
    r.u8()?;
    let flags = r.u8()?;
    let attempt = u32::try_from(r.varint()?).map_err(|_| DecodeError("attempt out of range"))?;
    let at_ms = r.varint()?;
    let kind = r.string()?;
    let step = if flags & FLAG_STEP != 0 {
        Some(r.string()?)
    } else {
        None
    };
    let fingerprint = match (
        flags & FLAG_FINGERPRINT != 0,
        flags & FLAG_FINGERPRINT_RAW != 0,
    ) {
        (false, false) => None,
        (true, false) => Some(r.string()?),
        (true, true) if version == ENTRY_V3 => Some(hex_text(r.take(32)?)),
        _ => return Err(DecodeError("bad fingerprint flags")),
    };
    let (payload, blob) = if flags & FLAG_BLOB != 0 {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(r.take(32)?);
        (Vec::new(), Some(hash))
    } else if version == ENTRY_V3 {
        let cuts = Cuts::read(&mut r)?;
        let stored = r.bytes()?;
        let header = Header {
            kind: &kind,
            step: step.as_deref(),
            fingerprint: fingerprint.as_deref(),
            at_ms,
        };
        (put_back(&header, &cuts, stored)?, None)
    } else {
        (r.bytes()?.to_vec(), None)
    };
    if !r.buf.is_empty() {
        return Err(DecodeError("trailing bytes after entry record"));
    }
    let entry = Entry {
        kind,
        step,
        fingerprint,
        attempt,
        at_ms,
        payload,
    };
    Ok((entry, blob))
}

/// Encodes run metadata.
pub(crate) fn encode_run(meta: &RunMeta) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        64 + meta.id.0.len()
            + meta.workflow_id.len()
            + meta.name.len()
            + meta.source.len()
            + meta.definition_blob.len(),
    );
    out.push(RUN_V2);
    put_bytes(&mut out, meta.id.0.as_bytes());
    put_bytes(&mut out, meta.workflow_id.as_bytes());
    put_bytes(&mut out, meta.name.as_bytes());
    put_bytes(&mut out, meta.source.as_bytes());
    put_bytes(&mut out, meta.definition_blob.as_bytes());
    out.push(status_code(meta.status));
    put_varint(&mut out, meta.created_ms);
    put_varint(&mut out, meta.updated_ms);
    put_varint(&mut out, meta.last_seq);
    // 1: a fork or child's parent, 2: a step run's spread run.
    match &meta.parent {
        Some(parent) => {
            out.push(if meta.step_run { 2 } else { 1 });
            put_bytes(&mut out, parent.0.as_bytes());
        }
        None => out.push(0),
    }
    seal(&mut out);
    out
}

/// Decodes a run record of any known version.
pub(crate) fn decode_run(bytes: &[u8]) -> Result<RunMeta, DecodeError> {
    let mut r = Reader {
        buf: match bytes.first() {
            Some(&RUN_V1) => bytes,
            Some(&RUN_V2) => unseal(bytes)?,
            _ => return Err(DecodeError("unknown run record version")),
        },
    };
    r.u8()?;
    let id = RunId(r.string()?);
    let workflow_id = r.string()?;
    let name = r.string()?;
    let source = r.string()?;
    let definition_blob = r.string()?;
    let status = status_from_code(r.u8()?)?;
    let created_ms = r.varint()?;
    let updated_ms = r.varint()?;
    let last_seq = r.varint()?;
    let (parent, step_run) = match r.u8()? {
        0 => (None, false),
        1 => (Some(RunId(r.string()?)), false),
        2 => (Some(RunId(r.string()?)), true),
        _ => return Err(DecodeError("bad parent flag in run record")),
    };
    if !r.buf.is_empty() {
        return Err(DecodeError("trailing bytes after run record"));
    }
    Ok(RunMeta {
        id,
        workflow_id,
        name,
        source,
        definition_blob,
        status,
        created_ms,
        updated_ms,
        last_seq,
        parent,
        step_run,
    })
}

// Stable codes: these are part of the stored format, never reorder.
fn status_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Running => 0,
        RunStatus::Paused => 1,
        RunStatus::Succeeded => 2,
        RunStatus::Failed => 3,
        RunStatus::Cancelled => 4,
    }
}

fn status_from_code(code: u8) -> Result<RunStatus, DecodeError> {
    Ok(match code {
        0 => RunStatus::Running,
        1 => RunStatus::Paused,
        2 => RunStatus::Succeeded,
        3 => RunStatus::Failed,
        4 => RunStatus::Cancelled,
        _ => return Err(DecodeError("unknown run status code")),
    })
}

/// Appends the checksum of everything in `out`.
fn seal(out: &mut Vec<u8>) {
    let sum = blake3::hash(out);
    out.extend_from_slice(&sum.as_bytes()[..SUM_LEN]);
}

/// The record without its checksum, when the checksum matches.
fn unseal(bytes: &[u8]) -> Result<&[u8], DecodeError> {
    let body_len = bytes
        .len()
        .checked_sub(SUM_LEN)
        .ok_or(DecodeError("record truncated"))?;
    let (body, sum) = bytes.split_at(body_len);
    if &blake3::hash(body).as_bytes()[..SUM_LEN] == sum {
        Ok(body)
    } else {
        Err(DecodeError(
            "record checksum mismatch (the journal file is damaged)",
        ))
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A cursor over a record; every read is bounds-checked so a corrupt record
/// gives an error, never a panic.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or(DecodeError("record truncated"))?;
        self.buf = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(DecodeError("varint overflow"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError("varint overflow"));
            }
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError("record truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError("length overflow"))?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError("string field is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(payload: Vec<u8>) -> Entry {
        Entry {
            kind: "step_completed".into(),
            step: Some("build/compile".into()),
            fingerprint: None,
            attempt: 3,
            at_ms: 1_700_000_000_123,
            payload,
        }
    }

    #[test]
    fn entry_round_trips_inline() {
        let e = entry(br#"{"ok":true}"#.to_vec());
        let enc = encode_entry(e.clone());
        assert!(enc.spilled.is_none());
        let (back, blob) = decode_entry(&enc.record).unwrap();
        assert!(blob.is_none());
        assert_eq!(back, e);
    }

    #[test]
    fn large_payload_spills_to_blob() {
        let payload = vec![7u8; INLINE_PAYLOAD_MAX + 1];
        let enc = encode_entry(entry(payload.clone()));
        let (hash, bytes) = enc.spilled.unwrap();
        assert_eq!(bytes, payload);
        assert_eq!(hash, blake3::hash(&payload).to_hex().to_string());
        let (back, blob) = decode_entry(&enc.record).unwrap();
        assert!(back.payload.is_empty());
        assert_eq!(
            blake3::Hash::from_bytes(blob.unwrap()).to_hex().as_str(),
            hash
        );
    }

    #[test]
    fn corrupt_records_error_instead_of_panicking() {
        let enc = encode_entry(entry(b"x".to_vec()));
        for cut in 0..enc.record.len() {
            assert!(decode_entry(&enc.record[..cut]).is_err());
        }
        let mut bad = enc.record.clone();
        bad[0] = 99;
        assert_eq!(
            decode_entry(&bad).err(),
            Some(DecodeError("unknown entry record version"))
        );
        assert!(decode_run(&[RUN_V1, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn run_meta_round_trips() {
        let meta = RunMeta {
            id: RunId::new(),
            workflow_id: "implement-auth".into(),
            name: "Implement auth".into(),
            source: "workflows/implement-auth.yaml".into(),
            definition_blob: "ab".repeat(32),
            status: RunStatus::Paused,
            created_ms: 5,
            updated_ms: u64::MAX,
            last_seq: 300,
            parent: Some(RunId::new()),
            step_run: false,
        };
        assert_eq!(decode_run(&encode_run(&meta)).unwrap(), meta);
    }
}

/// The stored formats round-trip whatever they hold, and no byte string
/// makes a decoder panic (a damaged page reaches them as it is).
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    /// An entry as builds before version 3 wrote it.
    fn encode_entry_v2(e: &Entry) -> Vec<u8> {
        let spill = e.payload.len() > INLINE_PAYLOAD_MAX;
        let mut flags = 0;
        if e.step.is_some() {
            flags |= FLAG_STEP;
        }
        if e.fingerprint.is_some() {
            flags |= FLAG_FINGERPRINT;
        }
        if spill {
            flags |= FLAG_BLOB;
        }
        let mut out = vec![ENTRY_V2, flags];
        put_varint(&mut out, u64::from(e.attempt));
        put_varint(&mut out, e.at_ms);
        put_bytes(&mut out, e.kind.as_bytes());
        if let Some(step) = &e.step {
            put_bytes(&mut out, step.as_bytes());
        }
        if let Some(fp) = &e.fingerprint {
            put_bytes(&mut out, fp.as_bytes());
        }
        if spill {
            out.extend_from_slice(blake3::hash(&e.payload).as_bytes());
        } else {
            put_bytes(&mut out, &e.payload);
        }
        seal(&mut out);
        out
    }

    fn status() -> impl Strategy<Value = RunStatus> {
        prop_oneof![
            Just(RunStatus::Running),
            Just(RunStatus::Paused),
            Just(RunStatus::Succeeded),
            Just(RunStatus::Failed),
            Just(RunStatus::Cancelled),
        ]
    }

    fn entry() -> impl Strategy<Value = Entry> {
        (
            ".{0,40}",
            proptest::option::of(".{0,40}"),
            proptest::option::of("[0-9a-f]{0,64}"),
            any::<u32>(),
            any::<u64>(),
            // Past INLINE_PAYLOAD_MAX now and then, so spilling is covered.
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..256),
                proptest::collection::vec(
                    any::<u8>(),
                    INLINE_PAYLOAD_MAX - 2..INLINE_PAYLOAD_MAX + 64
                ),
            ],
        )
            .prop_map(|(kind, step, fingerprint, attempt, at_ms, payload)| Entry {
                kind,
                step,
                fingerprint,
                attempt,
                at_ms,
                payload,
            })
    }

    fn meta() -> impl Strategy<Value = RunMeta> {
        (
            (".{0,30}", ".{0,30}", ".{0,30}", ".{0,60}", "[0-9a-f]{0,64}"),
            status(),
            (any::<u64>(), any::<u64>(), any::<u64>()),
            proptest::option::of(".{0,30}"),
            any::<bool>(),
        )
            .prop_map(
                |(
                    (id, workflow_id, name, source, definition_blob),
                    status,
                    times,
                    parent,
                    step,
                )| {
                    RunMeta {
                        id: RunId(id),
                        workflow_id,
                        name,
                        source,
                        definition_blob,
                        status,
                        created_ms: times.0,
                        updated_ms: times.1,
                        last_seq: times.2,
                        step_run: step && parent.is_some(),
                        parent: parent.map(RunId),
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(192))]

        #[test]
        fn any_entry_round_trips(e in entry()) {
            let enc = encode_entry(e.clone());
            prop_assert_eq!(enc.at_ms, e.at_ms);
            let (mut back, blob) = decode_entry(&enc.record).unwrap();
            match (blob, enc.spilled) {
                (Some(hash), Some((hex, bytes))) => {
                    prop_assert!(e.payload.len() > INLINE_PAYLOAD_MAX);
                    prop_assert_eq!(blake3::Hash::from_bytes(hash).to_hex().to_string(), hex);
                    prop_assert!(back.payload.is_empty());
                    back.payload = bytes;
                }
                (None, None) => prop_assert!(e.payload.len() <= INLINE_PAYLOAD_MAX),
                _ => prop_assert!(false, "record and spill disagree"),
            }
            prop_assert_eq!(back, e);
        }

        #[test]
        fn any_run_meta_round_trips(m in meta()) {
            prop_assert_eq!(decode_run(&encode_run(&m)).unwrap(), m);
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let _ = decode_entry(&bytes);
            let _ = decode_run(&bytes);
        }

        #[test]
        fn a_flipped_bit_in_a_record_is_always_detected(
            e in entry(),
            m in meta(),
            at in any::<usize>(),
            bit in 0u8..8,
        ) {
            let mut rec = encode_entry(e).record;
            let i = at % rec.len();
            rec[i] ^= 1 << bit;
            prop_assert!(decode_entry(&rec).is_err());
            let mut rec = encode_run(&m);
            let i = at % rec.len();
            rec[i] ^= 1 << bit;
            prop_assert!(decode_run(&rec).is_err());
        }

        #[test]
        fn records_of_earlier_builds_still_decode(e in entry(), m in meta()) {
            // Version 2 as earlier builds wrote it; version 1 is the same
            // layout without the checksum.
            let v2 = encode_entry_v2(&e);
            let v1 = |mut rec: Vec<u8>| {
                rec.truncate(rec.len() - SUM_LEN);
                rec[0] = 1;
                rec
            };
            let (back, _) = decode_entry(&v2).unwrap();
            if e.payload.len() <= INLINE_PAYLOAD_MAX {
                prop_assert_eq!(&back, &e);
            }
            let (back, _) = decode_entry(&v1(v2)).unwrap();
            prop_assert_eq!(back.kind, e.kind);
            prop_assert_eq!(back.at_ms, e.at_ms);
            prop_assert_eq!(decode_run(&v1(encode_run(&m))).unwrap(), m);
        }

        #[test]
        fn an_event_whose_fields_repeat_the_header_round_trips(
            e in entry(),
            text in ".{0,40}",
            cut_in_text in any::<bool>(),
        ) {
            // The payload an event makes: its header's fields again, and
            // (sometimes) the same fragments inside a value as well.
            let mut header_bytes = Vec::new();
            let header = Header {
                kind: &e.kind,
                step: e.step.as_deref(),
                fingerprint: e.fingerprint.as_deref(),
                at_ms: e.at_ms,
            };
            for i in 0..FRAGMENTS - 1 {
                header.fragment(i, &mut header_bytes);
            }
            let mut payload = b"{".to_vec();
            payload.extend_from_slice(&header_bytes);
            let inner = if cut_in_text {
                format!("{text}{}", String::from_utf8_lossy(&header_bytes))
            } else {
                text
            };
            payload.extend_from_slice(&serde_json::to_vec(&serde_json::json!({ "text": inner })).unwrap()[1..]);
            let mut at = Vec::new();
            header.fragment(3, &mut at);
            payload.pop();
            payload.extend_from_slice(&at);
            payload.push(b'}');
            let e = Entry { payload, ..e };
            let enc = encode_entry(e.clone());
            if enc.spilled.is_none() {
                // The repeats are gone: a mask byte and an offset (at
                // most 3 bytes) per cut stand in for them.
                let v2 = encode_entry_v2(&e).len();
                prop_assert!(
                    enc.record.len() + header_bytes.len() + at.len() <= v2 + 1 + 3 * FRAGMENTS,
                    "{} bytes, {} in version 2", enc.record.len(), v2
                );
                let (back, _) = decode_entry(&enc.record).unwrap();
                prop_assert_eq!(back, e);
            }
        }
    }
}
