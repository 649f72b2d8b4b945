#!/usr/bin/python3
"""test_cli: the real lstmgen binary, as a user runs it, on corpora generated here (English-like
words from a fixed list and Chinese characters, both from a seeded generator; nothing from
../shared). Checks: train --json prints exactly one JSON object per epoch on stdout; sample prints
only the generated text, --length characters of it, the same text for the same --seed, and its
--json reports the mode; eval prints {"nats", "bits", "chars"} consistently; info shows the
metadata; --help exits 0; usage errors exit 2 with one line on stderr; runtime errors exit 1 and
say what is wrong; --max-seconds stops early with a loadable checkpoint; --resume continues a run
exactly, with the hyperparameters stored in the checkpoint.
usage: test_cli.py LSTMGEN
Standard library only. Exits 0 on success, 1 on the first failure.
"""
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

LSTMGEN = None
TMP = None
TIMEOUT = 120

WORDS = ("the of and to in is was he that it for on with as his at by from they we this had not "
         "are but or have an which one were her all she there would their will when who him been "
         "has more if no out so said what up about into than them can only other new some could "
         "time these two may then do first any my now such like our over man me even most made "
         "after also did many before must through back years where much your way well down "
         "should because each just those people how too little state good very make world still "
         "own see men work long get here between both life").split()
HANZI = "天地人和风雨山水花月春秋日夜红楼梦心中大小上下来去说道是不了我你他她们的有也这那"


def gen_english(seed, min_chars):
    r = random.Random(seed)
    out, n, sentences = [], 0, 0
    while n < min_chars:
        words = [r.choice(WORDS) for _ in range(r.randint(4, 9))]
        s = " ".join(words)
        sentences += 1
        s = s[0].upper() + s[1:] + "." + ("\n" if sentences % 5 == 0 else " ")
        out.append(s)
        n += len(s)
    return "".join(out)


def gen_chinese(seed, min_chars):
    r = random.Random(seed)
    pairs = [r.choice(HANZI) + r.choice(HANZI) for _ in range(60)]
    out, n = [], 0
    while n < min_chars:
        s = "，".join(r.choice(pairs) for _ in range(r.randint(3, 7))) + "。\n"
        out.append(s)
        n += len(s)
    return "".join(out)


class Failure(Exception):
    pass


def check(cond, what, *context):
    if not cond:
        raise Failure(what + "".join("\n    " + str(c) for c in context))


def path(name):
    return os.path.join(TMP, name)


def write(name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path(name), mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
        f.write(data)
    return path(name)


def run(*args, want=0):
    """Runs lstmgen with args; checks the exit code; returns (stdout, stderr) as text."""
    cmd = [LSTMGEN] + [str(a) for a in args]
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    p = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, env=env)
    out = p.stdout.decode("utf-8")  # strict: stdout must be valid UTF-8
    err = p.stderr.decode("utf-8", "replace")
    check(p.returncode == want, "exit %d, expected %d: %s" % (p.returncode, want, " ".join(cmd)),
          "stdout: " + out[:2000], "stderr: " + err[:2000])
    return out, err


def one_line(err, *expect):
    """A usage or runtime error: one line on stderr, mentioning each of expect."""
    check(err.endswith("\n") and err.count("\n") == 1, "stderr is not exactly one line", repr(err))
    for e in expect:
        check(e in err, "stderr does not mention %r" % e, err)


def read_bytes(p):
    with open(p, "rb") as f:
        return f.read()


def json_lines(out):
    lines = out.split("\n")
    check(lines[-1] == "", "stdout does not end with a newline", repr(out[-200:]))
    objs = []
    for line in lines[:-1]:
        try:
            objs.append(json.loads(line))
        except ValueError as e:
            raise Failure("not a JSON object per line: %s\n    %r" % (e, line[:300]))
        check(isinstance(objs[-1], dict), "a line is not a JSON object", line[:300])
    return objs


def info_json(ckpt):
    out, _ = run("info", "--json", ckpt)
    return json.loads(out)


# ------------------------------------------------------------------------------------------------
# the tests

WINDOW = ["--maxlen", 20, "--step", 3, "--hidden", 32, "--batch", 32, "--threads", 1]
SEQUENCE = ["--regime", "sequence", "--seq-len", 30, "--layers", 1, "--hidden", 32, "--batch", 8,
            "--threads", 1]


def test_train_json(corpus, vocab_size):
    out, err = run("train", "--corpus", corpus, "--out", path("w.safetensors"), *WINDOW,
                   "--epochs", 3, "--sample-chars", 30, "--val-fraction", 0.1, "--json")
    epochs = json_lines(out)
    check(len(epochs) == 3, "train --json: %d lines for 3 epochs" % len(epochs), out)
    for i, e in enumerate(epochs):
        check(e["epoch"] == i + 1 and e["epochs"] == 3 and e["partial"] is False, "epoch fields", e)
        for key in ("train_loss", "val_loss", "chars_per_sec", "eta"):
            check(isinstance(e.get(key), (int, float)) and math.isfinite(e[key]),
                  "%s is not a finite number" % key, e)
        check(0 < e["train_loss"] < math.log(vocab_size) + 1, "train_loss out of range", e)
        check(e["chars_per_sec"] > 0 and e["eta"] >= 0, "chars_per_sec / eta", e)
        check(sorted(e["samples"]) == ["0.2", "0.5", "1.0", "1.2"], "sample temperatures", e)
        for t, s in e["samples"].items():
            check(isinstance(s, str) and len(s) == 30, "sample at %s is not 30 characters" % t, e)
    check(epochs[-1]["eta"] == 0, "eta after the last epoch", epochs[-1])
    check(epochs[-1]["train_loss"] < epochs[0]["train_loss"], "train loss did not fall", epochs)
    check("wrote" not in out, "--json stdout holds something else", out)
    print("  train --json: 3 lines, train loss %.3f -> %.3f, val %.3f"
          % (epochs[0]["train_loss"], epochs[-1]["train_loss"], epochs[-1]["val_loss"]))

    # plain output names the files on stderr
    out, err = run("train", "--corpus", corpus, "--out", path("plain.safetensors"), *WINDOW,
                   "--epochs", 1, "--sample-chars", 0, "--val-fraction", 0.1)
    check(out.startswith("epoch 1/1"), "plain train output", out)
    check("plain.safetensors" in err and "plain.latest.safetensors" in err, "wrote ... message", err)

    out, _ = run("train", "--corpus", corpus, "--out", path("s.safetensors"), *SEQUENCE,
                 "--epochs", 2, "--sample-chars", 10, "--val-fraction", 0.1, "--json")
    check(len(json_lines(out)) == 2, "sequence train --json lines", out)


def test_sample(corpus_text):
    w, s = path("w.safetensors"), path("s.safetensors")
    vocab = set(corpus_text)
    a, _ = run("sample", "--model", w, "--length", 120, "--seed", 5)
    check(len(a) == 120, "sample --length 120 printed %d characters" % len(a), repr(a))
    check(set(a) <= vocab, "sample printed characters outside the vocabulary", repr(a))
    b, _ = run("sample", "--model", w, "--length", 120, "--seed", 5)
    check(a == b, "same --seed, different text", repr(a), repr(b))
    c, _ = run("sample", "--model", w, "--length", 120, "--seed", 6)
    check(a != c, "another --seed, same text", repr(a))
    g1, _ = run("sample", "--model", w, "--length", 40, "--seed", 1, "--temperature", 0,
                "--seed-text", "The man")
    g2, _ = run("sample", "--model", w, "--length", 40, "--seed", 2, "--temperature", 0,
                "--seed-text", "The man")
    check(g1 == g2 and len(g1) == 40, "greedy output depends on the seed", repr(g1), repr(g2))
    check(not g1.startswith("The man"), "sample printed the seed text", repr(g1))
    z, _ = run("sample", "--model", w, "--length", 0, "--seed", 1)
    check(z == "", "--length 0 printed something", repr(z))

    out, _ = run("sample", "--model", w, "--length", 50, "--seed", 5, "--json")
    j = json.loads(out)
    check(out.count("\n") == 1, "sample --json is not one line", out)
    check(j["mode"] == "window", "window model sampled in mode %s" % j["mode"], j)
    check(j["generated_chars"] == 50 and len(j["text"]) == 50, "--json length", j)
    check(j["text"] == a[:50], "--json text differs from plain output with the same seed", j, a)
    check(j["seed"] == 5 and j["finish_reason"] == "length", "--json seed/finish_reason", j)
    out, _ = run("sample", "--model", s, "--length", 50, "--seed", 5, "--json")
    j = json.loads(out)
    check(j["mode"] == "stateful" and len(j["text"]) == 50, "sequence model mode", j)
    out, _ = run("sample", "--model", w, "--length", 50, "--json")  # a fresh seed, reported
    j = json.loads(out)
    check(isinstance(j["seed"], int) and j["seed"] >= 0, "fresh seed not reported", j)
    out, _ = run("sample", "--model", w, "--length", 50, "--seed", j["seed"])
    check(out == j["text"], "the reported fresh seed does not reproduce the text", j, out)
    out, _ = run("sample", "--model", w, "--length", 500, "--seed", 3, "--stop", "e", "--json")
    j = json.loads(out)
    check(j["finish_reason"] == "stop" and "e" not in j["text"] and len(j["text"]) < 500,
          "--stop e", j)
    print("  sample: --length, --seed, greedy, --json (window/stateful), --stop ok")


def test_eval(model_vocab_text):
    w = path("w.safetensors")
    vocab = set(model_vocab_text)
    held_out = "".join(c for c in gen_english(99, 3000) if c in vocab)  # unseen text, known chars
    f = write("held_out.txt", held_out)
    out, _ = run("eval", "--model", w, f)
    check(out.count("\n") == 1, "eval prints one line", out)
    j = json.loads(out)
    check(sorted(j) == ["bits", "chars", "nats"], "eval keys", j)
    check(j["chars"] == len(held_out) - 1, "chars %d != %d - 1" % (j["chars"], len(held_out)), j)
    check(abs(j["bits"] - j["nats"] / math.log(2)) < 2e-6, "bits != nats / ln 2", j)
    v = len(vocab)
    check(0 < j["nats"] < 0.8 * math.log(v), "eval nats not below 0.8 ln V = %.3f"
          % (0.8 * math.log(v)), j)
    # a text with a character outside the vocabulary fails unless --skip-unknown
    f2 = write("unknown.txt", "The man # was here.")
    _, err = run("eval", "--model", w, f2, want=1)
    one_line(err, "#")
    out, _ = run("eval", "--model", w, "--skip-unknown", f2)
    check(json.loads(out)["chars"] == len("The man  was here.") - 1, "--skip-unknown chars", out)
    print("  eval: nats %.4f, bits %.4f, chars %d" % (j["nats"], j["bits"], j["chars"]))


def test_info(corpus):
    w = path("w.safetensors")
    out, _ = run("info", w)
    sha = hashlib.sha256(read_bytes(corpus)).hexdigest()
    for want in ("regime       window (maxlen 20, step 3)", "corpus_sha256 " + sha,
                 "1 x LSTM(32)", "created_at   2023-11-14T22:13:20Z", "optimizer    rmsprop"):
        check(" ".join(want.split()) in " ".join(out.split()), "info lacks %r" % want, out)
    j = info_json(w)
    md = j["metadata"]
    check(j["regime"] == "window" and j["layers"] == 1 and j["hidden"] == 32, "info --json", j)
    check(j["file_size"] == os.path.getsize(w), "info file_size", j)
    check(md["corpus_sha256"] == sha and md["epochs"] == "3" and md["seed"] == "1", "metadata", md)
    check(len(json.loads(md["history"])) == 3, "history", md)
    j = info_json(path("w.latest.safetensors"))
    check(j["metadata"]["epochs"] == "3", "latest metadata", j)
    print("  info: metadata ok (%d entries)" % len(md))


def test_help_and_usage_errors(corpus):
    for cmd in ("train", "sample", "eval", "info", "serve"):
        out, err = run(cmd, "--help")
        check(out.startswith("usage: lstmgen " + cmd) and err == "", "%s --help" % cmd, out, err)
    out, _ = run("--help")
    check(out.startswith("usage: lstmgen"), "lstmgen --help", out)
    w = path("w.safetensors")
    cases = [
        (["train", "--corpus", corpus, "--bogus"], "--bogus"),
        (["train", "--out", path("x.safetensors")], "--corpus"),
        (["train", "--corpus", corpus, "--lr", "1e-2x"], "--lr"),
        (["train", "--corpus", corpus, "--batch", "0"], "--batch"),
        (["train", "--corpus", corpus, "--regime", "bogus"], "--regime"),
        (["train", "--corpus", corpus, "--val-fraction", "0.9"], "--val-fraction"),
        (["train", "--corpus", corpus, "--epochs"], "--epochs"),
        (["sample", "--model", w, "--length", "-5"], "--length"),
        (["sample", "--model", w, "--temperature", "nan"], "--temperature"),
        (["sample", "--model", w, "--temperature", "-1"], "--temperature"),
        (["sample", "--model", w, "--top-p", "0"], "--top-p"),
        (["sample", "--model", w, "--top-k", "-1"], "--top-k"),
        (["sample", "--model", w, "--mode", "bogus"], "--mode"),
        (["sample", "--model", w, "--stop", ""], "--stop"),
        (["sample", "--model", w, "--seed", "-3"], "--seed"),
        (["sample", "--length", "5"], "--model"),
        (["sample", "--model", w, "--wat"], "--wat"),
        (["eval", "--model", w], "FILE"),
        (["eval", path("held_out.txt")], "--model"),
        (["info"], "checkpoint"),
        (["info", w, w], "unexpected"),
        (["serve", "--port", "70000"], "--port"),
        (["serve", "--log-format", "xml"], "--log-format"),
        (["serve", "--max-length", "0"], "--max-length"),
        (["serve", "--wat"], "--wat"),
    ]
    for args, mention in cases:
        _, err = run(*args, want=2)
        one_line(err, mention)
    _, err = run("bogus", want=2)
    check("unknown command" in err, "unknown command", err)
    _, err = run(want=2)
    print("  --help exits 0; %d usage errors exit 2 with one line" % len(cases))


def test_runtime_errors(corpus):
    w = path("w.safetensors")
    _, err = run("train", "--corpus", path("nope.txt"), "--out", path("x.safetensors"), want=1)
    one_line(err, "nope.txt")
    _, err = run("sample", "--model", path("nope.safetensors"), want=1)
    one_line(err, "nope.safetensors")
    _, err = run("info", path("nope.safetensors"), want=1)
    one_line(err, "nope.safetensors")

    data = bytearray(read_bytes(w))
    data[len(data) - 10] ^= 0x40  # a flipped bit in the last tensor
    bad = write("corrupt.safetensors", bytes(data))
    for args in (["sample", "--model", bad], ["info", bad], ["eval", "--model", bad, corpus]):
        _, err = run(*args, want=1)
        one_line(err)
    write("truncated.safetensors", read_bytes(w)[:100])
    _, err = run("info", path("truncated.safetensors"), want=1)
    one_line(err)
    write("empty.safetensors", b"")
    _, err = run("sample", "--model", path("empty.safetensors"), want=1)
    one_line(err)

    # a seed-text character outside the vocabulary: named, with its position
    _, err = run("sample", "--model", w, "--seed-text", "The mañ", "--length", 5, want=1)
    one_line(err, "ñ", "U+00F1", "position 6")
    out, _ = run("sample", "--model", w, "--seed-text", "The mañ", "--length", 5, "--skip-unknown",
                 "--seed", 1)
    check(len(out) == 5, "--skip-unknown output", repr(out))

    # invalid UTF-8 in the corpus, with the byte offset
    raw = bytearray(read_bytes(corpus)[:2000])
    raw[1234] = 0xFF
    badc = write("bad_utf8.txt", bytes(raw))
    _, err = run("train", "--corpus", badc, "--out", path("x.safetensors"), *WINDOW, "--epochs", 1,
                 want=1)
    one_line(err, "1234")
    _, err = run("eval", "--model", w, badc, want=1)
    one_line(err, "1234")
    # a corpus too short for the windows
    short = write("short.txt", "Hello world.")
    _, err = run("train", "--corpus", short, "--out", path("x.safetensors"), *WINDOW, want=1)
    one_line(err, "maxlen")
    # the output directory does not exist
    _, err = run("train", "--corpus", corpus, "--out", path("no/such/dir/x.safetensors"), *WINDOW,
                 "--epochs", 1, "--sample-chars", 0, want=1)
    one_line(err, "no/such/dir")
    check(not os.path.exists(path("x.safetensors")), "a failed run left a checkpoint")
    print("  runtime errors exit 1 with one line naming the problem")


def test_max_seconds(corpus):
    big = write("big.txt", gen_english(7, 200000))
    out_ckpt = path("timed.safetensors")
    t0 = time.monotonic()
    out, _ = run("train", "--corpus", big, "--out", out_ckpt, *WINDOW, "--max-seconds", 1,
                 "--sample-chars", 20, "--json")
    secs = time.monotonic() - t0
    lines = json_lines(out)
    check(secs < 15, "--max-seconds 1 took %.1fs" % secs)
    check(len(lines) >= 1 and lines[-1]["partial"] is True, "last report is not partial", out)
    check(lines[-1]["epochs"] == 1000000, "without --epochs, trains until the time is up", lines)
    latest = path("timed.latest.safetensors")
    j = info_json(latest)
    check(int(j["metadata"]["optim.batch"]) > 0, "stopped mid-epoch", j["metadata"])
    info_json(out_ckpt)  # out is there and loads too
    s, _ = run("sample", "--model", out_ckpt, "--length", 20, "--seed", 1)
    check(len(s) == 20, "sample from the timed checkpoint", s)
    # and the stopped run resumes to the end of the epoch it was in
    epoch = int(j["metadata"]["optim.epoch"]) + 1
    out, _ = run("train", "--corpus", big, "--out", out_ckpt, "--resume", latest, "--epochs", epoch,
                 "--threads", 1, "--sample-chars", 0, "--json")
    lines = json_lines(out)
    check(len(lines) == 1 and lines[0]["epoch"] == epoch and not lines[0]["partial"], "resume",
          out)
    print("  --max-seconds 1: stopped after %.2fs in epoch %d at batch %s; resumed to its end"
          % (secs, epoch, j["metadata"]["optim.batch"]))


def test_resume(corpus):
    # trained with non-default hyperparameters; resumed with only --resume and --epochs: the
    # checkpoint's lr, seed, optimizer and batch must be the ones used
    opts = [*SEQUENCE, "--lr", 0.004, "--seed", 9, "--optimizer", "rmsprop", "--clip", 2,
            "--lr-decay", 0.9, "--dropout", 0, "--val-fraction", 0.1, "--sample-chars", 0]
    a = path("r_straight.safetensors")
    run("train", "--corpus", corpus, "--out", a, *opts, "--epochs", 3)
    b = path("r_cut.safetensors")
    run("train", "--corpus", corpus, "--out", b, *opts, "--epochs", 2)
    out, _ = run("train", "--corpus", corpus, "--out", b, "--resume",
                 path("r_cut.latest.safetensors"), "--epochs", 3, "--threads", 1, "--json",
                 "--sample-chars", 0)
    lines = json_lines(out)
    check([e["epoch"] for e in lines] == [3], "resume ran epochs %s" % [e["epoch"] for e in lines])
    check(abs(lines[0]["lr"] - 0.004 * 0.9 ** 2) < 1e-6, "resumed with lr %g" % lines[0]["lr"])
    check(read_bytes(path("r_straight.latest.safetensors")) ==
          read_bytes(path("r_cut.latest.safetensors")), "resumed run differs from a straight one")
    check(read_bytes(a) == read_bytes(b), "best checkpoints differ")
    # resuming from the best checkpoint (no optimizer state) or with another corpus fails
    _, err = run("train", "--corpus", corpus, "--out", b, "--resume", a, "--epochs", 4, want=1)
    one_line(err, "optimizer state")
    other = write("other.txt", gen_english(8, 5000))
    _, err = run("train", "--corpus", other, "--out", b, "--resume",
                 path("r_cut.latest.safetensors"), "--epochs", 4, want=1)
    one_line(err)
    print("  --resume: 2 + 1 epochs == 3 epochs, byte for byte, with the checkpoint's options")


def test_resume_continues_its_run(corpus):
    """--resume alone continues the same run: its corpus (named in the checkpoint), its file (not
    one named after the corpus) and its epoch target (not a fresh default)."""
    ckpt, latest = path("cont.safetensors"), path("cont.latest.safetensors")
    big = write("cont.txt", gen_english(9, 60000))
    out, _ = run("train", "--corpus", big, "--out", ckpt, *SEQUENCE, "--epochs", 5,
                 "--max-seconds", 0.3, "--sample-chars", 0, "--json")
    first = json_lines(out)
    check(first[-1]["epochs"] == 5 and first[-1]["partial"], "the run stopped early", first)
    for e in first:
        check(e["eta"] <= 0.3 + 1e-6, "the ETA counts the time budget", e)
    here = os.getcwd()
    os.chdir(TMP)  # so that a file named after the corpus would land here, visibly
    try:
        out, _ = run("train", "--resume", latest, "--threads", 1, "--sample-chars", 0, "--json")
    finally:
        os.chdir(here)
    lines = json_lines(out)
    check(lines[-1]["epoch"] == 5 and lines[-1]["epochs"] == 5, "resumed to the run's target",
          [(e["epoch"], e["epochs"]) for e in lines])
    check(not os.path.exists(path("cont.txt.safetensors")) and
          not os.path.exists(os.path.join(TMP, "cont.safetensors.safetensors")),
          "a resume wrote a file of its own", os.listdir(TMP))
    check(int(info_json(latest)["metadata"]["epochs"]) == 5, "the run's file holds 5 epochs")
    print("  --resume alone: found the corpus, continued %s to its 5 epochs" % ckpt)


def test_cli_conveniences(corpus):
    """--model NAME as lstmgen serve finds it; --seed-file; eval and --seed-file from '-'; the
    epoch samples every N epochs, one line each."""
    models = os.path.join(TMP, "models")
    os.makedirs(models, exist_ok=True)
    ckpt = os.path.join(models, "mine.safetensors")
    out, _ = run("train", "--corpus", corpus, "--out", ckpt, *WINDOW, "--epochs", 4,
                 "--sample-chars", 30, "--samples-every", 3)
    samples = [l for l in out.splitlines() if l.startswith("  T=")]
    check(len(samples) == 8, "samples printed at epochs 3 and 4 only (4 temperatures each)", out)
    epochs = [l for l in out.splitlines() if l.startswith("epoch ")]
    check(len(epochs) == 4 and len(out.splitlines()) == 4 + 2 * 5, "one line per epoch", out)
    env_run = lambda *a: subprocess.run([LSTMGEN] + [str(x) for x in a], capture_output=True,
                                        timeout=TIMEOUT, env=dict(os.environ,
                                                                  LSTMGEN_MODELS=models))
    by_name = env_run("sample", "--model", "mine", "--seed-text", "The ", "--length", 40,
                      "--seed", 5)
    by_path, _ = run("sample", "--model", ckpt, "--seed-text", "The ", "--length", 40, "--seed", 5)
    check(by_name.returncode == 0 and by_name.stdout.decode() == by_path,
          "--model NAME finds the model in LSTMGEN_MODELS", by_name.stderr)
    seed = write("seed.txt", "The ")
    from_file, _ = run("sample", "--model", ckpt, "--seed-file", seed, "--length", 40, "--seed", 5)
    check(from_file == by_path, "--seed-file gives what --seed-text gives")
    p = subprocess.run([LSTMGEN, "eval", "--model", ckpt, "-"], input=open(corpus, "rb").read(),
                       capture_output=True, timeout=TIMEOUT)
    want, _ = run("eval", "--model", ckpt, corpus)
    check(p.returncode == 0 and p.stdout.decode() == want, "eval - reads standard input",
          p.stderr)
    print("  --model NAME, --seed-file, eval -, --samples-every: ok")


def test_fine_tune(corpus):
    """--init NAME: the model's architecture and vocabulary, a named error for characters it
    lacks (exit 1), --unknown-chars drop / replace=C, the parent in info, and the usage errors."""
    models = os.path.join(TMP, "models")
    os.makedirs(models, exist_ok=True)
    base = os.path.join(models, "base.safetensors")
    run("train", "--corpus", corpus, "--out", base, *SEQUENCE, "--epochs", 2, "--quiet")
    text = open(corpus, encoding="utf-8").read()
    new = write("new.txt", text[len(text) // 2:] + "\u00e9\u00e9#\n")
    env = dict(os.environ, LSTMGEN_MODELS=models, SOURCE_DATE_EPOCH="1700000000")
    tuned = path("tuned.safetensors")

    def by_name(*args):
        cmd = [LSTMGEN, "train", "--corpus", new, "--init", "base", "--out", tuned, "--epochs",
               1, "--quiet", "--threads", 1] + list(args)
        return subprocess.run([str(a) for a in cmd], capture_output=True, timeout=TIMEOUT,
                              env=env)
    p = by_name()
    check(p.returncode == 1, "characters the model lacks: exit 1", p.stderr)
    one_line(p.stderr.decode(), "'\u00e9' (U+00E9) x2, '#' (U+0023) x1")
    for how in ("drop", "replace= "):
        p = by_name("--unknown-chars", how)
        check(p.returncode == 0, "--unknown-chars " + how, p.stderr)
        info = info_json(tuned)
        meta = info.get("metadata", info)
        check(meta.get("parent_model") == "base", "the parent's name in the metadata", info)
        check(meta.get("parent_sha256") == hashlib.sha256(read_bytes(base)).hexdigest(),
              "the parent's sha256 in the metadata", info)
    _, err = run("train", "--corpus", new, "--init", base, "--hidden", 64, want=2)
    one_line(err, "--hidden", "fine-tuning keeps its architecture")
    _, err = run("train", "--corpus", new, "--init", base, "--resume", base, want=2)
    one_line(err, "--init", "--resume")
    _, err = run("train", "--corpus", new, "--unknown-chars", "drop", want=2)
    one_line(err, "--unknown-chars")
    _, err = run("train", "--corpus", new, "--init", base, "--unknown-chars", "replace=ab", want=2)
    one_line(err, "--unknown-chars")
    print("  fine-tuning: --init NAME, unknown characters named, dropped, replaced; parent kept")


def test_chinese():
    text = gen_chinese(3, 4000)
    zh = write("zh.txt", text)
    ckpt = path("zh.safetensors")
    out, _ = run("train", "--corpus", zh, "--out", ckpt, *SEQUENCE, "--epochs", 2, "--lr", 0.01,
                 "--sample-chars", 20, "--json")
    for e in json_lines(out):
        for s in e["samples"].values():
            check(len(s) == 20 and set(s) <= set(text), "Chinese epoch sample", s)
    s, _ = run("sample", "--model", ckpt, "--seed-text", text[:2], "--length", 30, "--seed", 2)
    check(len(s) == 30 and set(s) <= set(text), "Chinese sample", s)
    _, err = run("sample", "--model", ckpt, "--seed-text", text[:2] + "A", "--length", 3, want=1)
    one_line(err, "A", "position 2")
    print("  chinese: trained; samples are vocabulary characters: " + s.replace("\n", "/"))


def main():
    global LSTMGEN, TMP
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    LSTMGEN = os.path.abspath(sys.argv[1])
    TMP = tempfile.mkdtemp(prefix="test_cli.")
    t0 = time.monotonic()
    try:
        text = gen_english(1, 8000)
        corpus = write("en.txt", text)
        test_train_json(corpus, len(set(text)))
        test_sample(text)
        test_eval(text)
        test_info(corpus)
        test_help_and_usage_errors(corpus)
        test_runtime_errors(corpus)
        test_max_seconds(corpus)
        test_resume(corpus)
        test_resume_continues_its_run(corpus)
        test_cli_conveniences(corpus)
        test_fine_tune(corpus)
        test_chinese()
    except (Failure, subprocess.TimeoutExpired) as e:
        print("FAIL: %s" % e)
        print("(files kept in %s)" % TMP)
        return 1
    shutil.rmtree(TMP)
    print("test_cli: ok (%.1fs)" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
