"""bench_torch_gen: PyTorch (Debian's python3-torch) stepping B character streams of an LSTM as
one tensor batch, one character per step with a multinomial draw per stream: what a server
built on PyTorch's plain batch would get, without HTTP. One JSON line per (model, B).
Usage: bench_torch_gen.py SECONDS L:H[,L:H...] B[,B...]   (threads: OMP_NUM_THREADS)
"""
import json
import sys
import time

import torch
import torch.nn as nn

V = 60  # the vocabulary size of the bundled Nietzsche model


@torch.no_grad()
def rate(L, H, B, seconds):
    torch.manual_seed(1)
    lstm, fc = nn.LSTM(V, H, L), nn.Linear(H, V)
    eye = torch.eye(V)
    gen = torch.Generator().manual_seed(1)
    x = torch.zeros(B, dtype=torch.long)
    state = None
    steps, t0 = 0, None
    while True:
        if steps == 20:
            t0 = time.perf_counter()
        out, state = lstm(eye[x].view(1, B, V), state)
        p = torch.softmax(fc(out[0]), dim=1)
        x = torch.multinomial(p, 1, generator=gen).view(B)
        steps += 1
        if t0 is not None and time.perf_counter() - t0 >= seconds:
            return (steps - 20) * B / (time.perf_counter() - t0)


def main():
    seconds = float(sys.argv[1])
    for spec in sys.argv[2].split(","):
        L, H = (int(v) for v in spec.split(":"))
        for B in (int(b) for b in sys.argv[3].split(",")):
            print(json.dumps({"bench": "torch_gen", "model": "%dx%d" % (L, H), "B": B,
                              "threads": torch.get_num_threads(),
                              "chars_per_sec": round(rate(L, H, B, seconds), 1)}), flush=True)


if __name__ == "__main__":
    main()
