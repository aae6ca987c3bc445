//! MCP servers whose tools lev's agents may use (`mcp_servers:` in the
//! config and in a workflow). Plain data: `mcp` connects to them.
//!
//! ```yaml
//! mcp_servers:
//!   everything:                    # the name: tools are offered as `everything__echo`
//!     command: npx                 # a stdio server: a program lev starts
//!     args: [-y, "@modelcontextprotocol/server-everything"]
//!     env: { LOG_LEVEL: debug }    # added to its environment (lev's keys are withheld)
//!     cwd: tools/                  # relative to the file that names it
//!   search:
//!     url: http://127.0.0.1:3001/mcp   # a streamable-HTTP server
//!     headers: { X-Team: core }        # sent as they are
//!     headers_env: { Authorization: SEARCH_TOKEN }  # the value of $SEARCH_TOKEN
//!     timeout_s: 120               # one tool call's limit (default 300)
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// One call's limit when the server's entry names none.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// A configured MCP server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct McpServer {
    /// Its key under `mcp_servers:`: letters, digits, `-` and `_`, never `__`.
    pub name: String,
    pub transport: McpTransport,
    /// How long one tool call may take before it fails.
    pub call_timeout: Duration,
}

/// How lev reaches a server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpTransport {
    /// A program lev starts, speaking MCP on its stdin and stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        /// Added to the environment it inherits (lev's secrets withheld).
        env: BTreeMap<String, String>,
        /// Absolute (made so when the config is read); `None`: the workspace.
        cwd: Option<PathBuf>,
    },
    /// A streamable-HTTP endpoint.
    Http {
        url: String,
        /// Header name → value, sent as written.
        headers: BTreeMap<String, String>,
        /// Header name → the environment variable its value is read from
        /// when lev connects (so a token is never in a file, the journal
        /// or a log).
        headers_env: BTreeMap<String, String>,
    },
}

/// One `mcp_servers:` entry as written, before it is checked; the config
/// and workflow loaders read their YAML into this and [`build`] it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub command: Option<String>,
    pub args: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub cwd: Option<PathBuf>,
    pub url: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub headers_env: Option<BTreeMap<String, String>>,
    pub timeout_s: Option<u64>,
}

/// The server `name`'s entry, checked; a relative `cwd` is taken from
/// `base` (the directory of the file that names it). `Err` says what is
/// wrong in the user's words.
pub fn build(name: &str, entry: Entry, base: &std::path::Path) -> Result<McpServer, String> {
    if let Some(problem) = name_problem(name) {
        return Err(problem);
    }
    let call_timeout = match entry.timeout_s {
        Some(0) => return Err("`timeout_s` must be at least 1".into()),
        Some(s) => Duration::from_secs(s),
        None => DEFAULT_CALL_TIMEOUT,
    };
    let transport = match (entry.command, entry.url) {
        (Some(_), Some(_)) => {
            return Err(
                "give either `command` (a stdio server) or `url` (streamable HTTP), not both"
                    .into(),
            );
        }
        (None, None) => {
            return Err(
                "needs `command` (a stdio server lev starts) or `url` (a streamable-HTTP server)"
                    .into(),
            );
        }
        (Some(command), None) => {
            if command.trim().is_empty() {
                return Err("`command` is empty".into());
            }
            if entry.headers.is_some() || entry.headers_env.is_some() {
                return Err(
                    "`headers` and `headers_env` are for `url` servers; a stdio server takes `env`"
                        .into(),
                );
            }
            McpTransport::Stdio {
                command,
                args: entry.args.unwrap_or_default(),
                env: entry.env.unwrap_or_default(),
                cwd: entry.cwd.map(|c| base.join(c)),
            }
        }
        (None, Some(url)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "`url` must be an http:// or https:// address, found `{url}`"
                ));
            }
            if entry.args.is_some() || entry.env.is_some() || entry.cwd.is_some() {
                return Err("`args`, `env` and `cwd` are for `command` servers; a `url` server takes `headers`".into());
            }
            McpTransport::Http {
                url,
                headers: entry.headers.unwrap_or_default(),
                headers_env: entry.headers_env.unwrap_or_default(),
            }
        }
    };
    Ok(McpServer {
        name: name.to_string(),
        transport,
        call_timeout,
    })
}

/// Why `name` cannot name a server, if it cannot: tools are offered as
/// `<server>__<tool>` and providers take `[A-Za-z0-9_-]` in tool names.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a server's name cannot be empty".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Some(format!(
            "server name `{name}` may only hold letters, digits, `-` and `_` (its tools are offered as `{name}__<tool>`)"
        ));
    }
    if name.contains("__") {
        return Some(format!(
            "server name `{name}` cannot contain `__` (it separates the server from the tool in `<server>__<tool>`)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_be_split_back_are_refused() {
        assert_eq!(name_problem("everything"), None);
        assert_eq!(name_problem("git-hub_2"), None);
        assert!(name_problem("").is_some());
        assert!(name_problem("a__b").is_some());
        assert!(name_problem("a b").is_some());
        assert!(name_problem("a/b").is_some());
    }

    #[test]
    fn an_entry_is_one_kind_of_server() {
        let base = std::path::Path::new("/proj");
        let stdio = Entry {
            command: Some("node".into()),
            cwd: Some("tools".into()),
            ..Entry::default()
        };
        let s = build("e", stdio, base).unwrap();
        assert!(
            matches!(s.transport, McpTransport::Stdio { cwd: Some(ref c), .. } if c == std::path::Path::new("/proj/tools"))
        );
        assert_eq!(s.call_timeout, DEFAULT_CALL_TIMEOUT);
        let both = Entry {
            command: Some("node".into()),
            url: Some("http://x".into()),
            ..Entry::default()
        };
        assert!(build("e", both, base).unwrap_err().contains("not both"));
        assert!(
            build("e", Entry::default(), base)
                .unwrap_err()
                .contains("needs")
        );
        let ftp = Entry {
            url: Some("ftp://x".into()),
            ..Entry::default()
        };
        assert!(build("e", ftp, base).unwrap_err().contains("http://"));
        let mixed = Entry {
            url: Some("http://x/mcp".into()),
            env: Some(BTreeMap::new()),
            ..Entry::default()
        };
        assert!(build("e", mixed, base).is_err());
    }
}
