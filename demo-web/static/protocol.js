// protocol.js — the only module that speaks the Flack WebSocket protocol (version 3,
// docs/protocol.md). It owns the socket: connecting, the hello check, login, requests
// matched to replies by id, server events, and reconnecting with exponential backoff and
// jitter. After a reconnect it logs in again with the resume token and re-joins every
// followed room with `after` = the last message id it has seen there, so the UI gets
// exactly what it missed; messages are de-duplicated by id before the UI sees them.
// It never touches the DOM.

export const PROTOCOL_VERSION = 4;

/** Members a page asks for: what a join brings too. */
export const MEMBER_PAGE = 100;

/** An error reply from the server (or a local one: `offline`, `disconnected`, `timeout`). */
export class ChatError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15000;
const REQUEST_TIMEOUT_MS = 15000;

/**
 * A chat connection that survives disconnections.
 *
 * Events (listen with `addEventListener`, payload in `event.detail`):
 * - `status`   {state: "connecting" | "online" | "reconnecting", attempt, delayMs}
 * - `session`  {user, token, newUser, resumed}: logged in (again)
 * - `loggedout` {code, message}: the token was refused; ask for a name again
 * - `reset`    {epoch, previous}: the server's store is not the one this page knew (its
 *              `hello` epoch changed): ids, rooms and the token were dropped, and the
 *              client logs in again with the same display name
 * - `joined`   the join result {room, messages, gap, deleted, last_id, members (the first
 *              page), members_next, member_count, online_count, large, resumed}
 * - `message`, `deleted`, `edited`, `reactions`, `channel_created`, `typing`: server
 *              events as sent (a join's result also carries `updated`)
 * - `presence` {room, changes: [{user, change}], members, online}: one tick's changes
 * - `counts`   {room, members, online}: a large room's counts (it sends no `presence`)
 * - `disconnected` {code, message}: the server closed the session (it reconnects anyway)
 */
export class ChatClient extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.state = "idle";
    this.user = null;
    this.token = null;
    this.nextId = 1;
    this.pending = new Map(); // request id -> {resolve, reject, timer}
    this.followed = new Map(); // room -> last message id seen (0 when none)
    this.epoch = null; // the server store's id, from `hello` (the page may set a saved one)
    this.attempt = 0;
    this.retryTimer = null;
    this.stopped = false;
  }

  /**
   * Opens the connection and logs in with `login` = {name} or {token} (a token may come
   * with the `name` it had, used instead when the server's epoch is not `this.epoch`).
   */
  start(login) {
    this.stopped = false;
    this.pendingLogin = login;
    this.open();
    return new Promise((resolve, reject) => {
      this.firstLogin = { resolve, reject };
    });
  }

  /**
   * Logs out: tells the server (which revokes the token, frees the name at once and closes
   * every tab of this user), closes for good and forgets the user, token and followed
   * rooms, so that the next `start` is a new login. Offline, it forgets locally only: the
   * server then keeps the name for its usual hold.
   */
  logout() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.state === "online") {
      // Sent before the close frame, which follows it on the same socket: the server reads
      // it first. No answer is awaited: this page is done with the connection either way.
      this.ws.send(JSON.stringify({ type: "logout" }));
    }
    this.stop();
    this.user = null;
    this.token = null;
    this.pendingLogin = null;
    this.followed.clear();
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new ChatError("logged_out", "Logged out."));
    }
    this.pending.clear();
    this.setState("idle");
  }

  /** Closes for good (no reconnect). */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(1000, "bye");
  }

  /** Sends one request and resolves with its `result` (rejects with a ChatError). */
  request(type, fields = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.state !== "online") {
      return Promise.reject(new ChatError("offline", "Not connected: reconnecting…"));
    }
    return this.send(type, fields);
  }

  /** Joins (follows) a room and resolves with the join result. */
  async join(room) {
    const after = this.followed.get(room);
    const result = await this.request("join", after ? { room, after } : { room });
    this.noteJoin(result.room || room, result);
    return result;
  }

  /**
   * One page of a joined room's members after the cursor `after` (from the start without
   * it): resolves with {members, next, member_count, online_count}.
   */
  members(room, after = null, limit = MEMBER_PAGE) {
    return this.request("members", after ? { room, after, limit } : { room, limit });
  }

  async leave(room) {
    this.followed.delete(room);
    return this.request("leave", { room });
  }

  /** Remembers that a room is followed (e.g. a private room the server follows for us). */
  follow(room, lastId = 0) {
    if (!this.followed.has(room)) this.followed.set(room, lastId);
  }

  // -- internals ---------------------------------------------------------------------

  send(type, fields) {
    const id = this.nextId++;
    const frame = JSON.stringify({ type, id, ...fields });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ChatError("timeout", "The server did not answer in time."));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(frame);
    });
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit("status", { state, attempt: this.attempt, ...extra });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  open() {
    clearTimeout(this.retryTimer);
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => this.onFrame(ws, ev.data);
    ws.onclose = () => this.onClose(ws);
    // An error is always followed by a close; the close handles it.
    ws.onerror = () => {};
  }

  onClose(ws) {
    if (ws !== this.ws) return;
    this.ws = null;
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new ChatError("disconnected", "The connection was lost."));
    }
    this.pending.clear();
    if (this.stopped) {
      this.setState("idle");
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    // Exponential backoff with full jitter on the upper half: 0.5–1 × min(max, base·2^n).
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.attempt += 1;
    this.setState("reconnecting", { delayMs });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delayMs);
  }

  onFrame(ws, data) {
    if (ws !== this.ws || typeof data !== "string") return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== "string") return;
    switch (frame.type) {
      case "hello":
        this.onHello(frame);
        return;
      case "ok":
      case "error":
        this.onReply(frame);
        return;
      case "message":
        this.onMessage(frame);
        return;
      case "disconnected":
        if (frame.code === "logged_out") {
          // This user logged out in another tab (this one's own logout has stopped it).
          if (this.stopped) return;
          this.logout();
          this.emit("loggedout", { code: frame.code, message: "You logged out (in another tab or window)." });
          return;
        }
        this.emit("disconnected", frame);
        return;
      case "gap":
        // Messages of a followed room were lost to us: join it again, which brings the
        // whole history to show instead.
        if (typeof frame.room === "string" && this.followed.has(frame.room)) {
          this.rejoin(frame.room);
        }
        return;
      default:
        this.emit(frame.type, frame);
    }
  }

  onReply(frame) {
    const waiting = this.pending.get(frame.id);
    if (!waiting) return;
    this.pending.delete(frame.id);
    clearTimeout(waiting.timer);
    if (frame.type === "ok") waiting.resolve(frame.result || {});
    else waiting.reject(new ChatError(frame.code, frame.message));
  }

  onMessage(frame) {
    const message = frame.message;
    if (!message || typeof message.id !== "number") return;
    const room = frame.room || message.room;
    const last = this.followed.get(room);
    if (last !== undefined && message.id <= last) return; // seen already (dedupe by id)
    this.followed.set(room, message.id);
    this.emit("message", { room, message });
  }

  noteJoin(room, result) {
    const ids = (result.messages || []).map((m) => m.id);
    const last = Math.max(this.followed.get(room) || 0, result.last_id || 0, ...ids);
    this.followed.set(room, last);
  }

  async onHello(frame) {
    this.emit("hello", frame);
    if (frame.protocol !== PROTOCOL_VERSION) {
      this.stop();
      this.emit("loggedout", {
        code: "protocol",
        message: `The server speaks protocol ${frame.protocol}; this page needs ${PROTOCOL_VERSION}. Reload the page.`,
      });
      return;
    }
    this.noteEpoch(typeof frame.epoch === "string" ? frame.epoch : null);
    // A socket that is open but not logged in yet: only login may be sent.
    this.state = "authenticating";
    const resumed = !this.pendingLogin && Boolean(this.token);
    const login = loginFrame(this.pendingLogin || { token: this.token });
    let result;
    try {
      result = await this.send("login", login);
    } catch (err) {
      if (err.code === "disconnected" || err.code === "timeout") return; // retried on close
      const afterReset = this.pendingLogin && this.pendingLogin.afterReset;
      this.pendingLogin = null;
      if (this.firstLogin) {
        this.firstLogin.reject(err);
        this.firstLogin = null;
      } else if (afterReset && err.code === "name_taken") {
        this.emit("loggedout", {
          code: err.code,
          message:
            `The server was restarted without its saved data, and someone else has taken ` +
            `the name “${login.name}” since. Please pick a name.`,
        });
      } else {
        this.emit("loggedout", { code: err.code, message: err.message });
      }
      this.stop();
      return;
    }
    this.pendingLogin = null;
    this.user = result.user;
    this.token = result.token;
    this.attempt = 0;
    this.setState("online");
    const session = {
      user: result.user,
      token: result.token,
      newUser: result.new_user,
      mentionKey: result.mention_key || null,
      resumed,
    };
    if (this.firstLogin) {
      this.firstLogin.resolve(session);
      this.firstLogin = null;
    }
    this.emit("session", session);
    if (resumed) await this.rejoinAll();
  }

  /**
   * Remembers the server's epoch. When it is not the one seen before, the server's store
   * was reset: message ids, followed rooms and the token mean nothing there, so they are
   * dropped and the next login uses the display name instead.
   */
  noteEpoch(epoch) {
    if (!epoch) return;
    const previous = this.epoch;
    this.epoch = epoch;
    if (!previous || previous === epoch) return;
    this.followed.clear();
    this.token = null;
    const name = (this.pendingLogin && this.pendingLogin.name) || (this.user && this.user.name);
    this.pendingLogin = name ? { name, afterReset: true } : null;
    this.emit("reset", { epoch, previous });
  }

  /** After a reconnect: join each followed room again from the last id seen. */
  async rejoinAll() {
    for (const room of [...this.followed.keys()]) {
      if ((await this.rejoin(room)) === "offline") return;
    }
  }

  /**
   * Joins `room` again from the last id seen and emits what it brings: the missed
   * messages, or (`gap`) the whole history to show instead.
   */
  async rejoin(room) {
    const after = this.followed.get(room);
    try {
      const result = await this.send("join", after ? { room, after } : { room });
      if (result.gap) this.followed.set(room, 0);
      const fresh = result.gap ? result.messages : result.messages.filter((m) => m.id > after);
      this.noteJoin(room, result);
      this.emit("joined", { ...result, room, messages: fresh, resumed: true });
      return "joined";
    } catch (err) {
      if (err.code === "disconnected" || err.code === "timeout") return "offline";
      this.followed.delete(room);
      return "left";
    }
  }
}

/**
 * Resolves with the `hello` frame of a short-lived connection to `url` (closed once read),
 * or null when none comes: what the server announces before anyone logs in.
 */
export function readHello(url) {
  return new Promise((resolve) => {
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      resolve(null);
      return;
    }
    ws.onmessage = (ev) => {
      let frame = null;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        // Not a hello: nothing to report.
      }
      ws.close(1000, "hello read");
      resolve(frame && frame.type === "hello" ? frame : null);
    };
    ws.onclose = () => resolve(null);
  });
}

/** The `login` request's fields for `login`: a token, or else a name. */
function loginFrame(login) {
  if (!login) return {};
  return login.token ? { token: login.token } : { name: login.name };
}
