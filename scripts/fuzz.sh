#!/usr/bin/env bash
# Fuzzes papersim's digest parsers and library loader with cargo-fuzz (libFuzzer), one target
# at a time and at the lowest CPU priority, then minimises each corpus in place.
#
#   scripts/fuzz.sh                       # every target, 10 minutes each
#   FUZZ_SECONDS=60 scripts/fuzz.sh digest_json library_open
#   FUZZ_SECONDS=0 scripts/fuzz.sh        # only minimise and pack the working corpora
#
# Targets: digest_auto digest_text digest_json digest_jsonl (digest::parse_bytes with each
# parser) and library_open (a library directory written from the input's bytes, opened,
# searched and ranked). What each runs is fuzz/src/harness.rs; tests/fuzz_regressions.rs
# replays fuzz/corpus/ and fuzz/regressions/ through the same code on stable Rust.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz passes -Z flags; on a stable
# toolchain RUSTC_BOOTSTRAP=1 allows them (set here). SANITIZER=address (default) builds with
# AddressSanitizer; SANITIZER=none builds without it. Crashes land in fuzz/artifacts/<target>/;
# turn each into a file in fuzz/regressions/<target>/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${FUZZ_SECONDS:-600}
sanitizer=${SANITIZER:-address}
export RUSTC_BOOTSTRAP=1
# cargo-fuzz builds with sanitizer flags: its own target directory, never the shared one.
export CARGO_TARGET_DIR="$root/fuzz/target"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(digest_auto digest_text digest_json digest_jsonl library_open)
fi

# The minimised corpora are kept in git packed, fuzz/corpus/<target>.tar.gz; the fuzzers work
# in fuzz/corpus/<target>/ (ignored by git), unpacked from the pack when empty.
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    if [ -z "$(ls -A "fuzz/corpus/$t")" ] && [ -f "fuzz/corpus/$t.tar.gz" ]; then
        tar -xzf "fuzz/corpus/$t.tar.gz" -C fuzz/corpus
    fi
done

# Seeds for an empty corpus: a few small fixture digests, and valid libraries written by
# papersim's own code.
seed() {
    local dir=$1
    shift
    mkdir -p "$dir"
    if [ -z "$(ls -A "$dir")" ]; then
        for f in "$@"; do head -c 4000 "$f" >"$dir/seed-$(basename "$f")"; done
    fi
}
fx=tests/fixtures/digests
seed fuzz/corpus/digest_text "$fx/hf-trending-mar-11.txt" "$fx/hf/hf_2026-03-01.txt" \
    "$fx/arxiv/arxiv_2025-04-28_cs.CL.txt"
seed fuzz/corpus/digest_json "$fx/arxiv-cs-5.json"
seed fuzz/corpus/digest_jsonl "$fx/arxiv-cs-30.jsonl"
seed fuzz/corpus/digest_auto "$fx/hf-trending-mar-11.txt" "$fx/arxiv-cs-5.json" \
    "$fx/arxiv-cs-30.jsonl"
[ -e fuzz/corpus/digest_auto/seed-3.jsonl.gz ] ||
    head -n 3 "$fx/arxiv-cs-30.jsonl" | gzip -9n >fuzz/corpus/digest_auto/seed-3.jsonl.gz
if [ -z "$(ls -A fuzz/corpus/library_open 2>/dev/null)" ]; then
    CARGO_TARGET_DIR="${MAIN_TARGET_DIR:-$root/target}" \
        cargo run --quiet --example fuzz_seeds -- fuzz/corpus/library_open
fi

mkdir -p fuzz/logs
cd fuzz
found=0
for t in "${targets[@]}"; do
    case $t in
    digest_json | digest_jsonl) dict=dicts/json.dict max_len=8192 ;;
    digest_text) dict=dicts/text.dict max_len=8192 ;;
    digest_auto) dict=dicts/text.dict max_len=8192 ;;
    library_open) dict=dicts/library.dict max_len=32768 ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
    esac
    if [ "$seconds" = 0 ]; then
        echo "== $t: minimise and pack only"
    else
        echo "== $t: ${seconds}s, sanitizer $sanitizer"
        nice -n 19 cargo fuzz run --fuzz-dir . -O --sanitizer "$sanitizer" "$t" "corpus/$t" -- \
            -max_total_time="$seconds" -max_len="$max_len" -dict="$dict" -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 >"logs/$t.log" 2>&1 || true
        grep -E '^#[0-9]+ *DONE|ERROR|panicked|stat::' "logs/$t.log" || true
    fi
    if ls "artifacts/$t"/* >/dev/null 2>&1; then
        echo "!! $t: crash inputs in fuzz/artifacts/$t/" >&2
        found=1
    fi
    # Minimise: the smallest inputs that keep every edge (hit counts aside), then pack them.
    nice -n 19 cargo fuzz cmin --fuzz-dir . -O --sanitizer "$sanitizer" "$t" "corpus/$t" \
        -- -max_len="$max_len" -use_counters=0 2>&1 | tail -1
    tar --format=ustar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        -C corpus -cf - "$t" | gzip -9n >"corpus/$t.tar.gz"
    echo "   corpus: $(ls "corpus/$t" | wc -l) inputs, $(du -k "corpus/$t.tar.gz" | cut -f1) KiB packed"
done
exit $found
