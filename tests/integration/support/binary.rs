//! Runs the real `skippr` binary the way a user would, in a folder of its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A temporary folder for one test's skippr.yaml, .env files and outputs; removed when the
/// test passes, kept for a look when it fails.
pub struct Workdir {
    pub path: PathBuf,
}

impl Workdir {
    pub fn new(test: &str) -> Self {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path.join(name)).unwrap_or_default()
    }

    /// Non-empty lines of a JSON Lines file, parsed.
    pub fn json_lines(&self, name: &str) -> Vec<serde_json::Value> {
        self.read(name).lines().map(|line| serde_json::from_str(line).expect("each line is JSON")).collect()
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        // The target dir outlives CI runs: left behind, every run's folders piled up there.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// What a finished run printed.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skippr"));
    command.args(args);
    in_test_env(command, dir)
}

/// Sets up `command` (skippr, or a shell that runs it) the way every test runs skippr.
pub fn in_test_env(mut command: Command, dir: &Path) -> Command {
    command
        .current_dir(dir)
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env("SKIPPR_LOG", "info")
        // Compiled components are cached for the test run, not in the user's home.
        .env(skippr::runtime::CACHE_DIR_ENV, concat!(env!("CARGO_TARGET_TMPDIR"), "/component-cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs to completion, within `limit`.
pub async fn run(dir: &Path, args: &[&str], limit: Duration) -> Finished {
    finish(command(dir, args).spawn().unwrap(), limit).await
}

pub async fn finish(child: Child, limit: Duration) -> Finished {
    let output = tokio::time::timeout(limit, child.wait_with_output()).await.expect("skippr finished in time").unwrap();
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Sends SIGTERM, as a service manager would.
pub fn terminate(child: &Child) {
    let pid = child.id().expect("the child is running").to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
}

/// Polls `check` until it holds, for at most `limit`.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}
