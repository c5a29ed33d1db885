#!/usr/bin/env bash
# Builds papersim with CUDA on this machine (no GPU or CUDA install needed) and packs what a GPU
# machine with no Rust toolchain and no network needs to run `papersim bench`:
#
#     dist/papersim-gpu/
#       papersim.gz     stripped CUDA build, gzipped (kernels for CUDA_COMPUTE_CAP, default 90 =
#                       H100/H200); it links the driver, cuBLAS and cuRAND dynamically, which are
#                       too large to carry and are found on the GPU machine by run.sh
#       model/          all-MiniLM-L6-v2 with float16 weights (45 MB), or random weights of the
#                       same shapes with PACK_WEIGHTS=random (throughput only, labelled as such)
#       run.sh          runs the benchmark there and collects JSON, table and SVG
#       MANIFEST.txt    what was packed, from which commit, with which toolkit
#
# Usage: scripts/gpu-pack.sh            (CUDA 13.0: runs on drivers 580.x and newer)
#        PAPERSIM_CUDA_VERSION=13.2 scripts/gpu-pack.sh   (needs a driver for CUDA 13.2)
# What travels to a GPU machine (this pack and the repository's tracked files) must stay within
# 64 MiB; the script checks the pack against 60 MiB.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
version="${PAPERSIM_CUDA_VERSION:-13.0}"
weights="${PACK_WEIGHTS:-f16}"
model="${PACK_MODEL:-models/sentence-transformers/all-MiniLM-L6-v2}"
dist="${PACK_DIR:-dist/papersim-gpu}"
limit_bytes=$((60 * 1024 * 1024))

case "$weights" in f16 | random) ;; *) echo "PACK_WEIGHTS must be f16 or random" >&2; exit 1 ;; esac
for f in config.json tokenizer.json model.safetensors sentence_bert_config.json modules.json 1_Pooling/config.json; do
    if [ ! -f "$model/$f" ]; then
        echo "$model/$f is missing: run any papersim command once to provision the model (e.g. papersim embed data/sample/hf-trending-mar-11.txt)" >&2
        exit 1
    fi
done

# shellcheck source=scripts/cuda-env.sh
source scripts/cuda-env.sh "$version"
# One target folder for every CUDA version: switching versions rebuilds only the crates that
# depend on CUDA (cargo reruns their build scripts when CUDA_ROOT changes).
target="${CUDA_TARGET_DIR:-$repo/target-cuda}"
CARGO_TARGET_DIR="$target" cargo build --release --features cuda
binary="$target/release/papersim"

rm -rf "$dist"
mkdir -p "$dist/model/1_Pooling"
cp "$binary" "$dist/papersim"
strip "$dist/papersim"
echo "needed libraries:" $(objdump -p "$dist/papersim" | awk '/NEEDED/ {print $2}')
gzip -9 "$dist/papersim"
for f in config.json tokenizer.json sentence_bert_config.json modules.json 1_Pooling/config.json; do
    cp "$model/$f" "$dist/model/$f"
done
if [ "$weights" = random ]; then
    python3 scripts/safetensors_to_f16.py --random "$model/model.safetensors" "$dist/model/model.safetensors"
else
    python3 scripts/safetensors_to_f16.py "$model/model.safetensors" "$dist/model/model.safetensors"
fi
cp scripts/gpu-run.sh "$dist/run.sh"
chmod +x "$dist/run.sh"

{
    echo "papersim GPU pack"
    echo "commit:        $(git rev-parse HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (with uncommitted changes)')"
    echo "built:         $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m)"
    echo "cuda_version:  $version"
    echo "nvcc:          $(nvcc --version | tail -1)"
    echo "compute_cap:   $CUDA_COMPUTE_CAP"
    if [ "$weights" = random ]; then
        echo "weights:       RANDOM (same architecture as $model): THROUGHPUT ONLY, the vectors mean nothing"
    else
        echo "weights:       $model converted to float16 (1 - cosine against float32 weights ~5e-7)"
    fi
    echo "needs there:   an NVIDIA driver for CUDA >= $version; libcublas.so.13 (with libcublasLt.so.13)"
    echo "               and libcurand.so.10 (a CUDA 13 toolkit or PyTorch's nvidia-* wheels)"
    echo "binary:        papersim.gz ($(stat -c %s "$target/release/papersim") bytes before strip and gzip)"
    echo
    echo "files (bytes, sha256):"
    (cd "$dist" && find . -type f ! -name MANIFEST.txt | sort | while read -r f; do
        printf '  %-36s %10d  %s\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
    done)
} >"$dist/MANIFEST.txt"

total=$(du -sb "$dist" | cut -f1)
cat "$dist/MANIFEST.txt"
echo
if [ "$total" -gt "$limit_bytes" ]; then
    echo "gpu-pack.sh: $dist is $total bytes, over 60 MiB (64 MiB travel, with the repository)" >&2
    exit 1
fi
echo "gpu-pack.sh: $dist is $((total / 1024 / 1024)) MiB ($total bytes), within 60 MiB"
echo "On the GPU machine: bash $dist/run.sh [RESULTS_DIR]"
