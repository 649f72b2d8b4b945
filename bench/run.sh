#!/usr/bin/env bash
# Runs lstmgen's and PyTorch's versions of the same workloads in one go and prints both figures
# and the ratio, twice: on this machine as it is (native) and as a machine with AVX2 and no
# AVX-512 would run it (avx2: LSTMGEN_SIMD=avx2, OpenBLAS's Haswell kernels for both, PyTorch's
# own kernels capped at AVX2). Not a test.
# Usage: bench/run.sh [CORPUS] [SECONDS_PER_MEASUREMENT] [native|avx2 ...]
# The machine should be otherwise idle; each figure is the mean rate over SECONDS after a warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-../shared/corpora/nietzsche.txt}
seconds=${2:-10}
shift $(($# < 2 ? $# : 2))
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(native avx2)
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build bench_core >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for shape in "${shapes[@]}"; do
    env=()
    [ "$shape" = avx2 ] && env=(LSTMGEN_SIMD=avx2 OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2)
    env "${env[@]}" build/bench/bench_core "$corpus" "$seconds" | sed "s/^{/{\"shape\":\"$shape\",/" |
        tee -a "$out"
    # PyTorch links the same OpenBLAS, which may not know this CPU either: give it the kernels
    # lstmgen chose (bench_core's "kernels" line).
    blas=$(grep "\"shape\":\"$shape\"" "$out" | grep '"kernels"' | sed 's/.*"blas":"\([^"]*\)".*/\1/')
    if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
        for threads in 1 2; do
            env "${env[@]}" OPENBLAS_CORETYPE="$blas" OMP_WAIT_POLICY=PASSIVE \
                OMP_NUM_THREADS=$threads /usr/bin/python3 bench/bench_torch.py "$corpus" \
                "$seconds" $threads | sed "s/^{/{\"shape\":\"$shape\",/" | tee -a "$out"
        done
    else
        echo "python3-torch is not installed: no PyTorch baseline" >&2
    fi
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def get(shape, bench, impl, threads, key):
    for r in rows:
        if (r["shape"], r["bench"], r["impl"]) == (shape, bench, impl) and \
                r.get("threads") == threads and key in r:
            return r[key]
    return None
table = [("train_window", "seqs_per_sec", "limit_window"),
         ("train_window", "epoch_seconds", "limit_window"),
         ("train_sequence", "chars_per_sec", None),
         ("sample_1x128", "chars_per_sec", "limit_sample_1x128"),
         ("sample_2x512", "chars_per_sec", "limit_sample_2x512")]
for shape in dict.fromkeys(r["shape"] for r in rows):
    kernels = next(r for r in rows if r["shape"] == shape and r["bench"] == "kernels")
    print(f"\n{shape}: lstmgen's SIMD level {kernels['simd']}, OpenBLAS kernels {kernels['blas']}")
    print(f"{'benchmark':<15} {'thr':>3} {'unit':<14} {'lstmgen':>10} {'pytorch':>10} {'ratio':>7}"
          f" {'limit':>10} {'of limit':>8}")
    for bench, unit, limit in table:
        for threads in (1, 2):
            ours = get(shape, bench, "lstmgen", threads, unit)
            if ours is None:
                continue
            theirs = get(shape, bench, "pytorch", threads, unit)
            bound = get(shape, limit, "lstmgen", threads, unit) if limit else None
            faster = theirs / ours if unit == "epoch_seconds" else (ours / theirs if theirs else 0)
            share = bound / ours if unit == "epoch_seconds" else (ours / bound if bound else 0)
            print(f"{bench:<15} {threads:>3} {unit:<14} {ours:>10.1f} "
                  f"{theirs if theirs else float('nan'):>10.1f} "
                  f"{(f'{faster:.2f}x') if theirs else '-':>7} "
                  f"{bound if bound else float('nan'):>10.1f} "
                  f"{(f'{100 * share:.0f}%') if bound else '-':>8}")
print("\nratio: how many times faster lstmgen is; limit: the matrix products alone, training's at")
print("the measured OpenBLAS sgemm rate, sampling's with generation's own kernel (bimm) at B = 1;")
print("of limit: lstmgen's share of it.")
PY
