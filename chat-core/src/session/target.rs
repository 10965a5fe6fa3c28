//! `Target`: a room as a client names it, `general`, `#general` or `@alice`. Parsed by
//! the session from whatever a transport passes; it decides nothing about the room.

/// A room as a client names it: a channel (`general`, `#general`) or a user, for the
/// private conversation with them (`@alice`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A channel, by name.
    Channel(String),
    /// The private conversation with a user, by display name.
    User(String),
}

impl Target {
    /// Reads `@name` as a user and anything else (with or without `#`) as a channel.
    pub fn parse(raw: &str) -> Target {
        let raw = raw.trim();
        match raw.strip_prefix('@') {
            Some(user) => Target::User(user.to_owned()),
            None => Target::Channel(raw.to_owned()),
        }
    }
}

impl From<&str> for Target {
    fn from(raw: &str) -> Self {
        Target::parse(raw)
    }
}

impl From<String> for Target {
    /// Reads `raw` like [`Target::parse`], keeping its allocation.
    fn from(mut raw: String) -> Self {
        if raw.trim().len() != raw.len() {
            return Target::parse(&raw);
        }
        if raw.starts_with('@') {
            raw.remove(0);
            Target::User(raw)
        } else {
            Target::Channel(raw)
        }
    }
}

impl From<&String> for Target {
    fn from(raw: &String) -> Self {
        Target::parse(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn a_target_read_from_a_string_is_the_target_parse_reads() {
        for raw in [
            "general",
            "#general",
            "@alice",
            " @alice ",
            "  general",
            "@",
            "",
            "a@b",
        ] {
            assert_eq!(Target::from(raw.to_owned()), Target::parse(raw), "{raw:?}");
        }
    }
}
