//! The disk buffer against crashes and bad destinations, with the real binary: `kill -9`
//! at random moments loses and duplicates no accepted record; a slow destination holds
//! the socket back with memory bounded; a full disk, an unwritable buffer folder and a
//! transform failing with frames in hand are reported, and lose nothing accepted.

use std::collections::BTreeSet;
use std::hash::{BuildHasher as _, Hasher as _};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;

use crate::support::binary::{Workdir, command, finish, in_test_env, run};
use crate::support::fixture;
use crate::support::flood::start_numbering_server;
use crate::support::server::{self, Handshake, Script, Step};

const LIMIT: Duration = Duration::from_secs(120);

fn config(url: &str, mode: &str, extra: &str) -> String {
    format!(
        "source: {{kind: websocket, url: '{url}', mode: {mode}, idle_timeout_seconds: 2, reconnect: {{initial_ms: 50, max_ms: 200}}}}\n\
         batch: {{max_records: 100, max_age_ms: 20}}\n\
         destination: {{kind: file, path: out/records.jsonl}}\n\
         deadletter: {{kind: file, path: out/dead.jsonl}}\n{extra}"
    )
}

fn random_below(bound: u64) -> u64 {
    std::collections::hash_map::RandomState::new().build_hasher().finish() % bound
}

/// Every sequence number in the destination and the dead letters, in file order.
fn delivered_sequences(dir: &Workdir, record_sequence: &str) -> Vec<u64> {
    let records = dir.json_lines("out/records.jsonl");
    let dead = dir.json_lines("out/dead.jsonl");
    let from_records = records.iter().map(|record| record.pointer(record_sequence).and_then(|s| s.as_u64()).unwrap());
    from_records.chain(dead.iter().map(|letter| letter["sequence"].as_u64().unwrap())).collect()
}

/// Sequences are handed out at receipt and go on from the log after a restart, so if every
/// accepted frame is delivered once, they are exactly 0..n: a lost accepted frame leaves
/// a gap, a duplicate shows twice.
pub fn assert_each_sequence_once(sequences: &[u64]) {
    let distinct: BTreeSet<u64> = sequences.iter().copied().collect();
    assert_eq!(distinct.len(), sequences.len(), "a sequence was delivered twice");
    let expected: BTreeSet<u64> = (0..sequences.len() as u64).collect();
    let missing: Vec<_> = expected.difference(&distinct).take(5).collect();
    assert!(missing.is_empty(), "accepted frames missing: {missing:?}… of {}", sequences.len());
}

/// `kill -9` at random moments of a flood, several rounds, then a last run that drains
/// the rest: every accepted frame once in the file, no line torn, no message twice.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_loses_and_duplicates_no_accepted_record() {
    const ROUNDS: usize = 5;
    let (url, sent) = start_numbering_server(80_000, 100, 40, Duration::from_millis(2)).await;
    let dir = Workdir::new("kill-9");
    let recovered = kill_9_rounds(&dir, ROUNDS, 200, [&config(&url, "stream", ""), &config(&url, "batch", "")]).await;

    let sequences = delivered_sequences(&dir, "/meta/sequence");
    assert_each_sequence_once(&sequences);
    let ids: Vec<u64> =
        dir.json_lines("out/records.jsonl").iter().map(|r| r["value"]["id"].as_u64().unwrap()).collect();
    let distinct_ids: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct_ids.len(), ids.len(), "a message was delivered twice");
    let sent = sent.load(Ordering::SeqCst);
    assert!(ids.len() as u64 <= sent && ids.len() > 1000, "{} delivered of {sent} sent", ids.len());
    println!(
        "kill -9: {ROUNDS} rounds, {sent} sent, {} delivered once each, recovered per restart {recovered:?}",
        ids.len()
    );
}

/// Runs `skippr run` on `configs[0]` `rounds` times, each killed with SIGKILL after
/// `min_ms` plus up to a second, then on `configs[1]` (batch mode) until it drains. Returns
/// how many accepted frames each restart recovered.
pub async fn kill_9_rounds(dir: &Workdir, rounds: usize, min_ms: u64, configs: [&str; 2]) -> Vec<u64> {
    let mut recovered = Vec::new();
    dir.write("skippr.yaml", configs[0]);
    for _ in 0..rounds {
        let mut child = command(&dir.path, &["run"]).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(min_ms + random_below(1000))).await;
        child.start_kill().unwrap();
        let killed = finish(child, LIMIT).await;
        assert_eq!(killed.code, None, "killed by a signal: {}", killed.stderr);
        recovered.push(recovered_count(&killed.stderr));
    }
    dir.write("skippr.yaml", configs[1]);
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    recovered.push(recovered_count(&done.stderr));
    recovered
}

pub fn recovered_count(stderr: &str) -> u64 {
    let Some(line) = stderr.lines().find(|line| line.contains("Recovered accepted frames")) else { return 0 };
    let count = line.split("frames=").nth(1).and_then(|rest| rest.split(' ').next()).unwrap();
    count.parse().unwrap()
}

/// Peak and current resident memory of a process, in KiB.
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        let line = status.lines().find(|line| line.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map_or(0, |entries| entries.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
}

/// A destination slower than the flood (stdout read at a crawl, after a pause): the
/// buffer fills to `max_bytes`, the source stops reading, the server is held back, RSS
/// stays under the bound, and every message comes out once.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_destination_holds_the_socket_back_with_memory_bounded() {
    const MESSAGES: u64 = 4_000;
    const PAD: usize = 64 << 10;
    const MAX_BYTES: u64 = 8 << 20;
    const RSS_BOUND_MIB: u64 = 160;
    let (url, sent) = start_numbering_server(MESSAGES, PAD, 16, Duration::from_millis(1)).await;
    let dir = Workdir::new("slow-destination");
    let yaml = config(&url, "batch", &format!("buffer: {{max_bytes: {MAX_BYTES}}}\n"))
        .replace("destination: {kind: file, path: out/records.jsonl}", "destination: {kind: stdout}")
        .replace("reconnect:", "max_message_bytes: 1048576, reconnect:");
    dir.write("skippr.yaml", &yaml);
    let mut child = command(&dir.path, &["run"]).spawn().unwrap();
    let pid = child.id().unwrap();
    let mut stdout = child.stdout.take().unwrap();

    tokio::time::sleep(Duration::from_secs(4)).await;
    let sent_while_stalled = sent.load(Ordering::SeqCst);
    let buffered = folder_bytes(&dir.path.join(".skippr/buffer/skippr"));
    assert!(sent_while_stalled < MESSAGES / 2, "the server was held back: {sent_while_stalled} sent");
    assert!(buffered <= MAX_BYTES + (1 << 20) + PAD as u64 * 2, "the log stayed near max_bytes: {buffered}");

    let mut peak_kib = 0;
    let mut lines = 0;
    let mut chunk = vec![0; 64 << 10];
    loop {
        let n = stdout.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        lines += chunk[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        if let Some((peak, _)) = memory_kib(pid) {
            peak_kib = peak_kib.max(peak);
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let done = finish(child, LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(lines, MESSAGES, "every message once");
    assert!(peak_kib < RSS_BOUND_MIB << 10, "peak RSS {peak_kib} KiB, bound {RSS_BOUND_MIB} MiB");
    println!(
        "slow destination: {MESSAGES} messages of {} KiB; {sent_while_stalled} sent during a 4 s stall with \
         {buffered} bytes buffered; peak RSS {} MiB (bound {RSS_BOUND_MIB} MiB)",
        PAD >> 10,
        peak_kib >> 10
    );
}

/// Files may not grow past 1 MiB (`ulimit -f`, as on a full disk): the buffer's write
/// fails, the run stops with the reason, and every frame accepted before is delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_stops_the_run_with_the_reason_and_delivers_what_was_accepted() {
    let (url, _sent) = start_numbering_server(50_000, 100, 100, Duration::from_millis(1)).await;
    let dir = Workdir::new("buffer-disk-full");
    let yaml = config(&url, "stream", "")
        .replace("destination: {kind: file, path: out/records.jsonl}", "destination: {kind: stdout}");
    dir.write("skippr.yaml", &yaml);
    let mut shell = tokio::process::Command::new("bash");
    shell.args(["-c", r#"ulimit -f 1024; trap '' XFSZ; exec "$0" run"#, env!("CARGO_BIN_EXE_skippr")]);
    let shell = in_test_env(shell, &dir.path);
    let done = finish({ shell }.spawn().unwrap(), LIMIT).await;
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(done.stderr.contains("buffer: writing") && done.stderr.contains("File too large"), "{}", done.stderr);
    let summary = done.stderr.lines().find(|line| line.starts_with("summary:")).unwrap();
    let count = |after: &str| -> u64 {
        summary.split(after).nth(1).and_then(|rest| rest.split(' ').next()).unwrap().parse().unwrap()
    };
    let (received, accepted, delivered) = (count("received "), count("accepted "), count("delivered "));
    assert!(accepted > 0 && accepted < received, "{summary}");
    assert_eq!(delivered, accepted, "what was accepted is delivered: {summary}");
    assert_eq!(done.stdout.lines().count() as u64, delivered);
}

/// A buffer folder that cannot be created is refused before the run, with the reason.
#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_buffer_path_is_refused_with_the_reason() {
    let dir = Workdir::new("buffer-unwritable");
    dir.write("blocker", "a file, not a folder");
    dir.write("skippr.yaml", &config("ws://127.0.0.1:9/", "batch", "buffer: {path: blocker/buffer}\n"));
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("buffer.path: cannot create") && done.stderr.contains("Not a directory"),
        "{}",
        done.stderr
    );
}

/// A transform that keeps frames, then fails: the pipeline stops (`on_transform_error:
/// stop`), the frames it held are dead-lettered with the reason, the process exits on its
/// own, and the next run delivers every other frame the failed one had accepted, then the
/// new ones, numbered on without a gap.
#[tokio::test(flavor = "multi_thread")]
async fn a_transform_failing_with_frames_in_hand_loses_none_of_them() {
    let texts = |n| (0..n).map(|i| Step::Text(format!(r#"{{"i":{i}}}"#)));
    // Paced, so the frames come in several pushes: the first is held, the second fails.
    let first = Script::new([Step::Pace(Duration::from_millis(5))].into_iter().chain(texts(300)).collect());
    let second = Script::new(texts(20).chain([Step::Close]).collect());
    let server = server::start(vec![first, second], Handshake::default()).await;
    let dir = Workdir::new("transform-holds-then-fails");
    let hostile = fixture("skippr_fixture_hostile").display().to_string();
    dir.write(
        "skippr.yaml",
        &config(&server.url, "stream", &format!("transform: {{path: '{hostile}', options: hold-then-panic}}\n")),
    );
    let failed = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    assert!(failed.stderr.contains("hostile fixture panics while holding frames"), "{}", failed.stderr);
    let dead = dir.json_lines("out/dead.jsonl");
    assert!(dead.len() >= 2, "both pushes' frames: {dead:?}");
    assert!(
        dead.iter().all(|d| d["reason"].as_str().unwrap().starts_with("the transform failed while holding this frame")),
        "{dead:?}"
    );

    dir.write(
        "skippr.yaml",
        &config(&server.url, "batch", &format!("transform: {{path: '{hostile}', options: {{}}}}\n")),
    );
    let done = run(&dir.path, &["run"], LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let sequences = delivered_sequences(&dir, "/echo");
    assert_each_sequence_once(&sequences);
    assert!(sequences.len() >= dead.len() + 20, "{} delivered, {} dead", sequences.len(), dead.len());
    println!(
        "transform failed holding frames: {} dead-lettered, {} recovered by the next run",
        dead.len(),
        recovered_count(&done.stderr)
    );
}
