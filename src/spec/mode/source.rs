//! Where modes come from: the built-ins compiled into lev, the user's
//! folder, the project's folder (or any folder a caller names), in the
//! order later layers override earlier ones by id.

use std::fmt;
use std::path::{Path, PathBuf};

/// The folder under a config dir, or under a project, that holds modes.
pub const MODES_FOLDER: &str = "modes";
/// The project's mode folder, relative to the directory lev runs in.
pub const PROJECT_MODES: &str = ".lev/modes";

/// Where one mode's definition came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ModeSource {
    /// Compiled into the binary (`workflows/modes/` in the source tree).
    #[default]
    Builtin,
    /// A file in the user's folder (`$XDG_CONFIG_HOME/lev/modes/`).
    User(PathBuf),
    /// A file in the project's `.lev/modes/`.
    Project(PathBuf),
    /// A file in a folder named by the caller (tests, tools).
    Folder(PathBuf),
}

impl ModeSource {
    /// `built-in`, `user`, `project` or `folder`.
    pub fn kind(&self) -> &'static str {
        match self {
            ModeSource::Builtin => "built-in",
            ModeSource::User(_) => "user",
            ModeSource::Project(_) => "project",
            ModeSource::Folder(_) => "folder",
        }
    }

    /// The file, unless the mode is built in.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ModeSource::Builtin => None,
            ModeSource::User(p) | ModeSource::Project(p) | ModeSource::Folder(p) => Some(p),
        }
    }
}

impl fmt::Display for ModeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path() {
            None => f.write_str(self.kind()),
            Some(p) => write!(f, "{} {}", self.kind(), p.display()),
        }
    }
}

/// One place modes are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeLayer {
    /// The modes compiled into lev.
    Builtin,
    /// The user's mode folder.
    User(PathBuf),
    /// The project's mode folder.
    Project(PathBuf),
    /// Any other folder.
    Folder(PathBuf),
}

impl ModeLayer {
    /// The folder to read, unless the layer is built in.
    pub(crate) fn dir(&self) -> Option<&Path> {
        match self {
            ModeLayer::Builtin => None,
            ModeLayer::User(d) | ModeLayer::Project(d) | ModeLayer::Folder(d) => Some(d),
        }
    }

    /// The source of a mode read from `file` in this layer.
    pub(crate) fn source_of(&self, file: &Path) -> ModeSource {
        let file = file.to_path_buf();
        match self {
            ModeLayer::Builtin => ModeSource::Builtin,
            ModeLayer::User(_) => ModeSource::User(file),
            ModeLayer::Project(_) => ModeSource::Project(file),
            ModeLayer::Folder(_) => ModeSource::Folder(file),
        }
    }
}

/// The layers lev reads when it runs in `cwd`: built-ins, then
/// `<config_dir>/modes/` (the user's, when there is a config dir), then
/// `<cwd>/.lev/modes/`. `cwd` of `.` keeps project paths relative, so
/// diagnostics read `.lev/modes/coder.yaml:3:1`.
pub fn standard_layers(config_dir: Option<&Path>, cwd: &Path) -> Vec<ModeLayer> {
    let mut layers = vec![ModeLayer::Builtin];
    if let Some(c) = config_dir {
        layers.push(ModeLayer::User(c.join(MODES_FOLDER)));
    }
    let project = if cwd.as_os_str().is_empty() || cwd == Path::new(".") {
        PathBuf::from(PROJECT_MODES)
    } else {
        cwd.join(PROJECT_MODES)
    };
    layers.push(ModeLayer::Project(project));
    layers
}
