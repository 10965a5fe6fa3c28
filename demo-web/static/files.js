// files.js — files in messages, on the page. Picking files (the attach button, dropping
// them on the conversation, pasting them into the composer) uploads each one at once over
// HTTP (`POST /files`, docs/protocol.md "Files"), shown as a chip above the composer with
// its progress; app.js sends the finished ones' ids with the next post
// (`takeReadyFiles`, then `clearSent` or `returnFiles`) and draws the files a message carries (`fileList`).
//
// Rule (as in app.js): a file's name is user data and only ever becomes text or an
// attribute value, never HTML. Images are shown inline only for the kinds the server read
// from the bytes as raster images; everything else is a download link.

import { node } from "/dom.js";

/** The kinds the server serves inline: raster images a page may show (docs/protocol.md). */
const IMAGE_KINDS = new Set(["png", "jpeg", "gif", "webp"]);
/** The server's limits, from its `hello` (`max_files_per_message`, `max_file_bytes`). */
const limits = { files: 10, bytes: Infinity };
/** File ids are 32 hex digits; anything else is not turned into a URL. */
const FILE_ID = /^[0-9a-f]{32}$/;

let deps = null; // {client, input, dropZone, canAttach, showError}
const pending = []; // the chips, oldest first: {file, state, id, xhr, chip, sending}

/** A size as people read it: "68 B", "1.5 KiB", "12 MiB". */
export function humanSize(bytes) {
  if (!Number.isFinite(bytes) || bytes < 1024) return `${Math.max(0, bytes | 0)} B`;
  const units = ["KiB", "MiB", "GiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = value < 10 ? value.toFixed(1).replace(/\.0$/, "") : String(Math.round(value));
  return `${shown} ${units[unit]}`;
}

const fileUrl = (id) => `/files/${id}`;

// -- a message's files -------------------------------------------------------------------

/** The list of a message's files (null when it has none), to go under its text. */
export function fileList(files) {
  const shown = (Array.isArray(files) ? files : []).filter((f) => f && FILE_ID.test(f.id));
  if (shown.length === 0) return null;
  const list = node("ul", "files", undefined, { "data-testid": "message-files", "aria-label": "Files" });
  for (const file of shown) list.append(IMAGE_KINDS.has(file.kind) ? imageItem(file) : downloadItem(file));
  return list;
}

function imageItem(file) {
  const name = file.name || "image";
  const img = node("img", "file-preview", undefined, {
    src: fileUrl(file.id),
    alt: name,
    loading: "lazy",
    "data-testid": "file-preview",
    "data-file-id": file.id,
  });
  keepEndInView(img);
  const link = node("a", "file-preview-link", undefined, { href: fileUrl(file.id), target: "_blank", rel: "noopener" });
  link.append(img);
  // The name again under the picture: the alt text is not shown while it loads.
  const caption = node("span", "file-caption");
  caption.append(node("span", "file-name", name, { title: name }), node("span", "file-meta", humanSize(file.size)));
  const li = node("li", "file image", undefined, { "data-kind": file.kind });
  li.append(link, caption);
  return li;
}

function downloadItem(file) {
  const name = file.name || "file";
  const li = node("li", "file download", undefined, { "data-kind": file.kind });
  li.append(
    node("span", "file-icon", file.kind === "pdf" ? "PDF" : "FILE", { "aria-hidden": "true" }),
    node("a", "file-link", name, { href: fileUrl(file.id), download: name, "data-testid": "file-link", "data-file-id": file.id }),
    node("span", "file-meta", humanSize(file.size)),
  );
  return li;
}

// An image loads after its message is drawn and makes the list taller: a list that was
// showing its newest message keeps showing it, instead of the image pushing it down.
function keepEndInView(img) {
  img.addEventListener("load", () => {
    const list = img.closest(".messages");
    if (!list) return;
    const below = list.scrollHeight - list.scrollTop - list.clientHeight;
    if (below - img.offsetHeight < 80) list.scrollTop = list.scrollHeight;
  });
}

// -- uploads -----------------------------------------------------------------------------

/**
 * The ids of the uploads that finished, in the order they were picked, taken for a post
 * being sent: a second Enter before it is answered does not send them again (the server
 * would refuse a file already carried).
 */
export function takeReadyFiles() {
  const ready = pending.filter((p) => p.state === "done" && !p.sending);
  for (const p of ready) p.sending = true;
  return ready.map((p) => p.id);
}

/** The post that took `ids` failed: they go with the next one. */
export function returnFiles(ids) {
  for (const p of pending) if (ids.includes(p.id)) p.sending = false;
}

/** Whether a file is still uploading (a post now would leave it out). */
export function uploadsBusy() {
  return pending.some((p) => p.state === "uploading");
}

/** After a post carried `ids`: their chips go, and so do the failed ones. */
export function clearSent(ids) {
  for (const p of [...pending]) if (p.state === "failed" || ids.includes(p.id)) remove(p);
}

/** Starts uploading each of `files` (a FileList or an array of File). */
function addFiles(files) {
  const list = [...(files || [])];
  if (list.length === 0 || !deps.canAttach()) return;
  deps.showError("composer-error", "");
  for (const file of list) {
    if (pending.filter((p) => p.state !== "failed").length >= limits.files) {
      deps.showError("composer-error", `A message carries at most ${limits.files} files.`);
      break;
    }
    const p = { file, state: "uploading", id: null, xhr: null, chip: null, sending: false };
    p.chip = chip(p);
    pending.push(p);
    chips().append(p.chip);
    // Refused here rather than after sending it all: the server would stop at its limit.
    if (file.size > limits.bytes) failed(p, `This file is too large to upload (at most ${humanSize(limits.bytes)}).`);
    else upload(p);
  }
  chips().hidden = pending.length === 0;
}

// XMLHttpRequest rather than fetch: only it reports the upload's progress.
function upload(p) {
  const xhr = new XMLHttpRequest();
  p.xhr = xhr;
  xhr.open("POST", `/files?name=${encodeURIComponent(p.file.name || "file")}`);
  xhr.setRequestHeader("Authorization", `Bearer ${deps.client.token || ""}`);
  xhr.responseType = "json";
  xhr.upload.addEventListener("progress", (ev) => {
    if (ev.lengthComputable) showProgress(p, ev.loaded, ev.total);
  });
  xhr.addEventListener("load", () => {
    const body = xhr.response;
    if (xhr.status === 201 && body?.file && FILE_ID.test(body.file.id)) finished(p, body.file);
    else failed(p, uploadError(xhr.status, body));
  });
  // A network error: the server also ends the connection this way when it refuses a body
  // it will not read to its end (over its size limit) before the browser sees the answer.
  xhr.addEventListener("error", () => failed(p, "The upload failed (the connection dropped, or the file is over the server's limit)."));
  xhr.send(p.file);
}

function uploadError(status, body) {
  const message = body?.error?.message;
  const known = {
    too_large: "This file is too large to upload.",
    rate_limited: "You are uploading too much; try again later.",
    invalid_token: "Your session has expired; reload the page and log in again.",
    empty: "This file is empty.",
  };
  const code = body?.error?.code;
  if (message) return known[code] ? `${known[code]} (${message})` : message;
  return `The upload failed (HTTP ${status}).`;
}

function finished(p, file) {
  p.state = "done";
  p.id = file.id;
  p.xhr = null;
  showProgress(p, 1, 1);
  setStatus(p, "Ready to send");
}

function failed(p, message) {
  p.state = "failed";
  p.xhr = null;
  setStatus(p, message);
}

/** Drops a chip; an upload still under way is cancelled (the server keeps nothing of it). */
function remove(p) {
  const at = pending.indexOf(p);
  if (at < 0) return;
  pending.splice(at, 1);
  if (p.xhr) p.xhr.abort();
  p.chip.remove();
  chips().hidden = pending.length === 0;
}

/** Drops every chip (logged out, or the server's store was reset: the uploads are gone). */
function removeAll() {
  for (const p of [...pending]) remove(p);
}

// -- the chips -----------------------------------------------------------------------------

const chips = () => document.getElementById("pending-files");

function chip(p) {
  const name = p.file.name || "file";
  const li = node("li", "pending-file", undefined, { "data-testid": "pending-file", "data-state": p.state });
  const progress = node("progress", "upload-progress", undefined, {
    max: Math.max(p.file.size, 1),
    value: 0,
    "data-testid": "upload-progress",
    "aria-label": `Uploading ${name}`,
  });
  const removeButton = node("button", "remove-file", "\u00D7", {
    type: "button",
    "data-testid": "remove-file",
    "aria-label": `Remove ${name}`,
  });
  removeButton.addEventListener("click", () => {
    remove(p);
    deps.input.focus();
  });
  li.append(
    node("span", "pending-name", name, { title: name }),
    node("span", "pending-size", humanSize(p.file.size)),
    progress,
    node("span", "pending-status", "Uploading\u2026", { role: "status", "data-testid": "upload-status" }),
    removeButton,
  );
  return li;
}

function showProgress(p, loaded, total) {
  const bar = p.chip.querySelector("progress");
  bar.max = total;
  bar.value = Math.min(loaded, total);
}

function setStatus(p, text) {
  p.chip.dataset.state = p.state;
  p.chip.classList.toggle("failed", p.state === "failed");
  p.chip.querySelector(".pending-status").textContent = text;
}

// -- picking, dropping, pasting ------------------------------------------------------------

const hasFiles = (ev) => [...(ev.dataTransfer?.types || [])].includes("Files");

function installDrop(zone) {
  let depth = 0; // dragenter/dragleave fire for every child crossed
  const shown = (on) => zone.classList.toggle("drop-target", on);
  zone.addEventListener("dragenter", (ev) => {
    if (!hasFiles(ev) || !deps.canAttach()) return;
    ev.preventDefault();
    depth += 1;
    shown(true);
  });
  zone.addEventListener("dragover", (ev) => {
    if (!hasFiles(ev) || !deps.canAttach()) return;
    ev.preventDefault(); // without it the drop goes to the browser, which opens the file
    ev.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) shown(false);
  });
  zone.addEventListener("drop", (ev) => {
    depth = 0;
    shown(false);
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    addFiles(ev.dataTransfer.files);
  });
  // A file dropped beside the zone would make the browser leave the chat to open it.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (ev) => {
      if (hasFiles(ev) && !zone.contains(ev.target)) ev.preventDefault();
    });
  }
}

/** Wires the attach button, drop and paste, and forgetting uploads on logout. Call once. */
export function installFiles(d) {
  deps = d;
  const picker = document.getElementById("file-input");
  document.getElementById("attach").addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => {
    addFiles(picker.files);
    picker.value = ""; // picking the same file again is a new upload
    deps.input.focus();
  });
  installDrop(d.dropZone);
  d.input.addEventListener("paste", (ev) => {
    const files = ev.clipboardData?.files;
    if (!files || files.length === 0) return; // plain text: the textarea takes it
    ev.preventDefault();
    addFiles(files);
  });
  d.client.addEventListener("hello", ({ detail }) => {
    if (Number.isInteger(detail.max_files_per_message)) limits.files = detail.max_files_per_message;
    if (Number.isInteger(detail.max_file_bytes)) limits.bytes = detail.max_file_bytes;
  });
  d.client.addEventListener("reset", removeAll);
  d.client.addEventListener("loggedout", removeAll);
  d.client.addEventListener("status", ({ detail }) => {
    if (detail.state === "idle") removeAll(); // `logout()` ends in "idle"
  });
}
