//! Tool specs offered to a model, and the allow/deny filter of a mode.

use crate::llm::ToolSpec;

fn all_specs() -> Vec<ToolSpec> {
    super::TOOLS
        .iter()
        .map(|t| ToolSpec {
            name: t.name.into(),
            description: t.description.into(),
            parameters: (t.parameters)(),
        })
        .collect()
}

/// True when an allow/deny entry names `tool`: its name, a group alias
/// (`read`, `write`, `edit`, `shell`, `ask`), `*`, or (only where
/// `shell_prefixes_count` is set, i.e. in allow lists) `shell:<prefix>`.
fn entry_covers(entry: &str, tool: &str, shell_prefixes_count: bool) -> bool {
    let entry = entry.trim();
    if entry == "*" || entry == tool {
        return true;
    }
    let group: &[&str] = match entry {
        "read" => &["read_file", "list_dir", "grep"],
        "write" => &["write_file"],
        "edit" => &["edit_file"],
        "shell" | "shell:*" => &["run_shell"],
        "ask" => &["ask_user"],
        _ => &[],
    };
    if group.contains(&tool) {
        return true;
    }
    shell_prefixes_count && tool == "run_shell" && entry.starts_with("shell:")
}

/// Whether a mode with these lists may use `tool`. An empty allow list allows
/// every tool; deny wins. `ask_user` is offered unless denied: asking is the
/// question flow (bounded by the mode's `max_questions`), not a capability.
/// A denied `shell:<prefix>` does not remove `run_shell`; `shell` or
/// `shell:*` does.
pub fn is_offered(tool: &str, allow: &[String], deny: &[String]) -> bool {
    if deny.iter().any(|d| entry_covers(d, tool, false)) {
        return false;
    }
    if tool == OPT_IN {
        return allow.iter().any(|a| a.trim() == OPT_IN);
    }
    allow.is_empty() || tool == "ask_user" || allow.iter().any(|a| entry_covers(a, tool, true))
}

/// The tool a mode gets only by naming it in its allow list (or when the
/// workflow offers it to every agent, `followups.propose`): proposing work
/// spends the run's budget, so it is never implied by `*` or an empty list.
pub const OPT_IN: &str = "propose_followup";

/// Filters the built-in specs by a mode's lists (see [`is_offered`]);
/// `propose`: the workflow offers `propose_followup` to every agent that
/// does not deny it.
pub fn specs(allow: &[String], deny: &[String], propose: bool) -> Vec<ToolSpec> {
    all_specs()
        .into_iter()
        .filter(|s| {
            is_offered(&s.name, allow, deny)
                || (propose
                    && s.name == OPT_IN
                    && !deny.iter().any(|d| entry_covers(d, OPT_IN, false)))
        })
        .collect()
}

/// The `shell:<prefix>` entries of an allow list, for a [`super::ShellPolicy`].
pub fn shell_prefixes(allow: &[String]) -> Vec<String> {
    allow
        .iter()
        .filter_map(|a| a.trim().strip_prefix("shell:"))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(allow: &[&str], deny: &[&str]) -> Vec<String> {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        let deny: Vec<String> = deny.iter().map(|s| s.to_string()).collect();
        specs(&allow, &deny, false)
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    #[test]
    fn empty_allow_offers_everything_but_the_opt_in_tool() {
        let mut all = super::super::tool_names();
        all.retain(|t| *t != OPT_IN);
        assert_eq!(names(&[], &[]), all);
    }

    #[test]
    fn propose_followup_is_offered_only_when_named_or_offered_by_the_workflow() {
        assert!(!names(&["*"], &[]).contains(&OPT_IN.to_string()));
        assert!(names(&["read", "propose_followup"], &[]).contains(&OPT_IN.to_string()));
        let offered = |deny: &[&str]| {
            let deny: Vec<String> = deny.iter().map(|s| s.to_string()).collect();
            specs(&[], &deny, true)
                .into_iter()
                .any(|s| s.name == OPT_IN)
        };
        assert!(offered(&[]));
        assert!(!offered(&["propose_followup"]));
    }

    #[test]
    fn filter_table() {
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (
                &["read"],
                &[],
                &["read_file", "list_dir", "grep", "ask_user"],
            ),
            (&["grep", "write"], &[], &["grep", "write_file", "ask_user"]),
            (
                &["edit", "shell"],
                &[],
                &["edit_file", "run_shell", "ask_user"],
            ),
            (&["shell:cargo test"], &[], &["run_shell", "ask_user"]),
            (
                &["read", "shell:cargo audit", "mcp:semgrep/*"],
                &["write", "edit"],
                &["read_file", "list_dir", "grep", "run_shell", "ask_user"],
            ),
            (
                &[],
                &["write", "edit", "shell"],
                &[
                    "read_file",
                    "list_dir",
                    "grep",
                    "ask_user",
                    "memory_store",
                    "memory_search",
                ],
            ),
            (&["read"], &["grep"], &["read_file", "list_dir", "ask_user"]),
            (&["shell"], &["shell:*"], &["ask_user"]),
            (&["shell"], &["shell:rm"], &["run_shell", "ask_user"]),
            (
                &["*"],
                &["ask"],
                &[
                    "read_file",
                    "list_dir",
                    "grep",
                    "write_file",
                    "edit_file",
                    "run_shell",
                    "memory_store",
                    "memory_search",
                ],
            ),
            (&["read"], &["ask_user"], &["read_file", "list_dir", "grep"]),
            (&["mcp:x/*"], &[], &["ask_user"]),
            (
                &["read_file", "memory_search"],
                &[],
                &["read_file", "ask_user", "memory_search"],
            ),
            (
                &["*"],
                &["memory_store", "ask"],
                &[
                    "read_file",
                    "list_dir",
                    "grep",
                    "write_file",
                    "edit_file",
                    "run_shell",
                    "memory_search",
                ],
            ),
        ];
        for (allow, deny, want) in cases {
            assert_eq!(
                names(allow, deny),
                want.to_vec(),
                "allow {allow:?} deny {deny:?}"
            );
        }
    }

    /// The tools' part of every LLM request's fingerprint: a change here
    /// makes every recorded agent run diverge on resume. Change the tools
    /// on purpose, then update this hash.
    #[test]
    fn the_offered_tools_are_byte_for_byte_as_recorded() {
        let text = serde_json::to_value(specs(&[], &[], false))
            .unwrap()
            .to_string();
        assert_eq!(
            blake3::hash(text.as_bytes()).to_hex().to_string(),
            "c34bf24d4c22109c4957df520438e403d480b823ffa5c590179d6d286817a6f6"
        );
    }

    #[test]
    fn specs_are_object_schemas() {
        for s in specs(&[], &[], false) {
            assert_eq!(s.parameters["type"], "object", "{}", s.name);
            assert!(s.description.len() > 40, "{}", s.name);
        }
    }

    #[test]
    fn prefixes_are_extracted() {
        let allow = vec![
            "read".to_string(),
            "shell:cargo test".into(),
            "shell: ls ".into(),
            "shell:".into(),
        ];
        assert_eq!(
            shell_prefixes(&allow),
            vec!["cargo test".to_string(), "ls".into()]
        );
    }
}
