//! The style slots the workbench draws with. A theme file may define any of
//! them; a slot it does not know is a warning (a newer theme still loads).

/// The built-in agent modes, each with an `agent.<mode>` slot: the ids of
/// the mode files lev ships (`workflows/modes/`), so a new built-in mode
/// needs a style in the themes and nothing in code.
pub fn builtin_modes() -> Vec<String> {
    crate::spec::ModeRegistry::builtin()
        .map(|r| r.modes.keys().cloned().collect())
        .unwrap_or_default()
}

/// The statuses a theme styles and gives a glyph, in `symbols.status` order.
/// Other engine statuses borrow one: blocked → pending, retrying → running,
/// cancelled → skipped.
pub const STATUSES: [&str; 6] = [
    "pending",
    "running",
    "waiting",
    "succeeded",
    "failed",
    "skipped",
];

/// Slots every built-in theme defines (besides `step.<status>` and
/// `agent.<mode>`).
const PLAIN: [&str; 20] = [
    "base",
    "panel",
    "border",
    "border.focused",
    "title",
    "statusbar",
    "selection",
    "whisper",
    "question",
    "diff.add",
    "diff.del",
    "code",
    "tab",
    "tab.active",
    "search.match",
    "badge",
    "dim",
    "error",
    "help.key",
    "agent",
];

/// Parents that may be styled on their own (children fall back to them).
const PARENTS: [&str; 4] = ["step", "diff", "search", "help"];

/// Engine statuses with no slot of their own that a theme may still style.
const EXTRA_STEP: [&str; 3] = ["step.blocked", "step.retrying", "step.cancelled"];

/// Every slot a complete theme should define.
pub fn required() -> Vec<String> {
    let mut out: Vec<String> = PLAIN.iter().map(|s| s.to_string()).collect();
    out.extend(STATUSES.iter().map(|s| format!("step.{s}")));
    out.extend(builtin_modes().iter().map(|m| format!("agent.{m}")));
    out
}

/// Whether `slot` is one lev knows. Any `agent.<id>` is known: projects
/// define their own modes.
pub fn is_known(slot: &str) -> bool {
    if PLAIN.contains(&slot) || PARENTS.contains(&slot) || EXTRA_STEP.contains(&slot) {
        return true;
    }
    if let Some(status) = slot.strip_prefix("step.") {
        return STATUSES.contains(&status);
    }
    if let Some(mode) = slot.strip_prefix("agent.") {
        return !mode.is_empty()
            && mode
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    }
    false
}
