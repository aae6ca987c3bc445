//! A reader that goes away (`lev runs | head -1`) ends lev quietly, as it
//! ends every Unix tool. Rust ignores SIGPIPE, so a write to the closed
//! pipe fails and `println!` panics; restoring the signal's default needs
//! unsafe code, which lev forbids. So a panic hook turns exactly that panic
//! into the exit a shell reports for SIGPIPE (141), with nothing printed.

use std::sync::Once;

/// What a shell reports for a process ended by SIGPIPE (128 + 13).
const SIGPIPE_EXIT: i32 = 141;

static HOOK: Once = Once::new();

/// Installs the hook (once); every other panic goes to the previous hook.
pub fn quiet_on_closed_pipe() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if is_closed_pipe(info.payload_as_str().unwrap_or_default()) {
                std::process::exit(SIGPIPE_EXIT);
            }
            previous(info);
        }));
    });
}

/// The panic `print!`/`eprint!` raise when their reader has gone.
fn is_closed_pipe(message: &str) -> bool {
    (message.starts_with("failed printing to stdout")
        || message.starts_with("failed printing to stderr"))
        && message.contains("os error 32")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_write_to_a_closed_pipe_counts() {
        assert!(is_closed_pipe(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_pipe(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_closed_pipe("index out of bounds (os error 32)"));
    }
}
