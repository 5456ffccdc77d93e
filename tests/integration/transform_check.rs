//! `skippr transform check` as a user runs it.

use std::time::Duration;

use crate::support::binary::{Workdir, run};
use crate::support::fixture;

const LIMIT: Duration = Duration::from_secs(60);

/// The default shaper passes and shows its records and rejections.
#[tokio::test(flavor = "multi_thread")]
async fn check_of_the_default_component_shows_what_it_produces() {
    let dir = Workdir::new("check-default");
    let done = run(&dir.path, &["transform", "check"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.all_output());
    let stdout = &done.stdout;
    for line in
        ["world:       skippr:connector@0.1.0 transform", "imports:     skippr:connector/types@0.1.0", "size:        "]
    {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    assert!(stdout.contains("instantiate: ") && stdout.contains("compile:     "), "{stdout}");
    assert!(stdout.contains("4 sample frames -> 2 record(s) in 1 batch(es), 2 rejected, 0 dropped"), "{stdout}");
    assert!(stdout.contains(r#""value":{"type":"trade","symbol":"BTC-USD""#), "{stdout}");
    assert!(stdout.contains("rejected frame 1: invalid JSON"), "{stdout}");
}

/// A component file given by path is checked the same way.
#[tokio::test(flavor = "multi_thread")]
async fn check_of_a_component_file_loads_it_from_the_path() {
    let dir = Workdir::new("check-file");
    let path = fixture("skippr_fixture_hostile");
    let done = run(&dir.path, &["transform", "check", path.to_str().unwrap(), "--options", "\"panic\""], LIMIT).await;
    assert_eq!(done.code, Some(1));
    assert!(done.stderr.contains("failed in `push`: it trapped"), "{}", done.stderr);
    assert!(done.stderr.contains("hostile fixture panics on purpose"), "{}", done.stderr);
}

/// A component that imports files and sockets is refused, with each import named.
#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_a_component_importing_ungranted_capabilities() {
    let dir = Workdir::new("check-ungranted");
    let done = run(&dir.path, &["transform", "check", fixture("skippr_fixture_escape").to_str().unwrap()], LIMIT).await;
    assert_eq!(done.code, Some(1));
    for import in ["wasi:filesystem/types@0.2.6", "wasi:filesystem/preopens@0.2.6", "wasi:sockets/tcp@0.2.6"] {
        assert!(done.stderr.contains(import), "{import}: {}", done.stderr);
    }
    assert!(!done.stderr.contains("wasi:io/streams"), "granted imports are not listed: {}", done.stderr);
}

/// Junk bytes and an empty file are refused with the reason and a failing exit code.
#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_junk_and_empty_files() {
    let dir = Workdir::new("check-junk");
    for (name, bytes, expected) in [
        ("junk.wasm", &b"definitely not wasm"[..], "is not WebAssembly"),
        ("empty.wasm", &b""[..], "is empty (0 bytes)"),
    ] {
        std::fs::write(dir.path.join(name), bytes).unwrap();
        let done = run(&dir.path, &["transform", "check", name], LIMIT).await;
        assert_eq!(done.code, Some(1), "{name}");
        assert!(done.stderr.starts_with("error: "), "{}", done.stderr);
        assert!(done.stderr.contains(expected), "{name}: {}", done.stderr);
        assert!(done.stdout.is_empty(), "nothing is reported as checked");
    }
}

/// A missing file says so.
#[tokio::test(flavor = "multi_thread")]
async fn check_of_a_missing_file_says_it_cannot_read_it() {
    let dir = Workdir::new("check-missing");
    let done = run(&dir.path, &["transform", "check", "/nonexistent/x.wasm"], LIMIT).await;
    assert_eq!(done.code, Some(1));
    assert!(done.stderr.contains("cannot read /nonexistent/x.wasm: No such file"), "{}", done.stderr);
}
