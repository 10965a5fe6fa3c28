//! The write lane: one task per connection worker that writes channel messages to the
//! connections of its worker that have nothing else to do.
//!
//! A connection's own task is the right place for everything a client asks, but it is an
//! expensive way to pass on a message to a client that only listens: each batch of
//! messages cost that task a wake-up from the room's thread, a turn through the worker's
//! run queue and a poll of its `select!` over six sources (timers and the socket's
//! readiness included), about 5 µs besides the `write` itself. In a room of 1,000, the
//! last follower waits for 1,000 of those (scenario 3 of docs/performance.md).
//!
//! So a connection that has nothing of its own in progress (logged in, no post being
//! stored, nothing left to write) *lends* its [`Session`] to its worker's lane (a
//! [`Slot`] holds it) and waits for its client and its timers only. The session's queue
//! then wakes the slot instead of the task: the room's thread adds the slot to the lane's
//! list, and the lane goes down that list, writing whatever each session has queued,
//! channel messages only, in one `write`, until the session has nothing more: a pass over
//! the followers like a bare writer's (the floor in docs/performance.md).
//!
//! Only one side writes to the socket at a time: the lane while the session is lent, the
//! task once it has it back. The task takes it back as soon as it wakes for any reason
//! (a frame from the client, a timer, shutdown), before it does anything. The lane gives
//! it back, and wakes the task, when it meets what it does not write itself: an event
//! that is not a channel message (presence, typing, a private message, a disconnection),
//! a socket that does not take everything at once (the task then writes the rest within
//! `Limits::write_timeout`, as always), or the session's end. What it took is handed back
//! in order: the unwritten bytes first, then the event.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use bytes::BytesMut;
use chat_core::{Engine, Event, Session};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::shared_frame::SharedMessageFrame;
use crate::wire::{Writer, FLUSH_AT};

/// Sessions the lane serves before it lets the other tasks of its worker run: the
/// connection that posts the next message among them.
const SERVE_BEFORE_YIELD: usize = 64;
/// Most events one session gets in one write before the lane serves the next one.
const EVENTS_PER_SERVE: usize = 256;

/// One worker's lane: the slots whose sessions have something queued.
pub(crate) struct Lane {
    ready: Mutex<Vec<Arc<Slot>>>,
    wake: Notify,
}

thread_local! {
    static LANE: RefCell<Option<Arc<Lane>>> = const { RefCell::new(None) };
}

/// A new slot in this worker's lane, starting the lane with the first one. `None` off
/// the engine's connection workers (a task the engine runs elsewhere while it shuts
/// down): such a connection keeps its session.
pub(crate) fn slot_here() -> Option<Arc<Slot>> {
    if !Engine::on_connection_worker() {
        return None;
    }
    let lane = LANE
        .try_with(|lane| {
            lane.borrow_mut()
                .get_or_insert_with(|| {
                    let lane = Arc::new(Lane {
                        ready: Mutex::new(Vec::new()),
                        wake: Notify::new(),
                    });
                    tokio::task::spawn_local(run(lane.clone()));
                    lane
                })
                .clone()
        })
        .ok()?;
    Some(Arc::new(Slot {
        lane,
        state: Mutex::new(SlotState::default()),
    }))
}

/// The lane's task: serves the slots woken since its last pass, in the order they were
/// woken, for as long as the worker runs.
async fn run(lane: Arc<Lane>) {
    let mut pass = Vec::new();
    loop {
        lane.wake.notified().await;
        std::mem::swap(&mut *lock(&lane.ready), &mut pass);
        for (served, slot) in pass.drain(..).enumerate() {
            slot.serve();
            if (served + 1) % SERVE_BEFORE_YIELD == 0 {
                tokio::task::yield_now().await;
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover rather than propagate.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One connection's place in its worker's lane.
pub(crate) struct Slot {
    lane: Arc<Lane>,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    /// The session and the socket, while lent.
    lent: Option<Lent>,
    /// Set when the lane gives the session back: what the task must do first.
    returned: Option<Returned>,
    /// The task, waiting for the session to come back.
    task: Option<Waker>,
}

struct Lent {
    session: Session,
    stream: Arc<TcpStream>,
}

/// What the lane leaves the task when it gives the session back, in the order the task
/// must take it: the bytes first, then the event.
pub(crate) struct Returned {
    /// Frames the socket did not take at once.
    pub(crate) unwritten: BytesMut,
    /// What the lane took from the session and does not write itself: an event, or
    /// `None` for the session's end.
    pub(crate) event: Option<Option<Event>>,
    /// The socket failed: the connection is gone.
    pub(crate) failed: bool,
}

impl Slot {
    /// Lends the session in `session` to the lane (leaving `None`), unless it has an event
    /// queued already: then it stays, and the event (`None`: the session ended) is for
    /// the task to handle. Whether it lent one.
    pub(crate) fn lend(
        self: &Arc<Self>,
        session: &mut Option<Session>,
        stream: &Arc<TcpStream>,
    ) -> Result<bool, Option<Event>> {
        let Some(ready) = session.as_mut() else {
            return Ok(false);
        };
        let waker = Waker::from(self.clone());
        if let Poll::Ready(event) = ready.poll_next_event(&mut Context::from_waker(&waker)) {
            return Err(event);
        }
        // From here on the session's queue wakes this slot, not the task.
        let mut state = lock(&self.state);
        state.lent = session.take().map(|session| Lent {
            session,
            stream: stream.clone(),
        });
        Ok(true)
    }

    /// Resolves once the lane has given the session back.
    pub(crate) fn poll_returned(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.state);
        if state.returned.is_some() {
            return Poll::Ready(());
        }
        match &mut state.task {
            Some(task) if task.will_wake(cx.waker()) => {}
            task => *task = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Takes the session back (if lent), with what the lane left for the task if it gave
    /// the session back itself.
    pub(crate) fn reclaim(&self) -> Option<(Session, Option<Returned>)> {
        let mut state = lock(&self.state);
        let lent = state.lent.take()?;
        state.task = None;
        Some((lent.session, state.returned.take()))
    }

    /// Writes what the lent session has queued, or gives the session back.
    fn serve(self: &Arc<Self>) {
        let mut state = lock(&self.state);
        if state.returned.is_some() {
            return;
        }
        let Some(lent) = &mut state.lent else {
            return;
        };
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let mut out = Writer::new(&lent.stream);
        let mut handed_back = None;
        let mut events = 0;
        let mut waiting = false;
        while events < EVENTS_PER_SERVE && out.pending() < FLUSH_AT {
            match lent.session.poll_next_event(&mut cx) {
                // Registered: the session's queue wakes this slot for the next batch.
                Poll::Pending => {
                    waiting = true;
                    break;
                }
                Poll::Ready(Some(Event::Posted(message))) => match SharedMessageFrame::of(&message)
                {
                    Some(shared) => out.text(shared.event()),
                    None => {
                        handed_back = Some(Some(Event::Posted(message)));
                        break;
                    }
                },
                Poll::Ready(other) => {
                    handed_back = Some(other);
                    break;
                }
            }
            events += 1;
        }
        let written = out.write_now();
        if handed_back.is_none() && matches!(written, Ok(true)) {
            if !waiting {
                // Stopped with events left: their wake-up was spent, so come back.
                drop(state);
                self.wake_by_ref();
            }
            return;
        }
        state.returned = Some(Returned {
            unwritten: out.take_pending(),
            event: handed_back,
            failed: written.is_err(),
        });
        if let Some(task) = state.task.take() {
            drop(state);
            task.wake();
        }
    }
}

impl Wake for Slot {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    /// Called by the room's thread when the lent session's queue gets events.
    fn wake_by_ref(self: &Arc<Self>) {
        lock(&self.lane.ready).push(self.clone());
        self.lane.wake.notify_one();
    }
}

/// Takes a lent session back when its connection's task ends without doing so (it was
/// dropped while waiting): the session's queue holds the slot's waker, and the slot
/// would hold the session.
pub(crate) struct Lending(pub(crate) Arc<Slot>);

impl Drop for Lending {
    fn drop(&mut self) {
        drop(self.0.reclaim());
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::time::Duration;

    use actix_http::ws::Parser;
    use bytes::BytesMut;
    use chat_core::{Engine, Event, Limits, Login, Rate, Session};
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpSocket, TcpStream};
    use tokio::sync::oneshot;
    use tokio::time::timeout;

    use super::{slot_here, Slot};

    const WAIT: Duration = Duration::from_secs(10);

    fn limits() -> Limits {
        Limits {
            message_rate: Rate {
                burst: 100_000,
                per_second: 100_000.0,
            },
            max_message_bytes: 60_000,
            session_queue: 10_000,
            ..Limits::default()
        }
    }

    /// Alice in `general`, and Bob in it too with nothing queued.
    async fn alice_and_bob(engine: &Engine) -> (Session, Session) {
        let alice = engine
            .connect(Login::Name("alice".into()))
            .await
            .expect("alice");
        alice.create_channel("general").await.expect("create");
        alice.join("general", None).await.expect("alice joins");
        let mut bob = engine
            .connect(Login::Name("bob".into()))
            .await
            .expect("bob");
        bob.join("general", None).await.expect("bob joins");
        // Presence from the joins may still be on its way: wait until it stops coming.
        while let Ok(Some(_)) = timeout(Duration::from_millis(200), bob.next_event()).await {}
        (alice, bob)
    }

    /// Both ends of a loopback connection; `receive_buffer` sets the client's.
    async fn socket_pair(receive_buffer: Option<u32>) -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size).expect("buffer size");
        }
        let client = socket
            .connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (client, server)
    }

    /// Lends `session` to the lane of an engine worker, as a connection task would.
    async fn lend(engine: &Engine, session: Session, stream: TcpStream) -> Arc<Slot> {
        let (done, slot) = oneshot::channel();
        engine
            .spawn(async move {
                let slot = slot_here().expect("a connection worker has a lane");
                let lent = slot.lend(&mut Some(session), &Arc::new(stream));
                assert!(matches!(lent, Ok(true)), "the session had an event queued");
                let _ = done.send(slot);
            })
            .expect("spawn");
        timeout(WAIT, slot).await.expect("in time").expect("lent")
    }

    /// The texts of the `message` frames in `bytes`, and how many bytes they took.
    fn message_texts(bytes: &[u8]) -> (Vec<String>, usize) {
        let mut buf = BytesMut::from(bytes);
        let mut texts = Vec::new();
        let mut used = 0;
        while let Ok(Some((_, _, payload))) = Parser::parse(&mut buf, false, usize::MAX)
            .map(|f| f.map(|(fin, op, p)| (fin, op, p.unwrap_or_default())))
        {
            used = bytes.len() - buf.len();
            let frame: serde_json::Value = serde_json::from_slice(&payload).expect("json");
            assert_eq!(frame["type"], "message", "{frame}");
            texts.push(frame["message"]["text"].as_str().expect("text").to_owned());
        }
        (texts, used)
    }

    async fn wait_returned(slot: &Slot) {
        timeout(WAIT, poll_fn(|cx| slot.poll_returned(cx)))
            .await
            .expect("the lane gives the session back");
    }

    #[tokio::test]
    async fn the_lane_writes_channel_messages_and_gives_back_the_first_other_event() {
        let engine = Engine::start(limits()).expect("engine");
        let (alice, bob) = alice_and_bob(&engine).await;
        let (mut client, server) = socket_pair(None).await;
        let slot = lend(&engine, bob, server).await;

        for text in ["one", "two"] {
            alice.post("general", text).await.expect("post");
        }
        // Written by the lane while the session is still lent: no task is involved.
        let mut read = Vec::new();
        while message_texts(&read).0.len() < 2 {
            let mut chunk = [0u8; 4096];
            let n = timeout(WAIT, client.read(&mut chunk))
                .await
                .expect("in time");
            read.extend_from_slice(&chunk[..n.expect("read")]);
        }
        assert_eq!(
            message_texts(&read),
            (vec!["one".into(), "two".into()], read.len())
        );
        assert!(lock(&slot.state).lent.is_some(), "still lent");

        // Carol's arrival is not a channel message: the lane hands it back, in order.
        let carol = engine
            .connect(Login::Name("carol".into()))
            .await
            .expect("carol");
        carol.join("general", None).await.expect("carol joins");
        alice.post("general", "three").await.expect("post");
        wait_returned(&slot).await;
        let (mut bob, returned) = slot.reclaim().expect("lent");
        let returned = returned.expect("given back by the lane");
        assert!(returned.unwritten.is_empty() && !returned.failed);
        match returned.event {
            Some(Some(Event::Presence { user, .. })) => assert_eq!(&*user.name, "carol"),
            other => panic!("expected carol's presence, got {other:?}"),
        }
        // What came after it is still the session's, for the task to write.
        match bob.try_next_event() {
            Some(Event::Posted(message)) => assert_eq!(message.text, "three"),
            other => panic!("expected the message after, got {other:?}"),
        }
        assert!(slot.reclaim().is_none(), "taken back once");
        engine.shutdown().await;
    }

    #[tokio::test]
    async fn bytes_the_socket_does_not_take_come_back_ahead_of_everything_else() {
        let engine = Engine::start(limits()).expect("engine");
        let (alice, bob) = alice_and_bob(&engine).await;
        let (mut client, server) = socket_pair(Some(4096)).await;
        let slot = lend(&engine, bob, server).await;

        // Far more than the socket buffers hold while the client does not read.
        let big = "z".repeat(50_000);
        let texts: Vec<String> = (0..200).map(|n| format!("{n} {big}")).collect();
        for text in &texts {
            alice.post("general", text).await.expect("post");
        }
        wait_returned(&slot).await;
        let (mut bob, returned) = slot.reclaim().expect("lent");
        let returned = returned.expect("given back by the lane");
        assert!(
            !returned.unwritten.is_empty(),
            "a write was cut short: {:?} {}",
            returned.event,
            returned.failed
        );
        assert!(returned.event.is_none() && !returned.failed);

        // What the client reads, then the unwritten bytes, then the session's queue: every
        // message once, in order.
        let mut read = Vec::new();
        loop {
            let mut chunk = vec![0u8; 64 * 1024];
            match timeout(Duration::from_millis(300), client.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => read.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        read.extend_from_slice(&returned.unwritten);
        let (mut got, used) = message_texts(&read);
        assert_eq!(used, read.len(), "the bytes end with a whole frame");
        while let Some(event) = bob.try_next_event() {
            match event {
                Event::Posted(message) => got.push(message.text.clone()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got.len(), texts.len());
        assert!(got == texts, "every message once, in order");
        engine.shutdown().await;
    }

    #[tokio::test]
    async fn off_the_engine_workers_there_is_no_lane() {
        assert!(slot_here().is_none());
    }

    use super::lock;
}
