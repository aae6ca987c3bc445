//! `retry:` policies, merged field by field over the inherited policy.

use std::time::Duration;

use crate::spec::model::{Backoff, RetryOn, RetryPolicy};
use crate::spec::yaml::{Node, NodeValue};

use super::cx::{Cx, join};

const HOUR: Duration = Duration::from_secs(3600);

/// Parses `node` over `base` (the `defaults.retry` or the built-in policy).
pub(crate) fn retry_policy(
    cx: &mut Cx<'_>,
    node: &Node,
    path: &str,
    base: &RetryPolicy,
) -> RetryPolicy {
    let mut r = base.clone();
    let known = [
        "max_attempts",
        "backoff",
        "initial_delay",
        "max_delay",
        "on",
    ];
    let Some(f) = cx.map(node, path, &known) else {
        return r;
    };
    if let Some(v) = f.get("max_attempts") {
        r.max_attempts = cx
            .u32(v, &join(path, "max_attempts"), 1, 100)
            .unwrap_or(r.max_attempts);
    }
    if let Some(v) = f.get("backoff") {
        match cx
            .choice(v, &join(path, "backoff"), &["fixed", "exponential"])
            .as_deref()
        {
            Some("fixed") => r.backoff = Backoff::Fixed,
            Some(_) => r.backoff = Backoff::Exponential,
            None => {}
        }
    }
    if let Some(v) = f.get("initial_delay") {
        r.initial_delay = cx
            .duration(v, &join(path, "initial_delay"), HOUR)
            .unwrap_or(r.initial_delay);
    }
    if let Some(v) = f.get("max_delay") {
        r.max_delay = cx
            .duration(v, &join(path, "max_delay"), HOUR)
            .unwrap_or(r.max_delay);
    }
    if r.initial_delay > r.max_delay {
        let at = f
            .get("initial_delay")
            .or(f.get("max_delay"))
            .unwrap_or(node);
        let d = cx.at(at, path, "`initial_delay` is longer than `max_delay`");
        d.hint = Some("make `max_delay` at least `initial_delay`".to_string());
    }
    if let Some(v) = f.get("on") {
        let opath = join(path, "on");
        let items: Vec<&Node> = match &v.value {
            NodeValue::Seq(items) => items.iter().collect(),
            NodeValue::Str(_) => vec![v],
            _ => {
                cx.type_error(v, &opath, "a list of `error` | `timeout`");
                Vec::new()
            }
        };
        if matches!(v.value, NodeValue::Seq(ref s) if s.is_empty()) {
            cx.at(v, &opath, "`on` is empty, so the step would never retry")
                .hint = Some("use `max_attempts: 1` to turn retries off".to_string());
        }
        let mut on = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match cx
                .choice(item, &format!("{opath}[{i}]"), &["error", "timeout"])
                .as_deref()
            {
                Some("error") if !on.contains(&RetryOn::Error) => on.push(RetryOn::Error),
                Some("timeout") if !on.contains(&RetryOn::Timeout) => on.push(RetryOn::Timeout),
                _ => {}
            }
        }
        if !on.is_empty() {
            r.on = on;
        }
    }
    r
}
