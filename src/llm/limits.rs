//! Caps on what one LLM reply may make lev hold: its text, its reasoning,
//! each tool call's arguments, and any single server-sent event. A reply
//! past a cap is abandoned at once (the connection is dropped) and the call
//! fails with [`LlmError::TooLarge`], which names the cap and its setting;
//! it is not retried, since the same request would likely get the same
//! reply.

use super::LlmError;

pub use crate::config::{
    ARGUMENT_SETTING, DEFAULT_MAX_REPLY_BYTES, DEFAULT_MAX_TOOL_ARGUMENT_BYTES, REPLY_SETTING,
    ReplyLimits,
};

/// Bytes a reply has accumulated so far, checked against [`ReplyLimits`].
#[derive(Debug)]
pub(crate) struct Budget {
    limits: ReplyLimits,
    provider: String,
    text: usize,
    reasoning: usize,
    /// Text plus every tool call's name, id and arguments.
    total: usize,
}

impl Budget {
    pub(crate) fn new(provider: &str, limits: ReplyLimits) -> Budget {
        Budget {
            limits,
            provider: provider.to_string(),
            text: 0,
            reasoning: 0,
            total: 0,
        }
    }

    fn too_large(&self, what: &str, limit: usize, setting: &str) -> LlmError {
        LlmError::TooLarge {
            provider: self.provider.clone(),
            what: what.to_string(),
            limit,
            setting: setting.to_string(),
        }
    }

    fn add_total(&mut self, n: usize) -> Result<(), LlmError> {
        self.total = self.total.saturating_add(n);
        if self.total > self.limits.max_reply_bytes {
            return Err(self.too_large(
                "the reply (text and tool calls together)",
                self.limits.max_reply_bytes,
                REPLY_SETTING,
            ));
        }
        Ok(())
    }

    /// `n` more bytes of reply text.
    pub(crate) fn text(&mut self, n: usize) -> Result<(), LlmError> {
        self.text = self.text.saturating_add(n);
        if self.text > self.limits.max_reply_bytes {
            return Err(self.too_large(
                "the reply text",
                self.limits.max_reply_bytes,
                REPLY_SETTING,
            ));
        }
        self.add_total(n)
    }

    /// `n` more bytes of reasoning (thinking) text, which lev does not keep
    /// but still reads.
    pub(crate) fn reasoning(&mut self, n: usize) -> Result<(), LlmError> {
        self.reasoning = self.reasoning.saturating_add(n);
        if self.reasoning > self.limits.max_reply_bytes {
            return Err(self.too_large(
                "the reply's reasoning",
                self.limits.max_reply_bytes,
                REPLY_SETTING,
            ));
        }
        Ok(())
    }

    /// `n` more bytes of a tool call's name or id.
    pub(crate) fn call_meta(&mut self, n: usize) -> Result<(), LlmError> {
        self.add_total(n)
    }

    /// `n` more bytes of the arguments of tool `name`, which now hold
    /// `now` bytes.
    pub(crate) fn argument(&mut self, name: &str, now: usize, n: usize) -> Result<(), LlmError> {
        if now > self.limits.max_tool_argument_bytes {
            let what = format!(
                "the arguments of the tool call `{}`",
                super::wire::excerpt(name, 64)
            );
            return Err(self.too_large(
                &what,
                self.limits.max_tool_argument_bytes,
                ARGUMENT_SETTING,
            ));
        }
        self.add_total(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cap_names_its_setting() {
        let limits = ReplyLimits {
            max_reply_bytes: 10,
            max_tool_argument_bytes: 4,
        };
        let mut b = Budget::new("p", limits);
        b.text(10).unwrap();
        let e = b.text(1).unwrap_err().to_string();
        assert!(
            e.contains("reply text") && e.contains("10 bytes") && e.contains(REPLY_SETTING),
            "{e}"
        );

        let mut b = Budget::new("p", limits);
        b.argument("f", 4, 4).unwrap();
        let e = b.argument("f", 5, 1).unwrap_err().to_string();
        assert!(
            e.contains("`f`") && e.contains("4 bytes") && e.contains(ARGUMENT_SETTING),
            "{e}"
        );

        let mut b = Budget::new("p", limits);
        b.text(6).unwrap();
        b.argument("f", 4, 4).unwrap();
        assert!(b.call_meta(1).is_err());

        let mut b = Budget::new("p", limits);
        b.reasoning(10).unwrap();
        assert!(
            b.reasoning(1)
                .unwrap_err()
                .to_string()
                .contains("reasoning")
        );
    }
}
