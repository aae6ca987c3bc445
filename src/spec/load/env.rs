//! What building a step needs from around it (the workflow's defaults and
//! limits, the modes, a way to load a child workflow) and what it leaves
//! for the graph checks: every template as a `Site`. Shared by steps and
//! their outputs and follow-ups.

use crate::spec::expr::Template;
use crate::spec::mode::ModeRegistry;
use crate::spec::model::{Limits, Workflow};
use crate::spec::yaml::Node;

use super::cx::{Cx, closest, some_names};
use super::workflow::StepDefaults;

/// Where a template sits and what it may reference.
pub(crate) struct Site {
    pub template: Template,
    pub line: u32,
    pub col: u32,
    pub offset: Option<usize>,
    pub path: String,
    /// The step it belongs to; `None` for workflow `outputs`.
    pub owner: Option<String>,
    /// Inside `followups:` the step may read its own outputs.
    pub in_followups: bool,
    /// `item` is defined (the follow-up's `spawn`).
    pub item_ok: bool,
}

pub(crate) struct Env<'e> {
    pub defaults: &'e StepDefaults,
    pub limits: &'e Limits,
    pub modes: &'e ModeRegistry,
    pub sites: Vec<Site>,
    /// Loads a child workflow named by `uses:` (relative to the parent).
    pub load_child: &'e mut dyn FnMut(&mut Cx<'_>, &Node, &str, &str) -> Option<Workflow>,
}

impl Env<'_> {
    pub(super) fn site(&mut self, t: &Template, node: &Node, path: &str, owner: &str) {
        self.sites.push(Site {
            template: t.clone(),
            line: node.line,
            col: node.col,
            offset: node.offset,
            path: path.to_string(),
            owner: Some(owner.to_string()),
            in_followups: false,
            item_ok: false,
        });
    }

    pub(super) fn template(
        &mut self,
        cx: &mut Cx<'_>,
        node: &Node,
        path: &str,
        owner: &str,
    ) -> Option<Template> {
        let t = cx.template(node, path)?;
        self.site(&t, node, path, owner);
        Some(t)
    }
}

pub(crate) fn check_mode(
    cx: &mut Cx<'_>,
    node: &Node,
    path: &str,
    modes: &ModeRegistry,
) -> Option<String> {
    let m = cx.str(node, path)?;
    if modes.contains(&m) {
        return Some(m);
    }
    let names: Vec<&str> = modes.modes.keys().map(String::as_str).collect();
    let d = cx.at(node, path, format!("unknown mode `{m}`"));
    d.hint = Some(match closest(&m, &names) {
        Some(c) => format!("did you mean `{c}`?"),
        None if names.is_empty() => "no modes are loaded".to_string(),
        None => format!("known modes: {}", some_names(&names)),
    });
    None
}
