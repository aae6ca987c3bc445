//! The themes the workbench can switch between while it runs: the built-ins
//! plus every theme file in the theme folders (the user's
//! `$XDG_CONFIG_HOME/lev/themes/`, then the project's `themes/`), loaded on
//! demand the way `--theme` loads them, with `NO_COLOR` applied.

use std::path::PathBuf;

use super::{Theme, builtin};

/// Where themes are found and how they are adjusted for this terminal.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    dirs: Vec<PathBuf>,
    no_color: bool,
}

impl Catalog {
    /// `dirs` in lookup order; `no_color` when `NO_COLOR` is set.
    pub fn new(dirs: Vec<PathBuf>, no_color: bool) -> Catalog {
        Catalog { dirs, no_color }
    }

    /// The folders searched, in order (a theme id found in an earlier one wins).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Theme names to offer: the built-ins (default first), then the ids
    /// of theme files in the folders, sorted, each once. A folder that
    /// cannot be read offers nothing.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = builtin::NAMES.iter().map(|n| n.to_string()).collect();
        let mut found = Vec::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                let is_yaml = path.extension().is_some_and(|x| x == "yaml" || x == "yml");
                if !is_yaml || !path.is_file() {
                    continue;
                }
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    found.push(stem.to_string());
                }
            }
        }
        found.sort();
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
        out
    }

    /// Loads a theme by name (or path) as `--theme` would, `NO_COLOR`
    /// applied. The error is every problem found, one per line.
    pub fn load(&self, name: &str) -> Result<Theme, String> {
        match Theme::load(name, &self.dirs) {
            Ok((t, warnings)) => {
                for w in warnings.0 {
                    tracing::warn!(theme = %name, "{w}");
                }
                Ok(t.with_no_color(self.no_color))
            }
            Err(d) => Err(d.to_string().trim_end().to_string()),
        }
    }
}
