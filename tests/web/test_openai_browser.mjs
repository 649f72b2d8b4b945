// test_openai_browser: the official `openai` npm client, in headless Chromium, on a page served
// from another origin than the API, against the real server with an API key and an allow-listed
// origin: completions.create (plain and streamed), chat.completions.create (plain and streamed),
// models.retrieve and models.list. The client sends its own headers (x-stainless-*), so this
// only passes when the CORS preflight allows what the browser asks for.
//
// Usage: node test_openai_browser.mjs LSTMGEN [SCREENSHOT_DIR]   (exit 77: skipped)
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { CHROMIUM, Server, assert, check, failed, missingTools, screenshotDir, skip, startWatchdog,
  tmpDir } from "./harness.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OPENAI_DIR = path.join(HERE, "node_modules", "openai");
const API_KEY = "browser-client-key";

const why = missingTools();
if (why) skip(why);
const { chromium } = await import("playwright-core");
const LSTMGEN = process.argv[2];
const SHOTS = screenshotDir(LSTMGEN, process.argv[3]);

// The page's own origin: a page that imports the client's ES modules straight from
// node_modules/openai (no bundler), and a button-less script the test drives.
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>openai client in the browser</title>
<link rel="icon" href="data:,">
<style>body{font:14px system-ui;margin:1em} pre{white-space:pre-wrap;background:#f4f4f4;padding:.5em}</style>
</head><body><h1>The official openai client, from another origin</h1><div id="out"></div>
<script type="module">
import OpenAI from "/openai/index.mjs";
const show = (title, text) => {
  const h = document.createElement("h2"); h.textContent = title;
  const p = document.createElement("pre"); p.textContent = text;
  document.getElementById("out").append(h, p);
};
window.runClient = async (baseURL, apiKey) => {
  const client = new OpenAI({ baseURL, apiKey, dangerouslyAllowBrowser: true, maxRetries: 0 });
  const out = {};
  const model = await client.models.retrieve("default");
  out.retrieve = { id: model.id, root: model.root, object: model.object };
  out.list = [];
  for await (const m of client.models.list()) out.list.push(m.id);
  show("models.retrieve('default')", JSON.stringify(model));
  const args = { model: "default", prompt: "the ", max_tokens: 60, seed: 11, temperature: 0.8 };
  const plain = await client.completions.create(args);
  out.completion = plain.choices[0].text;
  show("completions.create", plain.choices[0].text);
  out.completionStream = "";
  for await (const chunk of await client.completions.create({ ...args, stream: true }))
    out.completionStream += chunk.choices[0]?.text ?? "";
  show("completions.create stream", out.completionStream);
  const chatArgs = { model: "default", messages: [{ role: "user", content: "the " }],
                     max_tokens: 60, seed: 11, temperature: 0.8 };
  const chat = await client.chat.completions.create(chatArgs);
  out.chat = chat.choices[0].message.content;
  out.chatRole = chat.choices[0].message.role;
  show("chat.completions.create", out.chat);
  out.chatStream = "";
  out.chatUsage = null;
  const stream = await client.chat.completions.create({ ...chatArgs, stream: true,
                                                       stream_options: { include_usage: true } });
  for await (const chunk of stream) {
    out.chatStream += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.usage) out.chatUsage = chunk.usage;
  }
  show("chat.completions.create stream", out.chatStream);
  try {
    await new OpenAI({ baseURL, apiKey: "wrong", dangerouslyAllowBrowser: true, maxRetries: 0 })
        .completions.create(args);
    out.wrongKey = "accepted";
  } catch (e) {
    out.wrongKey = e.constructor.name + " " + e.status;
  }
  return out;
};
window.ready = true;
</script></body></html>`;

const TYPES = { ".mjs": "text/javascript", ".js": "text/javascript", ".json": "application/json" };

// The page's origin: the page at /, the client's files under /openai/.
function servePage() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/") {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      return res.end(PAGE);
    }
    const rel = url.pathname.startsWith("/openai/") ? url.pathname.slice(8) : null;
    const file = rel && path.resolve(OPENAI_DIR, rel);
    if (!file || !file.startsWith(OPENAI_DIR + path.sep) || !fs.existsSync(file)) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { "Content-Type": TYPES[path.extname(file)] || "text/plain" });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

startWatchdog(300);
const TMP = tmpDir("lstmgen-openai-browser-");
const page_server = await servePage();
const origin = `http://127.0.0.1:${page_server.address().port}`;
// the API on its own port: another origin, which only the allow-list lets in
const api = await new Server(LSTMGEN, TMP, "openai", ["--api-key", API_KEY,
                                                      "--cors-origin", origin]).started();
const browser = await chromium.launch({ executablePath: CHROMIUM });
const page = await browser.newPage();
const errors = [];
page.on("console", (m) => {
  // the wrong-key call's 401 is logged by Chromium as a failed resource: expected
  if (m.type() === "error" && !/status of 401/.test(m.text())) errors.push(m.text());
});
page.on("pageerror", (e) => errors.push(String(e)));

let out = null;
await check("the client runs in the page", async () => {
  await page.goto(origin + "/");
  await page.waitForFunction(() => window.ready === true, null, { timeout: 60_000 });
  out = await page.evaluate(([base, key]) => window.runClient(base, key),
                            [api.url + "/v1", API_KEY]);
  assert(errors.length === 0, "console errors: " + errors.join(" | "));
});
if (out) {
  await check("models.retrieve and models.list", () => {
    assert(out.retrieve.id === "default" && out.retrieve.object === "model",
           JSON.stringify(out.retrieve));
    // the bundled model is named default; another default model would be named by root
    assert(out.list.includes(out.retrieve.root ?? out.retrieve.id),
           "the default is a listed model: " + JSON.stringify(out));
  });
  await check("completions.create, plain and streamed, give the same text", () => {
    assert(out.completion.length === 60, "60 characters: " + JSON.stringify(out.completion));
    assert(out.completionStream === out.completion, JSON.stringify(out));
  });
  await check("chat.completions.create, plain and streamed, give the same text", () => {
    assert(out.chatRole === "assistant", out.chatRole);
    assert(out.chat.length === 60, JSON.stringify(out.chat));
    assert(out.chatStream === out.chat, JSON.stringify(out));
    assert(out.chatUsage && out.chatUsage.completion_tokens === 60, JSON.stringify(out.chatUsage));
  });
  await check("a wrong key is the client's AuthenticationError", () => {
    assert(out.wrongKey === "AuthenticationError 401", out.wrongKey);
  });
  await page.screenshot({ path: path.join(SHOTS, "openai-client.png"), fullPage: true });
}
await browser.close();
page_server.close();
await api.stop();
process.exit(failed() ? 1 : 0);
