#!/usr/bin/env python3
"""sentence-transformers' side of scripts/vs_sentence_transformers.py (runs in .venv-st).

Two modes, each printing one JSON line on stdout:

  throughput TEXTS --model DIR --threads N [--repeat R] [--batch-size B]
                   [--vectors OUT.npy] [--against PAPERSIM.npy]
      embeds the lines of TEXTS on the CPU, R times after one untimed warm-up batch, and prints
      the time of each run in the same form as `cargo run --release --example cpu_throughput --
      run` (side, backend, threads, texts, tokens, runs_s, texts_per_s), plus the versions;
      --vectors writes the last run's vectors, --against gives the lowest cosine between them
      and papersim's vectors for the same rows.

  query TEXT --model DIR --threads N
      imports torch, loads the model, embeds one text and exits: the caller times the cold
      start from process start to exit.

The model is loaded from a local sentence-transformers directory: no Hub access.
"""
import argparse
import json
import os
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    tp = sub.add_parser("throughput", help="time embedding the lines of a file")
    tp.add_argument("texts", help="text file, one text per line")
    tp.add_argument("--repeat", type=int, default=3)
    tp.add_argument("--batch-size", type=int, default=32)
    tp.add_argument("--vectors", help="write the last run's vectors here (.npy)")
    tp.add_argument("--against", help="papersim's vectors for the same rows (.npy)")
    qp = sub.add_parser("query", help="embed one text and exit (cold start)")
    qp.add_argument("text")
    for p in (tp, qp):
        p.add_argument("--model", required=True, help="sentence-transformers model directory")
        p.add_argument("--threads", type=int, required=True)
    args = ap.parse_args()

    # Thread pools read these when torch is imported, so set them first.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.model, device="cpu")
    model.eval()

    if args.mode == "query":
        vector = model.encode([args.text], convert_to_numpy=True, show_progress_bar=False)
        print(json.dumps({"side": "sentence-transformers", "dim": int(vector.shape[1])}))
        return 0

    import numpy as np
    import sentence_transformers
    import transformers

    with open(args.texts, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f if line.strip()]

    def encode(batch):
        return model.encode(
            batch, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False
        )

    with torch.inference_mode():
        encode(texts[: args.batch_size])  # warm-up, untimed, as papersim's
        runs = []
        vectors = None
        for _ in range(max(1, args.repeat)):
            start = time.perf_counter()
            vectors = encode(texts)
            runs.append(time.perf_counter() - start)
    vectors = vectors.astype(np.float32)
    if args.vectors:
        np.save(args.vectors, vectors)
    tokens = sum(
        min(len(ids), model.max_seq_length)
        for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"]
    )
    report = {
        "side": "sentence-transformers",
        "backend": f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()})",
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "texts": len(texts),
        "tokens": tokens,
        "runs_s": runs,
        "texts_per_s": len(texts) / min(runs),
        "dim": int(vectors.shape[1]),
        "max_seq_length": model.max_seq_length,
        "versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "numpy": np.__version__,
        },
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if args.against:
        theirs = np.load(args.against).astype(np.float32)
        if theirs.shape != vectors.shape:
            report["min_cosine"] = None
            report["against_shape"] = list(theirs.shape)
        else:
            cos = (vectors * theirs).sum(1) / (
                np.linalg.norm(vectors, axis=1) * np.linalg.norm(theirs, axis=1)
            )
            report["min_cosine"] = float(cos.min())
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
