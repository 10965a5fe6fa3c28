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
/// The loadgen runs this once per delivery, over frames of a few hundred bytes: it jumps
/// from one `l` to the next (a `memchr` scan) instead of running a substring search, and
/// reads the numbers in place.
pub fn find(haystack: &str) -> Option<Stamp> {
    let bytes = haystack.as_bytes();
    let mut from = 0;
    let at = loop {
        let at = from + haystack[from..].find('l')?;
        if bytes[at..].starts_with(MARKER.as_bytes()) {
            break at;
        }
        from = at + 1;
    };
    let mut rest = &bytes[at + MARKER.len()..];
    let sender = u32::try_from(number(&mut rest, true)?).ok()?;
    let seq = number(&mut rest, true)?;
    let sent_ns = number(&mut rest, false)?;
    Some(Stamp {
        sender,
        seq,
        sent_ns,
    })
}

/// The decimal number at the start of `rest` (at least one digit, no overflow), which
/// then starts after it; with `then_space`, a space must follow and is skipped too.
fn number(rest: &mut &[u8], then_space: bool) -> Option<u64> {
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in &rest[..digits] {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    let mut end = digits;
    if then_space {
        if rest.get(end) != Some(&b' ') {
            return None;
        }
        end += 1;
    }
    *rest = &rest[end..];
    Some(value)
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
        assert_eq!(find("lg1 1x 2 3"), None, "a field with more than digits");
        assert_eq!(find("lg1 4294967296 2 3"), None, "a sender beyond u32");
        assert_eq!(find("lg1 1 2 99999999999999999999"), None, "beyond u64");
        // An `l` before the marker, and a false start, are skipped.
        assert_eq!(
            find(r#"{"room":"lobby","text":"lg1lg1 5 6 7xx"}"#),
            Some(Stamp {
                sender: 5,
                seq: 6,
                sent_ns: 7
            })
        );
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
