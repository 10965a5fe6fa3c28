//! A session's bounded event queue: the rooms' actors push, the session's transport takes.
//!
//! Built for fan-out rather than taken from `tokio::sync::mpsc`: a room hands each of its
//! subscribers a whole batch of events, and with a general-purpose channel every event
//! cost each subscriber a permit, a slot claim, a wake-up check and a release (a fifth of
//! the server's time in the one-channel fan-out benchmark). Here a batch costs one lock
//! and one wake-up however many events it holds, and the taker moves everything queued to
//! its own buffer under one lock, then takes entry by entry without any.
//!
//! The bound counts events queued and not yet moved to the taker's buffer; a push that
//! would pass it is refused whole, and the caller closes the session as a slow consumer.
//! Closing (by the engine, or by dropping the taker) refuses every later push and wakes a
//! waiting taker.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::event::Event;
use crate::model::ChatMessage;

/// One entry of a session's event queue: a message as the shared pointer it already is,
/// any other event boxed. Entries stay 16 bytes where an `Event` takes 80, and messages,
/// the bulk of the traffic, are queued without an allocation.
#[derive(Debug)]
pub(crate) enum Queued {
    Posted(Arc<ChatMessage>),
    Other(Box<Event>),
}

impl From<Event> for Queued {
    fn from(event: Event) -> Self {
        match event {
            Event::Posted(message) => Queued::Posted(message),
            other => Queued::Other(Box::new(other)),
        }
    }
}

impl From<Queued> for Event {
    fn from(queued: Queued) -> Self {
        match queued {
            Queued::Posted(message) => Event::Posted(message),
            Queued::Other(event) => *event,
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

/// A new queue holding at most `capacity` events (at least one) not yet taken.
pub(crate) fn bounded(capacity: usize) -> (QueueSender, QueueReceiver) {
    let shared = Arc::new(Shared {
        capacity: capacity.max(1),
        state: Mutex::new(State::default()),
    });
    let receiver = QueueReceiver {
        shared: shared.clone(),
        taken: VecDeque::new(),
    };
    (QueueSender(shared), receiver)
}

#[derive(Debug)]
struct Shared {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    queued: VecDeque<Queued>,
    /// The taker's waker while it waits on an empty queue.
    waker: Option<Waker>,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing here can panic while holding the lock; recover rather than propagate.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the queue closed and drops what it holds; returns the waiting taker's waker.
    fn close(&self) -> Option<Waker> {
        let mut state = self.lock();
        state.closed = true;
        state.queued = VecDeque::new();
        state.waker.take()
    }
}

/// The pushing half, held by the session's [`crate::delivery::Subscriber`].
#[derive(Debug)]
pub(crate) struct QueueSender(Arc<Shared>);

impl QueueSender {
    /// Queues all of `events`, or none of them if that would pass the bound or the queue
    /// is closed. Wakes the taker once, after unlocking.
    pub(crate) fn push_all(&self, events: impl Iterator<Item = Queued>) -> Result<(), Refused> {
        let waker = {
            let mut state = self.0.lock();
            if state.closed {
                return Err(Refused::Closed);
            }
            let before = state.queued.len();
            state.queued.extend(events);
            if state.queued.len() > self.0.capacity {
                state.queued.truncate(before);
                return Err(Refused::Full);
            }
            if state.queued.len() == before {
                return Ok(());
            }
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Closes the queue: later pushes are refused, a waiting taker is woken and then gets
    /// `None`.
    pub(crate) fn close(&self) {
        if let Some(waker) = self.0.close() {
            waker.wake();
        }
    }
}

/// The taking half, held by the session.
#[derive(Debug)]
pub(crate) struct QueueReceiver {
    shared: Arc<Shared>,
    /// Events moved out of the shared queue in one go, taken from here without a lock.
    taken: VecDeque<Queued>,
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
                Some(waker) if waker.will_wake(cx.waker()) => {}
                waker => *waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        std::mem::swap(&mut state.queued, &mut self.taken);
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
        }
        self.take_local()
    }

    fn take_local(&mut self) -> Option<Queued> {
        let event = self.taken.pop_front();
        if event.is_none() && self.taken.capacity() > KEEP_CAPACITY {
            self.taken = VecDeque::new();
        }
        event
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
    fn a_queue_entry_stays_two_words() {
        // Every event of every subscriber passes through one: an entry that grows costs
        // memory and copying per delivery.
        assert!(std::mem::size_of::<Queued>() <= 16);
    }

    #[test]
    fn events_come_out_in_the_order_they_were_pushed_across_batches() {
        let (tx, mut rx) = bounded(10);
        tx.push_all((0..3).map(event)).unwrap();
        assert!(is(rx.try_next(), 0));
        tx.push_all((3..5).map(event)).unwrap();
        for n in 1..5 {
            assert!(is(rx.try_next(), n), "event {n}");
        }
        assert!(rx.try_next().is_none());
    }

    #[test]
    fn a_batch_that_would_pass_the_bound_is_refused_whole() {
        let (tx, mut rx) = bounded(4);
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
        let (tx, mut rx) = bounded(100);
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
        let (tx, mut rx) = bounded(10);
        tx.push_all((0..3).map(event)).unwrap();
        tx.close();
        assert_eq!(tx.push_all((3..4).map(event)), Err(Refused::Closed));
        assert!(rx.try_next().is_none());
    }

    #[test]
    fn dropping_the_taker_closes_the_queue() {
        let (tx, rx) = bounded(10);
        drop(rx);
        assert_eq!(tx.push_all((0..1).map(event)), Err(Refused::Closed));
    }

    #[test]
    fn a_burst_does_not_stay_allocated_once_taken() {
        let (tx, mut rx) = bounded(10_000);
        tx.push_all((0..5_000).map(event)).unwrap();
        while rx.try_next().is_some() {}
        assert!(rx.taken.capacity() <= KEEP_CAPACITY);
        assert!(rx.shared.lock().queued.capacity() <= KEEP_CAPACITY);
    }
}
