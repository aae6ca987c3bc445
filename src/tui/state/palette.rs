//! The command palette: every action, every theme (`theme: NAME`, switched
//! live) and, in the runs browser, every run, filtered fuzzily with
//! `nucleo-matcher` as the user types.

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher};

use crate::journal::RunMeta;
use crate::protocol::RunId;
use crate::tui::keymap::{Action, Keymap};

/// What a palette row does.
#[derive(Debug, Clone, PartialEq)]
pub enum PaletteItem {
    Action(Action),
    Run(RunId),
    /// Switch to the theme of this name.
    Theme(String),
    /// `spawn CMD ARGS…`: a program in a new pane of the live run.
    Spawn(Vec<String>),
}

/// The row `spawn CMD ARGS…` typed into the palette makes (words split on
/// blanks; quotes group them).
pub fn spawn_entry(query: &str) -> Option<PaletteEntry> {
    let rest = query.trim_start().strip_prefix("spawn ")?;
    let words = split_words(rest);
    (!words.is_empty()).then(|| PaletteEntry {
        label: format!("spawn {} in a new pane", words.join(" ")),
        keys: String::new(),
        item: PaletteItem::Spawn(words),
    })
}

/// Blank-separated words; '…' and "…" keep blanks inside a word.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// A palette row: its label (what is matched) and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct PaletteEntry {
    pub label: String,
    pub keys: String,
    pub item: PaletteItem,
}

/// Actions the palette offers (replay and pane-number jumps are keys only).
const ACTIONS: &[Action] = &[
    Action::Help,
    Action::Quit,
    Action::NextPage,
    Action::ToggleZoom,
    Action::LayoutTabs,
    Action::LayoutGrid,
    Action::ToggleSidebar,
    Action::Overview,
    Action::Timeline,
    Action::Search,
    Action::NextPrompt,
    Action::Approve,
    Action::Deny,
    Action::Answer,
    Action::SendMessage,
    Action::PauseRun,
    Action::PauseAgent,
    Action::CancelStep,
    Action::RetryStep,
    Action::Fork,
    Action::EmergencyStop,
    Action::InspectContext,
    Action::StopCallbacks,
    Action::WorktreeDiff,
    Action::WorktreeMerge,
    Action::WorktreeDiscard,
    Action::CopyPane,
    Action::CopyVisible,
    Action::Select,
    Action::Memory,
    Action::ToggleToolDetails,
    Action::Top,
    Action::Bottom,
    Action::ReplayPlayPause,
    Action::ReplayStepForward,
    Action::ReplayStepBack,
    Action::ReplayFaster,
    Action::ReplaySlower,
];

/// A built-in description of an action (the keymap's description wins).
pub fn action_label(a: Action) -> &'static str {
    match a {
        Action::Help => "show help",
        Action::Palette => "command palette",
        Action::Quit => "quit",
        Action::Back => "back / close",
        Action::FocusNext => "focus next pane",
        Action::FocusPrev => "focus previous pane",
        Action::FocusLeft => "focus left",
        Action::FocusRight => "focus right",
        Action::FocusUp => "focus up",
        Action::FocusDown => "focus down",
        Action::JumpPane(_) => "jump to pane",
        Action::NextPage => "next page of panes",
        Action::ToggleZoom => "zoom pane",
        Action::LayoutTabs => "tabs layout",
        Action::LayoutGrid => "grid layout",
        Action::ToggleSidebar => "toggle sidebar",
        Action::Overview => "overview",
        Action::Timeline => "timeline",
        Action::Search => "search pane",
        Action::SearchNext => "next match",
        Action::SearchPrev => "previous match",
        Action::ScrollUp => "scroll up",
        Action::ScrollDown => "scroll down",
        Action::PageUp => "page up",
        Action::PageDown => "page down",
        Action::Top => "scroll to top",
        Action::Bottom => "scroll to bottom (follow)",
        Action::ToggleToolDetails => "toggle tool details",
        Action::NextPrompt => "next prompt",
        Action::Approve => "approve",
        Action::Deny => "deny",
        Action::Answer => "answer",
        Action::SendMessage => "send message to agent",
        Action::PauseRun => "pause / unpause run",
        Action::PauseAgent => "pause / unpause focused agent",
        Action::CancelStep => "cancel the focused step (or the run)",
        Action::RetryStep => "retry step",
        Action::Fork => "fork run",
        Action::EmergencyStop => "emergency stop (stop every running step)",
        Action::InspectContext => "inspect the focused agent's context (parts, tokens)",
        Action::StopCallbacks => "stop callbacks (no new follow-up or system question)",
        Action::WorktreeDiff => "worktree diff",
        Action::WorktreeMerge => "merge worktree branch",
        Action::WorktreeDiscard => "discard worktree",
        Action::CopyPane => "copy pane",
        Action::DeleteRun => "delete the selected run",
        Action::NewRun => "start a run (workflow file or objective)",
        Action::CopyVisible => "copy the lines on screen",
        Action::Select => "select lines to copy",
        Action::Memory => "memory bank",
        Action::ReplayPlayPause => "replay: play/pause",
        Action::ReplayStepForward => "replay: step forward",
        Action::ReplayStepBack => "replay: step back",
        Action::ReplayFaster => "replay: faster",
        Action::ReplaySlower => "replay: slower",
    }
}

/// All palette rows: actions (with their keys), themes (the one in use
/// marked), then runs when given.
pub fn entries(
    keymap: &Keymap,
    themes: &[String],
    current: &str,
    runs: Option<&[RunMeta]>,
) -> Vec<PaletteEntry> {
    let rows = keymap.help_rows();
    // The runs browser starts runs too.
    let browser = runs.is_some().then_some(&Action::NewRun);
    let mut out: Vec<PaletteEntry> = browser
        .into_iter()
        .chain(ACTIONS)
        .map(|a| {
            let row = rows.iter().find(|(_, ra, _)| ra == a);
            PaletteEntry {
                label: row
                    .map(|(_, _, d)| d.clone())
                    .unwrap_or_else(|| action_label(*a).to_string()),
                keys: row.map(|(k, _, _)| k.clone()).unwrap_or_default(),
                item: PaletteItem::Action(*a),
            }
        })
        .collect();
    for t in themes {
        out.push(PaletteEntry {
            label: format!("theme: {t}"),
            keys: if t == current {
                "in use".to_string()
            } else {
                String::new()
            },
            item: PaletteItem::Theme(t.clone()),
        });
    }
    for r in runs.unwrap_or_default() {
        out.push(PaletteEntry {
            label: format!("open run {} ({}) {}", r.name, r.status.as_str(), r.id),
            keys: String::new(),
            item: PaletteItem::Run(r.id.clone()),
        });
    }
    out
}

/// The rows matching `query`, best first (all rows, in order, for an empty query).
pub fn filter(all: Vec<PaletteEntry>, query: &str) -> Vec<PaletteEntry> {
    let pattern = Pattern::parse(query, CaseMatching::Ignore, Normalization::Smart);
    let mut matcher = Matcher::new(Config::DEFAULT);
    let labels: Vec<(usize, String)> = all
        .iter()
        .enumerate()
        .map(|(i, e)| (i, e.label.clone()))
        .collect();
    let scored = pattern.match_list(labels.iter().map(|(i, l)| Labelled(*i, l)), &mut matcher);
    scored
        .into_iter()
        .filter_map(|(Labelled(i, _), _)| all.get(i).cloned())
        .collect()
}

/// A label that remembers its row.
struct Labelled<'a>(usize, &'a str);

impl AsRef<str> for Labelled<'_> {
    fn as_ref(&self) -> &str {
        self.1
    }
}
