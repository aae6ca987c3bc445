//! Writing YAML scalars by hand, safely: the plan editor and saved templates
//! are YAML a person reads, with comments, which a serializer would not
//! give us. A string is written plain only when it is a simple word, as a
//! `|` block when it is multi-line printable text, else double-quoted with
//! escapes; every choice parses back to the same string.

/// `text` as a scalar on one line (plain or double-quoted).
pub(crate) fn inline(text: &str) -> String {
    if is_plain_word(text) {
        text.to_string()
    } else {
        quoted(text)
    }
}

/// `text` as the value after `key:` at `indent` spaces: a `|` block for
/// multi-line text, else an inline scalar. Includes the leading space.
pub(crate) fn value(text: &str, indent: usize) -> String {
    if !text.contains('\n') || !block_safe(text) {
        return format!(" {}", inline(text));
    }
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let pad = " ".repeat(indent + 2);
    let mut out = format!(" |{chomp}\n");
    for line in body.split('\n') {
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
        out.push('\n');
    }
    // `|+` keeps the extra line breaks; they are empty lines of the block.
    for _ in 1..trailing {
        out.push('\n');
    }
    out.pop();
    out
}

/// A word YAML reads back as the same string: lowercase identifier-like,
/// and not one of the words YAML reads as a boolean or null.
fn is_plain_word(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !matches!(
            text,
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        )
}

/// Text a literal block keeps exactly: printable, no tabs or carriage
/// returns, and a first line that does not start with a space (a block's
/// indentation is taken from its first line).
fn block_safe(text: &str) -> bool {
    !text.starts_with([' ', '\n'])
        && text
            .chars()
            .all(|c| c == '\n' || (!c.is_control() && !special(c)))
        && !text.split('\n').any(|l| l.ends_with(' '))
}

/// Characters YAML treats as line breaks, BOMs or non-printable.
fn special(c: char) -> bool {
    matches!(
        c,
        '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
    )
}

/// A double-quoted YAML scalar; anything unusual is escaped.
pub(crate) fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || special(c) => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::yaml::parse_str;

    fn back(yaml_value: &str) -> serde_json::Value {
        let doc = format!("k:{yaml_value}\n");
        let node = parse_str("t.yaml", &doc).unwrap_or_else(|d| panic!("{d}\n---\n{doc}"));
        node.to_json()["k"].clone()
    }

    #[test]
    fn every_string_reads_back_the_same() {
        let cases = [
            "",
            "coder",
            "yes",
            "null",
            "123",
            "- item",
            "# not a comment",
            "key: value",
            "quote \" and backslash \\",
            "two\nlines",
            "trailing newline\n",
            "two trailing\n\n",
            "  leading spaces\nsecond",
            "tab\tinside\nline",
            "crlf\r\nline",
            "nel\u{85}line\nx",
            "bom \u{feff} and ls \u{2028}\nx",
            "control \u{1} \u{7f} \u{9f}",
            "trailing space \nnext",
            "${{ steps.a.outputs.text }}\nmore",
            "ünïcödé ✓ 😀\nline",
            "line\n\nafter empty",
            "'single' and ''",
            "*alias &anchor !tag",
        ];
        for text in cases {
            assert_eq!(back(&value(text, 2)), serde_json::json!(text), "{text:?}");
            assert_eq!(back(&format!(" {}", inline(text))), serde_json::json!(text));
        }
    }

    #[test]
    fn multi_line_text_is_a_readable_block() {
        assert_eq!(value("a\nb\n", 2), " |\n    a\n    b");
        assert_eq!(value("a\nb", 0), " |-\n  a\n  b");
        assert_eq!(value("design-api", 4), " design-api");
        assert_eq!(value("Fix: it", 4), " \"Fix: it\"");
    }
}
