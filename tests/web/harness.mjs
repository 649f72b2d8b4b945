// harness: what the browser tests share: the real `lstmgen serve` on a loopback port, named
// checks that report ok/FAIL and go on, a watchdog, and the skip (exit 77) when Chromium or
// tests/web/node_modules is missing.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CHROMIUM = "/usr/bin/chromium";
export const BUNDLED_MODELS = path.resolve(HERE, "../../models");

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function skip(why) {
  console.log(`SKIP: ${why}`);
  process.exit(77);
}

// Why the browser tests cannot run here, or null.
export function missingTools() {
  if (!fs.existsSync(CHROMIUM))
    return `no ${CHROMIUM} (apt-get install chromium; scripts/install-deps.sh --test does)`;
  if (!fs.existsSync(path.join(HERE, "node_modules", "playwright-core")))
    return "no tests/web/node_modules (npm ci --prefix tests/web; scripts/install-deps.sh --test does)";
  return null;
}

// Where screenshots go: argv's, $LSTMGEN_WEB_SCREENSHOTS, or web-screenshots/ beside LSTMGEN
// (the build directory).
export function screenshotDir(lstmgen, given) {
  const dir = given || process.env.LSTMGEN_WEB_SCREENSHOTS ||
    path.join(path.dirname(path.resolve(lstmgen)), "web-screenshots");
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export function tmpDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// ---------------------------------------------------------------------------- servers

export const servers = [];

// `lstmgen serve` on 127.0.0.1 with --port 0 (the port is read from its "listening on" line), a
// database of its own and a models directory of its own in front of the bundled models/ (which
// it sees read-only). Environment variables LSTMGEN_* are not passed on: only args configure it.
export class Server {
  constructor(lstmgen, tmp, name, args = []) {
    this.name = name;
    this.log = path.join(tmp, `${name}.log`);
    this.models = path.join(tmp, `${name}-models`);
    fs.mkdirSync(this.models);
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("LSTMGEN_")));
    this.proc = spawn(lstmgen, ["serve", "--host", "127.0.0.1", "--port", "0",
      "--models", `${this.models}:${BUNDLED_MODELS}`, "--db", path.join(tmp, `${name}.db`), ...args],
    { env, stdio: ["ignore", fs.openSync(this.log, "w"), fs.openSync(this.log, "a")] });
    this.exited = new Promise((resolve) => this.proc.on("exit", (code, signal) => resolve(code ?? signal)));
    servers.push(this);
  }

  async started() {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(this.logText());
      if (m) {
        this.url = `http://127.0.0.1:${m[1]}`;
        return this;
      }
      if (this.proc.exitCode !== null || Date.now() > deadline)
        throw new Error(`server ${this.name} did not start:\n${this.logText().slice(-2000)}`);
      await sleep(50);
    }
  }

  logText() {
    return fs.readFileSync(this.log, "utf8");
  }

  // SIGTERM must end the server cleanly, with nothing from a sanitizer in its log.
  async stop() {
    this.proc.kill("SIGTERM");
    const code = await Promise.race([this.exited, sleep(30_000).then(() => "timeout")]);
    if (code !== 0) throw new Error(`server ${this.name} exited with ${code} after SIGTERM`);
    const report = /ERROR: (Address|Leak)Sanitizer|runtime error:/.exec(this.logText());
    if (report) throw new Error(`server ${this.name}: sanitizer report in its log:\n${this.logText().slice(-3000)}`);
  }
}

// Ends the run (exit 1) after limit seconds, killing the servers it started.
export function startWatchdog(limit) {
  setTimeout(() => {
    console.log(`FAIL: the run took more than ${limit} s`);
    for (const s of servers) s.proc.kill("SIGKILL");
    process.exit(1);
  }, limit * 1000).unref();
}

// ---------------------------------------------------------------------------- checks

let n_passed = 0, n_failed = 0;

export async function check(name, fn) {
  const t0 = performance.now();
  try {
    await fn();
    n_passed++;
    console.log(`ok   ${name} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    n_failed++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

export const failed = () => n_failed;
export const passed = () => n_passed;

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}
