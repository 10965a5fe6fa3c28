//! `Command`: one client line, parsed. Owns the command syntax of the line protocol
//! (`/join NAME`, `/msg USER TEXT`, ...) and nothing else: it does not know whether the
//! client is logged in or which channel is current (that is `dispatch.rs`), and it never
//! touches the engine.
//!
//! Called by `connection.rs` for every [`Input::Line`](crate::codec::Input::Line); the
//! command goes on to `dispatch.rs`.

use crate::error::TcpError;

/// What a client line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// An empty or blank line: nothing to do (it still counts as activity).
    Nothing,
    /// A plain line: before login, the display name; after, a message to the current room.
    /// A line starting with `//` is plain text starting with `/`.
    Say(String),
    /// `/help`.
    Help,
    /// `/nick NAME`: pick a display name (before login only).
    Nick(String),
    /// `/list`: the channels.
    List,
    /// `/create NAME`: create a channel.
    Create(String),
    /// `/join NAME` or `/join @USER`: show the history, follow, make it current.
    Join(String),
    /// `/part [NAME]`: leave the named or the current room.
    Part(Option<String>),
    /// `/who [NAME]` (or `/members [NAME]`): the first page of the members of the named
    /// or the current room.
    Who(Option<String>),
    /// `/more`: the next page of the last `/who`.
    More,
    /// `/msg USER TEXT`: a private message.
    Msg {
        /// The user, with or without `@`.
        to: String,
        /// The text.
        text: String,
    },
    /// `/delete ID` or `/delete ROOM ID`: delete one of your messages.
    Delete {
        /// The room, or the current one.
        room: Option<String>,
        /// The message id.
        id: u64,
    },
    /// `/edit ID TEXT` or `/edit ROOM ID TEXT`: replace the text of one of your messages.
    Edit {
        /// The room, or the current one.
        room: Option<String>,
        /// The message id.
        id: u64,
        /// The new text.
        text: String,
    },
    /// `/react ID EMOJI` or `/react ROOM ID EMOJI`: add or take back a reaction.
    React {
        /// The room, or the current one.
        room: Option<String>,
        /// The message id.
        id: u64,
        /// The emoji or its short name.
        emoji: String,
    },
    /// `/resume TOKEN`: log in as an earlier user.
    Resume(String),
    /// `/quit`.
    Quit,
    /// `/logout`: log out everywhere (the token no longer resumes, the name is free).
    Logout,
}

/// Parses one line (already stripped of its terminator).
pub fn parse(line: &str) -> Result<Command, TcpError> {
    if line.trim().is_empty() {
        return Ok(Command::Nothing);
    }
    if line.starts_with("//") {
        return Ok(Command::Say(line[1..].to_owned()));
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Say(line.to_owned()));
    };
    let (name, args) = match rest.split_once(char::is_whitespace) {
        Some((name, args)) => (name, args.trim()),
        None => (rest, ""),
    };
    let name = name.to_ascii_lowercase();
    let arg = || (!args.is_empty()).then(|| args.to_owned());
    let required = |usage: &'static str| arg().ok_or(TcpError::Usage(usage));
    Ok(match name.as_str() {
        "help" | "h" | "?" => Command::Help,
        "nick" => Command::Nick(required("/nick NAME")?),
        "list" => Command::List,
        "create" => Command::Create(one_word(required("/create NAME")?, "/create NAME")?),
        "join" => Command::Join(one_word(required("/join NAME")?, "/join NAME")?),
        "part" | "leave" => Command::Part(arg().map(|a| one_word(a, "/part [NAME]")).transpose()?),
        "who" | "members" => Command::Who(arg().map(|a| one_word(a, "/who [NAME]")).transpose()?),
        "more" => Command::More,
        "msg" => {
            let usage = "/msg USER TEXT";
            let all = required(usage)?;
            let (to, text) = all
                .split_once(char::is_whitespace)
                .ok_or(TcpError::Usage(usage))?;
            Command::Msg {
                to: to.to_owned(),
                text: text.trim_start().to_owned(),
            }
        }
        "delete" => {
            let usage = "/delete ID or /delete ROOM ID";
            let all = required(usage)?;
            let words: Vec<&str> = all.split_whitespace().collect();
            let (room, id) = match words.as_slice() {
                [id] => (None, *id),
                [room, id] => (Some((*room).to_owned()), *id),
                _ => return Err(TcpError::Usage(usage)),
            };
            let id = id.parse().map_err(|_| TcpError::Usage(usage))?;
            Command::Delete { room, id }
        }
        "edit" => {
            let usage = "/edit ID TEXT or /edit ROOM ID TEXT";
            let (room, id, text) = room_id_rest(&required(usage)?).ok_or(TcpError::Usage(usage))?;
            Command::Edit { room, id, text }
        }
        "react" => {
            let usage = "/react ID EMOJI or /react ROOM ID EMOJI";
            let (room, id, emoji) =
                room_id_rest(&required(usage)?).ok_or(TcpError::Usage(usage))?;
            one_word(emoji.clone(), usage)?;
            Command::React { room, id, emoji }
        }
        "resume" => Command::Resume(one_word(required("/resume TOKEN")?, "/resume TOKEN")?),
        "quit" | "exit" => Command::Quit,
        "logout" => Command::Logout,
        _ => return Err(TcpError::UnknownCommand(name)),
    })
}

/// Whether a line is an IRC client's registration command (`CAP LS 302`, `NICK dave`,
/// `USER root 0 * :root`, `PASS secret`): an IRC client connected to the line port. IRC
/// clients send these in capitals with a parameter; a person typing a name such as
/// `Nick Jones` is not one of them.
pub fn is_irc_registration(line: &str) -> bool {
    ["CAP ", "NICK ", "USER ", "PASS "]
        .iter()
        .any(|verb| line.starts_with(verb) && line.len() > verb.len())
}

/// `ID REST` or `ROOM ID REST`: a first word that is a number is the id (in the current
/// room; a channel named with digits only is written `#42`). `None` without a rest.
fn room_id_rest(all: &str) -> Option<(Option<String>, u64, String)> {
    let (first, rest) = all.split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    if let Ok(id) = first.parse() {
        return Some((None, id, rest.to_owned()));
    }
    let (id, rest) = rest.split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    (!rest.is_empty()).then_some(())?;
    Some((Some(first.to_owned()), id.parse().ok()?, rest.to_owned()))
}

fn one_word(arg: String, usage: &'static str) -> Result<String, TcpError> {
    if arg.contains(char::is_whitespace) {
        Err(TcpError::Usage(usage))
    } else {
        Ok(arg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_and_escapes() {
        assert_eq!(parse("hello").unwrap(), Command::Say("hello".into()));
        assert_eq!(parse("  ").unwrap(), Command::Nothing);
        assert_eq!(parse("//shrug").unwrap(), Command::Say("/shrug".into()));
    }

    #[test]
    fn commands_with_arguments() {
        assert_eq!(
            parse("/JOIN #general").unwrap(),
            Command::Join("#general".into())
        );
        assert_eq!(parse("/part").unwrap(), Command::Part(None));
        assert_eq!(
            parse("/who rust").unwrap(),
            Command::Who(Some("rust".into()))
        );
        assert_eq!(
            parse("/members #rust").unwrap(),
            Command::Who(Some("#rust".into()))
        );
        assert_eq!(parse("/more").unwrap(), Command::More);
        assert_eq!(
            parse("/msg @bob  hi there ").unwrap(),
            Command::Msg {
                to: "@bob".into(),
                text: "hi there".into()
            }
        );
        assert_eq!(
            parse("/delete 42").unwrap(),
            Command::Delete { room: None, id: 42 }
        );
        assert_eq!(
            parse("/delete @bob 7").unwrap(),
            Command::Delete {
                room: Some("@bob".into()),
                id: 7
            }
        );
        assert_eq!(
            parse("/nick Ann Lee").unwrap(),
            Command::Nick("Ann Lee".into())
        );
        assert_eq!(parse("/quit").unwrap(), Command::Quit);
        assert_eq!(parse("/logout").unwrap(), Command::Logout);
    }

    #[test]
    fn irc_registration_lines_are_recognised() {
        for line in [
            "CAP LS 302",
            "NICK dave",
            "USER root 0 * :root",
            "PASS hunter2",
        ] {
            assert!(is_irc_registration(line), "{line}");
        }
        for line in ["Nick Jones", "NICK", "nick dave", "Capitan", "USER"] {
            assert!(!is_irc_registration(line), "{line}");
        }
    }

    #[test]
    fn errors_have_codes() {
        assert_eq!(parse("/frob").unwrap_err().code(), "unknown_command");
        assert_eq!(parse("/join").unwrap_err().code(), "usage");
        assert_eq!(parse("/join a b").unwrap_err().code(), "usage");
        assert_eq!(parse("/msg bob").unwrap_err().code(), "usage");
        assert_eq!(parse("/delete x").unwrap_err().code(), "usage");
        assert_eq!(
            parse("/edit 42 hello  there").unwrap(),
            Command::Edit {
                room: None,
                id: 42,
                text: "hello  there".into()
            }
        );
        assert_eq!(
            parse("/edit @bob 7 fixed").unwrap(),
            Command::Edit {
                room: Some("@bob".into()),
                id: 7,
                text: "fixed".into()
            }
        );
        assert_eq!(
            parse("/react #42 3 :+1:").unwrap(),
            Command::React {
                room: Some("#42".into()),
                id: 3,
                emoji: ":+1:".into()
            }
        );
        for bad in [
            "/edit",
            "/edit 42",
            "/edit general x hi",
            "/react 3",
            "/react 3 a b",
        ] {
            assert_eq!(parse(bad).unwrap_err().code(), "usage", "{bad}");
        }
    }
}
