//! Builds the default shaper and the test fixture components for `wasm32-wasip2`, so the
//! default component can be embedded in the binary and `cargo build` needs no other step.
//!
//! The nested cargo gets its own target dir (sharing the outer one deadlocks on its lock)
//! and none of the outer build's flags, which are meant for the host target.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";
const COMPONENT_CRATES: [&str; 6] = [
    "skippr-guest",
    "skippr-fixture-hostile",
    "skippr-fixture-wrong-version",
    "skippr-fixture-escape",
    "skippr-example-filter",
    "skippr-example-normalize-trades",
];
/// Set to a prebuilt default shaper to skip the nested build (e.g. when packaging).
const PREBUILT_ENV: &str = "SKIPPR_GUEST_WASM";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ sits in the workspace root").to_path_buf();
    for watched in ["wit", "sdk", "guest", "examples/transforms", "tests/fixtures", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed={PREBUILT_ENV}");

    let out_dir = guest_target_dir();
    let release_dir = out_dir.join(WASM_TARGET).join("release");
    let default_component = match env::var_os(PREBUILT_ENV) {
        Some(prebuilt) => PathBuf::from(prebuilt),
        None => {
            build_components(&root, &out_dir);
            release_dir.join("skippr_guest.wasm")
        }
    };
    println!("cargo:rustc-env=SKIPPR_DEFAULT_TRANSFORM={}", default_component.display());
    println!("cargo:rustc-env=SKIPPR_FIXTURES_DIR={}", release_dir.display());
}

/// `<target>/wasm-components`, beside the outer build's profile folders.
fn guest_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out, or one deeper with --target.
    let target = out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| out_dir.ancestors().nth(4).expect("OUT_DIR is nested in the target dir"));
    target.join("wasm-components")
}

fn build_components(root: &Path, target_dir: &Path) {
    ensure_wasm_target();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root).args(["build", "--release", "--target", WASM_TARGET]).arg("--target-dir").arg(target_dir);
    for krate in COMPONENT_CRATES {
        command.args(["-p", krate]);
    }
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let outer_only = [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTC_WORKSPACE_WRAPPER",
        ]
        .contains(&key.as_ref())
            || ["CARGO_PROFILE_", "CARGO_CFG_", "CARGO_FEATURE_"].iter().any(|prefix| key.starts_with(prefix));
        if outer_only {
            command.env_remove(key.as_ref());
        }
    }
    // Small, fast components: whole-program optimisation only costs this nested build.
    command
        .env("CARGO_PROFILE_RELEASE_LTO", "fat")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true");
    let status = command.status().expect("could not run cargo to build the shaper component");
    assert!(status.success(), "building the shaper components for {WASM_TARGET} failed (see the errors above)");
}

/// rust-toolchain.toml lists the wasm target; install it when rustup did not.
fn ensure_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc).args(["--print", "sysroot"]).output().expect("could not run rustc");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(WASM_TARGET).exists() {
        return;
    }
    println!("cargo:warning=installing the {WASM_TARGET} target with rustup (listed in rust-toolchain.toml)");
    let installed = Command::new("rustup").args(["target", "add", WASM_TARGET]).status().is_ok_and(|s| s.success());
    assert!(installed, "the {WASM_TARGET} target is missing: run `rustup target add {WASM_TARGET}`");
}
