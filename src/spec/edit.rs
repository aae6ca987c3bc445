//! Small, exact edits of a workflow file the user accepted (a suggestion
//! that says "raise its timeout"): the one scalar changes, every other
//! byte — comments, order, quoting — stays as the user wrote it. An edit
//! that cannot be made that surely is refused with where and why.

use std::time::Duration;

use super::load::duration::parse_duration;
use super::yaml::{self, Node, NodeValue};

/// A timeout raised: the new text, and the values before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    pub text: String,
    pub from: String,
    pub to: String,
}

/// Doubles the `timeout:` of top-level step `step` of workflow `id` in
/// `text` (`file` names it in errors). Refused when the file is another
/// workflow (a path that meant another file where the run started), the
/// step or its timeout is not there, or the timeout is not a plain scalar
/// this can rewrite.
pub fn double_timeout(file: &str, text: &str, id: &str, step: &str) -> Result<Raised, String> {
    let root = yaml::parse_str(file, text).map_err(|d| d.to_string())?;
    let found = field(&root, "id")
        .and_then(Node::as_str)
        .unwrap_or_default();
    if found != id {
        return Err(format!(
            "{file} here is workflow `{found}`, not `{id}`: open lev where that run started"
        ));
    }
    let steps = field(&root, "steps").ok_or_else(|| format!("{file}: no `steps:`"))?;
    let node = field(steps, step).ok_or_else(|| {
        format!("{file}: no step `{step}` under `steps:` (a step of a child workflow is edited in its own file)")
    })?;
    let timeout = field(node, "timeout").ok_or_else(|| {
        format!(
            "{file}:{}:{}: step `{step}` has no `timeout:` of its own; add one",
            node.line, node.col
        )
    })?;
    let at = |what: &str| format!("{file}:{}:{}: {what}", timeout.line, timeout.col);
    let written = match &timeout.value {
        NodeValue::Str(s) => s.clone(),
        NodeValue::Int(n) => n.to_string(),
        _ => return Err(at("the timeout is not a duration")),
    };
    let current = parse_duration(&written).map_err(|e| at(&format!("`{written}`: {e}")))?;
    let start = yaml::byte_offset(text, timeout.line, timeout.col)
        .ok_or_else(|| at("its place in the file is unknown"))?;
    // Only a plain scalar is rewritten: the bytes there must be the value,
    // followed by the end of the line, a comment, or the end of the file.
    let rest = &text[start..];
    let ends_plainly = rest.strip_prefix(written.as_str()).is_some_and(|after| {
        let after = after.trim_start_matches([' ', '\t']);
        after.is_empty() || after.starts_with(['\n', '\r', '#'])
    });
    if !ends_plainly {
        return Err(at(
            "the timeout is not written as a plain value on its own line; raise it by hand",
        ));
    }
    let doubled = current
        .checked_mul(2)
        .ok_or_else(|| at(&format!("`{written}` is too large to double")))?;
    let to = shown(doubled);
    let mut out = String::with_capacity(text.len() + to.len());
    out.push_str(&text[..start]);
    out.push_str(&to);
    out.push_str(&rest[written.len()..]);
    Ok(Raised {
        text: out,
        from: written,
        to,
    })
}

/// The value of `key` in mapping `node`.
fn field<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
    node.as_map()?
        .iter()
        .find(|(k, _)| k.name == key)
        .map(|(_, v)| v)
}

/// A duration as a user writes it: whole hours, minutes or seconds when it
/// is one, else milliseconds.
fn shown(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "1s".to_string(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WF: &str = "version: 1\nkind: workflow\nid: w\nname: W\nsteps:\n  build:\n    type: shell\n    run: make\n    timeout: 45s   # CI is slow\n  test:\n    type: shell\n    run: make test\n    timeout: \"5m\"\n  lint:\n    type: shell\n    run: lint\n";

    #[test]
    fn a_plain_timeout_is_doubled_and_nothing_else_changes() {
        let r = double_timeout("w.yaml", WF, "w", "build").unwrap();
        assert_eq!((r.from.as_str(), r.to.as_str()), ("45s", "90s"));
        assert_eq!(r.text, WF.replace("timeout: 45s", "timeout: 90s"));
        let again = double_timeout("w.yaml", &r.text, "w", "build").unwrap();
        assert_eq!(again.to, "3m");
    }

    #[test]
    fn what_cannot_be_edited_surely_is_refused_with_where() {
        let quoted = double_timeout("w.yaml", WF, "w", "test").unwrap_err();
        assert_eq!(
            quoted,
            "w.yaml:13:14: the timeout is not written as a plain value on its own line; raise it by hand"
        );
        let none = double_timeout("w.yaml", WF, "w", "lint").unwrap_err();
        assert!(
            none.starts_with("w.yaml:15:5: step `lint` has no `timeout:`"),
            "{none}"
        );
        let missing = double_timeout("w.yaml", WF, "w", "deploy").unwrap_err();
        assert!(missing.contains("no step `deploy`"), "{missing}");
        // Another workflow at the same path is never edited.
        let other = double_timeout("w.yaml", WF, "nightly", "build").unwrap_err();
        assert_eq!(
            other,
            "w.yaml here is workflow `w`, not `nightly`: open lev where that run started"
        );
        let flow = "id: f\nsteps: { a: { type: shell, run: x, timeout: 10s } }\n";
        let e = double_timeout("f.yaml", flow, "f", "a").unwrap_err();
        assert!(e.contains("raise it by hand"), "{e}");
        assert!(double_timeout("b.yaml", "steps: [\n", "b", "a").is_err());
        // The largest numbers a file can hold double without a panic, or
        // are refused.
        for n in [i64::MAX.to_string(), u64::MAX.to_string(), "1e400".into()] {
            let huge = format!("id: h\nsteps:\n  a:\n    timeout: {n}\n");
            let _ = double_timeout("h.yaml", &huge, "h", "a");
        }
    }

    proptest::proptest! {
        /// Whatever the file holds, the edit never panics, and when it is
        /// made only the timeout's value changes: the text before it is
        /// the same and the text after it is the same.
        #[test]
        fn an_edit_changes_only_the_value_or_nothing(
            before in "[ -~\n]{0,80}",
            value in "[0-9a-z\"' ]{0,8}",
            after in "[ -~\n]{0,80}",
        ) {
            let text = format!("id: p\nsteps:\n  s:\n    timeout: {value}{after}\n{before}");
            if let Ok(r) = double_timeout("p.yaml", &text, "p", "s") {
                let start = text.find(&format!("timeout: {}", r.from)).unwrap() + 9;
                proptest::prop_assert_eq!(&r.text[..start], &text[..start]);
                proptest::prop_assert!(r.text[start..].starts_with(&r.to));
                proptest::prop_assert_eq!(&r.text[start + r.to.len()..], &text[start + r.from.len()..]);
            }
        }
    }

    #[test]
    fn durations_are_shown_as_users_write_them() {
        assert_eq!(shown(Duration::from_millis(1500)), "1500ms");
        assert_eq!(shown(Duration::from_secs(120)), "2m");
        assert_eq!(shown(Duration::from_secs(7200)), "2h");
        assert_eq!(shown(Duration::from_secs(90)), "90s");
    }
}
