//! The server's memory as the kernel reports it: `VmRSS` (now) and `VmHWM` (peak) from
//! `/proc/PID/status`, in KiB. Read by [`crate::run`] before, during and after a run.
//! Linux only; elsewhere (or for a pid that is gone) every reading is `None`.

use std::fs;

/// One reading of a process's resident memory, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Peak resident set size so far (`VmHWM`), KiB.
    pub hwm_kib: u64,
}

/// Reads `/proc/PID/status`; `None` when the process is gone or the fields are missing.
pub fn read(pid: u32) -> Option<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        if cfg!(target_os = "linux") {
            let me = super::read(std::process::id()).expect("own /proc status");
            assert!(me.rss_kib > 0 && me.hwm_kib >= me.rss_kib);
        }
    }
}
