//! skippr.yaml parsing, `${VAR}` interpolation and validation on arbitrary text, with a
//! `.env` beside it: any input gives a config or a list of problems, never a panic.
//! The input is the YAML, then optionally a NUL byte and the `.env` file.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use skippr::config::{self, EnvFiles, LimitPolicy};

fn workdir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("skippr-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (yaml, dotenv) = text.split_once('\0').unwrap_or((text, ""));
    let dir = workdir();
    std::fs::write(dir.join(".env"), dotenv).expect("the temp dir is writable");
    let Ok(env) = EnvFiles::load(dir) else { return };
    // Interpolation alone, then the whole path a config file takes.
    let _ = env.resolve(yaml);
    let path = dir.join("skippr.yaml");
    std::fs::write(&path, yaml).expect("the temp dir is writable");
    if let Ok(raw) = config::parse(yaml) {
        let _ = config::validate_raw(&raw, "fuzz", &env);
    }
    if let Err(err) = config::load(&path, &LimitPolicy::default()) {
        assert!(!err.problems.is_empty(), "a refused config says why");
    }
});
