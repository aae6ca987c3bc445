use serde_json::json;

use super::*;

fn ctx() -> EvalContext {
    let mut c = EvalContext::default();
    c.inputs.insert("feature".into(), json!("login"));
    c.inputs.insert("n".into(), json!(3));
    c.whisper.insert("token_store".into(), json!("cookie"));
    let mut outputs = BTreeMap::new();
    outputs.insert("plan".into(), json!({"steps": ["a", "b"], "ok": true}));
    outputs.insert("must_fix".into(), json!([{"title": "t1"}, {"title": "t2"}]));
    outputs.insert("raw".into(), json!("{\"x\": 1}"));
    c.steps.insert(
        "architect".into(),
        StepView {
            succeeded: true,
            outputs: outputs.into(),
        },
    );
    c.item = Some(json!({"title": "XSS", "location": "a.rs:3"}));
    c.run.insert("id".into(), json!("r1"));
    c
}

fn ev(src: &str) -> Value {
    Template::parse(src).unwrap().eval(&ctx()).unwrap()
}

fn ev_err(src: &str) -> String {
    Template::parse(src).unwrap().eval(&ctx()).unwrap_err().0
}

fn parse_err(src: &str) -> ExprError {
    Template::parse(src).unwrap_err()
}

#[test]
fn plain_text_and_bare_braces_are_literal() {
    assert_eq!(ev("hello {world} { }"), json!("hello {world} { }"));
    assert!(!Template::parse("a {b}").unwrap().has_holes());
}

#[test]
fn lone_hole_keeps_json_type() {
    assert_eq!(ev("${{ inputs.n }}"), json!(3));
    assert_eq!(
        ev("${{ steps.architect.outputs.plan }}"),
        json!({"steps": ["a", "b"], "ok": true})
    );
    assert_eq!(ev("${{ null }}"), json!(null));
}

#[test]
fn mixed_text_concatenates_non_strings_as_json() {
    assert_eq!(
        ev("n=${{ inputs.n }} f=${{inputs.feature}} p=${{ steps.architect.outputs.plan.steps }}"),
        json!("n=3 f=login p=[\"a\",\"b\"]")
    );
}

#[test]
fn paths_with_index_and_quoted_keys() {
    assert_eq!(
        ev("${{ steps.architect.outputs.must_fix[1].title }}"),
        json!("t2")
    );
    assert_eq!(
        ev("${{ steps.architect.outputs['plan']['ok'] }}"),
        json!(true)
    );
    assert_eq!(
        ev("${{ item.title }} at ${{ item[\"location\"] }}"),
        json!("XSS at a.rs:3")
    );
    assert_eq!(ev("${{ whisper.token_store }}"), json!("cookie"));
    assert_eq!(ev("${{ run.id }}"), json!("r1"));
}

#[test]
fn operators_and_precedence() {
    assert_eq!(ev("${{ inputs.n == 3 }}"), json!(true));
    assert_eq!(ev("${{ inputs.n != 3 }}"), json!(false));
    assert_eq!(ev("${{ inputs.n < 4 && inputs.n >= 3 }}"), json!(true));
    assert_eq!(
        ev("${{ inputs.n > 4 || inputs.feature == 'login' }}"),
        json!(true)
    );
    assert_eq!(ev("${{ !(inputs.n <= 2) }}"), json!(true));
    assert_eq!(ev("${{ false || 'x' }}"), json!("x"));
    assert_eq!(ev("${{ true && false || true }}"), json!(true));
    assert_eq!(ev("${{ 'it''s' }}"), json!("it's"));
    assert_eq!(ev("${{ 1.5 > 1 }}"), json!(true));
    assert_eq!(ev("${{ -2 < 0 }}"), json!(true));
}

#[test]
fn status_functions_follow_context() {
    let mut c = ctx();
    let t = Template::parse("${{ success() }}").unwrap();
    assert_eq!(t.eval(&c).unwrap(), json!(true));
    c.needs_failed = true;
    assert_eq!(t.eval(&c).unwrap(), json!(false));
    let f = Template::parse("${{ failure() && always() }}").unwrap();
    assert_eq!(f.eval(&c).unwrap(), json!(true));
    c.needs_cancelled = true;
    assert_eq!(
        Template::parse("${{ cancelled() }}")
            .unwrap()
            .eval(&c)
            .unwrap(),
        json!(true)
    );
}

#[test]
fn value_functions() {
    assert_eq!(
        ev("${{ length(steps.architect.outputs.must_fix) }}"),
        json!(2)
    );
    assert_eq!(ev("${{ length('héllo') }}"), json!(5));
    assert_eq!(ev("${{ contains(inputs.feature, 'log') }}"), json!(true));
    assert_eq!(
        ev("${{ contains(steps.architect.outputs.plan.steps, 'b') }}"),
        json!(true)
    );
    assert_eq!(
        ev("${{ join(steps.architect.outputs.plan.steps, ' + ') }}"),
        json!("a + b")
    );
    assert_eq!(
        ev("${{ join(steps.architect.outputs.plan.steps) }}"),
        json!("a,b")
    );
    assert_eq!(
        ev("${{ format('{0}-{1} {{x}}', inputs.feature, inputs.n) }}"),
        json!("login-3 {x}")
    );
    assert_eq!(
        ev("${{ fromJSON(steps.architect.outputs.raw) }}"),
        json!({"x": 1})
    );
    assert_eq!(
        ev("${{ toJSON(steps.architect.outputs.plan.steps) }}"),
        json!("[\"a\",\"b\"]")
    );
}

#[test]
fn calls_and_parentheses_can_be_indexed() {
    assert_eq!(
        ev("${{ fromJSON(steps.architect.outputs.raw).x }}"),
        json!(1)
    );
    assert_eq!(
        ev("${{ (steps.architect.outputs.must_fix)[0]['title'] }}"),
        json!("t1")
    );
    assert!(ev_err("${{ fromJSON('[1]')[3] }}").contains("out of range"));
    let t = Template::parse("${{ fromJSON(inputs.j).items[inputs.i] }}").unwrap();
    assert_eq!(
        t.references(),
        vec![Reference::Input("j".into()), Reference::Input("i".into())]
    );
}

#[test]
fn missing_things_are_errors_naming_them() {
    assert!(ev_err("${{ inputs.nope }}").contains("input `nope` is not set"));
    assert!(ev_err("${{ steps.coder.outputs.files }}").contains("step `coder`"));
    assert!(ev_err("x ${{ steps.architect.outputs.files }}").contains("no output `files`"));
    assert!(ev_err("${{ item.nope }}").contains("no key `nope` in `item.nope`"));
    assert!(ev_err("${{ steps.architect.outputs.must_fix[5] }}").contains("out of range"));
    assert!(ev_err("${{ whisper.other }}").contains("whisper answer `other`"));
    let mut c = ctx();
    c.item = None;
    let e = Template::parse("${{ item }}")
        .unwrap()
        .eval(&c)
        .unwrap_err();
    assert!(e.0.contains("only defined inside `followups`"));
    assert!(ev_err("${{ format('{2}', 1) }}").contains("no argument"));
    assert!(ev_err("${{ fromJSON('{') }}").contains("not valid JSON"));
    assert!(ev_err("${{ inputs.n < 'a' }}").contains("cannot order"));
}

#[test]
fn parse_errors_carry_byte_offsets() {
    let e = parse_err("abc ${{ inputs.x");
    assert_eq!(e.offset, 4);
    assert!(e.message.contains("not closed"));
    let e = parse_err("ab ${{ foo.bar }}");
    assert_eq!(e.offset, 7);
    assert!(e.message.contains("unknown name `foo`"));
    let e = parse_err("${{ nope(1) }}");
    assert_eq!(e.offset, 4);
    assert!(e.message.contains("unknown function `nope`"));
    let e = parse_err("${{ length() }}");
    assert!(e.message.contains("takes 1 argument"));
    let e = parse_err("${{ inputs.a inputs.b }}");
    assert_eq!(e.offset, 13);
    let e = parse_err("${{ }}");
    assert!(e.message.contains("empty expression"));
    let e = parse_err("${{ 'abc }}");
    assert!(e.message.contains("not closed") || e.message.contains("unterminated"));
    let e = parse_err("${{ steps.a.plan }}");
    assert!(e.message.contains("steps.<id>.outputs.<name>"));
    let e = parse_err("${{ (inputs.a }}");
    assert!(e.message.contains("`)`"));
    let deep = format!("${{{{ {}1{} }}}}", "(".repeat(200), ")".repeat(200));
    assert!(parse_err(&deep).message.contains("too deeply"));
}

#[test]
fn references_are_listed_with_offsets() {
    let t = Template::parse(
        "Fix ${{ item.title }} in ${{ steps.sec.outputs.must_fix }} for ${{ inputs.f }}/${{ whisper.q }} ${{ run.id }}",
    )
    .unwrap();
    let refs = t.references();
    assert_eq!(
        refs,
        vec![
            Reference::Item,
            Reference::StepOutput {
                step: "sec".into(),
                output: "must_fix".into()
            },
            Reference::Input("f".into()),
            Reference::Whisper("q".into()),
            Reference::Run("id".into()),
        ]
    );
    let located = t.located_references();
    assert_eq!(&t.raw()[located[1].offset..located[1].offset + 5], "steps");
    assert_eq!(located[1].text, "steps.sec.outputs.must_fix");
    let (s, e) = located[0].hole;
    assert_eq!(&t.raw()[s..e], "${{ item.title }}");
}

#[test]
fn references_inside_functions_and_indexes() {
    let t = Template::parse(
        "${{ length(steps.a.outputs.x[inputs.i]) > 0 && contains(whisper.w, 'y') }}",
    )
    .unwrap();
    let refs = t.references();
    assert!(refs.contains(&Reference::StepOutput {
        step: "a".into(),
        output: "x".into()
    }));
    assert!(refs.contains(&Reference::Input("i".into())));
    assert!(refs.contains(&Reference::Whisper("w".into())));
}

#[test]
fn braces_inside_strings_do_not_close_holes() {
    assert_eq!(ev("${{ format('{{0}} {0}', 'x') }}!"), json!("{0} x!"));
    assert_eq!(ev("${{ '}}' }}"), json!("}}"));
}
