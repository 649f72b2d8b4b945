// api: every call to the lstmgen API goes through here. It sends the key kept in localStorage as
// a Bearer header, turns the server's JSON errors into ApiError, and reads server-sent events from
// a fetch() body: EventSource can neither POST nor send an Authorization header.

const KEY_STORAGE = "lstmgen.apiKey";

export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

// {"error": {"code", "message", "type", "param"}} as an exception; status 0 when the server
// could not be reached at all.
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = error.code || "";
    this.param = error.param ?? null;
  }
}

// Fires "unauthorized" on every 401, so one place (the key field) can ask for the key whichever
// view was refused.
export const bus = new EventTarget();

// One API call: json (an object) or blob (a string, Blob or File, sent as text/plain) as the
// body. Resolves to the Response when it is 2xx; rejects with ApiError otherwise, or with the
// AbortError of signal.
export async function request(method, path, { json, blob, signal } = {}) {
  const headers = {};
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (blob !== undefined) {
    headers["Content-Type"] = "text/plain; charset=utf-8";
    body = blob;
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body, signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { code: "network", message: `cannot reach the server (${e.message})` });
  }
  if (res.ok) return res;
  let error = {};
  try {
    error = (await res.json()).error || {};
  } catch {
    // not JSON: a proxy's error page; the status line says enough
  }
  if (!error.message) error.message = `${res.status} ${res.statusText}`;
  const e = new ApiError(res.status, error);
  // A refusal of a key that has since been replaced says nothing about the new one.
  if (res.status === 401 && key === apiKey()) bus.dispatchEvent(new CustomEvent("unauthorized", { detail: e }));
  throw e;
}

// A call made once per API key and kept: fetch() is asked again when the key has changed since
// (a refusal still pending under a replaced key must not answer for the new one) or after a
// failure (an error is not worth keeping). forget() drops what is kept.
export function oncePerKey(fetch) {
  let kept = null, keptKey = "";
  const get = () => {
    if (!kept || keptKey !== apiKey()) {
      const pending = fetch();
      kept = pending;
      keptKey = apiKey();
      pending.catch(() => { if (kept === pending) kept = null; });
    }
    return kept;
  };
  get.forget = () => { kept = null; };
  return get;
}

export async function getJSON(path, options) {
  return (await request("GET", path, options)).json();
}

export async function send(method, path, json, options) {
  return (await request(method, path, { ...options, json })).json();
}

// The events of a text/event-stream response, as {event, data}, until the body ends. The server
// ends lines with \n; a chunk may hold several events or half of one, and TextDecoderStream keeps
// a UTF-8 character split across chunks whole. Leaving the loop early closes the connection.
export async function* readEvents(res) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", event = "", data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let start = 0, end; // a chunk holds thousands of lines: walk them, cut the rest once
      while ((end = buffer.indexOf("\n", start)) >= 0) {
        const line = buffer.slice(start, end).replace(/\r$/, "");
        start = end + 1;
        if (line === "") { // a blank line dispatches the event
          if (data.length) yield { event: event || "message", data: data.join("\n") };
          event = "";
          data = [];
        } else if (!line.startsWith(":")) { // ":" starts a comment (keepalive)
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") data.push(value);
          else if (field === "event") event = value;
        }
      }
      buffer = buffer.slice(start);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
