//! `${{ expr }}` templates: parsing, static references (for validation) and
//! evaluation against a run's context.
//!
//! Only `${{` opens a hole; a bare `{` is plain text. Inside a hole:
//! literals, dotted paths from the roots `inputs steps whisper item run`
//! with `[index]`/`['key']`, `== != < <= > >= && || !`, parentheses and the
//! functions `success failure always cancelled length contains join format
//! fromJSON toJSON`.

use std::collections::BTreeMap;

use serde_json::Value;

pub mod ast;
mod eval;
mod outputs;
mod parse;

use ast::{Expr, Root, Seg, static_key};

pub use eval::truthy;
pub use outputs::Outputs;

/// A string with `${{ }}` holes, parsed once at load time. Serialized as its
/// raw text and parsed again when read back (see the impls below).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    raw: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// `start..end` is a run of literal text in `raw` (not a copy: a
    /// 10,000-step definition holds its templates for the whole run).
    Text { start: usize, end: usize },
    /// `start..end` is the byte range of the whole `${{ .. }}` in `raw`.
    Hole {
        expr: Expr,
        start: usize,
        end: usize,
    },
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

/// A reference and where it sits in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub reference: Reference,
    /// Byte offset of the reference's root name in `raw`.
    pub offset: usize,
    /// Byte range of the enclosing `${{ .. }}` in `raw`.
    pub hole: (usize, usize),
    /// Dotted text, e.g. `steps.coder.outputs.files`.
    pub text: String,
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
    /// Shared with the step's recorded outcome, not copied.
    pub outputs: Outputs,
}

/// A template's text cut into literal runs and holes.
fn parts_of(raw: &str) -> Result<Vec<Part>, ExprError> {
    let mut parts = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while let Some(rel) = raw[i..].find("${{") {
        let start = i + rel;
        let inner_start = start + 3;
        let Some(inner_end) = find_close(raw, inner_start) else {
            return Err(ExprError {
                message: "`${{` is not closed by `}}`".to_string(),
                offset: start,
            });
        };
        if start > text_start {
            parts.push(Part::Text {
                start: text_start,
                end: start,
            });
        }
        let expr = parse::parse_expr(&raw[inner_start..inner_end], inner_start)?;
        let end = inner_end + 2;
        parts.push(Part::Hole { expr, start, end });
        text_start = end;
        i = end;
    }
    if text_start < raw.len() {
        parts.push(Part::Text {
            start: text_start,
            end: raw.len(),
        });
    }
    parts.shrink_to_fit();
    Ok(parts)
}

impl serde::Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> serde::Deserialize<'de> for Template {
    /// Parsing again gives the template that was serialized: a raw text
    /// that failed to parse at load time was kept as a literal, and fails
    /// (and is kept as a literal) again.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Template, D::Error> {
        let raw = String::deserialize(d)?;
        Ok(match parts_of(&raw) {
            Ok(parts) => Template { raw, parts },
            Err(_) => Template::literal(&raw),
        })
    }
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
        let parts = parts_of(raw)?;
        Ok(Template {
            raw: raw.to_string(),
            parts,
        })
    }

    /// A template of plain text (no parsing; `${{` stays literal).
    pub fn literal(text: &str) -> Template {
        Template {
            raw: text.to_string(),
            parts: vec![Part::Text {
                start: 0,
                end: text.len(),
            }],
        }
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// True when the template has at least one `${{ }}` hole.
    pub fn has_holes(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Hole { .. }))
    }

    pub fn references(&self) -> Vec<Reference> {
        self.located_references()
            .into_iter()
            .map(|l| l.reference)
            .collect()
    }

    /// The ids of the steps whose results this template reads, or `None`
    /// when one is chosen at run time (`steps[inputs.which]`), so any step
    /// may be read.
    pub fn steps_read(&self) -> Option<Vec<String>> {
        let mut ids = Vec::new();
        let mut dynamic = false;
        for part in &self.parts {
            let Part::Hole { expr, .. } = part else {
                continue;
            };
            expr.walk_paths(&mut |root, segs: &[Seg], _| {
                if root != Root::Steps {
                    return;
                }
                match segs.first().and_then(static_key) {
                    Some(id) => ids.push(id.to_string()),
                    None => dynamic = true,
                }
            });
        }
        (!dynamic).then_some(ids)
    }

    /// Every reference with its position, in text order.
    pub fn located_references(&self) -> Vec<Located> {
        let mut out = Vec::new();
        for part in &self.parts {
            let Part::Hole { expr, start, end } = part else {
                continue;
            };
            expr.walk_paths(&mut |root, segs: &[Seg], offset| {
                if let Some(reference) = reference_of(root, segs) {
                    out.push(Located {
                        reference,
                        offset,
                        hole: (*start, *end),
                        text: ast::path_text(root, segs),
                    });
                }
            });
        }
        out
    }

    /// The value: a lone `${{ x }}` keeps its JSON type; anything else is a string.
    pub fn eval(&self, ctx: &EvalContext) -> Result<Value, EvalError> {
        if let [Part::Hole { expr, .. }] = self.parts.as_slice() {
            return eval::eval(expr, ctx);
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text { start, end } => out.push_str(&self.raw[*start..*end]),
                Part::Hole { expr, .. } => match eval::eval(expr, ctx)? {
                    Value::String(s) => out.push_str(&s),
                    v => out.push_str(&v.to_string()),
                },
            }
        }
        Ok(Value::String(out))
    }

    /// [`Template::render`] in pieces: each literal run of text (`None`)
    /// and each hole's value (`Some(the hole as written)`), in order; the
    /// pieces joined are exactly what `render` gives.
    pub fn render_pieces(
        &self,
        ctx: &EvalContext,
    ) -> Result<Vec<(Option<String>, String)>, EvalError> {
        let text = |v: Value| match v {
            Value::String(s) => s,
            v => v.to_string(),
        };
        self.parts
            .iter()
            .map(|part| match part {
                Part::Text { start, end } => Ok((None, self.raw[*start..*end].to_string())),
                Part::Hole { expr, start, end } => {
                    let name = self.raw.get(*start..*end).unwrap_or_default().to_string();
                    Ok((Some(name), text(eval::eval(expr, ctx)?)))
                }
            })
            .collect()
    }

    /// The value as text: strings as they are, other values as JSON.
    pub fn render(&self, ctx: &EvalContext) -> Result<String, EvalError> {
        Ok(match self.eval(ctx)? {
            Value::String(s) => s,
            v => v.to_string(),
        })
    }
}

/// The `}}` closing a hole opened before `from`, skipping quoted strings.
fn find_close(raw: &str, from: usize) -> Option<usize> {
    let bytes = raw.as_bytes();
    let mut i = from;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) => {
                if c == b'\\' && q == b'"' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c == b'\'' || c == b'"' {
                    quote = Some(c);
                } else if c == b'}' && bytes.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

fn reference_of(root: Root, segs: &[Seg]) -> Option<Reference> {
    let key = |i: usize| segs.get(i).and_then(static_key).map(str::to_string);
    Some(match root {
        Root::Item => Reference::Item,
        Root::Inputs => Reference::Input(key(0)?),
        Root::Whisper => Reference::Whisper(key(0)?),
        Root::Run => Reference::Run(key(0)?),
        Root::Steps => Reference::StepOutput {
            step: key(0)?,
            output: key(2)?,
        },
    })
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
