#!/usr/bin/env bash
# The scale benchmark (issue #13) in one command: builds the release binary, then runs
# `cargo bench --bench scale`, which drives it as separate processes on generated libraries.
#
#   scripts/bench-scale.sh                  # 10,000, 100,000 and 1,000,000 papers
#   scripts/bench-scale.sh 10000 100_000    # the sizes given
#   PAPERSIM_SCALE_RUNS=50 scripts/bench-scale.sh 10000
#
# The table goes to stdout and, as JSON, to <target>/bench-scale.json; built libraries are
# cached in <target>/bench-cache/ (a 1,000,000-paper one takes about 3 GB while it is built).
# The default model must be provisioned (PAPERSIM_MODELS, or papersim's model directory).
set -euo pipefail
cd "$(dirname "$0")/.."

for size in "$@"; do
    if ! [[ $size =~ ^[0-9][0-9_]*$ ]]; then
        echo "bench-scale.sh: \`$size\` is not a number of papers (digits, \`_\` allowed)" >&2
        exit 2
    fi
done

cargo build --release --bin papersim
target=${CARGO_TARGET_DIR:-target}
export PAPERSIM_BIN=${PAPERSIM_BIN:-$target/release/papersim}
if [ $# -gt 0 ]; then
    sizes=$(IFS=,; echo "$*")
    export PAPERSIM_SCALE_SIZES=$sizes
fi
exec cargo bench --bench scale
