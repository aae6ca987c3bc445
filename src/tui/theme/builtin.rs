//! The themes shipped in the binary (the files in `themes/`).

/// Built-in theme names, `dark` first (it is the default).
pub const NAMES: [&str; 4] = ["dark", "light", "high-contrast", "abyss"];

const DARK: &str = include_str!("../../../themes/dark.yaml");
const LIGHT: &str = include_str!("../../../themes/light.yaml");
const HIGH_CONTRAST: &str = include_str!("../../../themes/high-contrast.yaml");
const ABYSS: &str = include_str!("../../../themes/abyss.yaml");

/// The YAML text of a built-in theme.
pub fn text(name: &str) -> Option<&'static str> {
    match name {
        "dark" => Some(DARK),
        "light" => Some(LIGHT),
        "high-contrast" => Some(HIGH_CONTRAST),
        "abyss" => Some(ABYSS),
        _ => None,
    }
}
