//! Prometheus metrics: installing the recorder the engine's `metrics` calls report to,
//! and serving what it holds at `/metrics`, on the web listener or on one of its own
//! (`--metrics`).
//!
//! `main.rs` calls [`install`] once before the engine starts (unless `--metrics off`,
//! which leaves the facade without a recorder, so the engine records nothing);
//! `server::run` mounts [`configure`] on the web listener or starts [`serve_own`], and
//! runs [`upkeep`] until shutdown. The names and labels are chat-core's
//! (`chat_core::telemetry`); this module only renders them. It must not record anything
//! itself.

use std::net::{IpAddr, TcpListener};
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// The histogram buckets of every `_seconds` metric: from 100 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The buckets of `flack_message_deliveries` (recipients per message).
const DELIVERY_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// How often the recorder's histograms are trimmed (`PrometheusHandle::run_upkeep`).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Installs the Prometheus recorder as the process's metrics recorder and describes the
/// engine's metrics. Fails if a recorder is installed already.
pub fn install() -> Result<PrometheusHandle, String> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(chat_core::telemetry::MESSAGE_DELIVERIES.into()),
                DELIVERY_BUCKETS,
            )
        })
        .map_err(|e| format!("metrics buckets: {e}"))?;
    let handle = builder
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    chat_core::telemetry::describe();
    Ok(handle)
}

/// Mounts `/metrics` on an app whose listener checks `Host` already (the web listener).
pub fn configure(cfg: &mut web::ServiceConfig, handle: PrometheusHandle) {
    cfg.route(
        "/metrics",
        web::get().to(move || {
            let handle = handle.clone();
            async move { render(&handle) }
        }),
    );
}

/// Serves `/metrics`, and nothing else, on a listener of its own (one worker), until
/// the returned server is stopped. It answers only for `localhost`, an IP address or one
/// of `public_hosts` (421 otherwise), so a page that makes its own name resolve here
/// (DNS rebinding) cannot read it.
pub fn serve_own(
    listener: TcpListener,
    handle: PrometheusHandle,
    public_hosts: Vec<String>,
) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        let (handle, public_hosts) = (handle.clone(), public_hosts.clone());
        App::new().route(
            "/metrics",
            web::get().to(move |request: HttpRequest| {
                let served = serves(request.headers().get(header::HOST), &public_hosts);
                let answer = if served {
                    render(&handle)
                } else {
                    HttpResponse::MisdirectedRequest()
                        .content_type("text/plain; charset=utf-8")
                        .body("this server does not answer for that host name")
                };
                async move { answer }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// Trims the recorder's histograms every few seconds until `shutdown` is cancelled.
pub async fn upkeep(handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => handle.run_upkeep(),
        }
    }
}

fn render(handle: &PrometheusHandle) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(handle.render())
}

/// Whether the metrics listener answers for this `Host`: `localhost`, an IP literal
/// (which a rebinding page cannot send: it would be its own origin) or a public host's
/// name, any port.
fn serves(host: Option<&HeaderValue>, public_hosts: &[String]) -> bool {
    let Some(host) = host.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = host_name(host);
    name == "localhost"
        || name.parse::<IpAddr>().is_ok()
        || public_hosts.iter().any(|p| host_name(p) == name)
}

/// The name part of `HOST[:PORT]` (brackets of an IPv6 literal removed), lower case,
/// without a trailing dot.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        },
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_listener_answers_for_addresses_localhost_and_public_hosts() {
        let public = ["metrics.example.com:9100".to_owned()];
        let serves = |host: &str| {
            serves(
                Some(&HeaderValue::from_str(host).expect("a header value")),
                &public,
            )
        };
        for host in [
            "127.0.0.1:9100",
            "10.1.2.3",
            "[::1]:9100",
            "LocalHost.:80",
            "metrics.example.com",
            "Metrics.Example.com:9100",
        ] {
            assert!(serves(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:9100",
            "127.0.0.1.evil.example",
        ] {
            assert!(!serves(host), "{host}");
        }
        assert!(!super::serves(None, &public));
    }
}
