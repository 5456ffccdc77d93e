//! CPU time and peak memory, of this thread or of a child process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// CPU time (user + system) this thread has used.
pub fn thread_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is to a live local.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    cpu_of(&usage)
}

/// A finished child's exit code, CPU time and peak RSS in KiB, reaped with wait4. The peak
/// is sampled from /proc while it runs: wait4's own maxrss also counts the harness's pages
/// the child had between fork and exec.
pub fn wait_child(pid: u32) -> anyhow::Result<(i32, Duration, u64)> {
    let running = Arc::new(AtomicBool::new(true));
    let sampler = {
        let running = Arc::clone(&running);
        std::thread::spawn(move || {
            let mut peak = 0;
            while running.load(Ordering::Relaxed) {
                peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let (code, cpu) = reap(pid)?;
    running.store(false, Ordering::Relaxed);
    let peak = sampler.join().map_err(|_| anyhow::anyhow!("the RSS sampler panicked"))?;
    Ok((code, cpu, peak))
}

/// `VmHWM`: the process's peak resident set since exec.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reap(pid: u32) -> anyhow::Result<(i32, Duration)> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointers are to live locals; pid is our own child.
    let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    anyhow::ensure!(reaped == pid as libc::pid_t, "wait4 failed: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    Ok((code, cpu_of(&usage)))
}

fn cpu_of(usage: &libc::rusage) -> Duration {
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}
