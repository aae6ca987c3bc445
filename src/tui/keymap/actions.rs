//! The action catalogue: every action's config name, help group, one-line
//! description and default keys, in help order. One table, so the help
//! overlay, the config names and the defaults cannot drift apart.

use super::Action;

/// Help overlay sections, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    Navigation,
    Panes,
    Prompts,
    RunControl,
    Replay,
    Other,
}

impl Group {
    pub fn title(self) -> &'static str {
        match self {
            Group::Navigation => "Navigation",
            Group::Panes => "Panes",
            Group::Prompts => "Prompts",
            Group::RunControl => "Run control",
            Group::Replay => "Replay",
            Group::Other => "Other",
        }
    }
}

/// One row of the catalogue.
pub struct Entry {
    pub action: Action,
    pub name: &'static str,
    pub group: Group,
    pub description: &'static str,
    pub keys: &'static [&'static str],
}

const fn e(
    action: Action,
    name: &'static str,
    group: Group,
    description: &'static str,
    keys: &'static [&'static str],
) -> Entry {
    Entry {
        action,
        name,
        group,
        description,
        keys,
    }
}

use Group::*;

/// Every action, in help order.
pub const CATALOGUE: [Entry; 63] = [
    e(
        Action::ScrollUp,
        "scroll_up",
        Navigation,
        "Scroll up one line",
        &["up", "k"],
    ),
    e(
        Action::ScrollDown,
        "scroll_down",
        Navigation,
        "Scroll down one line",
        &["down", "j"],
    ),
    e(
        Action::PageUp,
        "page_up",
        Navigation,
        "Scroll up one page",
        &["pgup", "ctrl-u"],
    ),
    e(
        Action::PageDown,
        "page_down",
        Navigation,
        "Scroll down one page",
        &["pgdn", "ctrl-d"],
    ),
    e(
        Action::Top,
        "top",
        Navigation,
        "Jump to the top of the scrollback",
        &["g", "home"],
    ),
    e(
        Action::Bottom,
        "bottom",
        Navigation,
        "Jump to the bottom and follow new output",
        &["G", "end"],
    ),
    e(
        Action::Search,
        "search",
        Navigation,
        "Search the focused pane",
        &["/"],
    ),
    e(
        Action::SearchNext,
        "search_next",
        Navigation,
        "Next search match",
        &["n"],
    ),
    e(
        Action::SearchPrev,
        "search_prev",
        Navigation,
        "Previous search match",
        &["N"],
    ),
    e(
        Action::ToggleToolDetails,
        "toggle_tool_details",
        Navigation,
        "Expand or collapse the tool call under the cursor",
        &["enter"],
    ),
    e(
        Action::FocusNext,
        "focus_next",
        Panes,
        "Focus the next pane",
        &["tab"],
    ),
    e(
        Action::FocusPrev,
        "focus_prev",
        Panes,
        "Focus the previous pane",
        &["shift-tab"],
    ),
    e(
        Action::FocusLeft,
        "focus_left",
        Panes,
        "Focus the pane to the left",
        &["alt-left", "alt-h"],
    ),
    e(
        Action::FocusRight,
        "focus_right",
        Panes,
        "Focus the pane to the right",
        &["alt-right", "alt-l"],
    ),
    e(
        Action::FocusUp,
        "focus_up",
        Panes,
        "Focus the pane above",
        &["alt-up", "alt-k"],
    ),
    e(
        Action::FocusDown,
        "focus_down",
        Panes,
        "Focus the pane below",
        &["alt-down", "alt-j"],
    ),
    e(
        Action::JumpPane(1),
        "jump_pane_1",
        Panes,
        "Jump to pane 1",
        &["1"],
    ),
    e(
        Action::JumpPane(2),
        "jump_pane_2",
        Panes,
        "Jump to pane 2",
        &["2"],
    ),
    e(
        Action::JumpPane(3),
        "jump_pane_3",
        Panes,
        "Jump to pane 3",
        &["3"],
    ),
    e(
        Action::JumpPane(4),
        "jump_pane_4",
        Panes,
        "Jump to pane 4",
        &["4"],
    ),
    e(
        Action::JumpPane(5),
        "jump_pane_5",
        Panes,
        "Jump to pane 5",
        &["5"],
    ),
    e(
        Action::JumpPane(6),
        "jump_pane_6",
        Panes,
        "Jump to pane 6",
        &["6"],
    ),
    e(
        Action::JumpPane(7),
        "jump_pane_7",
        Panes,
        "Jump to pane 7",
        &["7"],
    ),
    e(
        Action::JumpPane(8),
        "jump_pane_8",
        Panes,
        "Jump to pane 8",
        &["8"],
    ),
    e(
        Action::JumpPane(9),
        "jump_pane_9",
        Panes,
        "Jump to pane 9",
        &["9"],
    ),
    e(
        Action::NextPage,
        "next_page",
        Panes,
        "Show the next page of panes when they do not all fit (panes 10 and on), then the first again",
        &["0"],
    ),
    e(
        Action::ToggleZoom,
        "toggle_zoom",
        Panes,
        "Zoom the focused pane to full screen, or back",
        &["z"],
    ),
    e(
        Action::LayoutTabs,
        "layout_tabs",
        Panes,
        "Layout: one agent per tab",
        &["t"],
    ),
    e(
        Action::LayoutGrid,
        "layout_grid",
        Panes,
        "Layout: all agents in a grid",
        &["w"],
    ),
    e(
        Action::ToggleSidebar,
        "toggle_sidebar",
        Panes,
        "Show or hide the sidebar",
        &["s"],
    ),
    e(
        Action::Overview,
        "overview",
        Panes,
        "Show the run overview (step graph)",
        &["o"],
    ),
    e(
        Action::Timeline,
        "timeline",
        Panes,
        "Show the run timeline",
        &["l"],
    ),
    e(
        Action::NextPrompt,
        "next_prompt",
        Prompts,
        "Go to the next prompt waiting for you",
        &["!"],
    ),
    e(
        Action::Approve,
        "approve",
        Prompts,
        "Approve the selected request (in the runs browser: do what the marked suggestion says)",
        &["a"],
    ),
    e(
        Action::Deny,
        "deny",
        Prompts,
        "Deny the selected request (in the runs browser: dismiss the marked suggestion)",
        &["d"],
    ),
    e(
        Action::Answer,
        "answer",
        Prompts,
        "Answer the selected question",
        &["i"],
    ),
    e(
        Action::SendMessage,
        "send_message",
        Prompts,
        "Send a message to the focused agent",
        &["m"],
    ),
    e(
        Action::PauseRun,
        "pause_run",
        RunControl,
        "Pause or unpause the run",
        &["p"],
    ),
    e(
        Action::PauseAgent,
        "pause_agent",
        RunControl,
        "Pause or unpause the focused agent",
        &["P"],
    ),
    e(
        Action::CancelStep,
        "cancel_step",
        RunControl,
        "Cancel the selected step",
        &["x"],
    ),
    e(
        Action::RetryStep,
        "retry_step",
        RunControl,
        "Retry the selected step",
        &["r"],
    ),
    e(
        Action::Fork,
        "fork",
        RunControl,
        "Fork the run from the selected step",
        &["f"],
    ),
    e(
        Action::EmergencyStop,
        "emergency_stop",
        RunControl,
        "Emergency stop: stop every running step",
        &["ctrl-x"],
    ),
    e(
        Action::InspectContext,
        "inspect_context",
        RunControl,
        "Inspect the focused agent's request: its parts and tokens",
        &["I"],
    ),
    e(
        Action::StopCallbacks,
        "stop_callbacks",
        RunControl,
        "Stop callbacks: no new follow-up or system question",
        &["C"],
    ),
    e(
        Action::WorktreeDiff,
        "worktree_diff",
        RunControl,
        "Show the selected step's worktree diff",
        &["D"],
    ),
    e(
        Action::WorktreeMerge,
        "worktree_merge",
        RunControl,
        "Merge the selected step's worktree branch",
        &["alt-m"],
    ),
    e(
        Action::WorktreeDiscard,
        "worktree_discard",
        RunControl,
        "Discard the selected step's worktree",
        &["X"],
    ),
    e(
        Action::ReplayPlayPause,
        "replay_play_pause",
        Replay,
        "Play or pause the replay",
        &["space"],
    ),
    e(
        Action::ReplayStepForward,
        "replay_step_forward",
        Replay,
        "Replay: one event forward",
        &["."],
    ),
    e(
        Action::ReplayStepBack,
        "replay_step_back",
        Replay,
        "Replay: one event back",
        &[","],
    ),
    e(
        Action::ReplayFaster,
        "replay_faster",
        Replay,
        "Replay faster",
        &["+", "="],
    ),
    e(
        Action::ReplaySlower,
        "replay_slower",
        Replay,
        "Replay slower",
        &["-"],
    ),
    e(Action::Help, "help", Other, "Show this help", &["?", "f1"]),
    e(
        Action::Palette,
        "palette",
        Other,
        "Open the command palette",
        &[":"],
    ),
    e(
        Action::CopyPane,
        "copy_pane",
        Other,
        "Copy the focused pane's whole scrollback as it is shown (open tool calls with their details)",
        &["y"],
    ),
    e(
        Action::DeleteRun,
        "delete_run",
        Other,
        "In the runs browser: delete the selected run, after a confirmation",
        &["delete"],
    ),
    e(
        Action::NewRun,
        "new_run",
        Other,
        "In the runs browser: start a run of a workflow file (with name=value inputs) or a swarm on an objective",
        &["c"],
    ),
    e(
        Action::CopyVisible,
        "copy_visible",
        Other,
        "Copy the lines of the focused pane now on screen: scroll (or zoom) to a range, then copy it",
        &["Y"],
    ),
    e(
        Action::Select,
        "select",
        Other,
        "Select lines of the focused pane: move with j/k, PgUp/PgDn, g/G; v begins again at the cursor; y or Enter copies; Esc leaves",
        &["v"],
    ),
    e(
        Action::Memory,
        "memory",
        Other,
        "Show the memory bank (what agents stored)",
        &["M"],
    ),
    e(
        Action::Back,
        "back",
        Other,
        "Close the overlay, leave search, go back",
        &["esc"],
    ),
    e(
        Action::Quit,
        "quit",
        Other,
        "Quit the workbench",
        &["q", "ctrl-c"],
    ),
];

/// The catalogue row of `action` (`None` only for `JumpPane` outside 1–9).
pub fn entry(action: Action) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|e| e.action == action)
}
