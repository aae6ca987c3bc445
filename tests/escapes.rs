//! Terminal escapes in text lev did not write (shell output, an LLM reply)
//! never reach a terminal: not in the headless transcript, `lev replay`,
//! `lev show`, the Markdown export, nor the workbench's screen.

mod support;

use lev::protocol::{Notice, Recorded};
use lev::tui::state::{Screen, State};
use lev::tui::theme::Theme;
use lev::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use support::lev::{Lev, run_id_from};
use support::llm_server::{LlmServer, OpenAiSse, RecordedRequest};

/// A clipboard write (OSC 52), a window title (OSC 0), clear-screen (CSI 2J)
/// and a bell, from a shell step; the model's reply carries escapes too.
const WORKFLOW: &str = r#"
version: 1
kind: workflow
id: escapes
name: Escapes
steps:
  noisy:
    type: shell
    run: printf '\033]52;c;ZXZpbA==\007\033]0;pwned-title\007\033[2Jshell-after\033[31m red\033[0m\007\n'
  talk:
    needs: [noisy]
    mode: architect
    prompt: Say something.
outputs:
  shell: ${{ steps.noisy.outputs.stdout }}
  reply: ${{ steps.talk.outputs.text }}
"#;

const REPLY: &str = "llm-said \u{1b}]0;llm-title\u{7}\u{1b}[2Jhello \u{9b}31mred\u{202e} done";

/// No control bytes; and, where the text is for reading (not JSON, which
/// keeps the data exactly, escaped), no leftovers of the sequences either.
fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(!bytes.contains(&0x1b), "{what} has an ESC byte:\n{text}");
    assert!(!bytes.contains(&0x07), "{what} has a BEL byte:\n{text}");
    assert!(
        !text.chars().any(lev::text::is_unsafe_char),
        "{what} has a control character:\n{text:?}"
    );
    if what.contains("--json") {
        return;
    }
    for residue in ["52;c;", "pwned-title", "llm-title"] {
        assert!(!text.contains(residue), "{what} shows `{residue}`:\n{text}");
    }
}

#[test]
fn escapes_from_shell_and_llm_output_never_reach_a_terminal() {
    let server = LlmServer::with(|_req: &RecordedRequest| {
        // Five pieces: the escape sequences are cut between stream chunks.
        OpenAiSse::new("test-model")
            .text(REPLY, 5)
            .usage(10, 5)
            .finish("stop")
            .reply()
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = lev.write_workflow(WORKFLOW);
    let out = lev.run_headless(&wf, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean("the headless transcript", &out.stdout);
    assert!(stdout.contains("shell-after red"), "{stdout}");
    assert!(stdout.contains("llm-said"), "{stdout}");
    let run = run_id_from(&stdout).unwrap();

    for args in [
        vec!["replay", run.as_str()],
        vec!["replay", run.as_str(), "--json"],
        vec!["show", run.as_str()],
        vec!["export", run.as_str(), "--format", "md"],
    ] {
        let out = lev.run(&args);
        assert!(out.status.success(), "{args:?}");
        assert_clean(&format!("`lev {}`", args.join(" ")), &out.stdout);
    }
    let md = lev.run(&["export", &run, "--format", "md"]);
    assert!(String::from_utf8_lossy(&md.stdout).contains("shell-after red"));

    // The workbench, folded from the same events (the raw escapes are back
    // in the strings once the JSON is parsed).
    let replay = lev.run(&["replay", &run, "--json"]);
    let events: Vec<Recorded> = String::from_utf8_lossy(&replay.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut state = State::new();
    for r in &events {
        state.apply(&Notice::Event(r.clone()));
    }
    state.run_open = true;
    // The shell step's pane (the focus followed the step that started after it).
    state.focus_pane = state
        .run
        .pane_index(&lev::protocol::StepKey::new("noisy"))
        .unwrap();
    let theme = Theme::fallback();
    let mut seen = String::new();
    for screen in [Screen::Panes, Screen::Overview, Screen::Timeline] {
        state.screen = screen;
        let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
        term.draw(|f| view::draw(&state, &theme, f.area(), f.buffer_mut()))
            .unwrap();
        let buf = term.backend().buffer();
        for cell in buf.content() {
            seen.push_str(cell.symbol());
        }
        seen.push('\n');
    }
    assert_clean("the workbench screen", seen.as_bytes());
    assert!(seen.contains("shell-after"), "{seen}");
}
