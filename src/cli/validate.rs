//! `lev validate FILE…`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;

use super::context::load_modes;
use super::exit;
use crate::paths::Paths;
use crate::spec;

pub(super) fn validate(files: &[PathBuf]) -> u8 {
    let paths = Paths::resolve(None);
    let modes = match load_modes(&paths) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let mut code = exit::OK;
    for file in files {
        match spec::load_workflow(file, &modes) {
            Ok(wf) => println!("{}: ok ({} steps)", file.display(), wf.steps.len()),
            Err(diags) => {
                eprint!("{diags}");
                let n = diags
                    .0
                    .iter()
                    .filter(|d| d.severity == spec::diagnostics::Severity::Error)
                    .count();
                if diags.has_errors() {
                    eprintln!(
                        "{}: {n} error{}",
                        file.display(),
                        if n == 1 { "" } else { "s" }
                    );
                    code = exit::FAILED;
                }
            }
        }
    }
    code
}
