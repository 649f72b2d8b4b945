#!/usr/bin/env bash
# Runs lstmgen's and PyTorch's versions of the same workloads in one go and prints both figures
# and the ratio. Not a test. Usage: bench/run.sh [CORPUS] [SECONDS_PER_MEASUREMENT]
# The machine should be otherwise idle; each figure is the mean rate over SECONDS after a warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-../shared/corpora/nietzsche.txt}
seconds=${2:-10}
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build bench_core >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
build/bench/bench_core "$corpus" "$seconds" | tee -a "$out"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    OMP_NUM_THREADS=1 /usr/bin/python3 bench/bench_torch.py "$corpus" "$seconds" 1 | tee -a "$out"
    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 /usr/bin/python3 bench/bench_torch.py "$corpus" "$seconds" 2 | tee -a "$out"
else
    echo "python3-torch is not installed: no PyTorch baseline" >&2
fi
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
key = {"train_window": "seqs_per_sec", "train_sequence": "chars_per_sec",
       "sample_1x128": "chars_per_sec", "sample_2x512": "chars_per_sec"}
print()
print(f"{'benchmark':<16} {'threads':>7} {'unit':<14} {'lstmgen':>12} {'pytorch':>12} {'ratio':>7}")
for bench, unit in key.items():
    for threads in (1, 2):
        got = {r["impl"]: r[unit] for r in rows if r["bench"] == bench and r["threads"] == threads}
        if "lstmgen" not in got:
            continue
        ours, theirs = got["lstmgen"], got.get("pytorch")
        ratio = f"{ours / theirs:6.2f}x" if theirs else "     -"
        print(f"{bench:<16} {threads:>7} {unit:<14} {ours:>12.0f} "
              f"{theirs if theirs else float('nan'):>12.0f} {ratio:>7}")
        extra = [r for r in rows if r["bench"] == bench and r["threads"] == threads and "epoch_seconds" in r]
        for r in extra:
            print(f"{'':<16} {'':>7} {'s/epoch':<14} " + f"{r['epoch_seconds']:>12.1f}"
                  if r["impl"] == "lstmgen" else f"{'':<16} {'':>7} {'s/epoch':<14} {'':>12} {r['epoch_seconds']:>12.1f}")
PY
