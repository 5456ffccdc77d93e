//! `skippr transform check` as a user runs it.

use crate::support::{fixture, skippr, text};

/// The default shaper passes and shows its records and rejections.
#[test]
fn check_of_the_default_component_shows_what_it_produces() {
    let out = skippr(&["transform", "check"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("world:     skippr:connector@0.1.0 transform"), "{stdout}");
    assert!(stdout.contains("4 sample frames -> 2 record(s) in 1 batch(es), 2 rejected"), "{stdout}");
    assert!(stdout.contains(r#""value":{"type":"trade","symbol":"BTC-USD""#), "{stdout}");
    assert!(stdout.contains("rejected frame 1: invalid JSON"), "{stdout}");
}

/// A component file given by path is checked the same way.
#[test]
fn check_of_a_component_file_loads_it_from_the_path() {
    let path = fixture("skippr_fixture_hostile");
    let out = skippr(&["transform", "check", path.to_str().unwrap(), "--options", "\"panic\""]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("failed in `push`: it trapped"), "{stderr}");
    assert!(stderr.contains("hostile fixture panics on purpose"), "{stderr}");
}

/// Junk bytes and an empty file are refused with the reason and a failing exit code.
#[test]
fn check_refuses_junk_and_empty_files() {
    let dir = tempdir();
    for (name, bytes, expected) in [
        ("junk.wasm", &b"definitely not wasm"[..], "is not WebAssembly"),
        ("empty.wasm", &b""[..], "is empty (0 bytes)"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = skippr(&["transform", "check", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing is reported as checked");
    }
}

/// A missing file says so.
#[test]
fn check_of_a_missing_file_says_it_cannot_read_it() {
    let out = skippr(&["transform", "check", "/nonexistent/x.wasm"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read /nonexistent/x.wasm: No such file"), "{}", text(&out.stderr));
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("skippr-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
