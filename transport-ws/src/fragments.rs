//! Reassembly of a WebSocket message that the client split into continuation frames,
//! bounded by `Limits::max_frame_bytes` for the whole message like a single frame.

use actix_http::ws::Item;

/// A text or binary message split into continuation frames, being put back together.
/// Bounded by `Limits::max_frame_bytes` for the whole message, like a single frame.
pub(crate) struct Fragments {
    text: bool,
    buf: Vec<u8>,
    /// How much of a text message's `buf` is known to be valid UTF-8: the rest, if any, is
    /// the start of a code point cut at the end of the last fragment.
    checked: usize,
    active: bool,
}

/// What a continuation frame completed, if anything.
pub(crate) enum Assembled {
    Pending,
    /// A text message's bytes, not yet checked for UTF-8.
    Text(Vec<u8>),
    Binary,
    TooLarge,
    Invalid(&'static str),
    /// A text fragment that no continuation can make valid UTF-8.
    NotUtf8,
}

impl Fragments {
    pub(crate) fn new() -> Self {
        Fragments {
            text: false,
            buf: Vec::new(),
            checked: 0,
            active: false,
        }
    }

    pub(crate) fn push(&mut self, item: Item, max_bytes: usize) -> Assembled {
        let (first, text, bytes, last) = match item {
            Item::FirstText(b) => (true, true, b, false),
            Item::FirstBinary(b) => (true, false, b, false),
            Item::Continue(b) => (false, self.text, b, false),
            Item::Last(b) => (false, self.text, b, true),
        };
        if first == self.active {
            // A first frame while assembling, or a continuation with nothing started.
            return Assembled::Invalid("unexpected continuation frame");
        }
        if first {
            self.active = true;
            self.text = text;
            self.buf.clear();
            self.checked = 0;
        }
        if self.buf.len() + bytes.len() > max_bytes {
            return Assembled::TooLarge;
        }
        self.buf.extend_from_slice(&bytes);
        if !last {
            return self.check_utf8();
        }
        self.active = false;
        let buf = std::mem::take(&mut self.buf);
        if !self.text {
            return Assembled::Binary;
        }
        Assembled::Text(buf)
    }

    /// Checks the text received so far, so that invalid UTF-8 fails the connection when
    /// its fragment arrives rather than once the message ends (RFC 6455 8.1). Only a code
    /// point cut at the fragment's end may wait for the next one; the last fragment is
    /// checked with the whole message.
    fn check_utf8(&mut self) -> Assembled {
        if !self.text {
            return Assembled::Pending;
        }
        match std::str::from_utf8(&self.buf[self.checked..]) {
            Ok(_) => self.checked = self.buf.len(),
            Err(e) if e.error_len().is_none() => self.checked += e.valid_up_to(),
            Err(_) => return Assembled::NotUtf8,
        }
        Assembled::Pending
    }

    /// Whether a message is being assembled (a new one may not start before it ends).
    pub(crate) fn is_active(&self) -> bool {
        self.active
    }
}

#[cfg(test)]
mod tests {
    use super::{Assembled, Fragments};
    use actix_http::ws::Item;
    use actix_web::web::Bytes;

    #[test]
    fn fragments_reassemble_text_within_the_limit() {
        let mut f = Fragments::new();
        assert!(matches!(
            f.push(Item::FirstText(Bytes::from_static(b"{\"type\":")), 64),
            Assembled::Pending
        ));
        assert!(matches!(
            f.push(Item::Continue(Bytes::from_static(b"\"list_")), 64),
            Assembled::Pending
        ));
        match f.push(Item::Last(Bytes::from_static(b"channels\"}")), 64) {
            Assembled::Text(t) => assert_eq!(t, br#"{"type":"list_channels"}"#),
            _ => panic!("expected text"),
        }
    }

    #[test]
    fn fragments_enforce_the_limit_and_order() {
        let mut f = Fragments::new();
        assert!(matches!(
            f.push(Item::Continue(Bytes::from_static(b"x")), 8),
            Assembled::Invalid(_)
        ));
        assert!(matches!(
            f.push(Item::FirstText(Bytes::from_static(b"12345")), 8),
            Assembled::Pending
        ));
        assert!(matches!(
            f.push(Item::Last(Bytes::from_static(b"6789")), 8),
            Assembled::TooLarge
        ));
        let mut f = Fragments::new();
        assert!(matches!(
            f.push(Item::FirstBinary(Bytes::from_static(b"1")), 8),
            Assembled::Pending
        ));
        assert!(matches!(
            f.push(Item::Last(Bytes::from_static(b"2")), 8),
            Assembled::Binary
        ));
    }

    #[test]
    fn fragments_check_utf8_as_they_come() {
        let mut f = Fragments::new();
        // "€" (E2 82 AC) cut after its first byte and after its second.
        for item in [
            Item::FirstText(Bytes::from_static(b"\xe2")),
            Item::Continue(Bytes::from_static(b"\x82")),
        ] {
            assert!(matches!(f.push(item, 8), Assembled::Pending));
        }
        match f.push(Item::Last(Bytes::from_static(b"\xac")), 8) {
            Assembled::Text(t) => assert_eq!(t, "€".as_bytes()),
            _ => panic!("expected text"),
        }
        // A byte no later fragment can make valid fails its own fragment.
        assert!(matches!(
            f.push(Item::FirstText(Bytes::from_static(b"ok\xe2")), 8),
            Assembled::Pending
        ));
        assert!(matches!(
            f.push(Item::Continue(Bytes::from_static(b"(")), 8),
            Assembled::NotUtf8
        ));
        // Binary messages are not text.
        let mut f = Fragments::new();
        assert!(matches!(
            f.push(Item::FirstBinary(Bytes::from_static(b"\xff")), 8),
            Assembled::Pending
        ));
    }
}
