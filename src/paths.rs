//! Where data, config and logs live: `$XDG_DATA_HOME/lev/` unless
//! `--data-dir` or `LEV_DATA_DIR` says otherwise; config in
//! `$XDG_CONFIG_HOME/lev/`; logs in `$XDG_STATE_HOME/lev/`.

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
