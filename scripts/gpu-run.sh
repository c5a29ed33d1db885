#!/usr/bin/env bash
# Runs `papersim bench` on a GPU machine from the pack made by scripts/gpu-pack.sh (packed as
# run.sh beside the binary). Needs no Rust, no network and no Python packages: only the NVIDIA
# driver and the CUDA 13 libraries cuBLAS, cuRAND and NVRTC, which it looks for in the usual
# toolkit folders and in Python environments' nvidia-* wheels (PyTorch brings them).
#
#     bash run.sh [RESULTS_DIR]      (default: $OUT when set, else ./results beside run.sh)
#
# Writes bench-gpu.{json,txt,svg} (the GPU sweep), bench-cpu-ref.{json,txt} (the CPU row on the
# same machine, fewer texts), machine.txt and run.log. Settings via the environment:
# LIMIT (8192 texts), BATCH_SIZES (1,8,32,128,256,512), DTYPES (f32,f16,bf16), REPEAT (1),
# WARMUP (5), DEVICE (cuda:0), CPU_LIMIT (512).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-${OUT:-$here/results}}"
mkdir -p "$out"
exec > >(tee -a "$out/run.log") 2>&1

limit="${LIMIT:-8192}"
batch_sizes="${BATCH_SIZES:-1,8,32,128,256,512}"
dtypes="${DTYPES:-f32,f16,bf16}"
repeat="${REPEAT:-1}"
warmup="${WARMUP:-5}"
device="${DEVICE:-cuda:0}"
cpu_limit="${CPU_LIMIT:-512}"

echo "== pack"
cat "$here/MANIFEST.txt" 2>/dev/null | head -8

# The binary travels gzipped; unpack it beside run.sh, or under /tmp when that is read-only.
bin="$here/papersim"
if [ ! -x "$bin" ]; then
    [ -w "$here" ] || bin="${TMPDIR:-/tmp}/papersim-gpu/papersim"
    mkdir -p "$(dirname "$bin")"
    gunzip -c "$here/papersim.gz" >"$bin" && chmod +x "$bin" || exit 1
fi

# The CUDA libraries the binary links to, beyond the driver.
libdirs=""
# The driver (libcuda.so.1) is usually on the loader's path already; some images mount it here.
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    [ -e "$d/libcuda.so.1" ] && libdirs="$libdirs:$d"
done
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
    [ -e "$d/libcublas.so.13" ] && libdirs="$libdirs:$d"
done
for py in python3 /opt/torch/.venv/bin/python3; do
    command -v "$py" >/dev/null 2>&1 || [ -x "$py" ] || continue
    found="$("$py" - 2>/dev/null <<'EOF'
import glob, os, sys
dirs = []
for p in sys.path:
    for lib in glob.glob(os.path.join(p, "nvidia", "*", "lib")) + glob.glob(os.path.join(p, "nvidia", "*", "*", "lib")):
        if any(glob.glob(os.path.join(lib, pat)) for pat in ("libcublas.so.13", "libcurand.so.10", "libnvrtc.so.13", "libcublasLt.so.13")):
            dirs.append(lib)
print(":".join(dict.fromkeys(dirs)))
EOF
)"
    [ -n "$found" ] && libdirs="$libdirs:$found"
done
libdirs="${libdirs#:}"
export LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "== machine"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
    nvidia-smi 2>&1 | grep -m1 "CUDA Version" || true
    grep -m1 "model name" /proc/cpuinfo
    echo "cores: $(nproc)"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
} | tee "$out/machine.txt"

missing="$(ldd "$bin" | grep "not found" || true)"
if [ -n "$missing" ]; then
    echo "run.sh: the binary cannot start, libraries not found:" >&2
    echo "$missing" >&2
    echo "run.sh: install a CUDA 13 toolkit or put its lib folder on LD_LIBRARY_PATH" >&2
    exit 1
fi

# The driver compiles candle's PTX at start: it must be at least the toolkit's CUDA version.
built="$(sed -n 's/^cuda_version: *//p' "$here/MANIFEST.txt" 2>/dev/null)"
driver_cuda="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)"
if [ -n "$built" ] && [ -n "$driver_cuda" ] &&
    [ "$(printf '%s\n%s\n' "$built" "$driver_cuda" | sort -V | head -1)" != "$built" ]; then
    echo "run.sh: warning: packed with CUDA $built but the driver supports CUDA $driver_cuda;" \
        "loading kernels may fail with CUDA_ERROR_UNSUPPORTED_PTX_VERSION (repack with PAPERSIM_CUDA_VERSION=$driver_cuda)"
fi

threads="$(nproc)"
common=(--model "$here/model" --threads "$threads" --quiet)

echo "== GPU sweep: $device, dtypes $dtypes, batch sizes $batch_sizes, $limit texts"
"$bin" "${common[@]}" bench --devices "$device" --dtypes "$dtypes" \
    --batch-sizes "$batch_sizes" --limit "$limit" --repeat "$repeat" --warmup "$warmup" \
    --json "$out/bench-gpu.json" --plot "$out/bench-gpu.svg" | tee "$out/bench-gpu.txt"
status=${PIPESTATUS[0]}

echo "== CPU reference on the same machine: $cpu_limit texts, batch 32"
"$bin" "${common[@]}" bench --devices cpu --dtypes f32 --batch-sizes 32 \
    --limit "$cpu_limit" --warmup 2 --json "$out/bench-cpu-ref.json" | tee "$out/bench-cpu-ref.txt"

echo "== results in $out"
ls -la "$out"
exit "$status"
