#!/usr/bin/env bash
# Creates .venv-bench/ (ignored by git) with PyTorch for the CPU and sentence-transformers, for
# scripts/bench_vs_sentence_transformers.py. Only PyPI is needed.
#
# PyPI's Linux torch wheel is the CUDA build and depends on about 3 GB of nvidia-* wheels. On
# the CPU torch never loads them, so torch is installed with --no-deps and its pure-Python
# dependencies are named here instead; everything else comes with its usual dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-bench
torch_version="${TORCH_VERSION:-2.*}"
st_version="${SENTENCE_TRANSFORMERS_VERSION:-6.*}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install --upgrade pip
"${pip[@]}" install --no-deps "torch==$torch_version"
"${pip[@]}" install filelock typing-extensions sympy networkx jinja2 fsspec numpy "setuptools>=77"
# sentence-transformers names torch as a dependency; it is satisfied by the wheel above.
"${pip[@]}" install "sentence-transformers==$st_version"
"$venv/bin/python" - <<'EOF'
import torch, sentence_transformers, transformers
x = torch.ones(2, 2) @ torch.ones(2, 2)
assert x.sum().item() == 8.0
print(f"ok: torch {torch.__version__} (CUDA available: {torch.cuda.is_available()}), "
      f"sentence-transformers {sentence_transformers.__version__}, transformers {transformers.__version__}")
EOF
