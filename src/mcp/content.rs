//! What servers send, as lev's values: a tool as an [`McpTool`], a call's
//! result and a resource as text a model can read. Binary data is never
//! passed on: a model gets its kind and size instead.

use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptResult, ReadResourceResult, ResourceContents, Tool,
};

use super::{CallOutput, McpTool};

pub(crate) fn tool(server: &str, tool: &Tool) -> McpTool {
    let hints = tool.annotations.as_ref();
    let read_only = hints.and_then(|a| a.read_only_hint) == Some(true);
    let idempotent = read_only || hints.and_then(|a| a.idempotent_hint) == Some(true);
    McpTool {
        server: server.to_string(),
        name: tool.name.to_string(),
        description: tool.description.as_deref().unwrap_or_default().to_string(),
        input_schema: serde_json::Value::Object(tool.input_schema.as_ref().clone()),
        read_only,
        idempotent,
    }
}

/// Text blocks as they are, other blocks as a line saying what they are;
/// the structured result when no block is text (a server that only gives
/// `structuredContent` still gives the model something to read).
pub(crate) fn call_output(result: &CallToolResult) -> CallOutput {
    let mut content = result
        .content
        .iter()
        .map(block)
        .collect::<Vec<_>>()
        .join("\n");
    let has_text = result
        .content
        .iter()
        .any(|b| matches!(b, ContentBlock::Text(_)));
    if !has_text && let Some(structured) = &result.structured_content {
        let json = serde_json::to_string_pretty(structured).unwrap_or_default();
        if !content.is_empty() {
            content.push('\n');
        }
        content.push_str(&json);
    }
    CallOutput {
        content,
        is_error: result.is_error == Some(true),
    }
}

pub(crate) fn resource(result: &ReadResourceResult) -> String {
    result
        .contents
        .iter()
        .map(resource_contents)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A prompt's messages as text: each under its role, as a model reads a
/// transcript.
pub(crate) fn prompt(result: &GetPromptResult) -> String {
    let mut out = String::new();
    if let Some(d) = result
        .description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        out.push_str(d.trim());
        out.push_str("\n\n");
    }
    let messages: Vec<String> = result
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                rmcp::model::Role::User => "user",
                rmcp::model::Role::Assistant => "assistant",
            };
            format!("[{role}] {}", block(&m.content))
        })
        .collect();
    out.push_str(&messages.join("\n"));
    out
}

fn block(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(t) => t.text.clone(),
        ContentBlock::Image(i) => format!("[image {}, {} bytes base64]", i.mime_type, i.data.len()),
        ContentBlock::Audio(a) => format!("[audio {}, {} bytes base64]", a.mime_type, a.data.len()),
        ContentBlock::ResourceLink(r) => format!("[resource {}]", r.uri),
        ContentBlock::Resource(r) => resource_contents(&r.resource),
        // A kind newer than this SDK: its JSON says more than nothing.
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn resource_contents(contents: &ResourceContents) -> String {
    match contents {
        ResourceContents::TextResourceContents { text, .. } => text.clone(),
        ResourceContents::BlobResourceContents {
            blob, mime_type, ..
        } => format!(
            "[binary {}, {} bytes]",
            mime_type.as_deref().unwrap_or("application/octet-stream"),
            decoded_len(blob)
        ),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// The size of what base64 `data` encodes, without decoding it.
fn decoded_len(data: &str) -> usize {
    let digits = data
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .count();
    digits * 3 / 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{EmbeddedResource, Resource};
    use serde_json::json;

    fn result(value: serde_json::Value) -> CallToolResult {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn blocks_become_lines_a_model_can_read() {
        let r = result(json!({
            "content": [
                {"type": "text", "text": "first"},
                {"type": "image", "data": "aGVsbG8=", "mimeType": "image/png"},
                {"type": "resource_link", "uri": "file:///a.txt", "name": "a"},
                {"type": "resource", "resource": {"uri": "file:///b.txt", "text": "inside b"}},
                {"type": "resource", "resource": {"uri": "file:///c.bin", "blob": "aGVsbG8=", "mimeType": "application/zip"}},
            ],
            "isError": true,
        }));
        let out = call_output(&r);
        assert!(out.is_error);
        assert_eq!(
            out.content,
            "first\n[image image/png, 8 bytes base64]\n[resource file:///a.txt]\ninside b\n[binary application/zip, 5 bytes]"
        );
    }

    #[test]
    fn structured_content_stands_in_for_missing_text() {
        let only = result(json!({"content": [], "structuredContent": {"sum": 5}}));
        assert_eq!(call_output(&only).content, "{\n  \"sum\": 5\n}");
        assert!(!call_output(&only).is_error);
        let both = result(json!({
            "content": [{"type": "text", "text": "5"}],
            "structuredContent": {"sum": 5},
        }));
        assert_eq!(call_output(&both).content, "5");
    }

    #[test]
    fn resources_join_their_texts_and_size_their_blobs() {
        let r = ReadResourceResult::new(vec![
            ResourceContents::text("one", "x://1"),
            ResourceContents::blob("AAAA", "x://2"),
        ]);
        assert_eq!(
            resource(&r),
            "one\n[binary application/octet-stream, 3 bytes]"
        );
        let link = ContentBlock::ResourceLink(Resource::new("x://3", "three"));
        assert_eq!(block(&link), "[resource x://3]");
        let embedded = ContentBlock::Resource(EmbeddedResource::new(ResourceContents::text(
            "text", "x://4",
        )));
        assert_eq!(block(&embedded), "text");
    }

    #[test]
    fn annotations_say_what_a_tool_may_do() {
        let t: Tool = serde_json::from_value(json!({
            "name": "look",
            "inputSchema": {"type": "object"},
            "annotations": {"readOnlyHint": true},
        }))
        .unwrap();
        let m = tool("srv", &t);
        assert_eq!(m.description, "");
        assert!(m.read_only && m.idempotent);
        assert_eq!(m.input_schema, json!({"type": "object"}));
        let t: Tool = serde_json::from_value(json!({
            "name": "put",
            "description": "puts",
            "inputSchema": {"type": "object"},
            "annotations": {"idempotentHint": true, "readOnlyHint": false},
        }))
        .unwrap();
        let m = tool("srv", &t);
        assert!(!m.read_only && m.idempotent);
        assert_eq!((m.server.as_str(), m.name.as_str()), ("srv", "put"));
    }
}
