#!/usr/bin/env python3
"""papersim against sentence-transformers on the same texts, the same model files and the same
thread count, in one run.

1. `papersim bench` on the CPU (and the other --devices, which report why they cannot run),
   writing its JSON report, SVG chart and the exact texts it encoded (skip with --no-sweep);
2. papersim at --st-batch-size, then sentence-transformers (PyTorch, CPU) on the same texts at
   the same batch size, then papersim again: the ratio uses the mean of the two papersim runs,
   so a change in machine load during the run shows and does not favour either side;
3. cold start: one query embedded from process start to exit, by each, alternately.

Prints texts/s and the ratio papersim / sentence-transformers, and writes everything to --out.
Needs a release build of papersim and .venv-bench (scripts/setup-bench-venv.sh). Only the
standard library is used here; the sentence-transformers side runs in .venv-bench.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUERY = "diffusion models distilled into few-step image generators"


def timed_run(cmd, env=None, stdin=None):
    """Wall-clock seconds of a whole process, from its start to its exit."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{proc.stderr}")
    return seconds, proc.stdout


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--papersim", default=str(REPO / "target/release/papersim"))
    p.add_argument("--python", default=str(REPO / ".venv-bench/bin/python"))
    p.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2",
                   help="model id for papersim (it resolves models/<id>/)")
    p.add_argument("--model-dir", default=str(REPO / "models/sentence-transformers/all-MiniLM-L6-v2"),
                   help="the same model's directory, for sentence-transformers")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--limit", type=int, default=1000, help="texts (the sample digest repeated)")
    p.add_argument("--texts", help="digest or text file [default: papersim's bundled sample]")
    p.add_argument("--devices", default="cpu,cuda")
    p.add_argument("--batch-sizes", default="1,8,32,128")
    p.add_argument("--st-batch-size", type=int, default=32)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--cold-runs", type=int, default=3)
    p.add_argument("--no-sweep", action="store_true",
                   help="only the comparison at --st-batch-size and the cold start")
    p.add_argument("--out", default=str(REPO / "bench-out"))
    args = p.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path, what in [(args.papersim, "cargo build --release"),
                       (args.python, "scripts/setup-bench-venv.sh"),
                       (args.model_dir, "papersim provisions it on first use")]:
        if not Path(path).exists():
            sys.exit(f"{path} is missing ({what})")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))

    texts_file = out / "texts.jsonl"

    def papersim_bench(batch_sizes, devices, dtypes, name, plot):
        cmd = [args.papersim, "--model", args.model, "--threads", str(args.threads), "--quiet",
               "bench", "--devices", devices, "--dtypes", dtypes,
               "--batch-sizes", batch_sizes, "--limit", str(args.limit),
               "--warmup", str(args.warmup), "--json", str(out / f"{name}.json"),
               "--save-texts", str(texts_file)]
        if plot:
            cmd += ["--plot", str(out / "bench-cpu.svg")]
        if args.texts:
            cmd += ["--texts", args.texts]
        print("$ " + " ".join(cmd), flush=True)
        _, table = timed_run(cmd, env=env)
        print(table, flush=True)
        (out / f"{name}-table.txt").write_text(table)
        report = json.loads((out / f"{name}.json").read_text())
        cpu = next(r for r in report["runs"] if r["device"] == "cpu" and r["dtype"] == "f32")
        return report, {b["batch_size"]: b for b in cpu["results"]}

    # 1. The sweep: every batch size, and the devices that cannot run say why.
    if not args.no_sweep:
        papersim_bench(args.batch_sizes, args.devices, "f32,f16,bf16", "papersim", True)

    # 2. papersim at the compared batch size, right before and right after
    #    sentence-transformers, so both sides see about the same machine load.
    b = str(args.st_batch_size)
    load_before = os.getloadavg()[0]
    report, before = papersim_bench(b, "cpu", "f32", "papersim-before", False)
    cmd = [args.python, str(REPO / "scripts/st_encode.py"), "--model", args.model_dir,
           "--threads", str(args.threads), "--batch-size", b, "--texts", str(texts_file)]
    print("$ " + " ".join(cmd), flush=True)
    load_st = os.getloadavg()[0]
    _, st_out = timed_run(cmd, env=env)
    st = json.loads(st_out.strip().splitlines()[-1])
    print(json.dumps(st), flush=True)
    _, after = papersim_bench(b, "cpu", "f32", "papersim-after", False)
    load_after = os.getloadavg()[0]
    papersim_runs = [before[args.st_batch_size]["texts_per_s"],
                     after[args.st_batch_size]["texts_per_s"]]
    papersim_rate = statistics.mean(papersim_runs)

    # 3. Cold start: one query, from process start to exit.
    papersim_cold, st_cold = [], []
    for _ in range(args.cold_runs):
        s, _ = timed_run([args.papersim, "--model", args.model, "--device", "cpu",
                          "--threads", str(args.threads), "--quiet",
                          "embed", "-", "--lines", "--format", "jsonl"],
                         env=env, stdin=QUERY + "\n")
        papersim_cold.append(s)
        s, _ = timed_run([args.python, str(REPO / "scripts/st_encode.py"), "--model", args.model_dir,
                          "--threads", str(args.threads), "--query", QUERY], env=env)
        st_cold.append(s)

    summary = {
        "texts": report["texts"],
        "threads": args.threads,
        "batch_size": args.st_batch_size,
        "machine": report["machine"],
        "papersim_texts_per_s": papersim_rate,
        "papersim_runs_texts_per_s": papersim_runs,
        "load_average": {"before": load_before, "sentence_transformers": load_st,
                         "after": load_after},
        "sentence_transformers": st,
        "ratio_papersim_over_st": papersim_rate / st["texts_per_s"],
        "cold_start_s": {
            "papersim": statistics.median(papersim_cold),
            "sentence_transformers": statistics.median(st_cold),
            "runs": args.cold_runs,
            "query": QUERY,
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"same {report['texts']['count']} texts ({report['texts']['distinct']} distinct, "
          f"mean {report['texts']['mean_tokens']:.0f} tokens), batch {args.st_batch_size}, "
          f"{args.threads} threads, CPU float32:")
    print(f"  papersim               {papersim_rate:8.2f} texts/s (mean of {papersim_runs[0]:.2f} "
          f"before and {papersim_runs[1]:.2f} after sentence-transformers)")
    print(f"  sentence-transformers  {st['texts_per_s']:8.2f} texts/s "
          f"(torch {st['torch_version']}, sentence-transformers "
          f"{st['sentence_transformers_version']})")
    print(f"  ratio papersim / sentence-transformers = {summary['ratio_papersim_over_st']:.2f}")
    print(f"  1-minute load average: {load_before:.1f} before, {load_st:.1f} at "
          f"sentence-transformers' start, {load_after:.1f} after")
    print(f"cold start, one query from process start to exit (median of {args.cold_runs}):")
    print(f"  papersim               {summary['cold_start_s']['papersim']:8.2f} s")
    print(f"  sentence-transformers  {summary['cold_start_s']['sentence_transformers']:8.2f} s")
    print(f"written to {out}: papersim*.json, papersim*-table.txt, bench-cpu.svg, texts.jsonl, "
          "summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
