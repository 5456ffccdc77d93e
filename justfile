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
test:
    cargo test --workspace

# The benchmarks: skippr end to end against a raw baseline (table + bench/results/latest.json),
# then the sandbox boundary against native shaping, and what a tenant costs.
[group('test')]
bench:
    cargo build --release -p skippr
    cargo run --release -p skippr-bench
    cargo bench -p skippr --bench boundary --bench tenants

# Format the code.
[group('dev')]
fmt:
    cargo fmt --all

# Lints, the host's and the guest's wasm-only glue.
[group('dev')]
lint:
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --target wasm32-wasip2 -p skippr-guest -p skippr-fixture-hostile -p skippr-fixture-wrong-version -- -D warnings

# What CI runs on a fresh machine.
[group('dev')]
ci:
    bash .ci/run
