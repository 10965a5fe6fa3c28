//! The name mapping: a display name (what the engine knows, what web users see) to an IRC
//! nick and back, reversibly.
//!
//! A display name may hold characters no nick can: a space (`Ann Lee`), `!`, `@`, `,`,
//! `*`, `?` (they have a meaning in IRC lines and masks), and a nick should not start like
//! a channel or a member prefix. Each such ASCII character is written as `\` and its two
//! lowercase hex digits; `\` itself too. Everything else, non-ASCII letters included
//! (the server says `UTF8ONLY`), stays as it is:
//!
//! | display name | nick |
//! |---|---|
//! | `alice` | `alice` |
//! | `Ann Lee` | `Ann\20Lee` |
//! | `J. Smith` | `J\2e\20Smith` |
//! | `+plus` | `\2bplus` |
//! | `back\slash` | `back\5cslash` |
//! | `José` | `José` |
//!
//! [`encode`] and [`decode`] are inverses, and only the canonical form decodes (`\61` for
//! `a` does not), so every valid nick names exactly one display name and the other way
//! round. Display names are unique case-insensitively (and by look) in the engine, so
//! nicks are unique under `CASEMAPPING=ascii`. The engine still checks every name it is
//! given; this module only translates. Called by the dispatcher and the renderer.

/// Characters escaped wherever they are: IRC syntax (`SP ! @ , * ? :`), the escape
/// character, and `.` (which only server names hold, so a nick never passes for one).
const ESCAPED: &[char] = &[' ', '!', '*', ',', '.', ':', '?', '@', '\\'];

/// Characters escaped at the start only: channel types and member prefixes, `$` (server
/// masks) and `~`.
const ESCAPED_FIRST: &[char] = &['#', '&', '$', '+', '%', '~'];

fn escaped(c: char, first: bool) -> bool {
    ESCAPED.contains(&c) || (first && ESCAPED_FIRST.contains(&c))
}

/// The nick of a display name.
pub fn encode(name: &str) -> String {
    let mut nick = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if escaped(c, i == 0) {
            nick.push('\\');
            nick.push_str(&format!("{:02x}", c as u32));
        } else {
            nick.push(c);
        }
    }
    nick
}

/// The display name a nick stands for, or why it is not a nick of this server: a
/// character that must be escaped, an escape that is not canonical (`\61`, `\2E`), a
/// control character.
pub fn decode(nick: &str) -> Result<String, String> {
    if nick.is_empty() {
        return Err("a nick cannot be empty".into());
    }
    let mut name = String::with_capacity(nick.len());
    let mut chars = nick.chars();
    while let Some(c) = chars.next() {
        let first = name.is_empty();
        if c.is_control() {
            return Err("a nick may not contain control characters".into());
        }
        if c != '\\' {
            if escaped(c, first) {
                return Err(format!(
                    "{c:?} is written \\{:02x} in a nick (see the MOTD or docs/irc.md)",
                    c as u32
                ));
            }
            name.push(c);
            continue;
        }
        let hex: String = chars.by_ref().take(2).collect();
        let decoded = (hex.len() == 2
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| u8::from_str_radix(&hex, 16).ok())
        .flatten()
        .map(char::from)
        .filter(|&d| escaped(d, first));
        match decoded {
            Some(d) => name.push(d),
            None => {
                return Err(format!(
                    "\\{hex} is not an escape of this server: \\ is followed by two lowercase hex digits of one of {}",
                    ESCAPED.iter().chain(ESCAPED_FIRST).collect::<String>()
                ))
            }
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_nicks_and_back() {
        for (name, nick) in [
            ("alice", "alice"),
            ("Ann Lee", "Ann\\20Lee"),
            ("J. Smith", "J\\2e\\20Smith"),
            ("+plus", "\\2bplus"),
            ("a+b", "a+b"),
            ("#1 fan", "\\231\\20fan"),
            ("back\\slash", "back\\5cslash"),
            ("José", "José"),
            ("who?!", "who\\3f\\21"),
            ("ann_lee|away", "ann_lee|away"),
        ] {
            assert_eq!(encode(name), nick, "{name:?}");
            assert_eq!(decode(nick).as_deref(), Ok(name), "{nick:?}");
        }
    }

    #[test]
    fn only_the_canonical_form_decodes() {
        for nick in [
            "",
            "a b",
            "a!b",
            "a@b",
            "a.b",
            "#chan",
            "+v",
            "\\61",
            "\\2E",
            "\\2",
            "x\\",
            "a\\zz",
            "\u{1}x",
            "a,b",
            "\\23a\\23",
        ] {
            assert!(decode(nick).is_err(), "{nick:?}");
        }
        assert_eq!(decode("a#b").as_deref(), Ok("a#b"));
    }

    /// Distinct names give distinct nicks, and every nick decodes to the name it came from:
    /// the mapping is a bijection between names and valid nicks.
    #[test]
    fn the_mapping_is_reversible_over_every_escaped_character() {
        let specials: String = ESCAPED.iter().chain(ESCAPED_FIRST).collect();
        let alphabet: Vec<char> = format!("{specials}aZ9é_-").chars().collect();
        let mut seen = std::collections::HashMap::new();
        for &a in &alphabet {
            for &b in &alphabet {
                for &c in &alphabet {
                    let name: String = [a, b, c].iter().collect();
                    let nick = encode(&name);
                    assert_eq!(decode(&nick).as_deref(), Ok(name.as_str()), "{nick:?}");
                    assert!(
                        !nick.contains([' ', '!', '@', ',', '*', '?', '.', ':']),
                        "{nick:?}"
                    );
                    if let Some(other) = seen.insert(nick.clone(), name.clone()) {
                        panic!("{name:?} and {other:?} share the nick {nick:?}");
                    }
                }
            }
        }
    }
}
