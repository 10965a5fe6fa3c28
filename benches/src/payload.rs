//! The measured message text: `lg1 SENDER SEQ SENT_NS` then padding to a fixed size.
//!
//! Written by senders in [`crate::run`], found again by [`find`] in whatever frame or line
//! a server delivers (our JSON events, raw forwarded frames, Socket.IO packets, IRC
//! `PRIVMSG` lines, our TCP lines). `SENT_NS` is nanoseconds since the run's shared start
//! instant, so a receiver in the same process computes the end-to-end latency. Only ASCII
//! letters, digits and spaces are used, so no protocol needs to escape anything.

/// The marker that starts every measured text.
pub const MARKER: &str = "lg1 ";

/// What a measured message says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the sending client among the run's senders.
    pub sender: u32,
    /// The sender's sequence number, from 0, without gaps.
    pub seq: u64,
    /// When it was sent: nanoseconds since the run's start instant.
    pub sent_ns: u64,
}

/// The text for `stamp`, padded with `x` to at least `size` bytes.
pub fn encode(stamp: Stamp, size: usize) -> String {
    let mut text = format!("{MARKER}{} {} {} ", stamp.sender, stamp.seq, stamp.sent_ns);
    while text.len() < size {
        text.push('x');
    }
    text
}

/// Finds the first measured text in `haystack` (a whole frame or line) and parses it.
pub fn find(haystack: &str) -> Option<Stamp> {
    let at = haystack.find(MARKER)?;
    let mut fields = haystack[at + MARKER.len()..].split(' ');
    let sender = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let sent = fields.next()?;
    let digits = sent.bytes().take_while(u8::is_ascii_digit).count();
    let sent_ns = sent[..digits].parse().ok()?;
    Some(Stamp {
        sender,
        seq,
        sent_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_inside_any_frame() {
        let stamp = Stamp {
            sender: 7,
            seq: 42,
            sent_ns: 123_456_789,
        };
        let text = encode(stamp, 64);
        assert_eq!(text.len(), 64);
        for frame in [
            format!(r#"{{"type":"message","room":"c","message":{{"text":"{text}"}}}}"#),
            format!(":u1!~u1@localhost PRIVMSG #c :{text}"),
            format!("[14:03:22] #c <u1> {text} (id 42)"),
            format!(r#"42["message",{{"room":"c","id":3,"text":"{text}"}}]"#),
        ] {
            assert_eq!(find(&frame), Some(stamp), "{frame}");
        }
        assert_eq!(find("no marker here"), None);
        assert_eq!(find("lg1 1 2"), None);
        assert_eq!(
            find("lg1 1 2 3"),
            Some(Stamp {
                sender: 1,
                seq: 2,
                sent_ns: 3
            })
        );
    }
}
