//! Text lev did not write (shell output, LLM replies, tool results, names
//! from workflow files) made safe to print or draw, and short one-line
//! forms for displays. Pure functions, no I/O;
//! every layer may import this module.

mod sanitize;
mod short;
mod wrap;

pub use sanitize::{Sanitizer, escape_json_unsafe, is_unsafe_char, sanitize};
pub use short::{ms, one_line};
pub use wrap::{NO_BREAK_SPACE, TAB_WIDTH, clip, columns, fit, rows, wrap, wrap_parts};
