//! Keymap as data: actions with descriptions (the help overlay is generated
//! from them), built-in defaults, and YAML patches from config.
//!
//! Defaults follow lazygit / helix / k9s / zellij habits. Every binding, in
//! one table so clashes are visible (a test also checks there are none):
//!
//! | Group       | Keys                       | Action (config name)   |
//! |-------------|----------------------------|------------------------|
//! | Navigation  | `up` `k` / `down` `j`      | scroll_up / scroll_down |
//! |             | `pgup` `ctrl-u` / `pgdn` `ctrl-d` | page_up / page_down |
//! |             | `g` `home` / `G` `end`     | top / bottom (follow)  |
//! |             | `/`  `n`  `N`              | search, search_next, search_prev |
//! |             | `enter`                    | toggle_tool_details    |
//! | Panes       | `tab` / `shift-tab`        | focus_next / focus_prev |
//! |             | `alt-left/right/up/down`, `alt-h/l/k/j` | focus_left/right/up/down |
//! |             | `1`–`9`                    | jump_pane_1 … jump_pane_9 |
//! |             | `z`                        | toggle_zoom            |
//! |             | `t` / `w`                  | layout_tabs / layout_grid (`g` is taken by top) |
//! |             | `s`  `o`  `l`              | toggle_sidebar, overview, timeline |
//! | Prompts     | `!`                        | next_prompt            |
//! |             | `a`  `d`  `i`  `m`         | approve, deny, answer, send_message |
//! | Run control | `p`  `x`  `r`  `f`         | pause_run, cancel_step, retry_step, fork |
//! |             | `ctrl-x`  `C`              | emergency_stop, stop_callbacks |
//! |             | `I`                        | inspect_context        |
//! |             | `D`  `alt-m`  `X`          | worktree_diff, worktree_merge, worktree_discard (`M` is memory) |
//! | Replay      | `space`  `.`  `,`          | replay_play_pause, replay_step_forward, replay_step_back |
//! |             | `+` `=` / `-`              | replay_faster / replay_slower |
//! | Other       | `?` `f1`  `:`  `y`         | help, palette, copy_pane |
//! |             | `esc` / `q` `ctrl-c`       | back / quit            |
//!
//! While a text box has focus (search, answer, message) keys go to the box,
//! not here; that is the view's business.
//!
//! A patch (YAML, `action_name: "key"` or `action_name: [keys]`, `[]` to
//! unbind) replaces an action's keys. Key syntax: `ctrl-`, `alt-`, `shift-`
//! prefixes, then one character (case matters) or a name (`esc`, `enter`,
//! `tab`, `space`, `backspace`, `delete`, `insert`, `home`, `end`, `pgup`,
//! `pgdn`, arrows, `f1`–`f24`). A key bound to two actions is an error.

mod actions;
mod key;
mod patch;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crossterm::event::{KeyEvent, KeyEventKind};

pub use actions::Group;
pub use key::Key;

/// Everything a key can ask the workbench to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Help,
    Palette,
    Quit,
    /// Close the overlay / leave search / go back.
    Back,
    FocusNext,
    FocusPrev,
    FocusLeft,
    FocusRight,
    FocusUp,
    FocusDown,
    /// `1`–`9`.
    JumpPane(u8),
    /// The next page of a grid of more panes than fit.
    NextPage,
    ToggleZoom,
    LayoutTabs,
    LayoutGrid,
    ToggleSidebar,
    Overview,
    Timeline,
    Search,
    SearchNext,
    SearchPrev,
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
    Top,
    /// Bottom, and follow new output again.
    Bottom,
    ToggleToolDetails,
    /// Focus the next prompt that waits for the user (sidebar).
    NextPrompt,
    Approve,
    Deny,
    /// Start typing an answer / message in the input box.
    Answer,
    SendMessage,
    PauseRun,
    /// Pause or unpause only the focused agent.
    PauseAgent,
    CancelStep,
    RetryStep,
    Fork,
    EmergencyStop,
    /// The focused agent's request, part by part (the context inspector).
    InspectContext,
    /// No new follow-up or system question in the run (`lev stop-callbacks`).
    StopCallbacks,
    /// Show the selected step's worktree diff.
    WorktreeDiff,
    /// Merge the selected step's worktree branch into its base.
    WorktreeMerge,
    /// Remove the selected step's worktree and branch.
    WorktreeDiscard,
    CopyPane,
    /// The runs browser's selected run, from the journal.
    DeleteRun,
    /// In the runs browser: start a run (a workflow file or an objective).
    NewRun,
    /// The lines of the focused pane on screen.
    CopyVisible,
    /// Select lines of the focused pane to copy.
    Select,
    /// Show the memory bank.
    Memory,
    ReplayPlayPause,
    ReplayStepForward,
    ReplayStepBack,
    ReplayFaster,
    ReplaySlower,
}

/// Key bindings, looked up per key press.
#[derive(Debug, Clone)]
pub struct Keymap {
    /// Keys per action, in catalogue (help) order.
    bindings: Vec<(Action, Vec<Key>)>,
    lookup: HashMap<Key, Action>,
}

impl Default for Keymap {
    fn default() -> Keymap {
        Keymap::defaults()
    }
}

impl Action {
    /// The snake_case name used in config (`toggle_zoom`, `jump_pane_3`).
    pub fn name(self) -> &'static str {
        actions::entry(self).map(|e| e.name).unwrap_or("jump_pane")
    }

    /// The action a config name means.
    pub fn from_name(name: &str) -> Option<Action> {
        actions::CATALOGUE
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.action)
    }

    /// One line for the help overlay.
    pub fn description(self) -> &'static str {
        actions::entry(self)
            .map(|e| e.description)
            .unwrap_or("Jump to a pane")
    }

    /// The help section this action is listed under.
    pub fn group(self) -> Group {
        actions::entry(self)
            .map(|e| e.group)
            .unwrap_or(Group::Panes)
    }

    /// Every action, in help order.
    pub fn all() -> impl Iterator<Item = Action> {
        actions::CATALOGUE.iter().map(|e| e.action)
    }

    /// Every config name, in help order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        actions::CATALOGUE.iter().map(|e| e.name)
    }
}

impl Keymap {
    /// The built-in bindings.
    pub fn defaults() -> Keymap {
        let bindings = actions::CATALOGUE
            .iter()
            .map(|e| {
                // The catalogue is checked by a test; a bad entry is skipped
                // rather than taking the workbench down.
                let keys = e.keys.iter().filter_map(|k| Key::parse(k).ok()).collect();
                (e.action, keys)
            })
            .collect();
        Keymap::from_bindings(bindings)
    }

    fn from_bindings(bindings: Vec<(Action, Vec<Key>)>) -> Keymap {
        let mut lookup = HashMap::new();
        for (action, keys) in &bindings {
            for k in keys {
                lookup.entry(*k).or_insert(*action);
            }
        }
        Keymap { bindings, lookup }
    }

    /// The defaults with a YAML patch applied (see the module docs).
    pub fn with_patch(
        yaml_text: &str,
        file: &str,
    ) -> Result<(Keymap, crate::spec::Diagnostics), crate::spec::Diagnostics> {
        Keymap::defaults().patched(yaml_text, file)
    }

    /// This keymap with a YAML patch applied, so user and project patches
    /// can be layered. Unknown actions, bad keys and a key bound to two
    /// actions are errors with line:col; warnings come back with the map.
    pub fn patched(
        &self,
        yaml_text: &str,
        file: &str,
    ) -> Result<(Keymap, crate::spec::Diagnostics), crate::spec::Diagnostics> {
        let bindings = patch::apply(&self.bindings, yaml_text, file)?;
        Ok((Keymap::from_bindings(bindings.0), bindings.1))
    }

    /// The action bound to `key`, if any. Only presses count: terminals
    /// with the kitty protocol also report releases and repeats, and a held
    /// `a` must not approve every waiting prompt in turn.
    pub fn action(&self, key: &KeyEvent) -> Option<Action> {
        if key.kind != KeyEventKind::Press {
            return None;
        }
        self.lookup.get(&Key::from_event(key)).copied()
    }

    /// The keys bound to `action`, in the order they were given.
    pub fn keys(&self, action: Action) -> &[Key] {
        self.bindings
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, k)| k.as_slice())
            .unwrap_or(&[])
    }

    /// The first key bound to `action`, as help writes it (hints show one
    /// key; help lists them all). `None` when it is unbound.
    pub fn first_key(&self, action: Action) -> Option<String> {
        self.keys(action).first().map(Key::to_string)
    }

    /// (keys, action, description) rows for the help overlay, in display
    /// order: grouped (navigation, panes, prompts, run control, replay,
    /// other). The nine pane jumps share one row while bound to `1`–`9`.
    pub fn help_rows(&self) -> Vec<(String, Action, String)> {
        let digits_default = (1..=9u8).all(|n| {
            let k = self.keys(Action::JumpPane(n));
            k.len() == 1 && k[0] == Key::char(char::from(b'0' + n))
        });
        let mut rows = Vec::with_capacity(self.bindings.len());
        for (action, keys) in &self.bindings {
            if let Action::JumpPane(n) = action
                && digits_default
            {
                if *n == 1 {
                    rows.push(("1–9".to_string(), *action, "Jump to pane 1–9".to_string()));
                }
                continue;
            }
            let text = if keys.is_empty() {
                "(unbound)".to_string()
            } else {
                keys.iter()
                    .map(Key::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            rows.push((text, *action, action.description().to_string()));
        }
        rows.sort_by_key(|(_, a, _)| a.group());
        rows
    }
}
