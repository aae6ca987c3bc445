//! YAML text → a spanned tree of plain nodes, with hostile input refused
//! before or while parsing (size, invalid UTF-8, depth, alias bombs).
//!
//! serde-saphyr does the parsing and enforces the budget; we deserialize into
//! our own recursive `Node` (every node and map key carries its line and
//! column) so the loader can walk it by hand and report every problem, not
//! just the first one serde would stop at.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::diagnostics::{Diagnostic, Severity};

/// Files larger than this are refused without parsing.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of maps and sequences we accept.
pub const MAX_DEPTH: usize = 64;
/// Stack for the parser thread: enough for `MAX_DEPTH` levels in debug builds.
const PARSER_STACK_BYTES: usize = 64 * 1024 * 1024;
/// Most nodes (scalars, maps, sequences) in one file.
pub const MAX_NODES: usize = 200_000;

/// One YAML node with its position (1-based line and column, in characters).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: u32,
    pub col: u32,
    /// Byte offset of the node in the source text, when the parser knows it.
    pub offset: Option<usize>,
    pub value: NodeValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order.
    Map(Vec<(Key, Node)>),
}

/// A mapping key (scalars only; other keys are rendered as text).
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub line: u32,
    pub col: u32,
}

impl Node {
    /// What the node is, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) | NodeValue::Float(_) => "a number",
            NodeValue::Str(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            NodeValue::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The scalar as text (numbers and booleans too), for fields that are
    /// strings but are often written unquoted (`default: 3`).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            NodeValue::Str(s) => Some(s.clone()),
            NodeValue::Bool(b) => Some(b.to_string()),
            NodeValue::Int(i) => Some(i.to_string()),
            NodeValue::Float(f) => Some(f.to_string()),
            _ => None,
        }
    }

    /// The node as JSON (for defaults, schemas and `with:` literals).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeValue::Str(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Parses `bytes` (the raw file) into a tree; any failure is one diagnostic
/// naming `file` and the position.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Node, Box<Diagnostic>> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(error_at(
            file,
            0,
            0,
            format!(
                "file is too large: {} bytes (the limit is {} bytes)",
                bytes.len(),
                MAX_FILE_BYTES
            ),
            Some("workflow and mode files are small; split it or check it is the right file"),
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to();
            let (line, col) = line_col_of_byte(&bytes[..at]);
            return Err(error_at(
                file,
                line,
                col,
                format!("file is not valid UTF-8: invalid byte at offset {at}"),
                Some("save the file as UTF-8"),
            ));
        }
    };
    parse_str(file, text)
}

/// Parses text already known to be UTF-8 (size is still checked).
pub fn parse_str(file: &str, text: &str) -> Result<Node, Box<Diagnostic>> {
    if text.len() > MAX_FILE_BYTES {
        return parse(file, text.as_bytes());
    }
    // serde's recursive descent uses tens of KiB of stack per nesting level
    // in debug builds; even within the depth budget that overflows a 2 MiB
    // test or tokio worker stack. Parse on a scoped thread with room to spare.
    let parsed = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("lev-yaml".to_string())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(scope, || {
                serde_saphyr::from_str_with_options::<Spanned<Raw>>(text, parser_options())
                    .map(convert)
                    .map_err(|e| yaml_error(file, &e))
            })
            .map(|handle| handle.join())
    });
    match parsed {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(error_at(
            file,
            0,
            0,
            "the YAML parser failed unexpectedly".to_string(),
            None,
        )),
        Err(e) => Err(error_at(
            file,
            0,
            0,
            format!("cannot start the YAML parser thread: {e}"),
            None,
        )),
    }
}

/// The budget and alias limits that keep hostile input cheap.
fn parser_options() -> serde_saphyr::Options {
    let budget = serde_saphyr::budget! {
        max_depth: MAX_DEPTH,
        max_nodes: MAX_NODES,
        max_aliases: 1_000,
        max_anchors: 1_000,
        max_documents: 1,
        max_events: 1_000_000,
        max_total_scalar_bytes: MAX_FILE_BYTES,
        flow_nesting_limit: MAX_DEPTH,
    };
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 100_000;
    alias_limits.max_replay_stack_depth = 16;
    alias_limits.max_alias_expansions_per_anchor = 1_000;
    serde_saphyr::options! {
        budget: budget,
        with_snippet: false,
        // YAML 1.1 `on`/`off`/`y`/`n` as booleans would turn `on:` keys into `true`.
        strict_booleans: true,
        alias_limits: alias_limits,
    }
}

fn yaml_error(file: &str, e: &serde_saphyr::Error) -> Box<Diagnostic> {
    let (line, col) = e
        .location()
        .map(|l| (l.line() as u32, l.column() as u32))
        .unwrap_or((0, 0));
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    // The position is in the diagnostic already; drop the library's copy.
    let first = first.split(" at line ").next().unwrap_or(first).trim();
    let lower = first.to_ascii_lowercase();
    let (message, hint) = if lower.contains("recursion limit") || lower.contains("depth") {
        (
            format!("nesting is too deep (more than {MAX_DEPTH} levels)"),
            Some("lev refuses deeply nested files; flatten the structure"),
        )
    } else if lower.contains("alias") && lower.contains("limit") || lower.contains("aliases") {
        (
            "too many alias expansions (an alias bomb?)".to_string(),
            Some("lev refuses files whose aliases expand to huge documents"),
        )
    } else if lower.contains("documents") {
        (
            "only one YAML document is allowed per file".to_string(),
            Some("remove the extra `---` separators"),
        )
    } else if lower.contains("budget") {
        (
            format!("file exceeds the parser budget: {first}"),
            Some("lev refuses files this large or complex"),
        )
    } else if let Some(key) = first.strip_prefix("duplicate mapping key: ") {
        let key = key.split(',').next().unwrap_or(key);
        (
            format!("duplicate key `{key}`"),
            Some("each key may appear once in a mapping"),
        )
    } else {
        (format!("invalid YAML: {first}"), None)
    };
    error_at(file, line, col, message, hint)
}

fn error_at(
    file: &str,
    line: u32,
    col: u32,
    message: String,
    hint: Option<&str>,
) -> Box<Diagnostic> {
    Box::new(Diagnostic {
        severity: Severity::Error,
        message,
        file: file.to_string(),
        line,
        col,
        path: String::new(),
        expected: None,
        found: None,
        hint: hint.map(str::to_string),
    })
}

/// 1-based line and column just after `prefix` (the valid bytes before a
/// bad one).
fn line_col_of_byte(prefix: &[u8]) -> (u32, u32) {
    let line = prefix.iter().filter(|b| **b == b'\n').count() + 1;
    let start = prefix
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    let col = String::from_utf8_lossy(&prefix[start..]).chars().count() + 1;
    (line as u32, col as u32)
}

/// Converts a 1-based (line, char column) to a byte offset in `text`.
pub fn byte_offset(text: &str, line: u32, col: u32) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let mut start = 0usize;
    for _ in 1..line {
        start += text.get(start..)?.find('\n')? + 1;
    }
    let rest = text.get(start..)?;
    let mut off = start;
    for (i, ch) in rest.chars().enumerate() {
        if i + 1 == col as usize {
            return Some(off);
        }
        if ch == '\n' {
            return Some(off);
        }
        off += ch.len_utf8();
    }
    Some(off)
}

/// The 1-based (line, char column) of byte offset `at` in `text`.
pub fn line_col(text: &str, at: usize) -> (u32, u32) {
    let at = at.min(text.len());
    let prefix = text.get(..at).unwrap_or(text);
    line_col_of_byte(prefix.as_bytes())
}

// The serde side: a private recursive type whose children are `Spanned`, so
// every node learns its own position from serde-saphyr.

enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<RawKey>, Spanned<Raw>)>),
}

struct RawKey(String);

fn convert(raw: Spanned<Raw>) -> Node {
    let line = raw.referenced.line() as u32;
    let col = raw.referenced.column() as u32;
    let offset = raw
        .referenced
        .span()
        .byte_offset()
        .and_then(|o| usize::try_from(o).ok());
    let value = match raw.value {
        Raw::Null => NodeValue::Null,
        Raw::Bool(b) => NodeValue::Bool(b),
        Raw::Int(i) => NodeValue::Int(i),
        Raw::Float(f) => NodeValue::Float(f),
        Raw::Str(s) => NodeValue::Str(s),
        Raw::Seq(items) => NodeValue::Seq(items.into_iter().map(convert).collect()),
        Raw::Map(entries) => NodeValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = Key {
                        name: k.value.0,
                        line: k.referenced.line() as u32,
                        col: k.referenced.column() as u32,
                    };
                    (key, convert(v))
                })
                .collect(),
        ),
    };
    Node {
        line,
        col,
        offset,
        value,
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(i64::try_from(v)
            .map(Raw::Int)
            .unwrap_or(Raw::Float(v as f64)))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Raw, E> {
        Ok(i64::try_from(v)
            .map(Raw::Int)
            .unwrap_or(Raw::Float(v as f64)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        Ok(i64::try_from(v)
            .map(Raw::Int)
            .unwrap_or(Raw::Float(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Raw, E> {
        Ok(Raw::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<RawKey>>()? {
            let value = map.next_value::<Spanned<Raw>>()?;
            entries.push((key, value));
        }
        Ok(Raw::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = RawKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawKey, E> {
        Ok(RawKey(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawKey, E> {
        Ok(RawKey(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawKey, E> {
        Ok(RawKey(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawKey, E> {
        Ok(RawKey(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawKey, E> {
        Ok(RawKey(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<RawKey, E> {
        Ok(RawKey(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawKey, E> {
        Ok(RawKey("null".to_string()))
    }
    fn visit_none<E: de::Error>(self) -> Result<RawKey, E> {
        Ok(RawKey("null".to_string()))
    }
}

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawKey, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(n: &Node) -> &[(Key, Node)] {
        n.as_map().unwrap()
    }

    #[test]
    fn positions_of_keys_and_values() {
        let text =
            "a: 1\nb:\n  c: \"x y\"\n  d: plain text\n  e: |\n    block\n    two\nf: [1, 2]\n";
        let n = parse_str("t.yaml", text).unwrap();
        let m = map(&n);
        assert_eq!(m[0].0.name, "a");
        assert_eq!((m[0].0.line, m[0].0.col), (1, 1));
        assert_eq!((m[0].1.line, m[0].1.col), (1, 4));
        let b = map(&m[1].1);
        assert_eq!((b[0].1.line, b[0].1.col), (3, 6));
        // Byte offsets agree with line/column (the quote of `"x y"`).
        assert_eq!(&text[b[0].1.offset.unwrap()..][..4], "\"x y");
        assert_eq!(&text[b[1].1.offset.unwrap()..][..5], "plain");
        assert_eq!(b[0].1.as_str(), Some("x y"));
        assert_eq!((b[1].1.line, b[1].1.col), (4, 6));
        assert_eq!(b[2].1.as_str(), Some("block\ntwo\n"));
        assert_eq!(b[2].1.line, 6);
        assert_eq!(m[2].1.kind(), "a list");
    }

    #[test]
    fn byte_offsets_round_trip() {
        let text = "ab\ncdé f\n";
        let off = byte_offset(text, 2, 4).unwrap();
        assert_eq!(&text[off..], " f\n");
        assert_eq!(line_col(text, off), (2, 4));
    }

    #[test]
    fn syntax_error_has_position() {
        let d = parse_str("t.yaml", "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(d.message.starts_with("invalid YAML"), "{d}");
        assert!(d.line >= 1, "{d}");
    }
}
