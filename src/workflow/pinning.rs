//! Runs are pinned to the definition they started with: the texts of the
//! root workflow and every child workflow it loads, and the validated model
//! built from them, stored as one blob.
//!
//! Resume reads the model back instead of parsing and validating the YAML
//! again (for a 10,000-step workflow that is most of what resuming costs).
//! The texts stay the source of truth: a bundle whose model this lev cannot
//! read (written by an older lev, or before models were pinned) is loaded
//! from its texts, never from disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::swarm::SwarmSpec;
use crate::spec::{self, ModeRegistry, StepKind, Workflow};

/// The version of the serialized model; a bundle with another version is
/// loaded from its texts.
const MODEL_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Bundle {
    root: PathBuf,
    files: BTreeMap<PathBuf, String>,
    /// What a swarm run (`lev workflow "objective"`) was started with.
    #[serde(default)]
    swarm: Option<SwarmSpec>,
}

/// What a run is pinned to.
#[derive(Debug)]
pub struct Pinned {
    pub workflow: Workflow,
    pub swarm: Option<SwarmSpec>,
}

#[derive(Serialize)]
struct BundleOut<'a> {
    root: &'a Path,
    files: BTreeMap<PathBuf, String>,
    model_version: u32,
    model: &'a Workflow,
    #[serde(skip_serializing_if = "Option::is_none")]
    swarm: Option<&'a SwarmSpec>,
}

#[derive(Deserialize)]
struct BundleIn {
    files: BTreeMap<PathBuf, String>,
    model_version: u32,
    model: Workflow,
    #[serde(default)]
    swarm: Option<SwarmSpec>,
}

/// Serializes the texts of `workflow` and all its child workflows, and the
/// model itself.
pub fn bundle(workflow: &Workflow) -> Vec<u8> {
    bundle_with(workflow, None)
}

/// `bundle`, for a swarm run: with what the swarm was started with.
pub fn bundle_with(workflow: &Workflow, swarm: Option<&SwarmSpec>) -> Vec<u8> {
    let mut files = BTreeMap::new();
    collect(workflow, &mut files);
    let b = BundleOut {
        root: &workflow.source_path,
        files,
        model_version: MODEL_VERSION,
        model: workflow,
        swarm,
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

/// Loads the pinned workflow back from a bundle: the pinned model when this
/// lev can read it, else the pinned texts (child workflows read from the
/// bundle, never from disk).
pub fn load(bytes: &[u8], modes: &ModeRegistry) -> Result<Workflow, String> {
    load_pinned(bytes, modes).map(|p| p.workflow)
}

/// `load`, with the swarm settings when the run is a swarm.
pub fn load_pinned(bytes: &[u8], modes: &ModeRegistry) -> Result<Pinned, String> {
    if let Ok(b) = serde_json::from_slice::<BundleIn>(bytes)
        && b.model_version == MODEL_VERSION
    {
        let mut model = b.model;
        if restore_texts(&mut model, &b.files) {
            return Ok(Pinned {
                workflow: model,
                swarm: b.swarm,
            });
        }
    }
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
    let workflow = spec::load::load_workflow_with(&b.root, text, modes, &read_child)
        .map_err(|d| d.to_string())?;
    Ok(Pinned {
        workflow,
        swarm: b.swarm,
    })
}

/// The pinned text of the root workflow and where it was loaded from, as
/// the run started with it (`lev template save` of a run that is not a
/// swarm).
pub fn root_text(bytes: &[u8]) -> Result<(PathBuf, String), String> {
    let b: Bundle =
        serde_json::from_slice(bytes).map_err(|e| format!("corrupt definition bundle: {e}"))?;
    let text = b
        .files
        .get(&b.root)
        .cloned()
        .ok_or("definition bundle has no root file")?;
    Ok((b.root, text))
}

/// Puts each workflow's pinned text back (the model does not carry it);
/// false when a text is missing.
fn restore_texts(workflow: &mut Workflow, files: &BTreeMap<PathBuf, String>) -> bool {
    let Some(text) = files.get(&workflow.source_path) else {
        return false;
    };
    workflow.source_text = text.clone();
    workflow.steps.iter_mut().all(|step| match &mut step.kind {
        StepKind::Workflow { child, .. } => restore_texts(child, files),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = r#"version: 1
kind: workflow
id: parent
name: Parent
inputs:
  who: { type: string, default: "world" }
steps:
  greet:
    type: shell
    run: "echo hello ${{ inputs.who }}"
    retry: { max_attempts: 3, backoff: fixed, initial_delay: 2s }
    timeout: 30s
  child:
    type: workflow
    uses: child.yaml
    needs: [greet]
    with: { text: "${{ steps.greet.outputs.stdout }}" }
outputs:
  said: "${{ steps.child.outputs.echoed }}"
"#;
    const CHILD: &str = r#"version: 1
kind: workflow
id: child
name: Child
inputs:
  text: { type: string }
steps:
  echo:
    type: shell
    run: "echo ${{ inputs.text }}"
outputs:
  echoed: "${{ steps.echo.outputs.stdout }}"
"#;

    fn loaded() -> Workflow {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("parent.yaml"), PARENT).unwrap();
        std::fs::write(dir.path().join("child.yaml"), CHILD).unwrap();
        let modes = ModeRegistry::load(&[spec::mode::builtin_dir()]).unwrap();
        spec::load_workflow(&dir.path().join("parent.yaml"), &modes).unwrap()
    }

    /// The model read back equals the one loaded from YAML (compared
    /// through its debug form, which shows every field and template part).
    #[test]
    fn pinned_model_reads_back_equal() {
        let wf = loaded();
        let modes = ModeRegistry::default();
        let back = load(&bundle(&wf), &modes).unwrap();
        assert_eq!(format!("{back:?}"), format!("{wf:?}"));
        assert_eq!(back.source_text, PARENT);
    }

    /// A bundle written before models were pinned (texts only) still loads,
    /// from its texts, including the child workflow.
    #[test]
    fn text_only_bundles_load_from_their_texts() {
        let wf = loaded();
        let mut files = BTreeMap::new();
        collect(&wf, &mut files);
        let old = serde_json::to_vec(&Bundle {
            root: wf.source_path.clone(),
            files,
            swarm: None,
        })
        .unwrap();
        let modes = ModeRegistry::load(&[spec::mode::builtin_dir()]).unwrap();
        let back = load(&old, &modes).unwrap();
        assert_eq!(format!("{back:?}"), format!("{wf:?}"));
    }

    /// A model from another version is ignored in favour of the texts.
    #[test]
    fn a_model_of_another_version_is_ignored() {
        let wf = loaded();
        let mut v: serde_json::Value = serde_json::from_slice(&bundle(&wf)).unwrap();
        v["model_version"] = 999.into();
        v["model"]["name"] = "Tampered".into();
        let modes = ModeRegistry::load(&[spec::mode::builtin_dir()]).unwrap();
        let back = load(&serde_json::to_vec(&v).unwrap(), &modes).unwrap();
        assert_eq!(back.name, "Parent");
    }
}
