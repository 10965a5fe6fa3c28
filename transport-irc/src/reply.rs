//! Replies from the server itself: numerics, server notices, `FAIL`, `ERROR`, and which
//! numeric carries which refusal. Every message is an `irc_proto::Message`, written by
//! irc-proto (it puts the `:` before a trailing parameter that needs one).
//!
//! Called by `dispatch/` and `connection.rs`. It must not put a line break into a
//! parameter: every text that may come from a client goes through [`one_line`].

use chat_core::ChatError;
use irc_proto::{Command, Message, Prefix};

use crate::error::IrcError;

/// The numerics this server sends, by their modern names.
#[allow(missing_docs)]
pub mod num {
    pub const RPL_WELCOME: u16 = 1;
    pub const RPL_YOURHOST: u16 = 2;
    pub const RPL_CREATED: u16 = 3;
    pub const RPL_MYINFO: u16 = 4;
    pub const RPL_ISUPPORT: u16 = 5;
    pub const RPL_UMODEIS: u16 = 221;
    pub const RPL_AWAY: u16 = 301;
    pub const RPL_USERHOST: u16 = 302;
    pub const RPL_ISON: u16 = 303;
    pub const RPL_UNAWAY: u16 = 305;
    pub const RPL_NOWAWAY: u16 = 306;
    pub const RPL_WHOISUSER: u16 = 311;
    pub const RPL_WHOISSERVER: u16 = 312;
    pub const RPL_ENDOFWHO: u16 = 315;
    pub const RPL_ENDOFWHOIS: u16 = 318;
    pub const RPL_WHOISCHANNELS: u16 = 319;
    pub const RPL_LISTSTART: u16 = 321;
    pub const RPL_LIST: u16 = 322;
    pub const RPL_LISTEND: u16 = 323;
    pub const RPL_CHANNELMODEIS: u16 = 324;
    pub const RPL_NOTOPIC: u16 = 331;
    pub const RPL_WHOREPLY: u16 = 352;
    pub const RPL_NAMREPLY: u16 = 353;
    pub const RPL_ENDOFNAMES: u16 = 366;
    pub const RPL_ENDOFBANLIST: u16 = 368;
    pub const RPL_MOTD: u16 = 372;
    pub const RPL_MOTDSTART: u16 = 375;
    pub const RPL_ENDOFMOTD: u16 = 376;
    pub const ERR_UNKNOWNERROR: u16 = 400;
    pub const ERR_NOSUCHNICK: u16 = 401;
    pub const ERR_NOSUCHCHANNEL: u16 = 403;
    pub const ERR_CANNOTSENDTOCHAN: u16 = 404;
    pub const ERR_TOOMANYCHANNELS: u16 = 405;
    pub const ERR_TOOMANYTARGETS: u16 = 407;
    pub const ERR_NORECIPIENT: u16 = 411;
    pub const ERR_NOTEXTTOSEND: u16 = 412;
    pub const ERR_INPUTTOOLONG: u16 = 417;
    pub const ERR_UNKNOWNCOMMAND: u16 = 421;
    pub const ERR_NOMOTD: u16 = 422;
    pub const ERR_NONICKNAMEGIVEN: u16 = 431;
    pub const ERR_ERRONEUSNICKNAME: u16 = 432;
    pub const ERR_NICKNAMEINUSE: u16 = 433;
    pub const ERR_NOTONCHANNEL: u16 = 442;
    pub const ERR_NOTREGISTERED: u16 = 451;
    pub const ERR_NEEDMOREPARAMS: u16 = 461;
    pub const ERR_ALREADYREGISTERED: u16 = 462;
    pub const ERR_PASSWDMISMATCH: u16 = 464;
    pub const ERR_BADCHANNAME: u16 = 479;
    pub const ERR_CHANOPRIVSNEEDED: u16 = 482;
    pub const ERR_UMODEUNKNOWNFLAG: u16 = 501;
    pub const ERR_USERSDONTMATCH: u16 = 502;
}

/// Replaces what would end or break a line (CR, LF, NUL) with a space.
pub fn one_line(text: &str) -> String {
    text.replace(['\r', '\n', '\0'], " ")
}

/// A middle parameter: one word, never empty, never starting with `:` (anything else
/// would change how the line reads). What a client sent may be echoed in one (the
/// command or target a numeric is about), so spaces and controls become `_`.
pub fn word(text: &str) -> String {
    let mut word: String = text
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if word.is_empty() {
        word.push('*');
    }
    if word.starts_with(':') {
        word.replace_range(..1, "_");
    }
    word
}

/// The server as a message source.
#[derive(Debug, Clone)]
pub struct Server {
    /// Its name: the prefix of its messages.
    pub name: String,
}

impl Server {
    /// A message from the server.
    pub fn message(&self, command: Command) -> Message {
        Message {
            tags: None,
            prefix: Some(Prefix::ServerName(self.name.clone())),
            command,
        }
    }

    /// `:server CODE nick params...`
    pub fn numeric(&self, code: u16, nick: &str, params: &[&str]) -> Message {
        let mut args = Vec::with_capacity(params.len() + 1);
        args.push(word(nick));
        if let Some((last, middle)) = params.split_last() {
            args.extend(middle.iter().map(|p| word(p)));
            args.push(one_line(last));
        }
        self.message(Command::Raw(format!("{code:03}"), args))
    }

    /// `:server NOTICE target :text`
    pub fn notice(&self, target: &str, text: &str) -> Message {
        self.message(Command::NOTICE(target.to_owned(), one_line(text)))
    }

    /// `ERROR :Closing link: code: why`, the last line before the server closes.
    pub fn closing(&self, code: &str, why: &str) -> Message {
        Message::from(Command::ERROR(one_line(&format!(
            "Closing link: {code}: {why}"
        ))))
    }

    /// `:server FAIL VERB CODE context... :code: text`, an IRCv3 standard reply.
    pub fn fail(&self, verb: &str, fail_code: &str, context: &[&str], e: &IrcError) -> Message {
        let mut args: Vec<String> = vec![word(verb), fail_code.to_owned()];
        args.extend(context.iter().map(|c| word(c)));
        args.push(one_line(&e.text()));
        self.message(Command::Raw("FAIL".into(), args))
    }

    /// The numeric that tells `nick` why `verb` (about `subject`: the channel or nick it
    /// named, if any) was refused, with the stable code first in its text.
    pub fn refusal(&self, nick: &str, verb: &str, subject: &str, e: &IrcError) -> Message {
        use num::*;
        let text = e.text();
        let subject = if subject.is_empty() { "*" } else { subject };
        let (code, params): (u16, Vec<&str>) = match e {
            IrcError::Chat(chat) => match chat {
                ChatError::NoSuchChannel(_) => (ERR_NOSUCHCHANNEL, vec![subject]),
                ChatError::NoSuchUser(_) => (ERR_NOSUCHNICK, vec![subject]),
                ChatError::NotJoined(_) if verb == "PRIVMSG" || verb == "NOTICE" => {
                    (ERR_CANNOTSENDTOCHAN, vec![subject])
                }
                ChatError::NotJoined(_) => (ERR_NOTONCHANNEL, vec![subject]),
                ChatError::NameTaken(_) => (ERR_NICKNAMEINUSE, vec![subject]),
                ChatError::InvalidName(_) => (ERR_ERRONEUSNICKNAME, vec![subject]),
                ChatError::InvalidToken => (ERR_PASSWDMISMATCH, vec![]),
                ChatError::InvalidChannelName(_) => (ERR_BADCHANNAME, vec![subject]),
                ChatError::TooManyChannels(_) => (ERR_TOOMANYCHANNELS, vec![subject]),
                ChatError::Empty => (ERR_NOTEXTTOSEND, vec![]),
                _ => (ERR_UNKNOWNERROR, vec![verb]),
            },
            IrcError::UnknownCommand(v) => (ERR_UNKNOWNCOMMAND, vec![v.as_str()]),
            IrcError::NeedMoreParams(v) => (ERR_NEEDMOREPARAMS, vec![v.as_str()]),
            IrcError::NotRegistered => (ERR_NOTREGISTERED, vec![]),
            IrcError::AlreadyRegistered => (ERR_ALREADYREGISTERED, vec![]),
            IrcError::NoNicknameGiven => (ERR_NONICKNAMEGIVEN, vec![]),
            IrcError::ErroneousNickname(_) => (ERR_ERRONEUSNICKNAME, vec![subject]),
            IrcError::LineTooLong => (ERR_INPUTTOOLONG, vec![]),
            IrcError::NoRecipient(_) => (ERR_NORECIPIENT, vec![]),
            IrcError::TooManyTargets => (ERR_TOOMANYTARGETS, vec![subject]),
            IrcError::NoSuchNick(_) => (ERR_NOSUCHNICK, vec![subject]),
            IrcError::ModesUnsupported if subject.starts_with('#') => {
                (ERR_CHANOPRIVSNEEDED, vec![subject])
            }
            IrcError::ModesUnsupported => (ERR_UMODEUNKNOWNFLAG, vec![]),
            IrcError::UsersDontMatch => (ERR_USERSDONTMATCH, vec![]),
            IrcError::TopicUnsupported => (ERR_CHANOPRIVSNEEDED, vec![subject]),
            _ => (ERR_UNKNOWNERROR, vec![verb]),
        };
        let mut all = params;
        all.push(&text);
        self.numeric(code, nick, &all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(m: &Message) -> String {
        m.to_string()
    }

    #[test]
    fn refusals_carry_a_numeric_and_the_stable_code() {
        let s = Server {
            name: "flack.irc".into(),
        };
        let e = IrcError::Chat(ChatError::NoSuchChannel("nowhere".into()));
        assert_eq!(
            line(&s.refusal("alice", "JOIN", "#nowhere", &e)),
            ":flack.irc 403 alice #nowhere :no_such_channel: no channel named \"nowhere\"\r\n"
        );
        let e = IrcError::UnknownCommand("FROB".into());
        assert_eq!(
            line(&s.refusal("*", "FROB", "", &e)),
            ":flack.irc 421 * FROB :unknown_command: unknown command FROB\r\n"
        );
        let e = IrcError::Chat(ChatError::NotJoined("#a".into()));
        assert!(line(&s.refusal("a", "PRIVMSG", "#a", &e)).contains(" 404 a #a :not_joined: "));
        let e = IrcError::Chat(ChatError::RateLimited {
            limit: "message_rate",
            retry_after: std::time::Duration::from_millis(200),
        });
        assert!(
            line(&s.refusal("a", "PRIVMSG", "#a", &e)).contains(" 400 a PRIVMSG :rate_limited: ")
        );
        let e = IrcError::UnknownCommand("\0PRIVMSG x".into());
        assert_eq!(
            line(&s.refusal("a", "\0PRIVMSG x", "", &e)),
            ":flack.irc 421 a _PRIVMSG_x :unknown_command: unknown command  PRIVMSG x\r\n"
        );
        assert_eq!(word(":x"), "_x");
        assert_eq!(word(""), "*");
        assert_eq!(
            line(&s.closing("ping_timeout", "no\r\nQUIT")),
            "ERROR :Closing link: ping_timeout: no  QUIT\r\n"
        );
    }
}
