//! What lev knows of the coding-agent CLIs a `pty` step may run: how to
//! give a new session an id lev chose (so the id is journaled before the
//! program starts), how to resume a session by its id, and where its output
//! names its id when lev could not choose it. Built in for the CLIs of
//! `docs/agent-clis.md`; a config's `pty.clis:` adds others or replaces one.

use std::collections::BTreeMap;

/// One agent CLI's session handling. `{session}` in an argument stands for
/// the session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCli {
    pub name: String,
    /// Arguments that start a new session with a given id (empty: the CLI
    /// chooses its own id).
    pub new_session: Vec<String>,
    /// Arguments that resume a session (before the step's own `args`);
    /// empty: it cannot be resumed by id.
    pub resume: Vec<String>,
    /// A regular expression whose first group is the session id, looked
    /// for in what the program showed (its exit message, its banner).
    pub session_pattern: Option<String>,
    /// Arguments (first of all) that make the CLI's hooks report to lev
    /// for this session only (`lev hook`): `{lev}` stands for lev's binary.
    pub hooks: Vec<String>,
}

impl AgentCli {
    fn new(name: &str, new_session: &[&str], resume: &[&str], pattern: Option<&str>) -> AgentCli {
        let owned = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        AgentCli {
            name: name.into(),
            new_session: owned(new_session),
            resume: owned(resume),
            session_pattern: pattern.map(str::to_string),
            hooks: Vec::new(),
        }
    }

    fn with_hooks(mut self, hooks: Vec<String>) -> AgentCli {
        self.hooks = hooks;
        self
    }

    /// `hooks` with `{lev}` replaced by lev's binary (escaped for the JSON
    /// or TOML string it sits in).
    pub fn hook_args(&self, lev: &str) -> Vec<String> {
        let escaped = lev.replace('\\', "\\\\").replace('"', "\\\"");
        self.hooks
            .iter()
            .map(|a| a.replace("{lev}", &escaped))
            .collect()
    }

    /// `args` with `{session}` replaced by `session`.
    pub fn with_session(args: &[String], session: &str) -> Vec<String> {
        args.iter()
            .map(|a| a.replace("{session}", session))
            .collect()
    }
}

const UUID: &str = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";

/// The CLIs lev knows without configuration, by name.
pub fn builtin() -> BTreeMap<String, AgentCli> {
    // Its hooks, for this session only (`--settings`): they run with the
    // session's environment, where `LEV_BIN` is lev.
    let hook = r#"[{"hooks":[{"type":"command","command":"\"$LEV_BIN\" hook"}]}]"#;
    let claude_hooks =
        format!(r#"{{"hooks":{{"SessionStart":{hook},"Notification":{hook},"Stop":{hook}}}}}"#);
    let claude = AgentCli::new(
        "claude",
        &["--session-id", "{session}"],
        &["--resume", "{session}"],
        Some(&format!(r"claude --resume ({UUID})")),
    )
    .with_hooks(vec!["--settings".into(), claude_hooks]);
    let gemini = AgentCli::new(
        "gemini",
        &["--session-id", "{session}"],
        &["--resume", "{session}"],
        Some(&format!(r"gemini --resume ({UUID})")),
    );
    // `notify` runs a program with the event as JSON in its last argument.
    let codex = AgentCli::new(
        "codex",
        &[],
        &["resume", "{session}"],
        Some(&format!(r"codex resume ({UUID})")),
    )
    .with_hooks(vec!["-c".into(), r#"notify=["{lev}","hook"]"#.into()]);
    let opencode = AgentCli::new(
        "opencode",
        &[],
        &["-s", "{session}"],
        Some(r"\b(ses_[0-9A-Za-z]+)\b"),
    );
    // aider has no session id: its chat history file is its memory.
    let aider = AgentCli::new("aider", &[], &[], None);
    [claude, gemini, codex, opencode, aider]
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect()
}

/// A new session id in the form the CLIs that take one expect (a UUID,
/// version 4).
pub fn new_session_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A CLI's `session_pattern` compiled (checked when the config was read).
pub fn session_regex(pattern: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .ok()
}

/// The session id `re` finds in `text` (the last one: a resumed CLI may
/// show its old id first).
pub fn session_in(re: &regex::Regex, text: &str) -> Option<String> {
    re.captures_iter(text)
        .last()
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
}

/// The CLI a step runs: the one it names, or the one its command's file
/// name is, when the table knows it.
pub fn which<'t>(
    table: &'t BTreeMap<String, AgentCli>,
    named: Option<&str>,
    command: &str,
) -> Result<Option<&'t AgentCli>, String> {
    match named {
        Some(name) => table.get(name).map(Some).ok_or_else(|| {
            let known: Vec<&str> = table.keys().map(String::as_str).collect();
            format!(
                "no agent CLI `{name}` is known (known: {}; add one under `pty.clis:` in the config)",
                known.join(", ")
            )
        }),
        None => {
            let file = std::path::Path::new(command)
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or(command);
            Ok(table.get(file))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_id_is_a_version_4_uuid() {
        let id = new_session_id();
        let re = regex::Regex::new(&format!("^{UUID}$")).unwrap();
        assert!(re.is_match(&id), "{id}");
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_session_id());
    }

    #[test]
    fn codex_s_exit_message_names_its_session() {
        let table = builtin();
        let codex = &table["codex"];
        let text = "bye\nTo continue this session, run codex resume 0199a213-81c0-7800-8aa1-bbab2a035a53\n";
        assert_eq!(
            session_in(
                &session_regex(codex.session_pattern.as_deref().unwrap()).unwrap(),
                text
            )
            .as_deref(),
            Some("0199a213-81c0-7800-8aa1-bbab2a035a53")
        );
        assert_eq!(
            AgentCli::with_session(&codex.resume, "abc"),
            vec!["resume".to_string(), "abc".into()]
        );
    }

    #[test]
    fn hook_arguments_name_lev_s_binary_escaped() {
        let table = builtin();
        let codex = table["codex"].hook_args(r#"/opt/my "lev"/lev"#);
        assert_eq!(codex[1], r#"notify=["/opt/my \"lev\"/lev","hook"]"#);
        let claude = table["claude"].hook_args("/x/lev");
        let settings: serde_json::Value = serde_json::from_str(&claude[1]).unwrap();
        assert_eq!(
            settings["hooks"]["Stop"][0]["hooks"][0]["command"],
            r#""$LEV_BIN" hook"#
        );
    }

    #[test]
    fn the_cli_is_named_or_found_by_the_command_s_file_name() {
        let table = builtin();
        assert_eq!(
            which(&table, None, "/usr/local/bin/claude")
                .unwrap()
                .unwrap()
                .name,
            "claude"
        );
        assert!(which(&table, None, "bash").unwrap().is_none());
        let err = which(&table, Some("cursor"), "x").unwrap_err();
        assert!(
            err.contains("no agent CLI `cursor`") && err.contains("claude"),
            "{err}"
        );
    }
}
