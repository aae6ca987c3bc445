//! Hostile expressions: size and depth limits, and property tests that no
//! input makes the parser or evaluator panic or overflow the stack.

use proptest::prelude::*;
use serde_json::json;

use super::parse::{MAX_DEPTH, MAX_NESTING, MAX_TOKENS};
use super::*;

fn ctx() -> EvalContext {
    let mut c = EvalContext::default();
    c.inputs.insert("a".into(), json!(""));
    c.inputs.insert("b".into(), json!(0));
    c.inputs.insert("c".into(), json!("yes"));
    c.inputs.insert("list".into(), json!([1, "two", null]));
    c
}

fn chain(op: &str, n: usize) -> String {
    let ops: Vec<&str> = (0..n)
        .map(|i| ["inputs.a", "inputs.b", "false"][i % 3])
        .collect();
    format!("${{{{ {} }}}}", ops.join(op))
}

/// Runs `f` on a thread with a small stack, so a recursion that would only
/// overflow a tokio worker (2 MiB) overflows here too.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn long_or_chains_within_the_token_limit_evaluate_left_to_right() {
    // 900 operands (about 3,000 tokens): a balanced tree, far under MAX_DEPTH
    // although a left-leaning one would be 900 levels deep.
    let mut src = chain(" || ", 900);
    src = src.replace(" }}", " || inputs.c }}");
    let v = on_small_stack(move || Template::parse(&src).unwrap().eval(&ctx()).unwrap());
    assert_eq!(v, json!("yes"));
    // All falsy: the value is the last operand, as with a left-to-right chain.
    let src = chain(" || ", 900);
    let v = on_small_stack(move || Template::parse(&src).unwrap().eval(&ctx()).unwrap());
    // Operand 899 is `false` (899 % 3 == 2).
    assert_eq!(v, json!(false));
}

#[test]
fn and_chain_returns_the_first_falsy_operand() {
    let src = "${{ inputs.c && inputs.c && inputs.b && inputs.a }}";
    assert_eq!(
        Template::parse(src).unwrap().eval(&ctx()).unwrap(),
        json!(0)
    );
    let src = "${{ inputs.c && inputs.c && inputs.c }}";
    assert_eq!(
        Template::parse(src).unwrap().eval(&ctx()).unwrap(),
        json!("yes")
    );
}

#[test]
fn chains_past_the_token_limit_are_refused_with_the_limit() {
    for n in [10_000, 50_000] {
        for op in [" || ", " && ", " == "] {
            let src = chain(op, n);
            let e = on_small_stack(move || Template::parse(&src).unwrap_err());
            assert!(
                e.message
                    .contains(&format!("more than {MAX_TOKENS} tokens")),
                "{}",
                e.message
            );
        }
    }
}

#[test]
fn deep_comparison_chains_are_refused_by_depth() {
    // `a == b == c ...` groups to the left; 600 operands stay under the
    // token limit but not under the depth limit.
    let src = chain(" == ", 600);
    let e = on_small_stack(move || Template::parse(&src).unwrap_err());
    assert!(
        e.message.contains(&format!("at most {MAX_DEPTH}")),
        "{}",
        e.message
    );
}

#[test]
fn deep_parentheses_and_negations_are_refused_by_nesting() {
    for (open, close) in [
        ("(", ")"),
        ("!", ""),
        ("length(", ")"),
        ("inputs.list[", "]"),
    ] {
        for n in [MAX_NESTING + 1, 100_000] {
            let src = format!("${{{{ {}1{} }}}}", open.repeat(n), close.repeat(n));
            let e = on_small_stack(move || Template::parse(&src).unwrap_err());
            assert!(
                e.message.contains("nests too deeply") || e.message.contains("too long"),
                "{open}: {}",
                e.message
            );
        }
    }
    // Just inside the limit still parses and evaluates.
    let n = MAX_NESTING - 1;
    let src = format!("${{{{ {}1{} }}}}", "(".repeat(n), ")".repeat(n));
    let v = on_small_stack(move || Template::parse(&src).unwrap().eval(&ctx()).unwrap());
    assert_eq!(v, json!(1));
}

/// Pieces random expressions are made of: valid tokens, nesting and junk.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "inputs.a",
        "inputs.b",
        "inputs.c",
        "inputs.list",
        "inputs.nope",
        "steps.x.outputs.y",
        "item",
        "run.id",
        "whisper.q",
        "1",
        "-2.5",
        "'s'",
        "\"q\\\"\"",
        "true",
        "null",
        "(",
        ")",
        "[",
        "]",
        "[0]",
        ".",
        ".k",
        ",",
        "!",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "length(",
        "contains(",
        "join(",
        "format(",
        "fromJSON(",
        "toJSON(",
        "success()",
        "failure()",
        "always()",
        "}",
        "{",
        "$",
        "'",
        " ",
        "é",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_expressions_never_panic(pieces in prop::collection::vec(piece(), 0..60)) {
        let src = format!("${{{{ {} }}}}", pieces.join(" "));
        if let Ok(t) = Template::parse(&src) {
            let _ = t.eval(&ctx());
            let _ = t.located_references();
            let _ = t.steps_read();
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn deep_random_expressions_never_overflow(
        pieces in prop::collection::vec(piece(), 0..40),
        open in prop::sample::select(vec!["(", "!", "length(", "inputs.list[", "!("]),
        depth in 0usize..200,
        repeat in 1usize..200,
        op in prop::sample::select(vec![" || ", " && ", " == ", " < "]),
    ) {
        let inner = pieces.join(" ");
        let close = match open { "(" | "length(" | "!(" => ")", "inputs.list[" => "]", _ => "" };
        let operand = format!("{}{inner}{}", open.repeat(depth), close.repeat(depth));
        let body = vec![operand; repeat].join(op);
        let src = format!("${{{{ {body} }}}}");
        on_small_stack(move || {
            if let Ok(t) = Template::parse(&src) {
                let _ = t.eval(&ctx());
                let _ = t.located_references();
                let _ = t.clone() == t;
            }
        });
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(raw in ".{0,200}") {
        if let Ok(t) = Template::parse(&raw) {
            let _ = t.eval(&ctx());
        }
    }
}
