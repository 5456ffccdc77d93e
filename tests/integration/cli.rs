//! The user's surface: init, connect, validate and run as the product page shows them.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use crate::support::binary::{Workdir, run};
use crate::support::server::{self, Handshake, Script, Step};

const LIMIT: Duration = Duration::from_secs(60);

/// `init` writes a commented skippr.yaml that validates, and never overwrites one.
#[tokio::test(flavor = "multi_thread")]
async fn init_writes_a_valid_commented_config_once() {
    let dir = Workdir::new("init");
    let done = run(&dir.path, &["init"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let text = dir.read("skippr.yaml");
    assert!(text.starts_with("# skippr.yaml"), "{text}");
    assert!(text.contains("kind: websocket"));
    let valid = run(&dir.path, &["validate"], LIMIT).await;
    assert_eq!(valid.code, Some(0), "{}", valid.stderr);
    let again = run(&dir.path, &["init"], LIMIT).await;
    assert_eq!(again.code, Some(2));
    assert!(again.stderr.contains("skippr.yaml already exists"), "{}", again.stderr);
    assert_eq!(dir.read("skippr.yaml"), text, "untouched");
}

/// The page's own example: `connect source websocket --url … --headers Authorization=… --mode
/// stream` keeps the token out of skippr.yaml, then `run` sends it to a real server.
#[tokio::test(flavor = "multi_thread")]
async fn the_pages_connect_example_keeps_the_secret_out_of_the_config_and_runs() {
    let handshake = Handshake { require_header: Some(("Authorization".into(), "Bearer your-token".into())) };
    let steps = vec![Step::Text(r#"{"hello":"page"}"#.into()), Step::Close];
    let server = server::start(vec![Script::new(steps)], handshake).await;
    let dir = Workdir::new("connect");
    dir.write("skippr.yaml", "# my pipeline\nsource:\n  kind: websocket\n  url: ws://old\n  ping_interval_seconds: 15\n\n# where it goes\ndestination:\n  kind: stdout\n");
    let connect = run(
        &dir.path,
        &[
            "connect",
            "source",
            "websocket",
            "--url",
            &server.url,
            "--headers",
            "Authorization=Bearer your-token",
            "--headers",
            "X-Team=data",
            "--mode",
            "batch",
        ],
        LIMIT,
    )
    .await;
    assert_eq!(connect.code, Some(0), "{}", connect.stderr);
    assert!(
        connect.stderr.contains("stored in") && connect.stderr.contains("WEBSOCKET_AUTH_HEADER"),
        "{}",
        connect.stderr
    );
    let yaml = dir.read("skippr.yaml");
    assert!(!yaml.contains("your-token"), "the secret is not in skippr.yaml:\n{yaml}");
    assert!(yaml.contains("${WEBSOCKET_AUTH_HEADER}") && yaml.contains("X-Team: data"), "{yaml}");
    assert!(
        yaml.starts_with("# my pipeline\n") && yaml.contains("# where it goes\ndestination:"),
        "comments kept:\n{yaml}"
    );
    assert!(yaml.contains("ping_interval_seconds: 15"), "other source fields kept:\n{yaml}");
    let env_local = dir.path.join(".env.local");
    assert_eq!(std::fs::metadata(&env_local).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(dir.read(".env.local"), "WEBSOCKET_AUTH_HEADER=\"Bearer your-token\"\n");

    let to_file = run(&dir.path, &["connect", "destination", "file", "--path", "out/records.jsonl"], LIMIT).await;
    assert_eq!(to_file.code, Some(0), "{}", to_file.stderr);
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(dir.json_lines("out/records.jsonl")[0]["value"]["hello"], "page");
    assert!(!done.all_output().contains("your-token"), "{}", done.all_output());
}

/// Values already written as `${VAR}` stay references.
#[tokio::test(flavor = "multi_thread")]
async fn connect_keeps_existing_env_references() {
    let dir = Workdir::new("connect-ref");
    let done = run(
        &dir.path,
        &[
            "connect",
            "source",
            "websocket",
            "--url",
            "wss://stream.example.com/v1",
            "--headers",
            "Authorization=${MY_TOKEN}",
        ],
        LIMIT,
    )
    .await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(dir.read("skippr.yaml").contains("Authorization: ${MY_TOKEN}"), "{}", dir.read("skippr.yaml"));
    assert!(!dir.path.join(".env.local").exists());
}

/// An unset `${VAR}` is an error naming the variable and the field.
#[tokio::test(flavor = "multi_thread")]
async fn an_unset_variable_is_an_error_naming_it_and_the_field() {
    let dir = Workdir::new("unset");
    dir.write("skippr.yaml", "source:\n  kind: websocket\n  url: ws://127.0.0.1:9/x\n  headers:\n    Authorization: ${SKIPPR_TEST_NEVER_SET}\n");
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("source.headers.Authorization: ${SKIPPR_TEST_NEVER_SET} is not set"),
        "{}",
        done.stderr
    );
}

/// `validate` lists every problem at once, with the place of a shape error.
#[tokio::test(flavor = "multi_thread")]
async fn validate_lists_every_problem() {
    let dir = Workdir::new("validate");
    dir.write("skippr.yaml", "source:\n  kind: websocket\n  url: http://x\n  mode: sometimes\n  format: xml\ntransform: {path: missing.wasm}\n");
    let done = run(&dir.path, &["validate"], LIMIT).await;
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    for expected in ["(did you mean ws://?)", "source.mode: `sometimes`", "source.format: `xml`"] {
        assert!(done.stderr.contains(expected), "missing {expected}:\n{}", done.stderr);
    }
    dir.write("skippr.yaml", "source:\n  kind: websocket\n  url: ws://h\n  headrs: {}\n");
    let typo = run(&dir.path, &["validate"], LIMIT).await;
    assert_eq!(typo.code, Some(2));
    assert!(
        typo.stderr.contains("unknown field `headrs`") && typo.stderr.contains("line 4 column 3"),
        "{}",
        typo.stderr
    );
    assert!(typo.stderr.contains("(did you mean `headers`?)"), "{}", typo.stderr);
    dir.write("skippr.yaml", "source:\n  kind: websocket\n  url: ws://h\ntransform: {path: missing.wasm}\n");
    let missing = run(&dir.path, &["validate"], LIMIT).await;
    assert_eq!(missing.code, Some(2));
    assert!(
        missing.stderr.contains("transform: cannot read") && missing.stderr.contains("missing.wasm"),
        "{}",
        missing.stderr
    );
}

/// The demo needs nothing and prints records, dead letters and a summary that adds up.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_runs_with_nothing_installed() {
    let dir = Workdir::new("demo");
    let done = run(&dir.path, &["demo", "--messages", "34", "--rate", "200"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let records: Vec<serde_json::Value> = done.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 32);
    assert_eq!(records[0]["value"]["type"], "trade");
    assert_eq!(done.stderr.matches("\"reason\":\"invalid JSON").count(), 2);
    assert!(done.stderr.contains("delivered 32 records; dead-lettered 2 frames"), "{}", done.stderr);
}
