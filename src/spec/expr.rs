//! `${{ expr }}` templates: parsing, static references (for validation) and
//! evaluation against a run's context. Interface fixed; body to be written.

use std::collections::BTreeMap;

use serde_json::Value;

/// A string with `${{ }}` holes, parsed once at load time.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    raw: String,
}

/// A root a template reads; validation checks each one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Input(String),
    StepOutput { step: String, output: String },
    Whisper(String),
    Item,
    Run(String),
}

/// Everything an expression can see while a run executes.
#[derive(Debug, Clone, Default)]
pub struct EvalContext {
    pub inputs: BTreeMap<String, Value>,
    pub steps: BTreeMap<String, StepView>,
    pub whisper: BTreeMap<String, Value>,
    pub item: Option<Value>,
    pub run: BTreeMap<String, Value>,
    /// For `success()` / `failure()`: how the evaluating step's needs settled.
    pub needs_failed: bool,
    pub needs_cancelled: bool,
}

/// A finished upstream step as expressions see it.
#[derive(Debug, Clone, Default)]
pub struct StepView {
    pub succeeded: bool,
    pub outputs: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub message: String,
    /// Byte offset into the template's raw text.
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl Template {
    pub fn parse(raw: &str) -> Result<Template, ExprError> {
        Ok(Template {
            raw: raw.to_string(),
        })
    }
    pub fn raw(&self) -> &str {
        &self.raw
    }
    pub fn references(&self) -> Vec<Reference> {
        Vec::new()
    }
    /// The value: a lone `${{ x }}` keeps its JSON type; anything else is a string.
    pub fn eval(&self, _ctx: &EvalContext) -> Result<Value, EvalError> {
        Ok(Value::String(self.raw.clone()))
    }
    /// The value as text: strings as they are, other values as JSON.
    pub fn render(&self, ctx: &EvalContext) -> Result<String, EvalError> {
        Ok(match self.eval(ctx)? {
            Value::String(s) => s,
            v => v.to_string(),
        })
    }
}
