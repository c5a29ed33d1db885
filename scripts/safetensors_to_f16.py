#!/usr/bin/env python3
"""Writes a float16 copy of a safetensors file (about half the size), or with --random a file of
the same tensor names and shapes filled with random numbers, for throughput runs only.

Standard library only (struct's 'e' format rounds to nearest even, as IEEE float16 does), so it
runs on a machine without numpy or torch. Used by scripts/gpu-pack.sh to fit the model into a
64 MiB bundle: all-MiniLM-L6-v2 is 91 MB in float32 and 45 MB in float16.
"""

import argparse
import json
import random
import struct
import sys

RANDOM_NOTE = "RANDOM WEIGHTS: same architecture, for throughput only; the vectors mean nothing"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--random", action="store_true", help="random values (throughput only)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    with open(args.src, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()

    rng = random.Random(args.seed)
    out_header = {"__metadata__": dict(header.get("__metadata__", {}))}
    out_header["__metadata__"]["papersim"] = (
        RANDOM_NOTE if args.random else "float16 copy made by scripts/safetensors_to_f16.py"
    )
    chunks, offset = [], 0
    for name in sorted(k for k in header if k != "__metadata__"):
        info = header[name]
        start, end = info["data_offsets"]
        count = 1
        for d in info["shape"]:
            count *= d
        if info["dtype"] == "F32":
            if args.random:
                values = [rng.gauss(0.0, 0.02) for _ in range(count)]
            else:
                values = struct.unpack(f"<{count}f", data[start:end])
            blob, dtype = struct.pack(f"<{count}e", *values), "F16"
        else:
            # Integer tensors (position ids and the like) are copied as they are.
            blob, dtype = data[start:end], info["dtype"]
        out_header[name] = {
            "dtype": dtype,
            "shape": info["shape"],
            "data_offsets": [offset, offset + len(blob)],
        }
        chunks.append(blob)
        offset += len(blob)

    encoded = json.dumps(out_header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep the data 8-byte aligned
    with open(args.dst, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in chunks:
            f.write(blob)
    print(f"{args.dst}: {len(out_header) - 1} tensors, {8 + len(encoded) + offset} bytes"
          + (f" ({RANDOM_NOTE})" if args.random else " (float16)"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
