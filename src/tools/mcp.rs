//! MCP tools as agents see them: each server's tool is offered as
//! `<server>__<tool>`, and a mode's lists and `ask_before` name them as
//! `mcp:<server>/<tool>` (with `*` for any part), `mcp:<server>` (all of
//! its tools) or by the offered name.

/// Longest tool name providers take (OpenAI: 64).
pub const MAX_NAME: usize = 64;

/// The name a model calls `tool` of `server` by: `<server>__<tool>`, with
/// characters providers refuse in tool names made `_`. `None` when it is
/// longer than providers take.
pub fn offered_name(server: &str, tool: &str) -> Option<String> {
    let clean: String = tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = format!("{server}__{clean}");
    (name.len() <= MAX_NAME && !clean.is_empty()).then_some(name)
}

/// True when `pattern` (with `*` standing for any text) matches `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// True when a list entry names this MCP tool: `*`, `mcp:*`,
/// `mcp:<server>`, `mcp:<server>/<tool glob>` or the offered name.
fn entry_names(entry: &str, server: &str, tool: &str, offered: &str) -> bool {
    let entry = entry.trim();
    if entry == "*" || entry == offered {
        return true;
    }
    let Some(target) = entry.strip_prefix("mcp:") else {
        return false;
    };
    match target.split_once('/') {
        Some((s, t)) => glob(s, server) && glob(t, tool),
        None => glob(target, server),
    }
}

/// Whether a mode with these lists is offered `tool` of `server`. An
/// empty allow list offers every tool; deny wins.
pub fn is_offered(server: &str, tool: &str, allow: &[String], deny: &[String]) -> bool {
    let Some(offered) = offered_name(server, tool) else {
        return false;
    };
    if deny.iter().any(|d| entry_names(d, server, tool, &offered)) {
        return false;
    }
    allow.is_empty() || allow.iter().any(|a| entry_names(a, server, tool, &offered))
}

/// Whether a mode with these lists may be offered any tool of `server`
/// (before its tools are known: a server no agent can use is not started).
pub fn may_offer_server(server: &str, allow: &[String], deny: &[String]) -> bool {
    let whole = |e: &str| {
        let e = e.trim();
        e == "*"
            || e.strip_prefix("mcp:")
                .is_some_and(|t| match t.split_once('/') {
                    Some((s, tool)) => glob(s, server) && tool == "*",
                    None => glob(t, server),
                })
    };
    if deny.iter().any(|d| whole(d)) {
        return false;
    }
    let prefix = format!("{server}__");
    allow.is_empty()
        || allow.iter().any(|a| {
            let a = a.trim();
            whole(a)
                || a.starts_with(&prefix)
                || a.strip_prefix("mcp:")
                    .and_then(|t| t.split_once('/'))
                    .is_some_and(|(s, _)| glob(s, server))
        })
}

/// The `ask_before` pattern that makes a call of `tool` of `server` need
/// the user's approval, if any (`mcp:*` asks before every MCP tool).
pub fn asks_before<'p>(patterns: &'p [String], server: &str, tool: &str) -> Option<&'p str> {
    let offered = offered_name(server, tool)?;
    patterns
        .iter()
        .find(|p| p.trim() != "*" && entry_names(p, server, tool, &offered))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn offered_names_are_what_providers_take() {
        assert_eq!(
            offered_name("everything", "get-sum").as_deref(),
            Some("everything__get-sum")
        );
        assert_eq!(
            offered_name("fs", "read.file/v2").as_deref(),
            Some("fs__read_file_v2")
        );
        assert_eq!(offered_name("s", &"x".repeat(70)), None);
        assert_eq!(offered_name("s", ""), None);
    }

    #[test]
    fn lists_name_tools_by_pattern_or_offered_name() {
        let offered = |allow: &[&str], deny: &[&str], tool: &str| {
            is_offered("everything", tool, &list(allow), &list(deny))
        };
        assert!(offered(&[], &[], "echo"));
        assert!(offered(&["*"], &[], "echo"));
        assert!(offered(&["mcp:*"], &[], "echo"));
        assert!(offered(&["mcp:everything"], &[], "echo"));
        assert!(offered(&["mcp:everything/*"], &[], "echo"));
        assert!(offered(&["mcp:everything/ec*"], &[], "echo"));
        assert!(offered(&["everything__echo"], &[], "echo"));
        assert!(!offered(&["read"], &[], "echo"));
        assert!(!offered(&["mcp:other/*"], &[], "echo"));
        assert!(!offered(&["mcp:everything/get-*"], &[], "echo"));
        assert!(!offered(&[], &["mcp:everything/echo"], "echo"));
        assert!(!offered(&["mcp:*"], &["everything__echo"], "echo"));
        assert!(offered(&["mcp:*"], &["everything__echo"], "get-sum"));
    }

    #[test]
    fn a_server_is_started_only_for_modes_that_may_use_it() {
        let may = |allow: &[&str], deny: &[&str]| {
            may_offer_server("everything", &list(allow), &list(deny))
        };
        assert!(may(&[], &[]));
        assert!(may(&["mcp:everything/echo"], &[]));
        assert!(may(&["everything__echo"], &[]));
        assert!(may(&["mcp:*"], &["mcp:everything/echo"]));
        assert!(!may(&["read", "write"], &[]));
        assert!(!may(&[], &["mcp:*"]));
        assert!(!may(&[], &["mcp:everything"]));
        assert!(!may(&["mcp:*"], &["mcp:everything/*"]));
    }

    #[test]
    fn ask_before_names_mcp_tools() {
        let patterns = list(&["mcp:everything/get-*", "shell:git push", "fs__write"]);
        assert_eq!(
            asks_before(&patterns, "everything", "get-sum"),
            Some("mcp:everything/get-*")
        );
        assert_eq!(asks_before(&patterns, "everything", "echo"), None);
        assert_eq!(asks_before(&patterns, "fs", "write"), Some("fs__write"));
        assert_eq!(
            asks_before(&list(&["mcp:*"]), "any", "thing"),
            Some("mcp:*")
        );
    }
}
