#!/usr/bin/env bash
# Measures dense, lexical and hybrid ranking and prints the tables of docs/hybrid.md
# (also written to target/eval-lib/report.md).
#
# Needs ../shared/data/arxiv-cs/ beside the checkout (the open evaluation and the arXiv
# corpus) and the default model (provisioned on first use). The first run embeds 6,800
# abstracts (15-40 minutes on a laptop CPU) and caches them under target/eval-lib/; later
# runs take about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d ../shared/data/arxiv-cs/eval-category ]; then
    echo "scripts/eval.sh: needs ../shared/data/arxiv-cs/eval-category beside the checkout" >&2
    exit 1
fi
exec cargo run --release --quiet --example eval "$@"
