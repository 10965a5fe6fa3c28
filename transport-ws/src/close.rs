//! How a connection ends: why ([`End`]), what the client is told (the last frame and the
//! close code of `docs/protocol.md`'s table), and the linger after the close frame that
//! keeps a reset from destroying it.
//!
//! Used by `connection.rs`, which decides that its loop is over and writes what this
//! says; this file writes nothing but the linger's shutdown, and never touches the
//! session.

use std::time::Duration;

use actix_http::ws::{CloseCode, CloseReason};
use chat_core::DisconnectReason;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use crate::protocol::ServerFrame;
use crate::wire::ReadError;

/// Why a connection's loop ended, and so what (if anything) to send before hanging up.
pub(crate) enum End {
    /// Send `frame` (if any), then a close frame with `code` and `reason`.
    Close {
        /// Boxed: a server frame is large, and every connection's loop holds an `End`.
        frame: Option<Box<ServerFrame>>,
        code: CloseCode,
        reason: String,
    },
    /// The client sent a close frame: answer it with the same code.
    ClientClosed(Option<CloseReason>),
    /// The connection is gone or a write failed: nothing more can be sent.
    Gone,
}

impl End {
    /// The engine (or the server) disconnected the session: tell the client why.
    pub(crate) fn disconnected(reason: DisconnectReason) -> End {
        let code = match reason {
            DisconnectReason::ShuttingDown => CloseCode::Away,
            DisconnectReason::SlowConsumer => CloseCode::Policy,
            DisconnectReason::LoggedOut => CloseCode::Normal,
            _ => CloseCode::Error,
        };
        End::Close {
            frame: Some(Box::new(ServerFrame::disconnected(reason))),
            code,
            reason: reason.to_string(),
        }
    }

    /// The embedder's login for the connection was refused: its `error` reply is the
    /// last frame, and the client may not log in otherwise.
    pub(crate) fn login_refused() -> End {
        End::Close {
            frame: None,
            code: CloseCode::Policy,
            reason: "login refused".to_owned(),
        }
    }

    /// The session ended without a reason the client should see.
    pub(crate) fn session_ended() -> End {
        End::Close {
            frame: None,
            code: CloseCode::Normal,
            reason: String::new(),
        }
    }

    /// Nothing arrived from the client for `idle_timeout`.
    pub(crate) fn idle(idle_timeout: Duration) -> End {
        tracing::debug!("idle timeout");
        End::Close {
            frame: None,
            code: CloseCode::Policy,
            reason: format!("idle for {} ms", idle_timeout.as_millis()),
        }
    }

    /// The client's stream cannot be read any more.
    pub(crate) fn unreadable(error: ReadError, max_frame: usize) -> End {
        match error {
            ReadError::Gone => {
                tracing::debug!("connection closed by the peer");
                End::Gone
            }
            // The rest of an oversized frame is never read, so the connection cannot go on.
            ReadError::TooLarge => {
                tracing::debug!(max_frame, "frame too large");
                End::Close {
                    frame: None,
                    code: CloseCode::Size,
                    reason: format!("frames are limited to {max_frame} bytes"),
                }
            }
            ReadError::Invalid(code, reason) => {
                tracing::debug!(%reason, "protocol error");
                End::Close {
                    frame: None,
                    code,
                    reason,
                }
            }
        }
    }

    /// What to write before hanging up: the last frame (if any) and the close frame's
    /// reason; `None` when nothing can be written any more.
    pub(crate) fn farewell(self) -> Option<(Option<ServerFrame>, Option<CloseReason>)> {
        match self {
            End::Gone => None,
            End::ClientClosed(reason) => Some((None, reason)),
            End::Close {
                frame,
                code,
                reason,
            } => {
                let description = (!reason.is_empty()).then_some(reason);
                Some((frame.map(|f| *f), Some(CloseReason { code, description })))
            }
        }
    }
}

/// After our close frame: ends our side of the stream and reads (and drops) what the
/// client still sends until it closes its side too, at most `wait`. Dropping a socket
/// with unread data resets it, and the client could lose our close frame to the reset.
pub(crate) async fn linger<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, wait: Duration) {
    let drain = async {
        if stream.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0u8; 512];
        // Bounded by `wait`; ends at the client's EOF or an error.
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    if timeout(wait, drain).await.is_err() {
        tracing::debug!("the client did not close its side in time");
    }
}
