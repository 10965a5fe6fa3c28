//! A session's bounded event queue: the rooms' actors push, the session's transport takes.
//!
//! Built for fan-out rather than taken from `tokio::sync::mpsc`: a room hands each of its
//! subscribers a whole batch of events, and with a general-purpose channel every event
//! cost each subscriber a permit, a slot claim, a wake-up check and a release (a fifth of
//! the server's time in the one-channel fan-out benchmark). Here a batch costs one lock
//! and one wake-up however many events it holds, and the taker moves everything queued to
//! its own buffer under one lock, then takes entry by entry without any.
//!
//! The bound is what the queued events cost in memory, not how many they are: a message
//! pins its text and author until the last session holding it takes it, so each entry
//! counts the bytes it keeps alive. A push that would pass the hard limit is refused
//! whole; a queue that stays above the soft limit for longer than its grace refuses the
//! next push (Redis's `client-output-buffer-limit` model): a burst passes, a client that
//! stopped reading does not. The caller closes a refused session as a slow consumer. Only
//! what is queued and not yet moved to the taker's buffer counts: the taker moves
//! everything at once and hands it to its transport in bounded batches.
//! A batch a room shares between its subscribers ([`super::entry`]) is one entry here,
//! counted whole, and is unpacked event by event as it is taken.
//! Closing (by the engine, or by dropping the taker) refuses every later push and wakes a
//! waiting taker.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::entry::{Entry, Queued, SharedEvents};
use super::relay::{self, Relay};

/// How much a session's queue may hold: what its events cost, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bound {
    /// A push that would pass this is refused at once.
    pub(crate) hard_bytes: usize,
    /// Above this for longer than `soft_grace`, the next push is refused.
    pub(crate) soft_bytes: usize,
    pub(crate) soft_grace: Duration,
}

impl Bound {
    /// A bound of `bytes` with no soft limit (tests).
    #[cfg(test)]
    pub(crate) fn hard(bytes: usize) -> Bound {
        Bound {
            hard_bytes: bytes,
            soft_bytes: bytes,
            soft_grace: Duration::MAX,
        }
    }
}

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The events would pass the bound: the taker is not keeping up.
    Full,
    /// The queue is closed.
    Closed,
}

/// Buffers that held more entries than this (4 KiB) are given back once emptied, so that
/// one burst, such as the presence of thousands joining, does not stay allocated in every
/// idle session.
const KEEP_CAPACITY: usize = 256;

/// A new queue whose events not yet taken may cost what `bound` allows.
pub(crate) fn bounded(bound: Bound) -> (QueueSender, QueueReceiver) {
    let shared = Arc::new(Shared {
        bound,
        state: Mutex::new(State::default()),
    });
    let receiver = QueueReceiver {
        shared: shared.clone(),
        taken: VecDeque::new(),
        unpacking: None,
    };
    (QueueSender(shared), receiver)
}

#[derive(Debug)]
struct Shared {
    bound: Bound,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    queued: VecDeque<Entry>,
    /// What `queued` costs ([`Entry::cost`]).
    bytes: usize,
    /// Since when `bytes` is above the soft limit.
    above_soft_since: Option<Instant>,
    /// The taker's waker while it waits on an empty queue, and the relay to its thread.
    waker: Option<(Waker, Option<Arc<Relay>>)>,
    closed: bool,
}

impl Bound {
    /// Whether a queue holding `state` may take `added` more bytes; counts them if so.
    fn admits(&self, state: &mut State, added: usize) -> bool {
        let bytes = state.bytes + added;
        if bytes > self.hard_bytes {
            return false;
        }
        if bytes > self.soft_bytes {
            let now = Instant::now();
            let since = *state.above_soft_since.get_or_insert(now);
            if now.saturating_duration_since(since) > self.soft_grace {
                return false;
            }
        }
        state.bytes = bytes;
        true
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing here can panic while holding the lock; recover rather than propagate.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the queue closed and drops what it holds; returns the waiting taker's waker.
    fn close(&self) -> Option<(Waker, Option<Arc<Relay>>)> {
        let mut state = self.lock();
        state.closed = true;
        state.queued = VecDeque::new();
        state.bytes = 0;
        state.waker.take()
    }
}

/// The pushing half, held by the session's [`crate::delivery::Subscriber`].
#[derive(Debug)]
pub(crate) struct QueueSender(Arc<Shared>);

impl QueueSender {
    /// Queues all of `events`, or none of them if that would pass the bound or the queue
    /// is closed. Wakes the taker once, after unlocking, through its thread's relay.
    pub(crate) fn push_all<E: Into<Entry>>(
        &self,
        events: impl Iterator<Item = E>,
    ) -> Result<(), Refused> {
        let waker = {
            let mut state = self.0.lock();
            if state.closed {
                return Err(Refused::Closed);
            }
            let before = state.queued.len();
            let mut added = 0;
            for event in events {
                let event = event.into();
                added += event.cost();
                state.queued.push_back(event);
            }
            if added == 0 {
                return Ok(());
            }
            if !self.0.bound.admits(&mut state, added) {
                state.queued.truncate(before);
                return Err(Refused::Full);
            }
            state.waker.take()
        };
        if let Some((waker, relay)) = waker {
            relay::wake(waker, relay.as_ref());
        }
        Ok(())
    }

    /// Closes the queue: later pushes are refused, a waiting taker is woken and then gets
    /// `None`.
    pub(crate) fn close(&self) {
        if let Some((waker, relay)) = self.0.close() {
            relay::wake(waker, relay.as_ref());
        }
    }
}

/// The taking half, held by the session.
#[derive(Debug)]
pub(crate) struct QueueReceiver {
    shared: Arc<Shared>,
    /// Events moved out of the shared queue in one go, taken from here without a lock.
    taken: VecDeque<Entry>,
    /// The shared batch being taken, and the index of its next event.
    unpacking: Option<(Arc<SharedEvents>, usize)>,
}

impl QueueReceiver {
    /// The next event; `Pending` (with `cx` woken later) while the queue is empty and
    /// open; `None` once it is closed, even if events were still queued.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Queued>> {
        if let Some(event) = self.take_local() {
            return Poll::Ready(Some(event));
        }
        let mut state = self.shared.lock();
        if state.closed {
            return Poll::Ready(None);
        }
        if state.queued.is_empty() {
            match &mut state.waker {
                Some((waker, _)) if waker.will_wake(cx.waker()) => {}
                waker => *waker = Some((cx.waker().clone(), relay::here())),
            }
            return Poll::Pending;
        }
        std::mem::swap(&mut state.queued, &mut self.taken);
        state.bytes = 0;
        state.above_soft_since = None;
        drop(state);
        Poll::Ready(self.take_local())
    }

    /// The next event if one is queued now.
    pub(crate) fn try_next(&mut self) -> Option<Queued> {
        if let Some(event) = self.take_local() {
            return Some(event);
        }
        {
            let mut state = self.shared.lock();
            if state.closed {
                return None;
            }
            std::mem::swap(&mut state.queued, &mut self.taken);
            state.bytes = 0;
            state.above_soft_since = None;
        }
        self.take_local()
    }

    /// How many events [`QueueReceiver::try_next`] gives now without taking the lock, up
    /// to `at_most`: the count stops there rather than walk a long backlog per batch.
    pub(crate) fn taken_len(&self, at_most: usize) -> usize {
        let mut count =
            (self.unpacking.as_ref()).map_or(0, |(batch, next)| batch.events.len() - next);
        for entry in &self.taken {
            if count >= at_most {
                break;
            }
            count += entry.len();
        }
        count.min(at_most)
    }

    /// The next event taken already; a shared batch gives its events one by one, each
    /// a copy of the batch's (for a message, a pointer to it).
    fn take_local(&mut self) -> Option<Queued> {
        loop {
            if let Some((batch, next)) = &mut self.unpacking {
                if let Some(event) = batch.events.get(*next) {
                    *next += 1;
                    return Some(event.clone());
                }
                self.unpacking = None;
            }
            match self.taken.pop_front() {
                Some(Entry::One(event)) => return Some(event),
                Some(Entry::Shared(batch)) => self.unpacking = Some((batch, 0)),
                None => {
                    if self.taken.capacity() > KEEP_CAPACITY {
                        self.taken = VecDeque::new();
                    }
                    return None;
                }
            }
        }
    }
}

impl Drop for QueueReceiver {
    fn drop(&mut self) {
        // The session is gone: refuse further pushes so rooms drop it at once.
        self.shared.close();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;
    use crate::model::test_message;

    fn event(n: u64) -> Queued {
        Queued::Posted(test_message(n))
    }

    fn is(queued: Option<Queued>, n: u64) -> bool {
        matches!(queued, Some(Queued::Posted(message)) if message.id == n)
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn events_come_out_in_the_order_they_were_pushed_across_batches() {
        let (tx, mut rx) = bounded(Bound::hard(1 << 20));
        tx.push_all((0..3).map(event)).unwrap();
        assert!(is(rx.try_next(), 0));
        tx.push_all((3..5).map(event)).unwrap();
        for n in 1..5 {
            assert!(is(rx.try_next(), n), "event {n}");
        }
        assert!(rx.try_next().is_none());
    }

    #[test]
    fn a_shared_batch_is_taken_event_by_event_by_each_of_its_queues() {
        let batch = SharedEvents::new((2..5).map(event).collect());
        let queues: Vec<_> = (0..2).map(|_| bounded(Bound::hard(1 << 20))).collect();
        let mut receivers = Vec::new();
        for (tx, rx) in queues {
            tx.push_all(std::iter::once(event(1))).unwrap();
            tx.push_all(std::iter::once(Entry::Shared(batch.clone())))
                .unwrap();
            tx.push_all(std::iter::once(event(5))).unwrap();
            receivers.push(rx);
        }
        for rx in &mut receivers {
            assert!(is(rx.try_next(), 1));
            assert_eq!(
                rx.taken_len(usize::MAX),
                4,
                "the batch's events count one by one"
            );
            for n in 2..=5 {
                assert!(is(rx.try_next(), n), "event {n}");
            }
            assert!(rx.try_next().is_none());
        }
        assert_eq!(Arc::strong_count(&batch), 1, "taken, it is let go");
    }

    #[test]
    fn a_shared_batch_counts_whole_against_each_bound() {
        let batch = SharedEvents::new((0..3).map(event).collect());
        let (tx, mut rx) = bounded(Bound::hard(2 * event(0).cost()));
        let shared = std::iter::once(Entry::Shared(batch));
        assert_eq!(tx.push_all(shared), Err(Refused::Full));
        assert!(rx.try_next().is_none(), "nothing of it was queued");
    }

    #[test]
    fn a_batch_that_would_pass_the_bound_is_refused_whole() {
        let (tx, mut rx) = bounded(Bound::hard(4 * event(0).cost()));
        tx.push_all((0..3).map(event)).unwrap();
        assert_eq!(tx.push_all((3..5).map(event)), Err(Refused::Full));
        for n in 0..3 {
            assert!(is(rx.try_next(), n));
        }
        assert!(
            rx.try_next().is_none(),
            "nothing of the refused batch was queued"
        );
        // Taken events no longer count against the bound.
        tx.push_all((0..4).map(event)).unwrap();
    }

    #[test]
    fn a_waiting_taker_is_woken_once_per_batch_and_by_close() {
        let (tx, mut rx) = bounded(Bound::hard(1 << 20));
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_next(&mut cx).is_pending());
        tx.push_all((0..50).map(event)).unwrap();
        tx.push_all((50..60).map(event)).unwrap();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        for n in 0..60 {
            let Poll::Ready(next) = rx.poll_next(&mut cx) else {
                panic!("event {n} is queued");
            };
            assert!(is(next, n), "event {n}");
        }
        assert!(rx.poll_next(&mut cx).is_pending());
        tx.close();
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert!(matches!(rx.poll_next(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn a_closed_queue_refuses_pushes_and_yields_nothing_more() {
        let (tx, mut rx) = bounded(Bound::hard(1 << 20));
        tx.push_all((0..3).map(event)).unwrap();
        tx.close();
        assert_eq!(tx.push_all((3..4).map(event)), Err(Refused::Closed));
        assert!(rx.try_next().is_none());
    }

    #[test]
    fn dropping_the_taker_closes_the_queue() {
        let (tx, rx) = bounded(Bound::hard(1 << 20));
        drop(rx);
        assert_eq!(tx.push_all((0..1).map(event)), Err(Refused::Closed));
    }

    #[test]
    fn a_burst_does_not_stay_allocated_once_taken() {
        let (tx, mut rx) = bounded(Bound::hard(1 << 24));
        tx.push_all((0..5_000).map(event)).unwrap();
        while rx.try_next().is_some() {}
        assert!(rx.taken.capacity() <= KEEP_CAPACITY);
        assert!(rx.shared.lock().queued.capacity() <= KEEP_CAPACITY);
    }

    #[test]
    fn above_the_soft_limit_a_queue_has_its_grace_then_is_refused() {
        let unit = event(0).cost();
        let bound = Bound {
            hard_bytes: 100 * unit,
            soft_bytes: 2 * unit,
            soft_grace: Duration::from_millis(50),
        };
        let (tx, mut rx) = bounded(bound);
        // A burst past the soft limit is taken in.
        tx.push_all((0..5).map(event)).unwrap();
        tx.push_all((5..8).map(event)).unwrap();
        // Taking everything ends the spell above the soft limit.
        while rx.try_next().is_some() {}
        tx.push_all((0..5).map(event)).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(tx.push_all(std::iter::once(event(9))), Err(Refused::Full));
        // A queue below the soft limit has no clock running.
        let (tx, _rx) = bounded(bound);
        tx.push_all(std::iter::once(event(1))).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        tx.push_all(std::iter::once(event(2))).unwrap();
    }
}
