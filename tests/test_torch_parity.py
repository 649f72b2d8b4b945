#!/usr/bin/python3
"""test_torch_parity: core/ against PyTorch's own nn.LSTM + nn.Linear, the model lstmgen claims to
be. A random PyTorch model is written as an lstmgen checkpoint from Python, and tests/parity_helper
(linked with core/) reads it back:
  (a) next-character probabilities, stateful from the zero state, max abs difference <= 1e-5;
  (b) checkpoints written by the C side (the helper's updated model, and a model trained by the
      real `lstmgen train` binary) load into PyTorch with load_state_dict(strict=True) and give the
      same probabilities;
  (c) one training step, window and sequence regimes, RMSprop and Adam: loss, gradients and the
      updated weights.
usage: test_torch_parity.py PARITY_HELPER [LSTMGEN]
Exits 0 on success, 1 on any failure, 77 (meson's skip) without python3-torch.
"""
import copy
import hashlib
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile

try:
    import numpy
    import torch
    import torch.nn.functional as F
except ImportError:
    print("SKIP: python3-torch is not installed")
    sys.exit(77)

PROB_ATOL = 1e-5
LOSS_RTOL = 1e-5
# Gradients: both sides sum the same float32 terms in different orders (OpenBLAS vs ATen), so
# they agree to a few ulps of the largest term in each sum; terms are O(1) at most here.
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-6
F32_U = 2.0 ** -24  # float32 unit roundoff

# The lstmgen optimizers, as torch.optim constructs them (lr, and what the bound below needs:
# eps and s, the factor relating the first step's denominator to |g|).
OPTIMIZERS = {
    # v = 0.1 g^2, so the first step is lr g / (sqrt(0.1) |g| + eps)
    "rmsprop": dict(lr=0.01, eps=1e-7, s=math.sqrt(0.1),
                    make=lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-7)),
    # m_hat = g and sqrt(v_hat) = |g| after one step, so the step is lr g / (|g| + eps)
    "adam": dict(lr=0.002, eps=1e-8, s=1.0,
                 make=lambda ps: torch.optim.Adam(ps, lr=0.002, betas=(0.9, 0.999), eps=1e-8)),
}

# V between 10 and 20, with multi-byte characters (2, 3 and 4 UTF-8 bytes) and the characters JSON
# must escape. ascii: the checkpoint header is written with \u escapes (surrogate pairs for the
# emoji) instead of raw UTF-8, to exercise both paths of the loader's JSON reader.
CONFIGS = [
    dict(name="L1-H16-V12", L=1, H=16, seed=1, ascii=False,
         chars="\n \"\\abcx\u00e9\u0436\u4e2d\U0001F600"),
    dict(name="L2-H24-V17", L=2, H=24, seed=2, ascii=True,
         chars="\n !\",.AB\\aet\u00e9\u00df\u0436\u4e2d\U0001F600"),
    dict(name="L2-H32-V20", L=2, H=32, seed=3, ascii=False,
         chars="abcdefghijklmn \n\u00fc\u03bb\u6587\U0001F642"),
]

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL: " + what)
    return ok


class Net(torch.nn.Module):
    """lstmgen's model; its state_dict names are the checkpoint's tensor names."""

    def __init__(self, V, H, L):
        super().__init__()
        self.V = V
        self.lstm = torch.nn.LSTM(V, H, L)
        self.fc = torch.nn.Linear(H, V)

    def forward(self, ids):
        """ids (T, B) -> logits (T, B, V), from the zero state."""
        out, _ = self.lstm(F.one_hot(ids, self.V).float())
        return self.fc(out)


# ----------------------------------------------------------------------------
# safetensors

def f32_bytes(t):
    return t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()


def write_checkpoint(path, net, vocab, L, H, regime, T, ascii_header):
    """net as an lstmgen-1 checkpoint (checkpoint.h): model tensors in file order, then both
    checksums; header_sha256 hashes the header with its own 64 digits read as '0's."""
    names = []
    for k in range(L):
        names += [f"lstm.weight_ih_l{k}", f"lstm.weight_hh_l{k}",
                  f"lstm.bias_ih_l{k}", f"lstm.bias_hh_l{k}"]
    names += ["fc.weight", "fc.bias"]
    sd = net.state_dict()
    entries, data, off = {}, b"", 0
    for n in names:
        b = f32_bytes(sd[n])
        entries[n] = {"dtype": "F32", "shape": list(sd[n].shape), "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    zeros = "0" * 64
    meta = {
        "format": "lstmgen-1",
        "vocab": json.dumps(vocab, ensure_ascii=ascii_header),
        "lowercase": "false",
        "regime": regime,
        "maxlen": str(T), "step": "3", "seq_len": str(T),
        "layers": str(L), "hidden": str(H),
        "dropout": "0",
        "data_sha256": hashlib.sha256(data).hexdigest(),
        "header_sha256": zeros,
    }
    hdr = json.dumps({"__metadata__": meta, **entries}, ensure_ascii=ascii_header,
                     separators=(",", ":")).encode("utf-8")
    hdr += b" " * (-len(hdr) % 8)
    at = hdr.index(b'"header_sha256":"' + zeros.encode()) + len(b'"header_sha256":"')
    digest = hashlib.sha256(hdr).hexdigest().encode()
    hdr = hdr[:at] + digest + hdr[at + 64:]
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + data)


def read_checkpoint(path):
    """(metadata, {name: tensor}) of a safetensors file, checking both lstmgen checksums."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    hdr, data = raw[8:8 + n], raw[8 + n:]
    header = json.loads(hdr.decode("utf-8"))
    meta = header.pop("__metadata__")
    check(meta.get("data_sha256") == hashlib.sha256(data).hexdigest(),
          f"{path}: data_sha256 does not match the data section")
    at = hdr.index(b'"header_sha256":"') + len(b'"header_sha256":"')
    zeroed = hdr[:at] + b"0" * 64 + hdr[at + 64:]
    check(meta.get("header_sha256") == hashlib.sha256(zeroed).hexdigest(),
          f"{path}: header_sha256 does not match the header")
    tensors = {}
    for name, e in header.items():
        if not check(e["dtype"] == "F32", f"{path}: {name} has dtype {e['dtype']}"):
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32) if end > b \
            else torch.zeros(0)
        tensors[name] = t.reshape(e["shape"])
    return meta, tensors


def net_from_checkpoint(path):
    """A Net with a C-written checkpoint's weights, loaded strictly (extra optim.* tensors are
    training state, not part of the model)."""
    meta, tensors = read_checkpoint(path)
    vocab = json.loads(meta["vocab"])
    net = Net(len(vocab), int(meta["hidden"]), int(meta["layers"]))
    net.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("optim.")},
                        strict=True)
    return net, vocab


# ----------------------------------------------------------------------------
# the helper

def run(argv):
    r = subprocess.run(argv, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {r.returncode}:\n"
                           + r.stderr.decode("utf-8", "replace"))
    return r.stdout.decode("utf-8")


def check_probs(label, helper, ckpt, net, vocab, text, tmp):
    """(a): the helper's stateful probabilities against softmax(fc(lstm(onehot(text)))). """
    path = os.path.join(tmp, "text.txt")
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    lines = run([helper, "probs", ckpt, path]).splitlines()
    c = torch.tensor([[float(x) for x in line.split()] for line in lines], dtype=torch.float64)
    ids = torch.tensor([vocab.index(ch) for ch in text]).unsqueeze(1)  # (n, 1)
    with torch.no_grad():
        p = torch.softmax(net(ids).squeeze(1).double(), dim=-1)  # (n, V)
    if not check(c.shape == p.shape, f"{label}: helper gave {tuple(c.shape)}, PyTorch "
                                     f"{tuple(p.shape)}"):
        return
    diff = (c - p).abs().max().item()
    print(f"  {label}: {len(text)} positions, max |dp| = {diff:.3g}")
    check(diff <= PROB_ATOL, f"{label}: max probability difference {diff:.3g} > {PROB_ATOL}")


def update_bound(opt, gc, gt, wt):
    """Per-element tolerance for the updated weights of one first optimizer step.
    The update is u(g) = lr g / (s |g| + eps) (OPTIMIZERS), nearly lr sign(g) / s: its derivative
    u'(g) = lr eps / (s |g| + eps)^2 is lr / eps (1e5 for RMSprop) at g = 0, so a gradient that is
    a float-rounding difference away from zero can move its weight's update by up to lr / s.
    Since u' shrinks with |g|, |u(gc) - u(gt)| <= u'(g_min) |gc - gt|, with g_min the smaller
    |g| when gc and gt have the same sign and 0 when they straddle zero. On top of that, rounding:
    both sides compute u in about five float32 operations (a few ulps of |u| <= lr / s, allowed
    16) and round w - u once (allowed 4 ulps of |w|)."""
    lr, eps, s = opt["lr"], opt["eps"], opt["s"]
    gc, gt = gc.double(), gt.double()
    g_min = torch.where(gc * gt > 0, torch.minimum(gc.abs(), gt.abs()), torch.zeros_like(gc))
    from_grad = lr * eps / (s * g_min + eps) ** 2 * (gc - gt).abs()
    rounding = 16 * F32_U * lr / s + 4 * F32_U * wt.double().abs()
    return from_grad + rounding, from_grad


def check_step(label, helper, cfg, net, vocab, regime, opt_name, seed, tmp):
    """(c): one training step on the same weights and batch, and (b) on the updated checkpoint."""
    V, L, H = len(vocab), cfg["L"], cfg["H"]
    T, B = (7, 3) if regime == "window" else (9, 4)
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(V, (T, B), generator=gen)
    targets = torch.randint(V, (B,) if regime == "window" else (T, B), generator=gen)
    opt = OPTIMIZERS[opt_name]
    ckpt = os.path.join(tmp, "step_in.safetensors")
    write_checkpoint(ckpt, net, vocab, L, H, regime, T, cfg["ascii"])
    batch = os.path.join(tmp, "batch.txt")
    with open(batch, "w") as f:
        f.write(f"regime {regime}\noptimizer {opt_name}\nlr {opt['lr']!r}\nT {T}\nB {B}\n")
        f.write("ids " + " ".join(str(int(x)) for x in ids.flatten()) + "\n")  # time-major
        f.write("targets " + " ".join(str(int(x)) for x in targets.flatten()) + "\n")
    out = os.path.join(tmp, "step_out")
    lines = run([helper, "step", ckpt, batch, out]).split()
    c_loss = float(lines[lines.index("loss") + 1])

    # PyTorch: the same step, as core/train.c takes it (zero state, no dropout, no clipping).
    tnet = copy.deepcopy(net)
    logits = tnet(ids)  # (T, B, V)
    if regime == "window":
        loss = F.cross_entropy(logits[-1], targets)  # the last step only
    else:
        loss = F.cross_entropy(logits.reshape(T * B, V), targets.reshape(T * B))
    tnet.zero_grad()
    loss.backward()
    t_grads = {k: p.grad.detach().clone() for k, p in tnet.named_parameters()}
    t_old = {k: p.detach().clone() for k, p in tnet.named_parameters()}
    optimizer = opt["make"](tnet.parameters())
    optimizer.step()
    t_new = {k: p.detach().clone() for k, p in tnet.named_parameters()}

    t_loss = loss.item()
    rel = abs(c_loss - t_loss) / abs(t_loss)
    print(f"  {label}: loss C {c_loss:.9g} torch {t_loss:.9g} (rel {rel:.2g})")
    check(rel <= LOSS_RTOL, f"{label}: loss differs by rel {rel:.3g} > {LOSS_RTOL}")

    _, c_grads = read_checkpoint(out + ".grad.safetensors")
    c_net, _ = net_from_checkpoint(out + ".updated.safetensors")
    c_new = dict(c_net.named_parameters())
    # C's step over PyTorch's where the update is saturated at lr / s (|g| >> eps / s), averaged
    # over all tensors so the rounding of w - u (an ulp of |w|, up to 3e-5 of u) averages out.
    num = den = 0.0
    for k, g in t_grads.items():
        sat = g.abs() > 1e-3
        uc = (c_new[k].detach().double() - t_old[k].double())[sat]
        ut = (t_new[k].double() - t_old[k].double())[sat]
        num += (uc.abs() - ut.abs()).sum().item()
        den += ut.abs().sum().item()
    print(f"    C step / PyTorch step - 1 = {num / den:.3g} where |g| > 1e-3")
    for name in t_grads:
        gc, gt = c_grads[name], t_grads[name]
        gdiff = (gc - gt).abs()
        gratio = (gdiff / (GRAD_RTOL * gt.abs() + GRAD_ATOL)).max().item()
        wc, wt = c_new[name].detach(), t_new[name]
        tol, from_grad = update_bound(opt, gc, gt, wt)
        wdiff = (wc.double() - wt.double()).abs()
        wratio = (wdiff / tol).max().item()
        print(f"    {name:18s} grad max|d| {gdiff.max().item():.2g} ({gratio:.2f} of tol)"
              f"   weight max|d| {wdiff.max().item():.2g} ({wratio:.2f} of bound;"
              f" largest gradient term {from_grad.max().item():.2g})")
        check(gratio <= 1, f"{label}: gradient {name} differs by {gdiff.max().item():.3g} "
                           f"({gratio:.3g} times rtol {GRAD_RTOL} + atol {GRAD_ATOL})")
        if wratio > 1:
            i = int((wdiff / tol).argmax())
            check(False, f"{label}: updated {name}[{i}] C {wc.flatten()[i].item():.9g} torch "
                         f"{wt.flatten()[i].item():.9g}, bound {tol.flatten()[i].item():.3g} "
                         f"(gradients C {gc.flatten()[i].item():.9g} torch "
                         f"{gt.flatten()[i].item():.9g})")

    # (b) the C-written updated checkpoint, loaded strictly into PyTorch
    text = "".join(random.Random(cfg["seed"]).choices(vocab, k=40))
    check_probs(f"{label}: updated checkpoint", helper, out + ".updated.safetensors", c_net,
                vocab, text, tmp)


def check_trained(helper, lstmgen, tmp):
    """(b): a checkpoint from the real `lstmgen train`, with its optim.* state, loads into
    PyTorch and predicts what core/ predicts."""
    corpus = os.path.join(tmp, "corpus.txt")
    text = ("Der Bär aß 中文 und 😀 «quoted» text, naïve café.\n" * 40)
    with open(corpus, "wb") as f:
        f.write(text.encode("utf-8"))
    out = os.path.join(tmp, "trained.safetensors")
    run([lstmgen, "train", "--corpus", corpus, "--out", out, "--regime", "sequence",
         "--layers", "2", "--hidden", "16", "--seq-len", "10", "--batch", "4", "--epochs", "2",
         "--dropout", "0", "--val-fraction", "0", "--sample-chars", "0", "--threads", "1",
         "--quiet", "--json"])
    net, vocab = net_from_checkpoint(out)
    check(vocab == sorted(set(text)), "trained checkpoint: vocab is not the corpus's characters")
    check_probs("lstmgen train checkpoint", helper, out, net, vocab, text[:80], tmp)


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        return 2
    helper = sys.argv[1]
    lstmgen = sys.argv[2] if len(sys.argv) == 3 else None
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}")
    with tempfile.TemporaryDirectory(prefix="lstmgen-parity-") as tmp:
        for cfg in CONFIGS:
            vocab = sorted(set(cfg["chars"]))
            V, L, H = len(vocab), cfg["L"], cfg["H"]
            torch.manual_seed(cfg["seed"])
            net = Net(V, H, L)
            with torch.no_grad():
                for p in net.parameters():  # larger than PyTorch's default: gates saturate too
                    p.uniform_(-0.5, 0.5)
            print(f"{cfg['name']} (V={V}, vocab {json.dumps(''.join(vocab))})")
            ckpt = os.path.join(tmp, "model.safetensors")
            write_checkpoint(ckpt, net, vocab, L, H, "sequence", 10, cfg["ascii"])
            rnd = random.Random(cfg["seed"])
            text = "".join(rnd.choices(vocab, k=60)) + "".join(vocab)
            check_probs("probs", helper, ckpt, net, vocab, text, tmp)
            for k, (regime, opt_name) in enumerate(
                    (r, o) for r in ("window", "sequence") for o in OPTIMIZERS):
                check_step(f"step {regime} {opt_name}", helper, cfg, net, vocab, regime, opt_name,
                           100 * cfg["seed"] + k, tmp)
        if lstmgen:
            check_trained(helper, lstmgen, tmp)
    if failures:
        print(f"{len(failures)} check(s) failed:")
        for f in failures:
            print("  " + f)
        return 1
    print("all parity checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print(f"FAIL: {e}")
        sys.exit(1)
