//! CPU time a process has used: the nanoseconds on a CPU of each of its threads, from
//! `/proc/PID/task/*/schedstat`, summed. Read by [`crate::run`] at the start and the end
//! of the sending phase, for the server (given its pid) and for the loadgen itself: a side
//! whose core was not busy was not what limited the run. Linux only; elsewhere (or for a
//! pid that is gone) every reading is `None`. Threads that end between two readings take
//! their time with them; the servers measured here keep theirs for the whole run.

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
        if let Some(ns) = stat
            .split_whitespace()
            .next()
            .and_then(|f| f.parse::<u64>().ok())
        {
            total = Some(total.unwrap_or(0) + ns);
        }
    }
    total
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
}
