//! The text `lev template save` (and the workbench's accepted suggestion)
//! writes for a run: a swarm's plan as it ran (the accepted plan with
//! FlowMind's revisions applied) as a workflow, or the workflow a
//! succeeded run was pinned to, renamed. Pure: the caller reads the run's
//! record, events and pinned text.

use super::{plan, template};
use crate::journal::RunMeta;
use crate::protocol::{Event, Recorded, RunStatus};

/// Why a run makes no template: the user's mistake (`usage`: a run that
/// failed, a swarm never planned) or a damaged record.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub usage: bool,
    pub message: String,
}

/// The template's text for `meta`'s run named `name` from its `events`
/// (a swarm's plan), or `None` when it is the workflow the run was pinned
/// to (`renamed`).
pub fn plan_template(
    meta: &RunMeta,
    events: &[Recorded],
    name: &str,
) -> Result<Option<String>, Refused> {
    let run = meta.id.as_str();
    let accepted = events.iter().rev().find_map(|r| match &r.event {
        Event::PlanAccepted {
            objective, plan, ..
        } => Some((objective.clone(), plan)),
        _ => None,
    });
    let Some((objective, value)) = accepted else {
        // A swarm without an accepted plan is pinned to its planning step
        // only (`id: swarm`): nothing worth keeping.
        let refused = if meta.workflow_id == crate::workflow::swarm::WORKFLOW_ID {
            Some(format!(
                "run {run} is a swarm whose plan was never accepted: it has no plan to save"
            ))
        } else if meta.status != RunStatus::Succeeded {
            Some(format!(
                "run {run} is {}: only a succeeded run (or a swarm whose plan was accepted) makes a template",
                meta.status.as_str()
            ))
        } else {
            None
        };
        return match refused {
            Some(message) => Err(Refused {
                usage: true,
                message,
            }),
            None => Ok(None),
        };
    };
    let unreadable = |what: &str, problems: Vec<String>| Refused {
        usage: false,
        message: format!(
            "the {what} of run {run} cannot be read:\n  {}",
            problems.join("\n  ")
        ),
    };
    let mut ran = plan::parse(value).map_err(|p| unreadable("accepted plan", p))?;
    // The plan as it ran: FlowMind's revisions applied, in order.
    for r in events {
        if let Event::PlanRevised { replaces, plan, .. } = &r.event
            && !replaces.is_empty()
        {
            let revised = plan::parse(plan).map_err(|p| unreadable("revised plan", p))?;
            ran = plan::with_revision(&ran, replaces, &revised);
        }
    }
    Ok(Some(template::workflow_yaml(name, &objective, &ran)))
}

/// A workflow's text with its top-level `id:` and `name:` lines naming the
/// template, after a comment saying where it came from; lines in another
/// form (a flow mapping) are kept as they are.
pub fn renamed(text: &str, name: &str, run: &str) -> String {
    let id = template::safe_name(name).unwrap_or_else(|| "template".to_string());
    let mut out = format!(
        "# Saved by `lev template save` from run {run}; run it with `lev run <this file>`.\n"
    );
    for line in text.lines() {
        if line.starts_with("id:") {
            out.push_str(&format!("id: {id}\n"));
        } else if line.starts_with("name:") {
            out.push_str(&format!(
                "name: {}\n",
                serde_json::Value::String(name.trim().to_string())
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
