//! What executing a run needs from the outside (`EngineDeps`), built from
//! this process's settings and the run's definition: the provider (or the
//! canned replies shipped beside the workflow), profiles, modes, workspace
//! and options.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, ProviderKind, ProviderSettings};
use crate::journal::Journal;
use crate::spec::ModeRegistry;
use crate::workflow::{EngineDeps, RunOptions};

/// This process's settings for the runs it executes.
#[derive(Clone)]
pub struct RunSettings {
    pub config: Config,
    pub modes: ModeRegistry,
    /// Root for file tools and relative shell `cwd`s; the current
    /// directory when `None`.
    pub workspace: Option<PathBuf>,
    /// How runs talk to their user; `shell_allow` comes from the config.
    pub options: RunOptions,
}

impl RunSettings {
    /// Engine dependencies for a run of the workflow at `workflow_source`,
    /// plus notes for the user (nothing is printed here).
    pub fn deps(
        &self,
        journal: Journal,
        workflow_source: Option<&Path>,
    ) -> Result<(Arc<EngineDeps>, Vec<String>), String> {
        let mut notes = Vec::new();
        let workspace = match &self.workspace {
            Some(w) => w.clone(),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        };
        let workspace = workspace
            .canonicalize()
            .map_err(|e| format!("workspace {}: {e}", workspace.display()))?;
        let mut config = self.config.clone();
        let mut provider = crate::llm::select::build_provider(&config).map_err(|e| e.to_string());
        if let Some(cassette) = workflow_source
            .filter(|w| is_demo(w))
            .and_then(sibling_cassette)
        {
            // A demo run replays the demo's replies, whatever is configured:
            // another provider's answers would not match what it recorded.
            config.provider = ProviderSettings {
                cassette: Some(cassette),
                ..ProviderSettings::of_kind(ProviderKind::Scripted)
            };
            provider = crate::llm::select::build_provider(&config).map_err(|e| e.to_string());
        } else if provider.is_err()
            && std::env::var("LEV_PROVIDER")
                .map(|v| v.trim().is_empty())
                .unwrap_or(true)
            && let Some(cassette) = workflow_source.and_then(sibling_cassette)
        {
            // Nothing configured, but the workflow ships canned replies: replay them.
            notes.push(format!(
                "no LLM provider is configured; replaying {} (scripted provider)",
                cassette.display()
            ));
            config.provider = ProviderSettings {
                cassette: Some(cassette),
                ..ProviderSettings::of_kind(ProviderKind::Scripted)
            };
            provider = crate::llm::select::build_provider(&config).map_err(|e| e.to_string());
        }
        let profiles = crate::llm::Profiles::from_config(&config);
        if let Some(why) = profiles.fallback_problem() {
            notes.push(format!(
                "the fallback provider cannot be used, runs go on without it: {why}"
            ));
        }
        let options = RunOptions {
            shell_allow: config.shell_allow.clone(),
            followups: crate::spec::FollowupPolicy {
                propose: config.followups.propose,
                auto: config.followups.auto,
                auto_modes: config.followups.auto_modes.clone(),
            },
            mcp_servers: config.mcp_servers.clone(),
            terminals: crate::workflow::TerminalOptions {
                // The settings' own (a process's control socket), else the
                // one beside a journal file.
                hook_socket: self.options.terminals.hook_socket.clone().or_else(|| {
                    (!journal.is_shared())
                        .then(|| crate::paths::socket_beside(Path::new(journal.path())))
                }),
                ..self.options.terminals.clone()
            },
            ..self.options.clone()
        };
        let deps = Arc::new(EngineDeps {
            journal,
            provider,
            default_model: config.provider.model.clone(),
            profiles,
            modes: self.modes.clone(),
            workspace,
            options,
        });
        Ok((deps, notes))
    }
}

/// `flow.cassette.yaml` beside `flow.yaml`, when it exists.
/// True when `workflow` is the demo as `lev demo` wrote it (to
/// `<data>/demo/demo.yaml`; the same file elsewhere, as
/// `workflows/demo.yaml` in lev's sources, runs on the configured provider).
fn is_demo(workflow: &Path) -> bool {
    workflow.parent().and_then(Path::file_name) == Some(std::ffi::OsStr::new("demo"))
        && std::fs::read_to_string(workflow).is_ok_and(|text| crate::spec::demo::is_demo(&text))
}

pub fn sibling_cassette(workflow: &Path) -> Option<PathBuf> {
    let stem = workflow.file_stem()?.to_str()?;
    let candidate = workflow.with_file_name(format!("{stem}.cassette.yaml"));
    candidate.is_file().then_some(candidate)
}
