//! `ask_user`: a question to the user, which the engine asks (and journals)
//! on the agent's behalf.

use super::{Run, Tool};

/// `ask_user`: offered to models, run by the engine, which asks the user.
pub(super) const ASK_USER: Tool = Tool {
    name: "ask_user",
    description: "Ask the user a question and wait for the answer. Use it only when you cannot \
     proceed without a decision or information only the user has; offer `options` \
     when the answer is a choice.",
    parameters: || {
        serde_json::json!({
            "type": "object",
            "properties": {
                "question": {"type": "string", "description": "The question, self-contained."},
                "options": {"type": "array", "items": {"type": "string"}, "description": "Suggested answers to choose from."}
            },
            "required": ["question"],
            "additionalProperties": false
        })
    },
    side_effects: false,
    run: Run::Engine,
};
