//! Starting new runs through the handle: a workflow file with its inputs,
//! or an objective for a swarm. The same checks as `lev run` and
//! `lev workflow`, said back as refusals: a participant (the runs browser)
//! shows them instead of a half-made run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::{Engine, EngineError, Submitted};
use crate::protocol::RunId;
use crate::spec::{self, StepKind, Workflow};
use crate::workflow::{self, EngineDeps, Start, SwarmSpec};

impl Engine {
    pub(super) async fn start_workflow(
        &self,
        file: &str,
        given: &BTreeMap<String, String>,
    ) -> Result<Submitted, EngineError> {
        let modes = &self.settings()?.modes;
        let path = Path::new(file);
        let wf = spec::load_workflow(path, modes)
            .map_err(|d| EngineError::Refused(d.to_string().trim_end().to_string()))?;
        let inputs = workflow::resolve_inputs(&wf, given)
            .map_err(|e| EngineError::Refused(format!("{file}: {e}")))?;
        let deps = self.deps_for(file)?;
        provider_for(&wf, &deps)?;
        let run = workflow::start_run(&deps.journal, &wf, inputs, Some(&deps.workspace)).await?;
        self.drive_fresh(&run, deps).await
    }

    pub(super) async fn start_objective(
        &self,
        objective: &str,
        agents: u32,
    ) -> Result<Submitted, EngineError> {
        if agents == 0 || agents > 64 {
            return Err(EngineError::Refused(
                "a swarm has between 1 and 64 agents".into(),
            ));
        }
        let modes = &self.settings()?.modes;
        let spec = SwarmSpec::new(objective.trim(), agents);
        let wf =
            workflow::swarm_workflow(&spec, modes, None, None).map_err(EngineError::Refused)?;
        let deps = self.deps_for("")?;
        if let Err(why) = &deps.provider {
            return Err(EngineError::Refused(format!(
                "a swarm needs an LLM provider, and none can be used: {why}"
            )));
        }
        let run = workflow::start_swarm(&deps.journal, &wf, &spec, Some(&deps.workspace)).await?;
        self.drive_fresh(&run, deps).await
    }

    /// Executes a run just made here, from its first step.
    async fn drive_fresh(
        &self,
        run: &RunId,
        deps: Arc<EngineDeps>,
    ) -> Result<Submitted, EngineError> {
        let (held, lease) = self.take(run).await?;
        Ok(Submitted::Driving(self.drive(
            held,
            lease,
            deps,
            Start::Fresh,
            None,
            None,
        )))
    }
}

/// A workflow with agent steps needs a provider that can be used.
pub fn provider_for(wf: &Workflow, deps: &EngineDeps) -> Result<(), EngineError> {
    match &deps.provider {
        Err(why) if wf.any_step(&|s| matches!(s.kind, StepKind::Agent { .. })) => {
            Err(EngineError::Refused(format!(
                "this workflow has agent steps, but no LLM provider can be used: {why}"
            )))
        }
        _ => Ok(()),
    }
}
