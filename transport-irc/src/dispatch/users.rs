//! Commands about users: `WHO`, `WHOIS`, `AWAY`, `USERHOST`, `ISON` and user `MODE`.
//!
//! The engine knows users through the rooms they are members of, so these answer from
//! the members of the channels this connection joined: a user who shares none of them is
//! not found (401). `AWAY` is acknowledged and shown in the client's own WHO and WHOIS;
//! the engine has no away state to share.

use chat_core::{validate, Member, UserRef};
use irc_proto::{Message, Mode, UserMode};

use super::Dispatcher;
use crate::error::IrcError;
use crate::nick;
use crate::render::USER_HOST;
use crate::reply::num::*;

impl Dispatcher {
    /// The members of the joined channels named `nick`, with the channels they are in.
    async fn find(&self, nick: &str) -> Option<(Member, Vec<String>)> {
        let session = self.session.as_ref()?;
        let key = validate::name_key(&nick::decode(nick).ok()?);
        let mut found: Option<(Member, Vec<String>)> = None;
        for channel in &self.channels {
            let Ok(members) = super::all_members(session, channel.as_str()).await else {
                continue;
            };
            if let Some(m) = members
                .into_iter()
                .find(|m| validate::name_key(&m.user.name) == key)
            {
                match &mut found {
                    Some((_, channels)) => channels.push(channel.clone()),
                    None => found = Some((m, vec![channel.clone()])),
                }
            }
        }
        found
    }

    /// One 352 line.
    fn who_line(&self, channel: &str, user: &UserRef, here: bool) -> Message {
        let flags = if here { "H" } else { "G" };
        self.num(
            RPL_WHOREPLY,
            &[
                channel,
                &format!("u{}", user.id.0),
                USER_HOST,
                &self.server.name,
                &nick::encode(&user.name),
                flags,
                &format!("0 {}", user.name),
            ],
        )
    }

    /// `WHO #chan` (its online members) or `WHO nick`, then 315.
    pub(super) async fn who(&mut self, mask: Option<&str>) -> Vec<Message> {
        let mask = mask.unwrap_or("*");
        let mut lines = Vec::new();
        let Some(session) = &self.session else {
            return lines;
        };
        let me = session.user().id;
        if mask.starts_with('#') {
            let shown = self.joined(mask).unwrap_or(mask).to_owned();
            if let Ok(members) = super::all_members(session, mask).await {
                for m in members.iter().filter(|m| m.online) {
                    let here = m.user.id != me || self.away.is_none();
                    lines.push(self.who_line(&shown, &m.user, here));
                }
            }
        } else if let Some((m, channels)) = self.find(mask).await {
            let here = m.user.id != me || self.away.is_none();
            lines.push(self.who_line(&channels[0], &m.user, here));
        }
        lines.push(self.num(RPL_ENDOFWHO, &[mask, "End of /WHO list."]));
        lines
    }

    /// `WHOIS nick`: 311, 319, 312 (301 when it is the client, away), 318; 401 when the
    /// nick is in none of the client's channels.
    pub(super) async fn whois(&mut self, nicks: &str) -> Vec<Message> {
        let nick = nicks.split(',').next().unwrap_or_default().to_owned();
        let mut lines = Vec::new();
        match self.find(&nick).await {
            Some((m, channels)) => {
                let shown = nick::encode(&m.user.name);
                let ident = format!("u{}", m.user.id.0);
                lines.push(self.num(
                    RPL_WHOISUSER,
                    &[&shown, &ident, USER_HOST, "*", &m.user.name],
                ));
                lines.push(self.num(RPL_WHOISCHANNELS, &[&shown, &channels.join(" ")]));
                lines.push(self.num(RPL_WHOISSERVER, &[&shown, &self.server.name, "Flack chat"]));
                if shown == self.nick {
                    if let Some(away) = &self.away {
                        lines.push(self.num(RPL_AWAY, &[&shown, away]));
                    }
                }
            }
            None => lines.push(self.refusal("WHOIS", &nick, &IrcError::NoSuchNick(nick.clone()))),
        }
        lines.push(self.num(RPL_ENDOFWHOIS, &[&nick, "End of /WHOIS list."]));
        lines
    }

    /// `AWAY [:why]`: 306 or 305.
    pub(super) fn set_away(&mut self, why: Option<String>) -> Vec<Message> {
        self.away = why.filter(|w| !w.is_empty());
        match self.away {
            Some(_) => vec![self.num(RPL_NOWAWAY, &["You have been marked as being away"])],
            None => vec![self.num(RPL_UNAWAY, &["You are no longer marked as being away"])],
        }
    }

    /// `USERHOST nick...`: the client itself (others are not looked up).
    pub(super) fn userhost(&self, nicks: &[String]) -> Vec<Message> {
        let Some(session) = &self.session else {
            return Vec::new();
        };
        let mut replies = Vec::new();
        if nicks.iter().any(|n| n.eq_ignore_ascii_case(&self.nick)) {
            let away = if self.away.is_some() { '-' } else { '+' };
            replies.push(format!(
                "{}={away}u{}@{USER_HOST}",
                self.nick,
                session.user().id.0
            ));
        }
        vec![self.num(RPL_USERHOST, &[&replies.join(" ")])]
    }

    /// `ISON nick...`: those online in one of the client's channels.
    pub(super) async fn ison(&self, nicks: &[String]) -> Vec<Message> {
        let mut online = Vec::new();
        for nick in nicks
            .iter()
            .flat_map(|n| n.split(' '))
            .filter(|n| !n.is_empty())
        {
            if let Some((m, _)) = self.find(nick).await {
                if m.online {
                    online.push(nick::encode(&m.user.name));
                }
            }
        }
        vec![self.num(RPL_ISON, &[&online.join(" ")])]
    }

    /// `MODE nick [changes]`: users are `+i`; asking for `+i` changes nothing, anything
    /// else is refused (501); another user's modes are not shown (502).
    pub(super) fn user_mode(
        &mut self,
        target: &str,
        modes: &[Mode<UserMode>],
    ) -> Result<Vec<Message>, IrcError> {
        if !target.eq_ignore_ascii_case(&self.nick) {
            return Err(IrcError::UsersDontMatch);
        }
        if modes.is_empty() {
            return Ok(vec![self.num(RPL_UMODEIS, &["+i"])]);
        }
        if modes
            .iter()
            .all(|m| matches!(m, Mode::Plus(UserMode::Invisible, _)))
        {
            return Ok(Vec::new());
        }
        Err(IrcError::ModesUnsupported)
    }
}
