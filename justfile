# skippr-websocket: the everyday commands. `just --list` shows them.

# Run the built-in demo feed through the real pipeline.
[group('run')]
demo:
    cargo run --release -p skippr -- demo

# Build the host (and, through its build script, the shaper components).
[group('build')]
build:
    cargo build --release -p skippr

# Check the embedded default shaper, or a component given as FILE.
[group('run')]
check FILE="":
    cargo run -p skippr -- transform check {{FILE}}

# Run every test: guest logic natively, the runtime, and the binary against real servers.
[group('test')]
test: services
    cargo test --workspace

# Start the real servers the tests use on loopback (PostgreSQL on 127.0.0.1:55432); the
# tests also start them when nothing answers. `just services stop` stops them.
[group('test')]
services ACTION="start":
    scripts/services {{ACTION}}

# Build the Python and JavaScript example transforms (componentize-py and npm).
[group('build')]
examples:
    cd examples/transforms/python-enrich && componentize-py -d ../../../wit -w transform componentize --stub-wasi -p . -p ../../../sdk/python skippr_sdk -o enrich.wasm
    cd examples/transforms/js-symbols && npm install --no-audit --no-fund && npm run build

# Scaffold a transform project: `just new trades-tap python`.
[group('build')]
new NAME LANG="rust":
    cargo run -p skippr -- transform new {{NAME}} --lang {{LANG}}

# The benchmarks: skippr end to end against a raw baseline (table + bench/results/latest.json),
# with each example transform, then the sandbox boundary against native shaping, and what a
# tenant costs. One build for the binary and the harness (run directly: `cargo run` alone
# would resolve features again and rebuild tokio and all above it).
[group('test')]
bench: examples services
    cargo build --release -p skippr -p skippr-bench
    "${CARGO_TARGET_DIR:-target}/release/skippr-bench"
    cargo bench -p skippr --bench boundary --bench tenants

# Fuzz skippr.yaml parsing with ${VAR} interpolation, and the default shaper, SECONDS each
# (cargo fuzz on nightly; crashes land in fuzz/artifacts/).
[group('test')]
fuzz SECONDS="300":
    cargo install cargo-fuzz --locked --quiet
    cargo build -p skippr
    cd fuzz && SKIPPR_GUEST_WASM="${CARGO_TARGET_DIR:-$PWD/../target}/wasm-components/wasm32-wasip2/release/skippr_guest.wasm" cargo +nightly fuzz run --sanitizer none config corpus/config seeds/config -- -max_total_time={{SECONDS}}
    cd fuzz && SKIPPR_GUEST_WASM="${CARGO_TARGET_DIR:-$PWD/../target}/wasm-components/wasm32-wasip2/release/skippr_guest.wasm" cargo +nightly fuzz run shape corpus/shape seeds/shape -- -max_total_time={{SECONDS}}

# Format the code.
[group('dev')]
fmt:
    cargo fmt --all

# Lints, the host's and the guest's wasm-only glue.
[group('dev')]
lint:
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --target wasm32-wasip2 -p skippr-sdk -p skippr-guest -p skippr-example-filter -p skippr-example-normalize-trades -p skippr-fixture-hostile -p skippr-fixture-wrong-version -p skippr-fixture-escape -- -D warnings

# What CI runs on a fresh machine.
[group('dev')]
ci:
    bash .ci/run
