//! Reading text for the model: binary detection, bounded line reads and
//! tails, so a huge or hostile file never costs more than a cap.

use std::io::{self, BufRead};

/// Bytes looked at to decide whether a file is binary.
pub(crate) const SNIFF_BYTES: usize = 8 * 1024;

/// A file whose first bytes contain NUL is treated as binary (as git does).
pub(crate) fn looks_binary(head: &[u8]) -> bool {
    head.iter().take(SNIFF_BYTES).any(|&b| b == 0)
}

/// One line without its `\n`, at most `cap` bytes of it (the rest of the
/// line is skipped); `None` at end of input.
pub(crate) struct Line {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

pub(crate) fn read_line_capped<R: BufRead>(reader: &mut R, cap: usize) -> io::Result<Option<Line>> {
    let mut line = Line {
        bytes: Vec::new(),
        truncated: false,
    };
    let mut any = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(any.then_some(line));
        }
        any = true;
        let (len, consumed, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i, i + 1, true),
            None => (buf.len(), buf.len(), false),
        };
        let room = cap.saturating_sub(line.bytes.len());
        if len > room {
            line.truncated = true;
        }
        line.bytes.extend_from_slice(&buf[..len.min(room)]);
        reader.consume(consumed);
        if done {
            return Ok(Some(line));
        }
    }
}

/// The last `cap` bytes of `bytes` as text, starting at a line boundary when
/// one is near, with a note on what was left out.
pub(crate) fn tail(bytes: &[u8], cap: usize) -> String {
    if bytes.len() <= cap {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut start = bytes.len() - cap;
    if let Some(nl) = bytes[start..].iter().position(|&b| b == b'\n') {
        // Only snap to a line start if that does not throw away much.
        if nl < cap / 4 {
            start += nl + 1;
        }
    }
    format!(
        "[... {start} earlier bytes omitted]\n{}",
        String::from_utf8_lossy(&bytes[start..])
    )
}

/// Cuts `text` to at most `max_chars` characters, marking the cut.
pub(crate) fn clip_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((at, _)) => format!("{} […]", &text[..at]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn capped_lines() {
        let data = b"short\nthis line is long\nlast";
        let mut r = BufReader::with_capacity(4, &data[..]);
        let a = read_line_capped(&mut r, 8).unwrap().unwrap();
        assert_eq!((a.bytes.as_slice(), a.truncated), (&b"short"[..], false));
        let b = read_line_capped(&mut r, 8).unwrap().unwrap();
        assert_eq!((b.bytes.as_slice(), b.truncated), (&b"this lin"[..], true));
        let c = read_line_capped(&mut r, 8).unwrap().unwrap();
        assert_eq!(c.bytes, b"last");
        assert!(read_line_capped(&mut r, 8).unwrap().is_none());
    }

    #[test]
    fn tails_and_clips() {
        assert_eq!(tail(b"abc", 10), "abc");
        let t = tail(b"line1\nline2\nline3\n", 8);
        assert!(t.starts_with("[... 12 earlier bytes omitted]\n"), "{t}");
        assert!(t.ends_with("line3\n"));
        assert_eq!(clip_chars("héllo", 2), "hé […]");
        assert_eq!(clip_chars("hé", 2), "hé");
        assert!(looks_binary(b"a\0b"));
        assert!(!looks_binary("ü".as_bytes()));
    }
}
