//! The MCP client: lev's agents use the tools of configured MCP servers
//! (`config::mcp_servers`). Being written.
