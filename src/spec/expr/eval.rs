//! Evaluating an expression tree against a run's `EvalContext`. A missing
//! step, output or key is an error naming it — never an empty string.

use std::cmp::Ordering;

use serde_json::Value;

use super::ast::{BinOp, Expr, Root, Seg, path_text};
use super::{EvalContext, EvalError};

fn fail(msg: impl Into<String>) -> Result<Value, EvalError> {
    Err(EvalError(msg.into()))
}

/// Truthiness as in GitHub expressions: null, false, 0 and "" are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

pub fn eval(e: &Expr, ctx: &EvalContext) -> Result<Value, EvalError> {
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Path { root, segs, .. } => eval_path(*root, segs, ctx),
        Expr::Not(inner) => Ok(Value::Bool(!truthy(&eval(inner, ctx)?))),
        Expr::Bin(BinOp::And, a, b) => {
            let l = eval(a, ctx)?;
            if truthy(&l) { eval(b, ctx) } else { Ok(l) }
        }
        Expr::Bin(BinOp::Or, a, b) => {
            let l = eval(a, ctx)?;
            if truthy(&l) { Ok(l) } else { eval(b, ctx) }
        }
        Expr::Bin(op, a, b) => {
            let l = eval(a, ctx)?;
            let r = eval(b, ctx)?;
            compare(*op, &l, &r)
        }
        Expr::Call { name, args, .. } => call(name, args, ctx),
        Expr::Access(base, segs) => {
            let v = eval(base, ctx)?;
            index_into(v, segs, ctx, "(value)")
        }
    }
}

fn compare(op: BinOp, l: &Value, r: &Value) -> Result<Value, EvalError> {
    let ord = match (l, r) {
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    };
    let eq = match ord {
        Some(o) => o == Ordering::Equal,
        None => l == r,
    };
    let res = match op {
        BinOp::Eq => eq,
        BinOp::Ne => !eq,
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let Some(o) = ord else {
                return fail(format!("cannot order {} and {}", kind(l), kind(r)));
            };
            match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Le => o != Ordering::Greater,
                BinOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }
        }
        BinOp::And | BinOp::Or => return fail("internal: logical operator in compare"),
    };
    Ok(Value::Bool(res))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn key_of(seg: &Seg, ctx: &EvalContext) -> Result<Value, EvalError> {
    match seg {
        Seg::Key(k) => Ok(Value::String(k.clone())),
        Seg::Index(e) => eval(e, ctx),
    }
}

fn key_text(seg: &Seg, ctx: &EvalContext) -> Result<String, EvalError> {
    match key_of(seg, ctx)? {
        Value::String(s) => Ok(s),
        v => Ok(v.to_string()),
    }
}

fn eval_path(root: Root, segs: &[Seg], ctx: &EvalContext) -> Result<Value, EvalError> {
    let full = path_text(root, segs);
    let (start, rest): (Value, &[Seg]) = match root {
        Root::Item => match &ctx.item {
            Some(v) => (v.clone(), segs),
            None => return fail("`item` is only defined inside `followups`"),
        },
        Root::Inputs | Root::Whisper | Root::Run => {
            let (map, what) = match root {
                Root::Inputs => (&ctx.inputs, "input"),
                Root::Whisper => (&ctx.whisper, "whisper answer"),
                _ => (&ctx.run, "run field"),
            };
            let Some(first) = segs.first() else {
                return fail(format!("`{}` needs a key", root.name()));
            };
            let k = key_text(first, ctx)?;
            match map.get(&k) {
                Some(v) => (v.clone(), &segs[1..]),
                None => {
                    return fail(format!("{what} `{k}` is not set (in `{full}`)"));
                }
            }
        }
        Root::Steps => {
            if segs.len() < 3 {
                return fail(format!("`{full}`: expected `steps.<id>.outputs.<name>`"));
            }
            let id = key_text(&segs[0], ctx)?;
            let Some(view) = ctx.steps.get(&id) else {
                return fail(format!(
                    "step `{id}` has no result (it has not finished, or is not upstream) in `{full}`"
                ));
            };
            let field = key_text(&segs[1], ctx)?;
            if field != "outputs" {
                return fail(format!("`{full}`: steps expose only `outputs`"));
            }
            let out = key_text(&segs[2], ctx)?;
            match view.outputs.get(&out) {
                Some(v) => (v.clone(), &segs[3..]),
                None => {
                    return fail(format!(
                        "step `{id}` produced no output `{out}` (in `{full}`)"
                    ));
                }
            }
        }
    };
    index_into(start, rest, ctx, &full)
}

/// Walks `segs` into `cur`; `full` names the whole path in errors.
fn index_into(
    mut cur: Value,
    segs: &[Seg],
    ctx: &EvalContext,
    full: &str,
) -> Result<Value, EvalError> {
    for seg in segs {
        let key = key_of(seg, ctx)?;
        cur = match (&cur, &key) {
            (Value::Object(m), Value::String(k)) => match m.get(k) {
                Some(v) => v.clone(),
                None => return fail(format!("no key `{k}` in `{full}`")),
            },
            (Value::Array(a), Value::Number(n)) => {
                let idx = n.as_u64().and_then(|i| usize::try_from(i).ok());
                match idx.and_then(|i| a.get(i)) {
                    Some(v) => v.clone(),
                    None => {
                        return fail(format!(
                            "index {n} is out of range (length {}) in `{full}`",
                            a.len()
                        ));
                    }
                }
            }
            (v, k) => {
                return fail(format!(
                    "cannot index {} with {} in `{full}`",
                    kind(v),
                    kind(k)
                ));
            }
        };
    }
    Ok(cur)
}

/// Text of a value for string functions: strings bare, others as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn call(name: &str, args: &[Expr], ctx: &EvalContext) -> Result<Value, EvalError> {
    let arg = |i: usize| -> Result<Value, EvalError> {
        match args.get(i) {
            Some(e) => eval(e, ctx),
            None => fail(format!("`{name}()` is missing argument {}", i + 1)),
        }
    };
    match name {
        "success" => Ok(Value::Bool(!ctx.needs_failed && !ctx.needs_cancelled)),
        "failure" => Ok(Value::Bool(ctx.needs_failed)),
        "always" => Ok(Value::Bool(true)),
        "cancelled" => Ok(Value::Bool(ctx.needs_cancelled)),
        "length" => match arg(0)? {
            Value::String(s) => Ok(Value::from(s.chars().count())),
            Value::Array(a) => Ok(Value::from(a.len())),
            Value::Object(m) => Ok(Value::from(m.len())),
            Value::Null => Ok(Value::from(0)),
            v => fail(format!(
                "`length()` needs a string, array or object, got {}",
                kind(&v)
            )),
        },
        "contains" => {
            let hay = arg(0)?;
            let needle = arg(1)?;
            let found = match &hay {
                Value::String(s) => s.contains(&text(&needle)),
                Value::Array(a) => a
                    .iter()
                    .any(|x| compare(BinOp::Eq, x, &needle).is_ok_and(|r| r == Value::Bool(true))),
                Value::Object(m) => m.contains_key(&text(&needle)),
                v => {
                    return fail(format!(
                        "`contains()` needs a string, array or object, got {}",
                        kind(v)
                    ));
                }
            };
            Ok(Value::Bool(found))
        }
        "join" => {
            let sep = if args.len() > 1 {
                text(&arg(1)?)
            } else {
                ",".to_string()
            };
            match arg(0)? {
                Value::Array(a) => Ok(Value::String(
                    a.iter().map(text).collect::<Vec<_>>().join(&sep),
                )),
                v => Ok(Value::String(text(&v))),
            }
        }
        "format" => {
            let Value::String(fmt) = arg(0)? else {
                return fail("`format()` needs a string as its first argument");
            };
            let mut vals = Vec::new();
            for i in 1..args.len() {
                vals.push(text(&arg(i)?));
            }
            format_str(&fmt, &vals).map(Value::String)
        }
        "fromJSON" => {
            let s = text(&arg(0)?);
            serde_json::from_str(&s)
                .map_err(|e| EvalError(format!("`fromJSON()`: not valid JSON: {e}")))
        }
        "toJSON" => Ok(Value::String(arg(0)?.to_string())),
        other => fail(format!("unknown function `{other}`")),
    }
}

/// `format('{0} and {1}', a, b)`; `{{` and `}}` are literal braces.
fn format_str(fmt: &str, vals: &[String]) -> Result<String, EvalError> {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut num = String::new();
                let mut closed = false;
                for d in chars.by_ref() {
                    if d == '}' {
                        closed = true;
                        break;
                    }
                    num.push(d);
                }
                let idx: usize = match (closed, num.trim().parse()) {
                    (true, Ok(i)) => i,
                    _ => {
                        return Err(EvalError(format!(
                            "`format()`: bad placeholder `{{{num}` in `{fmt}`"
                        )));
                    }
                };
                match vals.get(idx) {
                    Some(v) => out.push_str(v),
                    None => {
                        return Err(EvalError(format!(
                            "`format()`: placeholder {{{idx}}} has no argument ({} given)",
                            vals.len()
                        )));
                    }
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}
