#!/usr/bin/python3
"""budget_torch: PyTorch's run of char-rnn's recipe (2 x 128 LSTM, Adam 2e-3, clip 5, seq_len 64,
batch 64, state carried between batches) for a fixed wall-clock time, the baseline of
bench/budget.sh. It holds out the end of the text as lstmgen does (floor(n * 0.05) characters
of the code points), evaluates on it after every epoch and when the time is up, and prints one
JSON line: the best validation loss in nats per character. Not a test.

usage: budget_torch.py CORPUS SECONDS [THREADS]"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

corpus, seconds = sys.argv[1], float(sys.argv[2])
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
torch.set_num_threads(threads)
torch.manual_seed(1)
start = time.monotonic()

text = open(corpus, encoding="utf-8").read()
chars = sorted(set(text))
index = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([index[c] for c in text], dtype=torch.long)
V, n = len(chars), len(ids)
n_val = int(n * 0.05)
train, val = ids[: n - n_val], ids[n - n_val:]
H, L, T, B = 128, 2, 64, 64


class CharRNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(V, H, L)
        self.fc = torch.nn.Linear(H, V)

    def forward(self, x, state):
        out, state = self.lstm(F.one_hot(x, V).float(), state)
        return self.fc(out), state


def streams(data, b):
    """b parallel streams over data (time-major), and the targets one character on."""
    length = (len(data) - 1) // b
    x = data[: b * length].view(b, length).t()
    y = data[1: b * length + 1].view(b, length).t()
    return x, y


model = CharRNN()
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
x_train, y_train = streams(train, B)


def validate():
    b = B
    while b > 1 and (len(val) - 1) // b < T:
        b -= 1
    x, y = streams(val, b)
    total, count, state = 0.0, 0, None
    model.eval()
    with torch.no_grad():
        for s in range(0, x.shape[0], T):
            logits, state = model(x[s: s + T], state)
            total += F.cross_entropy(logits.reshape(-1, V), y[s: s + T].reshape(-1),
                                     reduction="sum").item()
            count += y[s: s + T].numel()
    model.train()
    return total / count


best, epochs, chars_done = math.inf, 0, 0
deadline = start + seconds
out_of_time = False
while not out_of_time:
    state = None
    for s in range(0, x_train.shape[0], T):
        logits, state = model(x_train[s: s + T], state)
        state = tuple(h.detach() for h in state)
        loss = F.cross_entropy(logits.reshape(-1, V), y_train[s: s + T].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        chars_done += y_train[s: s + T].numel()
        if time.monotonic() >= deadline:
            out_of_time = True
            break
    epochs += 1
    best = min(best, validate())
print(json.dumps({"impl": "pytorch", "recipe": "char-rnn 2x128 adam 2e-3 seq 64 batch 64",
                  "seconds": seconds, "threads": threads, "best_val_loss": best,
                  "epochs": epochs, "chars_per_sec": chars_done / (time.monotonic() - start)}))
