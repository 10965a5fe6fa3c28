//! The bare entry point: [`serve`] (and [`WsChat::serve`]) accept WebSocket upgrades on a
//! tokio `TcpListener` with no HTTP framework, for a service that has no web server of
//! its own or wants the chat on a port of its own.
//!
//! It reads the upgrade request itself (`httparse`, at most [`MAX_REQUEST_HEAD_BYTES`],
//! within `WsConfig::idle_timeout`), hands it to the checks every entry point shares
//! (`upgrade.rs`), writes the `101` or the refusal, and runs the shared connection loop
//! (`connection.rs`) on the stream. It answers nothing but `GET /ws` upgrades: any other
//! request gets its 4xx and the connection closes.
//!
//! The accept loop never ends on a failed `accept` (running out of file descriptors is a
//! reason to wait, not to stop serving): it retries with a doubling backoff.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_http::{Method, RequestHead, StatusCode, Uri, Version};
use bytes::BytesMut;
use chat_core::{Engine, InvalidLimit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::close::linger;
use crate::config::WsConfig;
use crate::host::{ArrivedAt, Served};
use crate::upgrade::{switching_headers, PeerName, Refusal, Upgrades};
use crate::WsChat;

/// Largest upgrade request (request line and headers) [`serve`] reads; a longer one gets
/// 431. Browsers send well under 2 KiB; cookies of the embedder's other pages can add a
/// few.
pub const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;

/// Most headers in an upgrade request; more gets 431.
const MAX_HEADERS: usize = 64;

/// First wait after a failed accept; doubled on each failure in a row, reset by a success.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// Longest wait between two accept attempts.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Serves the chat's WebSocket protocol on `listener`, a bound tokio `TcpListener`, with
/// no web framework: each connection sends its `GET /ws` upgrade request straight to it.
/// Everything else is what every entry point does (`WsChat::listen` too): the `Host` check, the
/// origin allow-list, the limits overall and per client address, and shutdown. Returns
/// once `shutdown` has fired and every connection has closed (each is told
/// `shutting_down`), or at once if `config` is invalid.
pub async fn serve(
    listener: TcpListener,
    engine: Engine,
    config: WsConfig,
    shutdown: CancellationToken,
) -> Result<(), InvalidLimit> {
    let chat = WsChat::new(engine, config, shutdown)?;
    chat.serve(listener).await;
    let tasks = chat.tasks();
    tasks.close();
    tasks.wait().await;
    Ok(())
}

impl WsChat {
    /// Accepts WebSocket upgrades on `listener` until this service's shutdown token
    /// fires, like [`serve`] but on a service that may have other entry points too (one
    /// engine, one set of limits for all). Returns when it stops accepting; the sockets
    /// it opened are in [`WsChat::tasks`].
    ///
    /// Upgrade requests being read count against `WsConfig::max_connections` too, and
    /// each has `WsConfig::idle_timeout` to arrive whole, so clients that open sockets
    /// and send nothing cannot pile up.
    pub async fn serve(&self, listener: TcpListener) {
        let upgrades = self.inner.clone();
        let shutdown = upgrades.shutdown.clone();
        let local = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => {
                tracing::error!(error = %e, "ws listener has no address: not serving");
                return;
            }
        };
        tracing::info!(addr = %local, "ws transport listening");
        let served = Arc::new(Served::new(&upgrades.config.public_hosts, local));
        let max = upgrades
            .config
            .max_connections
            .clamp(1, Semaphore::MAX_PERMITS);
        let reading = Arc::new(Semaphore::new(max));
        let mut backoff = MIN_ACCEPT_BACKOFF;
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = reading.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    // The semaphore is never closed.
                    Err(_) => break,
                },
            };
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    backoff = MIN_ACCEPT_BACKOFF;
                    let (upgrades, served) = (upgrades.clone(), served.clone());
                    let task = async move {
                        handshake(&upgrades, &served, stream, peer).await;
                        drop(permit);
                    };
                    tokio::spawn(self.inner.tasks.track_future(task));
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "accept failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                }
            }
        }
        tracing::info!(addr = %local, "ws transport stopped accepting");
    }
}

/// Reads one upgrade request off `stream` and answers it: the `101` and a connection
/// task, or the refusal.
async fn handshake(
    upgrades: &Arc<Upgrades>,
    served: &Served,
    mut stream: TcpStream,
    peer: SocketAddr,
) {
    // Chat frames are small and latency-bound: no Nagle delay.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let arrived = match served.binds_any() {
        // Only the connection knows which of the machine's addresses it reached.
        true => stream.local_addr().ok().map(|a| ArrivedAt(a.ip())),
        false => None,
    };
    let config = &upgrades.config;
    let read = match timeout(config.idle_timeout, read_head(&mut stream, peer)).await {
        Ok(Ok(read)) => Ok(read),
        Ok(Err(refusal)) => Err(refusal),
        Err(_elapsed) => Err(Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            "the upgrade request did not arrive in time",
        )),
    };
    let admitted = read.and_then(|(head, read_ahead)| {
        let admitted = upgrades.admit(&head, served, arrived)?;
        Ok((head, read_ahead, admitted))
    });
    let (head, read_ahead, admitted) = match admitted {
        Ok(admitted) => admitted,
        Err(refusal) => {
            let answer = render(refusal.0, &refusal.headers(), refusal.1.as_bytes(), true);
            if matches!(
                timeout(config.write_timeout, stream.write_all(&answer)).await,
                Ok(Ok(()))
            ) {
                // Unread request bytes would make the close a reset, which can destroy
                // the answer before the client reads it.
                linger(&mut stream, config.close_linger).await;
            }
            return;
        }
    };
    let switching = render(
        StatusCode::SWITCHING_PROTOCOLS,
        &switching_headers(&head),
        b"",
        false,
    );
    drop(head);
    match timeout(config.write_timeout, stream.write_all(&switching)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return tracing::debug!(peer = %PeerName(Some(peer)), error = %e, "could not answer the upgrade")
        }
        Err(_) => {
            return tracing::debug!(peer = %PeerName(Some(peer)), "could not answer the upgrade in time")
        }
    }
    tokio::spawn(upgrades.connection(stream, read_ahead, admitted, Some(peer), None));
}

/// Reads the request head; returns it with whatever arrived after it (the client's
/// first frames), or the refusal of a request that is too large or not HTTP/1.x.
async fn read_head(
    stream: &mut TcpStream,
    peer: SocketAddr,
) -> Result<(RequestHead, BytesMut), Refusal> {
    let mut buf = BytesMut::with_capacity(2048);
    loop {
        let got = stream.read_buf(&mut buf).await;
        if !matches!(got, Ok(n) if n > 0) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "the connection closed before the request was whole",
            ));
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let head = to_head(&request, peer)?;
                let read_ahead = buf.split_off(len);
                return Ok((head, read_ahead));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_HEAD_BYTES => {}
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Err(Refusal::new(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "the request head is too large",
                ));
            }
            Err(e) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!("malformed HTTP request: {e}"),
                ));
            }
        }
    }
}

/// The parsed request as the head the shared checks read.
fn to_head(request: &httparse::Request<'_, '_>, peer: SocketAddr) -> Result<RequestHead, Refusal> {
    let malformed = |what: &str| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("malformed HTTP request: {what}"),
        )
    };
    let mut head = RequestHead::default();
    head.method = Method::from_bytes(request.method.unwrap_or("").as_bytes())
        .map_err(|_| malformed("method"))?;
    head.uri =
        Uri::try_from(request.path.unwrap_or("")).map_err(|_| malformed("request target"))?;
    head.version = match request.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    for header in request.headers.iter() {
        let name =
            HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| malformed("header name"))?;
        let value = HeaderValue::from_bytes(header.value).map_err(|_| malformed("header value"))?;
        head.headers.append(name, value);
    }
    head.peer_addr = Some(peer);
    Ok(head)
}

/// An HTTP/1.1 response: status line, `headers`, and `body` (with its length and
/// `Connection: close` when `close`).
fn render(status: StatusCode, headers: &HeaderMap, body: &[u8], close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    let reason = status.canonical_reason().unwrap_or("");
    out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).as_bytes());
    for (name, value) in headers.iter() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(
            format!("content-length: {}\r\nconnection: close\r\n", body.len()).as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}
