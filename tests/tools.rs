//! Agent tools through `tools::call` on real files in temp dirs: happy
//! paths, every way out of the workspace, caps, and bad arguments.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use lev::tools::{GREP_MAX_MATCHES, READ_MAX_LINES, ShellPolicy, ToolEnv, ToolOutput, call};
use serde_json::json;
use tempfile::TempDir;

struct Workspace {
    dir: TempDir,
    outside: TempDir,
    env: ToolEnv,
}

fn workspace() -> Workspace {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let env = ToolEnv {
        root: dir.path().canonicalize().unwrap(),
        shell: ShellPolicy::default(),
        shell_timeout: Duration::from_secs(30),
        idempotency_key: "run9:3:2".into(),
        process_started: None,
        ask_before: Vec::new(),
        offline: false,
    };
    Workspace { dir, outside, env }
}

impl Workspace {
    fn root(&self) -> &Path {
        &self.env.root
    }

    fn write(&self, rel: &str, content: &str) {
        let path = self.root().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root().join(rel)).unwrap()
    }

    async fn call(&self, name: &str, args: serde_json::Value) -> ToolOutput {
        call(&self.env, name, &args.to_string()).await
    }

    async fn ok(&self, name: &str, args: serde_json::Value) -> String {
        let out = self.call(name, args.clone()).await;
        assert!(!out.is_error, "{name} {args} failed: {}", out.content);
        out.content
    }

    async fn err(&self, name: &str, args: serde_json::Value) -> String {
        let out = self.call(name, args.clone()).await;
        assert!(
            out.is_error,
            "{name} {args} should fail, got: {}",
            out.content
        );
        out.content
    }
}

#[tokio::test]
async fn read_file_numbers_lines_and_pages() {
    let ws = workspace();
    ws.write("notes.txt", "alpha\nbeta\ngamma\n");
    let out = ws.ok("read_file", json!({"path": "notes.txt"})).await;
    assert_eq!(out, "     1\talpha\n     2\tbeta\n     3\tgamma\n");

    let out = ws
        .ok(
            "read_file",
            json!({"path": "notes.txt", "offset": 2, "limit": 1}),
        )
        .await;
    assert!(out.starts_with("     2\tbeta\n"), "{out}");
    assert!(out.contains("offset=3"), "{out}");

    let out = ws
        .ok("read_file", json!({"path": "notes.txt", "offset": 10}))
        .await;
    assert!(out.contains("past the end"), "{out}");
}

#[tokio::test]
async fn read_file_caps_long_files_and_says_how_to_continue() {
    let ws = workspace();
    let body: String = (1..=5000).map(|i| format!("line {i}\n")).collect();
    ws.write("big.txt", &body);
    let out = ws.ok("read_file", json!({"path": "big.txt"})).await;
    assert_eq!(
        out.lines().filter(|l| l.contains("\tline ")).count(),
        READ_MAX_LINES
    );
    assert!(
        out.contains(&format!("offset={}", READ_MAX_LINES + 1)),
        "{}",
        &out[out.len() - 200..]
    );

    // Byte cap: few, very wide lines.
    let wide: String = (0..200)
        .map(|_| format!("{}\n", "x".repeat(3000)))
        .collect();
    ws.write("wide.txt", &wide);
    let out = ws.ok("read_file", json!({"path": "wide.txt"})).await;
    assert!(out.len() <= 256 * 1024 + 200);
    assert!(out.contains("more follows"), "{}", &out[out.len() - 200..]);
}

#[tokio::test]
async fn read_file_reports_binary_and_directories() {
    let ws = workspace();
    fs::write(ws.root().join("blob.bin"), [0u8, 1, 2, 3, 0, 255]).unwrap();
    let out = ws.ok("read_file", json!({"path": "blob.bin"})).await;
    assert!(out.contains("binary file (6 bytes)"), "{out}");
    fs::create_dir(ws.root().join("dir")).unwrap();
    let out = ws.err("read_file", json!({"path": "dir"})).await;
    assert!(out.contains("list_dir"), "{out}");
    let out = ws.err("read_file", json!({"path": "missing.txt"})).await;
    assert!(out.contains("missing.txt"), "{out}");
}

#[tokio::test]
async fn list_dir_sorts_and_marks_directories() {
    let ws = workspace();
    ws.write("b.txt", "");
    ws.write("a.txt", "");
    ws.write("src/lib.rs", "");
    ws.write(".hidden", "");
    symlink(ws.root().join("a.txt"), ws.root().join("link")).unwrap();
    let out = ws.ok("list_dir", json!({})).await;
    assert_eq!(out, ".hidden\na.txt\nb.txt\nlink@\nsrc/\n");
    let out = ws.ok("list_dir", json!({"path": "src"})).await;
    assert_eq!(out, "lib.rs\n");
}

#[tokio::test]
async fn list_dir_is_capped() {
    let ws = workspace();
    for i in 0..1005 {
        ws.write(&format!("many/f{i:04}"), "");
    }
    let out = ws.ok("list_dir", json!({"path": "many"})).await;
    assert!(out.starts_with("f0000\nf0001\n"));
    assert!(
        out.ends_with("[... 5 more entries not shown]\n"),
        "{}",
        &out[out.len() - 80..]
    );
}

#[tokio::test]
async fn write_file_creates_parents_and_overwrites_atomically() {
    let ws = workspace();
    let out = ws
        .ok(
            "write_file",
            json!({"path": "deep/er/new.txt", "content": "héllo"}),
        )
        .await;
    assert!(
        out.contains("created `deep/er/new.txt` (6 bytes written)"),
        "{out}"
    );
    assert_eq!(ws.read("deep/er/new.txt"), "héllo");

    let out = ws
        .ok(
            "write_file",
            json!({"path": "deep/er/new.txt", "content": "bye"}),
        )
        .await;
    assert!(out.contains("overwrote"), "{out}");
    assert_eq!(ws.read("deep/er/new.txt"), "bye");
    // No temp files left behind.
    let names: Vec<_> = fs::read_dir(ws.root().join("deep/er"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    fs::create_dir(ws.root().join("adir")).unwrap();
    ws.err("write_file", json!({"path": "adir", "content": "x"}))
        .await;
}

#[tokio::test]
async fn write_file_keeps_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let ws = workspace();
    ws.write("run.sh", "#!/bin/sh\n");
    let path = ws.root().join("run.sh");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    ws.ok(
        "write_file",
        json!({"path": "run.sh", "content": "#!/bin/sh\necho hi\n"}),
    )
    .await;
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o755
    );
}

#[tokio::test]
async fn every_escape_is_refused() {
    let ws = workspace();
    let outside = ws.outside.path().canonicalize().unwrap();
    fs::write(outside.join("secret.txt"), "secret").unwrap();
    ws.write("inside.txt", "inside");
    symlink(&outside, ws.root().join("out_dir")).unwrap();
    symlink(outside.join("secret.txt"), ws.root().join("out_file")).unwrap();
    symlink(outside.join("not-yet.txt"), ws.root().join("dangling")).unwrap();
    fs::create_dir(ws.root().join("sub")).unwrap();
    symlink("../..", ws.root().join("sub/up")).unwrap();
    let abs_secret = outside.join("secret.txt").display().to_string();

    let escapes = [
        "../secret.txt",
        "sub/../../secret.txt",
        abs_secret.as_str(),
        "/etc/passwd",
        "out_dir/secret.txt",
        "out_file",
        "sub/up/etc/passwd",
        "dangling",
    ];
    for path in escapes {
        let out = ws.err("read_file", json!({"path": path})).await;
        assert!(
            !out.contains("secret\n") && !out.contains("\tsecret"),
            "{path}: {out}"
        );
        ws.err("list_dir", json!({"path": path})).await;
        ws.err("grep", json!({"pattern": "secret", "path": path}))
            .await;
        ws.err("write_file", json!({"path": path, "content": "pwned"}))
            .await;
        ws.err(
            "edit_file",
            json!({"path": path, "old": "secret", "new": "pwned"}),
        )
        .await;
    }
    // New files below a symlinked directory are refused too.
    ws.err(
        "write_file",
        json!({"path": "out_dir/new/file.txt", "content": "x"}),
    )
    .await;
    assert_eq!(
        fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "secret"
    );
    assert!(!outside.join("not-yet.txt").exists());
    assert!(!outside.join("new").exists());

    // Absolute paths inside the workspace and harmless `..` still work.
    let abs_inside = ws.root().join("inside.txt").display().to_string();
    let out = ws.ok("read_file", json!({"path": abs_inside})).await;
    assert!(out.contains("inside"));
    let out = ws
        .ok("read_file", json!({"path": "sub/../inside.txt"}))
        .await;
    assert!(out.contains("inside"));
    // A symlink that stays inside is fine.
    symlink(ws.root().join("inside.txt"), ws.root().join("alias.txt")).unwrap();
    let out = ws.ok("read_file", json!({"path": "alias.txt"})).await;
    assert!(out.contains("inside"));
    drop(ws.dir);
}

#[tokio::test]
async fn edit_file_requires_exactly_one_match() {
    let ws = workspace();
    ws.write("code.rs", "fn a() {}\nfn b() {}\nfn b() {}\n");

    let out = ws
        .err(
            "edit_file",
            json!({"path": "code.rs", "old": "fn c()", "new": "x"}),
        )
        .await;
    assert!(out.contains("0 matches"), "{out}");

    let out = ws
        .err(
            "edit_file",
            json!({"path": "code.rs", "old": "fn b() {}", "new": "fn c() {}"}),
        )
        .await;
    assert!(out.contains("occurs 2 times"), "{out}");
    assert_eq!(ws.read("code.rs"), "fn a() {}\nfn b() {}\nfn b() {}\n");

    let out = ws
        .ok(
            "edit_file",
            json!({"path": "code.rs", "old": "fn a() {}", "new": "fn a() { 1 }"}),
        )
        .await;
    assert!(out.contains("replaced 1 occurrence"), "{out}");
    assert_eq!(ws.read("code.rs"), "fn a() { 1 }\nfn b() {}\nfn b() {}\n");

    let out = ws
        .ok(
            "edit_file",
            json!({"path": "code.rs", "old": "fn b() {}", "new": "fn c() {}", "replace_all": true}),
        )
        .await;
    assert!(out.contains("replaced 2 occurrences"), "{out}");
    assert_eq!(ws.read("code.rs"), "fn a() { 1 }\nfn c() {}\nfn c() {}\n");

    ws.err(
        "edit_file",
        json!({"path": "code.rs", "old": "", "new": "x"}),
    )
    .await;
    ws.err(
        "edit_file",
        json!({"path": "nope.rs", "old": "a", "new": "b"}),
    )
    .await;
}

#[tokio::test]
async fn grep_finds_matches_and_skips_ignored_trees() {
    let ws = workspace();
    ws.write("src/main.rs", "fn main() {\n    let needle = 1;\n}\n");
    ws.write("src/lib.rs", "// needle in lib\n");
    ws.write("README.md", "a needle here\n");
    ws.write("target/debug/out.rs", "needle\n");
    ws.write("node_modules/x/index.js", "needle\n");
    ws.write(".git/config", "needle\n");
    ws.write(".hidden/file", "needle\n");
    fs::write(ws.root().join("bin.dat"), b"needle\0\x01").unwrap();

    let out = ws.ok("grep", json!({"pattern": "needle"})).await;
    assert_eq!(
        out,
        "README.md:1: a needle here\nsrc/lib.rs:1: // needle in lib\nsrc/main.rs:2:     let needle = 1;\n"
    );

    let out = ws
        .ok("grep", json!({"pattern": "needle", "glob": "*.rs"}))
        .await;
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = ws
        .ok(
            "grep",
            json!({"pattern": "needle", "glob": "src/**/main.rs"}),
        )
        .await;
    assert_eq!(out, "src/main.rs:2:     let needle = 1;\n");
    let out = ws
        .ok(
            "grep",
            json!({"pattern": "(?i)NEEDLE", "path": "src/lib.rs"}),
        )
        .await;
    assert_eq!(out, "src/lib.rs:1: // needle in lib\n");
    let out = ws.ok("grep", json!({"pattern": "haystack"})).await;
    assert!(out.contains("no matches"), "{out}");

    let out = ws.err("grep", json!({"pattern": "(unclosed"})).await;
    assert!(out.contains("invalid regex"), "{out}");
}

#[tokio::test]
async fn grep_caps_matches_with_a_count_of_the_rest() {
    let ws = workspace();
    let body: String = (0..GREP_MAX_MATCHES + 50)
        .map(|i| format!("hit {i}\n"))
        .collect();
    ws.write("many.txt", &body);
    let out = ws.ok("grep", json!({"pattern": "^hit"})).await;
    assert_eq!(
        out.lines().filter(|l| l.starts_with("many.txt:")).count(),
        GREP_MAX_MATCHES
    );
    assert!(
        out.contains("[... 50 more matches not shown"),
        "{}",
        &out[out.len() - 120..]
    );
}

#[tokio::test]
async fn invalid_arguments_are_errors_the_model_can_read() {
    let ws = workspace();
    for (tool, args) in [
        ("read_file", "{not json"),
        ("read_file", "{}"),
        ("read_file", r#"{"path": 5}"#),
        ("write_file", r#"{"path": "a.txt"}"#),
        ("edit_file", r#"{"path": "a.txt", "old": "x"}"#),
        ("grep", "[]"),
        ("run_shell", r#"{"timeout_secs": 3}"#),
        ("list_dir", "null"),
    ] {
        let out = call(&ws.env, tool, args).await;
        assert!(out.is_error, "{tool} {args}: {}", out.content);
        assert!(
            out.content
                .contains(&format!("invalid arguments for {tool}")),
            "{}",
            out.content
        );
    }
    let out = call(&ws.env, "missing_field", "{}").await;
    assert!(out.is_error && out.content.contains("unknown tool"));
    // An empty string counts as no arguments.
    let out = call(&ws.env, "list_dir", "").await;
    assert!(!out.is_error, "{}", out.content);
}

#[tokio::test]
async fn run_shell_reports_exit_code_and_streams() {
    let ws = workspace();
    ws.write("file.txt", "content");
    let out = ws
        .ok(
            "run_shell",
            json!({"command": "cat file.txt; echo; echo \"key=$LEV_IDEMPOTENCY_KEY\" >&2"}),
        )
        .await;
    assert!(out.starts_with("exit code: 0"), "{out}");
    assert!(out.contains("--- stdout ---\ncontent\n"), "{out}");
    assert!(out.contains("--- stderr ---\nkey=run9:3:2\n"), "{out}");

    let out = ws
        .err("run_shell", json!({"command": "echo oops >&2; exit 4"}))
        .await;
    assert!(out.starts_with("exit code: 4"), "{out}");
    assert!(out.contains("stdout: (empty)"), "{out}");
}

#[tokio::test]
async fn run_shell_times_out() {
    let mut ws = workspace();
    ws.env.shell_timeout = Duration::from_secs(1);
    let out = ws
        .err(
            "run_shell",
            json!({"command": "sleep 1000", "timeout_secs": 600}),
        )
        .await;
    assert!(out.starts_with("timed out after 1s"), "{out}");
}

#[tokio::test]
async fn run_shell_shows_only_the_tail_of_long_output() {
    let ws = workspace();
    let out = ws.ok("run_shell", json!({"command": "seq 1 100000"})).await;
    assert!(out.contains("earlier bytes omitted"), "{}", &out[..200]);
    assert!(out.contains("99999\n100000\nstderr: (empty)"), "{out}");
    assert!(out.len() < 20 * 1024);
}

#[tokio::test]
async fn ask_user_is_not_run_here() {
    let ws = workspace();
    let out = ws.err("ask_user", json!({"question": "?"})).await;
    assert!(out.contains("engine"), "{out}");
}
