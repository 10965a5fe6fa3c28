//! How the channel worker threads ask the operating system to schedule them.
//!
//! A channel worker is woken by every post from a connection on another thread. By
//! default Linux lets a thread that wakes up preempt the one running on its core, so a
//! worker sharing a core with the thread that hands it posts takes them one at a time:
//! each post is fanned out alone, one subscriber wake-up and one socket write per message
//! instead of per burst. A batch thread (`SCHED_BATCH`) keeps its fair share of the CPU
//! but does not preempt on wake-up: it runs when the other thread yields the core, and
//! finds the burst waiting. On an idle core it still runs at once. Connections now run on
//! the workers themselves (`Engine::spawn`), which removes most such hand-overs; this
//! still helps where workers outnumber cores. `docs/performance.md` has the gains.

/// Makes the calling thread a batch thread (Linux; elsewhere it does nothing). Failure
/// only costs speed, so it is logged and ignored.
pub(crate) fn prefer_batches() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `sched_setscheduler` only reads `param`, which outlives the call; pid 0
        // is the calling thread, and SCHED_BATCH requires priority 0 and no privilege.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "cannot make a channel worker a batch thread"
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_calling_thread_becomes_a_batch_thread() {
        let policy = std::thread::spawn(|| {
            super::prefer_batches();
            // SAFETY: reads the calling thread's policy; no pointers involved.
            unsafe { libc::sched_getscheduler(0) }
        })
        .join()
        .expect("thread");
        assert_eq!(policy, libc::SCHED_BATCH);
    }
}
