//! The independent peer: a WebSocket server written with Python's `websockets` library.
//! Uses a python3 that has it, or makes a virtualenv with it once per test run.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const PEER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/peers/websockets_server.py");

/// A python3 that can `import websockets`.
fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let system = PathBuf::from("python3");
        if imports_websockets(&system) {
            return system;
        }
        let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-peer-venv");
        let python = venv.join("bin/python");
        if !imports_websockets(&python) {
            let made = std::process::Command::new("python3").arg("-m").arg("venv").arg(&venv).status().unwrap();
            assert!(made.success(), "python3 -m venv failed");
            let installed = std::process::Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "websockets>=12"])
                .status()
                .unwrap();
            assert!(installed.success(), "pip install websockets failed");
        }
        python
    })
}

fn imports_websockets(python: &PathBuf) -> bool {
    std::process::Command::new(python)
        .args(["-c", "import websockets"])
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
