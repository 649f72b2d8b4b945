// test_webapp: the web app at / in headless Chromium, against the real `lstmgen serve`.
//
// Debian's /usr/bin/chromium, driven by playwright-core (never a browser of Playwright's own).
// The server runs on 127.0.0.1 with --port 0 (the port is read from its "listening on" line), a
// temporary database and a temporary models directory in front of the bundled models/ (read-only
// there); the training step uploads a generated corpus and trains a small model through the page.
// Checked: the page loads with no console error; a generation streams in (its text grows) and
// Stop stops it; the seed shown replays the same text; the temperature comparison gives four
// results; a corpus upload, a job whose loss chart gains points as it runs, the published model
// in the playground; the Models view and its delete (and the 403 of a read-only model); the phone
// layout has no sideways scrolling; with --api-key the page first asks for the key, then works.
// Screenshots of every view go to SCREENSHOT_DIR (default: web-screenshots/ beside LSTMGEN, the
// build directory), or $LSTMGEN_WEB_SCREENSHOTS.
//
// usage: node test_webapp.mjs LSTMGEN [SCREENSHOT_DIR]
// Exits 0 when every check passed, 1 otherwise, 77 (meson's skip) without Chromium or
// tests/web/node_modules (scripts/install-deps.sh --test installs both).
import fs from "node:fs";
import path from "node:path";

import { CHROMIUM, Server, assert, check, failed, missingTools, passed, screenshotDir, servers,
  skip, sleep, tmpDir } from "./harness.mjs";

const TIME_LIMIT = 600; // seconds for the whole run; the sanitizer build is a few times slower
const WAIT = 120_000; // ms, any one condition in the page
const API_KEY = "web-test-key";

const why = missingTools();
if (why) skip(why);
const { chromium } = await import("playwright-core");

const LSTMGEN = process.argv[2];
if (!LSTMGEN) {
  console.error("usage: node test_webapp.mjs LSTMGEN [SCREENSHOT_DIR]");
  process.exit(2);
}
const SHOTS = screenshotDir(LSTMGEN, process.argv[3]);
const TMP = tmpDir("lstmgen-web-");

// A server of this run, with the key for its API calls.
class WebServer extends Server {
  constructor(name, args = []) {
    super(LSTMGEN, TMP, name, args);
  }

  async api(method, route, body) {
    const res = await fetch(this.url + route, { method, body: body && JSON.stringify(body),
      headers: { Authorization: `Bearer ${API_KEY}` } });
    return { status: res.status, body: await res.json() };
  }
}

// ---------------------------------------------------------------------------- checks

// Console errors and uncaught exceptions of a page. Expected failed requests (a 401 before the
// key is given, the 403 of deleting a read-only model) are dropped by forgive().
function watchErrors(page) {
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => errors.push(`uncaught: ${e.message}`));
  return {
    assertNone(when) {
      assert(errors.length === 0, `errors in the page ${when}:\n  ${errors.join("\n  ")}`);
    },
    forgive(status) {
      const expected = `the server responded with a status of ${status}`;
      for (let i = errors.length - 1; i >= 0; i--) if (errors[i].includes(expected)) errors.splice(i, 1);
    },
  };
}

const genLength = (page, root = "#gen-result") =>
  page.$eval(`${root} .gen`, (n) => [...n.textContent].length);

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// An English-like text from a fixed word list (seeded: the same text every run).
function corpusText(chars) {
  const words = ("the of and to in is was he that it for on with as his at by from they we this had " +
    "not are but or have an which one were her all she there would their will when who him been").split(" ");
  let state = 7, out = "";
  const next = (n) => (state = (state * 1103515245 + 12345) % 2147483648) % n;
  while (out.length < chars) {
    const sentence = Array.from({ length: 4 + next(6) }, () => words[next(words.length)]).join(" ");
    out += sentence[0].toUpperCase() + sentence.slice(1) + (next(5) ? ". " : ".\n\n");
  }
  return out.slice(0, chars);
}

// ---------------------------------------------------------------------------- the run

const watchdog = setTimeout(() => {
  console.log(`FAIL: the run took more than ${TIME_LIMIT} s`);
  for (const s of servers) s.proc.kill("SIGKILL");
  process.exit(1);
}, TIME_LIMIT * 1000);

const t0 = performance.now();
// --max-length: a generation long enough to be stopped however fast this machine is
const open = await new WebServer("open", ["--max-length", "100000"]).started();
const locked = await new WebServer("locked", ["--api-key", API_KEY]).started();
const browser = await chromium.launch({ executablePath: CHROMIUM });
console.log(`servers on ${open.url} and ${locked.url} (--api-key); screenshots in ${SHOTS}`);

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const errors = watchErrors(page);

  await check("the page and its modules load with no console error", async () => {
    const res = await page.goto(open.url + "/");
    assert(res.status() === 200, `GET / answered ${res.status()}`);
    assert(res.headers()["content-type"] === "text/html; charset=utf-8", `content type ${res.headers()["content-type"]}`);
    await page.waitForFunction(() => document.querySelector("#gen-model").options.length > 0);
    assert(await page.$eval("#gen-model", (s) => s.value) === "default", "the default model is not picked");
    const missing = await fetch(open.url + "/app/nope.js");
    assert(missing.status === 404 && (await missing.json()).error.code === "not_found", "an unknown file is not a 404");
    errors.assertNone("after loading");
  });

  await check("Generate streams the text in, and Stop stops it", async () => {
    await page.fill("#gen-length", "100000");
    await page.click("#gen-start");
    await page.waitForFunction(() => document.querySelector("#gen-result .gen").textContent.length > 0);
    const first = await genLength(page);
    await page.waitForFunction((n) => [...document.querySelector("#gen-result .gen").textContent].length > n + 20, first);
    assert(await page.isEnabled("#gen-stop"), "Stop is not enabled while streaming");
    await page.click("#gen-stop");
    await page.waitForSelector("#gen-start:enabled");
    const stopped = await genLength(page);
    assert(stopped < 100000, `the generation ran to its end (${stopped} characters) despite Stop`);
    await sleep(500);
    assert(await genLength(page) === stopped, "the text still grows after Stop");
    const running = await open.api("GET", "/generations");
    assert(running.body.generations.length === 0, `still generating on the server: ${JSON.stringify(running.body)}`);
    errors.assertNone("after generating");
  });

  await check("a stream is painted at most once a frame, so a long one cannot swamp the page", async () => {
    // Every change to the result's text is counted against the animation frames that pass.
    // Painting each character as it came measured all the text so far each time: 40,000
    // characters kept the page busy for 95 s after the last one had arrived.
    await page.evaluate(() => {
      const gen = document.querySelector("#gen-result .gen");
      window.paintCount = { paints: 0, frames: 0, counting: true };
      new MutationObserver((records) => { window.paintCount.paints += records.length; })
        .observe(gen, { characterData: true, childList: true, subtree: true });
      const tick = () => {
        window.paintCount.frames++;
        if (window.paintCount.counting) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    await page.fill("#gen-length", "3000");
    await page.fill("#gen-seed", "7");
    await page.click("#gen-start");
    await page.waitForSelector("#gen-result .seed-used");
    const { paints, frames } = await page.evaluate(() => {
      window.paintCount.counting = false;
      return window.paintCount;
    });
    assert(await genLength(page) === 3000, `${await genLength(page)} characters, not 3000`);
    // begin() empties the box and adds a text node (2 changes); the end paints what is left
    assert(paints <= frames + 3, `${paints} changes to the text in ${frames} frames`);
    console.log(`     3,000 characters in ${paints} paints over ${frames} frames`);
  });

  await check("a result's seed replays its text exactly", async () => {
    await page.fill("#gen-length", "300");
    await page.fill("#gen-seed", "");
    await page.click("[data-temperature='1.0']");
    await page.click("#gen-start");
    await page.waitForSelector("#gen-result .seed-used");
    const text = await page.textContent("#gen-result .gen");
    const seed = await page.textContent("#gen-result .seed-used");
    assert([...text].length === 300, `${[...text].length} characters, not 300`);
    await page.click("#gen-result .stats button"); // Replay
    await page.waitForFunction(() => document.querySelector("#gen-seed").value !== "");
    await page.waitForSelector("#gen-result .seed-used");
    assert(await page.textContent("#gen-result .gen") === text, "the replay gave another text");
    assert(await page.$eval("#gen-seed", (i) => i.value) === seed, "the seed field does not hold the seed");
    // the screenshot at the book's favourite temperature
    await page.fill("#gen-seed", "42");
    await page.click("[data-temperature='0.5']");
    await page.click("#gen-start");
    await page.waitForSelector("#gen-result .seed-used");
    await shot(page, "playground");
  });

  await check("Compare temperatures shows four results side by side", async () => {
    await page.click("nav a[href='#compare']");
    await page.waitForFunction(() => document.querySelector("#cmp-model").options.length > 0);
    await page.fill("#cmp-length", "240");
    await page.click("#cmp-start");
    await page.waitForFunction(() => document.querySelectorAll("#cmp-results .seed-used").length === 4);
    const lanes = await page.$$eval("#cmp-results [data-temperature]", (nodes) => nodes.map((n) =>
      ({ t: n.dataset.temperature, chars: [...n.querySelector(".gen").textContent].length })));
    assert(lanes.map((l) => l.t).join() === "0.2,0.5,1.0,1.2", `lanes ${JSON.stringify(lanes)}`);
    assert(lanes.every((l) => l.chars === 240), `lengths ${JSON.stringify(lanes)}`);
    await shot(page, "compare");
    errors.assertNone("after comparing");
  });

  await check("a corpus uploads and a job trains live: progress, a growing loss chart, samples", async () => {
    const file = path.join(TMP, "words.txt");
    fs.writeFileSync(file, corpusText(150_000));
    await page.click("nav a[href='#training']");
    await page.setInputFiles("#corpus-file", file);
    await page.click("#corpus-upload");
    await page.waitForSelector("#corpus-status.ok");
    const stored = await page.textContent("#corpus-status");
    assert(/150,000 characters .*distinct/.test(stored), `upload said: ${stored}`);
    assert(await page.$eval("#job-corpus", (s) => s.selectedOptions[0].textContent.startsWith("words")),
      "the new corpus is not selected");
    await page.fill("#job-model-name", "webtest");
    await page.click("[data-preset='quick']");
    await page.fill("#hp-hidden", "48");
    await page.fill("#hp-epochs", "6");
    await page.click("#job-start");
    // The chart gains a point per epoch: it must be seen part-way, not only at the end.
    const seen = new Set();
    const deadline = Date.now() + WAIT * 2;
    for (;;) {
      seen.add(await page.locator("#job-chart .train circle").count());
      const status = await page.textContent("#job-status");
      if (status === "succeeded") break;
      assert(!["failed", "cancelled"].includes(status), `the job ${status}: ${await page.textContent("#job-progress-text")}`);
      assert(Date.now() < deadline, "the job did not finish in time");
      await sleep(100);
    }
    const final = await page.locator("#job-chart .train circle").count();
    assert(final === 6 && (await page.locator("#job-chart .val circle").count()) === 6, `${final} points at the end`);
    assert([...seen].some((n) => n > 0 && n < 6), `the chart never grew while the job ran (counts seen: ${[...seen]})`);
    assert(await page.locator("#job-samples figure").count() === 4, "not four samples");
    assert(await page.$eval("#job-progress", (p) => p.value) === 1, "the progress bar is not full");
    await shot(page, "training");
    await page.click("#job-open");
    await page.waitForFunction(() => document.querySelector("#gen-model").value === "webtest");
    errors.assertNone("after training");
  });

  await check("fine-tuning: the base fixes the size, a character it lacks is named, then replaced", async () => {
    await page.click("nav a[href='#training']");
    const before = await page.textContent("#corpus-status");
    // the trained model's own text (a prefix of it) with one character it has never seen
    await page.fill("#corpus-text", `${corpusText(20_000)} § `);
    await page.fill("#corpus-name", "words-more");
    await page.click("#corpus-upload");
    await page.waitForFunction((b) => document.querySelector("#corpus-status").textContent !== b &&
      /ok|error/.test(document.querySelector("#corpus-status").className), before);
    await page.fill("#job-model-name", "webtest-tuned");
    await page.click("[data-preset='quick']");
    await page.selectOption("#job-base", "webtest");
    assert(await page.$eval("#hp-hidden", (i) => i.disabled && i.value === ""), "the size can still be set");
    assert(/Fine-tunes "webtest": 1 × LSTM\(48\)/.test(await page.textContent("#job-base-hint")), "no base described");
    assert(await page.isVisible("#job-unknown-field"), "no choice for characters the model lacks");
    await page.fill("#hp-epochs", "1");
    // A new job's end: the panel shows a final status with a text other than the last job's
    // (its title and status change first, before the job's own state arrives).
    const ends = async () => {
      const before = await page.textContent("#job-progress-text");
      await page.click("#job-start");
      await page.waitForFunction((b) => ["failed", "succeeded"].includes(document.querySelector("#job-status").textContent) &&
        document.querySelector("#job-progress-text").textContent !== b &&
        /^(Failed|Done)/.test(document.querySelector("#job-progress-text").textContent), before);
      return { title: await page.textContent("#job-title"), status: await page.textContent("#job-status"),
        text: await page.textContent("#job-progress-text") };
    };
    const first = await ends();
    assert(first.status === "failed" && /^Failed: .*§/.test(first.text), `the job did not fail naming the character: ${first.text}`);
    await page.selectOption("#job-unknown", "replace");
    await page.fill("#job-replacement", " ");
    const second = await ends();
    assert(second.status === "succeeded" && second.title !== first.title, `the second job: ${second.title}: ${second.text}`);
    const id = Number(second.title.match(/^Job (\d+)/)[1]);
    const { body: job } = await open.api("GET", `/jobs/${id}`);
    assert(job.base_model === "webtest" && job.unknown_chars === "replace= " && !("hidden" in job.hyperparameters),
      `the job as stored: ${JSON.stringify(job)}`);
    await page.selectOption("#job-base", "");
    assert(await page.isEnabled("#hp-hidden"), "the size stays locked without a base");
    errors.assertNone("after fine-tuning");
  });

  await check("a job can be cancelled from the page", async () => {
    await page.click("nav a[href='#training']");
    await page.fill("#job-model-name", "cancelled");
    await page.click("[data-preset='minutes']"); // 10 minutes: it runs until cancelled
    await page.click("#job-start");
    await page.waitForFunction(() => document.querySelector("#job-status").textContent === "running");
    // a budget alone: the server chooses the size and the page says what it chose
    await page.waitForFunction(() => /^Plan: \d × LSTM\(\d+\), batch \d+\. .*characters\/s measured here/
      .test(document.querySelector("#job-plan").textContent));
    await page.click("#job-cancel");
    await page.waitForFunction(() => document.querySelector("#job-status").textContent === "cancelled");
    errors.assertNone("after cancelling");
  });

  await check("Models lists both models; delete asks, deletes, and reports a read-only model", async () => {
    await page.click("nav a[href='#models']");
    await page.waitForSelector("[data-model='webtest']");
    assert(await page.locator("[data-model='default']").count() === 1, "the bundled model is missing");
    const facts = await page.textContent("[data-model='webtest'] dl");
    assert(/1 × LSTM\(48\)/.test(facts) && /Validation loss\d/.test(facts), `webtest's facts: ${facts}`);
    await shot(page, "models");
    page.once("dialog", (d) => d.accept());
    await page.click("[data-model='webtest'] button.danger");
    await page.waitForSelector("[data-model='webtest']", { state: "detached" });
    page.once("dialog", (d) => d.accept());
    await page.click("[data-model='default'] button.danger");
    await page.waitForFunction(() => /read-only/.test(document.querySelector("[data-model='default'] .status").textContent));
    errors.forgive(403);
    errors.assertNone("on the Models view");
  });

  await check("at phone width every view fits without sideways scrolling", async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const phoneErrors = watchErrors(phone);
    for (const view of ["playground", "compare", "models", "training"]) {
      await phone.goto(`${open.url}/#${view}`);
      await phone.waitForLoadState("networkidle");
      const [scroll, width] = await phone.evaluate(() => [document.documentElement.scrollWidth, innerWidth]);
      assert(scroll <= width, `#${view} is ${scroll} px wide on a ${width} px screen`);
    }
    await phone.goto(`${open.url}/#playground`);
    await phone.waitForFunction(() => document.querySelector("#gen-model").options.length > 0);
    await phone.fill("#gen-length", "200");
    await phone.fill("#gen-seed", "7");
    await phone.click("#gen-start");
    await phone.waitForSelector("#gen-result .seed-used");
    await shot(phone, "playground-phone");
    phoneErrors.assertNone("at phone width");
    await phone.close();
  });

  await check("with --api-key the page asks for the key, then works with it", async () => {
    const fresh = await browser.newContext({ viewport: { width: 1280, height: 900 } }); // no stored key
    const p = await fresh.newPage();
    p.setDefaultTimeout(WAIT);
    const keyErrors = watchErrors(p);
    await p.goto(locked.url + "/");
    await p.waitForSelector("#banner:not([hidden])");
    const banner = await p.textContent("#banner");
    assert(/needs an API key/.test(banner), `banner: ${banner}`);
    assert(await p.$eval("#gen-model", (s) => s.options.length) === 0, "models listed without the key");
    await shot(p, "api-key");
    await p.fill("#api-key", "wrong");
    await p.press("#api-key", "Enter");
    await p.waitForFunction(() => /refused/.test(document.querySelector("#banner").textContent));
    // a wrong key, then the right one before the refusals come back: those must not answer for it
    await p.fill("#api-key", "wrong again");
    await p.press("#api-key", "Enter");
    await p.fill("#api-key", API_KEY);
    await p.press("#api-key", "Enter");
    await p.waitForSelector("#banner", { state: "hidden" });
    await p.waitForFunction(() => document.querySelector("#gen-model").options.length > 0);
    await p.fill("#gen-length", "50");
    await p.click("#gen-start");
    await p.waitForSelector("#gen-result .seed-used");
    await p.reload(); // the key is remembered
    await p.waitForFunction(() => document.querySelector("#gen-model").options.length > 0);
    assert(await p.isHidden("#banner"), "the banner is back after a reload");
    keyErrors.forgive(401); // the refusals asked for above
    keyErrors.assertNone("once the key was given");
    await fresh.close();
  });

  await context.close();
} finally {
  await browser.close();
  await check("the servers stop cleanly on SIGTERM, with no sanitizer report", async () => {
    for (const s of servers) await s.stop();
  });
  clearTimeout(watchdog);
  if (!failed()) fs.rmSync(TMP, { recursive: true, force: true });
  else console.log(`server logs kept in ${TMP}`);
}

console.log(`web app: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
console.log(`${passed()} passed, ${failed()} failed`);
process.exit(failed() ? 1 : 0);
