//! `LineCodec`: bytes from the socket to [`Input`] items, one per line.
//!
//! Owns the byte level of the protocol: line endings (`\n` or `\r\n`), the line length cap
//! ([`TcpConfig::max_line_bytes`](crate::TcpConfig::max_line_bytes)), UTF-8 checking, and the
//! telnet noise a terminal client mixes into its input (IAC option negotiation,
//! sub-negotiation, interrupt). Used by `connection.rs` through a `FramedRead`.
//!
//! It must not fail the stream on anything a peer sends: an over-long line or invalid UTF-8
//! becomes an error *item* and the connection carries on. Its memory is bounded by the cap
//! whatever the peer sends (a sub-negotiation or a discarded line is skipped, not kept).

use std::io;

use tokio_util::bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// Telnet "interpret as command".
const IAC: u8 = 255;
/// Telnet sub-negotiation begin / end.
const SB: u8 = 250;
const SE: u8 = 240;
/// Telnet option negotiation verbs: WILL, WONT, DO, DONT (each takes one option byte).
const WILL: u8 = 251;
const DONT: u8 = 254;
/// ASCII end of text: Ctrl-C typed in a raw-mode terminal.
const CTRL_C: u8 = 0x03;

/// One item of client input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// A complete line, without its terminator and without telnet commands.
    Line(String),
    /// A line was longer than the limit (in bytes); the rest of it is discarded up to the
    /// next newline. Reported once per line, as soon as the limit is crossed.
    TooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A line was not valid UTF-8; it is dropped.
    InvalidUtf8,
}

/// Where the decoder is inside the telnet command syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    /// Plain data.
    Data,
    /// After IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT: the next byte is the option.
    Option,
    /// Inside IAC SB ... (skipped up to IAC SE).
    Sub,
    /// After an IAC inside a sub-negotiation.
    SubIac,
}

/// A `Decoder` of client lines with a length cap; see the module docs.
#[derive(Debug)]
pub struct LineCodec {
    /// Longest line kept, in bytes (terminator and telnet commands excluded).
    max_len: usize,
    /// The line read so far (at most `max_len` bytes).
    line: Vec<u8>,
    /// True after the cap was crossed: bytes are dropped until the next newline.
    discarding: bool,
    telnet: Telnet,
}

impl LineCodec {
    /// A codec keeping lines of at most `max_len` bytes (at least 1).
    pub fn new(max_len: usize) -> Self {
        LineCodec {
            max_len: max_len.max(1),
            line: Vec::new(),
            discarding: false,
            telnet: Telnet::Data,
        }
    }

    /// Feeds one data byte (telnet already stripped). Returns an item when one is complete.
    fn data(&mut self, byte: u8) -> Option<Input> {
        match byte {
            b'\n' => {
                if std::mem::take(&mut self.discarding) {
                    self.line.clear();
                    return None;
                }
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Some(match String::from_utf8(line) {
                    Ok(text) => Input::Line(text),
                    Err(_) => Input::InvalidUtf8,
                })
            }
            // Ctrl-C is harmless: dropped, never part of a line. NUL is what telnet sends
            // after a bare CR.
            CTRL_C | 0 => None,
            _ if self.discarding => None,
            _ if self.line.len() >= self.max_len => {
                self.discarding = true;
                self.line = Vec::new();
                Some(Input::TooLong {
                    limit: self.max_len,
                })
            }
            _ => {
                self.line.push(byte);
                None
            }
        }
    }

    /// Feeds one byte off the wire. Returns an item when one is complete.
    fn byte(&mut self, byte: u8) -> Option<Input> {
        match (self.telnet, byte) {
            (Telnet::Data, IAC) => {
                self.telnet = Telnet::Iac;
                None
            }
            (Telnet::Data, _) => self.data(byte),
            // IAC IAC is a literal 0xFF data byte.
            (Telnet::Iac, IAC) => {
                self.telnet = Telnet::Data;
                self.data(IAC)
            }
            (Telnet::Iac, SB) => {
                self.telnet = Telnet::Sub;
                None
            }
            (Telnet::Iac, WILL..=DONT) => {
                self.telnet = Telnet::Option;
                None
            }
            // Any other command (IP = interrupt, AO, AYT, NOP, BRK, GA, ...) is dropped.
            (Telnet::Iac, _) | (Telnet::Option, _) => {
                self.telnet = Telnet::Data;
                None
            }
            (Telnet::Sub, IAC) => {
                self.telnet = Telnet::SubIac;
                None
            }
            (Telnet::Sub, _) => None,
            (Telnet::SubIac, SE) => {
                self.telnet = Telnet::Data;
                None
            }
            // IAC IAC inside a sub-negotiation is an escaped data byte of it; anything
            // else is malformed and skipped the same way.
            (Telnet::SubIac, _) => {
                self.telnet = Telnet::Sub;
                None
            }
        }
    }
}

impl Decoder for LineCodec {
    type Item = Input;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Input>, io::Error> {
        for i in 0..src.len() {
            if let Some(item) = self.byte(src[i]) {
                src.advance(i + 1);
                return Ok(Some(item));
            }
        }
        // Everything was consumed into `self.line` (or skipped).
        src.clear();
        Ok(None)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Input>, io::Error> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        // A last line without a newline still counts (`printf 'hi' | nc ...`).
        if self.discarding || self.line.is_empty() {
            self.discarding = false;
            self.line.clear();
            return Ok(None);
        }
        Ok(self.data(b'\n'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut LineCodec, bytes: &[u8]) -> Vec<Input> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(item) = codec.decode(&mut buf).expect("decode never fails") {
            out.push(item);
        }
        assert!(buf.is_empty());
        out
    }

    fn line(s: &str) -> Input {
        Input::Line(s.to_owned())
    }

    #[test]
    fn splits_lines_on_lf_and_crlf() {
        let mut c = LineCodec::new(100);
        assert_eq!(
            decode_all(&mut c, b"hello\r\nworld\n\npart"),
            vec![line("hello"), line("world"), line("")]
        );
        assert_eq!(decode_all(&mut c, b"ial\n"), vec![line("partial")]);
    }

    #[test]
    fn last_line_without_newline_is_kept_at_eof() {
        let mut c = LineCodec::new(100);
        let mut buf = BytesMut::from(&b"bye"[..]);
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        assert_eq!(c.decode_eof(&mut buf).unwrap(), Some(line("bye")));
        assert_eq!(c.decode_eof(&mut buf).unwrap(), None);
    }

    #[test]
    fn over_long_line_is_reported_once_and_discarded() {
        let mut c = LineCodec::new(4);
        assert_eq!(
            decode_all(&mut c, b"abcd\nabcdefgh"),
            vec![line("abcd"), Input::TooLong { limit: 4 }]
        );
        assert!(c.line.len() <= 4);
        assert_eq!(decode_all(&mut c, b"ijkl\nok\n"), vec![line("ok")]);
    }

    #[test]
    fn invalid_utf8_is_an_item_not_an_error() {
        let mut c = LineCodec::new(100);
        assert_eq!(
            decode_all(&mut c, b"a\xc3\x28b\nfine \xc3\xa9\n"),
            vec![Input::InvalidUtf8, line("fine é")]
        );
    }

    #[test]
    fn telnet_commands_are_stripped() {
        let mut c = LineCodec::new(100);
        // IAC DO ECHO, IAC WILL SGA, IAC SB TTYPE ... IAC SE, IAC IP, IAC NOP.
        let input =
            b"\xff\xfd\x01he\xff\xfb\x03llo\xff\xfa\x18\x00xterm\xff\xf0\xff\xf4\xff\xf1!\r\n";
        assert_eq!(decode_all(&mut c, input), vec![line("hello!")]);
        // IAC IAC is a literal 0xFF, which is not UTF-8 on its own.
        assert_eq!(decode_all(&mut c, b"\xff\xff\n"), vec![Input::InvalidUtf8]);
        // Split across reads.
        assert_eq!(decode_all(&mut c, b"a\xff"), vec![]);
        assert_eq!(decode_all(&mut c, b"\xfd"), vec![]);
        assert_eq!(decode_all(&mut c, b"\x01b\n"), vec![line("ab")]);
    }

    #[test]
    fn ctrl_c_and_nul_are_dropped() {
        let mut c = LineCodec::new(100);
        assert_eq!(
            decode_all(&mut c, b"\x03\r\0hi\x03\n\x03\n"),
            vec![line("\rhi"), line("")]
        );
    }

    #[test]
    fn sub_negotiation_is_skipped_without_buffering() {
        let mut c = LineCodec::new(8);
        let mut input = vec![IAC, SB];
        input.extend(std::iter::repeat_n(b'x', 10_000));
        input.extend([IAC, IAC, b'y', IAC, SE]);
        input.extend(b"ok\n");
        assert_eq!(decode_all(&mut c, &input), vec![line("ok")]);
    }
}
