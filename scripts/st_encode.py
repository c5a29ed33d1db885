#!/usr/bin/env python3
"""The sentence-transformers side of scripts/bench_vs_sentence_transformers.py.

Two modes:
  --texts FILE   encode every text of FILE (one JSON string per line, as `papersim bench
                 --save-texts` writes them) and print the timing as JSON;
  --query TEXT   load the model, embed one text and exit (the cold start is timed by the
                 caller, from process start to exit).

The model is loaded from a local sentence-transformers directory, so no Hub access is needed.
"""

import argparse
import json
import os
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="sentence-transformers model directory")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch-size", type=int, default=32)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--texts", help="JSON-lines file of texts")
    group.add_argument("--query", help="embed this one text and exit")
    args = p.parse_args()

    # Thread pools read these when torch is imported: set them first.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.model, device="cpu")

    if args.query is not None:
        vector = model.encode([args.query], normalize_embeddings=True)
        print(json.dumps({"dim": int(vector.shape[1])}))
        return 0

    with open(args.texts, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f if line.strip()]
    # Warm-up: one batch, untimed, as papersim's warm-up batches.
    model.encode(texts[: args.batch_size], batch_size=args.batch_size)
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
    seconds = time.perf_counter() - start
    import sentence_transformers

    print(
        json.dumps(
            {
                "encoder": "sentence-transformers",
                "sentence_transformers_version": sentence_transformers.__version__,
                "torch_version": torch.__version__,
                "threads": torch.get_num_threads(),
                "batch_size": args.batch_size,
                "max_seq_length": model.max_seq_length,
                "texts": len(texts),
                "dim": int(vectors.shape[1]),
                "seconds": seconds,
                "texts_per_s": len(texts) / seconds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
