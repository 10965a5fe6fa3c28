//! CPU time a process has used: the nanoseconds on a CPU of each of its threads, from
//! `/proc/PID/task/*/schedstat`, summed. Read by [`crate::run`] at the start and the end
//! of the sending phase, for the server (given its pid) and for the loadgen itself: a side
//! whose core was not busy was not what limited the run. Linux only; elsewhere (or for a
//! pid that is gone) every reading is `None`. Threads that end between two readings take
//! their time with them; the servers measured here keep theirs for the whole run. The
//! calling thread's own time ([`thread_used_ns`], for `loopback-floor`) comes from its
//! CPU-time clock instead.

use std::fs;

/// CPU time used so far by every thread of `pid`, in nanoseconds.
pub fn used_ns(pid: u32) -> Option<u64> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = None;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: skip it.
        let Ok(stat) = fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = first_field(&stat) {
            total = Some(total.unwrap_or(0) + ns);
        }
    }
    total
}

/// CPU time used so far by the calling thread, in nanoseconds
/// (`CLOCK_THREAD_CPUTIME_ID`: up to date while the thread runs, unlike its `schedstat`,
/// which the kernel only brings up to date at a tick or a switch, so a short stretch of
/// work could read as none).
pub fn thread_used_ns() -> Option<u64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    let done = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (done == 0).then(|| now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64)
}

fn first_field(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn counts_this_process_working() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let me = std::process::id();
        let before = super::used_ns(me).expect("own schedstat");
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = super::used_ns(me).expect("own schedstat") - before;
        // 50 ms of spinning on a machine that may be busy: at least a fifth of it.
        assert!(used >= 10_000_000, "counted {used} ns of a 50 ms spin");
    }

    #[test]
    fn counts_this_thread_working_and_not_sleeping() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let before = super::thread_used_ns().expect("own thread's schedstat");
        std::thread::sleep(Duration::from_millis(50));
        let slept = super::thread_used_ns().expect("own thread's schedstat") - before;
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let spun = super::thread_used_ns().expect("own thread's schedstat") - before - slept;
        assert!(spun >= 10_000_000, "counted {spun} ns of a 50 ms spin");
        assert!(slept < 10_000_000, "counted {slept} ns of a 50 ms sleep");
    }
}
