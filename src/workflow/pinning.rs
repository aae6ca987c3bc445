//! Runs are pinned to the definition texts they started with: the root
//! workflow and every child workflow it loads, stored as one blob.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::{self, ModeRegistry, StepKind, Workflow};

#[derive(Debug, Serialize, Deserialize)]
struct Bundle {
    root: PathBuf,
    files: BTreeMap<PathBuf, String>,
}

/// Serializes the texts of `workflow` and all its child workflows.
pub fn bundle(workflow: &Workflow) -> Vec<u8> {
    let mut files = BTreeMap::new();
    collect(workflow, &mut files);
    let b = Bundle {
        root: workflow.source_path.clone(),
        files,
    };
    serde_json::to_vec(&b).unwrap_or_default()
}

fn collect(workflow: &Workflow, files: &mut BTreeMap<PathBuf, String>) {
    files.insert(workflow.source_path.clone(), workflow.source_text.clone());
    for step in &workflow.steps {
        if let StepKind::Workflow { child, .. } = &step.kind {
            collect(child, files);
        }
    }
}

/// Loads the pinned workflow back from a bundle, reading child workflows
/// from the bundle, never from disk.
pub fn load(bytes: &[u8], modes: &ModeRegistry) -> Result<Workflow, String> {
    let b: Bundle =
        serde_json::from_slice(bytes).map_err(|e| format!("corrupt definition bundle: {e}"))?;
    let text = b
        .files
        .get(&b.root)
        .ok_or("definition bundle has no root file")?;
    let read_child = |p: &Path| {
        b.files.get(p).cloned().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not in the pinned definition", p.display()),
            )
        })
    };
    spec::load::load_workflow_with(&b.root, text, modes, &read_child).map_err(|d| d.to_string())
}
