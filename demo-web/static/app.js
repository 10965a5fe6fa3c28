// app.js — the Flack user interface: login, the room lists, the message pane, the
// composer, members, typing and unread counts. It keeps what the page shows in `state`
// and renders it; every byte of the protocol goes through protocol.js.
//
// Members come a page at a time (the join brings the first; scrolling to the end of the
// list, or "Show more", loads the next), in the server's order: online first, then by
// name. A small room's `presence` batches keep the loaded part live; a large room sends
// only `counts`, and its list is what was loaded (opening the room again reloads it).
//
// Rule: text that came from a user (names, messages, channel names) is only ever set with
// `textContent` or `setAttribute`, never parsed as HTML.

import { ChatClient, readHello } from "/protocol.js";
import { applyUpdated, decorateMessage, installEdits, roomChanged } from "/edits.js";
import { clearSent, fileList, installFiles, returnFiles, takeReadyFiles, uploadsBusy } from "/files.js";
import {
  askToNotify, linkify, mentionsMe, messageItems, notifyMention, setNameLimit, showUnreadInTitle,
} from "/page.js";

const TOKEN_KEY = "flack.token";
const NAME_KEY = "flack.name";
const EPOCH_KEY = "flack.epoch";
const ROOM_KEY = "flack.room";
const TYPING_SEND_EVERY_MS = 2000;
const TYPING_SHOW_MS = 3000;
const MIN_SHOWN = 100;

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  mentionKey: null, // the key of my name: a message mentions me when its `mentions` holds it
  unseen: 0, // messages that arrived in the open room while the tab was hidden
  channels: new Map(), // name -> CHANNEL
  rooms: new Map(), // room -> RoomView
  current: null,
  typingSentAt: new Map(), // room -> ms
  started: false,
};

const WS_URL = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
const client = new ChatClient(WS_URL);

/** What the page knows of one room. */
function room(name) {
  let r = state.rooms.get(name);
  if (!r) {
    r = {
      name,
      messages: new Map(), // id -> MSG
      members: new Map(), // user id -> {user, online}: the pages loaded so far
      membersNext: null, // the cursor of the next page, null when all are loaded
      memberCount: 0,
      onlineCount: 0,
      large: false, // the room sends counts, not each member's presence
      loadingMembers: false,
      unread: 0,
      mentions: 0, // of the unread, how many mention me
      joined: false,
      typing: new Map(), // user name -> timer
      keep: MIN_SHOWN,
    };
    state.rooms.set(name, r);
  }
  return r;
}

const isDirect = (name) => name.startsWith("@");

// -- small DOM helpers (text only) -------------------------------------------------------

function el(tag, { text, cls, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const child of children) if (child) node.append(child);
  return node;
}

function showError(id, message) {
  const node = $(id);
  node.textContent = message;
  node.hidden = !message;
}

const AVATAR_HUES = [4, 215, 145, 28, 262, 190, 330, 290];

function hueOf(name) {
  // FNV-1a over the code points, so that similar names still get different colours.
  let h = 0x811c9dc5;
  for (const ch of name.toLowerCase()) h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0; // fold the better-mixed high bits into the low ones
  return AVATAR_HUES[h % AVATAR_HUES.length];
}

function avatar(name) {
  const node = el("span", { cls: "avatar", text: [...name][0]?.toUpperCase() || "?", attrs: { "aria-hidden": "true" } });
  node.style.setProperty("--hue", hueOf(name));
  return node;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayTimeFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

function timestamp(ms) {
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  return el("time", {
    cls: "time",
    text: (today ? timeFormat : dayTimeFormat).format(date),
    attrs: { datetime: date.toISOString(), title: fullFormat.format(date), "data-testid": "message-time" },
  });
}

// -- screens -----------------------------------------------------------------------------

function showLogin(message = "") {
  // The login screen is the state now: no reconnect banner over it.
  $("banner").hidden = true;
  $("app").hidden = true;
  $("login").hidden = false;
  showError("login-error", message);
  $("login-name").focus();
  // The field takes no more than the server does (before any session: a hello of its own).
  readHello(WS_URL).then((hello) => setNameLimit($("login-name"), hello?.max_name_chars));
}

function showApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = state.me.name;
}

async function login(loginWith) {
  try {
    await client.start(loginWith);
  } catch (err) {
    if (loginWith.token) {
      localStorage.removeItem(TOKEN_KEY);
      // The same name again, if it is still free.
      if (loginWith.name) return login({ name: loginWith.name, retried: true });
      showLogin("Welcome back! Your old session has expired; please pick a name again.");
    } else if (err.code === "name_taken" && loginWith.retried) {
      showLogin(
        `Welcome back! Your old session has expired, and someone else has taken the name ` +
          `“${loginWith.name}” since. Please pick a name.`,
      );
    } else if (err.code === "name_taken") {
      showLogin(`The name “${loginWith.name}” is taken. Please pick another one.`);
    } else {
      showLogin(err.message);
    }
  }
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const name = $("login-name").value.trim();
  if (!name) {
    showError("login-error", "Please enter a display name.");
    return;
  }
  showError("login-error", "");
  askToNotify();
  login({ name });
});

// -- session lifecycle -------------------------------------------------------------------

client.addEventListener("session", async ({ detail }) => {
  state.me = detail.user;
  state.mentionKey = detail.mentionKey;
  localStorage.setItem(TOKEN_KEY, detail.token);
  localStorage.setItem(NAME_KEY, detail.user.name);
  if (client.epoch) localStorage.setItem(EPOCH_KEY, client.epoch);
  showApp();
  await refreshChannels();
  if (!state.started) {
    state.started = true;
    const last = localStorage.getItem(ROOM_KEY);
    if (last && (isDirect(last) || state.channels.has(last))) await openRoom(last);
    else renderRoom();
  }
});

// The server's store was reset (a restart without saved data): nothing this page knew of
// it holds. Forget the channels, rooms and messages shown; the client logs in again with
// the same name, and the session handler opens the last room again if it still exists.
client.addEventListener("reset", ({ detail }) => {
  localStorage.setItem(EPOCH_KEY, detail.epoch);
  localStorage.removeItem(TOKEN_KEY);
  state.channels.clear();
  state.rooms.clear();
  state.current = null;
  state.started = false;
  resetNotice = "The server was restarted without its saved messages; you are logged in again.";
  renderSidebar();
  renderRoom();
});

client.addEventListener("hello", ({ detail }) => setNameLimit($("login-name"), detail.max_name_chars));

client.addEventListener("loggedout", ({ detail }) => {
  localStorage.removeItem(TOKEN_KEY);
  state.started = false;
  showLogin(detail.message || "Please log in again.");
});

let goingAway = "";
let resetNotice = "";
client.addEventListener("disconnected", ({ detail }) => {
  goingAway = detail.code === "shutting_down" ? "The server is restarting." : "The connection was too slow.";
});

client.addEventListener("status", ({ detail }) => {
  const banner = $("banner");
  if (detail.state === "reconnecting") {
    banner.textContent = `${goingAway || "Connection lost."} Reconnecting…`;
    banner.hidden = false;
  } else if (detail.state === "online") {
    goingAway = "";
    banner.hidden = !resetNotice;
    banner.textContent = resetNotice;
    if (resetNotice) {
      resetNotice = "";
      setTimeout(() => {
        if (client.state === "online") banner.hidden = true;
      }, 8000);
    }
  }
});

// -- channels ----------------------------------------------------------------------------

async function refreshChannels() {
  try {
    const { channels } = await client.request("list_channels");
    // The server's list is the truth: a channel it no longer has is not shown.
    state.channels = new Map(channels.map((channel) => [channel.name, channel]));
  } catch {
    // Offline: the list is refreshed on the next login.
  }
  renderSidebar();
}

client.addEventListener("channel_created", ({ detail }) => {
  state.channels.set(detail.channel.name, detail.channel);
  renderSidebar();
});

$("create-channel-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("new-channel-name");
  const name = input.value.trim().replace(/^#/, "");
  if (!name) {
    showError("create-channel-error", "Type a name for the new channel.");
    return;
  }
  try {
    const { channel } = await client.request("create_channel", { name });
    state.channels.set(channel.name, channel);
    input.value = "";
    showError("create-channel-error", "");
    renderSidebar();
    await openRoom(channel.name);
  } catch (err) {
    const messages = {
      channel_exists: `A channel named “${name}” already exists.`,
      invalid_channel_name: `“${name}” can't be a channel name: ${err.message}`,
      rate_limited: "You are creating channels too fast; try again in a moment.",
    };
    showError("create-channel-error", messages[err.code] || err.message);
  }
});

$("new-channel-name").addEventListener("input", () => showError("create-channel-error", ""));

// -- rooms -------------------------------------------------------------------------------

async function openRoom(name) {
  state.current = name;
  localStorage.setItem(ROOM_KEY, name);
  const r = room(name);
  r.unread = 0;
  r.mentions = 0;
  document.body.classList.remove("sidebar-open");
  showError("composer-error", "");
  renderSidebar();
  renderRoom();
  if (!r.joined) {
    try {
      applyJoin(await client.join(name), false);
      r.joined = true;
    } catch (err) {
      showError("composer-error", err.code === "no_such_user" ? `There is no user ${name}.` : err.message);
    }
  }
  if (state.current === name) $("composer-input").focus();
}

function applyJoin(result, resumed) {
  const name = result.room;
  const r = room(name);
  // A join with `after` (the page already holds the room's earlier messages, e.g. a
  // private message that arrived before the room was opened) brings only the rest.
  if (result.gap) r.messages.clear();
  for (const m of result.messages || []) {
    if (resumed && name !== state.current && !r.messages.has(m.id) && m.author.id !== state.me.id) {
      r.unread += 1;
      if (mentionsMe(m, state.mentionKey)) r.mentions += 1;
    }
    r.messages.set(m.id, m);
  }
  for (const id of result.deleted || []) r.messages.delete(id);
  applyUpdated(name, result.updated);
  if (!resumed) r.keep = Math.max(MIN_SHOWN, (result.messages || []).length);
  trim(r);
  r.members = new Map((result.members || []).map((m) => [m.user.id, m]));
  r.membersNext = result.members_next || null;
  r.memberCount = result.member_count || r.members.size;
  r.onlineCount = result.online_count || 0;
  r.large = Boolean(result.large);
  r.joined = true;
  renderSidebar();
  if (name === state.current) renderRoom();
}

client.addEventListener("joined", ({ detail }) => applyJoin(detail, true));

function trim(r) {
  const extra = r.messages.size - r.keep;
  if (extra <= 0) return;
  const oldest = [...r.messages.keys()].sort((a, b) => a - b).slice(0, extra);
  for (const id of oldest) r.messages.delete(id);
}

client.addEventListener("message", ({ detail }) => {
  const { room: name, message } = detail;
  const r = room(name);
  if (r.messages.has(message.id)) return;
  r.messages.set(message.id, message);
  trim(r);
  clearTyping(r, message.author.name);
  const fromOther = message.author.id !== state.me?.id;
  if (name === state.current) {
    insertMessage(message);
    if (fromOther && document.hidden) state.unseen += 1;
  } else if (fromOther) {
    r.unread += 1;
    if (mentionsMe(message, state.mentionKey)) r.mentions += 1;
  }
  if (fromOther && mentionsMe(message, state.mentionKey)) notifyMention(roomTitle(name), message);
  renderSidebar();
});

client.addEventListener("deleted", ({ detail }) => {
  const r = state.rooms.get(detail.room);
  if (!r) return;
  r.messages.delete(detail.message_id);
  if (detail.room === state.current) renderMessages(false);
});

client.addEventListener("presence", ({ detail }) => {
  const r = state.rooms.get(detail.room);
  if (!r) return;
  r.memberCount = detail.members;
  r.onlineCount = detail.online;
  if (r.large) {
    // The room was large and is small again: the list missed what changed meanwhile.
    r.large = false;
    reloadMembers(r);
    return;
  }
  // Past the pages loaded so far a member comes with a later page, in its place.
  const last = r.membersNext ? lastLoaded(r) : null;
  for (const { user, change } of detail.changes || []) {
    const member = { user, online: change !== "offline" };
    const beyond = last !== null && last.user.id !== user.id && memberOrder(member, last) > 0;
    if (change === "left" || beyond) r.members.delete(user.id);
    else r.members.set(user.id, member);
    if (change === "offline" || change === "left") clearTyping(r, user.name);
  }
  if (detail.room === state.current) renderMembers();
});

client.addEventListener("counts", ({ detail }) => {
  const r = state.rooms.get(detail.room);
  if (!r) return;
  r.memberCount = detail.members;
  r.onlineCount = detail.online;
  r.large = true;
  if (detail.room === state.current) renderMemberCounts(r);
});

/** The server's order of members: online first, then by lower-cased name, then by id. */
function memberOrder(a, b) {
  if (a.online !== b.online) return a.online ? -1 : 1;
  const x = a.user.name.toLowerCase();
  const y = b.user.name.toLowerCase();
  if (x !== y) return x < y ? -1 : 1;
  return a.user.id - b.user.id;
}

/** The last member loaded so far, in the server's order (null when none is). */
function lastLoaded(r) {
  let last = null;
  for (const m of r.members.values()) if (!last || memberOrder(m, last) > 0) last = m;
  return last;
}

/** Loads the next page of `r`'s members, if any (one request at a time). */
async function loadMoreMembers(r) {
  if (!r.membersNext || r.loadingMembers) return;
  r.loadingMembers = true;
  try {
    const page = await client.members(r.name, r.membersNext);
    for (const m of page.members) r.members.set(m.user.id, m);
    r.membersNext = page.next || null;
    r.memberCount = page.member_count;
    r.onlineCount = page.online_count;
  } catch {
    // Offline, or the room was left: the next join brings the first page again.
  } finally {
    r.loadingMembers = false;
  }
  if (r.name === state.current) renderMembers();
}

/** Loads `r`'s first page of members again, replacing what was loaded. */
async function reloadMembers(r) {
  try {
    const page = await client.members(r.name);
    r.members = new Map(page.members.map((m) => [m.user.id, m]));
    r.membersNext = page.next || null;
    r.memberCount = page.member_count;
    r.onlineCount = page.online_count;
  } catch {
    return;
  }
  if (r.name === state.current) renderMembers();
}

client.addEventListener("typing", ({ detail }) => {
  if (detail.user.id === state.me?.id) return;
  const r = room(detail.room);
  clearTimeout(r.typing.get(detail.user.name));
  r.typing.set(detail.user.name, setTimeout(() => clearTyping(r, detail.user.name), TYPING_SHOW_MS));
  if (detail.room === state.current) renderTyping();
});

function clearTyping(r, name) {
  if (!r.typing.has(name)) return;
  clearTimeout(r.typing.get(name));
  r.typing.delete(name);
  if (r.name === state.current) renderTyping();
}

// -- composer ----------------------------------------------------------------------------

const input = $("composer-input");

input.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    $("composer").requestSubmit();
  }
});

input.addEventListener("input", () => {
  showError("composer-error", "");
  autoGrow();
  const name = state.current;
  if (!name || !input.value.trim() || client.state !== "online") return;
  const now = Date.now();
  if (now - (state.typingSentAt.get(name) || 0) < TYPING_SEND_EVERY_MS) return;
  state.typingSentAt.set(name, now);
  client.request("typing", { room: name }).catch(() => {});
});

function autoGrow() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  input.style.overflowY = input.scrollHeight > 160 ? "auto" : "hidden";
}

$("composer").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = state.current;
  const text = input.value;
  if (!name) return;
  if (uploadsBusy()) {
    showError("composer-error", "Wait until your files have finished uploading.");
    return;
  }
  const files = takeReadyFiles();
  if (!text.trim() && files.length === 0) return;
  // Files may go with no text; white space alone would only draw an empty line.
  const fields = files.length ? { room: name, text: text.trim() ? text : "", files } : { room: name, text };
  try {
    const { message } = await client.request("post", fields);
    if (input.value === text) input.value = "";
    clearSent(files);
    autoGrow();
    state.typingSentAt.delete(name);
    const r = room(name);
    if (!r.messages.has(message.id)) {
      r.messages.set(message.id, message);
      trim(r);
      if (name === state.current) insertMessage(message);
    }
  } catch (err) {
    returnFiles(files);
    const messages = {
      rate_limited: "You are sending too fast; wait a moment.",
      offline: "Not connected. Your message was not sent; it will stay here until you retry.",
      disconnected: "The connection dropped; your message may not have been sent.",
      no_such_file: "A file is no longer waiting to be sent (files wait an hour); remove it and attach it again.",
      too_many_files: "Too many files for one message.",
      too_large: "These files together are more than one message may carry.",
    };
    showError("composer-error", messages[err.code] || err.message);
  }
});

async function deleteMessage(name, id) {
  try {
    await client.request("delete", { room: name, message_id: id });
  } catch (err) {
    showError("composer-error", err.code === "not_author" ? "You can only delete your own messages." : err.message);
  }
}

installEdits({ client, state, room, input, composer: $("composer"), messageItem, showError });
installFiles({
  client,
  input,
  dropZone: document.querySelector(".conversation"),
  canAttach: () => Boolean(state.current),
  showError,
});

// -- rendering ---------------------------------------------------------------------------

function renderSidebar() {
  const channels = [...state.channels.keys()].sort((a, b) => a.localeCompare(b));
  renderRoomList($("channel-list"), channels, "channel", "#");
  $("no-channels").hidden = channels.length > 0;
  const dms = [...state.rooms.keys()].filter(isDirect).sort((a, b) => a.localeCompare(b));
  renderRoomList($("dm-list"), dms, "dm", "@");
  $("no-dms").hidden = dms.length > 0;
  let unread = state.unseen;
  for (const r of state.rooms.values()) unread += r.unread;
  showUnreadInTitle(unread);
}

// Updates the list in place: a room's button stays the same element for as long as the
// room is listed, so a keyboard user's focus on it survives every unread count that
// arrives (a replaced button would drop the focus to the page).
function renderRoomList(list, names, kind, sigil) {
  const shown = new Map([...list.children].map((li) => [li.firstElementChild.dataset.room, li]));
  names.forEach((name, i) => {
    const li = shown.get(name) || el("li", {}, roomButton(name, kind, sigil));
    showRoomState(li.firstElementChild, name);
    // Only a new or moved room is inserted; the others stay where they are.
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  while (list.children.length > names.length) list.lastElementChild.remove();
}

function roomButton(name, kind, sigil) {
  const label = kind === "dm" ? name.slice(1) : name;
  const button = el(
    "button",
    { cls: "room", attrs: { type: "button", "data-testid": kind, "data-room": name } },
    el("span", { cls: "sigil", text: sigil, attrs: { "aria-hidden": "true" } }),
    el("span", { cls: "room-name", text: label }),
  );
  button.addEventListener("click", () => openRoom(name));
  return button;
}

// The room's unread badge and whether it is the one open.
function showRoomState(button, name) {
  const r = state.rooms.get(name);
  button.querySelector("[data-testid=unread]")?.remove();
  button.classList.toggle("has-unread", Boolean(r && r.unread > 0));
  if (r && r.unread > 0) {
    const label = r.mentions > 0 ? `${r.unread} unread, ${r.mentions} mentioning you` : `${r.unread} unread`;
    const text = `${r.mentions > 0 ? "@ " : ""}${r.unread > 99 ? "99+" : r.unread}`;
    const badge = el("span", { cls: r.mentions > 0 ? "badge mention" : "badge", text, attrs: { "data-testid": "unread", "aria-label": label } });
    if (r.mentions > 0) badge.dataset.mentions = r.mentions;
    button.append(badge);
  }
  if (name === state.current) button.setAttribute("aria-current", "page");
  else button.removeAttribute("aria-current");
}

function renderRoom() {
  const name = state.current;
  roomChanged();
  $("empty-state").hidden = Boolean(name);
  $("messages").hidden = !name;
  $("composer").hidden = !name;
  if (!name) {
    $("room-title").textContent = "Welcome";
    $("leave-room").hidden = true;
    $("new-below").hidden = true;
    $("member-list").replaceChildren();
    $("member-counts").textContent = "";
    $("more-members").hidden = true;
    return;
  }
  $("room-title").textContent = isDirect(name) ? name.slice(1) : `#${name}`;
  $("room-title").classList.toggle("direct", isDirect(name));
  $("leave-room").hidden = isDirect(name);
  $("leave-room").setAttribute("aria-label", `Leave #${name}`);
  input.placeholder = isDirect(name) ? `Message ${name.slice(1)}` : `Message #${name}`;
  renderMessages(true);
  renderMembers();
  renderTyping();
}

/** How the page titles a room: `#general`, or the other user's name. */
function roomTitle(name) {
  return isDirect(name) ? name.slice(1) : `#${name}`;
}

function messageItem(m, grouped = false) {
  const mine = m.author.id === state.me?.id;
  const author = el("button", {
    cls: "author",
    text: m.author.name,
    attrs: { type: "button", "data-testid": "message-author", title: mine ? "You" : `Message ${m.author.name} privately` },
  });
  if (!mine) author.addEventListener("click", () => openRoom(`@${m.author.name}`));
  const head = el("div", { cls: "message-head" }, grouped ? null : author, timestamp(m.sent_at));
  if (mine) {
    const del = el("button", {
      cls: "delete",
      text: "Delete",
      attrs: { type: "button", "data-testid": "delete-message", "aria-label": "Delete this message" },
    });
    del.addEventListener("click", () => deleteMessage(state.current, m.id));
    head.append(del);
  }
  const cls = ["message", mine && "mine", grouped && "grouped", mentionsMe(m, state.mentionKey) && !mine && "mentioned"];
  const li = el(
    "li",
    { cls: cls.filter(Boolean).join(" "), attrs: { "data-testid": "message", "data-id": m.id, "data-author": m.author.name } },
    grouped ? el("span", { cls: "avatar-gap", attrs: { "aria-hidden": "true" } }) : avatar(m.author.name),
    el("div", { cls: "message-body" }, head, messageText(m.text), fileList(m.files)),
  );
  return decorateMessage(li, m, state.current);
}

/** A message's text; kept (hidden) when empty, as a message of files only may be. */
function messageText(text) {
  const p = el("p", { cls: "text", attrs: { "data-testid": "message-text" } }, linkify(text));
  p.hidden = !text.trim();
  return p;
}

/** Shows the open room's messages (the newest `keep`), scrolled to the end when `toEnd`. */
function renderMessages(toEnd) {
  const r = room(state.current);
  const ids = [...r.messages.keys()].sort((a, b) => a - b).slice(-r.keep);
  const list = $("messages");
  const top = list.scrollTop;
  list.replaceChildren(...messageItems(ids.map((id) => r.messages.get(id)), messageItem, roomTitle(r.name)));
  if (toEnd) scrollToEnd(true);
  else list.scrollTop = top;
}

function atEnd() {
  const list = $("messages");
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

function insertMessage(m) {
  const stick = atEnd() || m.author.id === state.me?.id;
  renderMessages(stick);
  if (!stick) $("new-below").hidden = false;
}

function scrollToEnd(really) {
  if (!really) return;
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
  $("new-below").hidden = true;
}

$("messages").addEventListener("scroll", () => {
  if (atEnd()) $("new-below").hidden = true;
});
$("new-below").addEventListener("click", () => scrollToEnd(true));

// Back in the tab: what arrived in the open room meanwhile has been seen.
document.addEventListener("visibilitychange", () => {
  if (document.hidden || state.unseen === 0) return;
  state.unseen = 0;
  renderSidebar();
});

// -- leaving and logging out -------------------------------------------------------------

$("leave-room").addEventListener("click", async () => {
  const name = state.current;
  if (!name || isDirect(name)) return;
  try {
    await client.leave(name);
  } catch (err) {
    showError("composer-error", err.message);
    return;
  }
  state.rooms.delete(name);
  state.current = null;
  localStorage.removeItem(ROOM_KEY);
  renderSidebar();
  renderRoom();
});

$("logout").addEventListener("click", () => {
  client.logout();
  for (const key of [TOKEN_KEY, NAME_KEY, ROOM_KEY]) localStorage.removeItem(key);
  for (const r of state.rooms.values()) for (const timer of r.typing.values()) clearTimeout(timer);
  Object.assign(state, { me: null, mentionKey: null, unseen: 0, current: null, started: false });
  state.channels.clear();
  state.rooms.clear();
  state.typingSentAt.clear();
  renderSidebar();
  renderRoom();
  $("login-name").value = "";
  showLogin();
});

function renderMemberCounts(r) {
  const counts = $("member-counts");
  if (!r || !r.memberCount) {
    counts.textContent = "";
    return;
  }
  counts.textContent = `${r.memberCount.toLocaleString()} in all, ${r.onlineCount.toLocaleString()} online`;
}

function renderMembers() {
  const r = state.current && state.rooms.get(state.current);
  if (!r) return;
  renderMemberCounts(r);
  $("more-members").hidden = !r.membersNext;
  const members = [...r.members.values()].sort(memberOrder);
  $("member-list").replaceChildren(
    ...members.map(({ user, online }) => {
      const mine = user.id === state.me?.id;
      const name = el("button", {
        cls: "member-name",
        text: user.name,
        attrs: { type: "button", title: mine ? "You" : `Message ${user.name} privately` },
      });
      if (!mine) name.addEventListener("click", () => openRoom(`@${user.name}`));
      return el(
        "li",
        { cls: "member", attrs: { "data-testid": "member", "data-name": user.name, "data-online": online } },
        el("span", { cls: online ? "dot online" : "dot", attrs: { "aria-label": online ? "online" : "offline", role: "img" } }),
        name,
        mine ? el("span", { cls: "muted", text: " (you)" }) : null,
      );
    }),
  );
}

function renderTyping() {
  const r = state.current && state.rooms.get(state.current);
  const names = r ? [...r.typing.keys()] : [];
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = "Several people are typing…";
  $("typing").textContent = text;
}

// The member list loads its next page when it is scrolled near its end, or on request.
$("more-members").addEventListener("click", () => {
  const r = state.current && state.rooms.get(state.current);
  if (r) loadMoreMembers(r);
});
$("members").addEventListener("scroll", () => {
  const pane = $("members");
  const r = state.current && state.rooms.get(state.current);
  if (r && pane.scrollHeight - pane.scrollTop - pane.clientHeight < 200) loadMoreMembers(r);
});

// -- layout controls ---------------------------------------------------------------------

$("toggle-sidebar").addEventListener("click", (ev) => {
  ev.stopPropagation();
  document.body.classList.toggle("sidebar-open");
});
// On a phone the room list covers the conversation: a tap beside it closes it.
document.querySelector(".conversation").addEventListener("click", () => document.body.classList.remove("sidebar-open"));
const narrow = window.matchMedia("(max-width: 900px)");
function membersShown() {
  const body = document.body.classList;
  return narrow.matches ? body.contains("members-open") : !body.contains("members-hidden");
}
$("toggle-members").addEventListener("click", () => {
  document.body.classList.toggle(narrow.matches ? "members-open" : "members-hidden");
  $("toggle-members").setAttribute("aria-expanded", String(membersShown()));
});
narrow.addEventListener("change", () => $("toggle-members").setAttribute("aria-expanded", String(membersShown())));
$("toggle-members").setAttribute("aria-expanded", String(membersShown()));
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape") document.body.classList.remove("sidebar-open", "members-open");
});

// -- start -------------------------------------------------------------------------------

client.epoch = localStorage.getItem(EPOCH_KEY);
const savedToken = localStorage.getItem(TOKEN_KEY);
const savedName = localStorage.getItem(NAME_KEY);
if (savedToken) login(savedName ? { token: savedToken, name: savedName } : { token: savedToken });
else showLogin();
