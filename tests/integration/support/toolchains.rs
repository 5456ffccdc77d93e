//! The real toolchains of the other guest languages: componentize-py (from PyPI) and jco
//! (from npm). `.ci/run` installs them; a developer's first test run installs what is
//! missing (componentize-py into a virtualenv, jco into the project's node_modules).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::python::python_with;

/// The version the SDK and the docs are written against.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The folder holding a `componentize-py` that runs: the scripts folder of a python3 that
/// has the package.
pub fn componentize_py_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let python = python_with("componentize_py", COMPONENTIZE_PY, "componentize-py-venv");
        let scripts = Command::new(python)
            .args(["-c", "import sysconfig; print(sysconfig.get_path('scripts'))"])
            .output()
            .expect("python3 runs");
        PathBuf::from(String::from_utf8_lossy(&scripts.stdout).trim())
    })
}

/// PATH with componentize-py first, for scripts that call it by name.
pub fn path_with_componentize_py() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{}:{path}", componentize_py_dir().display())
}

/// Builds the Python transform in `project` (its `shaper.py`, with `skippr_sdk.py` found
/// on `python_path`) into `out`.
pub fn build_python(project: &Path, python_path: &[&Path], out: &Path) {
    let mut command = Command::new(componentize_py_dir().join("componentize-py"));
    command.current_dir(project).args(["-d", &format!("{REPO}/wit"), "-w", "transform", "componentize", "--stub-wasi"]);
    for path in python_path {
        command.arg("-p").arg(path);
    }
    run_ok(command.arg("skippr_sdk").arg("-o").arg(out), "componentize-py componentize");
}

/// `npm install` in `project` once per test run (npm itself is not safe to run twice at once
/// in one folder), then `npm run <script>`.
pub fn npm(project: &Path, script: &str) {
    static INSTALLED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut installed = INSTALLED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !installed.iter().any(|done| done == project) {
        run_ok(Command::new("npm").current_dir(project).args(["install", "--no-audit", "--no-fund"]), "npm install");
        installed.push(project.to_owned());
    }
    drop(installed);
    run_ok(Command::new("npm").current_dir(project).args(["run", script]), &format!("npm run {script}"));
}

/// Runs `command`, failing the test with its output when it fails.
pub fn run_ok(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|err| panic!("cannot run {what}: {err}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
