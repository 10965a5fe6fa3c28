//! CPU time a process has used: the nanoseconds on a CPU of each of its threads, from
//! `/proc/PID/task/*/schedstat`, summed. Read by [`crate::run`] at the start and the end
//! of the sending phase, for the server (given its pid) and for the loadgen itself: a side
//! whose core was not busy was not what limited the run. Linux only; elsewhere (or for a
//! pid that is gone) every reading is `None`. Threads that end between two readings take
//! their time with them; the servers measured here keep theirs for the whole run. The
//! calling thread's own time ([`thread_used_ns`], for `loopback-floor`) comes from its
//! CPU-time clock instead.

use std::fs;

use crate::report::CpuUse;

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

/// CPU time of both sides and deliveries so far, at one instant of the run.
pub struct CpuReading {
    server_ns: Option<u64>,
    loadgen_ns: Option<u64>,
    deliveries: u64,
}

impl CpuReading {
    /// Reads both sides' CPU time now, with the deliveries counted so far.
    pub fn take(server: Option<u32>, deliveries: u64) -> Self {
        CpuReading {
            server_ns: server.and_then(used_ns),
            loadgen_ns: used_ns(std::process::id()),
            deliveries,
        }
    }

    /// What was used between `start` and this reading, `wall_ns` apart.
    pub fn since(&self, start: &CpuReading, wall_ns: u64) -> CpuUse {
        let used = |end: Option<u64>, begin: Option<u64>| Some(end?.checked_sub(begin?)? as f64);
        let server = used(self.server_ns, start.server_ns);
        let deliveries = self.deliveries.saturating_sub(start.deliveries);
        let busy = |ns: Option<f64>| ns.filter(|_| wall_ns > 0).map(|ns| ns / wall_ns as f64);
        CpuUse {
            server_busy: busy(server),
            server_us_per_delivery: server
                .filter(|_| deliveries > 0)
                .map(|ns| ns / 1e3 / deliveries as f64),
            loadgen_busy: busy(used(self.loadgen_ns, start.loadgen_ns)),
        }
    }
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
