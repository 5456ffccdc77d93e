//! `skippr transform new` as a newcomer uses it: scaffold, run the project's own test,
//! build it with its one command, and see records flow through it in `skippr demo`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::binary::{Finished, Workdir, run};
use crate::support::toolchains::{self, run_ok};

const LIMIT: Duration = Duration::from_secs(180);

/// The demo feed sends 20 trades, one of them cut short: 19 records and a dead letter.
async fn demo_through(dir: &Path, component: &Path, options: Option<&str>) -> Finished {
    let component = component.to_str().unwrap();
    let mut args = vec!["demo", "--messages", "20", "--rate", "400", "--transform", component];
    args.extend(options.iter().flat_map(|options| ["--options", options]));
    run(dir, &args, LIMIT).await
}

fn assert_demo_flows(done: &Finished) {
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(done.stdout.lines().count(), 19, "{}", done.stdout);
    assert!(
        done.stdout.starts_with(r#"{"namespace":"websocket.127.0.0.1","value":{"type":"trade""#),
        "{}",
        done.stdout
    );
    assert!(done.stderr.contains("delivered 19 records; dead-lettered 1 frames"), "{}", done.stderr);
}

async fn scaffold(dir: &Workdir, name: &str, lang: &str) -> std::path::PathBuf {
    let done = run(&dir.path, &["transform", "new", name, "--lang", lang], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.all_output());
    assert!(done.stdout.contains("skippr demo --transform"), "{}", done.stdout);
    let project = dir.path.join(name);
    assert!(project.join("wit/world.wit").exists() && project.join("README.md").exists());
    project
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_rust_transform_tests_builds_and_runs() {
    let dir = Workdir::new("new-rust");
    let project = scaffold(&dir, "trades-tap", "rust").await;
    // Its own target dir, kept across runs: the first build compiles serde and wit-bindgen.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target");
    let cargo = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO"));
        command.current_dir(&project).args(args).env("CARGO_TARGET_DIR", &target).env_remove("RUSTFLAGS");
        command
    };
    run_ok(&mut cargo(&["test", "--quiet"]), "cargo test in the new project");
    run_ok(
        &mut cargo(&["build", "--quiet", "--target", "wasm32-wasip2", "--release"]),
        "cargo build in the new project",
    );
    let component = target.join("wasm32-wasip2/release/trades_tap.wasm");
    assert_demo_flows(&demo_through(&dir.path, &component, None).await);
    let dropped = demo_through(&dir.path, &component, Some(r#"{"drop_types":["trade"]}"#)).await;
    assert!(dropped.stderr.contains("the transform dropped 19 frames"), "{}", dropped.stderr);
    let refused = demo_through(&dir.path, &component, Some(r#"{"drop_typez":[]}"#)).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("unknown field `drop_typez`, expected `drop_types`"), "{}", refused.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_python_transform_tests_builds_and_runs() {
    let dir = Workdir::new("new-python");
    let project = scaffold(&dir, "py-tap", "python").await;
    let path = toolchains::path_with_componentize_py();
    run_ok(
        Command::new("python3").current_dir(&project).args(["-m", "unittest", "test_shaper"]).env("PATH", &path),
        "the new project's unittest",
    );
    let component = project.join("py-tap.wasm");
    toolchains::build_python(&project, &[&project], &component);
    assert_demo_flows(&demo_through(&dir.path, &component, None).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_js_transform_tests_builds_and_runs() {
    let dir = Workdir::new("new-js");
    let project = scaffold(&dir, "js-tap", "js").await;
    toolchains::npm(&project, "test");
    toolchains::npm(&project, "build");
    assert_demo_flows(&demo_through(&dir.path, &project.join("js-tap.wasm"), None).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_name_or_an_existing_folder_is_refused() {
    let dir = Workdir::new("new-refused");
    let done = run(&dir.path, &["transform", "new", "My_Transform"], LIMIT).await;
    assert_eq!(done.code, Some(2));
    assert!(done.stderr.contains("lowercase letters, digits and dashes"), "{}", done.stderr);
    std::fs::create_dir(dir.path.join("taken")).unwrap();
    let done = run(&dir.path, &["transform", "new", "taken"], LIMIT).await;
    assert_eq!(done.code, Some(2));
    assert!(done.stderr.contains("taken already exists"), "{}", done.stderr);
}
