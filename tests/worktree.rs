//! Steps in their own git worktree, end to end: the real `lev` binary, a
//! real git repository as the workspace, and the loopback LLM server
//! scripting agents that write files with `write_file`.

mod support;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::git::{git, init_repo};
use support::lev::Lev;
use support::llm_server::{Action, LlmServer, OpenAiSse, RecordedRequest, Reply};

/// Two coder steps, each in its own worktree, each writing its own file.
const YAML: &str = r#"
version: 1
kind: workflow
id: isolated
name: Isolated
steps:
  alpha:
    mode: coder
    prompt: "[[step:alpha]] write alpha.txt"
    workspace: { worktree: true }
  beta:
    mode: coder
    prompt: "[[step:beta]] write beta.txt"
    workspace: { worktree: true }
"#;

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// (step marker, turn) of an agent request.
fn request_key(req: &RecordedRequest) -> Option<(String, usize)> {
    let messages = req.json.as_ref()?.get("messages")?.as_array()?;
    let first = messages.iter().find(|m| m["role"] == "user")?;
    let t = first["content"].as_str()?;
    let start = t.find("[[step:")? + 7;
    let end = start + t[start..].find("]]")?;
    let turn = 1 + messages.iter().filter(|m| m["role"] == "assistant").count();
    Some((t[start..end].to_string(), turn))
}

/// Turn 1 writes `<step>.txt`; turn 2 answers. While `hold` is set, turn 2
/// stays open (so a test can kill lev in the middle of the step).
fn server(hold: Arc<AtomicBool>) -> LlmServer {
    LlmServer::with(move |req: &RecordedRequest| {
        let Some((step, turn)) = request_key(req) else {
            return Reply::json(
                400,
                &json!({"error": {"message": "no marker", "type": "t"}}),
            );
        };
        let m = "test-model";
        if turn == 1 {
            let args =
                json!({"path": format!("{step}.txt"), "content": format!("{step} was here\n")});
            return OpenAiSse::new(m)
                .tool_call(0, "call_1", "write_file", &args.to_string(), 2)
                .usage(10, 5)
                .finish("tool_calls")
                .reply();
        }
        let sse = OpenAiSse::new(m);
        let sse = if hold.load(Ordering::SeqCst) {
            sse.action(Action::Delay(60_000))
        } else {
            sse
        };
        sse.text(&format!("{step} done"), 2)
            .usage(10, 5)
            .finish("stop")
            .reply()
    })
}

fn write_wf(lev: &Lev, yaml: &str) -> String {
    // Outside the repository: the main worktree stays exactly as committed.
    let path = lev.dir.path().join("wf.yaml");
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

fn run_id(out: &Output) -> String {
    support::lev::run_id_from(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|| panic!("no run id: {}", text(out)))
}

fn facts<'a>(events: &'a [Value], step: &str, kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == "worktree" && e["step"] == step && e["fact"]["kind"] == kind)
        .collect()
}

#[test]
fn two_agents_work_in_their_own_worktrees_until_merged_or_discarded() {
    let server = server(Arc::new(AtomicBool::new(false)));
    let lev = Lev::new().with_openai(&server.base_url());
    let ws = lev.workspace();
    init_repo(&ws);
    let wf = write_wf(&lev, YAML);
    let out = lev.run(&["run", &wf, "--headless"]);
    assert!(out.status.success(), "{}", text(&out));
    let run = run_id(&out);

    // Each step's branch holds exactly its own commit; the main worktree is untouched.
    for step in ["alpha", "beta"] {
        let branch = format!("lev/{run}/{step}");
        assert_eq!(
            git(&ws, &["rev-list", "--count", &format!("main..{branch}")]),
            "1"
        );
        let files = git(&ws, &["diff", "--name-only", &format!("main...{branch}")]);
        assert_eq!(files, format!("{step}.txt"));
        let subject = git(&ws, &["log", "-1", "--format=%s", &branch]);
        assert!(
            subject.contains(&run) && subject.contains(step),
            "{subject}"
        );
        assert!(!ws.join(format!("{step}.txt")).exists());
    }
    assert_eq!(git(&ws, &["status", "--porcelain"]), "");
    assert_eq!(git(&ws, &["rev-list", "--count", "main"]), "1");

    // Journaled: where each worktree is, and what its step changed.
    let events = lev.events(&run);
    for step in ["alpha", "beta"] {
        let ready = facts(&events, step, "ready");
        assert_eq!(ready.len(), 1, "{events:?}");
        let path = ready[0]["fact"]["path"].as_str().unwrap();
        assert!(Path::new(path).join(format!("{step}.txt")).is_file());
        let changed = facts(&events, step, "changed");
        assert_eq!(changed.len(), 1, "{events:?}");
        assert_eq!(changed[0]["fact"]["files_changed"], 1);
        assert_eq!(changed[0]["fact"]["insertions"], 1);
    }

    let list = lev.run(&["worktrees", &run]);
    assert!(list.status.success(), "{}", text(&list));
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        listed.contains(&format!("alpha  lev/{run}/alpha  (open; +1 -0 in 1 file)")),
        "{listed}"
    );
    assert!(listed.contains(&format!("lev/{run}/beta")), "{listed}");

    let diff = lev.run(&["worktrees", &run, "--diff", "alpha"]);
    assert!(diff.status.success(), "{}", text(&diff));
    let patch = String::from_utf8_lossy(&diff.stdout).into_owned();
    assert!(
        patch.contains("+++ b/alpha.txt") && patch.contains("+alpha was here"),
        "{patch}"
    );

    let merged = lev.run(&["worktrees", &run, "--merge", "alpha"]);
    assert!(merged.status.success(), "{}", text(&merged));
    assert_eq!(
        std::fs::read_to_string(ws.join("alpha.txt")).unwrap(),
        "alpha was here\n"
    );
    assert!(!ws.join("beta.txt").exists());
    let parents = git(&ws, &["log", "-1", "--format=%P", "main"]);
    assert_eq!(parents.split(' ').count(), 2, "a --no-ff merge commit");

    let discarded = lev.run(&["worktrees", &run, "--discard", "beta"]);
    assert!(discarded.status.success(), "{}", text(&discarded));
    assert_eq!(
        git(&ws, &["branch", "--list", &format!("lev/{run}/beta")]),
        ""
    );
    let beta_path = facts(&lev.events(&run), "beta", "ready")[0]["fact"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!Path::new(&beta_path).exists());

    // Both are facts of the run: replay and the listing show them.
    let events = lev.events(&run);
    assert_eq!(facts(&events, "alpha", "merged").len(), 1);
    assert_eq!(facts(&events, "beta", "discarded").len(), 1);
    let transcript = lev.replay(&run);
    assert!(
        transcript.contains(&format!(
            "step alpha: branch lev/{run}/alpha merged into main"
        )),
        "{transcript}"
    );
    assert!(
        transcript.contains("step beta: worktree removed"),
        "{transcript}"
    );
    let listed = String::from_utf8_lossy(&lev.run(&["worktrees", &run]).stdout).into_owned();
    assert!(
        listed.contains("(merged into main; +1 -0 in 1 file)"),
        "{listed}"
    );
    assert!(listed.contains("(discarded;"), "{listed}");
    // A finished run stays finished after facts were appended to it.
    let resumed = lev.run(&["resume", &run, "--headless"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(server.request_count(), 4);
}

#[test]
fn kill9_mid_step_then_resume_reuses_the_worktree() {
    let hold = Arc::new(AtomicBool::new(true));
    let server = server(hold.clone());
    let lev = Lev::new().with_openai(&server.base_url());
    let ws = lev.workspace();
    init_repo(&ws);
    let one = "version: 1\nkind: workflow\nid: one\nname: One\nsteps:\n  alpha:\n    mode: coder\n    prompt: \"[[step:alpha]] write alpha.txt\"\n    workspace: { worktree: true }\n";
    let wf = write_wf(&lev, one);
    let mut child = lev.spawn(&["run", &wf, "--headless"]);
    // Turn 2 is asked only after turn 1's write_file was journaled.
    assert!(server.wait_for_requests(2, Duration::from_secs(30)));
    child.kill().unwrap();
    child.wait().unwrap();
    hold.store(false, Ordering::SeqCst);

    let out = lev.run(&["runs", "--json"]);
    let run = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|v| v["id"].as_str().map(str::to_string))
        .unwrap();
    let before = lev.events(&run);
    let ready = facts(&before, "alpha", "ready");
    assert_eq!(ready.len(), 1, "{before:?}");
    let path = ready[0]["fact"]["path"].as_str().unwrap().to_string();
    assert!(Path::new(&path).join("alpha.txt").is_file());
    assert!(facts(&before, "alpha", "changed").is_empty());

    let out = lev.run(&["resume", &run, "--headless"]);
    assert!(out.status.success(), "{}", text(&out));
    let events = lev.events(&run);
    // The same worktree and branch, found again rather than made twice.
    assert_eq!(facts(&events, "alpha", "ready").len(), 1, "{events:?}");
    let worktrees = git(&ws, &["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 2, "{worktrees}");
    assert!(worktrees.contains(&format!("branch refs/heads/lev/{run}/alpha")));
    assert_eq!(
        git(
            &ws,
            &["rev-list", "--count", &format!("main..lev/{run}/alpha")]
        ),
        "1"
    );
    assert_eq!(facts(&events, "alpha", "changed").len(), 1);
    // write_file was not run again: its recorded result was reused.
    let writes = events
        .iter()
        .filter(|e| e["type"] == "tool_finished" && e["name"] == "write_file")
        .count();
    assert_eq!(writes, 1);
    assert_eq!(lev.show(&run)["status"], "succeeded");
}

#[test]
fn a_worktree_step_outside_a_repository_fails_clearly() {
    let server = server(Arc::new(AtomicBool::new(false)));
    let lev = Lev::new().with_openai(&server.base_url());
    let wf = write_wf(&lev, YAML);
    let out = lev.run(&["run", &wf, "--headless"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("is not inside a git repository"), "{all}");
    assert_eq!(server.request_count(), 0, "no agent ran");
}

/// The first user message of a swarm request names the task (`Your task (`id`)`).
fn swarm_who(req: &RecordedRequest) -> (String, usize) {
    let messages = req.json.as_ref().unwrap()["messages"]
        .as_array()
        .unwrap()
        .clone();
    let brief = messages
        .iter()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let turn = 1 + messages.iter().filter(|m| m["role"] == "assistant").count();
    if brief.contains("Plan this objective") {
        return ("plan".into(), turn);
    }
    let id = brief
        .find("Your task (`")
        .map(|i| {
            let rest = &brief[i + 12..];
            rest[..rest.find('`').unwrap_or(0)].to_string()
        })
        .unwrap_or_default();
    (id, turn)
}

#[test]
fn a_swarm_with_worktrees_isolates_the_tasks_that_write() {
    let plan = json!({"summary": "plan", "tasks": [
        {"id": "design", "title": "design it", "mode": "architect", "needs": [],
         "acceptance": ["designed"], "files": []},
        {"id": "code", "title": "code it", "mode": "coder", "needs": ["design"],
         "acceptance": ["coded"], "files": []},
    ]})
    .to_string();
    let server = LlmServer::with(move |req: &RecordedRequest| {
        let m = "test-model";
        let (who, turn) = swarm_who(req);
        let sse = match (who.as_str(), turn) {
            ("plan", _) => OpenAiSse::new(m).text(&plan, 2),
            ("code", 1) => OpenAiSse::new(m).tool_call(
                0,
                "call_1",
                "write_file",
                r#"{"path":"code.txt","content":"code\n"}"#,
                2,
            ),
            (id, _) => OpenAiSse::new(m).text(&format!("{id} done"), 2),
        };
        sse.usage(10, 5).finish("stop").reply()
    });
    let lev = Lev::new().with_openai(&server.base_url());
    let ws = lev.workspace();
    init_repo(&ws);
    git(&ws, &["branch", "trunk"]);
    let out = lev.run(&[
        "workflow",
        "build it",
        "--headless",
        "--yes",
        "--worktrees",
        "--base",
        "trunk",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let run = run_id(&out);
    let events = lev.events(&run);
    // The coder got a worktree from `trunk`; the architect cannot write and got none.
    let ready = facts(&events, "code", "ready");
    assert_eq!(ready.len(), 1, "{events:?}");
    assert_eq!(ready[0]["fact"]["base"], "trunk");
    assert!(facts(&events, "design", "ready").is_empty());
    assert_eq!(
        git(
            &ws,
            &["rev-list", "--count", &format!("trunk..lev/{run}/code")]
        ),
        "1"
    );
    assert!(!ws.join("code.txt").exists());
    let listed = String::from_utf8_lossy(&lev.run(&["worktrees", &run]).stdout).into_owned();
    assert!(
        listed.contains(&format!("code  lev/{run}/code  (open; +1 -0 in 1 file)")),
        "{listed}"
    );
}

#[test]
fn a_shell_step_in_a_worktree_runs_there_and_its_output_is_committed() {
    let lev = Lev::new();
    let ws = lev.workspace();
    init_repo(&ws);
    let yaml = "version: 1\nkind: workflow\nid: sh\nname: Sh\nsteps:\n  build:\n    type: shell\n    run: pwd > where.txt\n    workspace: { worktree: true }\n";
    let wf = write_wf(&lev, yaml);
    let out = lev.run(&["run", &wf, "--headless"]);
    assert!(out.status.success(), "{}", text(&out));
    let run = run_id(&out);
    let events = lev.events(&run);
    let path = facts(&events, "build", "ready")[0]["fact"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let branch = format!("lev/{run}/build");
    let written = git(&ws, &["show", &format!("{branch}:where.txt")]);
    assert_eq!(
        Path::new(&written).canonicalize().unwrap(),
        Path::new(&path).canonicalize().unwrap()
    );
    assert!(!ws.join("where.txt").exists());
    assert_eq!(git(&ws, &["status", "--porcelain"]), "");
}

/// A repository with `origin`, a bare repository beside it.
fn with_origin(lev: &Lev) -> std::path::PathBuf {
    let ws = lev.workspace();
    init_repo(&ws);
    support::git::origin_for(&ws, lev.dir.path(), "origin.git")
}

const BUILD: &str = "version: 1\nkind: workflow\nid: sh\nname: Sh\nsteps:\n  build:\n    type: shell\n    run: echo built > out.txt\n    workspace: { worktree: true }\n";

#[test]
fn a_step_s_branch_pushed_to_a_remote_is_merged_from_there_when_this_clone_lost_it() {
    let lev = Lev::new();
    let ws = lev.workspace();
    let remote = with_origin(&lev);
    let wf = write_wf(&lev, BUILD);
    let out = lev.run(&["run", &wf, "--headless", "--push-to", "origin"]);
    assert!(out.status.success(), "{}", text(&out));
    let run = run_id(&out);
    let events = lev.events(&run);
    let changed = facts(&events, "build", "changed")[0]["fact"]["commit"].clone();
    let pushed = facts(&events, "build", "pushed");
    assert_eq!(pushed.len(), 1, "{events:?}");
    assert_eq!(pushed[0]["fact"]["remote"], "origin");
    assert_eq!(pushed[0]["fact"]["commit"], changed);
    let branch = format!("lev/{run}/build");
    assert_eq!(
        git(&remote, &["rev-parse", &branch]),
        changed.as_str().unwrap()
    );

    // As on a machine that never ran the step: no worktree, no branch.
    let path = facts(&events, "build", "ready")[0]["fact"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    git(&ws, &["worktree", "remove", "--force", &path]);
    git(&ws, &["branch", "--quiet", "-D", &branch]);
    let out = lev.run(&["worktrees", &run]);
    assert!(
        text(&out).contains("(open; +1 -0 in 1 file; pushed to origin)"),
        "{}",
        text(&out)
    );
    let out = lev.run(&["worktrees", &run, "--diff", "build"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("+built"), "{}", text(&out));
    let out = lev.run(&["worktrees", &run, "--merge", "build"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(ws.join("out.txt")).unwrap(),
        "built\n"
    );

    let out = lev.run(&["worktrees", &run, "--discard", "build"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("here and on origin"), "{}", text(&out));
    assert_eq!(git(&remote, &["branch", "--list", "lev/*"]), "");
}

#[test]
fn push_to_is_refused_before_a_run_is_made_when_it_cannot_mean_anything() {
    let lev = Lev::new();
    with_origin(&lev);
    let wf = write_wf(&lev, BUILD);
    let out = lev.run(&["run", &wf, "--headless", "--push-to", "upstream"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no remote `upstream` (it has origin)"),
        "{}",
        text(&out)
    );
    let plain = write_wf(
        &lev,
        "version: 1\nkind: workflow\nid: p\nname: P\nsteps:\n  s: { type: shell, run: 'true' }\n",
    );
    let out = lev.run(&["run", &plain, "--headless", "--push-to", "origin"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no step of"), "{}", text(&out));
    let out = lev.run(&["runs", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "",
        "no run was made"
    );
}

#[test]
fn a_push_the_remote_keeps_refusing_fails_the_step_with_its_work_kept_on_the_branch() {
    let lev = Lev::new();
    let ws = lev.workspace();
    let remote = with_origin(&lev);
    // A remote that answers but takes nothing.
    let hook = remote.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'pushes are frozen' >&2\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let wf = write_wf(&lev, BUILD);
    let out = lev.run(&["run", &wf, "--headless", "--push-to", "origin"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("could not be pushed to `origin`"),
        "{}",
        text(&out)
    );
    let run = run_id(&out);
    let branch = format!("lev/{run}/build");
    assert_eq!(git(&ws, &["show", &format!("{branch}:out.txt")]), "built");
    assert!(facts(&lev.events(&run), "build", "pushed").is_empty());
    let out = lev.run(&["show", &run]);
    assert!(text(&out).contains("pushes are frozen"), "{}", text(&out));
}

#[test]
fn an_unreachable_remote_fails_the_step_before_its_work() {
    let lev = Lev::new();
    let ws = lev.workspace();
    init_repo(&ws);
    let wf = write_wf(&lev, BUILD);
    let nowhere = lev
        .dir
        .path()
        .join("no-such-remote.git")
        .display()
        .to_string();
    let out = lev.run(&["run", &wf, "--headless", "--push-to", &nowhere]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("cannot reach"), "{}", text(&out));
    let run = run_id(&out);
    assert!(facts(&lev.events(&run), "build", "ready").is_empty());
    assert!(!ws.join(".lev/worktrees").join(&run).exists());
}

#[test]
fn a_worktree_step_sees_the_files_of_the_worktree_steps_it_needs() {
    let lev = Lev::new();
    let ws = lev.workspace();
    init_repo(&ws);
    let yaml = r#"
version: 1
kind: workflow
id: stack
name: Stack
steps:
  code:
    type: shell
    run: echo "fn main() {}" > main.rs
    workspace: { worktree: true }
  test:
    needs: [code]
    type: shell
    run: cat main.rs > tested.txt
    workspace: { worktree: true }
"#;
    let wf = write_wf(&lev, yaml);
    let out = lev.run(&["run", &wf, "--headless"]);
    assert!(out.status.success(), "{}", text(&out));
    let run = run_id(&out);
    let tested = git(&ws, &["show", &format!("lev/{run}/test:tested.txt")]);
    assert_eq!(tested, "fn main() {}");
    // What it started with is said where its worktree is.
    assert!(
        text(&out).contains(&format!("(from main, with the work of lev/{run}/code)")),
        "{}",
        text(&out)
    );
    // Merging the later step brings the earlier one's work with it.
    let out = lev.run(&["worktrees", &run, "--merge", "test"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(ws.join("main.rs").is_file() && ws.join("tested.txt").is_file());
    let out = lev.run(&["worktrees", &run, "--merge", "code"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("already merged before"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_journal_that_names_a_folder_or_branch_lev_did_not_make_is_refused() {
    let lev = Lev::new();
    let ws = lev.workspace();
    init_repo(&ws);
    let wf = write_wf(&lev, BUILD);
    let out = lev.run(&["run", &wf, "--headless"]);
    assert!(out.status.success(), "{}", text(&out));
    let run = run_id(&out);
    let file = lev.dir.path().join("run.jsonl");
    let exported = lev.run(&["export", &run, "-o", file.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", text(&exported));
    // The ready fact doctored to name a folder of the user's and `main`.
    let victim = lev.dir.path().join("precious");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), "mine\n").unwrap();
    let real = facts(&lev.events(&run), "build", "ready")[0]["fact"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let doctored = std::fs::read_to_string(&file)
        .unwrap()
        .replace(&real, &victim.display().to_string())
        .replace(&format!("lev/{run}/build"), "main");
    std::fs::write(&file, doctored).unwrap();
    let other = Lev::new();
    let imported = other.run(&["import", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", text(&imported));
    for action in ["--discard", "--merge"] {
        let out = other.run(&["worktrees", &run, action, "build"]);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("which lev does not make"),
            "{}",
            text(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(victim.join("keep.txt")).unwrap(),
        "mine\n"
    );
    assert_eq!(git(&ws, &["branch", "--list", "main"]), "* main");
}

#[test]
fn a_branch_on_another_machine_that_was_not_pushed_is_refused_saying_why() {
    let lev = Lev::new();
    let app = lev.workspace().join("app");
    std::fs::create_dir_all(&app).unwrap();
    init_repo(&app);
    let wf = write_wf(&lev, BUILD);
    let app_arg = app.display().to_string();
    let out = lev.run(&["run", &wf, "--headless", "--workspace", &app_arg]);
    assert!(out.status.success(), "{}", text(&out));
    let run = run_id(&out);
    // As seen from a machine without that repository.
    std::fs::rename(&app, lev.workspace().join("elsewhere")).unwrap();
    let out = lev.run(&["worktrees", &run]);
    assert!(
        text(&out).contains("(on the machine that ran it)"),
        "{}",
        text(&out)
    );
    let out = lev.run(&["worktrees", &run, "--merge", "build"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("on the machine that ran it, not on this one")
            && text(&out).contains("--push-to"),
        "{}",
        text(&out)
    );
}
