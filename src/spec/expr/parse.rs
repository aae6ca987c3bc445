//! Tokenizer and recursive-descent parser for the inside of `${{ }}`.
//! Offsets are byte offsets into the whole template's raw text, so errors
//! and references can point at the exact place.

use serde_json::Value;

use super::ExprError;
use super::ast::{BinOp, Expr, Root, Seg};

/// Deepest parenthesis / `!` / index / call nesting we accept: the parser
/// recurses once per level, so this bounds its stack use.
pub(crate) const MAX_NESTING: usize = 64;

/// Most tokens one `${{ }}` hole may hold. Keeps every tree small enough
/// that building, walking, cloning and dropping it stay cheap, whatever the
/// file says (a 50,000-operand `||` chain is refused here, not evaluated).
pub(crate) const MAX_TOKENS: usize = 4096;

/// Deepest expression tree we accept. Evaluation and the derived
/// `Clone`/`Drop`/`PartialEq` recurse once per level, so this bounds their
/// stack use (tokio worker threads have 2 MiB).
pub(crate) const MAX_DEPTH: usize = 256;

pub const FUNCTIONS: &[(&str, usize, usize)] = &[
    // (name, min args, max args)
    ("success", 0, 0),
    ("failure", 0, 0),
    ("always", 0, 0),
    ("cancelled", 0, 0),
    ("length", 1, 1),
    ("contains", 2, 2),
    ("join", 1, 2),
    ("format", 1, 32),
    ("fromJSON", 1, 1),
    ("toJSON", 1, 1),
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(Value),
    Str(String),
    Dot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Not,
    Op(BinOp),
}

fn err(message: impl Into<String>, offset: usize) -> ExprError {
    ExprError {
        message: message.into(),
        offset,
    }
}

/// Splits `src` (which starts at byte `base` of the raw template) into tokens.
fn lex(src: &str, base: usize) -> Result<Vec<(Tok, usize)>, ExprError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let at = base + i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if out.len() >= MAX_TOKENS {
            return Err(err(
                format!(
                    "expression is too long: more than {MAX_TOKENS} tokens in one `${{{{ }}}}` (split it up)"
                ),
                at,
            ));
        }
        let two = src.get(i..i + 2).unwrap_or("");
        let op2 = match two {
            "==" => Some(BinOp::Eq),
            "!=" => Some(BinOp::Ne),
            "<=" => Some(BinOp::Le),
            ">=" => Some(BinOp::Ge),
            "&&" => Some(BinOp::And),
            "||" => Some(BinOp::Or),
            _ => None,
        };
        if let Some(op) = op2 {
            out.push((Tok::Op(op), at));
            i += 2;
            continue;
        }
        let single = match c {
            b'.' => Some(Tok::Dot),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b',' => Some(Tok::Comma),
            b'!' => Some(Tok::Not),
            b'<' => Some(Tok::Op(BinOp::Lt)),
            b'>' => Some(Tok::Op(BinOp::Gt)),
            _ => None,
        };
        if let Some(t) = single {
            // `.5` is a number, not a dot.
            if !(t == Tok::Dot
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                && !prev_is_value(&out))
            {
                out.push((t, at));
                i += 1;
                continue;
            }
        }
        if c == b'\'' || c == b'"' {
            let (s, len) = lex_string(&src[i..], at)?;
            out.push((Tok::Str(s), at));
            i += len;
            continue;
        }
        if c.is_ascii_digit()
            || c == b'.'
            || (c == b'-'
                && bytes
                    .get(i + 1)
                    .is_some_and(|b| b.is_ascii_digit() || *b == b'.'))
        {
            let start = i;
            i += 1;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_')
            {
                i += 1;
            }
            let text = &src[start..i];
            let num = if let Ok(n) = text.parse::<i64>() {
                Value::from(n)
            } else if let Some(n) = text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Value::Number(n)
            } else {
                return Err(err(format!("invalid number `{text}`"), at));
            };
            out.push((Tok::Num(num), at));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'-')
            {
                i += 1;
            }
            out.push((Tok::Ident(src[start..i].to_string()), at));
            continue;
        }
        if c == b'{' || c == b'}' {
            return Err(err("unexpected brace inside `${{ }}`", at));
        }
        let ch = src[i..].chars().next().unwrap_or('?');
        return Err(err(format!("unexpected character `{ch}`"), at));
    }
    Ok(out)
}

fn prev_is_value(out: &[(Tok, usize)]) -> bool {
    matches!(
        out.last(),
        Some((
            Tok::Ident(_) | Tok::RBracket | Tok::RParen | Tok::Str(_) | Tok::Num(_),
            _
        ))
    )
}

/// A quoted string at the start of `s`: `'..'` (`''` is a quote) or `".."`
/// (backslash escapes). Returns the value and the bytes consumed.
fn lex_string(s: &str, at: usize) -> Result<(String, usize), ExprError> {
    let mut chars = s.char_indices();
    let quote = match chars.next() {
        Some((_, q)) => q,
        None => return Err(err("unterminated string", at)),
    };
    let mut out = String::new();
    while let Some((i, ch)) = chars.next() {
        if ch == quote {
            if quote == '\'' && s[i + 1..].starts_with('\'') {
                chars.next();
                out.push('\'');
                continue;
            }
            return Ok((out, i + 1));
        }
        if ch == '\\' && quote == '"' {
            match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, other)) => out.push(other),
                None => break,
            }
            continue;
        }
        out.push(ch);
    }
    Err(err("unterminated string", at))
}

/// Parses one expression; `src` starts at byte `base` of the template and
/// `end` is the offset reported for "unexpected end".
pub fn parse_expr(src: &str, base: usize) -> Result<Expr, ExprError> {
    let toks = lex(src, base)?;
    let end = base + src.len();
    if toks.is_empty() {
        return Err(err("empty expression in `${{ }}`", base));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end,
        depth: 0,
    };
    let e = p.or()?;
    if let Some((t, at)) = p.toks.get(p.pos) {
        return Err(err(
            format!("unexpected {} after the expression", describe(t)),
            *at,
        ));
    }
    let d = depth(&e);
    if d > MAX_DEPTH {
        return Err(err(
            format!("expression nests too deeply: {d} levels of operators, at most {MAX_DEPTH}"),
            base,
        ));
    }
    Ok(e)
}

/// The depth of a tree, without recursion (the tree is not yet known to be
/// shallow).
fn depth(root: &Expr) -> usize {
    let mut max = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        let segs: &[Seg] = match e {
            Expr::Lit(_) => &[],
            Expr::Path { segs, .. } => segs,
            Expr::Not(a) => {
                stack.push((a, d + 1));
                &[]
            }
            Expr::Bin(_, a, b) => {
                stack.push((a, d + 1));
                stack.push((b, d + 1));
                &[]
            }
            Expr::Call { args, .. } => {
                stack.extend(args.iter().map(|a| (a, d + 1)));
                &[]
            }
            Expr::Access(base, segs) => {
                stack.push((base, d + 1));
                segs
            }
        };
        for s in segs {
            if let Seg::Index(i) = s {
                stack.push((i, d + 1));
            }
        }
    }
    max
}

/// `a || b || c ...` as a balanced tree. `&&` and `||` return the first
/// operand that decides (or the last), evaluating left to right, so any
/// grouping gives the same value and the same evaluation order; a balanced
/// one keeps long chains shallow.
fn balanced(op: BinOp, mut operands: Vec<Expr>) -> Expr {
    if operands.len() <= 1 {
        return match operands.pop() {
            Some(e) => e,
            None => Expr::Lit(Value::Null),
        };
    }
    let right = operands.split_off(operands.len() / 2);
    Expr::Bin(
        op,
        Box::new(balanced(op, operands)),
        Box::new(balanced(op, right)),
    )
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Num(n) => format!("number `{n}`"),
        Tok::Str(_) => "string".to_string(),
        Tok::Dot => "`.`".to_string(),
        Tok::LBracket => "`[`".to_string(),
        Tok::RBracket => "`]`".to_string(),
        Tok::LParen => "`(`".to_string(),
        Tok::RParen => "`)`".to_string(),
        Tok::Comma => "`,`".to_string(),
        Tok::Not => "`!`".to_string(),
        Tok::Op(_) => "operator".to_string(),
    }
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|(_, a)| *a).unwrap_or(self.end)
    }
    fn next(&mut self) -> Option<(Tok, usize)> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }
    fn expect(&mut self, want: Tok, what: &str) -> Result<(), ExprError> {
        match self.next() {
            Some((t, _)) if t == want => Ok(()),
            Some((t, at)) => Err(err(format!("expected {what}, found {}", describe(&t)), at)),
            None => Err(err(
                format!("expected {what}, found the end of the expression"),
                self.end,
            )),
        }
    }
    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(err(
                format!(
                    "expression nests too deeply: more than {MAX_NESTING} levels of parentheses, `!`, indexes or calls"
                ),
                self.at(),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let mut operands = vec![self.and()?];
        while self.peek() == Some(&Tok::Op(BinOp::Or)) {
            self.pos += 1;
            operands.push(self.and()?);
        }
        self.depth -= 1;
        Ok(balanced(BinOp::Or, operands))
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut operands = vec![self.cmp()?];
        while self.peek() == Some(&Tok::Op(BinOp::And)) {
            self.pos += 1;
            operands.push(self.cmp()?);
        }
        Ok(balanced(BinOp::And, operands))
    }

    fn cmp(&mut self) -> Result<Expr, ExprError> {
        let mut lhs = self.unary()?;
        while let Some(Tok::Op(op)) = self.peek() {
            let op = *op;
            if matches!(op, BinOp::And | BinOp::Or) {
                break;
            }
            self.pos += 1;
            let rhs = self.unary()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let Some((tok, at)) = self.next() else {
            return Err(err(
                "expected a value, found the end of the expression",
                self.end,
            ));
        };
        match tok {
            Tok::Num(n) => Ok(Expr::Lit(n)),
            Tok::Str(s) => Ok(Expr::Lit(Value::String(s))),
            Tok::LParen => {
                let e = self.or()?;
                self.expect(Tok::RParen, "`)`")?;
                self.postfix(e)
            }
            Tok::Ident(name) => self.ident(name, at),
            other => Err(err(
                format!("expected a value, found {}", describe(&other)),
                at,
            )),
        }
    }

    fn ident(&mut self, name: String, at: usize) -> Result<Expr, ExprError> {
        match name.as_str() {
            "true" => return Ok(Expr::Lit(Value::Bool(true))),
            "false" => return Ok(Expr::Lit(Value::Bool(false))),
            "null" => return Ok(Expr::Lit(Value::Null)),
            _ => {}
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let call = self.call(name, at)?;
            return self.postfix(call);
        }
        let Some(root) = Root::from_name(&name) else {
            return Err(err(
                format!(
                    "unknown name `{name}`: expected `inputs`, `steps`, `whisper`, `item`, `run`, a literal or a function call"
                ),
                at,
            ));
        };
        let segs = self.segments()?;
        check_root_shape(root, &segs, at)?;
        Ok(Expr::Path {
            root,
            segs,
            offset: at,
        })
    }

    /// `.key` and `[expr]` segments following a value.
    fn segments(&mut self) -> Result<Vec<Seg>, ExprError> {
        let mut segs = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::Dot) => {
                    self.pos += 1;
                    match self.next() {
                        Some((Tok::Ident(k), _)) => segs.push(Seg::Key(k)),
                        Some((t, a)) => {
                            return Err(err(
                                format!("expected a name after `.`, found {}", describe(&t)),
                                a,
                            ));
                        }
                        None => return Err(err("expected a name after `.`", self.end)),
                    }
                }
                Some(Tok::LBracket) => {
                    self.pos += 1;
                    let idx = self.or()?;
                    self.expect(Tok::RBracket, "`]`")?;
                    segs.push(Seg::Index(Box::new(idx)));
                }
                _ => break,
            }
        }
        Ok(segs)
    }

    fn postfix(&mut self, base: Expr) -> Result<Expr, ExprError> {
        let segs = self.segments()?;
        if segs.is_empty() {
            Ok(base)
        } else {
            Ok(Expr::Access(Box::new(base), segs))
        }
    }

    fn call(&mut self, name: String, at: usize) -> Result<Expr, ExprError> {
        let Some(&(_, min, max)) = FUNCTIONS.iter().find(|(n, _, _)| *n == name) else {
            let known: Vec<&str> = FUNCTIONS.iter().map(|(n, _, _)| *n).collect();
            return Err(err(
                format!("unknown function `{name}` (known: {})", known.join(", ")),
                at,
            ));
        };
        let mut args = Vec::new();
        if self.peek() == Some(&Tok::RParen) {
            self.pos += 1;
        } else {
            loop {
                args.push(self.or()?);
                match self.next() {
                    Some((Tok::Comma, _)) => continue,
                    Some((Tok::RParen, _)) => break,
                    Some((t, a)) => {
                        return Err(err(
                            format!("expected `,` or `)`, found {}", describe(&t)),
                            a,
                        ));
                    }
                    None => return Err(err("expected `)`", self.end)),
                }
            }
        }
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(err(
                format!("`{name}()` takes {want} argument(s), got {}", args.len()),
                at,
            ));
        }
        Ok(Expr::Call {
            name,
            args,
            offset: at,
        })
    }
}

/// `steps` must be `steps.<id>.outputs.<name>`; `inputs`, `whisper` and `run`
/// need a key. Checked at parse time so validation sees clean references.
fn check_root_shape(root: Root, segs: &[Seg], at: usize) -> Result<(), ExprError> {
    use super::ast::static_key;
    match root {
        Root::Item => Ok(()),
        Root::Steps => {
            let ok = segs.len() >= 3
                && static_key(&segs[0]).is_some()
                && static_key(&segs[1]) == Some("outputs")
                && static_key(&segs[2]).is_some();
            if ok {
                Ok(())
            } else {
                Err(err("expected `steps.<id>.outputs.<name>`", at))
            }
        }
        Root::Inputs | Root::Whisper | Root::Run => {
            if segs.first().and_then(static_key).is_some() {
                Ok(())
            } else {
                Err(err(format!("expected `{}.<name>`", root.name()), at))
            }
        }
    }
}
