//! Where data, config and logs live: `$XDG_DATA_HOME/lev/` unless
//! `--data-dir` or `LEV_DATA_DIR` says otherwise; config in
//! `$XDG_CONFIG_HOME/lev/`; logs in `$XDG_STATE_HOME/lev/`.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use etcetera::BaseStrategy;

/// Resolved locations for one invocation.
#[derive(Debug, Clone)]
pub struct Paths {
    pub data_dir: PathBuf,
    pub config_dir: Option<PathBuf>,
    pub state_dir: PathBuf,
}

impl Paths {
    /// `explicit` is `--data-dir` (clap already folds in `LEV_DATA_DIR`).
    pub fn resolve(explicit: Option<&Path>) -> Paths {
        let strategy = etcetera::choose_base_strategy().ok();
        let home_fallback = || std::env::temp_dir().join("lev-home");
        let data_dir = match explicit {
            Some(p) => p.to_path_buf(),
            None => strategy
                .as_ref()
                .map(|s| s.data_dir())
                .unwrap_or_else(home_fallback)
                .join("lev"),
        };
        let config_dir = strategy.as_ref().map(|s| s.config_dir().join("lev"));
        let state_dir = match explicit {
            // With an explicit data dir, keep everything together (tests, CI).
            Some(p) => p.join("logs"),
            None => strategy
                .as_ref()
                .and_then(|s| s.state_dir())
                .unwrap_or_else(|| home_fallback().join("state"))
                .join("lev"),
        };
        Paths {
            data_dir,
            config_dir,
            state_dir,
        }
    }

    pub fn journal(&self) -> PathBuf {
        self.data_dir.join("lev.redb")
    }

    pub fn socket(&self) -> PathBuf {
        self.data_dir.join("lev.sock")
    }

    pub fn log_file(&self) -> PathBuf {
        self.state_dir.join("lev.log")
    }
}

/// Creates `dir` (and missing parents) readable by the owner only (0700),
/// and tightens it when it exists with looser modes: the journal, the log
/// and the socket hold prompts, answers and outputs nobody else should read.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    restrict(dir, 0o700)
}

/// Narrows `path`'s mode to at most `mode` (never widens it), when it exists.
pub fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let current = meta.permissions().mode() & 0o7777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_dirs_are_made_and_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("f");
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        restrict(&file, 0o600).unwrap();
        assert_eq!(mode(&file), 0o600);
        // Never widened.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
        restrict(&file, 0o600).unwrap();
        assert_eq!(mode(&file), 0o400);
    }
}
