//! The independent peer: a WebSocket server written with Python's `websockets` library.
//! Uses a python3 that has it, or makes a virtualenv with it once per test run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const PEER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/peers/websockets_server.py");

/// A python3 that can `import websockets`.
fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| python_with("websockets", "websockets>=12", "python-peer-venv"))
}

/// A python3 that can `import module`: the system one, else the virtualenv `venv` in the
/// target dir, made and given `requirement` the first time.
pub fn python_with(module: &str, requirement: &str, venv: &str) -> PathBuf {
    let system = PathBuf::from("python3");
    if imports(&system, module) {
        return system;
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(venv);
    let python = venv.join("bin/python");
    if !imports(&python, module) {
        let made = std::process::Command::new("python3").arg("-m").arg("venv").arg(&venv).status().unwrap();
        assert!(made.success(), "python3 -m venv failed");
        let installed = std::process::Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", requirement])
            .status()
            .unwrap();
        assert!(installed.success(), "pip install {requirement} failed");
    }
    python
}

fn imports(python: &Path, module: &str) -> bool {
    std::process::Command::new(python)
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

pub struct PythonPeer {
    pub url: String,
    _child: Child,
}

/// Starts the peer; it sends `messages` frames (every 10th not JSON), then closes.
pub async fn start(messages: u32) -> PythonPeer {
    let mut child = Command::new(python())
        .arg(PEER_SCRIPT)
        .arg(messages.to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line()).await;
    let url = first.expect("the peer starts").unwrap().expect("the peer prints its URL");
    PythonPeer { url, _child: child }
}
