#!/usr/bin/env python3
"""Writes tests/fixtures/prompted-cls.sentence-transformers.json: sentence-transformers' own
query and document vectors for a BGE/E5-style variant of a model (runs in the venv of
scripts/setup-st-venv.sh):

  .venv-st/bin/python scripts/make_prompt_reference.py MINILM_DIR OUT.json

The variant is MINILM_DIR's files with CLS pooling (1_Pooling/config.json) and a query and a
document prompt (config_sentence_transformers.json), exactly as tests/mpnet.rs builds it, so
that the test checks papersim's prompts and CLS pooling against sentence-transformers'
`encode_query` and `encode_document`.
"""
import json
import os
import shutil
import sys
import tempfile

QUERY_PROMPT = "Represent this sentence for searching relevant papers: "
DOCUMENT_PROMPT = "passage: "
TEXTS = [
    "diffusion distillation for one-step image generation",
    "Mixture of experts for speech recognition.",
    "",
]
FILES = ["config.json", "tokenizer.json", "model.safetensors", "sentence_bert_config.json",
         "modules.json", "1_Pooling/config.json"]


def main() -> int:
    src, out = sys.argv[1:3]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "1_Pooling"))
        for f in FILES:
            shutil.copy(os.path.join(src, f), os.path.join(tmp, f))
        with open(os.path.join(tmp, "1_Pooling/config.json"), "w") as f:
            json.dump({"word_embedding_dimension": 384, "pooling_mode_cls_token": True,
                       "pooling_mode_mean_tokens": False}, f)
        with open(os.path.join(tmp, "config_sentence_transformers.json"), "w") as f:
            json.dump({"prompts": {"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT},
                       "default_prompt_name": None}, f)
        model = SentenceTransformer(tmp, device="cpu")
        q = model.encode_query(TEXTS, convert_to_numpy=True)
        d = model.encode_document(TEXTS, convert_to_numpy=True)
    with open(out, "w") as f:
        json.dump({"query_prompt": QUERY_PROMPT, "document_prompt": DOCUMENT_PROMPT, "texts": TEXTS,
                   "query": [[float(f"{x:.8g}") for x in v] for v in q],
                   "document": [[float(f"{x:.8g}") for x in v] for v in d]}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
