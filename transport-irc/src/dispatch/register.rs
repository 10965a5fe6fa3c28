//! Registration: `CAP` negotiation, `NICK`, `USER`, `PASS`, and the welcome burst
//! (001 to 005, the MOTD or 422, and a new user's resume token).
//!
//! A client registers once it has sent NICK and USER and, if it started a negotiation
//! with `CAP LS` or `CAP REQ`, `CAP END`. `PASS` with a resume token (the one the web page,
//! the line port or an earlier IRC session gave) comes back as that user, whatever NICK
//! said; without it the nick's display name is a new user. A refused name or token leaves
//! the connection waiting for another NICK or PASS.

use chat_core::{ChatError, Login};
use irc_proto::{CapSubCommand, Command, Message};

use super::{Dispatcher, Reply};
use crate::caps::Caps;
use crate::error::IrcError;
use crate::nick;
use crate::reply::num::*;

/// What the client has said about itself before registration.
#[derive(Debug, Default)]
pub(super) struct Registration {
    nick: Option<String>,
    user: bool,
    pass: Option<String>,
    /// Between `CAP LS`/`REQ` and `CAP END`.
    negotiating: bool,
}

impl Dispatcher {
    /// `CAP LS|LIST|REQ|END`, before or after registration.
    pub(super) async fn cap(
        &mut self,
        sub: CapSubCommand,
        arg: Option<String>,
        extra: Option<String>,
    ) -> Vec<Message> {
        let cap = |this: &Self, words: Vec<String>| {
            let mut args = vec![this.nick.clone()];
            args.extend(words);
            this.server.message(Command::Raw("CAP".into(), args))
        };
        let registered = self.session.is_some();
        match sub {
            CapSubCommand::LS => {
                self.reg.negotiating = !registered;
                vec![cap(self, vec!["LS".into(), Caps::offered()])]
            }
            CapSubCommand::LIST => vec![cap(self, vec!["LIST".into(), self.caps.list()])],
            CapSubCommand::REQ => {
                self.reg.negotiating = !registered;
                let list = extra.or(arg).unwrap_or_default();
                let verdict = if self.caps.request(&list) {
                    "ACK"
                } else {
                    "NAK"
                };
                self.refresh_view();
                vec![cap(self, vec![verdict.into(), list])]
            }
            CapSubCommand::END => {
                self.reg.negotiating = false;
                self.try_register().await.unwrap_or_else(|lines| lines)
            }
            _ => {
                let e = IrcError::InvalidParams(format!(
                    "CAP {} is not a client command",
                    sub.to_str()
                ));
                vec![self.num(410, &[sub.to_str(), &e.text()])]
            }
        }
    }

    /// Every command before registration: NICK, USER and PASS register; anything else is
    /// refused with 451 (never taken as a name or posted).
    pub(super) async fn before_registration(&mut self, command: Command) -> Reply {
        match command {
            Command::NICK(nick) => {
                if let Err(why) = nick::decode(&nick) {
                    return self.answer_error("NICK", &nick, IrcError::ErroneousNickname(why));
                }
                self.reg.nick = Some(nick);
            }
            Command::USER(..) => self.reg.user = true,
            Command::PASS(pass) => self.reg.pass = Some(pass),
            Command::Raw(verb, params)
                if verb.eq_ignore_ascii_case("NICK") && params.is_empty() =>
            {
                return self.answer_error("NICK", "", IrcError::NoNicknameGiven)
            }
            Command::Raw(verb, _)
                if ["NICK", "USER", "PASS"]
                    .iter()
                    .any(|v| verb.eq_ignore_ascii_case(v)) =>
            {
                let verb = verb.to_ascii_uppercase();
                return self.answer_error(&verb.clone(), "", IrcError::NeedMoreParams(verb));
            }
            Command::Raw(verb, _) if verb.eq_ignore_ascii_case("CHATHISTORY") => {
                return self.answer_error("CHATHISTORY", "", IrcError::NotRegistered)
            }
            other => {
                let verb = super::verb_of(&other);
                return self.answer_error(&verb, "", IrcError::NotRegistered);
            }
        }
        match self.try_register().await {
            Ok(lines) => Reply::Answer(lines),
            Err(lines) => Reply::Quit(lines),
        }
    }

    /// Registers when NICK, USER (and CAP END) are in: `Ok` with the welcome burst, or
    /// with the refusal of a name or token (the client may try again); `Err` with the
    /// lines to write before closing (the server is full or stopping).
    async fn try_register(&mut self) -> Result<Vec<Message>, Vec<Message>> {
        if self.session.is_some() || self.reg.negotiating || !self.reg.user {
            return Ok(Vec::new());
        }
        let Some(given) = self.reg.nick.clone() else {
            return Ok(Vec::new());
        };
        let login = match &self.reg.pass {
            Some(token) => Login::Resume(token.clone()),
            None => match nick::decode(&given) {
                Ok(name) => Login::Name(name),
                Err(why) => {
                    return Ok(vec![self.refusal(
                        "NICK",
                        &given,
                        &IrcError::ErroneousNickname(why),
                    )])
                }
            },
        };
        let session = match self.engine.connect_from(login, self.peer).await {
            Ok(session) => session,
            Err(
                e
                @ (ChatError::ServerFull(_) | ChatError::ShuttingDown | ChatError::Unavailable(_)),
            ) => {
                return Err(vec![self.server.closing(e.code(), &e.to_string())]);
            }
            Err(e) => {
                if matches!(e, ChatError::InvalidToken) {
                    self.reg.pass = None;
                }
                let mut e = IrcError::Chat(e);
                if let IrcError::Chat(ChatError::NameTaken(_)) = e {
                    // Say how to get the name back, in the text after the code.
                    e = IrcError::Chat(ChatError::NameTaken(format!(
                        "{given}; if it is yours, connect with its resume token as the server password (PASS)"
                    )));
                }
                return Ok(vec![self.refusal("NICK", &given, &e)]);
            }
        };
        let user = session.user().clone();
        tracing::Span::current().record("session_id", session.id().0);
        tracing::info!(user = %user.name, new_user = session.is_new_user(), "registered");
        self.nick = nick::encode(&user.name);
        let token = session
            .is_new_user()
            .then(|| session.token().expose().to_owned());
        self.session = Some(session);
        self.refresh_view();
        let mut lines = self.welcome();
        if let Some(token) = token {
            lines.push(self.server.notice(
                &self.nick,
                &format!(
                    "your resume token: {token} (keep it secret: connect with PASS {token} as the server password to come back as {})",
                    user.name
                ),
            ));
        }
        Ok(lines)
    }

    /// 001 to 005 and the MOTD.
    fn welcome(&self) -> Vec<Message> {
        let limits = self.engine.limits();
        let server = self.server.name.as_str();
        let version = concat!("flack-", env!("CARGO_PKG_VERSION"));
        let mut lines = vec![
            self.num(
                RPL_WELCOME,
                &[&format!(
                    "Welcome to {}, {}",
                    self.config.network_name, self.nick
                )],
            ),
            self.num(
                RPL_YOURHOST,
                &[&format!("Your host is {server}, running version {version}")],
            ),
            self.num(
                RPL_CREATED,
                &["This server speaks IRC for the Flack chat engine"],
            ),
            self.num(RPL_MYINFO, &[server, version, "i", "nt"]),
        ];
        let tokens = [
            "CASEMAPPING=ascii".to_owned(),
            "CHANTYPES=#".to_owned(),
            format!("CHANNELLEN={}", limits.max_channel_name_chars + 1),
            format!("NICKLEN={}", limits.max_display_name_chars * 3),
            "UTF8ONLY".to_owned(),
            format!("NETWORK={}", self.config.network_name),
            "PREFIX=(o)@".to_owned(),
            "CHANMODES=,,,nt".to_owned(),
            "TARGMAX=PRIVMSG:1,NOTICE:1,TAGMSG:1".to_owned(),
            format!("CHATHISTORY={}", limits.history),
            "MSGREFTYPES=msgid,timestamp".to_owned(),
            "LINELEN=512".to_owned(),
        ];
        for chunk in tokens.chunks(12) {
            let mut params: Vec<&str> = chunk.iter().map(String::as_str).collect();
            params.push("are supported by this server");
            lines.push(self.num(RPL_ISUPPORT, &params));
        }
        lines.extend(self.motd());
        lines
    }

    /// The MOTD numerics, or 422 when there is none.
    pub(super) fn motd(&self) -> Vec<Message> {
        if self.config.motd.is_empty() {
            return vec![self.num(ERR_NOMOTD, &["MOTD File is missing"])];
        }
        let mut lines = vec![self.num(
            RPL_MOTDSTART,
            &[&format!("- {} Message of the day -", self.server.name)],
        )];
        for line in &self.config.motd {
            lines.push(self.num(RPL_MOTD, &[&format!("- {line}")]));
        }
        lines.push(self.num(RPL_ENDOFMOTD, &["End of /MOTD command."]));
        lines
    }
}
