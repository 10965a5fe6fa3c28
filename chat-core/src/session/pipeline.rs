//! `PostPipeline`: one connection's posts that were handed to their rooms and not
//! answered yet, answered in the order they were sent.
//!
//! Both transports read a client's next request while its earlier posts are being stored,
//! so a fast sender's messages reach the room together (one fan-out pass for several) instead
//! of one round trip each, and still answer every request in order. This is that pipeline,
//! in one place: a transport pushes each [`PendingPost`] with whatever it needs to answer it
//! (a request id, nothing), stops reading the client while [`PostPipeline::is_full`], and
//! writes each outcome [`PostPipeline::next`] gives before any later reply.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use tokio::sync::oneshot;

use crate::error::ChatError;
use crate::model::ChatMessage;
use crate::telemetry;

/// A message handed to its room by [`Session::start_post`](crate::Session::start_post), not
/// yet stored: resolves to the stored message (with its id and timestamp), or to why it was
/// refused.
#[must_use = "the room has the message either way; await it for its id or its error"]
pub struct PendingPost {
    stored: oneshot::Receiver<Result<Arc<ChatMessage>, ChatError>>,
    /// When the post was handed to its room: the start of `flack_post_duration_seconds`.
    started: Instant,
}

impl PendingPost {
    /// A post handed to its room now, whose outcome comes through `stored`.
    pub(super) fn new(stored: oneshot::Receiver<Result<Arc<ChatMessage>, ChatError>>) -> Self {
        PendingPost {
            stored,
            started: Instant::now(),
        }
    }
}

impl Future for PendingPost {
    type Output = Result<Arc<ChatMessage>, ChatError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A dropped reply means the room's actor is gone: the engine is stopping.
        let outcome =
            ready!(Pin::new(&mut self.stored).poll(cx)).unwrap_or(Err(ChatError::ShuttingDown));
        if outcome.is_ok() {
            telemetry::posted(self.started);
        }
        Poll::Ready(telemetry::tally(outcome))
    }
}

impl std::fmt::Debug for PendingPost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingPost")
    }
}

/// Most posts of one connection being stored at once. Past it a transport stops reading
/// the client until one is answered.
pub const MAX_POSTS_IN_FLIGHT: usize = 64;

/// What became of one post, with the tag it was pushed with.
pub type PostOutcome<T> = (T, Result<Arc<ChatMessage>, ChatError>);

/// Posts handed to their rooms and not answered yet, in the order they were started.
///
/// Only the oldest is polled: outcomes come out in order, so a later one could not be
/// used before it anyway. That keeps the later ones quiet (an answer nobody polls wakes no
/// task) and the pipeline allocates nothing per post.
pub struct PostPipeline<T> {
    posts: VecDeque<(T, PendingPost)>,
}

impl<T> Default for PostPipeline<T> {
    fn default() -> Self {
        PostPipeline {
            posts: VecDeque::new(),
        }
    }
}

impl<T> std::fmt::Debug for PostPipeline<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostPipeline")
            .field("in_flight", &self.posts.len())
            .finish()
    }
}

impl<T> PostPipeline<T> {
    /// Capacity kept once every post is answered: one burst's queue is not held by an
    /// idle connection.
    const KEEP: usize = 8;

    /// An empty pipeline.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a post started after every one already here.
    pub fn push(&mut self, tag: T, post: PendingPost) {
        self.posts.push_back((tag, post));
    }

    /// How many posts wait for their answer.
    pub fn len(&self) -> usize {
        self.posts.len()
    }

    /// Whether no post waits.
    pub fn is_empty(&self) -> bool {
        self.posts.is_empty()
    }

    /// Whether [`MAX_POSTS_IN_FLIGHT`] posts wait: read no more requests until one is
    /// answered.
    pub fn is_full(&self) -> bool {
        self.posts.len() >= MAX_POSTS_IN_FLIGHT
    }

    /// The oldest post's outcome once its room has answered; `None` at once when no post
    /// waits (so a `select!` branch should be guarded by `!is_empty()`).
    pub async fn next(&mut self) -> Option<PostOutcome<T>> {
        poll_fn(|cx| self.poll_oldest(cx)).await
    }

    fn poll_oldest(&mut self, cx: &mut Context<'_>) -> Poll<Option<PostOutcome<T>>> {
        let Some((_, post)) = self.posts.front_mut() else {
            return Poll::Ready(None);
        };
        let result = ready!(Pin::new(post).poll(cx));
        let outcome = self.posts.pop_front().map(|(tag, _)| (tag, result));
        if self.posts.is_empty() && self.posts.capacity() > Self::KEEP {
            self.posts = VecDeque::new();
        }
        Poll::Ready(outcome)
    }
}
