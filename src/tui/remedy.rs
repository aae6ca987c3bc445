//! What an accepted suggestion does in the workbench's files: a timeout
//! raised in the workflow file that keeps hitting it, or a run saved as a
//! workflow under `workflows/` (what `lev template save` writes, asked of
//! the engine). Each returns the line the status bar shows.

use std::path::{Path, PathBuf};

use crate::engine::suggest::Remedy;
use crate::engine::{Engine, Query, Reply, Suggestion};

/// Where saved templates go, relative to the workbench's directory.
const TEMPLATES: &str = "workflows";

/// Carries out `s` under `cwd`; the message says what changed, or why
/// nothing did.
pub async fn carry_out(engine: &Engine, cwd: &Path, s: &Suggestion) -> String {
    let done = match &s.remedy {
        Remedy::RaiseTimeout { file, step } => {
            let path = cwd.join(file);
            let (file, step, id) = (file.clone(), step.clone(), s.workflow.clone());
            tokio::task::spawn_blocking(move || raise_timeout(&path, &file, &id, &step))
                .await
                .unwrap_or_else(|e| Err(format!("the edit stopped: {e}")))
        }
        Remedy::SaveTemplate { name } => save_template(engine, cwd, s, name).await,
        Remedy::ShowRun => Ok(format!("run {} is open", s.run)),
    };
    done.unwrap_or_else(|e| format!("not done: {e}"))
}

/// Doubles the step's timeout in its file (written whole, then renamed
/// over it, so a crash leaves the old file or the new one).
fn raise_timeout(path: &Path, file: &str, id: &str, step: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let raised = crate::spec::edit::double_timeout(file, &text, id, step)?;
    crate::tools::atomic_write(path, raised.text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(format!(
        "raised the timeout of `{step}` in {file} from {} to {}",
        raised.from, raised.to
    ))
}

/// Saves the suggestion's run as `workflows/<name>.yaml`, never over a
/// file that is there.
async fn save_template(
    engine: &Engine,
    cwd: &Path,
    s: &Suggestion,
    name: &str,
) -> Result<String, String> {
    let file_name = crate::swarm::template::safe_name(name)
        .ok_or_else(|| format!("`{name}` makes no file name"))?;
    let relative = PathBuf::from(TEMPLATES).join(format!("{file_name}.yaml"));
    let query = Query::Template {
        run: s.run.clone(),
        name: name.to_string(),
    };
    let (text, steps) = match engine.query(query).await.map_err(|e| e.to_string())? {
        Reply::Template { text, steps } => (text, steps),
        other => return Err(other.unexpected()),
    };
    let path = cwd.join(&relative);
    let shown = relative.display().to_string();
    tokio::task::spawn_blocking(move || {
        crate::tools::write_synced(&path, text.as_bytes(), false).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!(
                    "{shown} already exists; `lev template save RUN NAME --force` overwrites it"
                )
            }
            _ => e.to_string(),
        })
    })
    .await
    .map_err(|e| format!("the write stopped: {e}"))??;
    Ok(format!(
        "saved {} ({steps} step{}); run it with `lev run {}`",
        relative.display(),
        if steps == 1 { "" } else { "s" },
        relative.display()
    ))
}
