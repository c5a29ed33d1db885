#!/usr/bin/env python3
"""sentence-transformers' side of scripts/cpu-vs-st.sh (scripts/st_encode.py serves papersim bench's comparison): encoding throughput on the CPU.

Embeds the lines of TEXTS with the model directory MODEL on the CPU, REPEAT times after one
warm-up batch, with N torch threads, and prints one JSON line in the same form as
`cargo run --release --example cpu_throughput -- run`.
"""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("texts")
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--vectors", help="write the last run's vectors here (.npy)")
    args = ap.parse_args()

    # Thread pools read these when torch is imported, so set them first.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    with open(args.texts, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f if line.strip()]
    model = SentenceTransformer(args.model, device="cpu")
    model.eval()

    def encode(batch):
        return model.encode(
            batch,
            batch_size=args.batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    with torch.inference_mode():
        encode(texts[: args.batch_size])  # warm-up
        runs = []
        vectors = None
        for _ in range(max(1, args.repeat)):
            start = time.perf_counter()
            vectors = encode(texts)
            runs.append(time.perf_counter() - start)
    if args.vectors:
        np.save(args.vectors, vectors.astype(np.float32))
    tokens = sum(
        min(len(ids), model.max_seq_length)
        for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"]
    )
    print(
        json.dumps(
            {
                "side": "sentence-transformers",
                "backend": f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()})",
                "threads": torch.get_num_threads(),
                "texts": len(texts),
                "tokens": tokens,
                "runs_s": runs,
                "texts_per_s": len(texts) / min(runs),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
