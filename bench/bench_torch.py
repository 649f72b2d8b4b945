"""bench_torch: the same workloads as bench_core.c in PyTorch (Debian's python3-torch), one JSON
line per measurement, for bench/run.sh to print side by side.

PyTorch at its best on this CPU: one-hot inputs (the book's x tensor), cuDNN-free nn.LSTM, and,
with 2 threads, OMP_WAIT_POLICY=PASSIVE (run.sh sets it) so its OpenMP and OpenBLAS pools do not
spin against each other.
Usage: bench_torch.py CORPUS SECONDS THREADS
"""
import json
import sys
import time

import torch
import torch.nn as nn


def load(path):
    text = open(path, encoding="utf-8").read().lower()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    return torch.tensor([index[c] for c in text], dtype=torch.long), len(chars)


class Net(nn.Module):
    def __init__(self, V, H, L):
        super().__init__()
        self.V = V
        self.lstm = nn.LSTM(V, H, L)
        self.fc = nn.Linear(H, V)


def train_rate(ids, V, regime, seconds, B=128, H=128, T=60, step=3):
    net = Net(V, H, 1)
    opt = torch.optim.RMSprop(net.parameters(), lr=0.01, alpha=0.9, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    eye = torch.eye(V)
    n = len(ids)
    gen = torch.Generator().manual_seed(7)
    stream = n // B
    state = None
    done, start = 0, None
    k = 0
    while True:
        if k == 3:
            start = time.perf_counter()
        if regime == "window":
            starts = torch.randint(0, (n - T - 1) // step, (B,), generator=gen) * step
            idx = starts[None, :] + torch.arange(T)[:, None]          # (T, B)
            x = eye[ids[idx]]                                          # one-hot (T, B, V)
            out, _ = net.lstm(x)
            loss = loss_fn(net.fc(out[-1]), ids[starts + T])
        else:
            base = torch.arange(B) * stream + (k * T) % (stream - T - 1)
            idx = base[None, :] + torch.arange(T)[:, None]
            x = eye[ids[idx]]
            out, state = net.lstm(x, state)
            state = tuple(s.detach() for s in state)
            loss = loss_fn(net.fc(out).reshape(-1, V), ids[idx + 1].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        k += 1
        if start is not None:
            done += 1
            if time.perf_counter() - start >= seconds:
                break
    return done / (time.perf_counter() - start)


@torch.no_grad()
def sample_rate(V, L, H, chars):
    net = Net(V, H, L)
    eye = torch.eye(V)
    gen = torch.Generator().manual_seed(1)
    state = None
    x = 0
    for phase, count in (("warm", chars // 10), ("timed", chars)):
        t0 = time.perf_counter()
        for _ in range(count):
            out, state = net.lstm(eye[x].view(1, 1, V), state)
            p = torch.softmax(net.fc(out[0, 0]), dim=0)
            x = int(torch.multinomial(p, 1, generator=gen))
    return chars / (time.perf_counter() - t0)


def main():
    path, seconds, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    ids, V = load(path)
    windows = (len(ids) - 60 + 2) // 3
    bps = train_rate(ids, V, "window", seconds)
    print(json.dumps({"bench": "train_window", "impl": "pytorch", "threads": threads,
                      "seqs_per_sec": round(bps * 128, 1),
                      "epoch_seconds": round(windows / (bps * 128), 1)}), flush=True)
    bps = train_rate(ids, V, "sequence", seconds, T=100)
    print(json.dumps({"bench": "train_sequence", "impl": "pytorch", "threads": threads,
                      "chars_per_sec": round(bps * 128 * 100, 1)}), flush=True)
    if threads == 1:
        print(json.dumps({"bench": "sample_1x128", "impl": "pytorch", "threads": 1,
                          "chars_per_sec": round(sample_rate(V, 1, 128, 20000), 1)}), flush=True)
        print(json.dumps({"bench": "sample_2x512", "impl": "pytorch", "threads": 1,
                          "chars_per_sec": round(sample_rate(V, 2, 512, 5000), 1)}), flush=True)


if __name__ == "__main__":
    main()
