//! The whole workbench on ratatui's `TestBackend`: the real app loop, the
//! real engine and journal, the demo workflow on its cassette, and keys
//! injected as a user would type them. What the user sees is read from
//! the frames the loop drew, at 80×24 and 200×50.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use futures::channel::mpsc;
use lev::config::{Config, ProviderKind, ProviderSettings};
use lev::engine::Engine;
use lev::journal::Journal;
use lev::llm;
use lev::protocol::RunStatus;
use lev::spec::{self, ModeRegistry};
use lev::tui::app::{self, App, Launch, Screen};
use lev::tui::keymap::Keymap;
use lev::tui::state::Input;
use lev::tui::theme::{Catalog, Theme};
use lev::workflow::{self, EngineDeps, RunOptions, Start};
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};

mod support;
use support::lev::repo_file;

/// A `TestBackend` that also shows each flushed frame to the test, which
/// reads it while the loop runs.
struct Watched {
    inner: TestBackend,
    frame: Arc<Mutex<String>>,
}

impl Backend for Watched {
    type Error = <TestBackend as Backend>::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()?;
        let buf = self.inner.buffer();
        let mut text = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                text.push_str(buf[(x, y)].symbol());
            }
            text.push('\n');
        }
        *self.frame.lock().unwrap() = text;
        Ok(())
    }
}

/// The demo run, created in a fresh journal, with what driving it needs.
async fn demo(dir: &std::path::Path) -> (Journal, Arc<EngineDeps>, lev::protocol::RunId) {
    let journal = Journal::open(&dir.join("lev.redb")).unwrap();
    let modes = ModeRegistry::builtin().unwrap();
    let wf = spec::load_workflow(&repo_file("workflows/demo.yaml"), &modes).unwrap();
    let inputs = workflow::resolve_inputs(&wf, &BTreeMap::new()).unwrap();
    let run = workflow::start_run(&journal, &wf, inputs, None)
        .await
        .unwrap();
    // The demo's replies, streamed five times faster than in `lev demo`.
    let cassette = dir.join("demo.cassette.yaml");
    let text = std::fs::read_to_string(repo_file("workflows/demo.cassette.yaml")).unwrap();
    std::fs::write(&cassette, format!("pace: 0.2\n{text}")).unwrap();
    let config = Config {
        provider: ProviderSettings {
            cassette: Some(cassette),
            ..ProviderSettings::of_kind(ProviderKind::Scripted)
        },
        ..Config::default()
    };
    let workspace = dir.join("ws");
    std::fs::create_dir_all(&workspace).unwrap();
    let deps = Arc::new(EngineDeps {
        journal: journal.clone(),
        provider: llm::build_provider(&config).map_err(|e| e.to_string()),
        default_model: None,
        modes,
        workspace: workspace.canonicalize().unwrap(),
        options: RunOptions {
            allow_shell: true,
            ..RunOptions::default()
        },
        profiles: Default::default(),
    });
    (journal, deps, run)
}

/// The workbench on `engine` with the default look and keys; it
/// subscribes before anything is started, as `lev` does.
fn workbench(engine: &Engine) -> App {
    App {
        notices: engine.subscribe(),
        engine: engine.clone(),
        theme: Theme::fallback(),
        theme_name: "dark".into(),
        themes: Catalog::new(Vec::new(), false),
        attention: Default::default(),
        scrollback: lev::tui::state::MAX_LINES,
        keymap: Keymap::default(),
        flowmind: "rules".into(),
    }
}

fn key(code: KeyCode) -> Input {
    Input::Key(KeyEvent::from(code))
}

/// Waits until the latest frame satisfies `pred`; panics with the frame.
async fn wait_for(frame: &Mutex<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = frame.lock().unwrap().clone();
        if pred(&now) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {what}; the screen is:\n{now}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Drives the demo through the workbench at `width`×`height`: answers the
/// question (its default, or with `team` the other option), approves,
/// waits for the run to succeed and quits. Returns the last frame and the
/// escapes written beside the frames.
async fn demo_in_the_workbench(width: u16, height: u16, team: bool) -> (String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (journal, deps, run) = demo(dir.path()).await;
    let frame = Arc::new(Mutex::new(String::new()));
    let mut terminal = Terminal::new(Watched {
        inner: TestBackend::new(width, height),
        frame: frame.clone(),
    })
    .unwrap();
    let mut escapes: Vec<u8> = Vec::new();
    let engine = Engine::open(journal.clone(), Err("no resume in this test".into()));
    let app = workbench(&engine);
    let (keys, input) = mpsc::unbounded::<Input>();
    let user = async {
        wait_for(&frame, "the audience question", |s| {
            s.contains("Who should the script") && s.contains("Enter send")
        })
        .await;
        // A prompt ignores keys typed in its first moments on screen.
        tokio::time::sleep(Duration::from_millis(lev::tui::state::GRACE_MS + 200)).await;
        if team {
            keys.unbounded_send(key(KeyCode::Down)).unwrap();
        }
        keys.unbounded_send(key(KeyCode::Enter)).unwrap();
        wait_for(&frame, "the approval prompt", |s| s.contains("[a] approve")).await;
        tokio::time::sleep(Duration::from_millis(lev::tui::state::GRACE_MS + 200)).await;
        keys.unbounded_send(key(KeyCode::Char('a'))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let meta = journal.run(&run).await.unwrap().unwrap();
            if meta.status != RunStatus::Running {
                assert_eq!(meta.status, RunStatus::Succeeded);
                break;
            }
            assert!(Instant::now() < deadline, "the run did not end");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The status line (not a finished step's pane title) says the run
        // ended: frames are paced, so the screen may lag the journal a little.
        wait_for(&frame, "the run's end on the status line", |s| {
            s.lines().last().is_some_and(|l| l.contains("succeeded"))
        })
        .await;
        keys.unbounded_send(key(KeyCode::Char('q'))).unwrap();
    };
    let mut screen = Screen {
        terminal: &mut terminal,
        escapes: &mut escapes,
        synchronized: false,
    };
    let driving = engine.start(deps, run.clone(), Start::Fresh).await.unwrap();
    let launch = Launch::Driving(Box::new(driving));
    let (left, ()) = tokio::join!(app::run_on(&mut screen, input, app, launch), user);
    // Whatever was on screen when the user quit, the farewell names it.
    if let Some(left) = left {
        let (line, _) = app::farewell(&left, None);
        assert!(line.contains(left.run.as_str()), "{line}");
    }
    let last = frame.lock().unwrap().clone();
    (last, escapes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_to_the_end_in_the_workbench_at_80_by_24() {
    let (screen, escapes) = demo_in_the_workbench(80, 24, false).await;
    let status = screen.lines().last().unwrap();
    assert!(status.contains("succeeded"), "{screen}");
    assert!(screen.lines().all(|l| l.chars().count() == 80), "{screen}");
    // What the user answered and decided stays in the sidebar.
    for answered in ["Audience = world", "approve = approved"] {
        assert!(screen.contains(answered), "{answered}:\n{screen}");
    }
    // The bell for each prompt went to the screen's escapes, not stdout.
    assert!(escapes.contains(&0x07), "{escapes:?}");
    // The terminal's title named the run and what it did, and was given
    // back at the end.
    let escapes = String::from_utf8_lossy(&escapes);
    for title in [
        "\x1b]2;lev · Greeting script, designed, built, tested and reviewed · running\x07",
        "\x1b]2;lev · Greeting script, designed, built, tested and reviewed · ⚑ 1 waiting · running\x07",
        "\x1b]2;lev · Greeting script, designed, built, tested and reviewed · succeeded\x07",
    ] {
        assert!(escapes.contains(title), "{title:?} not in {escapes:?}");
    }
    assert!(
        escapes.starts_with("\x1b[22;0t") && escapes.ends_with("\x1b[23;0t"),
        "{escapes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_to_the_end_in_the_workbench_at_200_by_50() {
    let (screen, _) = demo_in_the_workbench(200, 50, true).await;
    assert!(
        screen.lines().last().unwrap().contains("succeeded"),
        "{screen}"
    );
    // Every step of the demo has its pane in the grid, in the order the
    // workflow declares them (architect before spec, though spec starts
    // the same moment and ends first).
    let mut at = 0;
    for step in [
        "architect",
        "spec",
        "audience",
        "coder",
        "tester",
        "docs",
        "approve",
        "checks",
        "reviewer",
    ] {
        let title = format!("● {step} ");
        let found = screen[at..].find(&title);
        assert!(
            found.is_some(),
            "{step} not on screen after the one before:\n{screen}"
        );
        at += found.unwrap();
    }
    // The answer picked in the sidebar is what the agents built.
    assert!(screen.contains("Audience = team"), "{screen}");
    assert!(screen.contains("Hello, team!"), "{screen}");
    assert!(!screen.contains("Hello, world!"), "{screen}");
}

/// The runs browser starts runs: `c`, a workflow file with a `name=value`
/// input, Enter — the run executes in the workbench and its shell step
/// prints the input. A file with a YAML error is refused with its line and
/// column, and an objective without a provider is refused with why;
/// neither leaves a run behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_browser_starts_a_workflow_file_with_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let flow = dir.path().join("greet.yaml");
    std::fs::write(
        &flow,
        "version: 1\nkind: workflow\nid: greet\nname: Greet from the browser\ninputs:\n  who: { type: string }\nsteps:\n  hello:\n    type: shell\n    run: echo \"hello, ${{ inputs.who }}\"\n",
    )
    .unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "version: 1\nkind: workflow\nsteps:\n  a: [\n").unwrap();
    let journal = Journal::open(&dir.path().join("lev.redb")).unwrap();
    let workspace = dir.path().join("ws");
    std::fs::create_dir_all(&workspace).unwrap();
    let settings = lev::engine::RunSettings {
        config: Config::default(),
        modes: ModeRegistry::builtin().unwrap(),
        workspace: Some(workspace),
        options: RunOptions {
            interactive: true,
            ..RunOptions::default()
        },
    };
    let engine = Engine::open(journal.clone(), Ok(settings));
    let frame = Arc::new(Mutex::new(String::new()));
    let mut terminal = Terminal::new(Watched {
        inner: TestBackend::new(120, 30),
        frame: frame.clone(),
    })
    .unwrap();
    let app = workbench(&engine);
    let (keys, input) = mpsc::unbounded::<Input>();
    let type_in = |text: &str| {
        keys.unbounded_send(key(KeyCode::Char('c'))).unwrap();
        keys.unbounded_send(Input::Paste(text.into())).unwrap();
        keys.unbounded_send(key(KeyCode::Enter)).unwrap();
    };
    let user = async {
        wait_for(&frame, "the runs browser", |s| s.contains("c new run")).await;
        type_in(&broken.display().to_string());
        let refused = wait_for(&frame, "the YAML error", |s| s.contains("not started")).await;
        assert!(refused.contains("broken.yaml:4"), "{refused}");
        type_in("write a haiku about durable logs");
        wait_for(&frame, "the provider refusal", |s| {
            s.contains("not started: a swarm needs an LLM provider")
        })
        .await;
        type_in(&format!("{} who=browser", flow.display()));
        wait_for(&frame, "the shell step's output", |s| {
            s.contains("hello, browser")
        })
        .await;
        wait_for(&frame, "the run's end on the status line", |s| {
            s.lines().last().is_some_and(|l| l.contains("succeeded"))
        })
        .await;
        keys.unbounded_send(key(KeyCode::Char('q'))).unwrap();
    };
    let mut escapes: Vec<u8> = Vec::new();
    let mut screen = Screen {
        terminal: &mut terminal,
        escapes: &mut escapes,
        synchronized: false,
    };
    let (left, ()) = tokio::join!(app::run_on(&mut screen, input, app, Launch::Browser), user);
    let runs = journal.runs().await.unwrap();
    assert_eq!(runs.len(), 1, "only the started run is recorded: {runs:?}");
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert_eq!(runs[0].name, "Greet from the browser");
    assert_eq!(left.map(|l| l.run), Some(runs[0].id.clone()));
}

/// `I` on an agent's pane opens the context inspector: the parts of its
/// last request with their tokens and texts, read from the journal through
/// the engine; `←` goes to the turn before, Esc closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_context_inspector_shows_an_agents_request_part_by_part() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, deps, run) = demo(dir.path()).await;
    let frame = Arc::new(Mutex::new(String::new()));
    let mut terminal = Terminal::new(Watched {
        inner: TestBackend::new(160, 48),
        frame: frame.clone(),
    })
    .unwrap();
    let mut escapes: Vec<u8> = Vec::new();
    let engine = Engine::open(journal.clone(), Err("no resume in this test".into()));
    let app = workbench(&engine);
    let (keys, input) = mpsc::unbounded::<Input>();
    let user = async {
        wait_for(&frame, "the audience question", |s| {
            s.contains("Who should the script") && s.contains("Enter send")
        })
        .await;
        tokio::time::sleep(Duration::from_millis(lev::tui::state::GRACE_MS + 200)).await;
        keys.unbounded_send(key(KeyCode::Enter)).unwrap();
        wait_for(&frame, "the approval prompt", |s| s.contains("[a] approve")).await;
        tokio::time::sleep(Duration::from_millis(lev::tui::state::GRACE_MS + 200)).await;
        keys.unbounded_send(key(KeyCode::Char('a'))).unwrap();
        wait_for(&frame, "the run's end on the status line", |s| {
            s.lines().last().is_some_and(|l| l.contains("succeeded"))
        })
        .await;
        // The architect's pane (the first), then its context.
        keys.unbounded_send(key(KeyCode::Char('1'))).unwrap();
        keys.unbounded_send(key(KeyCode::Char('I'))).unwrap();
        let shown = wait_for(&frame, "the inspector", |s| {
            s.contains("context · architect · turn 2 of 2")
        })
        .await;
        for part in [
            "TOKENS",
            "role",
            "prompt",
            "turn 1 reply",
            "call list_dir (turn 1)",
            "total",
        ] {
            assert!(shown.contains(part), "{part}:\n{shown}");
        }
        keys.unbounded_send(key(KeyCode::Left)).unwrap();
        wait_for(&frame, "turn 1", |s| {
            s.contains("context · architect · turn 1 of 2")
        })
        .await;
        keys.unbounded_send(key(KeyCode::Esc)).unwrap();
        wait_for(&frame, "the inspector closed", |s| {
            !s.contains("context · architect")
        })
        .await;
        keys.unbounded_send(key(KeyCode::Char('q'))).unwrap();
    };
    let mut screen = Screen {
        terminal: &mut terminal,
        escapes: &mut escapes,
        synchronized: false,
    };
    let driving = engine.start(deps, run.clone(), Start::Fresh).await.unwrap();
    let launch = Launch::Driving(Box::new(driving));
    let _ = tokio::join!(app::run_on(&mut screen, input, app, launch), user);
}
