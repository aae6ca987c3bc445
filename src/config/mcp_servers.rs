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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServer {
    /// Its key under `mcp_servers:`: letters, digits, `-` and `_`, never `__`.
    pub name: String,
    pub transport: McpTransport,
    /// How long one tool call may take before it fails.
    pub call_timeout: Duration,
}

/// How lev reaches a server.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}
