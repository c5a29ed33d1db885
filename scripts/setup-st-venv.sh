#!/usr/bin/env bash
# Creates .venv-st (gitignored) with PyTorch and sentence-transformers from PyPI, for
# scripts/cpu-vs-st.sh. PyPI's Linux torch wheel is the CUDA build: `import torch` loads its
# CUDA libraries even on a CPU-only machine, so the nvidia-* wheels are installed too (about
# 6 GB in all). The benchmark runs torch on the CPU only.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${ST_VENV:-.venv-st}
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "torch==2.15.0" "sentence-transformers==6.2.0"
"$venv/bin/python" -c 'import torch, sentence_transformers as st; print("torch", torch.__version__, "sentence-transformers", st.__version__, "cpu", torch.backends.cpu.get_cpu_capability())'
