//! The WebSocket wire of one connection: frames read from and written to its byte stream
//! directly, after the upgrade has taken the stream from the HTTP server. The stream is
//! any [`AsyncRead`] + [`AsyncWrite`]: a `TcpStream` taken from actix-http or accepted by
//! `serve`, or hyper's upgraded connection; the halves borrow it for each read or write
//! rather than own it, so the connection's one task reads and writes without a lock.
//!
//! Why not actix-ws: behind an actix-web route every socket keeps actix-http's two 8 KiB
//! connection buffers for its whole life, and every outgoing frame takes a channel hop
//! and a copy into them. Here an idle connection holds no buffer at all (both are given back
//! whenever they empty), and a batch of events becomes one buffer and one `write`.
//!
//! Framing itself (masking, lengths, opcodes) is actix-http's [`Parser`]; this module adds
//! what a server needs around it: the size limit enforced from the frame header (before
//! the payload is buffered), reassembly of continuation frames, UTF-8 checks, and
//! buffered writes.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use actix_http::ws::{CloseCode, CloseReason, Item, OpCode, Parser, ProtocolError};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::buffers;
use crate::fragments::{Assembled, Fragments};

/// A whole message or control frame from the client.
pub(crate) enum Incoming {
    /// A text message (reassembled if it came in continuation frames).
    Text(String),
    /// A binary message: not part of the protocol, its content is not kept.
    Binary,
    /// A ping, with the payload the pong must echo.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// A close frame, with its code and reason if it had them.
    Close(Option<CloseReason>),
}

/// Why no more can be read.
pub(crate) enum ReadError {
    /// The peer closed the connection or it failed.
    Gone,
    /// A frame, or a message across continuation frames, is over the limit.
    TooLarge,
    /// The peer broke the protocol: close with this code and reason.
    Invalid(CloseCode, String),
}

/// The opcode bit that control frames (close, ping, pong) have (RFC 6455 5.5).
const CONTROL: u8 = 0x08;

/// Free room the read buffer has before each read.
const READ_CHUNK: usize = 4096;

/// The reading half: whole messages out of the stream, at most `max_bytes` each.
pub(crate) struct Reader {
    /// Read and not parsed yet; empty (and unallocated) between messages.
    buf: BytesMut,
    fragments: Fragments,
    max_bytes: usize,
}

impl Reader {
    /// A reader that starts with `read_ahead`, bytes the HTTP server read past the
    /// upgrade request (a client may send frames before it has our answer).
    pub(crate) fn new(read_ahead: BytesMut, max_bytes: usize) -> Self {
        Reader {
            buf: read_ahead,
            fragments: Fragments::new(),
            max_bytes,
        }
    }

    /// The next message or control frame from `stream`. Cancel-safe: what was read stays
    /// buffered.
    pub(crate) async fn next<S>(&mut self, stream: &mut S) -> Result<Incoming, ReadError>
    where
        S: AsyncRead + Unpin,
    {
        loop {
            if let Some(incoming) = self.parse()? {
                return Ok(incoming);
            }
            poll_fn(|cx| self.poll_fill(stream, cx)).await?;
        }
    }

    /// Whatever the stream has now, appended to the buffer. The buffer is the thread's
    /// spare while the read runs and is given back when nothing came: a connection
    /// waiting for its client holds no read buffer (a spare is a few instructions away).
    fn poll_fill<S>(&mut self, stream: &mut S, cx: &mut Context<'_>) -> Poll<Result<(), ReadError>>
    where
        S: AsyncRead + Unpin,
    {
        if self.buf.capacity() == 0 {
            self.buf = buffers::take();
        }
        if self.buf.capacity() - self.buf.len() < READ_CHUNK {
            self.buf.reserve(READ_CHUNK);
        }
        let read = tokio_util::io::poll_read_buf(Pin::new(stream), cx, &mut self.buf);
        Poll::Ready(match read {
            Poll::Pending => {
                self.give_back_if_empty();
                return Poll::Pending;
            }
            Poll::Ready(Ok(0)) => Err(ReadError::Gone),
            Poll::Ready(Ok(_)) => Ok(()),
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "read failed");
                Err(ReadError::Gone)
            }
        })
    }

    /// The first complete message in the buffer, if there is one.
    fn parse(&mut self) -> Result<Option<Incoming>, ReadError> {
        loop {
            // The header's length is checked before the payload is waited for: a client
            // announcing a huge frame, or a control frame over 125 bytes (RFC 6455 5.5),
            // is refused at once, not buffered.
            if let Some(n) = declared_length(&self.buf) {
                if self.buf[0] & CONTROL != 0 && n > 125 {
                    return Err(invalid(CloseCode::Protocol, "control frame over 125 bytes"));
                }
                if n > self.max_bytes as u64 {
                    return Err(ReadError::TooLarge);
                }
            }
            let frame = Parser::parse(&mut self.buf, true, self.max_bytes).map_err(refused)?;
            let Some((fin, opcode, payload)) = frame else {
                self.give_back_if_empty();
                return Ok(None);
            };
            let payload = payload.map(BytesMut::freeze).unwrap_or_default();
            let incoming = self.frame(fin, opcode, payload)?;
            // Only now: until the frame is taken apart, its payload shares the buffer's
            // allocation, and a shared buffer given back would be allocated anew.
            self.give_back_if_empty();
            if incoming.is_some() {
                return Ok(incoming);
            }
        }
    }

    /// Gives the buffer back once it holds nothing: an idle connection keeps no read
    /// buffer.
    fn give_back_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            buffers::give(std::mem::take(&mut self.buf));
        }
    }

    /// What one frame completes, if anything (a continuation frame may complete nothing).
    fn frame(
        &mut self,
        fin: bool,
        opcode: OpCode,
        payload: Bytes,
    ) -> Result<Option<Incoming>, ReadError> {
        let item = match (opcode, fin) {
            // RFC 6455 5.5: control frames are never fragmented.
            (OpCode::Ping | OpCode::Pong | OpCode::Close, false) => {
                return Err(invalid(CloseCode::Protocol, "fragmented control frame"));
            }
            (OpCode::Ping, _) => return Ok(Some(Incoming::Ping(payload))),
            (OpCode::Pong, _) => return Ok(Some(Incoming::Pong)),
            (OpCode::Close, _) => {
                let reason = Parser::try_parse_close_payload(&payload).map_err(refused)?;
                return Ok(Some(Incoming::Close(reason)));
            }
            (OpCode::Bad, _) => return Err(invalid(CloseCode::Protocol, "bad opcode")),
            (OpCode::Text | OpCode::Binary, true) if self.fragments.is_active() => {
                return Err(invalid(
                    CloseCode::Protocol,
                    "a new message inside a fragmented one",
                ));
            }
            (OpCode::Text, true) => return text(payload.to_vec()).map(Some),
            (OpCode::Binary, true) => return Ok(Some(Incoming::Binary)),
            (OpCode::Text, false) => Item::FirstText(payload),
            (OpCode::Binary, false) => Item::FirstBinary(payload),
            (OpCode::Continue, false) => Item::Continue(payload),
            (OpCode::Continue, true) => Item::Last(payload),
        };
        match self.fragments.push(item, self.max_bytes) {
            Assembled::Pending => Ok(None),
            Assembled::Text(bytes) => text(bytes).map(Some),
            Assembled::Binary => Ok(Some(Incoming::Binary)),
            Assembled::TooLarge => Err(ReadError::TooLarge),
            Assembled::Invalid(why) => Err(invalid(CloseCode::Protocol, why)),
            Assembled::NotUtf8 => Err(invalid(CloseCode::Invalid, NOT_UTF8)),
        }
    }
}

/// The payload length a frame header announces, once its length bytes are in.
fn declared_length(buf: &[u8]) -> Option<u64> {
    let short = buf.get(1)? & 0x7f;
    match short {
        126 => Some(u64::from(u16::from_be_bytes(
            buf.get(2..4)?.try_into().ok()?,
        ))),
        127 => Some(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)),
        n => Some(u64::from(n)),
    }
}

fn text(bytes: Vec<u8>) -> Result<Incoming, ReadError> {
    String::from_utf8(bytes)
        .map(Incoming::Text)
        .map_err(|_| invalid(CloseCode::Invalid, NOT_UTF8))
}

const NOT_UTF8: &str = "text message is not valid UTF-8";

fn invalid(code: CloseCode, why: &str) -> ReadError {
    ReadError::Invalid(code, why.to_owned())
}

fn refused(error: ProtocolError) -> ReadError {
    match error {
        ProtocolError::Overflow => ReadError::TooLarge,
        other => ReadError::Invalid(CloseCode::Protocol, other.to_string()),
    }
}

/// Frames waiting in the write buffer past which a batch is written before it goes on.
pub(crate) const FLUSH_AT: usize = 64 * 1024;

/// The writing half: frames are appended to a buffer, and [`Writer::flush`] writes them
/// all, usually in one system call.
pub(crate) struct Writer {
    /// Encoded frames not written yet; empty (and unallocated) after each flush.
    buf: BytesMut,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Writer {
            buf: BytesMut::new(),
        }
    }

    /// The buffer to queue frames in, borrowed from the thread's spares when empty.
    fn buf(&mut self) -> &mut BytesMut {
        if self.buf.capacity() == 0 {
            self.buf = buffers::take();
        }
        &mut self.buf
    }

    /// Queues a text frame.
    pub(crate) fn text(&mut self, payload: &[u8]) {
        Parser::write_message(self.buf(), payload, OpCode::Text, true, false);
    }

    /// Queues one text frame whose payload is `parts` one after another, without joining
    /// them first (a post's reply reuses the encoded message its event carries).
    pub(crate) fn text_parts(&mut self, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let buf = self.buf();
        // RFC 6455 5.2, as a server writes it: FIN + text, no mask, shortest length form.
        buf.reserve(len + 10);
        buf.put_u8(0x81);
        match len {
            0..=125 => buf.put_u8(len as u8),
            126..=0xFFFF => {
                buf.put_u8(126);
                buf.put_u16(len as u16);
            }
            _ => {
                buf.put_u8(127);
                buf.put_u64(len as u64);
            }
        }
        for part in parts {
            buf.extend_from_slice(part);
        }
    }

    /// Queues a ping.
    pub(crate) fn ping(&mut self) {
        Parser::write_message(self.buf(), b"", OpCode::Ping, true, false);
    }

    /// Queues the pong answering a ping with `payload`.
    pub(crate) fn pong(&mut self, payload: &[u8]) {
        Parser::write_message(self.buf(), payload, OpCode::Pong, true, false);
    }

    /// Queues a close frame.
    pub(crate) fn close(&mut self, reason: Option<CloseReason>) {
        Parser::write_close(self.buf(), reason, false);
    }

    /// Bytes queued and not written yet.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Writes what `stream` takes now, without waiting. Returns whether nothing is left
    /// queued.
    pub(crate) fn write_now<S>(&mut self, stream: &mut S) -> io::Result<bool>
    where
        S: AsyncWrite + Unpin,
    {
        // Polled once with a waker that does nothing: what the stream does not take now
        // is waited for by `flush`, with the task's own waker.
        let mut cx = Context::from_waker(Waker::noop());
        match self.poll_write_all(stream, &mut cx) {
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(false),
        }
    }

    /// Writes everything queued, waiting for `stream` as needed. A cancelled flush
    /// leaves the rest queued (callers then drop the connection).
    pub(crate) async fn flush<S>(&mut self, stream: &mut S) -> io::Result<()>
    where
        S: AsyncWrite + Unpin,
    {
        poll_fn(|cx| self.poll_write_all(stream, cx)).await
    }

    /// Writes the queue, then flushes the stream (a TCP stream has nothing to flush; a
    /// TLS or buffered one does).
    fn poll_write_all<S>(&mut self, stream: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        S: AsyncWrite + Unpin,
    {
        while !self.buf.is_empty() {
            let n = ready!(Pin::new(&mut *stream).poll_write(cx, &self.buf))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.buf.advance(n);
        }
        if self.buf.capacity() > 0 {
            // Give the buffer back: an idle connection keeps no write buffer.
            buffers::give(std::mem::take(&mut self.buf));
        }
        Pin::new(stream).poll_flush(cx)
    }
}

#[cfg(test)]
mod tests;
