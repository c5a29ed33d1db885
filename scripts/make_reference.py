#!/usr/bin/env python3
"""Writes a parity fixture: sentence-transformers' own vectors for a model, one JSON object a
line ({"text", "tokens", "embedding"}), gzipped. Runs in the venv of scripts/setup-st-venv.sh:

  .venv-st/bin/python scripts/make_reference.py MODEL_DIR OUT.jsonl.gz [--texts-from FIXTURE]

The texts are those of FIXTURE (by default the MiniLM fixture's 83 paper texts) followed by the
cases every model must get right: an empty text, a one-word text, a text of non-Latin scripts,
accents and emoji, and a text longer than any model's truncation length (> 512 word pieces),
so that the fixture holds short, long, unicode and empty texts. `tokens` is the number of
tokens the model saw after truncation (special tokens included). No Hub access: MODEL_DIR is a
local sentence-transformers directory.
"""
import argparse
import gzip
import json
import os
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument(
        "--texts-from",
        default=os.path.join(here, "..", "tests", "fixtures", "all-MiniLM-L6-v2.sentence-transformers.jsonl.gz"),
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from sentence_transformers import SentenceTransformer

    with gzip.open(args.texts_from, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    long_text = " ".join(texts[:6])
    texts += [
        "",
        "Transformers",
        "Über naïve Bayes-Schätzer — 量子力学の基礎 · Квантовая механика · 🚀🧪 façade, coöperate, ﬁne-tuning",
        long_text,
    ]
    model = SentenceTransformer(args.model, device="cpu")
    model.eval()
    with torch.no_grad():
        vectors = model.encode(texts, batch_size=16, convert_to_numpy=True, show_progress_bar=False)
    features = model.tokenize(texts)
    tokens = features["attention_mask"].sum(dim=1).tolist()
    assert tokens[-1] == model.max_seq_length, ("the long text is not truncated", tokens[-1])
    with gzip.open(args.out, "wt", encoding="utf-8", compresslevel=9) as f:
        for text, n, v in zip(texts, tokens, vectors):
            f.write(json.dumps({"text": text, "tokens": int(n), "embedding": [float(f"{x:.8g}") for x in v]}) + "\n")
    print(f"{len(texts)} texts, max_seq_length {model.max_seq_length}, dim {vectors.shape[1]} -> {args.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
