//! Themes: a palette plus named style slots with dotted fallback
//! (`border.focused` → `border` → `base`), symbols, a 16-colour fallback and
//! `NO_COLOR`. Only this module builds `Style`s from theme data.
//!
//! The format is docs/workflows.md ("Themes"). A theme may `extends:` a built-in
//! (`builtin:dark`), another theme id, or a file; the child's palette, slots,
//! symbols and fallback entries win. Palette references (`$accent`) are
//! resolved after the merge, so a child that only changes `accent` recolours
//! every slot its parent drew with it.
//!
//! Every slot's style is precomputed at build time, layered `base` → parent
//! → slot, so `style()` is a few hash lookups and no allocation.

mod builtin;
mod catalog;
mod color;
mod file;
mod load;
mod slots;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::OnceLock;

use ratatui::style::{Color, Style};
use ratatui::widgets::BorderType;

use crate::protocol::StepStatus;
use crate::spec::diagnostics::{Diagnostic, Diagnostics, Severity};

pub use catalog::Catalog;
pub use file::{ColorRef, StyleDef};
pub use slots::{STATUSES, builtin_modes};

const DEFAULT_SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
/// `step.<status>` for each of `STATUSES`, so status lookups never allocate.
const STEP_SLOTS: [&str; 6] = [
    "step.pending",
    "step.running",
    "step.waiting",
    "step.succeeded",
    "step.failed",
    "step.skipped",
];
const DEFAULT_STATUS: [&str; 6] = ["○", "◐", "⚑", "●", "✗", "–"];

/// A resolved theme.
#[derive(Debug, Clone)]
pub struct Theme {
    id: String,
    name: String,
    description: String,
    palette: BTreeMap<String, Color>,
    defs: BTreeMap<String, StyleDef>,
    border: BorderType,
    /// Glyphs in `STATUSES` order.
    status: [String; 6],
    spinner: Vec<String>,
    respect_no_color: bool,
    ansi16_map: BTreeMap<String, Color>,
    no_color: bool,
    use_ansi16: bool,
    /// Every defined slot, fully layered; rebuilt when a mode flag changes.
    resolved: HashMap<String, Style>,
}

impl Default for Theme {
    fn default() -> Theme {
        Theme::fallback()
    }
}

impl Theme {
    /// The built-in dark theme (never fails).
    pub fn fallback() -> Theme {
        static DARK: OnceLock<Theme> = OnceLock::new();
        DARK.get_or_init(|| Theme::builtin("dark").unwrap_or_else(Theme::bare))
            .clone()
    }

    /// A theme with no styles at all: what `fallback` would give if the
    /// embedded dark theme were broken (a test makes sure it is not).
    fn bare() -> Theme {
        let mut t = Theme {
            id: "bare".to_string(),
            name: "Bare".to_string(),
            description: String::new(),
            palette: BTreeMap::new(),
            defs: BTreeMap::new(),
            border: BorderType::Rounded,
            status: DEFAULT_STATUS.map(str::to_string),
            spinner: DEFAULT_SPINNER.iter().map(|s| s.to_string()).collect(),
            respect_no_color: true,
            ansi16_map: BTreeMap::new(),
            no_color: false,
            use_ansi16: false,
            resolved: HashMap::new(),
        };
        t.rebuild();
        t
    }

    /// A built-in theme by name (`dark`, `light`, `high-contrast`, `abyss`,
    /// with or without a `builtin:` prefix).
    pub fn builtin(name: &str) -> Option<Theme> {
        let name = name.strip_prefix("builtin:").unwrap_or(name);
        builtin::text(name)?;
        Theme::load(&format!("builtin:{name}"), &[])
            .ok()
            .map(|(t, _)| t)
    }

    /// Names of the built-in themes, the default first.
    pub fn builtin_names() -> &'static [&'static str] {
        &builtin::NAMES
    }

    /// Loads a theme: a built-in name, a theme id found as `<id>.yaml` in
    /// `dirs` (searched in order, before the built-ins, so a user file may
    /// replace `dark`), or a path to a file. Warnings (unknown slots, …)
    /// come back with the theme; any error fails the load, with every
    /// problem found.
    pub fn load(name_or_path: &str, dirs: &[PathBuf]) -> Result<(Theme, Diagnostics), Diagnostics> {
        let mut diags = Vec::new();
        let mut chain = Vec::new();
        let layers = load::layers(name_or_path, dirs, None, &mut chain, &mut diags);
        let theme = layers.and_then(|l| Theme::merge(l, &mut diags));
        match theme {
            Some(t) if !diags.iter().any(|d| d.severity == Severity::Error) => {
                Ok((t, Diagnostics(diags)))
            }
            _ => Err(Diagnostics(diags)),
        }
    }

    /// Merges layers (root first) and checks palette references against the
    /// merged palette.
    fn merge(layers: Vec<file::ThemeFile>, diags: &mut Vec<Diagnostic>) -> Option<Theme> {
        let mut t = Theme::bare();
        t.defs.clear();
        let mut refs = Vec::new();
        let mut ansi = Vec::new();
        for layer in layers {
            t.id = layer.id.clone();
            t.name = layer.name.clone().unwrap_or_else(|| layer.id.clone());
            t.description = layer.description.clone().unwrap_or_default();
            t.palette.extend(layer.palette);
            t.defs.extend(layer.styles);
            if let Some(b) = layer.border {
                t.border = b;
            }
            for (i, g) in layer.status {
                if let Some(slot) = t.status.get_mut(i) {
                    *slot = g;
                }
            }
            if let Some(s) = layer.spinner {
                t.spinner = s;
            }
            if let Some(r) = layer.respect_no_color {
                t.respect_no_color = r;
            }
            refs.extend(layer.refs.into_iter().map(|r| (layer.file.clone(), r)));
            ansi.extend(layer.ansi16.into_iter().map(|a| (layer.file.clone(), a)));
        }
        let mut ok = true;
        for (file, r) in refs {
            if t.palette.contains_key(&r.name) {
                continue;
            }
            ok = false;
            let names: Vec<&str> = t.palette.keys().map(String::as_str).collect();
            let hint = crate::spec::load::cx::closest(&r.name, &names)
                .map(|c| format!("did you mean `${c}`?"))
                .unwrap_or_else(|| {
                    format!(
                        "palette names: {}",
                        crate::spec::load::cx::some_names(&names)
                    )
                });
            diags.push(file::error(
                &file,
                r.line,
                r.col,
                &r.path,
                format!("unknown palette colour `${}`", r.name),
                Some(hint),
            ));
        }
        for (file, (name, c, line, col)) in ansi {
            if !t.palette.contains_key(&name) {
                diags.push(Diagnostic {
                    severity: Severity::Warning,
                    message: format!(
                        "`fallback.ansi16` maps `{name}`, which is not in the palette"
                    ),
                    file,
                    line,
                    col,
                    path: format!("fallback.ansi16.{name}"),
                    expected: None,
                    found: None,
                    hint: Some("the entry has no effect".to_string()),
                });
            }
            t.ansi16_map.insert(name, c);
        }
        diags.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
        if !ok {
            return None;
        }
        t.rebuild();
        Some(t)
    }

    /// This theme with colours dropped (modifiers kept) when `no_color` is
    /// set, as the `NO_COLOR` convention asks — unless the theme opted out
    /// with `fallback.respect_no_color: false`. The caller reads the
    /// environment (`NO_COLOR` set and non-empty).
    pub fn with_no_color(mut self, no_color: bool) -> Theme {
        self.no_color = no_color && self.respect_no_color;
        self.rebuild();
        self
    }

    /// This theme for a 16-colour terminal: palette colours become their
    /// `fallback.ansi16` names, other colours the nearest ANSI colour.
    pub fn ansi16(mut self) -> Theme {
        self.use_ansi16 = true;
        self.rebuild();
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn description(&self) -> &str {
        &self.description
    }
    /// Whether colours are being dropped (`NO_COLOR`).
    pub fn is_no_color(&self) -> bool {
        self.no_color
    }
    /// A palette colour as this theme would draw it (after `ansi16` /
    /// `NO_COLOR`); `None` for names not in the palette or under `NO_COLOR`.
    pub fn color(&self, name: &str) -> Option<Color> {
        self.resolve(&ColorRef::Palette(name.to_string()))
    }
    /// The slots this theme defines itself (or inherited), sorted.
    pub fn defined_slots(&self) -> impl Iterator<Item = &str> {
        self.defs.keys().map(String::as_str)
    }

    fn resolve(&self, c: &ColorRef) -> Option<Color> {
        if self.no_color {
            return None;
        }
        match c {
            ColorRef::Literal(c) if self.use_ansi16 => Some(color::nearest_ansi(*c)),
            ColorRef::Literal(c) => Some(*c),
            ColorRef::Palette(name) => {
                if self.use_ansi16 {
                    if let Some(a) = self.ansi16_map.get(name) {
                        return Some(*a);
                    }
                    return self.palette.get(name).map(|c| color::nearest_ansi(*c));
                }
                self.palette.get(name).copied()
            }
        }
    }

    fn own_style(&self, def: &StyleDef) -> Style {
        let mut s = Style::default().add_modifier(def.modifiers);
        if let Some(fg) = def.fg.as_ref().and_then(|c| self.resolve(c)) {
            s = s.fg(fg);
        }
        if let Some(bg) = def.bg.as_ref().and_then(|c| self.resolve(c)) {
            s = s.bg(bg);
        }
        s
    }

    /// Precomputes every defined slot layered over `base` and its parents.
    fn rebuild(&mut self) {
        let mut resolved = HashMap::with_capacity(self.defs.len() + 1);
        let base = self
            .defs
            .get("base")
            .map(|d| self.own_style(d))
            .unwrap_or_default();
        resolved.insert("base".to_string(), base);
        for slot in self.defs.keys() {
            let mut style = base;
            let mut end = 0;
            // Apply `agent`, then `agent.coder`: each prefix that is defined.
            loop {
                end = slot[end..].find('.').map(|i| end + i).unwrap_or(slot.len());
                if let Some(d) = self.defs.get(&slot[..end]) {
                    style = style.patch(self.own_style(d));
                }
                if end >= slot.len() {
                    break;
                }
                end += 1;
            }
            resolved.insert(slot.clone(), style);
        }
        self.resolved = resolved;
    }

    /// The style for a slot such as `step.running` or `agent.coder`, with
    /// dotted fallback; unknown slots get the base style.
    pub fn style(&self, slot: &str) -> Style {
        let mut key = slot;
        loop {
            if let Some(s) = self.resolved.get(key) {
                return *s;
            }
            match key.rfind('.') {
                Some(i) => key = &key[..i],
                None => break,
            }
        }
        self.resolved.get("base").copied().unwrap_or_default()
    }

    /// The style for a step status (`blocked` and `retrying` fall back to
    /// the `pending` and `running` styles unless the theme styles them).
    pub fn status_style(&self, status: StepStatus) -> Style {
        let own = status_slot(status);
        if self.defs.contains_key(own) {
            return self.style(own);
        }
        self.style(STEP_SLOTS[status_index(status)])
    }

    pub fn border_type(&self) -> BorderType {
        self.border
    }

    /// The glyph for a step status.
    pub fn status_symbol(&self, status: StepStatus) -> &str {
        &self.status[status_index(status)]
    }

    /// Spinner frame `tick`.
    pub fn spinner(&self, tick: u64) -> &str {
        if self.spinner.is_empty() {
            return " ";
        }
        let i = (tick % self.spinner.len() as u64) as usize;
        self.spinner.get(i).map(String::as_str).unwrap_or(" ")
    }
}

/// Index into `STATUSES` of the glyph and style a status uses.
fn status_index(status: StepStatus) -> usize {
    match status {
        StepStatus::Pending | StepStatus::Blocked => 0,
        StepStatus::Running | StepStatus::Retrying => 1,
        StepStatus::Waiting => 2,
        StepStatus::Succeeded => 3,
        StepStatus::Failed => 4,
        StepStatus::Skipped | StepStatus::Cancelled => 5,
    }
}

fn status_slot(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Pending => "step.pending",
        StepStatus::Blocked => "step.blocked",
        StepStatus::Running => "step.running",
        StepStatus::Retrying => "step.retrying",
        StepStatus::Waiting => "step.waiting",
        StepStatus::Succeeded => "step.succeeded",
        StepStatus::Failed => "step.failed",
        StepStatus::Skipped => "step.skipped",
        StepStatus::Cancelled => "step.cancelled",
    }
}
