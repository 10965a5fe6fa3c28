//! `IrcCodec`: bytes from the socket to [`Input`] items, one per IRC line.
//!
//! Owns the byte level: line endings (`\n` or `\r\n`), the line limits of IRC (at most
//! [`MAX_LINE_BYTES`] for the message, `\r\n` included, plus at most [`MAX_TAGS_BYTES`] of
//! tags) and UTF-8 checking (the server announces `UTF8ONLY`). Used by `connection.rs`
//! through a `FramedRead`; the line then goes to `irc_proto` to be parsed.
//!
//! irc-proto's own `LineCodec` is not used: it keeps growing its buffer until a newline
//! comes and fails the whole stream on one invalid byte. Here nothing a peer sends fails
//! the stream: an over-long line or invalid UTF-8 becomes an error *item*, the rest of a
//! long line is skipped without being kept, and the connection carries on.

use std::io;

use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::config::{MAX_LINE_BYTES, MAX_TAGS_BYTES};

/// The most bytes a line may have before its `\n`: tags, message and its `\r`.
const MAX_RAW: usize = MAX_TAGS_BYTES + MAX_LINE_BYTES - 1;

/// One item of client input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// A complete line, without its terminator.
    Line(String),
    /// A line broke the length limits; what was read of it is dropped, and the rest is
    /// skipped up to the next newline. Reported once per line.
    TooLong,
    /// A line was not valid UTF-8; it is dropped.
    InvalidUtf8,
}

/// A `Decoder` of IRC lines with IRC's length limits; see the module docs.
#[derive(Debug, Default)]
pub struct IrcCodec {
    /// How much of the buffer is known to hold no newline.
    scanned: usize,
    /// True after a line crossed the limit: bytes are dropped until the next newline.
    discarding: bool,
}

impl IrcCodec {
    /// A codec with IRC's limits.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Whether a line (without `\r\n`) fits: tags (from `@` to the space after them) at most
/// [`MAX_TAGS_BYTES`], the rest at most [`MAX_LINE_BYTES`] with its `\r\n`.
pub fn fits(line: &[u8]) -> bool {
    let rest = match line.first() {
        Some(b'@') => match line.iter().position(|&b| b == b' ') {
            Some(space) if space < MAX_TAGS_BYTES => &line[space + 1..],
            Some(_) => return false,
            None => return line.len() < MAX_TAGS_BYTES,
        },
        _ => line,
    };
    rest.len() + 2 <= MAX_LINE_BYTES
}

impl Decoder for IrcCodec {
    type Item = Input;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Input>, io::Error> {
        loop {
            let Some(offset) = src[self.scanned..].iter().position(|&b| b == b'\n') else {
                if src.len() > MAX_RAW {
                    // Too long already: skip what came, keep nothing of it.
                    src.clear();
                    self.scanned = 0;
                    if !std::mem::replace(&mut self.discarding, true) {
                        return Ok(Some(Input::TooLong));
                    }
                    return Ok(None);
                }
                self.scanned = src.len();
                return Ok(None);
            };
            let end = self.scanned + offset;
            self.scanned = 0;
            let line = src.split_to(end + 1);
            if std::mem::take(&mut self.discarding) {
                continue;
            }
            let mut bytes = &line[..end];
            if let Some(stripped) = bytes.strip_suffix(b"\r") {
                bytes = stripped;
            }
            if !fits(bytes) {
                return Ok(Some(Input::TooLong));
            }
            return Ok(Some(match std::str::from_utf8(bytes) {
                Ok(text) => Input::Line(text.to_owned()),
                Err(_) => Input::InvalidUtf8,
            }));
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Input>, io::Error> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        // A last line without a newline still counts.
        if self.discarding || src.is_empty() {
            self.discarding = false;
            src.clear();
            return Ok(None);
        }
        src.extend_from_slice(b"\n");
        self.decode(src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut IrcCodec, bytes: &[u8]) -> Vec<Input> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(item) = codec.decode(&mut buf).expect("decode never fails") {
            out.push(item);
        }
        out
    }

    fn line(s: &str) -> Input {
        Input::Line(s.to_owned())
    }

    #[test]
    fn splits_lines_on_lf_and_crlf() {
        let mut c = IrcCodec::new();
        assert_eq!(
            decode_all(&mut c, b"NICK a\r\nUSER a 0 * :a\nPI"),
            vec![line("NICK a"), line("USER a 0 * :a")]
        );
        let mut buf = BytesMut::from(&b"NG x"[..]);
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        let mut rest = BytesMut::from(&b"PING x"[..]);
        assert_eq!(c.decode_eof(&mut rest).unwrap(), Some(line("PING x")));
    }

    #[test]
    fn the_message_may_have_510_bytes_and_tags_8191_more() {
        let mut c = IrcCodec::new();
        let ok = format!("PRIVMSG #a :{}", "x".repeat(510 - 12));
        assert_eq!(
            decode_all(&mut c, format!("{ok}\r\n").as_bytes()),
            [line(&ok)]
        );
        let long = format!("{ok}y");
        assert_eq!(
            decode_all(&mut c, format!("{long}\r\nPING z\r\n").as_bytes()),
            [Input::TooLong, line("PING z")]
        );
        let tags = format!("@{} ", "t".repeat(MAX_TAGS_BYTES - 2));
        let tagged = format!("{tags}{ok}");
        assert_eq!(
            decode_all(&mut c, format!("{tagged}\n").as_bytes()),
            [line(&tagged)]
        );
        let too_many_tags = format!("@{} PING x", "t".repeat(MAX_TAGS_BYTES - 1));
        assert_eq!(
            decode_all(&mut c, format!("{too_many_tags}\n").as_bytes()),
            [Input::TooLong]
        );
    }

    #[test]
    fn a_huge_line_is_reported_once_and_never_kept() {
        let mut c = IrcCodec::new();
        let mut buf = BytesMut::new();
        let mut items = Vec::new();
        for _ in 0..100 {
            buf.extend_from_slice(&[b'x'; 1024]);
            while let Some(item) = c.decode(&mut buf).unwrap() {
                items.push(item);
            }
            assert!(buf.len() <= MAX_RAW + 1024, "the buffer is bounded");
        }
        buf.extend_from_slice(b"xx\r\nPING ok\r\n");
        while let Some(item) = c.decode(&mut buf).unwrap() {
            items.push(item);
        }
        assert_eq!(items, [Input::TooLong, line("PING ok")]);
    }

    #[test]
    fn invalid_utf8_is_an_item_not_an_error() {
        let mut c = IrcCodec::new();
        assert_eq!(
            decode_all(&mut c, b"PRIVMSG #a :\xc3\x28\r\nPRIVMSG #a :\xc3\xa9\r\n"),
            [Input::InvalidUtf8, line("PRIVMSG #a :é")]
        );
    }
}
