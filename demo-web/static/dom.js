// dom.js: the one small helper the page's modules use to make elements. Text always goes
// in through `textContent`, never as markup: what users write is data.

/** A new `tag` element with class `cls`, text `text` and attributes `attrs`. */
export function node(tag, cls, text, attrs = {}) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = text;
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  return n;
}
