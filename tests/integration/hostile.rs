//! Hostile and broken components fail alone, with the limit they broke, while a
//! well-behaved instance in the same process keeps working.

use skippr::runtime::{CallError, Failure, InstanceLimits, LoadError, Runtime, ShaperInstance};

use crate::support::{default_instance, fixture, json_frames, round_trip, runtime, source};

fn hostile(runtime: &Runtime, behaviour: &str, limits: InstanceLimits) -> ShaperInstance {
    let transform = runtime.load_file(&fixture("skippr_fixture_hostile")).unwrap();
    transform.instantiate(behaviour, &source(), &format!("\"{behaviour}\""), limits).unwrap()
}

/// Pushes into a hostile instance and checks a healthy neighbour before and after.
fn push_beside_a_healthy_instance(behaviour: &str, limits: InstanceLimits) -> CallError {
    let runtime = runtime();
    let mut healthy = default_instance(&runtime, "healthy");
    assert_eq!(round_trip(&mut healthy, &json_frames(0, 3)), [0, 1, 2]);
    let mut bad = hostile(&runtime, behaviour, limits);
    let err = bad.push(&json_frames(0, 3), 0).unwrap_err();
    assert_eq!(err.instance, behaviour);
    assert_eq!(err.call, "push");
    let again = bad.push(&json_frames(3, 1), 0).unwrap_err();
    assert!(matches!(again.failure, Failure::Poisoned), "a failed instance is never re-entered: {again}");
    assert_eq!(round_trip(&mut healthy, &json_frames(3, 3)), [3, 4, 5], "the neighbour goes on");
    err
}

fn limits(memory_bytes: usize, cpu_ms_per_call: u64, max_output_bytes: usize) -> InstanceLimits {
    InstanceLimits { memory_bytes, cpu_ms_per_call, max_output_bytes }
}

/// An infinite loop is stopped by the CPU budget, and the error names the budget.
#[test]
fn a_looping_guest_runs_out_of_cpu_budget() {
    let err = push_beside_a_healthy_instance("loop", limits(64 << 20, 50, 32 << 20));
    assert!(matches!(err.failure, Failure::CpuBudget { limit_ms: 50 }), "{err}");
    assert_eq!(
        err.to_string(),
        "transform instance `loop` failed in `push`: it ran past its CPU budget of 50 ms per call (limits.cpu_ms_per_call)"
    );
}

/// The same budget is enough for the default shaper on a full list: the limit is obeyed.
#[test]
fn the_default_shaper_fits_a_small_cpu_budget() {
    let runtime = runtime();
    let transform = runtime.default_transform().unwrap();
    let mut instance = transform.instantiate("fits", &source(), "{}", limits(64 << 20, 50, 32 << 20)).unwrap();
    assert_eq!(round_trip(&mut instance, &json_frames(0, 1024)).len(), 1024);
}

/// Unbounded allocation hits the memory cap, and the error names the cap.
#[test]
fn an_allocating_guest_hits_its_memory_cap() {
    let err = push_beside_a_healthy_instance("alloc", limits(16 << 20, 5_000, 32 << 20));
    match err.failure {
        Failure::MemoryCap { limit_bytes, requested_bytes } => {
            assert_eq!(limit_bytes, 16 << 20);
            assert!(requested_bytes > 16 << 20, "{requested_bytes}");
        }
        other => panic!("expected the memory cap, got: {other}"),
    }
}

/// The default shaper works under the same 16 MiB cap: the limit is obeyed.
#[test]
fn the_default_shaper_fits_a_small_memory_cap() {
    let runtime = runtime();
    let transform = runtime.default_transform().unwrap();
    let mut instance = transform.instantiate("fits", &source(), "{}", limits(16 << 20, 500, 32 << 20)).unwrap();
    assert_eq!(round_trip(&mut instance, &json_frames(0, 1024)).len(), 1024);
}

/// A panic traps; the error carries the trap and the guest's panic message.
#[test]
fn a_panicking_guest_traps_with_its_message() {
    let err = push_beside_a_healthy_instance("panic", InstanceLimits::default());
    match &err.failure {
        Failure::Trapped { trap, last_words } => {
            assert!(trap.contains("unreachable"), "{trap}");
            let said = last_words.as_deref().unwrap_or_default();
            assert!(said.contains("panicked at") && said.contains("hostile fixture panics on purpose"), "{err}");
        }
        other => panic!("expected a trap, got: {other}"),
    }
}

/// An output over max_output_bytes is refused before it goes anywhere.
#[test]
fn a_guest_returning_a_huge_output_is_refused() {
    let err = push_beside_a_healthy_instance("huge-output", limits(128 << 20, 5_000, 32 << 20));
    match &err.failure {
        Failure::InvalidOutput(reason) => {
            assert!(reason.contains("over the limit of 33554432 (limits.max_output_bytes)"), "{reason}")
        }
        other => panic!("expected an invalid output, got: {other}"),
    }
}

/// Record offsets that point outside the batch are refused.
#[test]
fn a_guest_returning_malformed_batches_is_refused() {
    let err = push_beside_a_healthy_instance("bad-output", InstanceLimits::default());
    match &err.failure {
        Failure::InvalidOutput(reason) => assert!(reason.contains("outside its batch"), "{reason}"),
        other => panic!("expected an invalid output, got: {other}"),
    }
}

/// A component built for another version of the WIT package is refused at load.
#[test]
fn a_component_of_another_wit_version_is_refused_at_load() {
    let runtime = runtime();
    let err = runtime.load_file(&fixture("skippr_fixture_wrong_version")).err().expect("refused");
    assert!(matches!(&err, LoadError::WrongVersion { found, .. } if found == "1.0.0"), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("built for skippr:connector@1.0.0, but this host runs skippr:connector@0.1.0"),
        "{message}"
    );
}

/// Empty files, junk, and core modules are each refused with their own reason.
#[test]
fn what_is_not_a_component_is_refused_with_the_reason() {
    let runtime = runtime();
    let cases: [(&[u8], &str); 4] = [
        (b"", "is empty (0 bytes)"),
        (b"GIF89a junk", "is not WebAssembly"),
        (b"\0asm\x01\0\0\0", "is a core WebAssembly module, not a component"),
        (b"\0asm\x0d\0\x01\0\xff\xff", "is not a valid WebAssembly component"),
    ];
    for (bytes, expected) in cases {
        let err = runtime.load_bytes("x.wasm", bytes).err().expect("refused");
        assert!(err.to_string().starts_with(&format!("x.wasm {expected}")), "{err}");
    }
    let mut healthy = default_instance(&runtime, "healthy");
    assert_eq!(round_trip(&mut healthy, &json_frames(0, 1)), [0]);
}

/// A hostile component refuses options it does not know, like any other.
#[test]
fn init_errors_come_back_as_refused_options() {
    let runtime = runtime();
    let transform = runtime.load_file(&fixture("skippr_fixture_hostile")).unwrap();
    let err = transform.instantiate("x", &source(), "\"dance\"", InstanceLimits::default()).unwrap_err();
    assert!(matches!(&err.failure, Failure::OptionsRefused(reason) if reason.contains("dance")), "{err}");
}
