//! Shell approval policy: which `run_shell` commands run without asking.

use super::{ShellDecision, ShellPolicy};

/// Characters and sequences that let one command line run another command
/// (or redirect output over files). `&` covers `&&` and backgrounding; `\r`
/// and `\n` separate commands like `;`.
const CONTROL: [&str; 10] = [";", "&", "|", "`", "$(", ">", "<", "\n", "\r", "\0"];

/// True when `command` could chain or redirect, so a prefix alone cannot
/// vouch for it.
pub fn has_control_operators(command: &str) -> bool {
    CONTROL.iter().any(|op| command.contains(op))
}

/// True when the command's first words are exactly the prefix's words
/// (`cargo test` matches `cargo test --lib`, not `cargo testify`). A prefix
/// of `*` (or ending in ` *`) means "any arguments".
fn matches_prefix(prefix: &str, command: &str) -> bool {
    let prefix = prefix.trim();
    let prefix = prefix.strip_suffix('*').unwrap_or(prefix).trim_end();
    if prefix.is_empty() {
        // An empty entry allows nothing; a bare `*` is handled by the caller.
        return false;
    }
    let mut words = command.split_whitespace();
    prefix.split_whitespace().all(|p| words.next() == Some(p))
}

fn is_wildcard(prefix: &str) -> bool {
    prefix.trim() == "*"
}

/// The `permissions.ask_before` pattern that makes a call of `tool` need
/// the user's approval, if any: `shell:*` (every command), `shell:<words>`
/// (a command in which those words appear in a row, anywhere: `shell:git
/// push` holds for `cd repo && git push -f`), or a tool's name.
pub fn asks_before<'p>(
    patterns: &'p [String],
    tool: &str,
    command: Option<&str>,
) -> Option<&'p str> {
    patterns
        .iter()
        .find(|p| match (p.strip_prefix("shell:"), command) {
            (Some(words), Some(command)) if tool == "run_shell" => {
                is_wildcard(words) || contains_words(command, words)
            }
            (Some(_), _) => false,
            (None, _) => p.as_str() == tool,
        })
        .map(String::as_str)
}

/// True when `words` appear in a row among the command's words, split at
/// white space and at the control operators (so `a;git push` holds).
fn contains_words(command: &str, words: &str) -> bool {
    let wanted: Vec<&str> = words.split_whitespace().collect();
    if wanted.is_empty() {
        return false;
    }
    let tokens: Vec<&str> = command
        .split(|c: char| c.is_whitespace() || ";&|`()<>$".contains(c))
        .filter(|t| !t.is_empty())
        .collect();
    tokens.windows(wanted.len()).any(|w| w == wanted.as_slice())
}

/// Decides whether `command` may run under `policy`.
pub fn shell_decision(policy: &ShellPolicy, command: &str) -> ShellDecision {
    if policy.denied {
        return ShellDecision::Deny("this mode does not allow shell commands".into());
    }
    if command.trim().is_empty() {
        return ShellDecision::Deny("empty command".into());
    }
    if policy.allow_all {
        return ShellDecision::Allow;
    }
    if has_control_operators(command) {
        return ShellDecision::Ask;
    }
    let allowed = policy
        .allowed
        .iter()
        .any(|p| is_wildcard(p) || matches_prefix(p, command));
    if allowed {
        ShellDecision::Allow
    } else {
        ShellDecision::Ask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> ShellPolicy {
        ShellPolicy {
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            allow_all: false,
            denied: false,
        }
    }

    #[test]
    fn ask_before_finds_the_words_anywhere_in_the_command() {
        let patterns: Vec<String> = ["shell:git push", "shell:rm -rf", "write_file"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let shell = |c: &str| asks_before(&patterns, "run_shell", Some(c));
        assert_eq!(shell("git push"), Some("shell:git push"));
        assert_eq!(shell("  git   push --force origin"), Some("shell:git push"));
        assert_eq!(shell("cd repo && git push"), Some("shell:git push"));
        assert_eq!(shell("make;rm -rf build"), Some("shell:rm -rf"));
        assert_eq!(shell("git pull"), None);
        assert_eq!(shell("git pushx"), None);
        assert_eq!(shell("rm -r build"), None);
        assert_eq!(
            asks_before(&patterns, "write_file", None),
            Some("write_file")
        );
        assert_eq!(asks_before(&patterns, "edit_file", None), None);
        let all = vec!["shell:*".to_string()];
        assert_eq!(asks_before(&all, "run_shell", Some("ls")), Some("shell:*"));
        assert_eq!(asks_before(&all, "read_file", None), None);
    }

    #[test]
    fn decision_table() {
        use ShellDecision::{Allow, Ask};
        let cases: &[(&[&str], &str, ShellDecision)] = &[
            (&["cargo test"], "cargo test", Allow),
            (&["cargo test"], "cargo test --lib tools::", Allow),
            (&["cargo test"], "  cargo   test  --lib", Allow),
            (&["cargo test"], "cargo testify", Ask),
            (&["cargo test"], "cargo", Ask),
            (&["cargo test"], "cargo build", Ask),
            (&["cargo test"], "cargo test; rm -rf /", Ask),
            (&["cargo test"], "cargo test && rm -rf /", Ask),
            (&["cargo test"], "cargo test || true", Ask),
            (&["cargo test"], "cargo test | tee log", Ask),
            (&["cargo test"], "cargo test `rm x`", Ask),
            (&["cargo test"], "cargo test $(rm x)", Ask),
            (&["cargo test"], "cargo test > out", Ask),
            (&["cargo test"], "cargo test < in", Ask),
            (&["cargo test"], "cargo test\nrm x", Ask),
            (&["cargo test"], "cargo test & rm x", Ask),
            (&["ls"], "ls -la src", Allow),
            (&["ls"], "lsof", Ask),
            (&["ls", "git status"], "git status --short", Allow),
            (&["ls", "git status"], "git push", Ask),
            (&["git *"], "git log", Allow),
            (&["*"], "anything at all", Allow),
            (&["*"], "anything; else", Ask),
            (&[""], "ls", Ask),
            (&[], "ls", Ask),
            (&["ls"], "FOO=1 ls", Ask),
        ];
        for (allowed, command, want) in cases {
            assert_eq!(
                &shell_decision(&policy(allowed), command),
                want,
                "allowed {allowed:?} command {command:?}"
            );
        }
    }

    #[test]
    fn allow_all_and_denied() {
        let mut p = policy(&[]);
        p.allow_all = true;
        assert_eq!(
            shell_decision(&p, "rm -rf build && make"),
            ShellDecision::Allow
        );
        p.denied = true;
        assert!(matches!(shell_decision(&p, "ls"), ShellDecision::Deny(_)));
        let p = policy(&["ls"]);
        assert!(matches!(shell_decision(&p, "   "), ShellDecision::Deny(_)));
    }
}
