//! `propose_followup`: an agent proposes a follow-up step; the engine
//! checks it and, once the agent has answered, spawns it within the run's
//! limits (after the user's approval unless the workflow pre-authorises).

use super::{Run, Tool};

pub(super) const PROPOSE_FOLLOWUP: Tool = Tool {
    name: "propose_followup",
    description: "Propose follow-up work for another agent, to run after you give your final answer: \
     a fix you found but should not make yourself, a check that is still missing. It runs as a new \
     step in the given mode, within the run's limits and, unless the workflow allows it, only after \
     the user approves. Propose only work that is needed; give each proposal its own title and a \
     self-contained prompt.",
    parameters: || {
        serde_json::json!({
            "type": "object",
            "properties": {
                "title": {"type": "string", "description": "A short title (one line)."},
                "mode": {"type": "string", "description": "The mode (role) of the agent that should do it, e.g. coder, tdd, security-review."},
                "prompt": {"type": "string", "description": "The whole task for that agent, self-contained."},
                "why": {"type": "string", "description": "Why it is needed, in one or two sentences."}
            },
            "required": ["title", "mode", "prompt"],
            "additionalProperties": false
        })
    },
    side_effects: false,
    run: Run::Engine,
};
