//! The result of a storm run ([`StormReport`], with the reconnect storm's part) and its two
//! renderings: a human table and JSON (serde; the field names are what `run-all.sh`'s
//! `summarize.py` reads).
//!
//! Built by `mod.rs`; printed by `loadgen`.

use serde::Serialize;

/// The result of a storm run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StormReport {
    /// The row's label.
    pub label: String,
    /// The server.
    pub addr: String,
    /// Clients asked for.
    pub clients: usize,
    /// Clients that connected, logged in and joined.
    pub joined: usize,
    /// Clients that did not (see `errors`).
    pub join_failures: usize,
    /// From the first connect to the last join's reply, seconds.
    pub join_secs: f64,
    /// `joined / join_secs`.
    pub joins_per_sec: f64,
    /// The server's CPU time during the join phase per join, microseconds.
    pub server_us_per_join: Option<f64>,
    /// The server's CPU time during the join phase over its wall time (1.0: one core).
    pub server_busy: Option<f64>,
    /// The loadgen's own, likewise.
    pub loadgen_busy: Option<f64>,
    /// The server's resident memory once everyone had joined, KiB.
    pub server_rss_kib: Option<u64>,
    /// The reconnect storm, when run.
    pub reconnect: Option<ReconnectReport>,
    /// The first errors, for a look.
    pub errors: Vec<String>,
}

/// The reconnect storm's part of a [`StormReport`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReconnectReport {
    /// Clients that came back (logged in with their token and joined again).
    pub back: usize,
    /// Clients that did not.
    pub failures: usize,
    /// From the reset of every socket to the last client's join reply, seconds.
    pub secs: f64,
    /// `back / secs`.
    pub per_sec: f64,
    /// The server's CPU time from the resets until everyone was back, per client back,
    /// microseconds (the departures are part of it).
    pub server_us_per_reconnect: Option<f64>,
    /// The server's CPU time in that phase over its wall time.
    pub server_busy: Option<f64>,
    /// Messages posted while the clients were away.
    pub posted: u64,
    /// Posted messages some client that came back never got (summed over clients).
    pub lost: u64,
    /// Messages some client got twice (summed over clients).
    pub duplicates: u64,
    /// Clients whose join reply said `gap` (what they missed was no longer kept).
    pub gaps: u64,
}

impl StormReport {
    /// True when every client joined (and came back), and nothing was lost or repeated.
    pub fn is_clean(&self) -> bool {
        let back_clean = self
            .reconnect
            .as_ref()
            .is_none_or(|r| r.failures == 0 && r.lost == 0 && r.duplicates == 0 && r.gaps == 0);
        self.join_failures == 0 && back_clean
    }

    /// The report as a human table.
    pub fn table(&self) -> String {
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
        };
        let mut out = format!(
            "{}: {} clients into one channel at {}\n\
             joined            {} ({} failed) in {:.2} s: {:.0} joins/s\n\
             server CPU/join   {} us (server busy {}, loadgen busy {})\n\
             server memory     {} KiB\n",
            self.label,
            self.clients,
            self.addr,
            self.joined,
            self.join_failures,
            self.join_secs,
            self.joins_per_sec,
            opt(self.server_us_per_join, 1),
            opt(self.server_busy, 2),
            opt(self.loadgen_busy, 2),
            self.server_rss_kib
                .map_or_else(|| "-".to_owned(), |k| k.to_string()),
        );
        if let Some(r) = &self.reconnect {
            out.push_str(&format!(
                "reconnect storm   {} back ({} failed) in {:.2} s: {:.0}/s; server CPU {} us each (busy {})\n\
                 missed messages   {} posted meanwhile: {} lost, {} duplicated, {} gaps\n",
                r.back,
                r.failures,
                r.secs,
                r.per_sec,
                opt(r.server_us_per_reconnect, 1),
                opt(r.server_busy, 2),
                r.posted,
                r.lost,
                r.duplicates,
                r.gaps,
            ));
        }
        for e in &self.errors {
            out.push_str(&format!("error             {e}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_clean_only_without_failures_loss_or_repeats() {
        let mut report = StormReport {
            label: "t".into(),
            addr: "127.0.0.1:1".into(),
            clients: 2,
            joined: 2,
            join_failures: 0,
            join_secs: 1.0,
            joins_per_sec: 2.0,
            server_us_per_join: None,
            server_busy: None,
            loadgen_busy: None,
            server_rss_kib: None,
            reconnect: None,
            errors: Vec::new(),
        };
        assert!(report.is_clean());
        report.reconnect = Some(ReconnectReport {
            back: 2,
            failures: 0,
            secs: 1.0,
            per_sec: 2.0,
            server_us_per_reconnect: None,
            server_busy: None,
            posted: 3,
            lost: 0,
            duplicates: 1,
            gaps: 0,
        });
        assert!(!report.is_clean());
        assert!(report.table().contains("1 duplicated"));
    }
}
