// edits.js — editing one's own messages and reacting to messages, on the page. app.js
// calls `decorateMessage` for every message it draws (the "(edited)" mark, the reaction
// counts and the reaction picker) and `installEdits` once (the live `edited` and
// `reactions` events, and the composer's edit mode: Up arrow on an empty composer edits
// your last message, Enter saves, Escape cancels). Like app.js it builds everything from
// text nodes, never HTML, and speaks the protocol only through protocol.js's client.

import { node } from "/dom.js";

/** The reaction set of docs/protocol.md, in the order the server lists them. */
export const REACTIONS = [
  { emoji: "\u{1F44D}", name: "thumbs up" },
  { emoji: "\u2764\uFE0F", name: "heart" },
  { emoji: "\u{1F602}", name: "tears of joy" },
  { emoji: "\u{1F389}", name: "party popper" },
  { emoji: "\u{1F62E}", name: "surprised" },
  { emoji: "\u{1F440}", name: "eyes" },
];

let deps = null; // {client, state, room, input, composer, messageItem, showError}
let editing = null; // {room, id, original} while the composer edits a message

/** Adds the "(edited)" mark and the reactions row to a message's list item. */
export function decorateMessage(li, m, roomName) {
  if (!deps) return li;
  const head = li.querySelector(".message-head");
  if (m.edited_at && head) {
    const when = new Date(m.edited_at);
    head.append(node("span", "edited", "(edited)", { "data-testid": "edited-mark", title: `Edited ${when.toLocaleString()}` }));
  }
  const body = li.querySelector(".message-body");
  if (body) body.append(reactionsRow(m, roomName));
  if (editing && editing.room === roomName && editing.id === m.id) li.classList.add("being-edited");
  return li;
}

function reactionsRow(m, roomName) {
  const me = deps.state.me?.id;
  const row = node("div", "reactions", undefined, { "data-testid": "reactions" });
  for (const r of m.reactions || []) {
    const mine = (r.users || []).includes(me);
    const label = REACTIONS.find((x) => x.emoji === r.emoji)?.name || r.emoji;
    const button = node("button", mine ? "reaction mine" : "reaction", undefined, {
      type: "button",
      "data-testid": "reaction",
      "data-emoji": r.emoji,
      "aria-pressed": mine,
      "aria-label": `${label}: ${r.count}${mine ? ", including you" : ""}`,
    });
    button.append(node("span", "reaction-emoji", r.emoji, { "aria-hidden": "true" }), node("span", "reaction-count", String(r.count), { "data-testid": "reaction-count" }));
    button.addEventListener("click", () => react(roomName, m.id, r.emoji));
    row.append(button);
  }
  const add = node("button", "add-reaction", "+\u{1F642}", { type: "button", "data-testid": "add-reaction", "aria-label": "Add a reaction", "aria-expanded": "false" });
  const picker = node("div", "reaction-picker", undefined, { "data-testid": "reaction-picker", role: "group", "aria-label": "Reactions" });
  picker.hidden = true;
  for (const { emoji, name } of REACTIONS) {
    const choice = node("button", "pick", emoji, { type: "button", "data-testid": "pick-reaction", "data-emoji": emoji, "aria-label": `React with ${name}` });
    choice.addEventListener("click", () => {
      picker.hidden = true;
      add.setAttribute("aria-expanded", "false");
      react(roomName, m.id, emoji);
    });
    picker.append(choice);
  }
  add.addEventListener("click", () => {
    picker.hidden = !picker.hidden;
    add.setAttribute("aria-expanded", String(!picker.hidden));
  });
  row.append(add, picker);
  return row;
}

async function react(roomName, id, emoji) {
  try {
    await deps.client.request("react", { room: roomName, message_id: id, emoji });
  } catch (err) {
    deps.showError("composer-error", err.code === "no_such_message" ? "That message is no longer kept." : err.message);
  }
}

/** Redraws one message of the open room in place (after an edit or a reaction). */
function redraw(roomName, id) {
  if (roomName !== deps.state.current) return;
  const old = document.querySelector(`#messages [data-id="${Number(id)}"]`);
  const m = deps.room(roomName).messages.get(id);
  // A message grouped under the one before it stays grouped.
  if (old && m) old.replaceWith(deps.messageItem(m, old.classList.contains("grouped")));
}

/** Keeps a message's new state (an `edited` event, a resume's `updated`). */
function keep(roomName, message) {
  const r = deps.state.rooms.get(roomName);
  if (!r || !r.messages.has(message.id)) return;
  r.messages.set(message.id, message);
  redraw(roomName, message.id);
}

/** Replaces the messages a resumed join says were edited or reacted to. */
export function applyUpdated(roomName, updated) {
  for (const m of updated || []) keep(roomName, m);
}

function startEditing() {
  const { state, input } = deps;
  const r = state.current && state.rooms.get(state.current);
  if (!r) return false;
  const mine = [...r.messages.values()].filter((m) => m.author.id === state.me?.id);
  if (!mine.length) return false;
  const last = mine.reduce((a, b) => (b.id > a.id ? b : a));
  editing = { room: state.current, id: last.id, original: last.text };
  input.value = last.text;
  deps.composer.classList.add("editing");
  hint().hidden = false;
  input.setSelectionRange(input.value.length, input.value.length);
  input.dispatchEvent(new Event("input"));
  redraw(editing.room, editing.id);
  return true;
}

function stopEditing(clear) {
  if (!editing) return;
  const { room: roomName, id } = editing;
  editing = null;
  deps.composer.classList.remove("editing");
  hint().hidden = true;
  if (clear) deps.input.value = "";
  deps.input.dispatchEvent(new Event("input"));
  redraw(roomName, id);
}

async function saveEdit() {
  const { room: roomName, id, original } = editing;
  const text = deps.input.value;
  if (!text.trim() || text === original) {
    stopEditing(true);
    return;
  }
  try {
    await deps.client.request("edit", { room: roomName, message_id: id, text });
    if (editing && editing.id === id && deps.input.value === text) stopEditing(true);
  } catch (err) {
    const known = {
      not_author: "You can only edit your own messages.",
      no_such_message: "That message is no longer kept, so it cannot be edited.",
      rate_limited: "You are sending too fast; wait a moment.",
    };
    deps.showError("composer-error", known[err.code] || err.message);
  }
}

function hint() {
  let h = document.getElementById("edit-hint");
  if (!h) {
    h = node("p", "edit-hint", "Editing your message \u2014 Enter to save, Escape to cancel", { id: "edit-hint", "data-testid": "edit-hint" });
    h.hidden = true;
    deps.composer.prepend(h);
  }
  return h;
}

/** Wires the live events and the composer's edit mode. Call once. */
export function installEdits(d) {
  deps = d;
  const { client, input, composer } = d;
  client.addEventListener("edited", ({ detail }) => keep(detail.room, detail.message));
  client.addEventListener("reactions", ({ detail }) => {
    const r = deps.state.rooms.get(detail.room);
    const m = r?.messages.get(detail.message_id);
    if (!m) return;
    r.messages.set(m.id, { ...m, reactions: detail.reactions });
    redraw(detail.room, m.id);
  });
  // Capture listeners on the target run before app.js's own (which posts on Enter).
  input.addEventListener(
    "keydown",
    (ev) => {
      if (ev.isComposing) return;
      if (!editing && ev.key === "ArrowUp" && input.value === "") {
        if (startEditing()) ev.preventDefault();
      } else if (editing && ev.key === "Escape") {
        ev.preventDefault();
        stopEditing(true);
      } else if (editing && ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        ev.stopImmediatePropagation();
        saveEdit();
      }
    },
    { capture: true },
  );
  composer.addEventListener(
    "submit",
    (ev) => {
      if (!editing) return;
      ev.preventDefault();
      ev.stopImmediatePropagation();
      saveEdit();
    },
    { capture: true },
  );
}

/** Leaves edit mode when the open room changes. */
export function roomChanged() {
  if (editing && editing.room !== deps?.state.current) stopEditing(true);
}
