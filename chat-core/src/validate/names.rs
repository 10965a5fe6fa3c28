//! Display names that cannot pass for one another: what a valid name is
//! ([`display_name`]) and when two names count as the same ([`name_key`]).
//!
//! Called by the session handle before a login reaches the directory, and by the
//! directory and the brokers (the in-memory name map, Redis's `flack:name:{key}`) for
//! every name they hold or look up. Pure functions over Unicode data from the
//! `unicode-normalization` and `unicode-security` crates; the one table kept here is
//! Unicode's `Default_Ignorable_Code_Point`, which a unit test checks against the
//! skeleton of `unicode-security`.
//!
//! It must not decide anything about channel names: they are ASCII-only (see
//! [`super::channel_name`]), so none of this applies to them.

use unicode_normalization::char::{is_combining_mark, is_public_assigned};
use unicode_normalization::UnicodeNormalization;
use unicode_security::skeleton;

use crate::error::ChatError;
use crate::limits::Limits;

/// Checks a display name and returns the form to store and show: NFKC-normalized and
/// trimmed. It has 1 to `max_display_name_chars` characters (counted after NFKC), at
/// least one letter or digit, does not start with `@` or `#`, and has no control,
/// invisible (`Default_Ignorable_Code_Point`, blank braille, Hangul fillers), bidi
/// control, unusual space, unassigned or private-use character. A refusal names the
/// character and why.
pub fn display_name(raw: &str, limits: &Limits) -> Result<String, ChatError> {
    let max = limits.max_display_name_chars;
    let too_long =
        || ChatError::InvalidName(format!("a display name may have at most {max} characters"));
    let typed = raw.trim();
    // NFKC composes at most four code points into one: anything longer cannot fit, and
    // is refused before it costs a normalization.
    if typed.chars().count() > max.saturating_mul(4) {
        return Err(too_long());
    }
    // Named as typed: NFKC turns some (U+3164) into others (U+1160).
    if let Some(refusal) = typed.chars().find_map(invisible) {
        return Err(refusal);
    }
    let normalized: String = typed.nfkc().collect();
    let name = normalized.trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err(ChatError::InvalidName(
            "a display name cannot be empty".into(),
        ));
    }
    if chars > max {
        return Err(too_long());
    }
    if let Some(refusal) = name
        .chars()
        .find_map(|c| invisible(c).or_else(|| unusual(c)))
    {
        return Err(refusal);
    }
    if name.starts_with('@') || name.starts_with('#') {
        return Err(ChatError::InvalidName(
            "a display name may not start with @ or #".into(),
        ));
    }
    if !name.chars().any(char::is_alphanumeric) {
        return Err(ChatError::InvalidName(
            "a display name needs at least one letter or digit".into(),
        ));
    }
    Ok(name.to_owned())
}

/// The key under which a display name is unique, and by which `@name` finds its user:
/// two names with one key look alike, and only one of them can be held.
///
/// It is the confusable skeleton of Unicode TR39 of the case-folded NFKC form:
/// 1. NFKC, so that compatibility forms (`ａｌｉｃｅ`, `ℌ`, `ﬁ`) are what they look like;
/// 2. lowercase, so that case never tells two names apart (`ALICE`, `Alice`);
/// 3. a letter whose lowercase does not look Latin but whose capital looks like one
///    Latin capital counts as that letter (Cyrillic `м` as `m`, `к` as `k`, `т` as `t`,
///    Greek `η` as `h`): the skeleton alone would tell `Мark` (Cyrillic М) from `Mark`,
///    because after lowercasing it compares `м` with `m`;
/// 4. the TR39 skeleton: each character by its prototype (`а` to `a`, `0` to `O`, `1`
///    and `I` to `l`, `m` to `rn`), invisible characters dropped;
/// 5. lowercase again (prototypes may be capitals), and runs of spaces as one.
///
/// Accents count (`alíce` is not `alice`), as in the skeleton. Lowercasing comes before
/// the skeleton, unlike Ergo's separate skeleton key, because a single key must be
/// case-insensitive; the price is that a capital `I` counts as `i`, not as `l`.
pub fn name_key(name: &str) -> String {
    let lowered = name.nfkc().collect::<String>().to_lowercase();
    let latin: String = lowered
        .chars()
        .map(|c| latin_capital_look(c).unwrap_or(c))
        .collect();
    let mut key = String::with_capacity(latin.len());
    for c in skeleton(&latin).flat_map(char::to_lowercase) {
        if !(c.is_whitespace() && key.ends_with(' ')) {
            key.push(if c.is_whitespace() { ' ' } else { c });
        }
    }
    key
}

/// The lowercase Latin letter whose capital looks like `c`'s capital, when `c` itself
/// does not look like Latin letters (see step 3 of [`name_key`]).
fn latin_capital_look(c: char) -> Option<char> {
    if c.is_ascii() || is_combining_mark(c) {
        return None;
    }
    let mut buf = [0u8; 4];
    let own: String = skeleton(c.encode_utf8(&mut buf))
        .flat_map(char::to_lowercase)
        .collect();
    if own.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let mut upper = c.to_uppercase();
    let (Some(capital), None) = (upper.next(), upper.next()) else {
        return None;
    };
    let mut look = skeleton(capital.encode_utf8(&mut buf)).flat_map(char::to_lowercase);
    match (look.next(), look.next()) {
        (Some(l), None) if l.is_ascii_alphabetic() && capital != c => Some(l),
        _ => None,
    }
}

/// Why `c` may not be in a name because it shows as nothing, or reorders what it
/// touches; `None` when it is visible.
fn invisible(c: char) -> Option<ChatError> {
    let why = if c.is_control() {
        "a control character"
    } else if is_bidi_control(c) {
        "a bidi control, which reorders the text around it"
    } else if matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}') {
        "a Hangul filler, which shows as blank"
    } else if c == '\u{2800}' {
        "a blank braille pattern, which shows as blank"
    } else if is_default_ignorable(c) {
        "an invisible character"
    } else {
        return None;
    };
    Some(refused(c, why))
}

/// Why `c`, already NFKC-normalized, may not be in a name although it can be seen.
fn unusual(c: char) -> Option<ChatError> {
    let why = if c.is_whitespace() && c != ' ' {
        "a line break or a space other than the plain space"
    } else if !is_public_assigned(c) {
        "an unassigned or private-use code point, which has no agreed look"
    } else {
        return None;
    };
    Some(refused(c, why))
}

fn refused(c: char, why: &str) -> ChatError {
    ChatError::InvalidName(format!(
        "a display name may not contain U+{:04X}, {why}",
        u32::from(c)
    ))
}

/// The explicit bidi formatting characters (UAX #9): marks, embeddings, overrides and
/// isolates.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Unicode's `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt, Unicode 18):
/// what a renderer shows as nothing when it has no glyph for it. Stable by Unicode's
/// policy, and the set the TR39 skeleton drops.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str) -> Result<String, ChatError> {
        display_name(raw, &Limits::default())
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(check("  alice ").unwrap(), "alice");
        assert_eq!(check("   ").unwrap_err().code(), "invalid_name");
        assert!(check(&"x".repeat(32)).is_ok());
        assert!(
            check(&"é".repeat(32)).is_ok(),
            "counts characters, not bytes"
        );
        assert!(check(&"x".repeat(33)).is_err());
        assert!(check(&"x".repeat(1000)).is_err());
        assert!(check("al\u{7}ice").is_err());
        assert!(check("@alice").is_err());
        assert!(
            check("＠alice").is_err(),
            "a fullwidth @ is an @ after NFKC"
        );
    }

    #[test]
    fn the_stored_name_is_the_nfkc_form() {
        assert_eq!(check("ａｌｉｃｅ").unwrap(), "alice");
        assert_eq!(check("ℌans").unwrap(), "Hans");
        assert_eq!(check("\u{FB01}ona").unwrap(), "fiona");
        assert_eq!(check("Jose\u{301}").unwrap(), "Jos\u{E9}");
        assert_eq!(
            check(&"e\u{301}".repeat(32)).unwrap().chars().count(),
            32,
            "the limit counts characters after composition"
        );
        assert_eq!(check("\u{A0}bob\u{3000}").unwrap(), "bob");
    }

    #[test]
    fn invisible_and_reordering_characters_are_refused_by_name() {
        for c in [
            '\u{2060}',
            '\u{00AD}',
            '\u{034F}',
            '\u{180E}',
            '\u{061C}',
            '\u{200B}',
            '\u{200D}',
            '\u{200E}',
            '\u{202E}',
            '\u{2066}',
            '\u{FEFF}',
            '\u{FE0F}',
            '\u{E0041}',
            '\u{1D173}',
            '\u{115F}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{2800}',
        ] {
            for name in [
                format!("al{c}ice"),
                format!("alice{c}"),
                format!("{c}alice"),
            ] {
                let err = check(&name).unwrap_err();
                assert_eq!(err.code(), "invalid_name", "{name:?}");
                let hex = format!("U+{:04X}", u32::from(c));
                assert!(err.to_string().contains(&hex), "{err} names {hex}");
            }
        }
        for blank in [
            "\u{3164}",
            "\u{3164}\u{3164}",
            "\u{2800}",
            "\u{2800}\u{2800}\u{2800}",
        ] {
            assert_eq!(
                check(blank).unwrap_err().code(),
                "invalid_name",
                "{blank:?}"
            );
        }
    }

    #[test]
    fn names_need_a_letter_or_digit_and_ordinary_characters() {
        for bad in ["!!!", "...", "-_-", "\u{1F600}", "\u{301}\u{301}"] {
            let err = check(bad).unwrap_err();
            assert!(
                err.to_string().contains("letter or digit"),
                "{bad:?}: {err}"
            );
        }
        for bad in [
            "al\u{2028}ice",
            "al\u{1680}ice",
            "al\u{E000}ice",
            "al\u{378}ice",
            "a\u{FDD0}",
        ] {
            assert_eq!(check(bad).unwrap_err().code(), "invalid_name", "{bad:?}");
        }
        for good in [
            "Даша",
            "山田",
            "محمد",
            "अनु",
            "O'Brien",
            "Jean-Luc Picard",
            "x1",
            "7",
        ] {
            assert_eq!(check(good).unwrap(), good);
        }
    }

    fn same(a: &str, b: &str) -> bool {
        name_key(a) == name_key(b)
    }

    #[test]
    fn names_that_look_alike_share_a_key() {
        for twin in [
            "ALICE",
            "Alice",
            "\u{430}lice",   // Cyrillic а
            "\u{410}lice",   // Cyrillic А
            "ａｌｉｃｅ",    // fullwidth
            "al\u{200B}ice", // an invisible character is no difference
            "al\u{456}ce",   // Cyrillic і
        ] {
            assert!(same("alice", twin), "{twin:?}");
        }
        assert!(same("Mark", "\u{41C}ark"), "Cyrillic М");
        assert!(
            same("KATE", "\u{41A}\u{410}\u{422}\u{415}"),
            "Cyrillic КАТЕ"
        );
        assert!(same("Hans", "\u{397}ans"), "Greek Η");
        assert!(same("bob smith", "bob  smith"), "spaces collapse");
        assert!(same("rnary", "mary"));
        assert!(same("al0ne", "alone"));
        assert!(same("al1ce", "allce"));
    }

    #[test]
    fn names_that_look_different_keep_their_own_key() {
        assert!(!same("alice", "alíce"), "accents count");
        assert!(!same("Jose", "José"));
        assert!(
            same("Jos\u{E9}", "Jose\u{301}"),
            "however the accent is typed"
        );
        assert!(!same("alice", "al1ce"), "1 looks like l, not i");
        assert!(!same("Ian", "lan"), "case folds first: I counts as i");
        assert!(!same("alice", "bob"));
        assert!(!same("Даша", "Dawa"));
    }

    #[test]
    fn case_never_tells_names_apart() {
        for (a, b) in [
            ("МАША", "маша"),
            ("ΟΔΥΣΣΕΥΣ", "οδυσσευς"),
            ("ДАША", "Даша"),
            ("ΗΡΑ", "ηρα"),
            ("ÉLODIE", "élodie"),
        ] {
            assert!(same(a, b), "{a:?} {b:?}");
        }
    }

    #[test]
    fn the_default_ignorable_table_is_what_the_skeleton_drops() {
        // unicode-security derives its skeleton from the same Unicode data: a code point
        // whose skeleton is empty is exactly a Default_Ignorable_Code_Point. Planes 0 to 3
        // and 14 hold every such code point.
        let mut buf = [0u8; 4];
        for c in ('\0'..='\u{3FFFF}').chain('\u{E0000}'..='\u{EFFFF}') {
            let dropped = skeleton(c.encode_utf8(&mut buf)).next().is_none();
            assert_eq!(is_default_ignorable(c), dropped, "U+{:04X}", u32::from(c));
        }
    }
}
