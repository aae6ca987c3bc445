//! Memory namespaces: where an entry lives, and how the stored key, the
//! agent's word and the command line's `--namespace` map to each other.

use std::fmt;
use std::path::Path;

/// Where a memory entry lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Namespace {
    /// One run's scratch knowledge (the run id).
    Run(String),
    /// Knowledge about one project (its canonical workspace path).
    Project(String),
    /// Knowledge for every run everywhere.
    Global,
}

impl Namespace {
    /// The stored key: `run:<id>`, `project:<path>` or `global`.
    pub fn key(&self) -> String {
        match self {
            Namespace::Run(id) => format!("run:{id}"),
            Namespace::Project(path) => format!("project:{path}"),
            Namespace::Global => "global".into(),
        }
    }

    /// The project namespace of a workspace (canonicalized when it exists,
    /// so `.` and its absolute path are one project).
    pub fn project(workspace: &Path) -> Namespace {
        let path = workspace
            .canonicalize()
            .unwrap_or_else(|_| workspace.to_path_buf());
        Namespace::Project(path.display().to_string())
    }

    /// Parses a stored key; `None` for a key this build does not know.
    pub fn from_key(key: &str) -> Option<Namespace> {
        if key == "global" {
            return Some(Namespace::Global);
        }
        if let Some(id) = key.strip_prefix("run:").filter(|s| !s.is_empty()) {
            return Some(Namespace::Run(id.to_string()));
        }
        key.strip_prefix("project:")
            .filter(|s| !s.is_empty())
            .map(|p| Namespace::Project(p.to_string()))
    }

    /// `run`, `project` or `global`: what an agent calls it.
    pub fn kind(&self) -> &'static str {
        match self {
            Namespace::Run(_) => "run",
            Namespace::Project(_) => "project",
            Namespace::Global => "global",
        }
    }

    /// A `--namespace` value: `global`, `project` (the current directory's
    /// project), `project:<path>` or `run:<id>`.
    pub fn parse_cli(text: &str, cwd: &Path) -> Result<Namespace, String> {
        let text = text.trim();
        match text {
            "global" => Ok(Namespace::Global),
            "project" => Ok(Namespace::project(cwd)),
            "run" => {
                Err("say which run's memory: --namespace run:<RUN-ID> (see `lev runs`)".to_string())
            }
            _ => {
                if let Some(path) = text.strip_prefix("project:").filter(|p| !p.is_empty()) {
                    return Ok(Namespace::project(&cwd.join(path)));
                }
                if let Some(id) = text.strip_prefix("run:").filter(|p| !p.is_empty()) {
                    return Ok(Namespace::Run(id.to_string()));
                }
                Err(format!(
                    "unknown namespace `{text}`; use global, project, project:<PATH> or run:<RUN-ID>"
                ))
            }
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// The short label of a stored namespace key (`run`, `project`, `global`),
/// or the key itself when unknown.
pub fn label(key: &str) -> String {
    Namespace::from_key(key).map_or_else(|| key.to_string(), |n| n.kind().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for ns in [
            Namespace::Global,
            Namespace::Run("01ABC".into()),
            Namespace::Project("/home/u/repo".into()),
        ] {
            assert_eq!(Namespace::from_key(&ns.key()), Some(ns.clone()));
        }
        assert_eq!(Namespace::from_key("run:"), None);
        assert_eq!(Namespace::from_key("team"), None);
        assert_eq!(label("project:/x"), "project");
        assert_eq!(label("team"), "team");
    }

    #[test]
    fn cli_names_resolve_against_the_current_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().canonicalize().unwrap();
        assert_eq!(
            Namespace::parse_cli("project", &cwd).unwrap(),
            Namespace::Project(cwd.display().to_string())
        );
        assert_eq!(
            Namespace::parse_cli("project:.", &cwd).unwrap(),
            Namespace::Project(cwd.display().to_string())
        );
        assert_eq!(
            Namespace::parse_cli("run:R1", &cwd).unwrap(),
            Namespace::Run("R1".into())
        );
        assert!(
            Namespace::parse_cli("run", &cwd)
                .unwrap_err()
                .contains("run:<RUN-ID>")
        );
        assert!(
            Namespace::parse_cli("team", &cwd)
                .unwrap_err()
                .contains("unknown namespace")
        );
    }
}
