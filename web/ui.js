// ui: small DOM and formatting helpers shared by the views.

export const $ = (selector, root = document) => root.querySelector(selector);

// el("p", {class: "hint", onclick: f}, "text", child...): an element with attributes, listeners
// (on...) and children; null and false children are left out.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== false && c !== undefined));
  return node;
}

const integer = new Intl.NumberFormat("en");

export const fmt = {
  int: (n) => integer.format(Math.round(n)),
  loss: (x) => (x === null || x === undefined ? "–" : x.toFixed(3)),
  bytes(n) {
    if (n < 1024) return `${n} bytes`;
    const units = ["KB", "MB", "GB"];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
    return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
  },
  seconds(s) {
    if (s < 60) return `${Math.round(s)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  },
  date: (iso) => (iso ? new Date(iso).toLocaleString() : "–"),
};

// What a person should read for a failed call: the server's message and, for an API error, its
// status and code (which the docs list).
export function errorText(e) {
  if (e.name === "ApiError" && e.status) return `${e.message} (${e.status} ${e.code})`;
  return e.message || String(e);
}

export function setStatus(node, text, kind = "") {
  node.textContent = text;
  node.className = `status ${kind}`.trim();
}
