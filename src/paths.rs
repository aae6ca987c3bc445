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
    /// A journal a URL names (`--journal`, `LEV_JOURNAL`: PostgreSQL)
    /// instead of the data dir's file; the data dir keeps the control
    /// socket and the lock of this process's runs.
    pub journal_url: Option<String>,
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
            journal_url: None,
        }
    }

    /// This invocation with its journal in the database `url` names.
    pub fn with_journal_url(mut self, url: Option<String>) -> Paths {
        self.journal_url = url.filter(|u| !u.trim().is_empty());
        self
    }

    /// The journal as messages name it: the file, or the PostgreSQL
    /// database (never the URL, which may hold a password).
    pub fn journal_name(&self) -> String {
        match &self.journal_url {
            Some(_) => "the PostgreSQL journal".to_owned(),
            None => self.journal().display().to_string(),
        }
    }

    pub fn journal(&self) -> PathBuf {
        self.data_dir.join("lev.redb")
    }

    pub fn socket(&self) -> PathBuf {
        socket_beside(&self.journal())
    }

    pub fn log_file(&self) -> PathBuf {
        self.state_dir.join("lev.log")
    }
}

/// Mode of every directory lev keeps its own data in: only the user.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of every file lev writes into those directories.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) and makes it private (0700), also
/// when it already existed with a looser mode: journals and logs hold
/// prompts, outputs and tool results that other users must not read.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    if meta.permissions().mode() & 0o777 != PRIVATE_DIR_MODE {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PRIVATE_DIR_MODE))?;
    }
    Ok(())
}

/// Makes an existing file private (0600); a missing file is not an error.
pub fn private_file(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(file) {
        Ok(meta) if meta.permissions().mode() & 0o777 != PRIVATE_FILE_MODE => {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(PRIVATE_FILE_MODE))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `file`, created 0600 (a looser existing file is
/// tightened first, so the bytes are never readable by others).
pub fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    private_file(file)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE_MODE)
        .open(file)?;
    f.write_all(bytes)
}

/// The control socket of the lev that holds the journal at `journal`
/// (beside it, in the data directory).
pub fn socket_beside(journal: &std::path::Path) -> PathBuf {
    journal.with_file_name("lev.sock")
}
