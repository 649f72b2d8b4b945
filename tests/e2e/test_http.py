#!/usr/bin/python3
"""test_http: the HTTP service end to end, against the real `lstmgen serve` binary.

The suite makes its own data (an English-like text from a fixed word list and a Chinese one from a
few dozen characters, both from seeded generators; nothing from ../shared), trains tiny models with
`lstmgen train` into a temporary models directory, and starts servers on 127.0.0.1 with --port 0
(the bound port is read from the server's "listening on" line), a temporary SQLite file and that
models directory. Every request has a timeout, every test a time limit (a watchdog kills the
servers and fails the run), and every server is stopped by its pid; one that is stopped with
SIGTERM must exit 0, and no server's log may hold a sanitizer report.

Covered: health, readiness, metrics and the OpenAPI document; /generate (fields, exact lengths,
seeds, greedy decoding, stop strings, unknown characters, window/stateful modes), its server-sent
events (whole UTF-8 characters per event, equal to the plain response), disconnects and DELETE
/generations/{id}; /v1/completions in OpenAI's shapes with n, stop, seed, streaming and logprobs
(prompt scoring checked against `lstmgen eval` and against an LSTM forward pass written here);
models (describe, delete, reload on replace, bad names); corpora; training jobs (validation, the
whole lifecycle with its event stream, cancellation); crash safety (kill -9 mid-job, restart,
resume; what a crash leaves swept at the next start) and graceful shutdown (SIGTERM mid-job); API
keys (flags and LSTMGEN_* variables); CORS; the error shapes and statuses (400/404/405/413/415/
431/503, a busy database); the JSON log; 32 concurrent clients. It also prints
throughput, latency percentiles and the server's RSS (measured, not asserted).

usage: test_http.py LSTMGEN [unittest names...]
Standard library only (Debian's /usr/bin/python3). Exits 0 on success, 1 on any failure.
"""
import faulthandler
import fcntl
import hashlib
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

LSTMGEN = None
TMP = None
SANITIZED = False          # the binary was built with AddressSanitizer (timings are then slower)
REQ_TIMEOUT = 60           # seconds, every HTTP request
TEST_LIMIT = 420           # seconds, every test (the watchdog)
START_TIMEOUT = 60         # seconds for a server to answer /healthz
MAIN_MAX_LENGTH = 1000000  # long enough that a window-mode generation runs for many seconds
MAIN_MAX_BODY = 1 << 20
API_KEY = "e2e-secret-key"
ENV_API_KEY = "e2e-env-key"
CORS_ORIGIN = "https://app.example.test"
OTHER_ORIGIN = "http://localhost:3000"
ENV_CORS_ORIGIN = "https://env.example.test"

SERVERS = []               # every Server started, for the watchdog and the final log check
MAIN = None                # the shared server most tests talk to
EN_TEXT = ZH_TEXT = JOB_TEXT = None
MODELS_DIR = None
BIG_MODEL = None           # a hidden-64 checkpoint outside the models dir (reload test)

WORDS = ("the of and to in is was he that it for on with as his at by from they we this had not "
         "are but or have an which one were her all she there would their will when who him been "
         "has more if no out so said what up about into than them can only other new some could "
         "time these two may then do first any my now such like our over man me even most made "
         "after also did many before must through back years where much your way well down "
         "should because each just those people how too little state good very make world still "
         "own see men work long get here between both life").split()
HANZI = "天地人和风雨山水花月春秋日夜红楼梦心中大小上下来去说道是不了我你他她们的有也这那"


def english(seed, min_chars):
    """Sentences of 4 to 9 words from WORDS, capitalised, a paragraph break every 5."""
    rnd = random.Random(seed)
    parts, n, count = [], 0, 0
    while n < min_chars:
        s = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 9)))
        count += 1
        s = s[0].upper() + s[1:] + "." + ("\n" if count % 5 == 0 else " ")
        parts.append(s)
        n += len(s)
    return "".join(parts)


def chinese(seed, min_chars):
    """Clauses of two-character words from HANZI, separated by full-width punctuation."""
    rnd = random.Random(seed)
    words = [rnd.choice(HANZI) + rnd.choice(HANZI) for _ in range(60)]
    parts, n = [], 0
    while n < min_chars:
        s = "，".join(rnd.choice(words) for _ in range(rnd.randint(3, 7))) + "。\n"
        parts.append(s)
        n += len(s)
    return "".join(parts)


# ------------------------------------------------------------------------------------------------
# servers

try:
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (ImportError, OSError, AttributeError):
    _prctl = None


def _die_with_parent():
    """Runs in the child before exec: the server gets SIGKILL if this process dies."""
    if _prctl:
        _prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


class Server:
    """One `lstmgen serve` process on 127.0.0.1 with --port 0; start() may be called again
    (same directories and options) after the process has ended."""

    def __init__(self, name, models, db, args=(), env=None):
        self.name, self.models, self.db = name, models, db
        self.args, self.env = [str(a) for a in args], env
        self.proc, self.port, self.starts, self.logs = None, None, 0, []
        SERVERS.append(self)

    def start(self):
        self.starts += 1
        log_path = os.path.join(TMP, "%s-%d.log" % (self.name, self.starts))
        self.logs.append(log_path)
        cmd = [LSTMGEN, "serve", "--host", "127.0.0.1", "--port", "0", "--models", self.models,
               "--db", self.db] + self.args
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("LSTMGEN_"):
                del env[k]
        env.update(self.env or {})
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("server %s did not start (exit %s):\n%s"
                                     % (self.name, self.proc.poll(), self.log()[-3000:]))
            time.sleep(0.02)
        while True:
            try:
                if get(self, "/healthz", timeout=5).status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server %s never answered /healthz" % self.name)
            time.sleep(0.05)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self, which=-1):
        with open(self.logs[which], "rb") as f:
            return f.read().decode("utf-8", "replace")

    def terminate(self, timeout=30):
        """SIGTERM; returns (exit code, seconds it took)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "timeout"
        return rc, time.monotonic() - t0

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None


def kill_all():
    for s in SERVERS:
        if s.alive():
            s.proc.kill()


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


def sanitizer_reports(text):
    return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKS)]


# ------------------------------------------------------------------------------------------------
# HTTP

class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise AssertionError("response is not JSON (%s): %r" % (e, self.body[:500]))

    @property
    def text(self):
        return self.body.decode("utf-8")

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:600])


def request(server, method, path, body=None, headers=None, timeout=REQ_TIMEOUT, chunked=False):
    """One request on a new connection. A dict/list body is sent as JSON."""
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode("utf-8")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        if chunked:
            conn.request(method, path, body=iter([body[i:i + 65536]
                                                  for i in range(0, len(body), 65536)]),
                         headers=headers, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def get(server, path, **kw):
    return request(server, "GET", path, **kw)


def post(server, path, body=None, **kw):
    return request(server, "POST", path, body, **kw)


def generate(server, **fields):
    return post(server, "/generate", fields)


def metrics(server):
    """Prometheus text -> {(name, ((label, value), ...)): value} plus the raw text."""
    r = get(server, "/metrics")
    assert r.status == 200, "GET /metrics: %r" % r
    out = {}
    for line in r.text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$", line)
        assert m, "not a Prometheus sample line: %r" % line
        labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out, r


def metric(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def active_generations(server):
    return metric(metrics(server)[0], "lstmgen_generations_active")


def wait_for(what, fn, timeout, interval=0.05):
    """Calls fn until it returns something true; that value, or a failure naming what."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %gs waiting for %s (last: %r)" % (timeout, what, last))


class RawStream:
    """A request on a raw socket (Connection: close), for reading a response a little at a time
    and for hanging up in the middle of it."""

    def __init__(self, server, method, path, body=None, headers=None, timeout=REQ_TIMEOUT,
                 rcvbuf=None):
        data = json.dumps(body).encode("utf-8") if body is not None else b""
        head = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1", "Connection: close",
                "Content-Length: %d" % len(data)]
        if body is not None:
            head.append("Content-Type: application/json")
        head += ["%s: %s" % kv for kv in (headers or {}).items()]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # before connecting, so that the window the server sees stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", server.port))
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + data)
        self.raw, self.eof = b"", False
        self._fill_until(lambda: b"\r\n\r\n" in self.raw, timeout)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()

    def _fill_until(self, done, timeout):
        deadline = time.monotonic() + timeout
        while not done():
            if self.eof:
                raise AssertionError("the server closed the connection early: %r" % self.raw[-500:])
            if time.monotonic() > deadline:
                raise AssertionError("timed out reading the response: %r" % self.raw[-500:])
            chunk = self.sock.recv(65536)
            if not chunk:
                self.eof = True
            self.raw += chunk

    def read_until(self, needle, timeout=REQ_TIMEOUT):
        self._fill_until(lambda: needle in self.raw, timeout)

    def read_to_end(self, timeout=REQ_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.eof:
            if time.monotonic() > deadline:
                raise AssertionError("the response did not end within %gs" % timeout)
            chunk = self.sock.recv(65536)
            if not chunk:
                self.eof = True
            self.raw += chunk
        return self.body()

    def body(self):
        """The body so far, de-chunked (whole chunks only)."""
        if self.headers.get("transfer-encoding", "").lower() != "chunked":
            return self.raw
        # offsets, not slices: a stream of a few seconds is 100,000 chunks, and slicing the rest
        # at each one made this quadratic (minutes of copying)
        raw, out, at = self.raw, [], 0
        while True:
            eol = raw.find(b"\r\n", at)
            if eol < 0:
                break
            size = int(raw[at:eol].split(b";")[0], 16)
            if size == 0 or len(raw) - (eol + 2) < size + 2:
                break
            out.append(raw[eol + 2:eol + 2 + size])
            at = eol + 2 + size + 2
        return b"".join(out)

    def close(self):
        self.sock.close()


def send_raw(server, body, close=False):
    """Sends a POST /generate on a raw socket and returns the socket, unread."""
    data = json.dumps(body).encode("utf-8")
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=REQ_TIMEOUT)
    sock.sendall(b"POST /generate HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: "
                 b"application/json\r\nContent-Length: %d\r\n\r\n"
                 % (b"Connection: close\r\n" if close else b"", len(data)) + data)
    return sock


def read_all(sock):
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return buf
        buf += chunk


def serve_refused(*args, env=None):
    """Runs `lstmgen serve ARGS` that must refuse to start: (exit code, stderr). No LSTMGEN_*
    variable reaches it but those in env."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LSTMGEN_")}
    p = subprocess.run([LSTMGEN, "serve"] + [str(a) for a in args], capture_output=True,
                       timeout=60, env=dict(clean, **(env or {})))
    return p.returncode, p.stderr.decode("utf-8", "replace")


def raw_head_only(server, path, headers):
    """Sends only a request head announcing a body; the response, read until the server closes
    the connection (it must, without waiting for the body)."""
    head = ["POST %s HTTP/1.1" % path, "Host: 127.0.0.1", "Connection: close"]
    head += ["%s: %s" % kv for kv in headers.items()]
    with socket.create_connection(("127.0.0.1", server.port), timeout=REQ_TIMEOUT) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        buf = read_all(sock)
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return Resp(int(lines[0].split()[1]), hdrs, body)


def pick_stop(seed_text, full, start, n):
    """A substring of full, n characters long, whose first occurrence in seed_text + full is at
    or after full[start] (so neither the seed text nor the seam holds it)."""
    whole = seed_text + full
    for i in range(start, len(full) - n):
        if whole.find(full[i:i + n]) == len(seed_text) + i:
            return full[i:i + n]
    raise AssertionError("no usable stop string in %r" % full)


def sse_blocks(body):
    """The events of a text/event-stream body: a list of raw blocks (bytes, without the blank
    line), checking the stream ends on a blank line."""
    assert body.endswith(b"\n\n"), "the event stream does not end with a blank line: %r" % body[-200:]
    return body[:-2].split(b"\n\n")


def stream_text(r):
    """The text a /generate event stream carried, and how it finished (raises on an error)."""
    assert r.status == 200, "stream: HTTP %d %r" % (r.status, r.body[:200])
    events = [e for _, e in data_events(r.body)]
    assert "finish_reason" in events[-1], "the stream ended with %r" % events[-1]
    return "".join(e["text"] for e in events[:-1]), events[-1]["finish_reason"]


def data_events(body):
    """For /generate and /v1/completions streams: each block is exactly one `data: ...` line.
    Returns [(raw payload bytes, decoded JSON or the string '[DONE]')]."""
    out = []
    for block in sse_blocks(body):
        assert block.startswith(b"data: ") and b"\n" not in block, \
            "an event that is not one data line: %r" % block[:300]
        payload = block[6:]
        try:
            text = payload.decode("utf-8")  # strict: an event never splits a character
        except UnicodeDecodeError as e:
            raise AssertionError("an event is not valid UTF-8 (%s): %r" % (e, payload))
        out.append((payload, "[DONE]" if text == "[DONE]" else json.loads(text)))
    return out


def named_events(body):
    """For /jobs/{id}/events: [(event name, decoded data)]; comment lines are skipped."""
    out = []
    for block in sse_blocks(body):
        name, data = None, None
        for line in block.decode("utf-8").split("\n"):
            if line.startswith(":"):
                continue
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            else:
                raise AssertionError("unexpected event line %r" % line)
        if name or data is not None:
            out.append((name, data))
    return out


# ------------------------------------------------------------------------------------------------
# the command line

def run_cli(*args, timeout=600):
    cmd = [LSTMGEN] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s" % (" ".join(cmd), p.returncode,
                                                     p.stderr.decode("utf-8", "replace")[-2000:]))
    return p.stdout.decode("utf-8")


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# A checkpoint read in Python (safetensors: a u64 header length, a JSON header, float32 data) and
# the LSTM forward pass (PyTorch's nn.LSTM gate order i, f, g, o, then nn.Linear), to score a text
# independently of the C code.

def load_checkpoint(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__")
    tensors = {}
    for name, e in header.items():
        if e["dtype"] != "F32" or name.startswith("optim."):
            continue
        b, end = e["data_offsets"]
        vals = struct.unpack("<%df" % ((end - b) // 4), data[b:end])
        if len(e["shape"]) == 2:
            cols = e["shape"][1]
            tensors[name] = [vals[i * cols:(i + 1) * cols] for i in range(e["shape"][0])]
        else:
            tensors[name] = list(vals)
    return meta, tensors


def reference_logprobs(path, text):
    """ln P(text[t] | text[:t]) for t >= 1 (None at 0), stateful from the zero state."""
    meta, w = load_checkpoint(path)
    vocab = json.loads(meta["vocab"])
    index = {ch: i for i, ch in enumerate(vocab)}
    L, H = int(meta["layers"]), int(meta["hidden"])

    def dot(a, b):
        return math.fsum(x * y for x, y in zip(a, b))

    def sigmoid(x):
        if x >= 0:
            return 1.0 / (1.0 + math.exp(-x))
        e = math.exp(x)
        return e / (1.0 + e)

    h = [[0.0] * H for _ in range(L)]
    c = [[0.0] * H for _ in range(L)]
    out = [None]
    for t, ch in enumerate(text):
        x_id, below = index[ch], None
        for k in range(L):
            wih, whh = w["lstm.weight_ih_l%d" % k], w["lstm.weight_hh_l%d" % k]
            bih, bhh = w["lstm.bias_ih_l%d" % k], w["lstm.bias_hh_l%d" % k]
            g = [bih[r] + bhh[r] + (wih[r][x_id] if k == 0 else dot(wih[r], below))
                 + dot(whh[r], h[k]) for r in range(4 * H)]
            i_g = [sigmoid(v) for v in g[0:H]]
            f_g = [sigmoid(v) for v in g[H:2 * H]]
            g_g = [math.tanh(v) for v in g[2 * H:3 * H]]
            o_g = [sigmoid(v) for v in g[3 * H:4 * H]]
            c[k] = [f_g[j] * c[k][j] + i_g[j] * g_g[j] for j in range(H)]
            h[k] = [o_g[j] * math.tanh(c[k][j]) for j in range(H)]
            below = h[k]
        if t + 1 < len(text):
            logits = [w["fc.bias"][v] + dot(w["fc.weight"][v], h[L - 1]) for v in range(len(vocab))]
            top = max(logits)
            lse = top + math.log(math.fsum(math.exp(z - top) for z in logits))
            out.append(logits[index[text[t + 1]]] - lse)
    return out


# ------------------------------------------------------------------------------------------------
# fixture: data, models and the main server

def setUpModule():
    global EN_TEXT, ZH_TEXT, JOB_TEXT, MODELS_DIR, BIG_MODEL, MAIN
    EN_TEXT = english(1, 20000)
    ZH_TEXT = chinese(3, 6000)
    JOB_TEXT = english(5, 60000)
    MODELS_DIR = os.path.join(TMP, "models")
    os.makedirs(MODELS_DIR)
    os.makedirs(os.path.join(TMP, "extra"))
    en = write_file(os.path.join(TMP, "en.txt"), EN_TEXT)
    zh = write_file(os.path.join(TMP, "zh.txt"), ZH_TEXT)
    BIG_MODEL = os.path.join(TMP, "extra", "big.safetensors")
    common = ["--threads", 1, "--sample-chars", 0, "--quiet", "--val-fraction", 0.1, "--seed", 1]
    jobs = [
        ["--corpus", en, "--out", os.path.join(MODELS_DIR, "win.safetensors"), "--maxlen", 20,
         "--step", 3, "--hidden", 32, "--batch", 32, "--epochs", 1],
        ["--corpus", en, "--out", os.path.join(MODELS_DIR, "seq.safetensors"), "--regime",
         "sequence", "--seq-len", 30, "--layers", 1, "--hidden", 48, "--batch", 8, "--epochs", 2],
        ["--corpus", zh, "--out", os.path.join(MODELS_DIR, "zh.safetensors"), "--regime",
         "sequence", "--seq-len", 30, "--layers", 1, "--hidden", 32, "--batch", 8, "--epochs", 2,
         "--lr", 0.01],
        ["--corpus", en, "--out", BIG_MODEL, "--regime", "sequence", "--seq-len", 30, "--layers",
         1, "--hidden", 64, "--batch", 8, "--epochs", 1],
    ]
    t0 = time.monotonic()
    procs = [subprocess.Popen([LSTMGEN, "train"] + [str(a) for a in j + common],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for j in jobs]
    for p, j in zip(procs, jobs):
        _, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise AssertionError("lstmgen train %s failed:\n%s" % (j, err.decode()[-2000:]))
    print("fixture: 4 models trained in %.1fs" % (time.monotonic() - t0))
    MAIN = Server("main", MODELS_DIR, os.path.join(TMP, "main.db"),
                  ["--max-length", MAIN_MAX_LENGTH, "--max-body", MAIN_MAX_BODY]).start()
    print("fixture: main server pid %d on port %d" % (MAIN.pid, MAIN.port))


def tearDownModule():
    kill_all()


class E2E(unittest.TestCase):
    """Each test runs under a watchdog; helpers for the error shape."""

    maxDiff = 4000

    def setUp(self):
        self._watchdog = threading.Timer(TEST_LIMIT, self._timed_out)
        self._watchdog.daemon = True
        self._watchdog.start()

    def tearDown(self):
        self._watchdog.cancel()

    def _timed_out(self):
        sys.stderr.write("\nFAIL: %s exceeded its %ds limit; tracebacks:\n" % (self.id(), TEST_LIMIT))
        faulthandler.dump_traceback(all_threads=True)
        kill_all()
        sys.stderr.write("e2e: 0 passed, 1 failed\n")
        sys.stderr.flush()
        os._exit(1)

    def assertStatus(self, r, status, what=""):
        self.assertEqual(r.status, status, "%s: expected HTTP %d, got %r" % (what, status, r))

    def assertError(self, r, status, code=None, param=None, mentions=(), what=""):
        """r is an error in the service's shape: {"error": {"code", "message", "type", "param"}}."""
        self.assertStatus(r, status, what)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"),
                        "%s: error Content-Type %r" % (what, r.headers.get("content-type")))
        body = r.json()
        self.assertEqual(list(body), ["error"], "%s: error body %r" % (what, body))
        e = body["error"]
        for k in ("code", "message", "type", "param"):
            self.assertIn(k, e, "%s: error lacks %r: %r" % (what, k, body))
        self.assertIsInstance(e["code"], str, what)
        self.assertIsInstance(e["message"], str, what)
        self.assertTrue(e["message"], "%s: empty message" % what)
        if code is not None:
            self.assertEqual(e["code"], code, "%s: error code in %r" % (what, body))
        if param is not None:
            self.assertEqual(e["param"], param, "%s: error param in %r" % (what, body))
        for m in mentions:
            self.assertIn(m, e["message"], "%s: message does not mention %r" % (what, m))
        return e

    def ok_json(self, r, status=200, what=""):
        self.assertStatus(r, status, what)
        return r.json()


# ------------------------------------------------------------------------------------------------
# operations

class T01Ops(E2E):
    def test_port_in_use(self):
        """A second server on a port in use refuses to start (it must not share the port)."""
        rc, err = serve_refused("--host", "127.0.0.1", "--port", MAIN.port, "--models",
                                MODELS_DIR, "--db", os.path.join(TMP, "second.db"))
        self.assertNotEqual(rc, 0, err)
        self.assertIn("cannot listen on 127.0.0.1:%d" % MAIN.port, err)
        self.assertIn("in use", err)
        self.assertStatus(get(MAIN, "/readyz"), 200, "the first server still answers")

    def assertJsonLines(self, text, what):
        """Every line of text is one JSON object; they are returned."""
        lines = text.splitlines()
        self.assertTrue(lines, "%s: nothing logged" % what)
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                self.fail("%s: a log line that is not JSON: %r" % (what, line))
            self.assertIsInstance(records[-1], dict, "%s: %r" % (what, line))
        return records

    def test_json_log(self):
        """With --log-format json (or LSTMGEN_LOG_FORMAT=json) every line the server logs is a
        JSON object: startup, requests that fail, shutdown, and the reasons a server exits at
        startup (a second trainer refused by the lease, a port in use, a bad option's value)."""
        d = os.path.join(TMP, "jsonlog")
        os.makedirs(d)
        db = os.path.join(d, "db.sqlite")
        s = Server("jsonlog", MODELS_DIR, db, ["--log-format", "json"]).start()
        self.assertStatus(get(s, "/healthz"), 200)
        self.assertError(get(s, "/nope"), 404)
        self.assertError(post(s, "/generate", {"seed_text": 5}), 400)
        self.assertError(raw_head_only(s, "/generate", {"Content-Length": "2",
                                                        "X-Big": "a" * 100000}), 431)

        def serve(*args, env=None):
            return serve_refused("--host", "127.0.0.1", "--models", MODELS_DIR, *args, env=env)

        failures = {
            "a second trainer": (serve("--port", 0, "--db", db, "--log-format", "json"), 1,
                                 "another trainer"),
            "a port in use": (serve("--port", s.port, "--db", os.path.join(d, "other.db"),
                                    "--log-format", "json"), 1, "cannot listen"),
            "a bad flag value": (serve("--port", "x", "--log-format", "json"), 2, "--port"),
            "a bad variable": (serve(env={"LSTMGEN_LOG_FORMAT": "json", "LSTMGEN_PORT": "x"}), 2,
                               "--port"),
        }
        for what, ((rc, err), want_rc, mention) in failures.items():
            self.assertEqual(rc, want_rc, "%s: %s" % (what, err))
            records = self.assertJsonLines(err, what)
            self.assertTrue(any(r.get("level") == "error" and mention in r.get("message", "")
                                for r in records), "%s: %r" % (what, records))
        rc, _ = s.terminate()
        self.assertEqual(rc, 0)
        records = self.assertJsonLines(s.log(), "the server's log")
        self.assertEqual({r["status"] for r in records if "status" in r}, {200, 400, 404, 431},
                         records)
        messages = " | ".join(r.get("message", "") for r in records)
        for m in ("listening on", "SIGTERM: stopping", "stopped after"):
            self.assertIn(m, messages)

    def test_healthz(self):
        r = get(MAIN, "/healthz")
        self.assertEqual(self.ok_json(r), {"status": "ok"})
        self.assertTrue(r.headers["content-type"].startswith("application/json"))

    def test_readyz(self):
        body = self.ok_json(get(MAIN, "/readyz"))
        self.assertEqual(body["status"], "ready", body)
        self.assertIs(body["database"], True, body)
        self.assertIs(body["models_dir"], True, body)
        self.assertGreaterEqual(body["models"], 3, body)
        names = [m["name"] for m in self.ok_json(get(MAIN, "/models"))["models"]]
        self.assertIn(body["default_model"], names, body)

    def test_openapi(self):
        r = get(MAIN, "/openapi.json")
        doc = self.ok_json(r)
        self.assertIsInstance(doc, dict)
        self.assertIn("openapi", doc)
        self.assertIsInstance(doc.get("paths"), dict, "openapi.json has no paths object")
        for p in ("/generate", "/v1/completions", "/models/{name}", "/jobs/{id}/events"):
            self.assertIn(p, doc["paths"], "openapi.json lacks %s" % p)

    def test_metrics(self):
        before, _ = metrics(MAIN)
        key = dict(method="POST", route="/generate", status="200")
        r = generate(MAIN, model="seq", seed_text="The ", length=37, seed=1)
        self.assertStatus(r, 200)
        self.assertStatus(get(MAIN, "/no/such/route"), 404)
        # a request is counted when libmicrohttpd reports it complete, which can be just after
        # the client has its response: poll until both show
        n0 = metric(before, "lstmgen_http_requests_total", **key) or 0

        def counted():
            m = metrics(MAIN)
            return m if (metric(m[0], "lstmgen_http_requests_total", **key) == n0 + 1 and
                         metric(m[0], "lstmgen_http_requests_total", method="GET",
                                route="unmatched", status="404")) else None

        after, raw = wait_for("the requests to be counted", counted, 10)
        self.assertTrue(raw.headers["content-type"].startswith("text/plain"), raw.headers)
        text = raw.text
        for line in ("# TYPE lstmgen_http_requests_total counter",
                     "# TYPE lstmgen_http_request_duration_seconds histogram",
                     "# TYPE lstmgen_generated_characters_total counter",
                     "# TYPE lstmgen_generations_active gauge",
                     "# TYPE lstmgen_generation_queue_depth gauge", "# TYPE lstmgen_jobs gauge"):
            self.assertIn(line, text)
        n1 = metric(after, "lstmgen_http_requests_total", **key)
        self.assertEqual(n1, n0 + 1, "POST /generate 200 counter: %s -> %s" % (n0, n1))
        self.assertGreaterEqual(metric(after, "lstmgen_http_requests_total", method="GET",
                                       route="unmatched", status="404") or 0, 1,
                                "404s are counted under route=\"unmatched\"")
        self.assertGreaterEqual(metric(after, "lstmgen_http_requests_total", method="GET",
                                       route="/metrics", status="200") or 0, 1)
        g0 = metric(before, "lstmgen_generated_characters_total")
        g1 = metric(after, "lstmgen_generated_characters_total")
        self.assertEqual(g1 - g0, 37, "generated characters %s -> %s after 37" % (g0, g1))
        # the latency histogram of that series: cumulative buckets, +Inf == count, a sum
        buckets = sorted((float(dict(lb)["le"]), v) for (name, lb), v in after.items()
                         if name == "lstmgen_http_request_duration_seconds_bucket"
                         and {k: v2 for k, v2 in lb if k != "le"} == key)
        self.assertGreaterEqual(len(buckets), 5, "too few histogram buckets: %r" % buckets)
        self.assertEqual(buckets[-1][0], math.inf)
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts), "buckets are not cumulative: %r" % buckets)
        self.assertEqual(counts[-1], metric(after, "lstmgen_http_request_duration_seconds_count",
                                            **key))
        self.assertGreater(metric(after, "lstmgen_http_request_duration_seconds_sum", **key), 0)
        for st in ("queued", "running", "succeeded", "failed", "cancelled"):
            self.assertIsNotNone(metric(after, "lstmgen_jobs", status=st), "lstmgen_jobs{%s}" % st)
        self.assertEqual(metric(after, "lstmgen_generations_active"), 0)
        self.assertEqual(metric(after, "lstmgen_generation_queue_depth"), 0)


# ------------------------------------------------------------------------------------------------
# POST /generate

class T02Generate(E2E):
    def test_defaults_and_fields(self):
        default = self.ok_json(get(MAIN, "/models"))["default_model"]
        r = generate(MAIN, seed_text="The ")
        b = self.ok_json(r)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        for k in ("id", "model", "seed_text", "text", "finish_reason", "seed", "usage", "timing",
                  "mode"):
            self.assertIn(k, b, "response lacks %r" % k)
        self.assertEqual(b["model"], default, "no model named: the default answers")
        self.assertRegex(b["id"], r"^gen-[0-9a-f]+$")
        self.assertEqual(b["seed_text"], "The ")
        self.assertEqual(len(b["text"]), 200, "the default length is 200 characters")
        self.assertEqual(b["finish_reason"], "length")
        self.assertIsInstance(b["seed"], int)
        self.assertTrue(0 <= b["seed"] < 2 ** 53, b["seed"])
        self.assertEqual(b["usage"], {"seed_chars": 4, "generated_chars": 200})
        self.assertGreaterEqual(b["timing"]["total_ms"], 0)
        self.assertGreaterEqual(b["timing"]["chars_per_second"], 0)
        # the reported fresh seed reproduces the text
        again = self.ok_json(generate(MAIN, seed_text="The ", seed=b["seed"]))
        self.assertEqual(again["text"], b["text"], "the reported seed does not reproduce the text")
        self.assertNotEqual(again["id"], b["id"], "two generations share an id")

    def test_missing_and_empty_seed_text(self):
        self.assertError(generate(MAIN, length=5), 400, "missing_field", "seed_text")
        b = self.ok_json(generate(MAIN, model="seq", seed_text="", length=25, seed=3))
        self.assertEqual(len(b["text"]), 25)
        self.assertEqual(b["usage"]["seed_chars"], 0)

    def test_length_is_exact_in_characters(self):
        zh_vocab, en_vocab = set(ZH_TEXT), set(EN_TEXT)
        for model, seed_text, vocab in (("seq", "The ", en_vocab), ("win", "The ", en_vocab),
                                        ("zh", ZH_TEXT[:2], zh_vocab)):
            for n in (1, 17, 250):
                b = self.ok_json(generate(MAIN, model=model, seed_text=seed_text, length=n, seed=n))
                self.assertEqual(len(b["text"]), n, "%s length %d: %r" % (model, n, b["text"]))
                self.assertEqual(b["usage"]["generated_chars"], n)
                self.assertLessEqual(set(b["text"]), vocab, "%s: characters outside the corpus"
                                     % model)
        b = self.ok_json(generate(MAIN, model="zh", seed_text=ZH_TEXT[:2], length=100, seed=5))
        multibyte = sum(1 for ch in b["text"] if len(ch.encode("utf-8")) == 3)
        self.assertGreater(multibyte, 50, "a Chinese generation of 100 characters has %d CJK"
                           % multibyte)
        self.assertEqual(b["usage"]["seed_chars"], 2, "seed_chars counts characters, not bytes")

    def test_seed_determinism(self):
        for model in ("seq", "win", "zh"):
            st = ZH_TEXT[:2] if model == "zh" else "The "
            a = self.ok_json(generate(MAIN, model=model, seed_text=st, length=120, seed=42))
            b = self.ok_json(generate(MAIN, model=model, seed_text=st, length=120, seed=42))
            c = self.ok_json(generate(MAIN, model=model, seed_text=st, length=120, seed=43))
            self.assertEqual(a["text"], b["text"], "%s: same seed, different text" % model)
            self.assertNotEqual(a["text"], c["text"], "%s: another seed, same text" % model)
            self.assertEqual(a["seed"], 42)

    def test_greedy(self):
        base = dict(model="seq", seed_text="The man ", length=80)
        g1 = self.ok_json(generate(MAIN, temperature=0, seed=1, **base))["text"]
        g2 = self.ok_json(generate(MAIN, temperature=0, seed=2, **base))["text"]
        self.assertEqual(g1, g2, "temperature 0 depends on the seed")
        k1 = self.ok_json(generate(MAIN, temperature=1, top_k=1, seed=3, **base))["text"]
        self.assertEqual(k1, g1, "top_k 1 differs from temperature 0")
        p = self.ok_json(generate(MAIN, temperature=1, top_p=1e-9, seed=4, **base))["text"]
        self.assertEqual(p, g1, "top_p ~0 differs from temperature 0")
        w1 = self.ok_json(generate(MAIN, model="win", seed_text="The man ", length=60,
                                   temperature=0, seed=1))["text"]
        w2 = self.ok_json(generate(MAIN, model="win", seed_text="The man ", length=60,
                                   temperature=0, seed=9))["text"]
        self.assertEqual(w1, w2, "window model: temperature 0 depends on the seed")

    def test_stop(self):
        base = dict(model="seq", seed_text="The ", length=400, seed=11)
        full = self.ok_json(generate(MAIN, **base))["text"]
        stop = pick_stop("The ", full, 20, 2)  # first occurs well inside the generated text
        cut = full.index(stop)
        b = self.ok_json(generate(MAIN, stop=stop, **base))
        self.assertEqual(b["finish_reason"], "stop", b)
        self.assertEqual(b["text"], full[:cut], "stop %r: text does not end right before it" % stop)
        self.assertEqual(b["usage"]["generated_chars"], cut)
        # several stops: the earliest wins; one that never occurs changes nothing
        later = pick_stop("The ", full, cut + 10, 3)
        b = self.ok_json(generate(MAIN, stop=[later, stop, "@@@"], **base))
        self.assertEqual(b["text"], full[:cut])
        b = self.ok_json(generate(MAIN, stop=["@@@"], **base))
        self.assertEqual((b["text"], b["finish_reason"]), (full, "length"))

    def test_unknown_chars(self):
        e = self.assertError(generate(MAIN, model="seq", seed_text="The mañ", length=5), 400,
                             "unknown_character", "seed_text", mentions=("ñ", "U+00F1"))
        self.assertIn("position 6", e["message"])
        b = self.ok_json(generate(MAIN, model="seq", seed_text="The mañ", length=5,
                                  unknown_chars="skip", seed=1))
        self.assertEqual(len(b["text"]), 5)
        self.assertEqual(b["usage"]["seed_chars"], 6, "the skipped character is not counted")
        self.assertError(generate(MAIN, model="seq", seed_text="x", unknown_chars="maybe"), 400,
                         "out_of_range", "unknown_chars")

    def test_curl_form_content_type(self):
        # curl -d sends application/x-www-form-urlencoded unless told otherwise
        body = json.dumps({"model": "seq", "seed_text": "The ", "length": 12, "seed": 5})
        r = post(MAIN, "/generate", body,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        b = self.ok_json(r, what="JSON sent as application/x-www-form-urlencoded")
        self.assertEqual(len(b["text"]), 12)
        plain = self.ok_json(generate(MAIN, model="seq", seed_text="The ", length=12, seed=5))
        self.assertEqual(b["text"], plain["text"])

    def test_modes(self):
        b = self.ok_json(generate(MAIN, model="win", seed_text="The ", length=10, seed=1))
        self.assertEqual(b["mode"], "window", "a window-regime model")
        b = self.ok_json(generate(MAIN, model="seq", seed_text="The ", length=10, seed=1))
        self.assertEqual(b["mode"], "stateful", "a sequence-regime model")
        b = self.ok_json(generate(MAIN, model="seq", seed_text="The ", length=10, seed=1,
                                  mode="window"))
        self.assertEqual(b["mode"], "window", "mode window on a sequence model")
        self.assertError(generate(MAIN, model="seq", seed_text="The ", mode="fast"), 400,
                         "out_of_range", "mode")


# ------------------------------------------------------------------------------------------------
# streaming

class T03Streaming(E2E):
    def stream(self, **fields):
        r = generate(MAIN, stream=True, **fields)
        self.assertStatus(r, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/event-stream"), r.headers)
        return r, data_events(r.body)

    def check_stream(self, model, seed_text, length, **extra):
        plain = self.ok_json(generate(MAIN, model=model, seed_text=seed_text, length=length,
                                      seed=42, **extra))
        r, events = self.stream(model=model, seed_text=seed_text, length=length, seed=42, **extra)
        *texts, final = events
        for raw, e in texts:
            self.assertEqual(list(e), ["text"], "a text event with other fields: %r" % raw)
            self.assertIsInstance(e["text"], str)
            self.assertTrue(e["text"], "an empty text event")
        self.assertNotIn("text", final[1], "the final event carries text: %r" % final[0])
        for k in ("id", "finish_reason", "seed", "usage", "timing"):
            self.assertIn(k, final[1], "the final event lacks %r: %r" % (k, final[0]))
        self.assertEqual(final[1]["seed"], 42)
        self.assertEqual(final[1]["finish_reason"], plain["finish_reason"])
        self.assertEqual(final[1]["usage"], plain["usage"])
        self.assertIn("total_ms", final[1]["timing"])
        self.assertIn("chars_per_second", final[1]["timing"])
        joined = "".join(e["text"] for _, e in texts)
        self.assertEqual(joined, plain["text"], "%s: streamed text != plain text" % model)
        self.assertEqual(r.headers.get("x-request-id"), final[1]["id"],
                         "X-Request-Id is the generation's id")
        return texts

    def test_stream_matches_plain(self):
        self.check_stream("seq", "The ", 150)
        self.check_stream("win", "The ", 150)

    def test_stream_stop(self):
        full = self.ok_json(generate(MAIN, model="seq", seed_text="The ", length=300,
                                     seed=42))["text"]
        stop = pick_stop("The ", full, 100, 3)
        texts = self.check_stream("seq", "The ", 300, stop=stop)
        joined = "".join(e["text"] for _, e in texts)
        self.assertEqual(joined, full[:full.index(stop)], "the stream stops before the stop")

    def test_stream_chinese_whole_characters(self):
        texts = self.check_stream("zh", ZH_TEXT[:2], 300)
        vocab = set(ZH_TEXT)
        multibyte = 0
        for raw, e in texts:
            # the raw bytes decoded strictly in data_events; here: whole vocabulary characters
            self.assertLessEqual(set(e["text"]), vocab, "an event splits or garbles: %r" % raw)
            self.assertNotIn("\ufffd", e["text"])
            multibyte += sum(1 for ch in e["text"] if len(ch.encode("utf-8")) > 1)
        self.assertGreater(multibyte, 100, "too few multi-byte characters to mean anything")


# ------------------------------------------------------------------------------------------------
# stopping generations

LONG_WINDOW = dict(model="win", seed_text="The ", length=MAIN_MAX_LENGTH, mode="window", seed=1)


class T04Cancel(E2E):
    def test_disconnect_stream(self):
        s = RawStream(MAIN, "POST", "/generate", dict(LONG_WINDOW, stream=True))
        self.assertEqual(s.status, 200)
        s.read_until(b"data: ")
        self.assertGreaterEqual(active_generations(MAIN), 1, "the stream is not running")
        s.close()
        t0 = time.monotonic()
        wait_for("active generations to drop to 0 after the client hung up",
                 lambda: active_generations(MAIN) == 0, 20)
        print("  stream: stopped %.2fs after the client hung up" % (time.monotonic() - t0))

    def test_disconnect_logged_as_499(self):
        """A stream the client leaves is logged (and counted) as 499, not 200; with
        --log-format json, libmicrohttpd's own complaints are JSON lines too."""
        s = Server("jsonlog", MODELS_DIR, os.path.join(TMP, "jsonlog.db"),
                   ["--log-format", "json", "--max-length", MAIN_MAX_LENGTH]).start()
        try:
            r = RawStream(s, "POST", "/generate", dict(LONG_WINDOW, stream=True))
            r.read_until(b"data: ")
            r.close()

            def logged():
                lines = [json.loads(l) for l in s.log().splitlines() if l.startswith("{")]
                return [l for l in lines if l.get("path") == "/generate"] or None

            entries = wait_for("the request in the access log", logged, 20)
            self.assertEqual(entries[0]["status"], 499, entries)
            for line in s.log().splitlines():
                if "libmicrohttpd" in line or "Failed to" in line:
                    self.assertEqual(json.loads(line)["source"], "libmicrohttpd", line)
            counted = wait_for("the 499 counted", lambda: metric(
                metrics(s)[0], "lstmgen_http_requests_total", method="POST", route="/generate",
                status="499"), 10)
            self.assertEqual(counted, 1)
        finally:
            rc, _ = s.terminate()
        self.assertEqual(rc, 0)

    def test_disconnect_plain(self):
        sock = send_raw(MAIN, LONG_WINDOW)  # the response would come at the end
        wait_for("the generation to start", lambda: active_generations(MAIN) >= 1, 20)
        sock.close()
        t0 = time.monotonic()
        wait_for("active generations to drop to 0 after the client hung up",
                 lambda: active_generations(MAIN) == 0, 20)
        print("  plain: stopped %.2fs after the client hung up" % (time.monotonic() - t0))

    def test_delete_unknown(self):
        self.assertError(request(MAIN, "DELETE", "/generations/gen-123456789"), 404,
                         "generation_not_found", "id")

    def test_delete_running(self):
        # The id is in the X-Request-Id header, sent before the first event.
        s = RawStream(MAIN, "POST", "/generate", dict(LONG_WINDOW, stream=True))
        try:
            self.assertEqual(s.status, 200)
            gid = s.headers.get("x-request-id")
            self.assertRegex(gid or "", r"^gen-[0-9a-f]+$", "no generation id before the events")
            s.read_until(b"data: ")
            r = request(MAIN, "DELETE", "/generations/" + gid)
            self.assertEqual(self.ok_json(r), {"id": gid, "cancelled": True})
            events = data_events(s.read_to_end(30))
        finally:
            s.close()
        final = events[-1][1]
        self.assertEqual(final["id"], gid)
        self.assertEqual(final["finish_reason"], "cancelled", final)
        n = sum(len(e["text"]) for _, e in events[:-1])
        self.assertEqual(final["usage"]["generated_chars"], n)
        self.assertLess(n, MAIN_MAX_LENGTH)
        wait_for("no active generation", lambda: active_generations(MAIN) == 0, 20)
        self.assertError(request(MAIN, "DELETE", "/generations/" + gid), 404,
                         "generation_not_found")


# ------------------------------------------------------------------------------------------------
# POST /v1/completions, GET /v1/models

class T05Completions(E2E):
    def complete(self, **fields):
        return post(MAIN, "/v1/completions", fields)

    def test_shape(self):
        t0 = time.time()
        b = self.ok_json(self.complete(model="seq", prompt="The ", max_tokens=20, seed=7))
        self.assertRegex(b["id"], r"^cmpl-")
        self.assertEqual(b["object"], "text_completion")
        self.assertIsInstance(b["created"], int)
        self.assertLessEqual(abs(b["created"] - t0), 60)
        self.assertEqual(b["model"], "seq")
        self.assertEqual(len(b["choices"]), 1)
        ch = b["choices"][0]
        self.assertEqual(sorted(ch), ["finish_reason", "index", "logprobs", "text"])
        self.assertEqual((ch["index"], ch["logprobs"], ch["finish_reason"]), (0, None, "length"))
        self.assertEqual(len(ch["text"]), 20)
        self.assertEqual(b["usage"], {"prompt_tokens": 4, "completion_tokens": 20,
                                      "total_tokens": 24})
        # the same sampler as /generate
        g = self.ok_json(generate(MAIN, model="seq", seed_text="The ", length=20, seed=7))
        self.assertEqual(ch["text"], g["text"], "/v1/completions and /generate differ")
        # prompt as an array of one string; the default model
        b2 = self.ok_json(self.complete(prompt=["The "], max_tokens=20, seed=7))
        default = self.ok_json(get(MAIN, "/models"))["default_model"]
        self.assertEqual(b2["model"], default)

    def test_n_and_seed(self):
        one = self.ok_json(self.complete(model="seq", prompt="The ", max_tokens=30, seed=100))
        again = self.ok_json(self.complete(model="seq", prompt="The ", max_tokens=30, seed=100))
        self.assertEqual(one["choices"][0]["text"], again["choices"][0]["text"], "same seed")
        two = self.ok_json(self.complete(model="seq", prompt="The ", max_tokens=30, seed=100, n=2))
        self.assertEqual([c["index"] for c in two["choices"]], [0, 1])
        self.assertEqual(two["usage"]["completion_tokens"], 60)
        self.assertEqual(two["choices"][0]["text"], one["choices"][0]["text"])
        nxt = self.ok_json(self.complete(model="seq", prompt="The ", max_tokens=30, seed=101))
        self.assertEqual(two["choices"][1]["text"], nxt["choices"][0]["text"],
                         "choice i uses seed + i")
        self.assertNotEqual(two["choices"][0]["text"], two["choices"][1]["text"])

    def test_stop(self):
        full = self.ok_json(self.complete(model="seq", prompt="The ", max_tokens=300,
                                          seed=9))["choices"][0]["text"]
        stop = pick_stop("The ", full, 20, 2)
        ch = self.ok_json(self.complete(model="seq", prompt="The ", max_tokens=300, seed=9,
                                        stop=[stop]))["choices"][0]
        self.assertEqual((ch["text"], ch["finish_reason"]), (full[:full.index(stop)], "stop"))

    def test_stream(self):
        plain = self.ok_json(self.complete(model="seq", prompt="The ", max_tokens=40, seed=3, n=2))
        r = self.complete(model="seq", prompt="The ", max_tokens=40, seed=3, n=2, stream=True)
        self.assertStatus(r, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/event-stream"))
        events = data_events(r.body)
        self.assertEqual(events[-1][1], "[DONE]", "the stream does not end with data: [DONE]")
        texts, finishes = {0: "", 1: ""}, {}
        for raw, e in events[:-1]:
            self.assertNotEqual(e, "[DONE]", "[DONE] before the end")
            self.assertEqual(e["object"], "text_completion", raw)
            self.assertEqual(e["id"], events[0][1]["id"])
            self.assertEqual(e["model"], "seq")
            (ch,) = e["choices"]
            texts[ch["index"]] += ch["text"]
            if ch["finish_reason"] is not None:
                self.assertNotIn(ch["index"], finishes, "two finishing chunks")
                finishes[ch["index"]] = ch["finish_reason"]
        self.assertEqual(finishes, {0: "length", 1: "length"})
        for i in (0, 1):
            self.assertEqual(texts[i], plain["choices"][i]["text"], "streamed choice %d" % i)

    def test_stream_usage_and_echo(self):
        plain = self.ok_json(self.complete(model="seq", prompt="The ", max_tokens=20, seed=4, n=2))
        r = self.complete(model="seq", prompt="The ", max_tokens=20, seed=4, n=2, stream=True,
                          echo=True, stream_options={"include_usage": True})
        events = data_events(r.body)
        self.assertEqual(events[-1][1], "[DONE]")
        last = events[-2][1]  # include_usage: a last chunk with no choices and the usage
        self.assertEqual(last["choices"], [], last)
        self.assertEqual(last["usage"], plain["usage"], "usage of the stream")
        texts = {0: "", 1: ""}
        for _, e in events[:-2]:
            (ch,) = e["choices"]
            texts[ch["index"]] += ch["text"]
        for i in (0, 1):  # echo: the prompt comes first
            self.assertEqual(texts[i], "The " + plain["choices"][i]["text"], "choice %d" % i)
        self.assertError(self.complete(model="seq", prompt="x", stream=True,
                                       stream_options={"bogus": 1}), 400, "unknown_field", "bogus")

    def test_logprobs_shapes(self):
        for k in range(6):
            b = self.ok_json(self.complete(model="seq", prompt="The ", max_tokens=10, seed=1,
                                           logprobs=k))
            ch = b["choices"][0]
            lp = ch["logprobs"]
            self.assertEqual(sorted(lp), ["text_offset", "token_logprobs", "tokens",
                                          "top_logprobs"], "logprobs %d" % k)
            self.assertEqual("".join(lp["tokens"]), ch["text"])
            self.assertEqual(len(lp["tokens"]), 10)
            self.assertEqual(lp["text_offset"], list(range(4, 14)), "offsets count characters")
            for i, v in enumerate(lp["token_logprobs"]):
                self.assertIsInstance(v, float)
                self.assertLessEqual(v, 0)
                top = lp["top_logprobs"][i]
                if k == 0:
                    self.assertIsNone(top)
                    continue
                # the k most probable, then (as OpenAI does) the chosen one if it is not among them
                chosen = lp["tokens"][i]
                self.assertIn(chosen, top, "the chosen character is listed")
                self.assertAlmostEqual(top[chosen], v, places=9)
                self.assertEqual(len(top), k if list(top)[:k].count(chosen) else k + 1,
                                 "logprobs %d: %r" % (k, top))
                self.assertGreaterEqual(max(top.values()) + 1e-9, v)
                vals = list(top.values())[:k]
                self.assertEqual(vals, sorted(vals, reverse=True), "most probable first")
        # greedy: each token is its position's most probable character
        ch = self.ok_json(self.complete(model="seq", prompt="The ", max_tokens=10, seed=1,
                                        logprobs=1, temperature=0))["choices"][0]
        for tok, top in zip(ch["logprobs"]["tokens"], ch["logprobs"]["top_logprobs"]):
            self.assertEqual(list(top), [tok])
        self.assertError(self.complete(model="seq", prompt="The ", logprobs=6), 400,
                         param="logprobs")

    def test_echo_scores_the_prompt(self):
        vocab = set(EN_TEXT)
        prompt = "".join(ch for ch in english(99, 400) if ch in vocab)[:150]
        b = self.ok_json(self.complete(model="seq", prompt=prompt, max_tokens=0, echo=True,
                                       logprobs=1))
        ch = b["choices"][0]
        lp = ch["logprobs"]
        self.assertEqual(ch["text"], prompt)
        self.assertEqual(lp["tokens"], list(prompt))
        self.assertEqual(lp["text_offset"], list(range(len(prompt))))
        self.assertIsNone(lp["token_logprobs"][0], "the first character has no prediction")
        self.assertIsNone(lp["top_logprobs"][0])
        scored = lp["token_logprobs"][1:]
        self.assertEqual(len(scored), len(prompt) - 1)
        self.assertTrue(all(isinstance(v, float) and v <= 0 for v in scored))
        self.assertEqual(b["usage"]["completion_tokens"], 0)
        # against lstmgen eval on the same text
        path = write_file(os.path.join(TMP, "prompt.txt"), prompt)
        ev = json.loads(run_cli("eval", "--model", os.path.join(MODELS_DIR, "seq.safetensors"),
                                path))
        self.assertEqual(ev["chars"], len(scored))
        mean = -sum(scored) / len(scored)
        self.assertAlmostEqual(mean, ev["nats"], delta=1e-4,
                               msg="-mean logprob %.6f != eval nats %.6f" % (mean, ev["nats"]))
        # against the forward pass computed here from the checkpoint's weights
        ref = reference_logprobs(os.path.join(MODELS_DIR, "seq.safetensors"), prompt)
        worst = max(abs(a - b) for a, b in zip(scored, ref[1:]))
        self.assertLess(worst, 2e-4, "per-character logprobs differ from a reference LSTM by "
                        "up to %.2e" % worst)
        print("  echo scoring: %d characters, mean %.6f nats (eval %.6f), max |diff| vs the "
              "Python LSTM %.1e" % (len(scored), mean, ev["nats"], worst))

    def test_errors(self):
        cases = [
            (dict(prompt=5), "prompt"),
            (dict(prompt="The ", max_tokens=-1), "max_tokens"),
            (dict(prompt="The ", max_tokens=0), "max_tokens"),
            (dict(prompt="The ", temperature="hot"), "temperature"),
            (dict(prompt="The ", n=17), "n"),
            (dict(prompt="The ", stream=True, echo=True, logprobs=1), "logprobs"),
            (dict(prompt="The ", bogus=1), "bogus"),
            (dict(prompt="The mañ"), "prompt"),
        ]
        for body, param in cases:
            r = self.complete(model="seq", **body)
            self.assertError(r, 400, param=param, what="%r" % body)
            self.assertEqual(r.json()["error"]["type"], "invalid_request_error")
        self.assertError(self.complete(model="nope", prompt="x"), 404, "model_not_found", "model")
        self.assertEqual(self.complete(model="nope", prompt="x").json()["error"]["type"],
                         "not_found_error")

    def test_v1_models(self):
        b = self.ok_json(get(MAIN, "/v1/models"))
        self.assertEqual(b["object"], "list")
        ids = [m["id"] for m in b["data"]]
        for name in ("seq", "win", "zh"):
            self.assertIn(name, ids)
        self.assertFalse([i for i in ids if "latest" in i], ".latest checkpoints are not models")
        for m in b["data"]:
            self.assertEqual(sorted(m), ["created", "id", "object", "owned_by"])
            self.assertEqual(m["object"], "model")
            self.assertIsInstance(m["created"], int)


# ------------------------------------------------------------------------------------------------
# models

def lstm_parameters(V, H, L):
    n = 0
    for k in range(L):
        n += 4 * H * (V if k == 0 else H) + 4 * H * H + 8 * H
    return n + H * V + V


class T05bChatAndBrowsers(E2E):
    """What chat frontends and the clients in a browser rely on: chat completions (the messages
    through the template, then exactly a completion of that text), prompt arrays, streamed
    logprobs, models.retrieve, /props, /tokenize and /detokenize."""

    def chat(self, server=None, **fields):
        return post(server or MAIN, "/v1/chat/completions", fields)

    def complete(self, **fields):
        return post(MAIN, "/v1/completions", fields)

    def test_chat_is_a_completion_of_the_template(self):
        msgs = [{"role": "system", "content": "The "},
                {"role": "user", "content": [{"type": "text", "text": "and "},
                                             {"type": "text", "text": "the"}]}]
        c = self.ok_json(self.chat(model="seq", messages=msgs, max_tokens=60, seed=5, n=2))
        p = self.ok_json(self.complete(model="seq", prompt="The \nand the\n", max_tokens=60,
                                       seed=5, n=2))
        self.assertRegex(c["id"], r"^chatcmpl-[0-9a-f]{16}$")
        self.assertEqual(c["object"], "chat.completion")
        self.assertEqual(c["model"], "seq")
        self.assertEqual(len(c["choices"]), 2)
        for ch, pc in zip(c["choices"], p["choices"]):
            self.assertEqual(sorted(ch), ["finish_reason", "index", "logprobs", "message"])
            self.assertEqual(ch["message"], {"role": "assistant", "content": pc["text"],
                                             "refusal": None})
            self.assertEqual((ch["index"], ch["finish_reason"]), (pc["index"], "length"))
        self.assertEqual(c["usage"], p["usage"])
        self.assertEqual(c["usage"]["prompt_tokens"], len("The \nand the\n"))
        # a chat is not cut at the completions' 16: its default is /generate's length
        d = self.ok_json(self.chat(model="seq", messages=msgs, seed=5))
        self.assertEqual(len(d["choices"][0]["message"]["content"]), 200)
        self.assertEqual(d["choices"][0]["message"]["content"][:60], c["choices"][0]["message"]
                         ["content"])
        m = self.ok_json(self.chat(model="seq", messages=msgs, seed=5, max_tokens=50,
                                   max_completion_tokens=7))
        self.assertEqual(m["usage"]["completion_tokens"], 7, "max_completion_tokens wins")
        # what people type: characters outside the vocabulary are left out of the prompt
        e = self.ok_json(self.chat(model="seq", messages=[{"role": "user", "content": "T\u20ache "},
                                                          {"role": "user", "content": "and the"}],
                                   max_tokens=60, seed=5, n=2))
        self.assertEqual(e["choices"][1]["message"]["content"],
                         c["choices"][1]["message"]["content"])

    def test_chat_stream(self):
        msgs = [{"role": "user", "content": "The "}]
        plain = self.ok_json(self.chat(model="seq", messages=msgs, max_tokens=80, seed=3, n=2))
        r = self.chat(model="seq", messages=msgs, max_tokens=80, seed=3, n=2, stream=True,
                      stream_options={"include_usage": True})
        self.assertStatus(r, 200)
        events = [e for _, e in data_events(r.body)]
        self.assertEqual(events[-1], "[DONE]")
        usage = events[-2]
        self.assertEqual((usage["choices"], usage["usage"]), ([], plain["usage"]))
        text, first, finish = {0: "", 1: ""}, {}, {}
        for e in events[:-2]:
            self.assertEqual(e["object"], "chat.completion.chunk")
            self.assertRegex(e["id"], r"^chatcmpl-")
            (ch,) = e["choices"]
            i = ch["index"]
            self.assertNotIn(i, finish, "a chunk after the choice finished")
            if i not in first:  # each choice opens with the role and empty content
                first[i] = ch["delta"]
                self.assertEqual(ch["delta"], {"role": "assistant", "content": ""})
                continue
            if ch["finish_reason"]:
                self.assertEqual(ch["delta"], {})
                finish[i] = ch["finish_reason"]
                continue
            self.assertEqual(sorted(ch["delta"]), ["content"])
            text[i] += ch["delta"]["content"]
        self.assertEqual(finish, {0: "length", 1: "length"})
        self.assertEqual([text[0], text[1]], [c["message"]["content"] for c in plain["choices"]])

    def test_chat_logprobs(self):
        msgs = [{"role": "user", "content": "The "}]
        c = self.ok_json(self.chat(model="seq", messages=msgs, max_tokens=30, seed=8,
                                   logprobs=True, top_logprobs=3))
        p = self.ok_json(self.complete(model="seq", prompt="The \n", max_tokens=30, seed=8,
                                       logprobs=3))
        content = c["choices"][0]["logprobs"]["content"]
        lp = p["choices"][0]["logprobs"]
        self.assertEqual("".join(t["token"] for t in content), c["choices"][0]["message"]
                         ["content"])
        self.assertEqual([t["logprob"] for t in content], lp["token_logprobs"])
        for t, top in zip(content, lp["top_logprobs"]):
            self.assertEqual(t["bytes"], list(t["token"].encode("utf-8")))
            self.assertEqual(len(t["top_logprobs"]), 3)
            self.assertEqual({a["token"]: a["logprob"] for a in t["top_logprobs"]},
                             {k: v for k, v in list(top.items())[:3]})
        # streamed: the same entries, chunk by chunk
        r = self.chat(model="seq", messages=msgs, max_tokens=30, seed=8, logprobs=True,
                      top_logprobs=3, stream=True)
        streamed = []
        for _, e in data_events(r.body)[:-1]:
            ch = e["choices"][0]
            if ch["logprobs"]:
                self.assertEqual(len(ch["logprobs"]["content"]), len(ch["delta"]["content"]))
                streamed += ch["logprobs"]["content"]
        self.assertEqual(streamed, content)

    def test_chat_errors(self):
        msgs = [{"role": "user", "content": "The "}]
        for fields, param, code in [
                ({}, "messages", "missing_field"),
                ({"messages": []}, "messages", "invalid_type"),
                ({"messages": "The "}, "messages", "invalid_type"),
                ({"messages": [{"role": "robot", "content": "x"}]}, "messages", "invalid_value"),
                ({"messages": [{"content": "x"}]}, "messages", "invalid_value"),
                ({"messages": [{"role": "user", "content": 5}]}, "messages", "invalid_type"),
                ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
                 "messages", "unsupported"),
                ({"messages": [{"role": "user", "content": "x", "colour": 1}]}, "colour",
                 "unknown_field"),
                ({"messages": msgs, "tools": []}, "tools", "unknown_field"),
                ({"messages": msgs, "top_logprobs": 2}, "top_logprobs", "invalid_value"),
                ({"messages": msgs, "logprobs": True, "top_logprobs": 21}, "top_logprobs",
                 "out_of_range"),
                ({"messages": msgs, "response_format": {"type": "json_object"}},
                 "response_format", "unsupported"),
                ({"messages": msgs, "max_completion_tokens": 0}, "max_completion_tokens",
                 "out_of_range"),
                ({"messages": msgs, "stop": ["a", "b", "c", "d", "e"]}, "stop", None),
                ({"messages": msgs, "presence_penalty": 1}, "presence_penalty", "out_of_range"),
                ({"messages": msgs, "n": 17}, "n", "out_of_range")]:
            fields.setdefault("model", "seq")
            self.assertError(self.chat(**fields), 400, code, param, what=fields)
        # a stop string that is not UTF-8 is refused before any stream starts
        raw = b'{"model": "seq", "messages": [{"role": "user", "content": "a"}], "stop": ["\xff"]'
        for tail in (b"}", b', "stream": true}'):
            self.assertError(request(MAIN, "POST", "/v1/chat/completions", raw + tail,
                                     headers={"Content-Type": "application/json"}), 400,
                             param="stop", what=tail)
        # the harmless fields a client sends are accepted
        self.ok_json(self.chat(model="seq", messages=msgs, max_tokens=3, user="u1",
                               presence_penalty=0, frequency_penalty=0, logit_bias={},
                               response_format={"type": "text"}))

    def test_custom_template(self):
        s = Server("chat", MODELS_DIR, os.path.join(TMP, "chat.db"),
                   ["--chat-template", "{role} {content}\\n"]).start()
        try:
            props = self.ok_json(get(s, "/props"))
            self.assertEqual(props["chat_template"], "{role} {content}\n")
            msgs = [{"role": "system", "content": "The "}, {"role": "user", "content": "and"}]
            c = self.ok_json(self.chat(s, model="seq", messages=msgs, max_tokens=40, seed=2))
            p = self.ok_json(post(s, "/v1/completions", {
                "model": "seq", "prompt": "system The \nuser and\n", "max_tokens": 40,
                "seed": 2}))
            self.assertEqual(c["choices"][0]["message"]["content"], p["choices"][0]["text"])
        finally:
            s.terminate()
        rc, err = serve_refused("--chat-template", "{role}", "--port", 0)
        self.assertEqual(rc, 2, err)
        self.assertIn("{content}", err)

    def test_prompt_arrays(self):
        prompts = ["The ", "and the ", ""]
        b = self.ok_json(self.complete(model="seq", prompt=prompts, max_tokens=40, seed=4, n=2))
        self.assertEqual([c["index"] for c in b["choices"]], list(range(6)))
        alone = [self.ok_json(self.complete(model="seq", prompt=p, max_tokens=40, seed=4, n=2))
                 for p in prompts]
        self.assertEqual([c["text"] for c in b["choices"]],
                         [c["text"] for a in alone for c in a["choices"]])
        self.assertEqual(b["usage"]["prompt_tokens"], sum(len(p) for p in prompts))
        self.assertEqual(b["usage"]["completion_tokens"], 6 * 40)
        r = self.complete(model="seq", prompt=prompts, max_tokens=40, seed=4, n=2, stream=True,
                          echo=True)
        texts = {}
        for _, e in data_events(r.body)[:-1]:
            ch = e["choices"][0]
            texts[ch["index"]] = texts.get(ch["index"], "") + ch["text"]
        self.assertEqual([texts[i] for i in range(6)],
                         [p + c["text"] for p, a in zip(prompts, alone) for c in a["choices"]])
        self.assertError(self.complete(model="seq", prompt=["a"] * 9, n=2), 400, "out_of_range",
                         "n")
        self.assertError(self.complete(model="seq", prompt=["a"] * 17), 400, "invalid_type",
                         "prompt")
        self.assertError(self.complete(model="seq", prompt=["a", 5]), 400, "invalid_type",
                         "prompt")
        self.assertError(self.complete(model="seq", prompt=[]), 400, "invalid_type", "prompt")
        self.assertError(self.complete(model="seq", prompt=["The ", "\u20ac"]), 400,
                         "unknown_character", "prompt")

    def test_prompt_array_cancelled_by_one_delete(self):
        # every prompt runs under the id the answer names: one DELETE ends them all
        s = RawStream(MAIN, "POST", "/v1/completions", dict(
            model="win", prompt=["The ", "and "], max_tokens=MAIN_MAX_LENGTH, stream=True))
        try:
            self.assertEqual(s.status, 200)
            gid = s.headers.get("x-request-id")
            s.read_until(b"data: ")
            listed = self.ok_json(request(MAIN, "GET", "/generations"))["generations"]
            self.assertEqual([g["id"] for g in listed].count(gid), 2, listed)
            self.assertEqual(self.ok_json(request(MAIN, "DELETE", "/generations/" + gid)),
                             {"id": gid, "cancelled": True})
            events = data_events(s.read_to_end(30))
        finally:
            s.close()
        self.assertEqual(events[-1][1], "[DONE]")
        finals = [e["choices"][0] for _, e in events[:-1] if e["choices"][0]["finish_reason"]]
        self.assertEqual(sorted(c["index"] for c in finals), [0, 1], "both prompts ended")
        wait_for("no active generation", lambda: active_generations(MAIN) == 0, 20)

    def test_streamed_completion_logprobs(self):
        fields = dict(model="seq", prompt="The ", max_tokens=50, seed=6, logprobs=2, n=2)
        plain = self.ok_json(self.complete(**fields))
        got = {}
        for _, e in data_events(self.complete(stream=True, **fields).body)[:-1]:
            ch = e["choices"][0]
            if ch["logprobs"]:
                lp = got.setdefault(ch["index"], {k: [] for k in ch["logprobs"]})
                for k, v in ch["logprobs"].items():
                    lp[k] += v
                self.assertEqual(len(ch["logprobs"]["tokens"]), len(ch["text"]))
        self.assertEqual([got[0], got[1]], [c["logprobs"] for c in plain["choices"]])
        self.assertError(self.complete(stream=True, echo=True, **fields), 400, "unsupported",
                         "logprobs")

    def test_model_retrieve(self):
        self.assertEqual(self.ok_json(get(MAIN, "/v1/models/win")),
                         next(m for m in self.ok_json(get(MAIN, "/v1/models"))["data"]
                              if m["id"] == "win"))
        d = self.ok_json(get(MAIN, "/v1/models/default"))
        self.assertEqual((d["id"], d["root"], d["object"]), ("default", "seq", "model"),
                         "the model a request without 'model' gets")
        self.assertError(get(MAIN, "/v1/models/nope"), 404, "model_not_found")
        self.assertError(get(MAIN, "/v1/models/.hidden"), 400, "invalid_model_name")

    def test_tokenize_detokenize(self):
        text = EN_TEXT[:300]
        t = self.ok_json(post(MAIN, "/tokenize", {"model": "seq", "content": text}))
        vocab = sorted(set(EN_TEXT))
        self.assertEqual(t["tokens"], [vocab.index(ch) for ch in text], "code point order")
        back = self.ok_json(post(MAIN, "/detokenize", {"model": "seq", "tokens": t["tokens"]}))
        self.assertEqual(back["content"], text)
        pieces = self.ok_json(post(MAIN, "/tokenize", {"model": "seq", "content": "The",
                                                       "with_pieces": True}))["tokens"]
        self.assertEqual(pieces, [{"id": vocab.index(c), "piece": c} for c in "The"])
        self.assertError(post(MAIN, "/tokenize", {"model": "seq", "content": "a\u20acb"}), 400,
                         "unknown_character", "content")
        skipped = self.ok_json(post(MAIN, "/tokenize", {"model": "seq", "content": "a\u20acb",
                                                        "unknown_chars": "skip"}))
        self.assertEqual(skipped["tokens"], [vocab.index("a"), vocab.index("b")])
        self.assertError(post(MAIN, "/tokenize", {"model": "seq"}), 400, "missing_field",
                         "content")
        for bad in ([len(vocab)], [-1], [1.5], ["a"]):
            self.assertError(post(MAIN, "/detokenize", {"model": "seq", "tokens": bad}), 400,
                             "out_of_range", "tokens", what=bad)
        zh = self.ok_json(post(MAIN, "/tokenize", {"model": "zh", "content": ZH_TEXT[:50]}))
        self.assertEqual(self.ok_json(post(MAIN, "/detokenize", {"model": "zh", "tokens":
                                                                  zh["tokens"]}))["content"],
                         ZH_TEXT[:50])

    def test_example_openai_raw(self):
        """examples/openai_raw.py, as a user runs it: every call it makes works here."""
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                              "examples", "openai_raw.py")
        env = dict(os.environ, LSTMGEN_URL="http://127.0.0.1:%d" % MAIN.port,
                   SCORE_TEXT=EN_TEXT[:60])
        out = subprocess.run([sys.executable, script], capture_output=True, text=True,
                             timeout=120, env=env)
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        self.assertIn("using 'seq'", out.stdout, "the server's default model")
        for part in ("== completion", "the same request again gives the same texts: True",
                     "== streamed", "== chat", "nats per character"):
            self.assertIn(part, out.stdout)

    def test_props(self):
        p = self.ok_json(get(MAIN, "/props"))
        self.assertEqual(p["default_model"], "seq")
        self.assertEqual(p["chat_template"], "{content}\n")
        self.assertEqual(p["limits"]["max_length"], MAIN_MAX_LENGTH)
        self.assertEqual(p["limits"]["max_body"], MAIN_MAX_BODY)
        self.assertEqual(p["auth"], {"api_key": False, "public_generate": False,
                                     "public_metrics": False})
        # the limits it shows are the ones the routes hold to
        lim = p["limits"]
        stops = ["x%d" % i for i in range(lim["openai_stop_strings"] + 1)]
        self.assertError(self.complete(model="seq", stop=stops), 400, param="stop")
        self.ok_json(self.complete(model="seq", stop=stops[:-1], max_tokens=2))
        self.assertError(generate(MAIN, model="seq", seed_text="", length=2,
                                  stop=["x%d" % i for i in range(lim["stop_strings"] + 1)]),
                         400, param="stop")
        self.assertError(self.complete(model="seq", n=lim["choices"] + 1), 400, param="n")
        d = p["defaults"]
        self.assertEqual(len(self.ok_json(generate(MAIN, model="seq", seed_text=""))["text"]),
                         d["length"])
        self.assertEqual(self.ok_json(self.complete(model="seq"))["usage"]["completion_tokens"],
                         d["max_tokens"])


class T06Models(E2E):
    def test_list(self):
        b = self.ok_json(get(MAIN, "/models"))
        by_name = {m["name"]: m for m in b["models"]}
        for name in ("seq", "win", "zh"):
            self.assertIn(name, by_name)
        self.assertFalse([n for n in by_name if "latest" in n], ".latest files listed as models")
        self.assertIn(b["default_model"], by_name)
        self.assertEqual([n for n, m in by_name.items() if m["default"]], [b["default_model"]])

    def test_describe(self):
        m = self.ok_json(get(MAIN, "/models/seq"))
        V = len(set(EN_TEXT))
        self.assertEqual(m["name"], "seq")
        self.assertEqual(m["vocab_size"], V)
        self.assertEqual((m["layers"], m["hidden"], m["regime"]), (1, 48, "sequence"))
        self.assertEqual(m["parameters"], lstm_parameters(V, 48, 1))
        self.assertEqual(m["corpus_sha256"], hashlib.sha256(EN_TEXT.encode()).hexdigest())
        self.assertEqual(m["file_size"], os.path.getsize(os.path.join(MODELS_DIR,
                                                                      "seq.safetensors")))
        self.assertEqual(m["epochs"], 2)
        for k in ("val_loss", "train_loss"):
            self.assertIsInstance(m[k], float, "%s: %r" % (k, m[k]))
            self.assertTrue(0 < m[k] < math.log(V) + 1, "%s %r" % (k, m[k]))
        for k in ("created_at", "modified_at"):
            self.assertRegex(m[k], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        w = self.ok_json(get(MAIN, "/models/win"))
        self.assertEqual((w["regime"], w["maxlen"], w["hidden"]), ("window", 20, 32))
        z = self.ok_json(get(MAIN, "/models/zh"))
        self.assertEqual(z["vocab_size"], len(set(ZH_TEXT)))

    def test_not_found_and_bad_names(self):
        self.assertError(get(MAIN, "/models/nope"), 404, "model_not_found")
        self.assertError(get(MAIN, "/models/" + "a" * 65), 400, "invalid_model_name")
        self.assertError(get(MAIN, "/models/.hidden"), 400, "invalid_model_name")
        self.assertError(get(MAIN, "/models/.."), 400, "invalid_model_name")
        self.assertError(request(MAIN, "DELETE", "/models/" + "a" * 65), 400, "invalid_model_name")
        self.assertError(get(MAIN, "/models/" + "a" * 64), 404, "model_not_found")
        # %2F is decoded before routing: the path no longer matches /models/{name}. Whatever the
        # status, nothing outside the models directory is read.
        for path in ("/models/..%2F..%2Fetc", "/models/..%2F..%2Fetc%2Fpasswd"):
            r = get(MAIN, path)
            self.assertIn(r.status, (400, 404), "%s: %r" % (path, r))
            self.assertError(r, r.status)
            self.assertNotIn(b"root:", r.body)

    def test_delete(self):
        shutil.copyfile(os.path.join(MODELS_DIR, "win.safetensors"),
                        os.path.join(MODELS_DIR, "victim.safetensors"))
        self.ok_json(get(MAIN, "/models/victim"))
        b = self.ok_json(request(MAIN, "DELETE", "/models/victim"))
        self.assertEqual(b, {"name": "victim", "deleted": True})
        self.assertFalse(os.path.exists(os.path.join(MODELS_DIR, "victim.safetensors")))
        self.assertError(get(MAIN, "/models/victim"), 404, "model_not_found")
        self.assertError(generate(MAIN, model="victim", seed_text="a"), 404, "model_not_found",
                         "model")
        self.assertError(request(MAIN, "DELETE", "/models/victim"), 404, "model_not_found")

    def test_reload_when_replaced(self):
        path = os.path.join(MODELS_DIR, "swap.safetensors")
        shutil.copyfile(os.path.join(MODELS_DIR, "win.safetensors"), path)
        V = len(set(EN_TEXT))
        a = self.ok_json(get(MAIN, "/models/swap"))
        self.assertEqual(a["parameters"], lstm_parameters(V, 32, 1))
        self.ok_json(generate(MAIN, model="swap", seed_text="The ", length=5))
        # replaced by a rename, as a deploy would
        tmp = path + ".tmp"
        shutil.copyfile(BIG_MODEL, tmp)
        os.replace(tmp, path)
        b = self.ok_json(get(MAIN, "/models/swap"))
        self.assertEqual((b["parameters"], b["hidden"], b["regime"]),
                         (lstm_parameters(V, 64, 1), 64, "sequence"), "not reloaded after a rename")
        g = self.ok_json(generate(MAIN, model="swap", seed_text="The ", length=5))
        self.assertEqual(g["mode"], "stateful")
        # overwritten in place (same inode)
        shutil.copyfile(os.path.join(MODELS_DIR, "win.safetensors"), path)
        c = self.ok_json(get(MAIN, "/models/swap"))
        self.assertEqual(c["parameters"], lstm_parameters(V, 32, 1), "not reloaded after a copy")
        os.remove(path)
        self.assertError(get(MAIN, "/models/swap"), 404)


# ------------------------------------------------------------------------------------------------
# corpora

ISO_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"


class T07Corpora(E2E):
    def check_corpus(self, c, name, text):
        data = text.encode("utf-8")
        self.assertIsInstance(c["id"], int)
        self.assertEqual(c["name"], name)
        self.assertEqual(c["chars"], len(text))
        self.assertEqual(c["bytes"], len(data))
        self.assertEqual(c["distinct_chars"], len(set(text)))
        self.assertEqual(c["sha256"], hashlib.sha256(data).hexdigest())
        self.assertRegex(c["created_at"], ISO_TIME)

    def test_create_list_get_delete(self):
        text = english(21, 3000)
        r = post(MAIN, "/corpora?name=plain%20english", text,
                 headers={"Content-Type": "text/plain; charset=utf-8"})
        a = self.ok_json(r, 201, "text/plain upload")
        self.check_corpus(a, "plain english", text)
        zh = chinese(22, 2000)
        b = self.ok_json(post(MAIN, "/corpora", {"name": "中文", "text": zh}), 201, "JSON upload")
        self.check_corpus(b, "中文", zh)
        self.assertNotEqual(a["id"], b["id"])
        listed = self.ok_json(get(MAIN, "/corpora"))["corpora"]
        self.assertLessEqual({a["id"], b["id"]}, {c["id"] for c in listed})
        for c in listed:
            self.assertNotIn("text", c, "the list carries whole texts")
        one = self.ok_json(get(MAIN, "/corpora/%d" % a["id"]))
        self.assertEqual(one, a)
        self.assertEqual(self.ok_json(request(MAIN, "DELETE", "/corpora/%d" % b["id"])),
                         {"id": b["id"], "deleted": True})
        self.assertError(get(MAIN, "/corpora/%d" % b["id"]), 404)
        self.assertError(request(MAIN, "DELETE", "/corpora/%d" % b["id"]), 404)
        self.assertError(get(MAIN, "/corpora/abc"), 404)
        self.assertNotIn(b["id"], [c["id"] for c in self.ok_json(get(MAIN, "/corpora"))["corpora"]])

    def test_invalid(self):
        raw = bytearray(english(23, 3000).encode())
        raw[1234] = 0xFF
        self.assertError(post(MAIN, "/corpora?name=bad", bytes(raw),
                              headers={"Content-Type": "text/plain"}), 400, "invalid_utf8",
                         "text", mentions=("1234",))
        self.assertError(post(MAIN, "/corpora", "hello",
                              headers={"Content-Type": "text/plain"}), 400, "missing_field", "name")
        self.assertError(post(MAIN, "/corpora", {"name": "x"}), 400, "missing_field", "text")
        self.assertError(post(MAIN, "/corpora", {"text": "x"}), 400, "missing_field", "name")
        self.assertError(post(MAIN, "/corpora", {"name": "x", "text": ""}), 400, "empty_corpus")
        self.assertError(post(MAIN, "/corpora", {"name": "x", "text": "y", "z": 1}), 400,
                         "unknown_field", "z")
        self.assertError(get(MAIN, "/corpora?limit=-1"), 400, param="limit")


# ------------------------------------------------------------------------------------------------
# training jobs

def job_status(server, job_id):
    r = get(server, "/jobs/%d" % job_id)
    assert r.status == 200, "GET /jobs/%d: %r" % (job_id, r)
    return r.json()


def wait_job(server, job_id, statuses, timeout):
    return wait_for("job %d to reach %s" % (job_id, statuses),
                    lambda: (lambda j: j if j["status"] in statuses else None)(
                        job_status(server, job_id)), timeout, 0.1)


def add_corpus(server, name, text, headers=None):
    r = post(server, "/corpora?name=" + name, text,
             headers=dict({"Content-Type": "text/plain"}, **(headers or {})))
    assert r.status == 201, "POST /corpora: %r" % r
    return r.json()["id"]


# A job of a few epochs over JOB_TEXT: about 0.3 s an epoch in a release build, 3 s under ASan.
JOB_HP = {"regime": "window", "maxlen": 20, "step": 3, "hidden": 32, "batch": 32,
          "val_fraction": 0.1, "sample_chars": 20, "seed": 3}


class T08Jobs(E2E):
    @classmethod
    def setUpClass(cls):
        cls.corpus = add_corpus(MAIN, "jobs", JOB_TEXT)

    def test_validation(self):
        for hp, field in (({"hidden": 3}, "hidden"), ({"lr": "x"}, "lr"), ({"nope": 1}, "nope"),
                          ({"epochs": 0}, "epochs"), ({"regime": "both"}, "regime"),
                          ({"dropout": 1.5}, "dropout"), ({"layers": 2.5}, "layers"),
                          ({"optimizer": "sgd"}, "optimizer"), ({"lowercase": 1}, "lowercase")):
            r = post(MAIN, "/jobs", {"corpus_id": self.corpus, "model_name": "bad",
                                     "hyperparameters": hp})
            self.assertError(r, 400, "invalid_hyperparameter", "hyperparameters." + field,
                             mentions=("hyperparameters." + field,), what=repr(hp))
        self.assertError(post(MAIN, "/jobs", {"corpus_id": self.corpus, "model_name": "bad",
                                              "hyperparameters": [1]}), 400,
                         param="hyperparameters")
        self.assertError(post(MAIN, "/jobs", {"corpus_id": 99999999, "model_name": "bad"}), 404,
                         "corpus_not_found", "corpus_id")
        for name in ("../evil", "", "a" * 65, ".hidden", "a/b", "spa ce"):
            self.assertError(post(MAIN, "/jobs", {"corpus_id": self.corpus, "model_name": name}),
                             400, param="model_name", what=repr(name))
        self.assertError(post(MAIN, "/jobs", {"model_name": "x"}), 400, "missing_field",
                         "corpus_id")
        self.assertError(post(MAIN, "/jobs", {"corpus_id": self.corpus, "model_name": "x",
                                              "extra": 1}), 400, "unknown_field", "extra")
        self.assertError(get(MAIN, "/jobs/99999999"), 404, "job_not_found")
        self.assertError(get(MAIN, "/jobs/99999999/events"), 404, "job_not_found")
        self.assertError(post(MAIN, "/jobs/99999999/cancel"), 404, "job_not_found")
        self.assertError(get(MAIN, "/jobs?status=bogus"), 400, param="status")

    def test_time_budget_chooses_the_size(self):
        # only a budget: the job measures, chooses a size, says so, and ends on time
        hp = {"max_seconds": 3, "seq_len": 32, "sample_chars": 0, "val_fraction": 0.1}
        job = self.ok_json(post(MAIN, "/jobs", {"corpus_id": self.corpus, "model_name": "tbudget",
                                                "hyperparameters": hp}), 202)
        done = wait_job(MAIN, job["id"], ("succeeded", "failed", "cancelled"), 120)
        self.assertEqual(done["status"], "succeeded", done)
        plan = done["plan"]
        self.assertIsInstance(plan, dict, done)
        self.assertIs(plan["chose_size"], True)
        self.assertEqual((plan["regime"], plan["seq_len"]), ("sequence", 32))  # given: kept
        for k in ("layers", "hidden", "batch", "steps"):
            self.assertIsInstance(plan[k], int, k)
            self.assertGreater(plan[k], 0, k)
        self.assertGreater(plan["chars_per_sec"], 0)
        self.assertIn("characters/s measured here", plan["why"])
        self.assertEqual(done["hyperparameters"], hp)  # as sent; the plan says what filled in
        model = self.ok_json(get(MAIN, "/models/tbudget"), 200)
        self.assertEqual((model["layers"], model["hidden"]), (plan["layers"], plan["hidden"]))

    def test_lifecycle_with_events(self):
        hp = dict(JOB_HP, epochs=3)
        r = post(MAIN, "/jobs", {"corpus_id": self.corpus, "model_name": "tjob",
                                 "hyperparameters": hp})
        job = self.ok_json(r, 202)
        self.assertEqual(job["status"], "queued")
        self.assertEqual((job["corpus_id"], job["model_name"], job["attempts"]),
                         (self.corpus, "tjob", 0))
        self.assertEqual(job["hyperparameters"], hp)
        jid = job["id"]
        # the event stream, read as it arrives, with arrival times
        got = {"chunks": []}

        def reader():
            conn = http.client.HTTPConnection("127.0.0.1", MAIN.port, timeout=300)
            try:
                conn.request("GET", "/jobs/%d/events" % jid)
                resp = conn.getresponse()
                got["status"], got["ctype"] = resp.status, resp.getheader("Content-Type")
                while True:
                    chunk = resp.read1(65536)
                    if not chunk:
                        break
                    got["chunks"].append((time.monotonic(), chunk))
            except Exception as e:  # reported below
                got["error"] = repr(e)
            finally:
                conn.close()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        done = wait_job(MAIN, jid, ("succeeded", "failed", "cancelled"), 360)
        t.join(60)
        self.assertFalse(t.is_alive(), "the event stream did not end after the job did")
        self.assertNotIn("error", got)
        self.assertEqual(done["status"], "succeeded", done)
        self.assertEqual(done["attempts"], 1)
        self.assertIsNone(done["error"])
        self.assertEqual(done["progress"]["fraction"], 1)
        for k in ("created_at", "started_at", "finished_at", "updated_at"):
            self.assertRegex(done[k], ISO_TIME)
        self.assertEqual([e["epoch"] for e in done["epochs"]], [1, 2, 3])
        self.assertIsNone(done["plan"])  # no time budget
        for e in done["epochs"]:
            for k in ("train_loss", "val_loss", "seconds"):
                self.assertIsInstance(e[k], (int, float), "epoch %s" % k)
                self.assertTrue(math.isfinite(e[k]) and e[k] >= 0, e)
            self.assertEqual(sorted(e["samples"]), ["0.2", "0.5", "1.0", "1.2"])
            for s in e["samples"].values():
                self.assertEqual(len(s), 20)
            # the samples continue a stretch of the validation text that starts at a word and
            # ends after a space
            seed = e["sample_seed"]
            at = JOB_TEXT.rfind(seed)
            self.assertGreaterEqual(at, len(JOB_TEXT) * 0.8, "not from the validation text: %r" % seed)
            self.assertTrue(30 <= len(seed) <= 60 and JOB_TEXT[at - 1].isspace() and
                            not seed[0].isspace() and seed[-1].isspace(), repr(seed))
        # events
        self.assertEqual(got["status"], 200)
        self.assertTrue(got["ctype"].startswith("text/event-stream"))
        timeline, at = [], 0
        for when, chunk in got["chunks"]:
            at += len(chunk)
            timeline.append((when, at))
        body = b"".join(c for _, c in got["chunks"])
        events = named_events(body)
        names = [n for n, _ in events]
        self.assertEqual(names[-1], "end", names)
        self.assertEqual(names.count("end"), 1)
        self.assertEqual(events[-1][1]["status"], "succeeded")
        self.assertEqual([d["epoch"] for n, d in events if n == "epoch"], [1, 2, 3])
        self.assertTrue(set(names) <= {"progress", "epoch", "end"}, names)
        progress = [d for n, d in events if n == "progress"]
        self.assertIn("running", [d["status"] for d in progress], "no progress while running")
        # streamed as it ran: the first epoch event arrived in an earlier read than the end
        first_epoch = body.index(b"event: epoch")
        end_at = body.index(b"event: end")
        t_epoch = next(w for w, a in timeline if a > first_epoch)
        t_end = next(w for w, a in timeline if a > end_at)
        self.assertLess(t_epoch, t_end, "every event came at once, at the end")
        # the model is published, with the job's id, and serves
        m = self.ok_json(get(MAIN, "/models/tjob"))
        self.assertEqual(m["job_id"], jid)
        self.assertEqual(m["corpus_sha256"], hashlib.sha256(JOB_TEXT.encode()).hexdigest())
        g = self.ok_json(generate(MAIN, model="tjob", seed_text="The ", length=30))
        self.assertEqual((len(g["text"]), g["mode"]), (30, "window"))
        listed = self.ok_json(get(MAIN, "/jobs?status=succeeded"))["jobs"]
        self.assertIn(jid, [j["id"] for j in listed])
        self.assertError(post(MAIN, "/jobs/%d/cancel" % jid), 409, "conflict",
                         what="cancelling a finished job")
        print("  job %d: 3 epochs, %d events (%d progress), val loss %.3f" % (
            jid, len(events), len(progress), done["epochs"][-1]["val_loss"]))

    def test_cancel(self):
        # max_seconds bounds the job if the cancel were lost
        hp = dict(JOB_HP, epochs=1000, max_seconds=300)
        jid = self.ok_json(post(MAIN, "/jobs", {"corpus_id": self.corpus, "model_name": "tcancel",
                                                "hyperparameters": hp}), 202)["id"]
        wait_for("job %d to run" % jid, lambda: (lambda j: j["status"] == "running" and
                                                 j["progress"]["step"] > 0)(job_status(MAIN, jid)),
                 120)
        # a job queued behind it, cancelled before it starts
        queued = self.ok_json(post(MAIN, "/jobs", {"corpus_id": self.corpus,
                                                   "model_name": "tqueued"}), 202)["id"]
        c = self.ok_json(post(MAIN, "/jobs/%d/cancel" % queued))
        self.assertEqual(c["status"], "cancelled", "a queued job is cancelled at once")
        c = self.ok_json(post(MAIN, "/jobs/%d/cancel" % jid))
        self.assertTrue(c["cancel_requested"], c)
        t0 = time.monotonic()
        done = wait_job(MAIN, jid, ("cancelled", "failed", "succeeded"), 60)
        self.assertEqual(done["status"], "cancelled", done)
        print("  running job cancelled in %.2fs" % (time.monotonic() - t0))
        self.assertError(post(MAIN, "/jobs/%d/cancel" % jid), 409, "conflict")
        self.assertError(post(MAIN, "/jobs/%d/cancel" % queued), 409, "conflict")
        self.assertError(get(MAIN, "/models/tcancel"), 404)
        time.sleep(1.5)  # the worker is free: the cancelled queued job must not start
        self.assertEqual(job_status(MAIN, queued)["status"], "cancelled")
        self.assertEqual(job_status(MAIN, queued)["attempts"], 0)


# ------------------------------------------------------------------------------------------------
# errors

class T08bFineTune(E2E):
    def test_fine_tune_job(self):
        """base_model: the job starts from a served model's weights, with its architecture and
        vocabulary; characters it lacks fail the job by name unless unknown_chars says what to
        do; the published model names its parent."""
        text = JOB_TEXT[:20000] + "\u00a7\u00a7 "
        cid = add_corpus(MAIN, "tune-me", text)
        job = lambda **f: post(MAIN, "/jobs", dict({"corpus_id": cid, "model_name": "tuned"}, **f))
        self.assertError(job(base_model="nope"), 404, "model_not_found", "model")
        self.assertError(job(base_model="seq", hyperparameters={"hidden": 64}), 400,
                         "invalid_hyperparameter", "hyperparameters.hidden", mentions=("48",))
        self.assertError(job(unknown_chars="drop"), 400, "invalid_value", "unknown_chars")
        self.assertError(job(base_model="seq", unknown_chars="replace=ab"), 400, "out_of_range",
                         "unknown_chars")
        hp = {"epochs": 1, "batch": 8, "seq_len": 30, "sample_chars": 0}
        failed = self.ok_json(job(base_model="seq", hyperparameters=hp), 202)
        self.assertEqual((failed["base_model"], failed["unknown_chars"]), ("seq", "error"))
        done = wait_job(MAIN, failed["id"], ("succeeded", "failed", "cancelled"), 300)
        self.assertEqual(done["status"], "failed", done)
        self.assertIn("'\u00a7' (U+00A7) x2", done["error"])
        ok = self.ok_json(job(base_model="seq", unknown_chars="drop", hyperparameters=hp), 202)
        done = wait_job(MAIN, ok["id"], ("succeeded", "failed", "cancelled"), 300)
        self.assertEqual(done["status"], "succeeded", done)
        m = self.ok_json(get(MAIN, "/models/tuned"))
        self.assertEqual((m["parent_model"], m["layers"], m["hidden"], m["regime"]),
                         ("seq", 1, 48, "sequence"))
        self.assertEqual(m["vocab_size"], self.ok_json(get(MAIN, "/models/seq"))["vocab_size"])
        self.assertLess(done["epochs"][0]["train_loss"], 2.5, "it started from trained weights")
        self.assertStatus(request(MAIN, "DELETE", "/models/tuned"), 200)


class T09Errors(E2E):
    def test_malformed_json(self):
        for body, pos in (('{"seed_text": "a",}', 18), ('{"a" 1}', 5),
                          ('{"seed_text":"x", "length": tru}', 28)):
            self.assertError(post(MAIN, "/generate", body,
                                  headers={"Content-Type": "application/json"}), 400,
                             "invalid_json", mentions=("byte %d" % pos,), what=body)
        self.assertError(post(MAIN, "/generate", '{"seed_text":"x"} x',
                              headers={"Content-Type": "application/json"}), 400, "invalid_json",
                         mentions=("byte 18",))
        self.assertError(post(MAIN, "/generate", "[1]",
                              headers={"Content-Type": "application/json"}), 400, "invalid_json")
        self.assertError(post(MAIN, "/generate", "", headers={"Content-Type": "application/json"}),
                         400, "invalid_json")
        # \u0000 would silently cut the string short in the parser: refused, with its position
        self.assertError(post(MAIN, "/generate", '{"seed_text": "a\\u0000b"}',
                              headers={"Content-Type": "application/json"}), 400, "invalid_json",
                         mentions=("byte 16",))
        # an escaped backslash before u0000 is ordinary text, not a NUL
        r = post(MAIN, "/generate", '{"seed_text": "a\\\\u0000b", "length": 1}',
                 headers={"Content-Type": "application/json"})
        self.assertNotEqual(r.json().get("error", {}).get("code"), "invalid_json", r)
        # HEAD is GET without a body
        h = request(MAIN, "HEAD", "/models")
        self.assertEqual((h.status, h.body), (200, b""), h)

    def test_invalid_utf8_stop_strings(self):
        """A stop string that is not UTF-8 is a 400 on every generation route, streamed or not
        (it was a 500 on /v1/completions, and a 200 that then failed when streamed)."""
        bodies = [("/generate", b'{"model": "seq", "seed_text": "The ", "length": 5, '
                                b'"stop": ["\xff"]%s}'),
                  ("/v1/completions", b'{"model": "seq", "prompt": "The ", "max_tokens": 5, '
                                      b'"stop": ["a\xc3"]%s}')]
        for path, body in bodies:
            for streamed in (b"", b', "stream": true'):
                r = post(MAIN, path, body % streamed, headers={"Content-Type": "application/json"})
                self.assertError(r, 400, "invalid_utf8", "stop", mentions=("UTF-8",),
                                 what="%s %r" % (path, streamed))

    def test_field_errors(self):
        raw = {
            '"temperature": 1e999': ("temperature", "out_of_range"),
        }
        for frag, (param, code) in raw.items():
            r = post(MAIN, "/generate", '{"seed_text": "a", %s}' % frag,
                     headers={"Content-Type": "application/json"})
            self.assertError(r, 400, code, param, mentions=(param,), what=frag)
        cases = [
            ({"temperature": -1}, "temperature", "out_of_range"),
            ({"temperature": "hot"}, "temperature", "invalid_type"),
            ({"length": 0}, "length", "out_of_range"),
            ({"length": MAIN_MAX_LENGTH + 1}, "length", "out_of_range"),
            ({"length": 2.5}, "length", "invalid_type"),
            ({"length": "10"}, "length", "invalid_type"),
            ({"top_k": -1}, "top_k", "out_of_range"),
            ({"top_p": 0}, "top_p", "out_of_range"),
            ({"top_p": 1.5}, "top_p", "out_of_range"),
            ({"seed": -1}, "seed", "out_of_range"),
            ({"seed": 1.5}, "seed", "invalid_type"),
            ({"stream": "yes"}, "stream", "invalid_type"),
            ({"bogus": 1}, "bogus", "unknown_field"),
            ({"stop": ""}, "stop", None),
            ({"stop": 5}, "stop", "invalid_type"),
            ({"stop": ["a"] * 17}, "stop", None),
            ({"model": 5}, "model", "invalid_type"),
            ({"seed_text": 5}, "seed_text", "invalid_type"),
        ]
        for patch, param, code in cases:
            body = dict({"model": "seq", "seed_text": "The ", "length": 5}, **patch)
            r = post(MAIN, "/generate", body)
            e = self.assertError(r, 400, code, param, what=repr(patch))
            self.assertIn(param, e["message"], "%r: the message does not name the field" % patch)
        e = self.assertError(generate(MAIN, model="seq", seed_text="a",
                                      length=MAIN_MAX_LENGTH + 1), 400)
        self.assertIn(str(MAIN_MAX_LENGTH), e["message"], "the limit is named")

    def test_routing(self):
        self.assertError(get(MAIN, "/nope"), 404, "not_found")
        self.assertError(get(MAIN, "/generate/extra"), 404, "not_found")
        for method, path, allow in (("GET", "/generate", {"POST"}), ("PUT", "/generate", {"POST"}),
                                    ("DELETE", "/healthz", {"GET"}),
                                    ("POST", "/models/seq", {"GET", "DELETE"}),
                                    ("PATCH", "/jobs/1", {"GET"})):
            r = request(MAIN, method, path)
            self.assertError(r, 405, "method_not_allowed", what="%s %s" % (method, path))
            self.assertIn("allow", r.headers, "405 without an Allow header")
            self.assertEqual({m.strip() for m in r.headers["allow"].split(",")}, allow,
                             "%s %s" % (method, path))

    def test_body_limit(self):
        # an announced oversized body is refused before any of it is sent
        for path, ctype in (("/corpora?name=big", "text/plain"), ("/generate", "application/json")):
            r = raw_head_only(MAIN, path, {"Content-Type": ctype,
                                           "Content-Length": str(MAIN_MAX_BODY + 1)})
            self.assertError(r, 413, "body_too_large", mentions=(str(MAIN_MAX_BODY),), what=path)
        # curl sends Expect: 100-continue for large bodies: the answer is 413, not 100
        r = raw_head_only(MAIN, "/corpora?name=big", {"Content-Type": "text/plain",
                                                      "Content-Length": str(50 * MAIN_MAX_BODY),
                                                      "Expect": "100-continue"})
        self.assertError(r, 413, "body_too_large", what="Expect: 100-continue")
        # a chunked body (no Content-Length) is cut off once it passes the limit
        big = b"a" * (MAIN_MAX_BODY + 1)
        self.assertError(post(MAIN, "/corpora?name=big", big, chunked=True,
                              headers={"Content-Type": "text/plain"}), 413, "body_too_large",
                         what="a chunked body")
        # exactly at the limit is accepted, whichever way it is sent
        for chunked in (False, True):
            ok = post(MAIN, "/corpora?name=limit", b"ab" * (MAIN_MAX_BODY // 2), chunked=chunked,
                      headers={"Content-Type": "text/plain"})
            self.assertStatus(ok, 201, "a body of exactly --max-body (chunked %s)" % chunked)
            self.assertEqual(ok.json()["bytes"], MAIN_MAX_BODY)
            request(MAIN, "DELETE", "/corpora/%d" % ok.json()["id"])
        self.assertStatus(get(MAIN, "/healthz"), 200)

    def test_header_limit(self):
        """Header fields past the limit /props reports are a 431 in the JSON error shape (a 100 kB
        header was libmicrohttpd's own HTML page); just under it is served; the server goes on."""
        limit = self.ok_json(get(MAIN, "/props"))["limits"]["max_header_bytes"]
        for size in (limit + 1, 100000):
            r = raw_head_only(MAIN, "/generate", {"Content-Type": "application/json",
                                                  "Content-Length": "2", "X-Big": "a" * size})
            self.assertError(r, 431, "headers_too_large", mentions=(str(limit),),
                             what="a %d-byte header" % size)
        self.assertStatus(get(MAIN, "/healthz", headers={"X-Big": "a" * (limit - 1000)}), 200,
                          "header fields under the limit")
        self.assertStatus(get(MAIN, "/healthz"), 200)

    def test_database_busy(self):
        """A write that finds the database locked by another process past the store's busy
        timeout is a 503 database_busy with Retry-After (it was a 500), reads go on meanwhile,
        and the same write succeeds once the lock is gone."""
        d = os.path.join(TMP, "busy")
        os.makedirs(d)
        db = os.path.join(d, "db.sqlite")
        s = Server("busy", MODELS_DIR, db).start()
        try:
            lock = sqlite3.connect(db, isolation_level=None, timeout=30)
            try:
                lock.execute("BEGIN EXCLUSIVE")  # in WAL mode: the write lock; readers go on
                t0 = time.monotonic()
                r = post(s, "/corpora?name=busy", "some text",
                         headers={"Content-Type": "text/plain"})
                e = self.assertError(r, 503, "database_busy", mentions=("busy",))
                self.assertEqual(e["type"], "overloaded_error")
                self.assertTrue(r.headers.get("retry-after", "").isdigit(), r.headers)
                print("  503 database_busy after %.1fs" % (time.monotonic() - t0))
                self.assertStatus(get(s, "/corpora"), 200, "a read while the lock is held")
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            self.assertStatus(post(s, "/corpora?name=busy", "some text",
                                   headers={"Content-Type": "text/plain"}), 201)
        finally:
            self.assertEqual(s.terminate()[0], 0)

    def test_unsupported_media_type(self):
        self.assertError(post(MAIN, "/generate", '{"seed_text": "a"}',
                              headers={"Content-Type": "text/plain"}), 415,
                         "unsupported_media_type")
        self.assertError(post(MAIN, "/v1/completions", '{"prompt": "a"}',
                              headers={"Content-Type": "text/html"}), 415)


# ------------------------------------------------------------------------------------------------
# CORS

class T10Cors(E2E):
    def test_default_origin(self):
        for r in (get(MAIN, "/healthz"), get(MAIN, "/nope"),
                  generate(MAIN, model="seq", seed_text="a", length=3),
                  generate(MAIN, model="seq", seed_text="a", length=3, stream=True)):
            self.assertEqual(r.headers.get("access-control-allow-origin"), "*", r)
            self.assertNotIn("origin", r.headers.get("vary", "").lower())
        r = request(MAIN, "OPTIONS", "/generate", headers={
            "Origin": "https://x.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        self.assertStatus(r, 204)
        methods = {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
        self.assertLessEqual({"POST", "OPTIONS"}, methods)
        self.assertEqual(r.headers["access-control-allow-headers"], "content-type", "as asked")
        self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
        self.assertEqual(r.body, b"")
        r = request(MAIN, "OPTIONS", "/models/seq")
        self.assertStatus(r, 204)
        self.assertLessEqual({"GET", "DELETE", "OPTIONS"},
                             {m.strip() for m in r.headers["access-control-allow-methods"].split(",")})
        self.assertStatus(request(MAIN, "OPTIONS", "/nope"), 404)


# ------------------------------------------------------------------------------------------------
# API keys, configuration by flags and by environment

class T11Auth(E2E):
    @classmethod
    def setUpClass(cls):
        cls.flags = Server("auth", MODELS_DIR, os.path.join(TMP, "auth.db"),
                           ["--api-key", API_KEY, "--cors-origin",
                            CORS_ORIGIN + ", " + OTHER_ORIGIN]).start()
        cls.env = Server("authenv", MODELS_DIR, os.path.join(TMP, "authenv.db"),
                         ["--default-model", "zh"],
                         env={"LSTMGEN_API_KEY": ENV_API_KEY, "LSTMGEN_AUTH_GENERATE": "1",
                              "LSTMGEN_PUBLIC_METRICS": "true",
                              "LSTMGEN_MAX_LENGTH": "50", "LSTMGEN_CORS_ORIGIN": ENV_CORS_ORIGIN,
                              "LSTMGEN_DEFAULT_MODEL": "win"}).start()

    @classmethod
    def tearDownClass(cls):
        for s in (cls.flags, cls.env):
            rc, _ = s.terminate()
            assert rc == 0, "server %s exited %r on SIGTERM" % (s.name, rc)

    def routes_to_try(self, s):
        """Every route the server serves (from its OpenAPI document), with path parameters
        filled in: (method, path)."""
        doc = self.ok_json(get(s, "/openapi.json", headers={"Authorization": "Bearer " + API_KEY}))
        out = []
        for path, ops in doc["paths"].items():
            for method in ops:
                if method.upper() in ("GET", "POST", "DELETE"):
                    out.append((method.upper(), re.sub(r"\{[^}]*\}", "1", path)))
        self.assertGreater(len(out), 20)
        return out

    def test_every_route_needs_the_key(self):
        """With --api-key, everything but /healthz, /readyz and the web app's files answers 401
        without the right key, and something else with it (the request itself may then be
        wrong)."""
        s = self.flags
        open_paths = {"/healthz", "/readyz", "/", "/app/1"}
        for method, path in self.routes_to_try(s):
            what = "%s %s" % (method, path)
            body = {} if method == "POST" else None
            for auth in (None, "Bearer wrong", "Bearer " + API_KEY + "x", "Bearer",
                         "Basic " + API_KEY, "bearer" + API_KEY):
                h = {"Authorization": auth} if auth else {}
                h["Origin"] = CORS_ORIGIN
                r = request(s, method, path, body, headers=h)
                if path in open_paths:  # /app/1 is no file: 404, but not 401
                    self.assertStatus(r, 404 if path == "/app/1" else 200,
                                      "%s with %r" % (what, auth))
                    continue
                self.assertError(r, 401, "unauthorized", what="%s with %r" % (what, auth))
                self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
                self.assertEqual(r.headers.get("access-control-allow-origin"), CORS_ORIGIN)
            r = request(s, method, path, body, headers={"Authorization": "Bearer " + API_KEY})
            self.assertNotEqual(r.status, 401, what + " with the key")
            self.assertLess(r.status, 500, what + " with the key: %r" % r)

    def test_the_key_works(self):
        s, key = self.flags, {"Authorization": "Bearer " + API_KEY}
        calls = [  # method, path, body, headers, status with the key
            ("POST", "/corpora?name=k", "hello world", {"Content-Type": "text/plain"}, 201),
            ("POST", "/jobs", {"corpus_id": 99999, "model_name": "x"}, {}, 404),
            ("DELETE", "/models/x", None, {}, 404),
            ("POST", "/jobs/1/cancel", None, {}, 404),
            ("DELETE", "/corpora/99999", None, {}, 404),
            ("POST", "/generate", {"model": "seq", "seed_text": "The ", "length": 5}, {}, 200),
            ("POST", "/v1/completions", {"model": "seq", "prompt": "a", "max_tokens": 3}, {}, 200),
            ("DELETE", "/generations/gen-1", None, {}, 404),
        ]
        for method, path, body, headers, want in calls:
            r = request(s, method, path, body, headers=dict(headers, **key))
            self.assertStatus(r, want, "%s %s with the key" % (method, path))
        for path in ("/models", "/models/seq", "/v1/models", "/corpora", "/jobs", "/metrics",
                     "/healthz", "/readyz", "/openapi.json", "/generations"):
            self.assertStatus(get(s, path, headers=key), 200, path)

    def test_public_generate_and_metrics(self):
        """--public-generate opens generation and the model list (a public demo),
        --public-metrics opens /metrics (a scraper); nothing else."""
        s = Server("public", MODELS_DIR, os.path.join(TMP, "public.db"),
                   ["--api-key", API_KEY, "--public-generate", "--public-metrics"]).start()
        try:
            self.assertStatus(generate(s, model="seq", seed_text="The ", length=5), 200)
            self.assertStatus(post(s, "/v1/completions", {"model": "seq", "prompt": "a",
                                                          "max_tokens": 3}), 200)
            self.assertError(request(s, "DELETE", "/generations/gen-1"), 404,
                             "generation_not_found")
            for path in ("/models", "/models/seq", "/v1/models", "/metrics", "/healthz"):
                self.assertStatus(get(s, path), 200, path)
            for method, path in (("GET", "/corpora"), ("GET", "/jobs"), ("GET", "/jobs/1"),
                                 ("GET", "/generations"), ("GET", "/openapi.json"),
                                 ("DELETE", "/models/seq"), ("POST", "/jobs")):
                self.assertError(request(s, method, path, {} if method == "POST" else None),
                                 401, "unauthorized", what=path)
        finally:
            rc, _ = s.terminate()
        self.assertEqual(rc, 0)

    def test_cors_configured_origin(self):
        s = self.flags  # --cors-origin lists CORS_ORIGIN and OTHER_ORIGIN
        for origin in (CORS_ORIGIN, OTHER_ORIGIN):
            r = get(s, "/healthz", headers={"Origin": origin})
            self.assertEqual(r.headers.get("access-control-allow-origin"), origin)
            self.assertEqual(r.headers.get("access-control-allow-credentials"), "true")
            self.assertIn("x-request-id", r.headers.get("access-control-expose-headers",
                                                        "").lower())
            self.assertIn("origin", r.headers.get("vary", "").lower())
        for origin in ("https://evil.example.test", None):  # not listed, or no Origin at all
            r = get(s, "/healthz", headers={"Origin": origin} if origin else {})
            self.assertStatus(r, 200)
            self.assertNotIn("access-control-allow-origin", r.headers, origin)
            self.assertIn("origin", r.headers.get("vary", "").lower(), "caches: per origin")
        r = request(s, "OPTIONS", "/corpora", headers={"Origin": CORS_ORIGIN,
                                                       "Access-Control-Request-Method": "POST"})
        self.assertStatus(r, 204, "a preflight needs no key")
        self.assertEqual(r.headers.get("access-control-allow-origin"), CORS_ORIGIN)
        self.assertIn("origin", r.headers.get("vary", "").lower())
        # the official client's own headers are allowed as asked; a malformed list is not echoed
        asked = "authorization,content-type,x-stainless-os,x-stainless-retry-count"
        r = request(s, "OPTIONS", "/v1/chat/completions", headers={
            "Origin": CORS_ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked})
        self.assertStatus(r, 204)
        self.assertEqual(r.headers["access-control-allow-headers"], asked)
        self.assertIn("access-control-request-headers", r.headers.get("vary", "").lower())
        r = request(s, "OPTIONS", "/v1/chat/completions", headers={
            "Origin": CORS_ORIGIN, "Access-Control-Request-Headers": "x-a\u00e9,(bad)"})
        self.assertEqual(r.headers["access-control-allow-headers"],
                         "Authorization, Content-Type")
        # a bad list is refused at startup
        for bad in ("https://a.test/path", "*.example.test", "localhost:3000", ""):
            rc, err = serve_refused("--cors-origin", bad, "--port", 0)
            self.assertEqual(rc, 2, (bad, err))
            self.assertIn("--cors-origin", err)

    def test_environment_configuration(self):
        s = self.env
        self.assertError(generate(s, seed_text="", length=5), 401, "unauthorized",
                         what="a key and no --public-generate")
        self.assertError(post(s, "/v1/completions", {"prompt": "", "max_tokens": 3}), 401)
        self.assertError(request(s, "DELETE", "/generations/gen-1"), 401)
        self.assertError(request(s, "POST", "/generate", {"seed_text": "", "length": 5},
                                 headers={"Authorization": "Bearer " + API_KEY}), 401,
                         what="the other server's key")
        key = {"Authorization": "Bearer " + ENV_API_KEY}
        b = self.ok_json(request(s, "POST", "/generate", {"seed_text": "", "length": 50},
                                 headers=key))
        self.assertEqual(b["model"], "zh", "--default-model wins over LSTMGEN_DEFAULT_MODEL")
        self.assertError(request(s, "POST", "/generate", {"seed_text": "", "length": 51},
                                 headers=key), 400, "out_of_range", "length",
                         mentions=("50",), what="LSTMGEN_MAX_LENGTH=50")
        self.assertError(get(s, "/models"), 401, what="reads need the key too")
        self.assertStatus(get(s, "/metrics"), 200, "LSTMGEN_PUBLIC_METRICS=true")
        self.assertEqual(get(s, "/healthz", headers={"Origin": ENV_CORS_ORIGIN}).headers.get(
            "access-control-allow-origin"), ENV_CORS_ORIGIN)
        self.assertError(request(s, "DELETE", "/models/x"), 401)
        self.assertError(request(s, "DELETE", "/models/x", headers=key), 404)


# ------------------------------------------------------------------------------------------------
# overload

class T12Busy(E2E):
    def test_503_with_retry_after(self):
        s = Server("busy", MODELS_DIR, os.path.join(TMP, "busy.db"),
                   ["--max-concurrent", 1, "--gen-threads", 1, "--max-length",
                    MAIN_MAX_LENGTH]).start()
        try:
            long_gen = RawStream(s, "POST", "/generate", dict(LONG_WINDOW, stream=True))
            self.assertEqual(long_gen.status, 200)
            long_gen.read_until(b"data: ")
            r = generate(s, model="seq", seed_text="The ", length=5)
            self.assertError(r, 503, "overloaded", what="a second generation")
            self.assertEqual(r.json()["error"]["type"], "overloaded_error")
            self.assertRegex(r.headers.get("retry-after", ""), r"^[1-9][0-9]*$")
            r = post(s, "/v1/completions", {"model": "seq", "prompt": "a", "max_tokens": 3})
            self.assertError(r, 503)
            self.assertIn("retry-after", r.headers)
            r = generate(s, model="seq", seed_text="The ", length=5, stream=True)
            self.assertError(r, 503, what="a second, streamed generation")
            self.assertStatus(get(s, "/healthz"), 200, "other endpoints still answer")
            long_gen.close()
            wait_for("the long generation to stop", lambda: active_generations(s) == 0, 20)
            self.assertStatus(generate(s, model="seq", seed_text="The ", length=5), 200,
                              "after the long one ended")
        finally:
            rc, _ = s.terminate()
        self.assertEqual(rc, 0, "busy server exit code")


# ------------------------------------------------------------------------------------------------
# concurrency and measurements

class T13Concurrency(E2E):
    def test_32_concurrent_clients(self):
        bodies = [dict(model="seq" if i % 2 == 0 else "win", seed_text="The ", length=150,
                       seed=1000 + i, temperature=0.8) for i in range(32)]
        results = [None] * 32
        barrier = threading.Barrier(32)

        def client(i):
            try:
                barrier.wait(30)
                results[i] = generate(MAIN, **bodies[i])
            except Exception as e:
                results[i] = e

        threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(REQ_TIMEOUT * 2)
        for i, r in enumerate(results):
            self.assertIsInstance(r, Resp, "client %d: %r" % (i, r))
            self.assertStatus(r, 200, "client %d" % i)
        texts = [r.json()["text"] for r in results]
        self.assertEqual(len(set(texts)), 32, "different seeds gave equal texts")
        for i, body in enumerate(bodies):
            alone = self.ok_json(generate(MAIN, **body))["text"]
            self.assertEqual(texts[i], alone, "client %d: concurrent result != alone" % i)

    # -- batching: a request's bytes never depend on what else shares its batch

    @staticmethod
    def batch_ticks(model):
        return T13Concurrency.batch_ticks_of(MAIN, model)

    @staticmethod
    def batch_ticks_of(server, model):
        """(ticks, ticks that stepped 2 or more streams) of model's scheduler so far."""
        samples, _ = metrics(server)
        total = metric(samples, "lstmgen_generation_batch_size_count", model=model) or 0
        single = metric(samples, "lstmgen_generation_batch_size_bucket", model=model, le="1") or 0
        return total, total - single

    def run_concurrently(self, calls, clients):
        """Runs the zero-argument calls on `clients` threads at once; their results, in order."""
        results, it, lock = [None] * len(calls), iter(range(len(calls))), threading.Lock()
        barrier = threading.Barrier(clients)

        def worker():
            barrier.wait(30)
            while True:
                with lock:
                    i = next(it, None)
                if i is None:
                    return
                try:
                    results[i] = calls[i]()
                except Exception as e:
                    results[i] = e

        threads = [threading.Thread(target=worker) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TEST_LIMIT)
        return results

    def test_batch_invariance(self):
        """64 concurrent requests (three models, both modes, temperatures, top-k and top-p,
        lengths, seeds, stop strings, streamed and not, OpenAI's with n = 2 and logprobs) each
        give exactly the bytes they give alone on an idle server."""
        rnd = random.Random(2024)
        calls = []
        for i in range(64):
            model = ("seq", "win", "zh", "seq")[i % 4]
            seed_text = "天地" if model == "zh" else rnd.choice(["The ", "", "Men of the "])
            body = dict(model=model, seed_text=seed_text, length=rnd.randint(10, 250),
                        seed=rnd.randrange(1 << 40),
                        temperature=rnd.choice([0, 0.2, 0.5, 1.0, 1.2]),
                        top_k=rnd.choice([0, 0, 3, 12]), top_p=rnd.choice([1, 1, 0.9, 0.5]))
            if i % 7 == 3 and model != "zh":
                body["stop"] = ["e t", "."]
            if i % 5 == 1:
                body["stream"] = True
                calls.append(lambda b=body: stream_text(generate(MAIN, **b)))
            elif i % 5 == 2:
                oa = dict(model=model, prompt=seed_text, max_tokens=body["length"], n=2,
                          seed=body["seed"], temperature=body["temperature"],
                          top_p=body["top_p"], logprobs=2, echo=i % 2 == 0)
                calls.append(lambda b=oa: json.dumps(
                    [(c["text"], c["logprobs"], c["finish_reason"]) for c in
                     self.ok_json(post(MAIN, "/v1/completions", b))["choices"]]))
            else:
                calls.append(lambda b=body: self.ok_json(generate(MAIN, **b))["text"])
        alone = [call() for call in calls]  # one at a time: each in a batch of its own
        before = {m: self.batch_ticks(m) for m in ("seq", "win", "zh")}
        together = self.run_concurrently(calls, 64)
        for i, (a, t) in enumerate(zip(alone, together)):
            self.assertNotIsInstance(t, Exception, "request %d: %r" % (i, t))
            self.assertEqual(t, a, "request %d: batched result differs from alone" % i)
        shared = {m: self.batch_ticks(m)[1] - before[m][1] for m in before}
        self.assertTrue(all(v > 0 for v in shared.values()),
                        "the concurrent requests never shared a step: %r" % shared)
        print("  batch invariance: 64 mixed requests, equal alone and together; ticks with "
              "2+ streams: %r" % shared)

    def test_greedy_under_load(self):
        """500 greedy requests of one prompt, among other traffic: one distinct text."""
        greedy = dict(model="seq", seed_text="The ", length=80, temperature=0)
        rnd = random.Random(7)
        calls = []
        for i in range(500):
            calls.append(lambda: self.ok_json(generate(MAIN, **greedy))["text"])
            if i % 4 == 0:  # noise: other streams of the same model in the same batches
                noise = dict(model="seq", seed_text=rnd.choice(["A", "The man ", ""]),
                             length=rnd.randint(5, 120), seed=i, temperature=1.0)
                calls.append(lambda b=noise: self.ok_json(generate(MAIN, **b)) and None)
        before = self.batch_ticks("seq")
        results = self.run_concurrently(calls, 32)
        errors = [r for r in results if isinstance(r, Exception)]
        self.assertEqual(errors[:3], [], "errors under load")
        texts = [r for r in results if isinstance(r, str)]
        self.assertEqual(len(texts), 500)
        self.assertEqual(len(set(texts)), 1, "greedy texts under load: %d distinct" %
                         len(set(texts)))
        ticks, shared = (a - b for a, b in zip(self.batch_ticks("seq"), before))
        self.assertGreater(shared, 0, "the requests never shared a step")
        print("  greedy under load: 500 requests, 1 distinct text; %d of %d ticks stepped 2+ "
              "streams" % (shared, ticks))

    def test_cli_sample_equals_server(self):
        """`lstmgen sample` steps a lone stream through the same code as the server's batches."""
        for model, seed_text in (("seq", "The "), ("win", "Men "), ("zh", "天地")):
            body = dict(model=model, seed_text=seed_text, length=120, seed=31, temperature=0.7,
                        top_k=5)
            served = self.ok_json(generate(MAIN, **body))["text"]
            cli = run_cli("sample", "--model", os.path.join(MODELS_DIR, model + ".safetensors"),
                          "--seed-text", seed_text, "--length", 120, "--seed", 31,
                          "--temperature", 0.7, "--top-k", 5)
            self.assertEqual(cli, served, "%s: lstmgen sample and POST /generate differ" % model)

    def test_generations_list(self):
        """GET /generations: what runs, for operators (id, model, characters, age), no text."""
        s = RawStream(MAIN, "POST", "/generate", dict(LONG_WINDOW, stream=True))
        try:
            s.read_until(b"data: ")
            gid = s.headers["x-request-id"]
            rows = wait_for("the stream in GET /generations", lambda: [
                g for g in self.ok_json(get(MAIN, "/generations"))["generations"]
                if g["id"] == gid and g["chars"] > 0], 20)
            self.assertEqual(sorted(rows[0]), ["age_seconds", "chars", "choices", "id", "model",
                                               "status"])
            self.assertEqual((rows[0]["model"], rows[0]["status"], rows[0]["choices"]),
                             (LONG_WINDOW["model"], "running", 1))
            self.assertGreaterEqual(rows[0]["age_seconds"], 0)
        finally:
            s.close()
        wait_for("the list to empty", lambda: self.ok_json(get(MAIN, "/generations"))[
            "generations"] == [], 20)

    def test_slow_reader_is_bounded(self):
        """A streaming client that stops reading: its stream pauses (out of the batch) with a
        bounded buffer, others go on, and the request timeout ends it."""
        timeout = 20 if SANITIZED else 6
        s = Server("slow", MODELS_DIR, os.path.join(TMP, "slow.db"),
                   ["--request-timeout", timeout, "--max-length", MAIN_MAX_LENGTH]).start()
        try:
            slow = RawStream(s, "POST", "/generate", dict(model="seq", seed_text="The ",
                                                           length=MAIN_MAX_LENGTH, stream=True),
                             rcvbuf=4096)
            gid = slow.headers["x-request-id"]

            def chars():
                for g in self.ok_json(get(s, "/generations"))["generations"]:
                    if g["id"] == gid:
                        return g["chars"]
                return None

            def stalled():
                a = chars()
                time.sleep(0.3)
                b = chars()
                return a if a and a == b else None

            paused_at = wait_for("the unread stream to pause", stalled, timeout - 2)
            rss = s.rss_kib()
            # what it made before pausing fills the sockets' buffers (the server's send buffer
            # grows to hundreds of KiB even towards a 4 KiB receive buffer) and our 64 KiB
            self.assertLess(paused_at, MAIN_MAX_LENGTH / 2, "it did not pause")
            # the batch goes on without it: the same model still answers, and exactly
            ok = self.ok_json(generate(s, model="seq", seed_text="The ", length=300, seed=5))
            self.assertEqual(ok["text"], self.ok_json(generate(MAIN, model="seq",
                             seed_text="The ", length=300, seed=5))["text"])
            self.assertEqual(chars(), paused_at, "the paused stream moved without its reader")
            wait_for("the request timeout to end it", lambda: chars() is None, timeout + 10)
            print("  slow reader: paused after %d characters (socket buffers + 64 KiB), server "
                  "RSS %.1f MiB; ended by the %d s request timeout" % (paused_at, rss / 1024.0,
                                                                         timeout))
            slow.close()
        finally:
            rc, _ = s.terminate()
        self.assertEqual(rc, 0)

    def test_max_batch_one(self):
        """--max-batch 1: one stream per tick, the same texts; n choices still run (alone)."""
        s = Server("nobatch", MODELS_DIR, os.path.join(TMP, "nobatch.db"),
                   ["--max-batch", 1]).start()
        try:
            body = dict(model="seq", prompt="The ", max_tokens=40, n=3, seed=12, logprobs=1)
            want = self.ok_json(post(MAIN, "/v1/completions", body))["choices"]
            calls = [lambda: self.ok_json(post(s, "/v1/completions", body))["choices"]] * 4
            for got in self.run_concurrently(calls, 4):
                self.assertNotIsInstance(got, Exception)
                self.assertEqual(got, want)
            shared = self.batch_ticks_of(s, "seq")[1]
            self.assertGreater(shared, 0, "n = 3 after the seed read takes 3 rows")
        finally:
            rc, _ = s.terminate()
        self.assertEqual(rc, 0)

    def test_throughput_and_memory(self):
        duration, clients = 5.0, 32
        lat, errors, lock = [], [], threading.Lock()
        stop_at = [0.0]
        barrier = threading.Barrier(clients + 1)

        def client(i):
            conn = http.client.HTTPConnection("127.0.0.1", MAIN.port, timeout=REQ_TIMEOUT)
            body = json.dumps({"model": "seq", "seed_text": "The ", "length": 200})
            mine, seq = [], 0
            barrier.wait(30)
            try:
                while time.monotonic() < stop_at[0]:
                    t0 = time.monotonic()
                    conn.request("POST", "/generate", body=body,
                                 headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    data = r.read()
                    mine.append(time.monotonic() - t0)
                    if r.status != 200 or len(json.loads(data)["text"]) != 200:
                        raise AssertionError("HTTP %d %r" % (r.status, data[:200]))
                    seq += 1
            except Exception as e:
                with lock:
                    errors.append(repr(e))
            finally:
                conn.close()
                with lock:
                    lat.extend(mine)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        stop_at[0] = t0 + duration
        barrier.wait(30)
        for t in threads:
            t.join(REQ_TIMEOUT * 2)
        elapsed = time.monotonic() - t0
        self.assertEqual(errors, [], "errors under load")
        lat.sort()
        n = len(lat)
        self.assertGreater(n, 0)

        def pct(p):
            return lat[min(n - 1, int(math.ceil(p / 100.0 * n)) - 1)] * 1000

        rss = MAIN.rss_kib()
        build = "ASan+UBSan" if SANITIZED else "release"
        print("\n  BENCH (%s build, %d cores): POST /generate length 200, model seq (1x48), "
              "%d concurrent clients, %.1fs:" % (build, os.cpu_count(), clients, elapsed))
        print("  BENCH   %d requests, %.1f requests/s, %.0f characters/s" % (
            n, n / elapsed, n * 200 / elapsed))
        print("  BENCH   latency p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (pct(50), pct(99),
                                                                          lat[-1] * 1000))
        print("  BENCH   server RSS (VmRSS) %.1f MiB with %d models loaded" % (
            rss / 1024.0, len(self.ok_json(get(MAIN, "/models"))["models"])))


# ------------------------------------------------------------------------------------------------
# crash safety and graceful shutdown

class T14CrashSafety(E2E):
    def test_kill9_mid_job_resumes(self):
        d = os.path.join(TMP, "crash")
        os.makedirs(d)
        s = Server("crash", os.path.join(d, "models"), os.path.join(d, "db.sqlite")).start()
        corpus = add_corpus(s, "crash", JOB_TEXT)
        hp = dict(JOB_HP, epochs=6)
        jid = self.ok_json(post(s, "/jobs", {"corpus_id": corpus, "model_name": "crashed",
                                             "hyperparameters": hp}), 202)["id"]
        # an epoch's row appears just before its state is saved, so wait until the next epoch
        # has started: the epochs seen then are on disk and must not be trained again
        before = wait_for("the first epoch saved", lambda: (lambda j: j if j["epochs"] and (
            j["progress"]["epoch"] > j["epochs"][-1]["epoch"] and j["progress"]["step"] > 0)
            else None)(job_status(s, jid)), 180, 0.02)
        s.kill9()
        self.assertEqual(before["status"], "running")
        self.assertLess(len(before["epochs"]), 6, "the job ended before the kill")
        self.assertFalse(os.path.exists(os.path.join(d, "models", "crashed.safetensors")))
        t_restart = time.monotonic()
        s.start()
        self.assertIn("1 interrupted job(s) queued again", s.log())
        seen = []

        def poll():
            j = job_status(s, jid)
            seen.append((j["status"], j["attempts"]))
            return j if j["status"] in ("succeeded", "failed", "cancelled") else None

        done = wait_for("the resumed job to finish", poll, 300, 0.05)
        self.assertEqual(done["status"], "succeeded", done)
        self.assertEqual(done["attempts"], 2)
        self.assertIn(("running", 2), seen, "never seen running again after the restart: %r"
                      % sorted(set(seen)))
        self.assertNotIn(("running", 1), seen, "still marked as the dead server's run")
        self.assertEqual([e["epoch"] for e in done["epochs"]], list(range(1, 7)))
        for e0 in before["epochs"]:  # epochs done before the kill are not run again
            e1 = done["epochs"][e0["epoch"] - 1]
            self.assertEqual((e1["train_loss"], e1["seconds"]), (e0["train_loss"], e0["seconds"]),
                             "epoch %d was trained again" % e0["epoch"])
        m = self.ok_json(get(s, "/models/crashed"))
        self.assertEqual(m["job_id"], jid)
        self.assertStatus(generate(s, model="crashed", seed_text="The ", length=20), 200)
        self.assertEqual(self.ok_json(get(s, "/jobs?status=running"))["jobs"], [],
                         "a job is left running")
        samples, _ = metrics(s)
        self.assertEqual(metric(samples, "lstmgen_jobs", status="running"), 0)
        self.assertEqual(metric(samples, "lstmgen_jobs", status="succeeded"), 1)
        print("  killed after %d of 6 epochs; resumed and finished %.1fs after the restart" % (
            len(before["epochs"]), time.monotonic() - t_restart))
        rc, _ = s.terminate()
        self.assertEqual(rc, 0)

    def test_leftovers_swept_at_startup(self):
        """What a crash leaves is swept at the next start, and nothing else: the working files of
        jobs that had finished (the process died before removing them), and the temporary files
        of interrupted writes in the models folder, once no live process writes them."""
        d = os.path.join(TMP, "sweep")
        models, db = os.path.join(d, "models"), os.path.join(d, "db.sqlite")
        jobs = db + ".jobs"
        s = Server("sweep", models, db).start()
        corpus = add_corpus(s, "sweep", JOB_TEXT[:30000])

        def job(hp):
            return self.ok_json(post(s, "/jobs", {"corpus_id": corpus, "model_name": "swept",
                                                  "hyperparameters": hp}), 202)["id"]

        done = job(dict(JOB_HP, epochs=1))
        self.assertEqual(wait_job(s, done, ("succeeded", "failed"), 300)["status"], "succeeded")
        slow = job({"regime": "sequence", "layers": 2, "hidden": 384, "epochs": 20,
                    "sample_chars": 0})
        wait_job(s, slow, ("running",), 60)
        queued, cancelled = job(JOB_HP), job(JOB_HP)
        self.assertEqual(self.ok_json(post(s, "/jobs/%d/cancel" % cancelled))["status"],
                         "cancelled")
        self.assertEqual(job_status(s, queued)["status"], "queued")
        s.kill9()

        def put(*parts, age=0):
            path = os.path.join(*parts)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_file(path, "x")
            if age:
                t = time.time() - age
                os.utime(path, (t, t))
            return path

        gone = [put(jobs, str(done), "model.safetensors"),
                put(jobs, str(done), "model.latest.safetensors"),
                put(jobs, str(done), "model.safetensors.tmp.a1B2c3"),
                put(jobs, str(cancelled), "model.latest.safetensors"),
                put(models, "swept.safetensors.tmp.Zx9Yw8", age=3600)]
        writing = put(models, "held.safetensors.tmp.H0ld3r", age=3600)  # its writer is alive
        kept = [writing, put(jobs, str(cancelled), "notes.txt"),  # not ours: it and its folder stay
                put(jobs, str(queued), "model.safetensors"),
                put(jobs, str(queued), "model.latest.safetensors.tmp.Q1w2E3"),
                put(jobs, "77", "model.safetensors"),  # no such job
                put(jobs, "scratch", "model.safetensors"),
                put(models, "fresh.safetensors.tmp.Fr3sh1"),  # perhaps being written now
                put(models, "notes.tmp.txt", age=3600),
                put(models, "short.safetensors.tmp.abc", age=3600),
                put(models, "dir.tmp.Abc123", "inside", age=3600),
                put(models, "README", age=3600)]
        t = time.time() - 3600
        os.utime(os.path.join(models, "dir.tmp.Abc123"), (t, t))  # a folder, named like ours
        held = os.open(writing, os.O_RDWR)
        try:
            fcntl.flock(held, fcntl.LOCK_EX)  # as fs_atomic_open's writer holds its temporary
            s.start()
            log = s.log()
            left = [p for p in gone if os.path.exists(p)]
            lost = [p for p in kept if not os.path.exists(p)]
        finally:
            os.close(held)
        self.assertEqual(left, [], "leftovers not swept:\n" + log)
        self.assertEqual(lost, [], "files swept that were not leftovers:\n" + log)
        self.assertFalse(os.path.exists(os.path.join(jobs, str(done))))
        self.assertIn("job %d (succeeded): removed the working files" % done, log)
        self.assertIn("job %d (cancelled): removed the working files" % cancelled, log)
        self.assertIn("removed 1 temporary file(s) that interrupted writes left in " + models, log)
        self.assertEqual(job_status(s, queued)["status"], "queued")
        rc, _ = s.terminate()
        self.assertEqual(rc, 0)


class T15GracefulShutdown(E2E):
    def test_sigterm_mid_job(self):
        d = os.path.join(TMP, "graceful")
        os.makedirs(d)
        s = Server("graceful", os.path.join(d, "models"), os.path.join(d, "db.sqlite")).start()
        corpus = add_corpus(s, "graceful", JOB_TEXT)
        hp = dict(JOB_HP, epochs=4)
        jid = self.ok_json(post(s, "/jobs", {"corpus_id": corpus, "model_name": "graceful",
                                             "hyperparameters": hp}), 202)["id"]
        wait_for("the job to run", lambda: (lambda j: j["status"] == "running" and
                                            j["progress"]["step"] > 0)(job_status(s, jid)), 120,
                 0.02)
        started_first = job_status(s, jid)["started_at"]
        rc, secs = s.terminate(timeout=30)
        self.assertEqual(rc, 0, "exit status after SIGTERM")
        self.assertLess(secs, 10, "SIGTERM took %.1fs" % secs)
        log = s.log()
        self.assertIn("SIGTERM: stopping", log)
        self.assertIn("stopped after", log)
        print("  SIGTERM with a job running: exit 0 after %.2fs" % secs)
        s.start()
        self.assertNotIn("interrupted job", s.log(), "a graceful stop leaves nothing 'running'")
        done = wait_job(s, jid, ("succeeded", "failed", "cancelled"), 300)
        self.assertEqual(done["status"], "succeeded", done)
        # a clean stop gives its attempt back (attempts counts crashes), so the count stays 1;
        # the job ran twice all the same: it was started again after the restart
        self.assertEqual(done["attempts"], 1, "a graceful stop must not count as a crash")
        self.assertGreater(done["started_at"], started_first, "the job did not run a second time")
        self.assertEqual([e["epoch"] for e in done["epochs"]], [1, 2, 3, 4])
        self.assertEqual(self.ok_json(get(s, "/models/graceful"))["job_id"], jid)
        rc, _ = s.terminate()
        self.assertEqual(rc, 0)

    def test_sigterm_mid_generation(self):
        s = Server("stopgen", MODELS_DIR, os.path.join(TMP, "stopgen.db"),
                   ["--max-length", MAIN_MAX_LENGTH]).start()
        stream = RawStream(s, "POST", "/generate", dict(LONG_WINDOW, stream=True))
        stream.read_until(b"data: ")
        plain = send_raw(s, dict(LONG_WINDOW, seed=2), close=True)  # a non-streamed one
        wait_for("both generations to run", lambda: active_generations(s) == 2, 20)
        keep = http.client.HTTPConnection("127.0.0.1", s.port, timeout=REQ_TIMEOUT)
        keep.request("GET", "/healthz")
        keep.getresponse().read()  # an idle keep-alive connection
        got = {}

        def reader(name, sock_reader):  # clients that keep reading while the server stops
            try:
                got[name] = sock_reader()
            except Exception as e:
                got[name + "_error"] = repr(e)

        threads = [threading.Thread(target=reader, args=("stream", lambda: stream.read_to_end(60)),
                                    daemon=True),
                   threading.Thread(target=reader, args=("plain", lambda: read_all(plain)),
                                    daemon=True)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        keep.request("GET", "/readyz")  # requests on the open connection while stopping
        r = keep.getresponse()
        body = r.read()
        self.assertEqual(r.status, 503, "readyz while stopping: %r" % body)
        self.assertEqual(json.loads(body)["status"], "stopping")
        keep.request("GET", "/models")
        r = keep.getresponse()
        body = r.read()
        keep.close()
        self.assertEqual(r.status, 503, "a request while stopping: %r" % body)
        self.assertIn("retry-after", {k.lower() for k, _ in r.getheaders()})
        rc = s.proc.wait(30)
        secs = time.monotonic() - t0
        self.assertEqual(rc, 0, "exit status after SIGTERM")
        self.assertLess(secs, 10, "SIGTERM took %.1fs" % secs)
        for t in threads:
            t.join(60)
        alive = [t.name for t in threads if t.is_alive()]
        stream.close()
        plain.close()
        self.assertFalse(alive, "readers still blocked 60 s after the exit: %r (got %r)"
                         % (alive, sorted(got)))
        self.assertFalse([k for k in got if k.endswith("_error")], got)
        self.assertTrue(stream.raw.endswith(b"0\r\n\r\n"), "the stream was cut off, not ended: "
                        "%r" % stream.raw[-200:])
        final = data_events(got["stream"])[-1][1]
        self.assertEqual(final.get("finish_reason"), "cancelled",
                         "the open stream ends with a final event: %r" % final)
        head, _, body = got["plain"].partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), "plain generation: %r" % head[:200])
        b = json.loads(body)
        self.assertEqual(b["finish_reason"], "cancelled", "plain generation cut short: %r"
                         % {k: v for k, v in b.items() if k != "text"})
        self.assertEqual(len(b["text"]), b["usage"]["generated_chars"])
        self.assertLess(b["usage"]["generated_chars"], MAIN_MAX_LENGTH)
        print("  SIGTERM with two generations running: both ended, exit 0 after %.2fs" % secs)


class T16Roles(E2E):
    def test_generate_and_train_roles(self):
        """--role generate: generation from the shared models folder, no database, and a 421
        naming the trainer for corpora and jobs; --role train: the reverse; a model the trainer
        publishes reaches the replica without a restart."""
        d = os.path.join(TMP, "roles")
        models = os.path.join(d, "models")
        os.makedirs(models)
        shutil.copy(os.path.join(MODELS_DIR, "seq.safetensors"), models)
        trainer = Server("trainer", models, os.path.join(d, "db.sqlite"),
                         ["--role", "train"]).start()
        # the replica's --db is a path that cannot exist: it never opens one
        replica = Server("replica", models, os.path.join(d, "no", "such", "dir", "db.sqlite"),
                         ["--role", "generate"]).start()
        try:
            ready = self.ok_json(get(replica, "/readyz"))
            self.assertEqual((ready["role"], ready["database"]), ("generate", None))
            self.assertFalse(os.path.exists(os.path.join(d, "no")))
            self.ok_json(generate(replica, model="seq", seed_text="The ", length=20))
            for method, path in (("GET", "/corpora"), ("POST", "/jobs"), ("GET", "/jobs/1"),
                                 ("DELETE", "/models/seq")):
                self.assertError(request(replica, method, path, {} if method == "POST" else None),
                                 421, "wrong_role", mentions=("--role train",))
            self.assertError(generate(trainer, model="seq", seed_text="The ", length=5), 421,
                             "wrong_role", mentions=("--role generate",))
            self.assertEqual(self.ok_json(get(trainer, "/readyz"))["trainer_lease"], True)
            corpus = add_corpus(trainer, "roles", JOB_TEXT[:30000])
            jid = self.ok_json(post(trainer, "/jobs", {"corpus_id": corpus, "model_name": "fresh",
                                                       "hyperparameters": dict(JOB_HP, epochs=1)}),
                               202)["id"]
            self.assertEqual(wait_job(trainer, jid, ("succeeded", "failed"), 300)["status"],
                             "succeeded")
            t0 = time.monotonic()
            wait_for("the replica to serve the published model", lambda: generate(
                replica, model="fresh", seed_text="", length=5).status == 200, 10)
            print("  published model served by the replica %.2fs after the job ended"
                  % (time.monotonic() - t0))
        finally:
            replica.terminate()
            trainer.terminate()

    def test_one_trainer_per_database(self):
        """A second trainer on a database whose trainer is alive refuses to start, naming it;
        once that one stops cleanly, or dies, the next starts at once."""
        d = os.path.join(TMP, "lease")
        os.makedirs(d)
        db = os.path.join(d, "db.sqlite")
        first = Server("lease-a", MODELS_DIR, db, ["--role", "train"]).start()
        for role in ("train", "all"):
            rc, err = serve_refused("--port", 0, "--models", MODELS_DIR, "--db", db, "--role", role)
            self.assertEqual(rc, 1, err)
            self.assertIn("another trainer runs this database's jobs", err)
            self.assertIn("pid %d" % first.proc.pid, err)
        self.assertEqual(first.terminate()[0], 0)
        second = Server("lease-b", MODELS_DIR, db).start()  # --role all: after a clean stop
        second.kill9()
        third = Server("lease-c", MODELS_DIR, db).start()   # after a crash: its pid is gone
        self.assertEqual(third.terminate()[0], 0)


class T99CleanExit(E2E):
    def test_main_server_exits_cleanly(self):
        rc, secs = MAIN.terminate()
        self.assertEqual(rc, 0, "main server exit status after SIGTERM")
        self.assertLess(secs, 10)

    def test_no_sanitizer_reports(self):
        bad = {}
        for s in SERVERS:
            for i in range(len(s.logs)):
                found = sanitizer_reports(s.log(i))
                if found:
                    bad[s.logs[i]] = found[:5]
        self.assertEqual(bad, {}, "sanitizer reports in server logs")


# ------------------------------------------------------------------------------------------------

def main():
    global LSTMGEN, TMP, SANITIZED
    if len(sys.argv) < 2:
        sys.stderr.write("usage: test_http.py LSTMGEN [unittest names...]\n")
        return 2
    LSTMGEN = os.path.abspath(sys.argv[1])
    with open(LSTMGEN, "rb") as f:
        SANITIZED = b"__asan_init" in f.read()
    TMP = tempfile.mkdtemp(prefix="lstmgen-e2e-")
    print("e2e: %s (%s), work dir %s" % (LSTMGEN, "ASan+UBSan" if SANITIZED else "release", TMP))
    loader = unittest.TestLoader()
    module = sys.modules[__name__]
    if len(sys.argv) > 2:
        suite = loader.loadTestsFromNames(sys.argv[2:], module)
    else:
        classes = sorted((c for c in vars(module).values() if isinstance(c, type) and
                          issubclass(c, E2E) and c is not E2E), key=lambda c: c.__name__)
        suite = unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in classes)
    t0 = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, buffer=False).run(suite)
    kill_all()
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print("e2e: %.1fs" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed))
    if failed == 0:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print("e2e: logs kept in %s" % TMP)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
