//! The loader's working context: the file being read, the diagnostics
//! collected so far, and typed getters that report a problem and carry on
//! (so one load reports every error, not just the first).

use std::time::Duration;

use serde_json::Value;

use crate::spec::diagnostics::{Diagnostic, Severity};
use crate::spec::expr::Template;
use crate::spec::yaml::{self, Key, Node, NodeValue};

use super::duration::parse_duration;

/// Most diagnostics kept per file; a hostile file could otherwise produce
/// one per node.
pub const MAX_DIAGNOSTICS: usize = 500;

pub(crate) struct Cx<'t> {
    pub file: String,
    pub text: &'t str,
    pub diags: Vec<Diagnostic>,
    /// Receives details of diagnostics past the cap (then dropped).
    spill: Diagnostic,
}

/// A mapping's entries after the unknown-key check.
pub(crate) struct Fields<'n> {
    entries: &'n [(Key, Node)],
}

impl<'n> Fields<'n> {
    pub fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    pub fn entries(&self) -> &'n [(Key, Node)] {
        self.entries
    }
}

/// `a.b` joined, without a leading dot for the root.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'t> Cx<'t> {
    pub fn new(file: String, text: &'t str) -> Cx<'t> {
        let spill = Diagnostic {
            severity: Severity::Error,
            message: String::new(),
            file: String::new(),
            line: 0,
            col: 0,
            path: String::new(),
            expected: None,
            found: None,
            hint: None,
        };
        Cx {
            file,
            text,
            diags: Vec::new(),
            spill,
        }
    }

    /// True once the diagnostic cap is reached: callers may stop checking.
    pub fn is_full(&self) -> bool {
        self.diags.len() >= MAX_DIAGNOSTICS
    }

    /// Records an error and returns it so callers can add details.
    pub fn error(
        &mut self,
        line: u32,
        col: u32,
        path: &str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Severity::Error, line, col, path, message.into())
    }

    pub fn warning(
        &mut self,
        line: u32,
        col: u32,
        path: &str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Severity::Warning, line, col, path, message.into())
    }

    fn push(
        &mut self,
        severity: Severity,
        line: u32,
        col: u32,
        path: &str,
        message: String,
    ) -> &mut Diagnostic {
        if self.diags.len() >= MAX_DIAGNOSTICS {
            if self.diags.len() == MAX_DIAGNOSTICS {
                self.diags.push(Diagnostic {
                    severity: Severity::Error,
                    message: format!(
                        "too many problems; stopped reporting after {MAX_DIAGNOSTICS}"
                    ),
                    file: self.file.clone(),
                    // Sorts last.
                    line: u32::MAX,
                    col: 0,
                    path: String::new(),
                    expected: None,
                    found: None,
                    hint: Some("fix the problems above and load again".to_string()),
                });
            }
            return &mut self.spill;
        }
        self.diags.push(Diagnostic {
            severity,
            message,
            file: self.file.clone(),
            line,
            col,
            path: path.to_string(),
            expected: None,
            found: None,
            hint: None,
        });
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    pub fn at(&mut self, node: &Node, path: &str, message: impl Into<String>) -> &mut Diagnostic {
        self.error(node.line, node.col, path, message)
    }

    pub fn type_error(&mut self, node: &Node, path: &str, expected: &str) {
        let found = describe_found(node);
        let message = if path.is_empty() {
            format!("the file must be {expected} of top-level keys")
        } else {
            format!("`{}` must be {expected}", last_seg(path))
        };
        let d = self.at(node, path, message);
        d.expected = Some(expected.to_string());
        d.found = Some(found);
    }

    /// The node as a mapping whose keys are all in `known` (or `x-`
    /// extensions); unknown keys are reported with the closest known key.
    pub fn map<'n>(&mut self, node: &'n Node, path: &str, known: &[&str]) -> Option<Fields<'n>> {
        let NodeValue::Map(entries) = &node.value else {
            self.type_error(node, path, "a mapping");
            return None;
        };
        for (k, _) in entries {
            if k.name.starts_with("x-") || known.contains(&k.name.as_str()) {
                continue;
            }
            let what = if path.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in `{path}`")
            };
            let hint = closest(&k.name, known).map(|c| format!("did you mean `{c}`?"));
            let d = self.error(
                k.line,
                k.col,
                &join(path, &k.name),
                format!("unknown key `{}` {what}", k.name),
            );
            d.hint = Some(hint.unwrap_or_else(|| {
                format!(
                    "known keys: {}; prefix custom keys with `x-`",
                    known.join(", ")
                )
            }));
        }
        Some(Fields { entries })
    }

    pub fn str(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            NodeValue::Str(s) => Some(s.clone()),
            _ => {
                self.type_error(node, path, "a string");
                None
            }
        }
    }

    /// A string that may be written unquoted as a number or boolean.
    pub fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        match node.scalar_text() {
            Some(s) => Some(s),
            None => {
                self.type_error(node, path, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            NodeValue::Bool(b) => Some(*b),
            _ => {
                self.type_error(node, path, "`true` or `false`");
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub fn int(&mut self, node: &Node, path: &str, min: i64, max: i64) -> Option<i64> {
        let NodeValue::Int(i) = &node.value else {
            self.type_error(node, path, "an integer");
            return None;
        };
        if *i < min || *i > max {
            let d = self.at(node, path, format!("`{}` is out of range", last_seg(path)));
            d.expected = Some(format!("an integer from {min} to {max}"));
            d.found = Some(i.to_string());
            return None;
        }
        Some(*i)
    }

    pub fn u32(&mut self, node: &Node, path: &str, min: u32, max: u32) -> Option<u32> {
        self.int(node, path, i64::from(min), i64::from(max))
            .and_then(|i| u32::try_from(i).ok())
    }

    pub fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
        match &node.value {
            NodeValue::Int(i) => Some(*i as f64),
            NodeValue::Float(f) if f.is_finite() => Some(*f),
            _ => {
                self.type_error(node, path, "a number");
                None
            }
        }
    }

    /// `30s`, `20m`, `24h`, `500ms`, or plain seconds; must be positive and
    /// at most `max`.
    pub fn duration(&mut self, node: &Node, path: &str, max: Duration) -> Option<Duration> {
        let parsed = match &node.value {
            NodeValue::Int(i) if *i >= 0 => Ok(Duration::from_secs(*i as u64)),
            NodeValue::Float(f) if f.is_finite() && *f >= 0.0 && *f < 1e9 => {
                Ok(Duration::from_secs_f64(*f))
            }
            NodeValue::Str(s) => parse_duration(s),
            _ => Err(String::new()),
        };
        match parsed {
            Ok(d) if d.is_zero() => {
                let d = self.at(
                    node,
                    path,
                    format!("`{}` must be longer than zero", last_seg(path)),
                );
                d.expected = Some("a positive duration".to_string());
                d.found = Some(describe_value(node));
                None
            }
            Ok(d) if d > max => {
                let m = self.at(node, path, format!("`{}` is too long", last_seg(path)));
                m.expected = Some(format!("at most {}s", max.as_secs()));
                m.found = Some(describe_value(node));
                None
            }
            Ok(d) => Some(d),
            Err(why) => {
                let msg = if why.is_empty() {
                    format!("`{}` is not a duration", last_seg(path))
                } else {
                    format!("`{}` is not a duration: {why}", last_seg(path))
                };
                let d = self.at(node, path, msg);
                d.expected =
                    Some("a duration like `30s`, `20m`, `24h`, `500ms` or seconds".to_string());
                d.found = Some(describe_value(node));
                None
            }
        }
    }

    /// A list of strings (a single string is accepted as a one-item list).
    pub fn str_list(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        match &node.value {
            NodeValue::Str(s) => Some(vec![s.clone()]),
            NodeValue::Seq(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if let Some(s) = self.text(item, &format!("{path}[{i}]")) {
                        out.push(s);
                    }
                }
                Some(out)
            }
            _ => {
                self.type_error(node, path, "a list of strings");
                None
            }
        }
    }

    /// One of `allowed` (a plain string).
    pub fn choice(&mut self, node: &Node, path: &str, allowed: &[&str]) -> Option<String> {
        let s = self.str(node, path)?;
        if allowed.contains(&s.as_str()) {
            return Some(s);
        }
        let hint = closest(&s, allowed).map(|c| format!("did you mean `{c}`?"));
        let d = self.at(
            node,
            path,
            format!("`{}` has an unknown value `{s}`", last_seg(path)),
        );
        d.expected = Some(
            allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(" | "),
        );
        d.found = Some(format!("`{s}`"));
        d.hint = hint;
        None
    }

    /// A template from a string node; a parse error points into the string.
    pub fn template(&mut self, node: &Node, path: &str) -> Option<Template> {
        let raw = self.text(node, path)?;
        match Template::parse(&raw) {
            Ok(t) => Some(t),
            Err(e) => {
                let (line, col) = self.locate(node, &raw, e.offset);
                self.error(line, col, path, format!("bad template: {}", e.message));
                None
            }
        }
    }

    /// Where byte `offset` of a scalar's text `raw` sits in the file: the
    /// text around it is searched for from the node's position (exact for
    /// plain, quoted and block scalars without escapes); otherwise the node.
    pub fn locate(&self, node: &Node, raw: &str, offset: usize) -> (u32, u32) {
        self.locate_at(node.line, node.col, node.offset, raw, offset)
    }

    /// `locate` for a node known by position only. The search window is
    /// bounded by the scalar's size, so error reporting stays linear even
    /// for hostile files.
    pub fn locate_at(
        &self,
        line: u32,
        col: u32,
        node_off: Option<usize>,
        raw: &str,
        offset: usize,
    ) -> (u32, u32) {
        let fallback = (line, col);
        let text = self.text;
        let node_off = node_off
            .filter(|o| text.is_char_boundary(*o))
            .or_else(|| yaml::byte_offset(text, line, col));
        let Some(node_off) = node_off else {
            return fallback;
        };
        let offset = offset.min(raw.len());
        let line_start = raw[..offset].rfind('\n').map(|p| p + 1).unwrap_or(0);
        let line_end = raw[offset..]
            .find('\n')
            .map(|p| offset + p)
            .unwrap_or(raw.len());
        let needle = &raw[line_start..line_end];
        if needle.is_empty() {
            return fallback;
        }
        // Block scalars add indentation per line; quoting adds a little.
        let slack = raw.matches('\n').count().saturating_mul(256) + 1024;
        let mut limit = node_off
            .saturating_add(raw.len())
            .saturating_add(slack)
            .min(text.len());
        while !text.is_char_boundary(limit) {
            limit -= 1;
        }
        let Some(window) = text.get(node_off..limit) else {
            return fallback;
        };
        // Which occurrence of this line inside the scalar we are at.
        let nth = raw[..line_start].matches(needle).count();
        let Some((p, _)) = window.match_indices(needle).nth(nth) else {
            return fallback;
        };
        let between = &window[..p + (offset - line_start)];
        match between.rfind('\n') {
            None => (line, col + between.chars().count() as u32),
            Some(nl) => (
                line + between.matches('\n').count() as u32,
                between[nl + 1..].chars().count() as u32 + 1,
            ),
        }
    }
}

fn last_seg(path: &str) -> &str {
    let tail = path.rsplit('.').next().unwrap_or(path);
    tail.split('[').next().unwrap_or(tail)
}

fn describe_value(node: &Node) -> String {
    match node.scalar_text() {
        Some(s) => format!("`{s}`"),
        None => node.kind().to_string(),
    }
}

fn describe_found(node: &Node) -> String {
    match &node.value {
        NodeValue::Str(s) if s.chars().count() <= 40 => format!("a string `{s}`"),
        NodeValue::Int(i) => format!("the number {i}"),
        NodeValue::Float(f) => format!("the number {f}"),
        NodeValue::Bool(b) => format!("`{b}`"),
        _ => node.kind().to_string(),
    }
}

/// Names for a hint, at most 20 of them.
pub(crate) fn some_names(names: &[&str]) -> String {
    let mut s = names
        .iter()
        .take(20)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 20 {
        s.push_str(", …");
    }
    s
}

/// The known name closest to `word` by edit distance, if close enough to be
/// a likely typo.
pub(crate) fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    // Suggestions are a courtesy; never let them cost quadratic time.
    if known.len() > 256 || word.len() > 64 {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    for k in known {
        let d = edit_distance(word, k);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, k));
        }
    }
    let (d, k) = best?;
    let limit = (word.chars().count().max(k.chars().count()) / 3).max(1);
    (d <= limit).then_some(k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A scalar or structure as a JSON literal template (`with: {n: 3}` keeps 3
/// a number when evaluated).
pub(crate) fn json_template(v: &Value) -> Template {
    let text = v.to_string().replace('\'', "''");
    Template::parse(&format!("${{{{ fromJSON('{text}') }}}}"))
        .unwrap_or_else(|_| Template::literal(&v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos() {
        assert_eq!(closest("need", &["needs", "mode", "prompt"]), Some("needs"));
        assert_eq!(
            closest("promt", &["needs", "mode", "prompt"]),
            Some("prompt")
        );
        assert_eq!(closest("zzzzzz", &["needs", "mode"]), None);
    }

    #[test]
    fn json_template_keeps_types() {
        let t = json_template(&serde_json::json!({"a": [1, "it's"]}));
        let v = t.eval(&Default::default()).unwrap();
        assert_eq!(v, serde_json::json!({"a": [1, "it's"]}));
    }
}
