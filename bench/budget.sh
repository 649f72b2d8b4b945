#!/usr/bin/env bash
# The time budget's automatic choice (`lstmgen train --max-seconds S` and nothing else) against
# fixed configurations chosen by hand and PyTorch's char-rnn recipe (bench/budget_torch.py),
# each given the same wall-clock time on the same text, compared by their best validation loss
# (nats per character, the last 5 % of the text). Not a test: it takes a while (the sum of the
# budgets, times the runs per case), and the machine should be otherwise idle.
#
# usage: bench/budget.sh [CASE...]
#   CASE: shakespeare-40 shakespeare-120 nietzsche-120 nietzsche-600 hongloumeng-300
#   (default: all; CORPORA=dir holds the texts, default ../shared/corpora; AUTO_ONLY=1 runs the
#   automatic choice alone, after a change to it: the other runs do not depend on it; TORCH=0
#   leaves PyTorch out, whose runs do not depend on lstmgen's build)
set -euo pipefail
cd "$(dirname "$0")/.."
corpora=${CORPORA:-../shared/corpora}
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build lstmgen >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The texts: 100 kB of Shakespeare, all of Nietzsche, 1 MB of the Chinese novel (cut at a
# character, so the text stays valid UTF-8).
head -c 100000 "$corpora/tinyshakespeare.txt" >"$work/shakespeare.txt"
cp "$corpora/nietzsche.txt" "$work/nietzsche.txt"
/usr/bin/python3 -c 'import sys; b = open(sys.argv[1], "rb").read(1000000); \
open(sys.argv[2], "wb").write(b.decode("utf-8", "ignore").encode())' \
    "$corpora/hongloumeng.txt" "$work/hongloumeng.txt"

# The configurations tried by hand for each case: the best of them is the one to beat.
hand() {
    case $1 in
    shakespeare-40) printf '%s\n' \
        "--layers 1 --hidden 64 --batch 16 --seq-len 64 --lr 0.008" \
        "--layers 1 --hidden 128 --batch 16 --seq-len 64 --lr 0.008" \
        "--layers 1 --hidden 128 --batch 16 --seq-len 32 --lr 0.004" \
        "--layers 1 --hidden 192 --batch 16 --seq-len 64 --lr 0.008" \
        "--layers 2 --hidden 128 --batch 16 --seq-len 64 --lr 0.008" ;;
    shakespeare-120) printf '%s\n' \
        "--layers 1 --hidden 128 --batch 16 --seq-len 64 --lr 0.008" \
        "--layers 1 --hidden 192 --batch 16 --seq-len 64 --lr 0.008" \
        "--layers 1 --hidden 256 --batch 16 --seq-len 64 --lr 0.006" \
        "--layers 2 --hidden 192 --batch 16 --seq-len 64 --lr 0.006 --dropout 0.1" \
        "--layers 1 --hidden 192 --batch 32 --seq-len 64 --lr 0.008" ;;
    nietzsche-120) printf '%s\n' \
        "--layers 1 --hidden 128 --batch 16 --seq-len 64 --lr 0.008" \
        "--layers 1 --hidden 192 --batch 16 --seq-len 64 --lr 0.008" \
        "--layers 1 --hidden 256 --batch 16 --seq-len 64 --lr 0.006" \
        "--layers 2 --hidden 192 --batch 16 --seq-len 64 --lr 0.006" \
        "--layers 1 --hidden 192 --batch 32 --seq-len 64 --lr 0.008" ;;
    nietzsche-600) printf '%s\n' \
        "--layers 1 --hidden 256 --batch 32 --seq-len 64 --lr 0.006" \
        "--layers 2 --hidden 256 --batch 32 --seq-len 64 --lr 0.005 --dropout 0.1" \
        "--layers 2 --hidden 384 --batch 32 --seq-len 64 --lr 0.004 --dropout 0.2" ;;
    hongloumeng-300) printf '%s\n' \
        "--layers 1 --hidden 128 --batch 16 --seq-len 64 --lr 0.008" \
        "--layers 1 --hidden 256 --batch 16 --seq-len 64 --lr 0.006" \
        "--layers 2 --hidden 256 --batch 32 --seq-len 64 --lr 0.005" ;;
    esac
}

# The best validation loss of one lstmgen run (every epoch's, the last stretch included).
run_lstmgen() { # text seconds options...
    local text=$1 seconds=$2
    shift 2
    build/lstmgen train --corpus "$text" --out "$work/m.safetensors" --max-seconds "$seconds" \
        --sample-chars 0 --quiet --json "$@" 2>/dev/null |
        /usr/bin/python3 -c 'import json, sys
rows = [json.loads(l) for l in sys.stdin]
plan = rows[-1].get("plan") or {}
print("%.4f %s" % (min(r["val_loss"] for r in rows),
      "%dx%d b%d s%d lr%g d%g" % (plan["layers"], plan["hidden"], plan["batch"],
                                  plan["seq_len"], plan["lr"], plan["dropout"])))'
}

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(shakespeare-40 shakespeare-120 nietzsche-120 nietzsche-600
                                 hongloumeng-300)
rows=()
for c in "${cases[@]}"; do
    text="$work/${c%-*}.txt" seconds=${c##*-}
    read -r auto_loss auto_what < <(run_lstmgen "$text" "$seconds")
    echo "$c auto: $auto_loss ($auto_what)" >&2
    best_loss=99 best_what=
    [ "${AUTO_ONLY:-0}" = 1 ] && continue
    while read -r options; do
        # shellcheck disable=SC2086 # the options are words
        read -r loss what < <(run_lstmgen "$text" "$seconds" --regime sequence $options)
        echo "$c hand: $loss ($what)" >&2
        if /usr/bin/python3 -c "import sys; sys.exit(not $loss < $best_loss)"; then
            best_loss=$loss best_what=$what
        fi
    done < <(hand "$c")
    torch=nan
    [ "${TORCH:-1}" = 0 ] ||
        torch=$(OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/budget_torch.py "$text" "$seconds" 2 |
                /usr/bin/python3 -c 'import json, sys; print("%.4f" % json.load(sys.stdin)["best_val_loss"])')
    echo "$c pytorch: $torch" >&2
    rows+=("$c $auto_loss $auto_what|$best_loss $best_what|$torch")
done

echo
echo "| case | automatic (chosen) | best by hand | vs best | PyTorch char-rnn | vs PyTorch |"
echo "|---|---|---|---|---|---|"
for r in "${rows[@]}"; do
    IFS='|' read -r a h t <<<"$r"
    read -r c al aw <<<"$a"
    read -r hl hw <<<"$h"
    /usr/bin/python3 -c "nan = float('nan'); print('| %s s | %s (%s) | %s (%s) | %+.1f %% | %s | %+.1f %% |' % (
        '$c'.replace('-', ' '), '$al', '$aw', '$hl', '$hw', ($al / $hl - 1) * 100, '$t',
        ($al / $t - 1) * 100))"
done
