//! Applying a YAML keymap patch: `action_name: "key"` or `[keys]` replaces
//! that action's keys. Every problem is reported with line:col, all at once.

use std::collections::HashMap;

use crate::spec::diagnostics::{Diagnostic, Diagnostics, Severity};
use crate::spec::load::cx::{Cx, closest};
use crate::spec::yaml::{self, NodeValue};

use super::{Action, Key};

/// Where a binding was written, to point a clash at it.
#[derive(Clone, Copy)]
struct At {
    line: u32,
    col: u32,
}

/// Keys per action, in help order.
pub type Bindings = Vec<(Action, Vec<Key>)>;

pub fn apply(
    base: &[(Action, Vec<Key>)],
    text: &str,
    file: &str,
) -> Result<(Bindings, Diagnostics), Diagnostics> {
    let root = yaml::parse_str(file, text).map_err(|d| Diagnostics(vec![*d]))?;
    let mut cx = Cx::new(file.to_string(), text);
    let mut out: Bindings = base.to_vec();
    // Keys set by this patch, with where they were written.
    let mut written: HashMap<Key, (Action, At)> = HashMap::new();
    let entries = match &root.value {
        NodeValue::Null => &[][..],
        NodeValue::Map(m) => m.as_slice(),
        _ => {
            cx.type_error(&root, "", "a mapping");
            return Err(finish(cx.diags));
        }
    };
    let names: Vec<&str> = Action::names().collect();
    let mut seen: HashMap<Action, At> = HashMap::new();
    for (k, v) in entries {
        let Some(action) = Action::from_name(&k.name) else {
            let d = cx.error(
                k.line,
                k.col,
                &k.name,
                format!("unknown action `{}`", k.name),
            );
            d.hint = Some(
                closest(&k.name, &names)
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| "see the help overlay (`?`) for action names".to_string()),
            );
            continue;
        };
        if let Some(prev) = seen.insert(
            action,
            At {
                line: k.line,
                col: k.col,
            },
        ) {
            let d = cx.error(k.line, k.col, &k.name, format!("`{}` is set twice", k.name));
            d.hint = Some(format!("it was first set at line {}", prev.line));
            continue;
        }
        let items: Vec<&yaml::Node> = match &v.value {
            NodeValue::Null => Vec::new(),
            NodeValue::Seq(items) => items.iter().collect(),
            _ => vec![v],
        };
        let mut keys = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = if matches!(v.value, NodeValue::Seq(_)) {
                format!("{}[{i}]", k.name)
            } else {
                k.name.clone()
            };
            let Some(t) = item.scalar_text() else {
                cx.type_error(item, &path, "a key such as `ctrl-c` or `G`");
                continue;
            };
            match Key::parse(&t) {
                Ok(key) => {
                    if keys.contains(&key) {
                        cx.warning(
                            item.line,
                            item.col,
                            &path,
                            format!("`{t}` is listed twice for `{}`", k.name),
                        );
                        continue;
                    }
                    if let Some((other, at)) = written.get(&key) {
                        let d = cx.error(
                            item.line,
                            item.col,
                            &path,
                            format!(
                                "`{key}` is bound to both `{}` and `{}`",
                                other.name(),
                                action.name()
                            ),
                        );
                        d.hint = Some(format!(
                            "`{}` set it at line {}:{}",
                            other.name(),
                            at.line,
                            at.col
                        ));
                        continue;
                    }
                    written.insert(
                        key,
                        (
                            action,
                            At {
                                line: item.line,
                                col: item.col,
                            },
                        ),
                    );
                    keys.push(key);
                }
                Err(why) => {
                    let d = cx.at(item, &path, format!("bad key `{t}`: {why}"));
                    d.expected = Some(
                        "a character (`G`, `?`) or a name (`esc`, `enter`, `space`, `pgup`, `f5`, `left`), with optional `ctrl-`/`alt-`/`shift-`"
                            .to_string(),
                    );
                }
            }
        }
        if let Some(slot) = out.iter_mut().find(|(a, _)| *a == action) {
            slot.1 = keys;
        }
    }
    // A patched key may still be held by an action the patch left alone.
    for (key, (action, at)) in &written {
        let holder = out
            .iter()
            .find(|(a, ks)| a != action && !seen.contains_key(a) && ks.contains(key));
        if let Some((other, _)) = holder {
            let d = cx.error(
                at.line,
                at.col,
                action.name(),
                format!(
                    "`{key}` is bound to both `{}` and `{}`",
                    other.name(),
                    action.name()
                ),
            );
            d.hint = Some(format!(
                "`{}` still has it; rebind that too, e.g. `{}: []` to unbind it",
                other.name(),
                other.name()
            ));
        }
    }
    let diags = cx.diags;
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(finish(diags));
    }
    Ok((out, finish(diags)))
}

fn finish(mut diags: Vec<Diagnostic>) -> Diagnostics {
    diags.sort_by_key(|d| (d.line, d.col));
    Diagnostics(diags)
}
