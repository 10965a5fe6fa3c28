//! Plain HTTP/1.1 requests over a raw socket (one request per connection), and the
//! Prometheus text format read back into numbers: what `operations.rs` checks `/readyz`
//! and `/metrics` with.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::TestResult;

/// `GET path` with this `Host`: the status code and the body.
pub async fn get_as(addr: SocketAddr, path: &str, host: &str) -> TestResult<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received)).await??;
    let text = String::from_utf8(received)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {text:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .ok_or_else(|| format!("no status in {head:?}"))?
        .parse()?;
    Ok((status, body.to_owned()))
}

/// `GET path` with the address as `Host`.
pub async fn get(addr: SocketAddr, path: &str) -> TestResult<(u16, String)> {
    get_as(addr, path, &addr.to_string()).await
}

/// One scrape of `/metrics`: each sample's value by its series, the name with its labels
/// as rendered (`flack_logins_total{kind="new"}`).
#[derive(Debug, Clone)]
pub struct Scrape(pub HashMap<String, f64>);

impl Scrape {
    /// Scrapes `addr`'s `/metrics` (which must answer 200).
    pub async fn take(addr: SocketAddr) -> TestResult<Scrape> {
        let (status, body) = get(addr, "/metrics").await?;
        if status != 200 {
            return Err(format!("/metrics answered {status}: {body}").into());
        }
        Scrape::parse(&body)
    }

    /// Reads the text format: comments skipped, every other line `SERIES VALUE`.
    pub fn parse(text: &str) -> TestResult<Scrape> {
        let mut samples = HashMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line
                .rsplit_once(' ')
                .ok_or_else(|| format!("not a sample: {line:?}"))?;
            samples.insert(series.to_owned(), value.parse()?);
        }
        Ok(Scrape(samples))
    }

    /// The value of `series`, 0 when it is not there yet.
    pub fn value(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// How much `series` grew since `before`.
    pub fn since(&self, before: &Scrape, series: &str) -> f64 {
        self.value(series) - before.value(series)
    }
}
