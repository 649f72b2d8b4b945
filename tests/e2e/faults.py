#!/usr/bin/python3
"""faults: the real server under the faults that lose data in lesser services.
- kill -9 at random moments, many times, while a job trains (its checkpoints being written) and
  corpora are uploaded: after each kill the database passes SQLite's integrity check, every
  corpus row holds the text its sha256 names, every checkpoint on disk loads (the old or the new
  one, never a torn one); the job, restarted each time, ends with the very weights of a run that
  was never interrupted.
- a full disk (a file-size limit, RLIMIT_FSIZE): a corpus upload that does not fit is a 507, a
  job whose checkpoint does not fit fails with the reason, nothing is corrupt, and the server
  goes on serving.
- a damaged database file at startup (truncated, emptied, overwritten): a clear message and exit
  status 1, never a silent new database.
- a model file truncated while a stream uses it: the stream finishes on the weights it started
  with, new requests for that model are a clear 500, the other models keep serving, and putting
  the file back brings it back.
usage: faults.py LSTMGEN
"""
import hashlib
import json
import os
import random
import resource
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_http as h  # noqa: E402

JOB_HP = {"regime": "sequence", "layers": 1, "hidden": 96, "seq_len": 30, "batch": 8,
          "epochs": 8, "seed": 3, "sample_chars": 0}
ENV = {"SOURCE_DATE_EPOCH": "1700000000"}


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def tensors(path):
    """A checkpoint's tensor bytes (its header holds timings, which may differ)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    return raw[8 + n:]


def loads(path):
    p = subprocess.run([h.LSTMGEN, "info", "--json", path], capture_output=True, timeout=60)
    return p.returncode == 0


def db_consistent(db):
    """SQLite's integrity check, and every corpus row's text against its sha256."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        check(c.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "integrity_check failed")
        for cid, text, sha in c.execute("SELECT id, text, sha256 FROM corpora"):
            data = text if isinstance(text, bytes) else text.encode("utf-8")
            check(hashlib.sha256(data).hexdigest() == sha, "corpus %d's text is not its sha256"
                  % cid)
        return c.execute("SELECT count(*) FROM corpora").fetchone()[0]
    finally:
        c.close()


def job_of(server, jid):
    return h.get(server, "/jobs/%d" % jid).json()


def wait_job(server, jid, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        j = job_of(server, jid)
        if j["status"] in ("succeeded", "failed", "cancelled"):
            return j
        time.sleep(0.05)
    raise Failure("job %d did not finish in %ds" % (jid, timeout))


def start_job(server, text, hp=None):
    cid = h.request(server, "POST", "/corpora?name=job", text,
                    headers={"Content-Type": "text/plain"}).json()["id"]
    r = h.post(server, "/jobs", {"corpus_id": cid, "model_name": "job",
                                 "hyperparameters": hp or JOB_HP})
    check(r.status == 202, "queue the job: %r" % r)
    return r.json()["id"]


def kill9_loop(root, text):
    # the uninterrupted run
    d0 = os.path.join(root, "straight")
    s = h.Server("straight", os.path.join(d0, "models"), os.path.join(d0, "db"),
                 ["--train-threads", 1], env=ENV).start()
    jid = start_job(s, text)
    j = wait_job(s, jid, 300)
    check(j["status"] == "succeeded", "the uninterrupted job: %r" % j)
    want = tensors(os.path.join(d0, "models", "job.safetensors"))
    s.terminate()

    d = os.path.join(root, "chaos")
    db, models = os.path.join(d, "db"), os.path.join(d, "models")
    s = h.Server("chaos", models, db, ["--train-threads", 1], env=ENV).start()
    jid = start_job(s, text)
    rnd = random.Random(7)
    kills, torn, uploads = 0, 0, [0]
    stop_uploads = threading.Event()

    def upload_loop(server):
        while not stop_uploads.is_set():
            try:
                h.request(server, "POST", "/corpora?name=up", h.english(rnd.randrange(10 ** 6),
                                                                       300000),
                          headers={"Content-Type": "text/plain"}, timeout=10)
                uploads[0] += 1
            except OSError:
                return  # the server was killed under us

    # The server gives up on a job restarted 5 times without recording a new epoch (the
    # crash-loop guard, tested on its own below), so after 3 kills without one the next waits.
    recorded, stalls = 0, 0
    while True:
        stop_uploads.clear()
        up = threading.Thread(target=upload_loop, args=(s,))
        up.start()
        if stalls >= 3:
            while len(job_of(s, jid)["epochs"]) == recorded and \
                    job_of(s, jid)["status"] in ("queued", "running"):
                time.sleep(0.02)
        time.sleep(rnd.uniform(0.05, 1.5))
        j = job_of(s, jid)
        status = j["status"]
        stalls = stalls + 1 if len(j["epochs"]) == recorded else 1
        recorded = len(j["epochs"])
        s.kill9()
        stop_uploads.set()
        up.join(30)
        if status != "succeeded":
            kills += 1
        # what the kill left behind
        db_consistent(db)
        for dirpath, _, files in os.walk(d):
            for f in files:
                if f.endswith(".safetensors"):
                    ok = loads(os.path.join(dirpath, f))
                    check(ok, "a torn checkpoint: %s" % os.path.join(dirpath, f))
                elif ".tmp." in f:
                    torn += 1  # a write the kill cut short, in a temporary file: harmless
        s.start()
        if job_of(s, jid)["status"] == "succeeded" or kills >= 40:
            break
    j = wait_job(s, jid, 300)
    check(j["status"] == "succeeded", "the restarted job: %r" % j)
    check([e["epoch"] for e in j["epochs"]] == list(range(1, JOB_HP["epochs"] + 1)),
          "the job's epochs: %r" % [e["epoch"] for e in j["epochs"]])
    got = tensors(os.path.join(models, "job.safetensors"))
    check(got == want, "the job killed %d times ended with other weights than the straight run"
          % kills)
    corpora = db_consistent(db)
    s.terminate()
    print("  kill -9: %d kills during training and uploads (%d uploads done, %d corpora in the "
          "database, %d writes cut short in temporary files); the database was consistent and "
          "every checkpoint loaded after each; the job's weights equal the uninterrupted run's "
          "(%d attempts)" % (kills, uploads[0], corpora, torn, j["attempts"]))


# Big enough that a write takes milliseconds (6 MB with its optimizer state); a corpus small
# enough that it overfits, so the best epoch is not always the last.
WRITE_HP = {"regime": "sequence", "layers": 2, "hidden": 256, "seq_len": 30, "batch": 8,
            "epochs": 6, "lr": 0.005, "seed": 5, "val_fraction": 0.2, "sample_chars": 0}


def kill_in_write(server, jid, jobdir, prefix, timeout=120):
    """Waits until a checkpoint whose name starts with prefix is being written (its temporary file
    exists, and the rename that ends the write has not happened) and kills the server at once.
    True when it did; False when the job ended first."""
    end = time.monotonic() + timeout
    next_status = 0
    while time.monotonic() < end:
        try:
            names = os.listdir(jobdir)
        except FileNotFoundError:
            names = []  # not created yet, or removed: the job has ended
        for n in names:
            if n.startswith(prefix + ".tmp."):
                server.kill9()
                return True
        if time.monotonic() > next_status:  # now and then: has the job ended?
            if job_of(server, jid)["status"] in ("succeeded", "failed", "cancelled"):
                return False
            next_status = time.monotonic() + 0.05
        time.sleep(0.0002)
    raise Failure("no write of %s within %ds" % (prefix, timeout))


def checkpoint_write_kills(root):
    """kill -9 in the middle of checkpoint writes: the state's (model.latest) and the best model's
    (model), including the best epoch's own: each time the old file is there and loads, the
    restarted job goes on, and it ends with the very weights of the uninterrupted run."""
    text = h.english(21, 9000)
    d0 = os.path.join(root, "write-straight")
    s = h.Server("write-straight", os.path.join(d0, "models"), os.path.join(d0, "db"),
                 ["--train-threads", 1], env=ENV).start()
    jid = start_job(s, text, WRITE_HP)
    j = wait_job(s, jid, 600)
    check(j["status"] == "succeeded", "the uninterrupted job: %r" % j)
    want = tensors(os.path.join(d0, "models", "job.safetensors"))
    vals = [e["val_loss"] for e in j["epochs"]]
    best = 1 + vals.index(min(vals))
    s.terminate()

    d = os.path.join(root, "write-chaos")
    db = os.path.join(d, "db")
    s = h.Server("write-chaos", os.path.join(d, "models"), db, ["--train-threads", 1],
                 env=ENV).start()
    jid = start_job(s, text, WRITE_HP)
    jobdir = db + ".jobs/%d" % jid
    # (epoch in progress when armed, which write)
    plan = [(1, "model.latest.safetensors"), (best, "model.safetensors"),
            (min(best + 1, WRITE_HP["epochs"]), "model.latest.safetensors")]
    kills = []
    for epoch, prefix in plan:
        while True:  # until that epoch is the one in progress
            j = job_of(s, jid)
            if j["status"] != "queued" and len(j["epochs"]) >= epoch - 1:
                break
            time.sleep(0.01)
        if not kill_in_write(s, jid, jobdir, prefix):
            break
        # A write of a few MB can end between the listing and the kill; say so when it did.
        cut = [n for n in os.listdir(jobdir) if ".tmp." in n]
        for n in os.listdir(jobdir):
            if n.endswith(".safetensors"):
                check(loads(os.path.join(jobdir, n)), "a torn checkpoint: %s" % n)
        kills.append("%s in epoch %d%s" % (prefix, len(job_of_db(db, jid)) + 1,
                                           "" if cut else " (just after the write)"))
        s.start()
    j = wait_job(s, jid, 600)
    check(j["status"] == "succeeded", "the job killed in its writes: %r" % j)
    end = time.monotonic() + 10  # removed just after the job is recorded as succeeded
    while os.path.exists(jobdir) and time.monotonic() < end:
        time.sleep(0.02)
    if os.path.exists(jobdir):
        raise Failure("the job's working files outlived it: %r" % os.listdir(jobdir))
    got = tensors(os.path.join(d, "models", "job.safetensors"))
    check(got == want, "killed in writes (%s), the job ended with other weights than the "
          "uninterrupted run (best epoch %d)" % ("; ".join(kills), best))
    s.terminate()
    print("  kill -9 in checkpoint writes: %d kills (%s; the best epoch was %d); each left the old "
          "files loadable, and the job ended with the uninterrupted run's weights"
          % (len(kills), "; ".join(kills), best))


def job_of_db(db, jid):
    """The job's recorded epochs, read from the database file (the server is down)."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return c.execute("SELECT epoch FROM job_epochs WHERE job_id = ?", (jid,)).fetchall()
    finally:
        c.close()


def crash_loop(root, text):
    """A job that brings the server down before it completes an epoch, five times, is given up on
    at the sixth start, with the reason, and the server serves on."""
    d = os.path.join(root, "crashloop")
    s = h.Server("crashloop", os.path.join(d, "models"), os.path.join(d, "db"),
                 ["--train-threads", 1]).start()
    cid = h.request(s, "POST", "/corpora?name=slow", text,
                    headers={"Content-Type": "text/plain"}).json()["id"]
    jid = h.post(s, "/jobs", {"corpus_id": cid, "model_name": "slow", "hyperparameters": {
        "regime": "sequence", "layers": 2, "hidden": 384, "epochs": 1,
        "sample_chars": 0}}).json()["id"]
    for _ in range(5):
        end = time.monotonic() + 60
        while job_of(s, jid)["status"] != "running" and time.monotonic() < end:
            time.sleep(0.02)
        j = job_of(s, jid)
        check(j["status"] == "running" and j["progress"]["epoch"] <= 1 and not j["epochs"],
              "the slow job before a kill: %r" % j)
        s.kill9()
        s.start()
    j = wait_job(s, jid, 60)
    check(j["status"] == "failed" and "without progress" in (j["error"] or ""),
          "the sixth start: %r" % {k: j[k] for k in ("status", "error", "attempts")})
    check(j["attempts"] == 6, "attempts %r" % j["attempts"])
    check(h.get(s, "/readyz").status == 200, "ready after giving up")
    rc, _ = s.terminate()
    check(rc == 0, "exit %r" % rc)
    print("  crash loop: a job killed 5 times in its first epoch failed at its sixth start "
          "(%r)" % j["error"])


def full_disk(root, text):
    d = os.path.join(root, "full")
    db, models = os.path.join(d, "db"), os.path.join(d, "models")
    os.makedirs(models)
    shutil.copy(os.path.join(root, "models", "seq.safetensors"), models)
    limit = 4 << 20

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        h._die_with_parent()

    s = h.Server("full", models, db, ["--train-threads", 1])
    # Server.start has no preexec hook of its own: wrap Popen for this one start
    real_popen = subprocess.Popen

    def popen(*a, **kw):
        kw["preexec_fn"] = small_files
        return real_popen(*a, **kw)
    subprocess.Popen = popen
    try:
        s.start()
    finally:
        subprocess.Popen = real_popen
    try:
        big = h.english(11, 6 << 20)
        r = h.request(s, "POST", "/corpora?name=big", big, headers={"Content-Type": "text/plain"})
        check(r.status == 507 and r.json()["error"]["code"] == "insufficient_storage",
              "a corpus too big for the disk: %r" % r)
        check(h.generate(s, model="seq", seed_text="The ", length=20).status == 200,
              "generation after a full disk")
        # a job whose checkpoint (2 x 512: about 13 MB) cannot be written
        cid = h.request(s, "POST", "/corpora?name=small", text,
                        headers={"Content-Type": "text/plain"}).json()["id"]
        jid = h.post(s, "/jobs", {"corpus_id": cid, "model_name": "huge", "hyperparameters": {
            "regime": "sequence", "layers": 2, "hidden": 512, "max_seconds": 1,
            "sample_chars": 0}}).json()["id"]
        j = wait_job(s, jid, 300)
        check(j["status"] == "failed" and "too large" in (j["error"] or "").lower(),
              "the job that cannot save: %r" % {k: j[k] for k in ("status", "error")})
        check(not os.path.exists(os.path.join(models, "huge.safetensors")), "a partial model")
        check(h.generate(s, model="seq", seed_text="The ", length=20).status == 200,
              "generation after a failed save")
        check(h.get(s, "/healthz").status == 200 and h.get(s, "/readyz").status == 200,
              "health after a full disk")
    finally:
        rc, _ = s.terminate()
    check(rc == 0, "exit %r" % rc)
    corpora = db_consistent(db)
    print("  full disk (RLIMIT_FSIZE %d MiB): the 6 MiB upload was a 507, the job failed with "
          "%r, %d corpora intact, the server went on serving" % (limit >> 20, j["error"], corpora))


def damaged_database(root):
    d = os.path.join(root, "damaged")
    os.makedirs(d)
    good = os.path.join(d, "good.db")
    s = h.Server("good", os.path.join(d, "models"), good).start()
    for i in range(40):  # enough pages that a truncation cuts through data
        h.request(s, "POST", "/corpora?name=c%d" % i, h.english(i, 20000),
                  headers={"Content-Type": "text/plain"})
    s.terminate()
    size = os.path.getsize(good)
    cases = {"truncated": lambda b: b[:len(b) // 2], "emptied": lambda b: b"",
             "overwritten": lambda b: b[:100] + os.urandom(len(b) - 100)}
    for name, damage in cases.items():
        bad = os.path.join(d, name + ".db")
        with open(good, "rb") as f:
            data = f.read()
        with open(bad, "wb") as f:
            f.write(damage(data))
        p = subprocess.run([h.LSTMGEN, "serve", "--port", "0", "--db", bad, "--models",
                            os.path.join(d, "models")], capture_output=True, timeout=60)
        err = p.stderr.decode("utf-8", "replace")
        check(p.returncode == 1, "%s database: exit %d" % (name, p.returncode))
        check(bad in err and ("damaged" in err or "empty" in err or "not a database" in err),
              "%s database: %r" % (name, err))
        check(os.path.getsize(bad) == len(damage(data)), "%s database was written to" % name)
    print("  damaged database (%d bytes): truncated, emptied and overwritten copies each refused "
          "at startup with the reason, and left as they were" % size)


def model_truncated(root):
    d = os.path.join(root, "trunc")
    models = os.path.join(d, "models")
    os.makedirs(models)
    for n in ("win", "seq"):
        shutil.copy(os.path.join(root, "models", n + ".safetensors"), models)
    s = h.Server("trunc", models, os.path.join(d, "db"), ["--max-length", 100000]).start()
    try:
        path = os.path.join(models, "win.safetensors")
        with open(path, "rb") as f:
            original = f.read()
        stream = h.RawStream(s, "POST", "/generate", {"model": "win", "seed_text": "The ",
                                                      "length": 3000, "stream": True, "seed": 1})
        stream.read_until(b"data: ")
        with open(path, "wb") as f:  # truncated in place, while the stream runs
            f.write(original[:len(original) // 3])
        events = h.data_events(stream.read_to_end(timeout=120))
        check(events[-1][1].get("finish_reason") == "length", "the stream: %r" % (events[-1],))
        text = "".join(e["text"] for _, e in events[:-1])
        r = h.generate(s, model="win", seed_text="The ", length=10)
        check(r.status == 500 and r.json()["error"]["code"] == "model_unusable",
              "a request for the truncated model: %r" % r)
        check(h.generate(s, model="seq", seed_text="The ", length=10).status == 200,
              "the other model")
        tmp = path + ".new"
        with open(tmp, "wb") as f:
            f.write(original)
        os.rename(tmp, path)
        r = h.generate(s, model="win", seed_text="The ", length=3000, seed=1)
        check(r.status == 200 and r.json()["text"] == text, "the model put back gives the same "
              "text as the stream that outlived the truncation")
    finally:
        rc, _ = s.terminate()
    check(rc == 0, "exit %r" % rc)
    print("  model truncated mid-stream: the stream finished (3000 characters, the same as the "
          "restored model gives), new requests got 500 model_unusable, the other model served")


def main():
    h.LSTMGEN = os.path.abspath(sys.argv[1])
    with open(h.LSTMGEN, "rb") as f:
        h.SANITIZED = b"__asan_init" in f.read()
    h.TMP = root = tempfile.mkdtemp(prefix="lstmgen-faults-")
    models = os.path.join(root, "models")
    os.makedirs(models)
    en = h.write_file(os.path.join(root, "en.txt"), h.english(1, 20000))
    common = ["--threads", 1, "--sample-chars", 0, "--quiet", "--epochs", 1, "--seed", 1]
    h.run_cli("train", "--corpus", en, "--out", os.path.join(models, "seq.safetensors"),
              "--regime", "sequence", "--seq-len", 30, "--layers", 1, "--hidden", 48,
              "--batch", 8, *common)
    h.run_cli("train", "--corpus", en, "--out", os.path.join(models, "win.safetensors"),
              "--maxlen", 20, "--step", 3, "--hidden", 32, "--batch", 32, *common)
    text = h.english(5, 60000)
    t0 = time.monotonic()
    try:
        checkpoint_write_kills(root)
        kill9_loop(root, text)
        crash_loop(root, text)
        full_disk(root, text)
        damaged_database(root)
        model_truncated(root)
    except (Failure, AssertionError, OSError, KeyError) as e:
        h.kill_all()
        print("FAIL: %s\nlogs kept in %s" % (e, root))
        return 1
    h.kill_all()
    reports = [r for s in h.SERVERS for i in range(len(s.logs))
               for r in h.sanitizer_reports(s.log(i))]
    if reports:
        print("FAIL: sanitizer reports:\n  " + "\n  ".join(reports[:20]))
        return 1
    shutil.rmtree(root, ignore_errors=True)
    print("faults: ok (%.0fs)" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
