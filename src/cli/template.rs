//! `lev template save RUN NAME`: a swarm run's accepted plan, or the
//! workflow a succeeded run was pinned to, written as a workflow file that
//! `lev validate` accepts and `lev run` runs.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};

use super::access::Access;
use super::context::{error, load_modes};
use super::exit;
use crate::paths::Paths;
use crate::protocol::RunId;
use crate::spec;
use crate::swarm::{saved, template};

/// Where templates go unless `--dir` says otherwise (relative to the cwd).
const DEFAULT_DIR: &str = "workflows";

/// `lev template save RUN NAME [--dir DIR] [--force]`.
pub async fn save(paths: &Paths, run: &str, name: &str, dir: Option<&Path>, force: bool) -> u8 {
    let Some(file_name) = template::safe_name(name) else {
        error(&format!(
            "template name `{name}` has no letters or digits to make a file name from"
        ));
        return exit::USAGE;
    };
    let dir = dir.map_or_else(|| PathBuf::from(DEFAULT_DIR), Path::to_path_buf);
    let file = dir.join(format!("{file_name}.yaml"));
    if !force && file.exists() {
        error(&format!(
            "{} already exists; pass --force to overwrite it, or choose another name",
            file.display()
        ));
        return exit::USAGE;
    }
    let yaml = match template_of(paths, run, name).await {
        Ok(y) => y,
        Err(code) => return code,
    };
    // Refuse to write a file `lev validate` would reject (a mode that is not
    // known here, say): the user learns it now, not at `lev run`.
    let modes = match load_modes(paths) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let steps = match spec::load_workflow_str(&file, &yaml, &modes) {
        Ok(wf) => wf.steps.len(),
        Err(diags) => {
            eprint!("{diags}");
            error(&format!(
                "run {run} does not make a valid workflow at {} (a child workflow it uses is not there?); nothing was written",
                file.display()
            ));
            return exit::FAILED;
        }
    };
    if let Err((code, e)) = write(&file, &yaml, force) {
        error(&e);
        return code;
    }
    println!(
        "saved {} ({steps} step{}); run it with `lev run {}`",
        file.display(),
        if steps == 1 { "" } else { "s" },
        file.display()
    );
    exit::OK
}

/// The template's text: a swarm's plan as it ran, as a workflow, else the
/// workflow a succeeded run was pinned to, renamed.
async fn template_of(paths: &Paths, run: &str, name: &str) -> Result<String, u8> {
    let mut access = Access::open(paths).await?;
    let id = RunId(run.to_string());
    let failed = |e: String| {
        error(&e);
        exit::FAILED
    };
    let meta = match access.run(&id).await {
        Ok(Some(meta)) => meta,
        Ok(None) => {
            error(&format!("no run {run}"));
            return Err(exit::USAGE);
        }
        Err(e) => return Err(failed(e)),
    };
    let events = access.events(&id).await.map_err(failed)?;
    let planned = saved::plan_template(&meta, &events, name).map_err(|r| {
        error(&r.message);
        if r.usage { exit::USAGE } else { exit::FAILED }
    })?;
    match planned {
        Some(text) => Ok(text),
        None => {
            let (_, pinned) = access.definition(&id).await.map_err(failed)?;
            Ok(saved::renamed(&pinned, name, run))
        }
    }
}

/// Writes the file; without `force` an existing file is never replaced,
/// even one created since the first check (that is a usage error, exit 2;
/// other failures exit 1).
fn write(file: &Path, text: &str, force: bool) -> Result<(), (u8, String)> {
    crate::tools::write_synced(file, text.as_bytes(), force).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => (
            exit::USAGE,
            format!(
                "{} already exists; pass --force to overwrite it, or choose another name",
                file.display()
            ),
        ),
        _ => (exit::FAILED, e.to_string()),
    })
}
