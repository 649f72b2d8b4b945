#!/usr/bin/python3
"""soak: the real server under a mixed load for a minute (SOAK_SECONDS), run against the
sanitizer build in CI: 128 connections doing plain and streamed generation, OpenAI requests with
n = 2, cancels by id, clients that hang up mid-stream, slow readers, slow writers, corpus uploads
and reads, metrics, while a training job runs. Every request must be answered as expected (or
503 with Retry-After: the server is full), the server's memory must level off, it must stop
cleanly on SIGTERM, and its log must hold no sanitizer report (LeakSanitizer included).
usage: soak.py LSTMGEN
"""
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_http as h  # noqa: E402  (the e2e suite's helpers: servers, requests, corpora)

CLIENTS = 128
SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts, self.failures = {}, []

    def ok(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def fail(self, what, detail):
        with self.lock:
            self.failures.append("%s: %s" % (what, detail))


def expect(t, what, r, *statuses):
    if r.status == 503:
        if "retry-after" not in r.headers:
            t.fail(what, "503 without Retry-After")
        else:
            t.ok(what + " 503")
        return False
    if r.status not in statuses:
        t.fail(what, "HTTP %d %r" % (r.status, r.body[:200]))
        return False
    t.ok(what)
    return True


def body_of(model, rnd, stream=False):
    return {"model": model, "seed_text": rnd.choice(["The ", "", "Men of "]),
            "length": rnd.randint(20, 400), "temperature": rnd.choice([0, 0.5, 1.0]),
            "top_k": rnd.choice([0, 5]), "stream": stream}


def stream_events(server, body, t, what, rnd, action):
    """A streamed /generate read through RawStream; action picks what the client does."""
    try:
        s = h.RawStream(server, "POST", "/generate", body)
    except (OSError, AssertionError) as e:
        t.fail(what, repr(e))
        return
    try:
        if s.status == 503:
            t.ok(what + " 503")
            return
        if s.status != 200:
            t.fail(what, "HTTP %d" % s.status)
            return
        if action == "hangup":
            s.read_until(b"data: ", timeout=30)
        elif action == "slow":
            for _ in range(rnd.randint(3, 10)):  # a reader that takes its time
                time.sleep(0.2)
                s.sock.recv(64)
        elif action == "cancel":
            gid = s.headers.get("x-request-id", "")
            r = h.request(server, "DELETE", "/generations/" + gid)
            if r.status not in (200, 404):  # 404: it had already finished
                t.fail(what, "DELETE answered %d" % r.status)
                return
            events = h.data_events(s.read_to_end(timeout=60))
            if "finish_reason" not in events[-1][1]:
                t.fail(what, "no summary after a cancel: %r" % (events[-1],))
                return
        else:
            events = h.data_events(s.read_to_end(timeout=60))
            if "finish_reason" not in events[-1][1]:
                t.fail(what, "the stream ended with %r" % (events[-1],))
                return
        t.ok(what)
    except (OSError, AssertionError) as e:
        t.fail(what, repr(e))
    finally:
        s.close()


def slow_writer(server, t, rnd):
    """A client that sends its body in pieces."""
    data = json.dumps(body_of("seq", rnd)).encode()
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\n\r\n" % len(data))
        for i in range(0, len(data), 16):
            sock.sendall(data[i:i + 16])
            time.sleep(0.05)
        raw = h.read_all(sock)
        sock.close()
        status = int(raw.split(b" ", 2)[1])
        if status == 503 or status == 200:
            t.ok("slow writer")
        else:
            t.fail("slow writer", raw[:200])
    except (OSError, ValueError, IndexError) as e:
        t.fail("slow writer", repr(e))


def client(server, t, seed, stop_at):
    rnd = random.Random(seed)
    while time.monotonic() < stop_at:
        a = rnd.random()
        model = rnd.choice(["seq", "seq", "win"])
        try:
            if a < 0.30:
                expect(t, "generate", h.generate(server, **body_of(model, rnd)), 200)
            elif a < 0.45:
                stream_events(server, body_of(model, rnd, True), t, "stream", rnd, "read")
            elif a < 0.55:
                b = {"model": model, "prompt": "The ", "max_tokens": rnd.randint(5, 200), "n": 2,
                     "stream": rnd.random() < 0.5}
                expect(t, "completions", h.post(server, "/v1/completions", b), 200)
            elif a < 0.62:
                stream_events(server, body_of(model, rnd, True), t, "hang up", rnd, "hangup")
            elif a < 0.68:
                stream_events(server, body_of(model, rnd, True), t, "slow reader", rnd, "slow")
            elif a < 0.74:
                stream_events(server, dict(body_of(model, rnd, True), length=2000), t,
                              "cancel by id", rnd, "cancel")
            elif a < 0.80:
                slow_writer(server, t, rnd)
            elif a < 0.86:
                text = h.english(rnd.randrange(1000), 2000)
                expect(t, "corpus upload", h.request(server, "POST", "/corpora?name=soak", text,
                                                     headers={"Content-Type": "text/plain"}), 201)
            elif a < 0.93:
                expect(t, "reads", h.get(server, rnd.choice(["/corpora", "/jobs", "/jobs/1",
                                                             "/models", "/generations"])), 200)
            else:
                expect(t, "metrics", h.get(server, "/metrics"), 200)
        except (OSError, AssertionError) as e:
            t.fail("client %d" % seed, repr(e))


def main():
    h.LSTMGEN = os.path.abspath(sys.argv[1])
    with open(h.LSTMGEN, "rb") as f:
        h.SANITIZED = b"__asan_init" in f.read()
    h.TMP = tempfile.mkdtemp(prefix="lstmgen-soak-")
    models = os.path.join(h.TMP, "models")
    os.makedirs(models)
    en = h.write_file(os.path.join(h.TMP, "en.txt"), h.english(1, 20000))
    common = ["--threads", 1, "--sample-chars", 0, "--quiet", "--epochs", 1, "--seed", 1]
    for name, extra in (("seq", ["--regime", "sequence", "--seq-len", 30, "--layers", 1,
                                 "--hidden", 48, "--batch", 8]),
                        ("win", ["--maxlen", 20, "--step", 3, "--hidden", 32, "--batch", 32])):
        h.run_cli("train", "--corpus", en, "--out", os.path.join(models, name + ".safetensors"),
                  *extra, *common)
    server = h.Server("soak", models, os.path.join(h.TMP, "soak.db"),
                      ["--max-concurrent", 64, "--request-timeout", 30, "--max-length", 2000,
                       "--train-threads", 1]).start()
    t = Tally()
    try:
        cid = h.request(server, "POST", "/corpora?name=job", h.english(2, 50000),
                        headers={"Content-Type": "text/plain"}).json()["id"]
        r = h.post(server, "/jobs", {"corpus_id": cid, "model_name": "trained",
                                     "hyperparameters": {"regime": "sequence", "hidden": 32,
                                                         "layers": 1,
                                                         "max_seconds": SECONDS + 30}})
        assert r.status == 202, r
        rss, stop_at = [], time.monotonic() + SECONDS
        threads = [threading.Thread(target=client, args=(server, t, i, stop_at))
                   for i in range(CLIENTS)]
        for th in threads:
            th.start()
        while time.monotonic() < stop_at:
            rss.append(server.rss_kib())
            time.sleep(1)
        for th in threads:
            th.join(120)
        hung = sum(th.is_alive() for th in threads)
        job = h.get(server, "/jobs/1").json()
        rc, secs = server.terminate(60)
    except BaseException:
        h.kill_all()
        raise
    log = server.log()
    reports = h.sanitizer_reports(log)
    total = sum(t.counts.values())
    print("soak: %d clients for %.0fs (%s build): %d requests answered" % (
        CLIENTS, SECONDS, "ASan+UBSan" if h.SANITIZED else "release", total))
    for k in sorted(t.counts):
        print("  %-22s %d" % (k, t.counts[k]))
    half = rss[len(rss) // 2:]
    print("  server RSS: %.0f MiB after 1 s, %.0f MiB at half time, %.0f MiB at the end (max %.0f)"
          % (rss[0] / 1024, half[0] / 1024, rss[-1] / 1024, max(rss) / 1024))
    print("  the training job: %s, %s epochs; SIGTERM: exit %s after %.1fs" % (
        job["status"], len(job.get("epochs", [])), rc, secs))
    problems = t.failures[:20]
    if hung:
        problems.append("%d clients still running after the end" % hung)
    if rc != 0:
        problems.append("exit status %r after SIGTERM" % rc)
    if reports:
        problems.append("sanitizer reports:\n    " + "\n    ".join(reports[:20]))
    if job["status"] not in ("running", "queued", "succeeded"):
        problems.append("the training job ended %s: %s" % (job["status"], job.get("error")))
    # bounded memory: the second half may not keep growing (ASan's quarantine fills, then holds)
    if max(half) > 1.25 * half[0] + 64 * 1024:
        problems.append("memory kept growing: %.0f -> %.0f MiB in the second half"
                        % (half[0] / 1024, max(half) / 1024))
    if problems:
        print("FAIL:\n  " + "\n  ".join(problems))
        print("logs kept in %s" % h.TMP)
        return 1
    shutil.rmtree(h.TMP, ignore_errors=True)
    print("soak: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
