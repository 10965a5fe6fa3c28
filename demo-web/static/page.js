// page.js — how the message pane reads: links made clickable, a message's mention of the
// reader, one author's consecutive messages grouped, date separators, the start of an
// empty room, the unread count in the tab title, mention notifications, and the display
// name limit the server announces. app.js keeps the state and calls these.
//
// Rule (as in app.js): text from a user only ever becomes text nodes or attribute values,
// never HTML. A link is an <a> whose href is the URL as typed, made only for http and https.

/** Messages of one author closer together than this are shown as one group. */
export const GROUP_WITHIN_MS = 5 * 60 * 1000;

// A URL starts at http:// or https:// and runs to white space; trailing punctuation that
// usually ends a sentence is not part of it.
const URL_START = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,:;!?'")\]}]+$/;

/** Whether `href` is a URL a link may open: http or https, nothing else. */
export function isSafeLink(href) {
  try {
    const url = new URL(href);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

/** The text as nodes: text, and an <a> for each http(s) URL in it. */
export function linkify(text) {
  const fragment = document.createDocumentFragment();
  let at = 0;
  for (const match of text.matchAll(URL_START)) {
    const url = match[0].replace(TRAILING, "");
    if (!isSafeLink(url)) continue;
    if (match.index > at) fragment.append(document.createTextNode(text.slice(at, match.index)));
    const link = document.createElement("a");
    link.href = url;
    link.textContent = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.dataset.testid = "message-link";
    fragment.append(link);
    at = match.index + url.length;
  }
  if (at < text.length) fragment.append(document.createTextNode(text.slice(at)));
  return fragment;
}

/** Whether `message` mentions the user whose name key is `key` (from the login reply). */
export function mentionsMe(message, key) {
  return Boolean(key) && Array.isArray(message.mentions) && message.mentions.includes(key);
}

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric", year: "numeric" });

/** A day's heading: "Today", "Yesterday", or the date. */
export function dayLabel(ms) {
  const day = new Date(ms).toDateString();
  const now = new Date();
  if (day === now.toDateString()) return "Today";
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  if (day === yesterday.toDateString()) return "Yesterday";
  return dayFormat.format(new Date(ms));
}

/**
 * The message pane's items for `messages` (oldest first): a date separator before each
 * day's first message, and each message made by `itemFor(message, grouped)`, `grouped`
 * when it continues the previous one's group (same author, same day, within
 * GROUP_WITHIN_MS). An empty room shows where it starts.
 */
export function messageItems(messages, itemFor, roomTitle) {
  if (messages.length === 0) {
    const start = document.createElement("li");
    start.className = "room-start";
    start.dataset.testid = "room-start";
    start.textContent = `This is the start of ${roomTitle}. Say hello!`;
    return [start];
  }
  const items = [];
  let previous = null;
  for (const m of messages) {
    const newDay = !previous || new Date(previous.sent_at).toDateString() !== new Date(m.sent_at).toDateString();
    if (newDay) {
      const separator = document.createElement("li");
      separator.className = "day-separator";
      separator.dataset.testid = "day-separator";
      const label = document.createElement("span");
      label.textContent = dayLabel(m.sent_at);
      separator.append(label);
      items.push(separator);
    }
    const grouped =
      !newDay && previous.author.id === m.author.id && m.sent_at - previous.sent_at < GROUP_WITHIN_MS;
    items.push(itemFor(m, grouped));
    previous = m;
  }
  return items;
}

/** Shows `unread` (messages in rooms not in view) in the tab's title. */
export function showUnreadInTitle(unread) {
  document.title = unread > 0 ? `(${unread > 99 ? "99+" : unread}) Flack` : "Flack";
}

/** Asks, once, whether mentions may raise notifications (call from a user's action). */
export function askToNotify() {
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().catch(() => {});
  }
}

/** Raises a notification for a mention while the tab is hidden (and allowed to). */
export function notifyMention(roomLabel, message) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  try {
    const note = new Notification(`${message.author.name} mentioned you in ${roomLabel}`, {
      body: message.text.slice(0, 200),
      tag: `flack-${roomLabel}-${message.id}`,
    });
    note.onclick = () => window.focus();
  } catch {
    // Some browsers allow notifications only from a service worker: no notice then.
  }
}

/** Sets the name field's `maxlength` from a `hello`'s `max_name_chars`. */
export function setNameLimit(input, max) {
  if (Number.isInteger(max) && max > 0) input.maxLength = max;
}
