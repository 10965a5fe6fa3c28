//! The values flags take: data directories, listen addresses, durations, sizes and
//! rates, each parsed with an error that says what was expected.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chat_core::Rate;

/// A data directory, or none (`none`: in memory only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir(pub Option<PathBuf>);

impl FromStr for DataDir {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.trim() {
            "" => Err("expected a directory, or `none`".to_owned()),
            none if none.eq_ignore_ascii_case("none") => Ok(DataDir(None)),
            dir => Ok(DataDir(Some(PathBuf::from(dir)))),
        }
    }
}

/// Where a listener (the TCP line protocol, IRC) binds, or nowhere (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl FromStr for Listen {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if raw.trim().eq_ignore_ascii_case("off") {
            return Ok(Listen(None));
        }
        raw.trim()
            .parse()
            .map(|addr| Listen(Some(addr)))
            .map_err(|e| format!("expected IP:PORT or `off`: {e}"))
    }
}

/// Where `/metrics` is served: on the web listener (`main`, the default), on an address
/// of its own (IP:PORT), or nowhere (`off`: no metrics recorder at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAt {
    /// At `/metrics` on the web listener.
    Main,
    /// At `/metrics` on a listener of its own.
    Own(SocketAddr),
    /// Not served, and not recorded.
    Off,
}

impl FromStr for MetricsAt {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.trim() {
            off if off.eq_ignore_ascii_case("off") => Ok(MetricsAt::Off),
            main if main.eq_ignore_ascii_case("main") => Ok(MetricsAt::Main),
            addr => addr
                .parse()
                .map(MetricsAt::Own)
                .map_err(|e| format!("expected `main`, `off` or IP:PORT: {e}")),
        }
    }
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one line per event, fields as `key=value`.
    Text,
    /// For log shippers: one JSON object per line.
    Json,
}

/// Parses `500ms`, `20s`, `5m`, `2h`, `7d`; a bare number is seconds. Fractions are
/// allowed (`1.5s`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 250us, 500ms, 20s, 5m, 2h or 7d"))?;
    let seconds_per_unit = match unit.trim() {
        "us" | "µs" => 0.000_001,
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use us, ms, s, m, h or d)"
            ))
        }
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|e| format!("{raw:?}: {e}"))
}

/// Parses a size: plain bytes, or a number with `KiB`, `MiB` or `GiB` (`16MiB`).
pub fn parse_bytes(raw: &str) -> Result<usize, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: usize = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a size like 4096, 512KiB or 16MiB"))?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("{raw:?} is too large"))
}

/// Parses `BURST/PER_SECOND`, e.g. `20/5` or `5/0.1`.
pub fn parse_rate(raw: &str) -> Result<Rate, String> {
    let (burst, per_second) = raw
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("{raw:?} is not a rate like 20/5 (BURST/PER_SECOND)"))?;
    let burst: u32 = burst
        .trim()
        .parse()
        .map_err(|e| format!("burst {burst:?}: {e}"))?;
    let per_second: f64 = per_second
        .trim()
        .parse()
        .map_err(|e| format!("per second {per_second:?}: {e}"))?;
    if burst == 0 || !per_second.is_finite() || per_second <= 0.0 {
        return Err(format!(
            "{raw:?}: the burst must be at least 1 and the rate positive"
        ));
    }
    Ok(Rate::new(burst, per_second))
}
