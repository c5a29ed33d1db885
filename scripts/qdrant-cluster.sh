#!/usr/bin/env bash
# A three-node Qdrant cluster on loopback, for the Qdrant tests and benchmark (docs/qdrant.md).
#
#   scripts/qdrant-cluster.sh start DIR        three nodes, storage and logs under DIR (new or empty);
#                                              waits until the cluster has 3 peers and a leader,
#                                              then prints the nodes' REST URLs, comma-separated
#   scripts/qdrant-cluster.sh stop DIR         stops the nodes started in DIR (by their recorded pids)
#   scripts/qdrant-cluster.sh kill-node DIR N  kills node N (1-3) at once (SIGKILL), as a crash would
#   scripts/qdrant-cluster.sh start-node DIR N starts node N again and waits for its REST port
#
# QDRANT_BIN: the server binary [default: ../shared/bin/qdrant beside the checkout, else `qdrant` on PATH].
# QDRANT_PORT_BASE: node N listens on BASE+10(N-1) (REST), +1 (gRPC), +2 (peer-to-peer) [default 16333],
# so that nothing collides with a Qdrant on its usual ports 6333-6335.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:?usage: $0 start|stop|kill-node|start-node DIR [N]}
dir=${2:?usage: $0 $action DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
base=${QDRANT_PORT_BASE:-16333}
bin=${QDRANT_BIN:-}
if [ -n "$bin" ]; then bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin"); fi
if [ -z "$bin" ]; then
    if [ -x ../shared/bin/qdrant ]; then bin=$(cd ../shared/bin && pwd)/qdrant
    elif command -v qdrant >/dev/null; then bin=$(command -v qdrant)
    else
        echo "qdrant-cluster: no Qdrant server: set QDRANT_BIN, put qdrant on PATH, or provide ../shared/bin/qdrant (see docs/qdrant.md)" >&2
        exit 1
    fi
fi
http_port() { echo $((base + 10 * ($1 - 1))); }
url() { echo "http://127.0.0.1:$(http_port "$1")"; }

start_node() {
    local n=$1 http grpc p2p
    http=$(http_port "$n"); grpc=$((http + 1)); p2p=$((http + 2))
    mkdir -p "$dir/node$n"
    # Qdrant writes a marker file into its working directory: the node's own, not the checkout.
    cd "$dir/node$n"
    local peer=(--uri "http://127.0.0.1:$p2p")
    # Node 1 is the one bootstrap peer; the others join through it.
    if [ "$n" != 1 ]; then peer=(--bootstrap "http://127.0.0.1:$((base + 2))" "${peer[@]}"); fi
    QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT=$http QDRANT__SERVICE__GRPC_PORT=$grpc \
    QDRANT__CLUSTER__ENABLED=true QDRANT__CLUSTER__P2P__PORT=$p2p \
    QDRANT__STORAGE__STORAGE_PATH="$dir/node$n/storage" QDRANT__STORAGE__SNAPSHOTS_PATH="$dir/node$n/snapshots" \
    QDRANT__TELEMETRY_DISABLED=true QDRANT__LOG_LEVEL=WARN \
        setsid "$bin" "${peer[@]}" >"$dir/node$n/log" 2>&1 </dev/null &
    echo $! >"$dir/node$n/pid"
    cd - >/dev/null
    wait_for "$(url "$n")/readyz" "node $n"
}

wait_for() {
    for _ in $(seq 1 150); do
        if curl -sf "$1" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "qdrant-cluster: $2 did not answer $1 within 30 s; its log: $dir/node${2##* }/log" >&2
    return 1
}

case $action in
start)
    if [ -n "$(ls -A "$dir")" ]; then echo "qdrant-cluster: $dir is not empty" >&2; exit 1; fi
    for n in 1 2 3; do start_node "$n"; done
    for _ in $(seq 1 150); do
        state=$(curl -sf "$(url 1)/cluster" || true)
        if python3 -c 'import json,sys; r=json.loads(sys.argv[1])["result"]; sys.exit(0 if len(r["peers"])==3 and r["raft_info"]["leader"] else 1)' "$state" 2>/dev/null; then
            echo "$(url 1),$(url 2),$(url 3)"
            exit 0
        fi
        sleep 0.2
    done
    echo "qdrant-cluster: the cluster did not reach 3 peers and a leader within 30 s: $state" >&2
    exit 1 ;;
stop)
    for n in 1 2 3; do
        f="$dir/node$n/pid"
        if [ -f "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
    done
    for n in 1 2 3; do
        f="$dir/node$n/pid"
        if [ -f "$f" ]; then
            for _ in $(seq 1 50); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$(cat "$f")" 2>/dev/null || true
            rm -f "$f"
        fi
    done ;;
kill-node)
    n=${3:?node number}
    kill -9 "$(cat "$dir/node$n/pid")"
    for _ in $(seq 1 50); do kill -0 "$(cat "$dir/node$n/pid")" 2>/dev/null || break; sleep 0.1; done ;;
start-node)
    start_node "${3:?node number}" ;;
*)
    echo "usage: $0 start|stop|kill-node|start-node DIR [N]" >&2; exit 2 ;;
esac
