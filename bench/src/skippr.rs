//! skippr end to end, as a user runs it: the release binary, a generated skippr.yaml, and
//! the flood server on the other side.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::latency::stamp_of;
use crate::usage::wait_child;

/// What one skippr run did.
pub struct Run {
    pub finished: Instant,
    pub cpu: Duration,
    pub peak_rss_kib: u64,
    pub latencies_us: Vec<u64>,
}

/// The release binary beside this harness (both live in target/release).
pub fn binary() -> anyhow::Result<PathBuf> {
    let here = std::env::current_exe()?;
    let binary = here.with_file_name("skippr");
    anyhow::ensure!(binary.exists(), "{} is missing: run `cargo build --release -p skippr` first", binary.display());
    Ok(binary)
}

/// A transform component to run instead of the default shaper, with its options and its
/// memory cap.
pub struct Transform<'a> {
    pub path: &'a Path,
    pub options: &'a str,
    pub memory_mb: u32,
}

/// Compiles a component into skippr's disk cache, as any first run on a machine does, so a
/// measured run's CPU time and peak RSS are the pipeline's, not the compiler's.
pub fn compile_into_disk_cache(component: &Path, options: &str) -> anyhow::Result<()> {
    let mut check = Command::new(binary()?);
    check.args(["transform", "check"]).arg(component).args(["--options", options]).stdout(Stdio::null());
    let checked = check.status()?;
    anyhow::ensure!(checked.success(), "skippr transform check {} failed", component.display());
    Ok(())
}

/// Records and dead letters into JSON Lines files.
pub const FILE_SINKS: &str = "destination: {kind: file, path: out.jsonl}\ndeadletter: {kind: file, path: dead.jsonl}\n";

/// Batch mode into `sinks` (YAML sections), through a `buffer` of that kind (`memory` or
/// `disk`); ends when the flood server closes.
pub fn run_batch(
    dir: &Path,
    url: &str,
    source_extra: &str,
    sinks: &str,
    buffer: &str,
    transform: Option<&Transform<'_>>,
) -> anyhow::Result<Run> {
    let transform = transform.map_or(String::new(), |transform| {
        let Transform { path, options, memory_mb } = transform;
        format!("transform: {{path: '{}', options: {options}}}\nlimits: {{memory_mb: {memory_mb}}}\n", path.display())
    });
    let config = format!(
        "source:\n  kind: websocket\n  url: '{url}'\n  mode: batch\n  idle_timeout_seconds: 5\n{source_extra}\
         {transform}{sinks}buffer: {{kind: {buffer}}}\n"
    );
    std::fs::write(dir.join("skippr.yaml"), config)?;
    for stale in ["out.jsonl", "dead.jsonl"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    let _ = std::fs::remove_dir_all(dir.join(".skippr"));
    let child =
        Command::new(binary()?).arg("run").current_dir(dir).env("SKIPPR_LOG", "warn").stdin(Stdio::null()).spawn()?;
    let (code, cpu, peak_rss_kib) = wait_child(child.id())?;
    let finished = Instant::now();
    anyhow::ensure!(code == 0, "skippr exited with {code}");
    Ok(Run { finished, cpu, peak_rss_kib, latencies_us: Vec::new() })
}

/// Stream mode, every push's records closed at once, to stdout, read here line by line to
/// time each record from the server's send to the destination's write. The buffer is in
/// memory: a disk buffer adds its group commit (`commit_interval_ms`) by design.
pub fn run_stream_latency(dir: &Path, url: &str, expected: u64, epoch: Instant) -> anyhow::Result<Run> {
    let config = format!(
        "source: {{kind: websocket, url: '{url}', mode: stream}}\nbatch: {{max_age_ms: 0}}\ndestination: {{kind: stdout}}\n\
         buffer: {{kind: memory}}\n"
    );
    std::fs::write(dir.join("skippr.yaml"), config)?;
    let mut child = Command::new(binary()?)
        .arg("run")
        .current_dir(dir)
        .env("SKIPPR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut latencies_us = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(sent) = stamp_of(line.as_bytes()) {
            latencies_us.push((epoch.elapsed().as_micros() as u64).saturating_sub(sent));
        }
        if latencies_us.len() as u64 >= expected {
            break;
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let (_, cpu, peak_rss_kib) = wait_child(child.id())?;
    Ok(Run { finished: Instant::now(), cpu, peak_rss_kib, latencies_us })
}
