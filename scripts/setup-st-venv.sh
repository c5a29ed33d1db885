#!/usr/bin/env bash
# Creates .venv-st/ (ignored by git) with torch and sentence-transformers at pinned versions, for
# scripts/vs_sentence_transformers.py (its Python side is scripts/st_side.py). Run it again to
# repair the venv; ST_VENV names another venv directory.
#
# From PyPI alone (the default) this is about 6 GB: PyPI's Linux torch wheel is the CUDA build,
# and `import torch` loads libcudart, cuBLAS, cuDNN, NCCL, ... even on a CPU-only machine (its
# libraries link against them), so the nvidia-* wheels it names must be installed; installing
# torch with --no-deps leaves a torch that cannot be imported. The benchmark runs torch on the
# CPU only. TORCH_INDEX_URL=<a package index with PyTorch's CPU-only builds> installs the same
# torch version's CPU build from there instead (about 1 GB in all, no nvidia-* wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${ST_VENV:-.venv-st}
torch_version=2.15.0
st_version=6.2.0

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install --upgrade pip
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "${pip[@]}" install --index-url "$TORCH_INDEX_URL" "torch==$torch_version"
fi
"${pip[@]}" install "torch==$torch_version" "sentence-transformers==$st_version"
"$py" - "$torch_version" "$st_version" <<'EOF'
import sys
import torch, sentence_transformers, transformers
want_torch, want_st = sys.argv[1:]
assert torch.__version__.split("+")[0] == want_torch, torch.__version__
assert sentence_transformers.__version__ == want_st, sentence_transformers.__version__
x = torch.ones(2, 2) @ torch.ones(2, 2)
assert x.sum().item() == 8.0
print(f"ok: torch {torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability()}, "
      f"CUDA available: {torch.cuda.is_available()}), sentence-transformers "
      f"{sentence_transformers.__version__}, transformers {transformers.__version__}")
EOF
