//! The expression tree a `${{ }}` hole parses into.

use serde_json::Value;

/// Roots an expression may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Inputs,
    Steps,
    Whisper,
    Item,
    Run,
}

impl Root {
    pub fn name(self) -> &'static str {
        match self {
            Root::Inputs => "inputs",
            Root::Steps => "steps",
            Root::Whisper => "whisper",
            Root::Item => "item",
            Root::Run => "run",
        }
    }

    pub fn from_name(s: &str) -> Option<Root> {
        Some(match s {
            "inputs" => Root::Inputs,
            "steps" => Root::Steps,
            "whisper" => Root::Whisper,
            "item" => Root::Item,
            "run" => Root::Run,
            _ => return None,
        })
    }
}

/// One step of a path after its root: `.name`, `['name']` or `[expr]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Index(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    /// `offset` is the byte offset of the root name in the template's raw text.
    Path {
        root: Root,
        segs: Vec<Seg>,
        offset: usize,
    },
    Not(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Call {
        name: String,
        args: Vec<Expr>,
        offset: usize,
    },
    /// `.key` / `[index]` applied to a call or parenthesised value, e.g.
    /// `fromJSON(x).items[0]`.
    Access(Box<Expr>, Vec<Seg>),
}

impl Expr {
    /// Calls `f` on every path in the tree (including ones inside indexes).
    pub fn walk_paths<'a>(&'a self, f: &mut dyn FnMut(Root, &'a [Seg], usize)) {
        match self {
            Expr::Lit(_) => {}
            Expr::Path { root, segs, offset } => {
                f(*root, segs, *offset);
                for s in segs {
                    if let Seg::Index(e) = s {
                        e.walk_paths(f);
                    }
                }
            }
            Expr::Not(e) => e.walk_paths(f),
            Expr::Bin(_, a, b) => {
                a.walk_paths(f);
                b.walk_paths(f);
            }
            Expr::Call { args, .. } => {
                for a in args {
                    a.walk_paths(f);
                }
            }
            Expr::Access(base, segs) => {
                base.walk_paths(f);
                for s in segs {
                    if let Seg::Index(e) = s {
                        e.walk_paths(f);
                    }
                }
            }
        }
    }
}

/// Dotted text of a path (`steps.coder.outputs.files`), for messages.
pub fn path_text(root: Root, segs: &[Seg]) -> String {
    let mut s = root.name().to_string();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(e) => match e.as_ref() {
                Expr::Lit(Value::String(k)) => {
                    s.push_str("['");
                    s.push_str(k);
                    s.push_str("']");
                }
                Expr::Lit(v) => {
                    s.push('[');
                    s.push_str(&v.to_string());
                    s.push(']');
                }
                _ => s.push_str("[..]"),
            },
        }
    }
    s
}

/// A path segment known at load time (`.name`, `['name']`).
pub fn static_key(seg: &Seg) -> Option<&str> {
    match seg {
        Seg::Key(k) => Some(k),
        Seg::Index(e) => match e.as_ref() {
            Expr::Lit(Value::String(k)) => Some(k),
            _ => None,
        },
    }
}
