#!/usr/bin/env bash
# papersim's CPU encoder against sentence-transformers (PyTorch CPU) on this machine: the same
# model directory, the same texts, the same thread count, batch 32, one warm-up batch excluded,
# best of REPEAT runs on each side. Two text sets from the seed digest: `full` (title + abstract,
# 320 texts, most cut at 256 tokens) and `varied` (the same texts cut to random word counts).
#
#   scripts/setup-st-venv.sh          # once: .venv-st with torch + sentence-transformers
#   scripts/cpu-vs-st.sh [THREADS…]   # default: 1 2
#
# Environment: ST_PYTHON (default .venv-st/bin/python), MODEL_DIR (default
# models/sentence-transformers/all-MiniLM-L6-v2), REPEAT (default 3), BACKEND (papersim's
# forward: auto, cpu-fast, papersim; default auto). Timings are only meaningful on an idle
# machine: the script prints the 1-minute load average before each pair.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=("$@")
[[ ${#threads[@]} -gt 0 ]] || threads=(1 2)
py=${ST_PYTHON:-.venv-st/bin/python}
model=${MODEL_DIR:-models/sentence-transformers/all-MiniLM-L6-v2}
repeat=${REPEAT:-3}
backend=${BACKEND:-auto}
out=target/cpu-vs-st
mkdir -p "$out"
[[ -x $py ]] || { echo "no $py: run scripts/setup-st-venv.sh or set ST_PYTHON" >&2; exit 1; }
[[ -f $model/config.json ]] || { echo "no model in $model: run papersim once to provision it, or set MODEL_DIR" >&2; exit 1; }

cargo build --release --quiet --example cpu_throughput
papersim() { cargo run --release --quiet --example cpu_throughput -- "$@"; }
papersim texts tests/fixtures/digests/hf-trending-mar-11.txt "$out"

printf '| texts | threads | load | papersim texts/s | sentence-transformers texts/s | ratio | min cosine |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for set in full varied; do
  for t in "${threads[@]}"; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    ours=$(papersim run "$out/$set.txt" --threads "$t" --repeat "$repeat" --backend "$backend" \
      --model "$model" --vectors "$out/papersim-$set-$t.npy")
    theirs=$("$py" scripts/st_throughput.py "$out/$set.txt" --threads "$t" --repeat "$repeat" \
      --model "$model" --vectors "$out/st-$set-$t.npy" 2>/dev/null)
    echo "$ours" >"$out/papersim-$set-$t.json"
    echo "$theirs" >"$out/st-$set-$t.json"
    "$py" - "$set" "$t" "$load" "$ours" "$theirs" "$out/papersim-$set-$t.npy" "$out/st-$set-$t.npy" <<'PY'
import json, sys
import numpy as np
set_, t, load, ours, theirs, a, b = sys.argv[1:]
ours, theirs = json.loads(ours), json.loads(theirs)
assert ours["texts"] == theirs["texts"] and ours["tokens"] == theirs["tokens"], (ours, theirs)
a, b = np.load(a), np.load(b)
cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
print(f"| {set_} ({ours['texts']} texts, {ours['tokens']} tokens) | {t} | {load} | "
      f"{ours['texts_per_s']:.1f} | {theirs['texts_per_s']:.1f} | "
      f"{ours['texts_per_s'] / theirs['texts_per_s']:.2f} | {cos.min():.6f} |")
PY
  done
done
