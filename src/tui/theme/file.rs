//! One theme file: YAML text → a checked `ThemeFile` whose colour references
//! are still names (so `extends` can be merged before they are resolved).
//! Every problem becomes a diagnostic with file:line:col; one load reports
//! them all.

use ratatui::style::{Color, Modifier};
use ratatui::widgets::BorderType;

use crate::spec::diagnostics::{Diagnostic, Severity};
use crate::spec::load::cx::{Cx, closest, join};
use crate::spec::yaml::{self, Node, NodeValue};

use super::{color, slots};

/// A colour as written in a style: a palette reference or a literal.
#[derive(Debug, Clone, PartialEq)]
pub enum ColorRef {
    Palette(String),
    Literal(Color),
}

/// A style slot as written: colours unresolved, modifiers parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StyleDef {
    pub fg: Option<ColorRef>,
    pub bg: Option<ColorRef>,
    pub modifiers: Modifier,
}

/// A `$name` in a style, kept with its position so an unknown name can be
/// reported once the inherited palette is known.
#[derive(Debug, Clone)]
pub struct PendingRef {
    pub name: String,
    pub line: u32,
    pub col: u32,
    pub path: String,
}

/// `extends:` as written.
#[derive(Debug, Clone)]
pub struct Extends {
    pub target: String,
    pub line: u32,
    pub col: u32,
}

/// A parsed theme file.
#[derive(Debug, Clone, Default)]
pub struct ThemeFile {
    pub file: String,
    pub id: String,
    /// Where `id` was written (for the file-name mismatch warning).
    pub id_at: (u32, u32),
    pub name: Option<String>,
    pub description: Option<String>,
    pub extends: Option<Extends>,
    pub palette: Vec<(String, Color)>,
    pub styles: Vec<(String, StyleDef)>,
    pub refs: Vec<PendingRef>,
    pub border: Option<BorderType>,
    /// Glyphs by index into `slots::STATUSES`.
    pub status: Vec<(usize, String)>,
    pub spinner: Option<Vec<String>>,
    pub respect_no_color: Option<bool>,
    /// Palette name → ANSI colour, with the position of the entry.
    pub ansi16: Vec<(String, Color, u32, u32)>,
}

const TOP: [&str; 11] = [
    "version",
    "kind",
    "id",
    "name",
    "description",
    "extends",
    "palette",
    "styles",
    "symbols",
    "fallback",
    "$schema",
];

const MODIFIERS: [(&str, Modifier); 6] = [
    ("bold", Modifier::BOLD),
    ("italic", Modifier::ITALIC),
    ("dim", Modifier::DIM),
    ("underlined", Modifier::UNDERLINED),
    ("reversed", Modifier::REVERSED),
    ("crossed_out", Modifier::CROSSED_OUT),
];

const BORDERS: [(&str, BorderType); 4] = [
    ("plain", BorderType::Plain),
    ("rounded", BorderType::Rounded),
    ("double", BorderType::Double),
    ("thick", BorderType::Thick),
];

/// Parses `text` (the contents of `file`). Errors and warnings both land in
/// the returned diagnostics; the file is usable only without errors.
pub fn parse(file: &str, text: &str) -> (ThemeFile, Vec<Diagnostic>) {
    let mut out = ThemeFile {
        file: file.to_string(),
        ..ThemeFile::default()
    };
    let root = match yaml::parse_str(file, text) {
        Ok(n) => n,
        Err(d) => return (out, vec![*d]),
    };
    let mut cx = Cx::new(file.to_string(), text);
    if let Some(f) = cx.map(&root, "", &TOP) {
        envelope(&mut cx, &root, &f, &mut out);
        if let Some(n) = f.get("palette") {
            palette(&mut cx, n, &mut out);
        }
        if let Some(n) = f.get("styles") {
            styles(&mut cx, n, &mut out);
        }
        if let Some(n) = f.get("symbols") {
            symbols(&mut cx, n, &mut out);
        }
        if let Some(n) = f.get("fallback") {
            fallback(&mut cx, n, &mut out);
        }
    }
    let mut diags = cx.diags;
    diags.sort_by_key(|d| (d.line, d.col));
    (out, diags)
}

fn envelope(
    cx: &mut Cx<'_>,
    root: &Node,
    f: &crate::spec::load::cx::Fields<'_>,
    out: &mut ThemeFile,
) {
    match f.get("version") {
        Some(n) => {
            // Only version 1 exists; a later one needs a newer lev.
            cx.int(n, "version", 1, 1);
        }
        None => {
            let d = cx.at(root, "version", "missing `version`");
            d.hint = Some("theme files start with `version: 1`".to_string());
        }
    }
    match f.get("kind") {
        Some(n) => {
            let _ = cx.choice(n, "kind", &["theme"]);
        }
        None => {
            let d = cx.at(root, "kind", "missing `kind`");
            d.hint = Some("add `kind: theme`".to_string());
        }
    }
    match f.get("id") {
        Some(n) => {
            if let Some(id) = cx.text(n, "id") {
                if valid_id(&id) {
                    out.id = id;
                    out.id_at = (n.line, n.col);
                } else {
                    let d = cx.at(n, "id", format!("`{id}` is not a valid theme id"));
                    d.hint = Some(
                        "use letters, digits, `-` and `_` (it names the file: `<id>.yaml`)"
                            .to_string(),
                    );
                }
            }
        }
        None => {
            let d = cx.at(root, "id", "missing `id`");
            d.hint =
                Some("add `id: <name>`; it is how other themes `extends:` this one".to_string());
        }
    }
    if let Some(n) = f.get("name") {
        out.name = cx.text(n, "name");
    }
    if let Some(n) = f.get("description") {
        out.description = cx.text(n, "description");
    }
    if let Some(n) = f.get("extends")
        && let Some(target) = cx.str(n, "extends")
    {
        out.extends = Some(Extends {
            target,
            line: n.line,
            col: n.col,
        });
    }
}

pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn palette(cx: &mut Cx<'_>, node: &Node, out: &mut ThemeFile) {
    let Some(entries) = node.as_map() else {
        cx.type_error(node, "palette", "a mapping of names to colours");
        return;
    };
    for (k, v) in entries {
        let path = join("palette", &k.name);
        if !valid_id(&k.name) {
            let d = cx.error(
                k.line,
                k.col,
                &path,
                format!("`{}` is not a valid palette name", k.name),
            );
            d.hint = Some("use letters, digits, `-` and `_`".to_string());
            continue;
        }
        if let Some(c) = literal(cx, v, &path) {
            out.palette.push((k.name.clone(), c));
        }
    }
}

/// A literal colour (no `$refs`: the palette is where colours are named).
fn literal(cx: &mut Cx<'_>, node: &Node, path: &str) -> Option<Color> {
    let text = cx.text(node, path)?;
    match color::parse(&text) {
        Ok(c) => Some(c),
        Err(why) => {
            let d = cx.at(node, path, format!("bad colour: {why}"));
            d.expected = Some("`#rrggbb`, `#rgb` or an ANSI colour name".to_string());
            d.found = Some(format!("`{text}`"));
            d.hint = closest(&text, &color::ansi_names()).map(|c| format!("did you mean `{c}`?"));
            None
        }
    }
}

fn styles(cx: &mut Cx<'_>, node: &Node, out: &mut ThemeFile) {
    let Some(entries) = node.as_map() else {
        cx.type_error(node, "styles", "a mapping of slots to styles");
        return;
    };
    for (k, v) in entries {
        let path = join("styles", &k.name);
        if !slots::is_known(&k.name) {
            let d = cx.warning(
                k.line,
                k.col,
                &path,
                format!("unknown style slot `{}` (ignored by this lev)", k.name),
            );
            let known = slots::required();
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            d.hint = closest(&k.name, &known).map(|c| format!("did you mean `{c}`?"));
        }
        if let Some(def) = style(cx, v, &path, &mut out.refs) {
            out.styles.push((k.name.clone(), def));
        }
    }
}

fn style(cx: &mut Cx<'_>, node: &Node, path: &str, refs: &mut Vec<PendingRef>) -> Option<StyleDef> {
    let f = cx.map(node, path, &["fg", "bg", "modifiers"])?;
    let mut def = StyleDef::default();
    if let Some(n) = f.get("fg") {
        def.fg = color_ref(cx, n, &join(path, "fg"), refs);
    }
    if let Some(n) = f.get("bg") {
        def.bg = color_ref(cx, n, &join(path, "bg"), refs);
    }
    if let Some(n) = f.get("modifiers") {
        let mpath = join(path, "modifiers");
        let items: Vec<&Node> = match &n.value {
            NodeValue::Seq(items) => items.iter().collect(),
            NodeValue::Str(_) => vec![n],
            _ => {
                cx.type_error(n, &mpath, "a list of modifiers");
                Vec::new()
            }
        };
        let names: Vec<&str> = MODIFIERS.iter().map(|(n, _)| *n).collect();
        for item in items {
            if let Some(name) = cx.choice(item, &mpath, &names)
                && let Some((_, m)) = MODIFIERS.iter().find(|(n, _)| *n == name)
            {
                def.modifiers |= *m;
            }
        }
    }
    Some(def)
}

fn color_ref(
    cx: &mut Cx<'_>,
    node: &Node,
    path: &str,
    refs: &mut Vec<PendingRef>,
) -> Option<ColorRef> {
    let text = cx.text(node, path)?;
    if let Some(name) = text.strip_prefix('$') {
        if !valid_id(name) {
            let d = cx.at(node, path, format!("`{text}` is not a palette reference"));
            d.hint = Some("write `$name` where `name` is a key of `palette`".to_string());
            return None;
        }
        refs.push(PendingRef {
            name: name.to_string(),
            line: node.line,
            col: node.col,
            path: path.to_string(),
        });
        return Some(ColorRef::Palette(name.to_string()));
    }
    literal(cx, node, path).map(ColorRef::Literal)
}

fn symbols(cx: &mut Cx<'_>, node: &Node, out: &mut ThemeFile) {
    let Some(f) = cx.map(node, "symbols", &["border", "status", "spinner"]) else {
        return;
    };
    if let Some(n) = f.get("border") {
        let names: Vec<&str> = BORDERS.iter().map(|(n, _)| *n).collect();
        if let Some(name) = cx.choice(n, "symbols.border", &names) {
            out.border = BORDERS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b);
        }
    }
    if let Some(n) = f.get("status")
        && let Some(sf) = cx.map(n, "symbols.status", &slots::STATUSES)
    {
        for (k, v) in sf.entries() {
            let path = join("symbols.status", &k.name);
            let Some(i) = slots::STATUSES.iter().position(|s| *s == k.name) else {
                continue;
            };
            if let Some(g) = glyph(cx, v, &path) {
                out.status.push((i, g));
            }
        }
    }
    if let Some(n) = f.get("spinner") {
        match &n.value {
            NodeValue::Seq(items) if !items.is_empty() => {
                let mut frames = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if let Some(g) = glyph(cx, item, &format!("symbols.spinner[{i}]")) {
                        frames.push(g);
                    }
                }
                if frames.len() == items.len() {
                    out.spinner = Some(frames);
                }
            }
            _ => cx.type_error(n, "symbols.spinner", "a non-empty list of frames"),
        }
    }
}

/// A short glyph: drawn in one cell-ish place, so newlines and long text
/// are refused.
fn glyph(cx: &mut Cx<'_>, node: &Node, path: &str) -> Option<String> {
    let g = cx.text(node, path)?;
    if g.is_empty() || g.chars().count() > 4 || g.chars().any(char::is_control) {
        let d = cx.at(node, path, format!("`{g}` is not a usable glyph"));
        d.expected = Some("one to four printable characters".to_string());
        return None;
    }
    Some(g)
}

fn fallback(cx: &mut Cx<'_>, node: &Node, out: &mut ThemeFile) {
    let Some(f) = cx.map(node, "fallback", &["respect_no_color", "ansi16"]) else {
        return;
    };
    if let Some(n) = f.get("respect_no_color") {
        out.respect_no_color = cx.bool(n, "fallback.respect_no_color");
    }
    if let Some(n) = f.get("ansi16") {
        let Some(entries) = n.as_map() else {
            cx.type_error(
                n,
                "fallback.ansi16",
                "a mapping of palette names to ANSI colours",
            );
            return;
        };
        for (k, v) in entries {
            let path = join("fallback.ansi16", &k.name);
            let Some(text) = cx.text(v, &path) else {
                continue;
            };
            match color::parse_named(&text) {
                Some(c) => out.ansi16.push((k.name.clone(), c, k.line, k.col)),
                None => {
                    let d = cx.at(v, &path, format!("`{text}` is not an ANSI colour name"));
                    d.expected = Some(crate::spec::load::cx::some_names(&color::ansi_names()));
                    d.hint = closest(&text, &color::ansi_names())
                        .map(|c| format!("did you mean `{c}`?"));
                }
            }
        }
    }
}

/// An error diagnostic outside any parsed node (missing files, cycles).
pub fn error(
    file: &str,
    line: u32,
    col: u32,
    path: &str,
    message: String,
    hint: Option<String>,
) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        message,
        file: file.to_string(),
        line,
        col,
        path: path.to_string(),
        expected: None,
        found: None,
        hint,
    }
}
