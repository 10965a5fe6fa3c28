//! Channel commands: `JOIN` (creating the channel when the engine allows), `PART`,
//! `NAMES`, `LIST`, `TOPIC` (read: channels have no topic) and channel `MODE` (queries).
//!
//! A channel `#general` is the engine's channel `general`; names are case-insensitive
//! (`CASEMAPPING=ascii`, as the engine's channel names). Joining shows, in this order, the
//! JOIN, the names (353, 366) and the kept history (in a `chathistory` batch with
//! `batch`; see `render::history`).

use chat_core::{ChatError, Member};
use irc_proto::{ChannelMode, Command, Message, Mode};

use super::Dispatcher;
use crate::config::MAX_LINE_BYTES;
use crate::error::IrcError;
use crate::nick;
use crate::render;
use crate::reply::num::*;

impl Dispatcher {
    /// `JOIN #a,#b` (`JOIN 0` parts every channel).
    pub(super) async fn join(&mut self, channels: &str) -> Vec<Message> {
        if channels == "0" {
            let all = self.channels.join(",");
            return self.part(&all, None).await;
        }
        let mut lines = Vec::new();
        for name in channels.split(',').filter(|c| !c.is_empty()) {
            if self.joined(name).is_some() {
                continue;
            }
            match self.join_one(name).await {
                Ok(more) => lines.extend(more),
                Err(e) => lines.push(self.refusal("JOIN", name, &e)),
            }
        }
        lines
    }

    async fn join_one(&mut self, name: &str) -> Result<Vec<Message>, IrcError> {
        let session = self.me()?;
        let joined = match session.join(name, None).await {
            Err(ChatError::NoSuchChannel(_)) => {
                match session.create_channel(name).await {
                    Ok(_) | Err(ChatError::ChannelExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                session.join(name, None).await?
            }
            other => other?,
        };
        let user = session.user().clone();
        let channel = render::room_target(&joined.room, user.id);
        let mut lines = vec![Message {
            tags: None,
            prefix: Some(render::prefix_of(&user)),
            command: Command::JOIN(channel.clone(), None, None),
        }];
        lines.extend(self.names_lines(&channel, &joined.members));
        lines.extend(self.history_lines(&channel, &joined.messages));
        if let Some(last) = joined.messages.last() {
            self.saw(last);
        }
        self.channels.push(channel);
        Ok(lines)
    }

    /// The channel as joined on this connection, if it is.
    pub(super) fn joined(&self, name: &str) -> Option<&str> {
        let bare = name.strip_prefix('#').unwrap_or(name);
        self.channels
            .iter()
            .find(|c| c[1..].eq_ignore_ascii_case(bare))
            .map(String::as_str)
    }

    /// `PART #a,#b [:why]`.
    pub(super) async fn part(&mut self, channels: &str, why: Option<String>) -> Vec<Message> {
        let mut lines = Vec::new();
        for name in channels.split(',').filter(|c| !c.is_empty()) {
            let left = match self.me() {
                Ok(session) => session.leave(name).await.map_err(IrcError::from),
                Err(e) => Err(e),
            };
            match left {
                Ok(()) => {
                    let shown = self.joined(name).unwrap_or(name).to_owned();
                    self.channels.retain(|c| *c != shown);
                    if let Ok(session) = self.me() {
                        lines.push(Message {
                            tags: None,
                            prefix: Some(render::prefix_of(session.user())),
                            command: Command::PART(shown, why.clone()),
                        });
                    }
                }
                Err(e) => lines.push(self.refusal("PART", name, &e)),
            }
        }
        lines
    }

    /// `NAMES #a,#b`: the online members of each joined channel.
    pub(super) async fn names(&mut self, channels: Option<&str>) -> Vec<Message> {
        let Some(channels) = channels else {
            return vec![self.num(RPL_ENDOFNAMES, &["*", "End of /NAMES list."])];
        };
        let mut lines = Vec::new();
        for name in channels.split(',').filter(|c| !c.is_empty()) {
            let shown = self.joined(name).unwrap_or(name).to_owned();
            let members = match self.me() {
                Ok(session) => super::all_members(session, name).await.ok(),
                Err(_) => None,
            };
            match members {
                Some(members) => lines.extend(self.names_lines(&shown, &members)),
                None => lines.push(self.num(RPL_ENDOFNAMES, &[&shown, "End of /NAMES list."])),
            }
        }
        lines
    }

    /// 353 lines of at most 512 bytes with the online members, then 366.
    fn names_lines(&self, channel: &str, members: &[Member]) -> Vec<Message> {
        let room = MAX_LINE_BYTES
            - format!(":{} 353 {} = {channel} :\r\n", self.server.name, self.nick).len();
        let mut lines = Vec::new();
        let mut list = String::new();
        for member in members.iter().filter(|m| m.online) {
            let nick = nick::encode(&member.user.name);
            if !list.is_empty() && list.len() + 1 + nick.len() > room {
                lines.push(self.num(RPL_NAMREPLY, &["=", channel, &list]));
                list.clear();
            }
            if !list.is_empty() {
                list.push(' ');
            }
            list.push_str(&nick);
        }
        if !list.is_empty() {
            lines.push(self.num(RPL_NAMREPLY, &["=", channel, &list]));
        }
        lines.push(self.num(RPL_ENDOFNAMES, &[channel, "End of /NAMES list."]));
        lines
    }

    /// `LIST [#a,#b]`: 321, one 322 per channel (members, no topic), 323.
    pub(super) async fn list(&mut self, only: Option<&str>) -> Result<Vec<Message>, IrcError> {
        let channels = self.me()?.list_channels().await?;
        let wanted: Vec<String> = only
            .unwrap_or_default()
            .split(',')
            .filter(|c| !c.is_empty())
            .map(|c| c.trim_start_matches('#').to_ascii_lowercase())
            .collect();
        let mut lines = vec![self.num(RPL_LISTSTART, &["Channel", "Users  Name"])];
        for c in channels {
            if !wanted.is_empty() && !wanted.iter().any(|w| w == c.name.key()) {
                continue;
            }
            let name = format!("#{}", c.name);
            lines.push(self.num(RPL_LIST, &[&name, &c.members.to_string(), ""]));
        }
        lines.push(self.num(RPL_LISTEND, &["End of /LIST"]));
        Ok(lines)
    }

    /// `TOPIC #chan`: 331 (channels have no topic here); setting one is refused.
    pub(super) fn topic(
        &mut self,
        channel: &str,
        topic: Option<String>,
    ) -> Result<Vec<Message>, IrcError> {
        let Some(shown) = self.joined(channel).map(str::to_owned) else {
            return Err(ChatError::NotJoined(channel.to_owned()).into());
        };
        if topic.is_some() {
            return Err(IrcError::TopicUnsupported);
        }
        Ok(vec![self.num(RPL_NOTOPIC, &[&shown, "No topic is set"])])
    }

    /// `MODE #chan`: 324 `+nt`; list queries (`b`, `e`, `I`) answer an empty list;
    /// changes are refused (482).
    pub(super) fn channel_mode(
        &mut self,
        channel: &str,
        modes: &[Mode<ChannelMode>],
    ) -> Result<Vec<Message>, IrcError> {
        let shown = self.joined(channel).unwrap_or(channel).to_owned();
        if modes.is_empty() {
            return Ok(vec![self.num(RPL_CHANNELMODEIS, &[&shown, "+nt"])]);
        }
        let mut lines = Vec::new();
        for mode in modes {
            let (list, arg) = match mode {
                Mode::NoPrefix(m) => (m, None),
                Mode::Plus(m, arg) => (m, arg.as_ref()),
                Mode::Minus(_, _) => return Err(IrcError::ModesUnsupported),
            };
            let end = match list {
                ChannelMode::Ban if arg.is_none() => (RPL_ENDOFBANLIST, "End of channel ban list"),
                ChannelMode::Exception if arg.is_none() => (349, "End of channel exception list"),
                ChannelMode::InviteException if arg.is_none() => {
                    (347, "End of channel invite list")
                }
                _ => return Err(IrcError::ModesUnsupported),
            };
            lines.push(self.num(end.0, &[&shown, end.1]));
        }
        Ok(lines)
    }
}
