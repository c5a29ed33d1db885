#!/usr/bin/env bash
# The local library against a Qdrant cluster (issue #19), same papers, same run: ingest
# throughput and `similar` p50/p99 of the release binary as separate processes.
#
#   scripts/bench-qdrant.sh            # 100,000 papers
#   scripts/bench-qdrant.sh 10000      # another size
#   PAPERSIM_QDRANT_URL=http://a:6333,http://b:6333 scripts/bench-qdrant.sh   # an existing cluster
#
# The papers and their vectors are the scale benchmark's (`cargo bench --bench scale`: the real
# model's embeddings of the 2,751 real papers of tests/fixtures, mixed into new papers within
# their topics), so nothing is re-encoded: the local library is built by that benchmark
# (`ingest --embeddings`, timed there), and the same digests and matrix are then ingested into
# a Qdrant library (2 shards, replication factor 2) on a three-node loopback cluster started
# by scripts/qdrant-cluster.sh (unless PAPERSIM_QDRANT_URL names one). PAPERSIM_BENCH_RUNS
# (default 50) `similar` runs per store and mode, each a fresh process for another paper.
# The table goes to stdout, as JSON to <target>/bench-qdrant.json.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
n=${n//_/}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --bin papersim
bin=$target/release/papersim
# An earlier run's library has no inputs left: build it again with them kept.
cache=$target/bench-cache
for old in "$cache"/scale-"$n"-v*; do
    case $old in *.input|*.ingest.json|*-f16*) continue ;; esac
    [ -d "$old.input" ] || rm -rf "$old" "$old.ingest.json"
done
built=
for d in "$cache"/scale-"$n"-v*; do
    case $d in *.input|*.ingest.json|*-f16*) continue ;; esac
    if [ -d "$d.input" ] && [ -f "$d.ingest.json" ]; then built=$d; fi
done
if [ -z "$built" ]; then
    PAPERSIM_SCALE_KEEP_INPUTS=1 PAPERSIM_SCALE_DTYPES=f32 PAPERSIM_SCALE_RUNS=${PAPERSIM_SCALE_RUNS:-5} \
        PAPERSIM_BIN=$bin PAPERSIM_SCALE_SIZES=$n cargo bench --bench scale >&2
else
    echo "bench-qdrant: using $built and its inputs, built earlier by the scale benchmark" >&2
fi
lib=
for d in "$cache"/scale-"$n"-v*; do
    case $d in *.input|*.ingest.json|*-f16*) continue ;; esac
    lib=$d
done
[ -n "$lib" ] && [ -d "$lib.input" ] || { echo "bench-qdrant: no library with inputs for $n papers in $cache" >&2; exit 1; }

work=$(mktemp -d)
cleanup() {
    if [ -n "${started:-}" ]; then scripts/qdrant-cluster.sh stop "$work/cluster" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${PAPERSIM_QDRANT_URL:-}" ]; then
    PAPERSIM_QDRANT_URL=$(scripts/qdrant-cluster.sh start "$work/cluster")
    started=1
fi
export PAPERSIM_QDRANT_URL
python3 - "$bin" "$lib" "$n" "$work" "$target/bench-qdrant.json" <<'PY'
import json, os, statistics, subprocess, sys, time, urllib.request
bin, local, n, work, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
urls = os.environ["PAPERSIM_QDRANT_URL"]
runs = int(os.environ.get("PAPERSIM_BENCH_RUNS", "50"))
inputs = local + ".input"
qlib = os.path.join(work, "qdrant-library")
collection = f"bench_{os.getpid()}"

def papersim(lib, *args):
    t = time.perf_counter()
    r = subprocess.run([bin, "-q", "--library", lib, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"papersim {' '.join(args)} failed: {r.stderr}")
    return r.stdout, wall

def rest(method, path, body=None):
    base = urls.split(",")[0]
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["result"]

papersim(qlib, "init", "--engine", "qdrant", "--url", urls, "--collection", collection,
         "--shards", "2", "--replicas", "2")
digests = sorted(os.path.join(inputs, f) for f in os.listdir(inputs)
                 if f.startswith("digest-") and f.endswith(".jsonl"))
out_json, ingest_s = papersim(qlib, "ingest", *digests, "--embeddings",
                              os.path.join(inputs, "vectors.npy"), "--format", "json")
report = json.loads(out_json)
assert report["added"] == n and report["papers_total"] == n, report
# Qdrant builds its HNSW graphs after the writes: wait for the collection to be green.
t = time.perf_counter()
while rest("GET", f"/collections/{collection}")["status"] != "green":
    time.sleep(0.5)
indexing_s = time.perf_counter() - t
local_ingest = json.load(open(local + ".ingest.json"))

def pid(i):
    return f"99{i // 100_000:02}.{i % 100_000:05}"

ids = [pid(i * n // runs + 7) for i in range(runs)]
results = {}
for mode in ["dense", "hybrid"]:
    for name, lib in [("local", local), ("qdrant", qlib)]:
        walls, tops = [], []
        for i in ids:
            o, w = papersim(lib, "similar", i, "-k", "10", "--mode", mode, "--format", "json")
            walls.append(w * 1000)
            tops.append([r["id"] for r in json.loads(o)["results"]])
        walls.sort()
        results[(mode, name)] = (walls, tops)

def q(v, p):
    return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]

rows = []
for mode in ["dense", "hybrid"]:
    lw, lt = results[(mode, "local")]
    qw, qt = results[(mode, "qdrant")]
    overlap = statistics.mean(len(set(a) & set(b)) / max(1, len(a)) for a, b in zip(lt, qt))
    rows.append({"mode": mode, "local_p50_ms": q(lw, .5), "local_p99_ms": q(lw, .99),
                 "qdrant_p50_ms": q(qw, .5), "qdrant_p99_ms": q(qw, .99),
                 "top10_overlap": overlap})
flags = ""
for line in open("/proc/cpuinfo"):
    if line.startswith("flags"):
        keep = ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "amx_tile"]
        have = line.split(":")[1].split()
        flags = " ".join(f for f in keep if f in have)
        break
model = next((l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
doc = {"papers": n, "cpu": model, "cores": os.cpu_count(), "flags": flags,
       "ingest": {"local_s": local_ingest["seconds"], "qdrant_s": ingest_s, "qdrant_indexing_s": indexing_s},
       "similar": rows, "runs": runs, "date": time.strftime("%Y-%m-%d")}
json.dump(doc, open(out, "w"), indent=2)
print(f"{n:,} papers; {model}, {os.cpu_count()} logical cores ({flags}); {runs} runs per row, release build")
print()
print("| | local library | Qdrant, 3 nodes, 2 shards × 2 replicas |")
print("|---|---:|---:|")
print(f"| ingest (`--embeddings`) | {local_ingest['seconds']:.1f} s ({n / local_ingest['seconds']:,.0f} papers/s) "
      f"| {ingest_s:.1f} s ({n / ingest_s:,.0f} papers/s), then {indexing_s:.1f} s until indexed |")
for r in rows:
    print(f"| `similar` {r['mode']} p50 / p99 | {r['local_p50_ms']:.1f} / {r['local_p99_ms']:.1f} ms "
          f"| {r['qdrant_p50_ms']:.1f} / {r['qdrant_p99_ms']:.1f} ms (top-10 overlap {r['top10_overlap']:.3f}) |")
rest("DELETE", f"/collections/{collection}")
PY
