//! `Session`: what a transport holds for one connected client. Every chat operation is a
//! method here; every event for the client comes out of [`Session::next_event`].
//!
//! A transport translates its frames into these calls and the events into frames, and
//! nothing else. It should call the methods and `next_event` from one task, writing each
//! reply before the events that follow it: a join's snapshot then comes before the live
//! messages that continue it. Dropping the session disconnects it (members see it go
//! offline).
//!
//! Submodules: `changes` (edits and reactions), `pipeline` (posts in flight, answered in
//! order), `rooms` (the rooms this session follows), `target` (a channel or a person).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use actix::Addr;
use tokio::sync::oneshot;

use crate::attachment::{self, FileId};
use crate::delivery::entry::Queued;
use crate::delivery::queue::QueueReceiver;
use crate::delivery::{CloseCause, Subscriber};
use crate::directory::rate::UserBuckets;
use crate::directory::{Connected, CreateChannel, ListChannels, LogOut, RegistryActor};
use crate::error::ChatError;
use crate::error::{registry_gone, room_gone};
use crate::event::Event;
use crate::identity::ResumeToken;
use crate::limits::Limits;
use crate::model::{
    ChannelInfo, ChatMessage, Joined, MemberCursor, MembersPage, MessageId, Room, RoomKey,
    SessionId, UserRef,
};
use crate::room::{Delete, Members, Post, RoomAddr, Typing, Unsubscribe};
use crate::telemetry;
use crate::validate;

mod changes;
mod pipeline;
mod rooms;
mod target;

pub use pipeline::{PendingPost, PostOutcome, PostPipeline, MAX_POSTS_IN_FLIGHT};
pub use target::Target;

/// Most private rooms a session remembers the actor of.
const DIRECTS_CACHED: usize = 64;

/// Most events [`Session::next_events`] takes at once: a transport writes them in one go.
pub const EVENT_BATCH: usize = 256;

/// One connected client's handle on the engine.
pub struct Session {
    subscriber: Arc<Subscriber>,
    events: QueueReceiver,
    token: ResumeToken,
    new_user: bool,
    buckets: Arc<UserBuckets>,
    limits: Arc<Limits>,
    registry: Addr<RegistryActor>,
    /// Per room, the last id a join snapshot covered: queued events at or below it are
    /// duplicates of the snapshot and are skipped. An entry goes away with the first live
    /// message above it (events arrive in order), so this is empty in the steady state.
    covered: Mutex<Vec<(RoomKey, MessageId)>>,
    /// The channels this session follows and the actors serving them, by case-folded name:
    /// a post goes straight to its room without asking the directory, and finds it from the
    /// name it came with, without building a [`RoomKey`] (two allocations) per message.
    channels: Mutex<HashMap<Arc<str>, RoomAddr>>,
    /// Private rooms resolved so far, by the peer's case-folded name (at most
    /// `DIRECTS_CACHED`; the directory answers again for the others).
    directs: Mutex<HashMap<String, (Room, RoomAddr)>>,
    finished: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.subscriber.id)
            .field("user", &self.subscriber.user)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(
        connected: Connected,
        limits: Arc<Limits>,
        registry: Addr<RegistryActor>,
    ) -> Self {
        Session {
            subscriber: connected.subscriber,
            events: connected.events,
            token: connected.identity.token,
            new_user: connected.identity.new_user,
            buckets: connected.buckets,
            limits,
            registry,
            covered: Mutex::new(Vec::new()),
            channels: Mutex::new(HashMap::new()),
            directs: Mutex::new(HashMap::new()),
            finished: false,
        }
    }

    /// This session's id.
    pub fn id(&self) -> SessionId {
        self.subscriber.id
    }

    /// The user this session belongs to.
    pub fn user(&self) -> &UserRef {
        &self.subscriber.user
    }

    /// The user's resume token: give it to this client only, so it can come back as the
    /// same user with [`Login::Resume`](crate::Login::Resume).
    pub fn token(&self) -> &ResumeToken {
        &self.token
    }

    /// True when this login created the user (a first visit), false when it resumed one.
    pub fn is_new_user(&self) -> bool {
        self.new_user
    }

    /// The next event for this client, in order. After the engine disconnects the session
    /// it yields one [`Event::Disconnected`] and then `None`; after [`Session::close`] it
    /// yields `None`.
    pub async fn next_event(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// Waits for the next event, then takes every other one already queued behind it (up
    /// to [`EVENT_BATCH`] in all) into `batch`, so a transport writes them with one
    /// flush. Returns false, with nothing added, once the session has ended (after its last
    /// event: [`Event::Disconnected`] when the engine closed it).
    pub async fn next_events(&mut self, batch: &mut Vec<Event>) -> bool {
        let Some(first) = self.next_event().await else {
            return false;
        };
        // Room for what was taken with the first, at once rather than by doubling.
        batch.reserve(1 + self.events.taken_len(EVENT_BATCH - 1));
        batch.push(first);
        while batch.len() < EVENT_BATCH {
            match self.try_next_event() {
                Some(event) => batch.push(event),
                None => break,
            }
        }
        true
    }

    /// [`Session::next_event`] as a poll: the next event if one is queued, or `Pending`
    /// with `cx`'s waker kept until one is.
    fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if self.finished {
            return Poll::Ready(None);
        }
        loop {
            // Closing wakes the queue too, so a session that is closed while waiting gets
            // here again; once closed, what is still queued is not delivered.
            let event = if self.subscriber.is_closed() {
                None
            } else {
                ready!(self.events.poll_next(cx))
            };
            let Some(event) = event else {
                self.finished = true;
                return Poll::Ready(match self.subscriber.cause() {
                    Some(CloseCause::Engine(reason)) => Some(Event::Disconnected(reason)),
                    _ => None,
                });
            };
            if !self.is_covered(&event) {
                return Poll::Ready(Some(event.into()));
            }
        }
    }

    /// The next event if one is waiting now, without waiting; `None` when none is (or the
    /// session is closing: [`Session::next_event`] then says why). Lets a transport drain
    /// what is queued and write it as one batch.
    pub fn try_next_event(&mut self) -> Option<Event> {
        if self.finished || self.subscriber.is_closed() {
            return None;
        }
        while let Some(event) = self.events.try_next() {
            if !self.is_covered(&event) {
                return Some(event.into());
            }
        }
        None
    }

    /// Resolves when the engine or the client closed this session. A transport can wait on
    /// it while a write blocks, to drop a client that stopped reading.
    pub async fn closed(&self) {
        self.subscriber.closed_token().cancelled().await
    }

    /// Lists every channel with its member count and last activity, by name.
    pub async fn list_channels(&self) -> Result<Vec<ChannelInfo>, ChatError> {
        telemetry::tally(self.list_channels_uncounted().await)
    }

    async fn list_channels_uncounted(&self) -> Result<Vec<ChannelInfo>, ChatError> {
        self.registry
            .send(ListChannels)
            .await
            .map_err(registry_gone)
    }

    /// Creates a channel. Names: see [`validate::channel_name`]; unique case-insensitively.
    /// Every connected session gets [`Event::ChannelCreated`]. The creator does not join it
    /// by creating it.
    pub async fn create_channel(&self, name: &str) -> Result<ChannelInfo, ChatError> {
        telemetry::tally(self.create_channel_uncounted(name).await)
    }

    async fn create_channel_uncounted(&self, name: &str) -> Result<ChannelInfo, ChatError> {
        self.ensure_open()?;
        let name = validate::channel_name(name, &self.limits)?;
        self.buckets.take_channel_creation()?;
        self.registry
            .send(CreateChannel(name, Some(self.subscriber.user.id)))
            .await
            .map_err(registry_gone)?
    }

    /// Joins a channel or opens a private conversation: returns what to show and follows
    /// the room from that instant. With `after` (the last id this client saw) it returns
    /// only what was missed, or the whole history with `gap` set when that is no longer
    /// kept. Joining a room again is how a reconnected client catches up.
    pub async fn join(
        &self,
        target: impl Into<Target>,
        after: Option<MessageId>,
    ) -> Result<Joined, ChatError> {
        let started = Instant::now();
        let joined = telemetry::tally(self.join_uncounted(target, after).await)?;
        telemetry::joined(started);
        Ok(joined)
    }

    async fn join_uncounted(
        &self,
        target: impl Into<Target>,
        after: Option<MessageId>,
    ) -> Result<Joined, ChatError> {
        self.ensure_open()?;
        let target = target.into();
        let (addr, joined) = match self.subscribe(&target, after).await {
            // The room stopped (idle) between the directory's answer and the request: the
            // directory starts it again on the next request.
            Err(ChatError::Unavailable(_)) => self.subscribe(&target, after).await?,
            other => other?,
        };
        let key = joined.room.key();
        if let RoomKey::Channel(name) = &key {
            lock(&self.channels).insert(name.clone(), addr);
        }
        self.ensure_open()?;
        let mut covered = lock(&self.covered);
        covered.retain(|(k, _)| *k != key);
        covered.push((key, joined.last_id));
        drop(covered);
        Ok(joined)
    }

    /// Leaves a channel: stops following it and, unless another session of the same user
    /// still follows it, stops being a member (others see [`PresenceChange::Left`](crate::PresenceChange::Left)).
    ///
    /// A private conversation cannot be left (`invalid_target`): its messages keep
    /// reaching every session of both users.
    pub async fn leave(&self, target: impl Into<Target>) -> Result<(), ChatError> {
        telemetry::tally(self.leave_uncounted(target).await)
    }

    async fn leave_uncounted(&self, target: impl Into<Target>) -> Result<(), ChatError> {
        self.ensure_open()?;
        let Target::Channel(name) = target.into() else {
            return Err(ChatError::InvalidTarget(
                "a private conversation cannot be left".into(),
            ));
        };
        let key = Room::Channel(validate::channel_name(&name, &self.limits)?).key();
        let RoomKey::Channel(channel) = &key else {
            return Err(ChatError::NotJoined(describe(&key)));
        };
        let addr = lock(&self.channels)
            .remove(channel)
            .ok_or_else(|| ChatError::NotJoined(describe(&key)))?;
        lock(&self.covered).retain(|(k, _)| *k != key);
        addr.send(Unsubscribe {
            session: self.subscriber.id,
            parting: true,
        })
        .await
        .map_err(room_gone)
    }

    /// Posts a message to a joined channel, or privately to a user (no join needed).
    /// Returns the stored message with its id and timestamp; it also arrives as
    /// [`Event::Posted`] to every follower of the room, this session included.
    pub async fn post(
        &self,
        target: impl Into<Target>,
        text: impl Into<String>,
    ) -> Result<Arc<ChatMessage>, ChatError> {
        self.start_post(target, text).await?.await
    }

    /// Posts like [`Session::post`], in two steps: this checks the message, takes it from
    /// the rate limit and hands it to the room, and the returned [`PendingPost`] resolves
    /// to the stored message. The pending post does not borrow the session, so a
    /// transport can read the client's next request while earlier posts are still being
    /// stored. Posts started one after another are stored in that order.
    ///
    /// This is what lets a fast sender's messages reach the room in batches (one fan-out
    /// pass for several messages) instead of one round trip each. A `String` text (and
    /// target) is moved into the message rather than copied.
    ///
    /// Called inside a tokio runtime, the post crosses to the room's thread together with
    /// the other posts that runtime makes while it polls the tasks ready now (every
    /// client it read in one pass), right after that pass; outside any runtime it
    /// crosses at once. So the runtime must be running for a post to arrive, as it must
    /// for any of its I/O.
    pub async fn start_post(
        &self,
        target: impl Into<Target>,
        text: impl Into<String>,
    ) -> Result<PendingPost, ChatError> {
        self.start_post_with_files(target, text, Vec::new()).await
    }

    /// Posts like [`Session::start_post`], carrying files this user uploaded
    /// ([`Uploader::upload`](crate::Uploader::upload)) and no post has carried yet; the
    /// text may then be empty. Each id counts once. Refused with `no_such_file` when one
    /// is not waiting for a post of this user, `too_many_files` or `too_large` beyond
    /// `max_files_per_message` or `max_message_file_bytes`; a refused post attaches none
    /// of its files, which still wait for another.
    pub async fn start_post_with_files(
        &self,
        target: impl Into<Target>,
        text: impl Into<String>,
        files: Vec<FileId>,
    ) -> Result<PendingPost, ChatError> {
        telemetry::tally(self.start_post_uncounted(target, text, files).await)
    }

    async fn start_post_uncounted(
        &self,
        target: impl Into<Target>,
        text: impl Into<String>,
        files: Vec<FileId>,
    ) -> Result<PendingPost, ChatError> {
        self.ensure_open()?;
        let text = text.into();
        let files = attachment::distinct_ids(files, &self.limits)?;
        validate::post_text(&text, !files.is_empty(), &self.limits)?;
        let (reply, stored) = oneshot::channel();
        let post = Post {
            author: self.subscriber.user.clone(),
            text,
            files,
            reply,
        };
        self.with_room(target.into(), |addr| {
            self.buckets.take_message()?;
            // On its way to the room now, whatever happens to the `PendingPost`.
            addr.post(post);
            Ok::<(), ChatError>(())
        })
        .await??;
        Ok(PendingPost::new(stored))
    }

    /// Deletes one of this user's own messages; anyone else's is refused with
    /// `not_author`. Followers get [`Event::Deleted`].
    pub async fn delete(&self, target: impl Into<Target>, id: MessageId) -> Result<(), ChatError> {
        telemetry::tally(self.delete_uncounted(target, id).await)
    }

    async fn delete_uncounted(
        &self,
        target: impl Into<Target>,
        id: MessageId,
    ) -> Result<(), ChatError> {
        self.ensure_open()?;
        let addr = self.room_addr(target.into()).await?;
        addr.send(Delete {
            id,
            by: self.subscriber.user.id,
        })
        .await
        .map_err(room_gone)?
    }

    /// Tells the other members that this user is typing. Returns false when the notice was
    /// dropped by the throttle (`Limits::typing_interval`).
    pub async fn typing(&self, target: impl Into<Target>) -> Result<bool, ChatError> {
        telemetry::tally(self.typing_uncounted(target).await)
    }

    async fn typing_uncounted(&self, target: impl Into<Target>) -> Result<bool, ChatError> {
        self.ensure_open()?;
        let addr = self.room_addr(target.into()).await?;
        addr.send(Typing {
            user: self.subscriber.user.clone(),
        })
        .await
        .map_err(room_gone)
    }

    /// One page of a joined room's members: at most `limit` (served within
    /// 1..=[`MAX_MEMBER_PAGE`](crate::MAX_MEMBER_PAGE)) after the cursor `after`, or from
    /// the start without it, online ones first, then by name. Follow
    /// [`MembersPage::next`] until it is `None` for every member: each one who stays
    /// where they are in that order meanwhile comes exactly once (a member who goes
    /// online or offline between two pages moves, and may be seen twice or not at all).
    pub async fn members_page(
        &self,
        target: impl Into<Target>,
        after: Option<MemberCursor>,
        limit: usize,
    ) -> Result<MembersPage, ChatError> {
        telemetry::tally(self.members_page_uncounted(target, after, limit).await)
    }

    async fn members_page_uncounted(
        &self,
        target: impl Into<Target>,
        after: Option<MemberCursor>,
        limit: usize,
    ) -> Result<MembersPage, ChatError> {
        self.ensure_open()?;
        let addr = self.room_addr(target.into()).await?;
        addr.send(Members { after, limit }).await.map_err(room_gone)
    }

    /// Logs this user out everywhere: their token no longer resumes, their display name
    /// is free for anyone at once (no hold), and every session of theirs, this one and
    /// those on other connections and nodes, ends with
    /// [`Event::Disconnected`]`(LoggedOut)`. What they posted stays. An embedder's
    /// external user keeps their user id for their next login.
    pub async fn log_out(&self) -> Result<(), ChatError> {
        self.ensure_open()?;
        self.registry
            .send(LogOut(self.subscriber.user.id))
            .await
            .map_err(registry_gone)?
    }

    /// Disconnects the session now (dropping it does the same).
    pub fn close(mut self) {
        self.finished = true;
        self.subscriber.close(CloseCause::Client);
    }

    fn ensure_open(&self) -> Result<(), ChatError> {
        if self.subscriber.is_closed() {
            Err(ChatError::SessionClosed)
        } else {
            Ok(())
        }
    }

    /// Takes `&mut self` so that it reads the list without locking it: this runs once per
    /// delivered event.
    fn is_covered(&mut self, event: &Queued) -> bool {
        let Queued::Posted(message) = event else {
            return false;
        };
        let covered = self.covered.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(i) = covered.iter().position(|(k, _)| k.is(&message.room)) else {
            return false;
        };
        if message.id <= covered[i].1 {
            return true;
        }
        covered.swap_remove(i);
        false
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.subscriber.close(CloseCause::Client);
    }
}

fn describe(key: &RoomKey) -> String {
    match key {
        RoomKey::Channel(name) => format!("#{name}"),
        RoomKey::Direct(..) => "this conversation".into(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
