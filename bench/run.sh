#!/usr/bin/env bash
# Side-by-side benchmarks: wshub against peer servers with the same behaviour
# (/echo, and rooms named by the path that relay every message to all
# members, the sender included): uWebSockets (C++, the reference every
# figure is divided by when it is there), libwebsockets (C), Node's ws and
# Python's websockets.
#
#   bench/run.sh [--runs N] [--duration S] [--warmup S] [--procs N] [--quick]
#                [--only wshub,uws,lws,node,python,wshub-LABEL...]
#                [--workloads broadcast1000,broadcast100,echo100,echo,chat,connect,idle,
#                             wss_echo,wss_broadcast1000,wss_idle,chat1k,deflate_chat1k,
#                             deflate_idle,cluster1000,cluster1000_split]
#
# Each server is pinned to one core (BENCH_SERVER_CPU, default 0) and
# build/wsbench to the others (BENCH_CLIENT_CPUS, default every other core;
# on this project's 2-core machine core 1). Every run gets a fresh server
# process on a fresh port. The servers take turns: round 1 runs them in the
# order given, round 2 in the reverse order, and so on, so that each round
# is a set of side-by-side pairs measured within seconds of each other. The
# figures are medians over N rounds (default 3, of S seconds each, default
# 4, after 1 s of warm-up); a ratio is the median over rounds of the
# server's figure divided by the reference's figure of the same round
# (uws when it ran, wshub otherwise). --quick: one round of 1 s, smaller
# connect and idle runs, for a check that everything works.
#
# Beside each rate: p50/p99/max latency, the server's CPU per message (its
# process, which includes the kernel's softirq work done in its context: on
# loopback a send runs the receiving socket's TCP input on the sender's core;
# plus what was deferred to its core's ksoftirqd), wsbench's own CPU per
# message, and whose core was saturated. Runs where other processes or
# the hypervisor took over 5% of either core are listed as noisy, and left
# out of the medians and ratios when at least 3 quiet rounds remain.
#
# The table goes to stdout and build/bench/table.md, raw RESULT lines to
# build/bench/results.txt, each server's and client's output to
# build/bench/logs/. See docs/performance.md.
#
# wshub-LABEL runs another build of wshub (WSHUB_BIN_LABEL names it), for
# A/B comparisons of a change: e.g. --only wshub,wshub-new,uws.
#
# TLS rows (wss_*): every server with --tls-cert/--tls-key or its own TLS
# (uws: the OpenSSL build; node: https.createServer; lws: its OpenSSL
# backend; python: none), a self-signed P-256 certificate made here with the
# openssl command; wsbench --tls. Deflate rows: every server with
# permessage-deflate on (wshub --deflate, uws SHARED_COMPRESSOR, node and lws
# with their defaults), wsbench offering it as Chromium does: deflate_chat1k
# beside chat1k (the same 1 KiB chat lines, uncompressed: the servers have
# deflate on, wsbench does not offer it), deflate_idle beside idle. Cluster
# rows (wshub only): wshub --redis through a redis-server started here on a
# free loopback port (temporary directory), pinned with the servers;
# cluster1000 has every member on one node, cluster1000_split spreads them
# over two nodes (wsbench --port2), beside broadcast1000 on a single node.
#
# uWebSockets: UWS_BIN names a peer binary built from bench/peers/uws/server.cpp
# against uWebSockets and uSockets (plain TCP, LIBUS_NO_SSL), UWS_SSL_BIN its
# OpenSSL build; UWS_DESC may say which versions. Without UWS_BIN,
# bench/peers/uws/build.sh builds both (UWS_SRC and USOCKETS_SRC name local
# copies; otherwise it clones from github.com); where the sources cannot be
# had the uws rows are skipped, with a message.
# Installs what is missing when run as root (libwebsockets-dev,
# python3-websockets, nodejs/npm, the ws package with `npm ci`); otherwise
# prints the command to run. WSHUB_BIN and WSBENCH_BIN override the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RUNS=3
DURATION=4
WARMUP=1
PROCS=""
QUICK=0
SERVERS="wshub,uws,lws,node,python"
WORKLOADS="broadcast1000,broadcast100,echo100,echo,chat,connect,idle,wss_echo,wss_broadcast1000,wss_idle,chat1k,deflate_chat1k,deflate_idle,cluster1000,cluster1000_split"
RUN_TIMEOUT=${RUN_TIMEOUT:-180}   # seconds one wsbench run may take at most
ONLY_GIVEN=0

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --procs) PROCS=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --only) SERVERS=$2; ONLY_GIVEN=1; shift 2 ;;
        --workloads) WORKLOADS=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "bench/run.sh: unknown option $1" >&2; usage 2 >&2 ;;
    esac
done
if [ $QUICK = 1 ]; then RUNS=1; DURATION=1; WARMUP=0.5; fi
CONNECT_TOTAL=10000; IDLE_CONNS=10000; WSS_IDLE_CONNS=5000
[ $QUICK = 1 ] && { CONNECT_TOTAL=2000; IDLE_CONNS=2000; WSS_IDLE_CONNS=1000; }
case "$RUNS" in ''|*[!0-9]*|0) echo "bench/run.sh: --runs wants a positive integer" >&2; exit 2 ;; esac
case "$DURATION" in ''|*[!0-9.]*) echo "bench/run.sh: --duration wants seconds" >&2; exit 2 ;; esac
case "$WARMUP" in ''|*[!0-9.]*) echo "bench/run.sh: --warmup wants seconds" >&2; exit 2 ;; esac
case "$PROCS" in ''|[1-9]|[1-5][0-9]|6[0-4]) ;; *) echo "bench/run.sh: --procs wants 1 to 64" >&2; exit 2 ;; esac
IFS=, read -r -a SERVER_LIST <<< "$SERVERS"
IFS=, read -r -a WORKLOAD_LIST <<< "$WORKLOADS"
for s in "${SERVER_LIST[@]}"; do
    case "$s" in
        wshub|uws|lws|node|python) ;;
        wshub-*) v=WSHUB_BIN_${s#wshub-}
                 [[ "${s#wshub-}" =~ ^[A-Za-z0-9_]+$ ]] && [ -x "${!v:-}" ] ||
                     { echo "bench/run.sh: $s needs $v naming a wshub binary" >&2; exit 2; } ;;
        *) echo "bench/run.sh: unknown server $s" >&2; exit 2 ;;
    esac
done
for w in "${WORKLOAD_LIST[@]}"; do
    case "$w" in broadcast1000|broadcast100|echo100|echo|chat|connect|idle) ;;
        wss_echo|wss_broadcast1000|wss_idle|chat1k|deflate_chat1k|deflate_idle|cluster1000|cluster1000_split) ;;
        *) echo "bench/run.sh: unknown workload $w" >&2; exit 2 ;; esac
done
has_server() { [[ ",$SERVERS," == *",$1,"* ]]; }
drop_server() { # removes $1 from SERVERS and SERVER_LIST
    local keep=() s
    for s in "${SERVER_LIST[@]}"; do [ "$s" = "$1" ] || keep+=("$s"); done
    SERVER_LIST=("${keep[@]}")
    SERVERS=$(IFS=,; echo "${SERVER_LIST[*]}")
}

OUT=$ROOT/build/bench
mkdir -p "$OUT/logs"
BUILD_OURS=0
[ -n "${WSHUB_BIN:-}" ] && [ -n "${WSBENCH_BIN:-}" ] || BUILD_OURS=1
WSHUB_BIN=${WSHUB_BIN:-$ROOT/build/wshub}
WSBENCH_BIN=${WSBENCH_BIN:-$ROOT/build/wsbench}
LWS_BIN=$OUT/lws-server
PY=/usr/bin/python3

# ---- what the peers need -------------------------------------------------
apt_updated=0
need_debs() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$' || missing+=("$p")
    done
    [ ${#missing[@]} = 0 ] && return 0
    if [ "$(id -u)" = 0 ]; then
        echo "installing: ${missing[*]}" >&2
        if [ $apt_updated = 0 ]; then apt-get update -qq >&2 || true; apt_updated=1; fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "bench/run.sh: missing Debian packages; run: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
}

if [ $BUILD_OURS = 1 ]; then
    # A no-op when `make bench` called us; builds whatever is stale otherwise.
    make --no-print-directory -s build/wshub build/wsbench >&2
fi
[ -x "$WSHUB_BIN" ] || ! has_server wshub || { echo "bench/run.sh: no $WSHUB_BIN" >&2; exit 1; }
[ -x "$WSBENCH_BIN" ] || { echo "bench/run.sh: no $WSBENCH_BIN" >&2; exit 1; }
# Which commit the wshub binary was built from: that of the tree it lies in
# (a worktree of another commit, say), with a mark when its src/ differs.
WSHUB_REV=$(d=$(dirname "$WSHUB_BIN"); git -C "$d" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$(dirname "$WSHUB_BIN")" diff --quiet HEAD -- src include 2>/dev/null || WSHUB_REV="$WSHUB_REV (with uncommitted changes in src/ or include/)"
# Run copies, so that a rebuild during the run (make test, another worktree
# user) cannot mix two versions of wshub or wsbench in one table.
mkdir -p "$OUT/bin"
cp "$WSBENCH_BIN" "$OUT/bin/wsbench"; WSBENCH_BIN=$OUT/bin/wsbench
if has_server wshub; then cp "$WSHUB_BIN" "$OUT/bin/wshub"; WSHUB_BIN=$OUT/bin/wshub; fi
declare -A VARIANT_BIN      # wshub-LABEL: another wshub build, from WSHUB_BIN_LABEL, for A/B runs
for s in "${SERVER_LIST[@]}"; do
    case "$s" in wshub-*) v=WSHUB_BIN_${s#wshub-}; cp "${!v}" "$OUT/bin/$s"; VARIANT_BIN[$s]=$OUT/bin/$s ;; esac
done
command -v taskset >/dev/null || need_debs util-linux

SKIPPED=()
UWS_OUT=$ROOT/build/bench/uws
if has_server uws && [ -z "${UWS_BIN:-}" ]; then
    # built by bench/peers/uws/build.sh: used as they are while built from
    # today's server.cpp and build.sh, rebuilt (or built) where the sources can be had
    fresh=1 inputs=$(bench/peers/uws/build.sh --inputs)
    for f in "$UWS_OUT/uws-server" "$UWS_OUT/uws-server-ssl"; do
        [ -x "$f" ] && [ "$(cat "$f.inputs" 2>/dev/null)" = "$inputs" ] || fresh=0
    done
    rc=0
    [ $fresh = 1 ] || bench/peers/uws/build.sh >&2 || rc=$?
    if [ $rc = 0 ]; then
        UWS_BIN=$UWS_OUT/uws-server; UWS_SSL_BIN=${UWS_SSL_BIN:-$UWS_OUT/uws-server-ssl}
        UWS_DESC=${UWS_DESC:-$(cat "$UWS_OUT/VERSION" 2>/dev/null)}
    elif [ $rc = 3 ]; then
        UWS_WHY="bench/peers/uws/build.sh cannot get the uWebSockets and uSockets sources (give UWS_SRC and USOCKETS_SRC, or let it reach github.com)"
    else
        UWS_WHY="bench/peers/uws/build.sh failed (exit $rc)"
    fi
fi
if has_server uws; then
    if [ -n "${UWS_BIN:-}" ] && [ -x "$UWS_BIN" ]; then
        cp "$UWS_BIN" "$OUT/bin/uws-server"; UWS_BIN=$OUT/bin/uws-server
        if [ -n "${UWS_SSL_BIN:-}" ] && [ -x "$UWS_SSL_BIN" ]; then
            cp "$UWS_SSL_BIN" "$OUT/bin/uws-server-ssl"; UWS_SSL_BIN=$OUT/bin/uws-server-ssl
        else
            UWS_SSL_BIN=""
        fi
    else
        why=${UWS_WHY:-"UWS_BIN=${UWS_BIN:-} is not an executable"}
        msg="uws skipped: $why (see docs/performance.md); ratios are against wshub instead"
        echo "bench/run.sh: $msg" >&2
        SKIPPED+=("$msg")
        drop_server uws
    fi
fi
if has_server lws; then
    need_debs gcc pkg-config libwebsockets-dev
    if [ ! -x "$LWS_BIN" ] || [ bench/peers/lws/server.c -nt "$LWS_BIN" ]; then
        # shellcheck disable=SC2046
        cc -std=gnu11 -O2 -g -Wall -Wextra bench/peers/lws/server.c \
            $(pkg-config --cflags --libs libwebsockets) -o "$LWS_BIN"
    fi
fi
if has_server python; then
    need_debs python3 python3-websockets
fi
if has_server node; then
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then need_debs nodejs npm; fi
    if [ ! -f bench/peers/node/node_modules/ws/package.json ]; then
        (cd bench/peers/node && npm ci --no-audit --no-fund --loglevel=error) >&2
    fi
fi
[ ${#SERVER_LIST[@]} -gt 0 ] || { echo "bench/run.sh: no server left to run" >&2; exit 1; }
wants() { [[ ",$WORKLOADS," == *",$1"* ]]; }   # wants PREFIX: a workload starting so
TLS_DIR=$OUT/tls
if wants wss_; then
    command -v openssl >/dev/null || need_debs openssl
    if [ ! -s "$TLS_DIR/cert.pem" ]; then
        mkdir -p "$TLS_DIR"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
            -subj /CN=127.0.0.1 -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null
    fi
fi
REDIS_PID=""; REDIS_PORT=""; REDIS_DIR=""
if wants cluster; then
    command -v redis-server >/dev/null || need_debs redis-server
fi
REF=wshub; has_server uws && REF=uws

# ---- pinning, ports, processes ---------------------------------------------
NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then
    SERVER_CPU=${BENCH_SERVER_CPU:-0}
    CLIENT_CPUS=${BENCH_CLIENT_CPUS:-$(seq 0 $((NCPU - 1)) | grep -vx "$SERVER_CPU" | paste -sd,)}
    PIN_SERVER=(taskset -c "$SERVER_CPU"); PIN_CLIENT=(taskset -c "$CLIENT_CPUS")
    NCLIENT=$(taskset -c "$CLIENT_CPUS" nproc)
else
    PIN_SERVER=(); PIN_CLIENT=(); NCLIENT=1; SERVER_CPU=any; CLIENT_CPUS=any
    echo "bench/run.sh: only one core: server and wsbench share it, nothing is pinned" >&2
fi
# wsbench processes for echo and connect: one per generator core unless told
PROCS=${PROCS:-$NCLIENT}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((IDLE_CONNS + 100)) ]; then
    echo "bench/run.sh: note: open files limit is $(ulimit -n); idle ($IDLE_CONNS conns) needs more" >&2
fi

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

SERVER_PID=""; SERVER_PID2=""
stop_pid() {
    [ -n "$1" ] || return 0
    if kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || true
}
stop_server() {
    stop_pid "$SERVER_PID"; stop_pid "$SERVER_PID2"
    SERVER_PID=""; SERVER_PID2=""
}
trap 'stop_server; stop_redis' EXIT
trap 'stop_server; stop_redis; exit 130' INT TERM

# supports SERVER WORKLOAD: whether the server has what the workload needs
# (0), or why not on stdout (1).
supports() {
    case "$2" in
        wss_*)   case "$1" in
                     python) echo "no TLS in bench/peers/python"; return 1 ;;
                     uws) [ -n "${UWS_SSL_BIN:-}" ] || { echo "no OpenSSL build of the uws peer (UWS_SSL_BIN)"; return 1; } ;;
                 esac ;;
        *deflate*|chat1k) [ "$1" != python ] || { echo "bench/peers/python runs without compression"; return 1; } ;;
        cluster*) case "$1" in wshub|wshub-*) ;; *) echo "only wshub forms a cluster"; return 1 ;; esac ;;
    esac
    return 0
}

# start_redis / stop_redis: a redis-server of our own for the cluster rows,
# on a free loopback port, in a temporary directory, pinned with the servers.
start_redis() {
    [ -z "$REDIS_PID" ] || return 0
    REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/wshub-bench-redis.XXXXXX")
    REDIS_PORT=$(free_port)
    "${PIN_SERVER[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$REDIS_DIR" --protected-mode no --loglevel warning >"$OUT/logs/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench/run.sh: redis-server did not start (see build/bench/logs/redis.log)" >&2
    return 1
}
stop_redis() {
    [ -n "$REDIS_PID" ] || return 0
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    rm -rf "$REDIS_DIR"
    REDIS_PID=""
}

# server_cmd NAME PORT WORKLOAD: the command line of one server process (in CMD).
server_cmd() {
    local name=$1 port=$2 w=$3 tls=() dfl=()
    case "$w" in wss_*) tls=(--cert "$TLS_DIR/cert.pem" --key "$TLS_DIR/key.pem") ;; esac
    case "$w" in *deflate*|chat1k) dfl=(--deflate) ;; esac
    case "$name" in
        wshub|wshub-*)
                CMD=("$WSHUB_BIN" --host 127.0.0.1 --port "$port" --rate-limit 0
                     --binary-rate-limit 0 --binary-byte-rate 0 --max-binary 1m --max-conns 50000 --log-level warn)
                [ "$name" = wshub ] || CMD[0]=${VARIANT_BIN[$name]}
                [ ${#tls[@]} = 0 ] || CMD+=(--tls-cert "${tls[1]}" --tls-key "${tls[3]}")
                CMD+=("${dfl[@]}")
                case "$w" in cluster*) CMD+=(--redis "redis://127.0.0.1:$REDIS_PORT" --redis-prefix "$CLUSTER_PREFIX") ;; esac ;;
        uws)    CMD=("$UWS_BIN" "$port" "${dfl[@]}"); [ ${#tls[@]} = 0 ] || CMD=("$UWS_SSL_BIN" "$port" "${tls[@]}" "${dfl[@]}") ;;
        lws)    CMD=("$LWS_BIN" "$port" "${tls[@]}" "${dfl[@]}") ;;
        node)   CMD=(node bench/peers/node/server.js "$port" "${tls[@]}" "${dfl[@]}") ;;
        python) CMD=("$PY" bench/peers/python/server.py "$port") ;;
    esac
}

# launch PORT LOG: CMD in the background, pinned; its pid in LAUNCHED, 0 once it listens.
launch() {
    local port=$1 log=$2
    "${PIN_SERVER[@]}" "${CMD[@]}" >"$log" 2>&1 &
    LAUNCHED=$!
    for _ in $(seq 200); do
        kill -0 "$LAUNCHED" 2>/dev/null || { wait "$LAUNCHED" 2>/dev/null; LAUNCHED=""; return 1; }
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# start_server NAME PORT LOG WORKLOAD: the server in the background, pinned
# (cluster1000_split: two nodes, the second on PORT2); 0 once it listens.
start_server() {
    local name=$1 port=$2 log=$3 w=$4 rc=0
    case "$w" in cluster*) start_redis || return 1 ;; esac
    CLUSTER_PREFIX=bench$RANDOM$RANDOM     # a fresh key space per run, shared by its nodes
    server_cmd "$name" "$port" "$w"
    launch "$port" "$log" || rc=1
    SERVER_PID=$LAUNCHED
    if [ $rc = 0 ] && [ "$w" = cluster1000_split ]; then
        PORT2=$(free_port)
        server_cmd "$name" "$PORT2" "$w"
        launch "$PORT2" "${log%.log}.node2.log" || rc=1
        SERVER_PID2=$LAUNCHED
    fi
    return $rc
}

# ---- workloads -----------------------------------------------------------
workload_args() {
    local t="--duration $DURATION --warmup $WARMUP"
    case "$1" in
        broadcast1000) echo "broadcast --members 1000 --publishers 10 --size 64 --path /ws/bench $t" ;;
        broadcast100)  echo "broadcast --members 100 --publishers 100 --size 64 --path /ws/bench $t" ;;
        echo100)       echo "echo --conns 100 --inflight 1 --size 32 --path /echo --procs $PROCS $t" ;;
        echo)          echo "echo --conns 1000 --inflight 1 --size 1024 --path /echo --procs $PROCS $t" ;;
        chat)          echo "chat --members 1000 --publishers 10 --size 64 --path /ws/bench $t" ;;
        connect)       echo "connect --total $CONNECT_TOTAL --concurrency 100 --path /echo --procs $PROCS" ;;
        idle)          echo "idle --conns $IDLE_CONNS --path /ws/idle --duration $DURATION" ;;
        wss_echo)      echo "echo --conns 1000 --inflight 1 --size 1024 --path /echo --procs $PROCS --tls $t" ;;
        wss_broadcast1000) echo "broadcast --members 1000 --publishers 10 --size 64 --path /ws/bench --tls $t" ;;
        wss_idle)      echo "idle --conns $WSS_IDLE_CONNS --path /ws/idle --duration $DURATION --procs $PROCS --tls" ;;
        chat1k)        echo "chat --members 1000 --publishers 10 --size 1024 --path /ws/bench $t" ;;
        deflate_chat1k) echo "chat --members 1000 --publishers 10 --size 1024 --path /ws/bench --deflate $t" ;;
        deflate_idle)  echo "idle --conns $IDLE_CONNS --path /ws/idle --duration $DURATION --deflate" ;;
        cluster1000)   echo "broadcast --members 1000 --publishers 10 --size 64 --path /ws/bench --welcome $t" ;;
        cluster1000_split) echo "broadcast --members 1000 --publishers 10 --size 64 --path /ws/bench --port2 $PORT2 --welcome $t" ;;
    esac
}
workload_label() {
    case "$1" in
        broadcast1000) echo "broadcast 1000 members × 10 publishers, 64 B binary (deliveries/s)" ;;
        broadcast100)  echo "broadcast 100 members × 100 publishers, 64 B binary (deliveries/s)" ;;
        echo100)       echo "echo 100 conns × 1 in flight, 32 B (round trips/s)" ;;
        echo)          echo "echo 1000 conns × 1 in flight, 1 KiB (round trips/s)" ;;
        chat)          echo "chat 1000 members × 10 publishers, 64 B text (deliveries/s)" ;;
        connect)       echo "connect $CONNECT_TOTAL total, 100 concurrent (handshakes/s)" ;;
        idle)          echo "idle $IDLE_CONNS conns: server RSS per conn (bytes, lower is better)" ;;
        wss_echo)      echo "wss echo 1000 conns × 1 in flight, 1 KiB (round trips/s)" ;;
        wss_broadcast1000) echo "wss broadcast 1000 members × 10 publishers, 64 B binary (deliveries/s)" ;;
        wss_idle)      echo "wss idle $WSS_IDLE_CONNS conns: server RSS per conn (bytes, lower is better)" ;;
        chat1k)        echo "chat 1000 members × 10 publishers, 1 KiB text, deflate on but not offered (deliveries/s)" ;;
        deflate_chat1k) echo "deflate chat 1000 members × 10 publishers, 1 KiB text (deliveries/s)" ;;
        deflate_idle)  echo "deflate idle $IDLE_CONNS conns, deflate negotiated: server RSS per conn (bytes, lower is better)" ;;
        cluster1000)   echo "cluster broadcast 1000 × 10, 64 B, through Redis, one node (deliveries/s)" ;;
        cluster1000_split) echo "cluster broadcast 1000 × 10, 64 B, through Redis, members on two nodes (deliveries/s)" ;;
    esac
}
short_label() { workload_label "$1" | sed 's/ (.*//; s/: server RSS.*//'; }
# The figure a workload is judged by: rss_per_conn for idle, rate otherwise.
is_idle() { case "$1" in idle|*_idle) return 0 ;; *) return 1 ;; esac; }
metric_of() { is_idle "$1" && echo rss_per_conn || echo rate; }
is_msg() { case "$1" in broadcast*|echo*|chat*|wss_echo|wss_broadcast*|deflate_chat*|cluster*) return 0 ;; *) return 1 ;; esac; }

field() { # field KEY LINE
    awk -v k="$1" '{for (i = 1; i <= NF; i++) { n = index($i, "="); if (n && substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' <<< "$2"
}
median() { # numbers on stdin, one a line -> median (empty when none)
    sort -g | awk 'NF {v[++n] = $1} END { if (!n) exit; if (n % 2) print v[(n + 1) / 2]; else print (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
minmax() { # numbers on stdin -> "min-max" (empty when none)
    sort -g | awk 'NF {v[++n] = $1} END { if (n) printf "%.2f-%.2f", v[1], v[n] }'
}

RESULTS=$OUT/results.txt
GITREV="$(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD -- bench 2>/dev/null || echo ' (with uncommitted changes in bench/)')"
{
    echo "# bench/run.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) runs=$RUNS duration=$DURATION warmup=$WARMUP procs=$PROCS"
    echo "# bench at git $GITREV; wshub built at $WSHUB_REV ($WSHUB_BIN)"
    has_server uws && echo "# uws ${UWS_DESC:-(UWS_DESC not given)}"
    echo "# $NCPU cores (server on $SERVER_CPU, wsbench on $CLIENT_CPUS), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$RESULTS"
NOTE_KEYS=()
declare -A NOTE_RUNS
note() { # note "SERVER WORKLOAD: what" "run N[ (detail)]": one line per what, runs gathered
    if [ -z "${NOTE_RUNS[$1]+x}" ]; then NOTE_KEYS+=("$1"); NOTE_RUNS[$1]=$2; else NOTE_RUNS[$1]+=", $2"; fi
}
declare -A V       # V[key,server,workload,round] = value of one run
KEYS=(fig p50_us p99_us max_us server_ns_per_msg server_core_ns_per_msg client_core_ns_per_msg client_cpu_pct server_cpu_pct
      rx_bytes_per_msg msg_bytes_per_msg p50_cross_us p99_cross_us)

echo "bench/run.sh: servers $SERVERS (ratios against $REF); workloads $WORKLOADS; $RUNS round(s) of ${DURATION} s; server on core $SERVER_CPU, wsbench on $CLIENT_CPUS ($PROCS process(es) for echo and connect)" >&2
t_begin=$(date +%s)
for w in "${WORKLOAD_LIST[@]}"; do
    metric=$(metric_of "$w")
    for run in $(seq "$RUNS"); do
        order=("${SERVER_LIST[@]}")
        if [ $((run % 2)) = 0 ]; then   # every other round in reverse: A B C, C B A, ...
            order=(); for ((i = ${#SERVER_LIST[@]} - 1; i >= 0; i--)); do order+=("${SERVER_LIST[i]}"); done
        fi
        for s in "${order[@]}"; do
            if ! why=$(supports "$s" "$w"); then
                [ "$run" != 1 ] || note "$s $w: not run ($why)" "every round"
                continue
            fi
            port=$(free_port)
            slog=$OUT/logs/$s-$w-$run.server.log
            clog=$OUT/logs/$s-$w-$run.client.log
            if ! start_server "$s" "$port" "$slog" "$w"; then
                note "$s $w: the server did not start" "run $run (see ${slog#"$ROOT"/})"
                stop_server
                continue
            fi
            read -r -a wargs <<< "$(workload_args "$w")"
            set +e
            timeout "$RUN_TIMEOUT" "${PIN_CLIENT[@]}" "$WSBENCH_BIN" "${wargs[@]}" \
                --host 127.0.0.1 --port "$port" --server-pid "$SERVER_PID" >"$clog.out" 2>"$clog"
            rc=$?
            set -e
            alive=yes; kill -0 "$SERVER_PID" 2>/dev/null || alive=no
            stop_server
            line=$(grep -m1 '^RESULT ' "$clog.out" || true)
            if [ -n "$line" ]; then
                echo "server=$s case=$w run=$run exit=$rc $line" >> "$RESULTS"
            fi
            if [ -n "$line" ]; then
                printf '  %-6s %-13s run %d: %s=%s p99=%sus server %s ns/msg, wsbench %s%%%s%s\n' "$s" "$w" "$run" \
                    "$metric" "$(field "$metric" "$line")" "$(field p99_us "$line")" \
                    "$(field server_core_ns_per_msg "$line")" "$(field client_cpu_pct "$line")" \
                    "$([ "$(field client_saturated "$line")" = yes ] && echo ' (saturated)')" \
                    "$([ "$(field noisy "$line")" = yes ] && echo ' noisy')" >&2
            else
                printf '  %-6s %-13s run %d: no RESULT (exit %d)\n' "$s" "$w" "$run" "$rc" >&2
            fi
            if [ $alive = no ]; then
                note "$s $w: **the server exited during the run**" "run $run (see ${slog#"$ROOT"/})"
            fi
            if [ $rc -ne 0 ] || [ -z "$line" ]; then
                why="exit $rc"; [ $rc = 124 ] && why="timed out after ${RUN_TIMEOUT} s"
                note "$s $w: wsbench failed" "run $run ($why: $(tail -n 2 "$clog" | tr '\n' ' ' | cut -c1-200))"
                continue
            fi
            lost=$(field lost "$line"); reord=$(field reordered "$line"); errs=$(field errors "$line")
            [ "${lost:-0}" = 0 ] || note "$s $w: lost > 0" "run $run (lost=$lost)"
            [ "${reord:-0}" = 0 ] || note "$s $w: reordered > 0" "run $run (reordered=$reord)"
            [ "${errs:-0}" = 0 ] || note "$s $w: errors > 0" "run $run (errors=$errs)"
            if ! is_idle "$w"; then
                [ "$(field client_saturated "$line")" != yes ] ||
                    note "$s $w: wsbench's core saturated$([ "$(field server_saturated "$line")" = yes ] && echo ' (the server'"'"'s too)' || echo ', the server'"'"'s not: the generator was the limit')" "run $run"
            fi
            # idle: the figure is memory, and the cores idle by design: no CPU noise to speak of
            is_idle "$w" || [ "$(field noisy "$line")" != yes ] ||
                note "$s $w: noisy (other work took cores: server's $(field server_noise_pct "$line")%, wsbench's $(field client_noise_pct "$line")%)" "run $run"
            V[fig,$s,$w,$run]=$(field "$metric" "$line")
            V[noisy,$s,$w,$run]=$(field noisy "$line"); ! is_idle "$w" || V[noisy,$s,$w,$run]=no
            for k in "${KEYS[@]:1}"; do V[$k,$s,$w,$run]=$(field "$k" "$line"); done
        done
    done
done
t_end=$(date +%s)

# ---- the tables --------------------------------------------------------------
fmt() { # a figure with thousands separators
    awk -v v="$1" 'BEGIN { if (v == "") { print "—"; exit } s = sprintf("%.0f", v); o = "";
        while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'
}
# On a shared machine some runs are disturbed (noisy=yes: other processes or
# the hypervisor took over 5% of a pinned core). Figures and ratios use only
# the quiet runs (pairs) when there are at least QUIET_MIN of them, all otherwise.
QUIET_MIN=$(( RUNS < 3 ? RUNS : 3 ))
quiet_rounds() { # quiet_rounds SERVER... WORKLOAD -> the rounds to use, one a line
    local w=${*: -1} r s ok all=() quiet=()
    for r in $(seq "$RUNS"); do
        ok=1
        for s in "${@:1:$#-1}"; do
            [ -n "${V[fig,$s,$w,$r]:-}" ] || continue 2
            [ "${V[noisy,$s,$w,$r]:-}" != yes ] || ok=0
        done
        all+=("$r"); [ $ok = 1 ] && quiet+=("$r")
    done
    if [ ${#quiet[@]} -ge "$QUIET_MIN" ]; then printf '%s\n' "${quiet[@]}"
    elif [ ${#all[@]} -gt 0 ]; then printf '%s\n' "${all[@]}"; fi
    return 0
}
rounds_used() { # rounds_used SERVER... WORKLOAD -> "3 quiet of 5" or "5, noisy"
    local n q total=0 r w=${*: -1}
    n=$(quiet_rounds "$@" | wc -l)
    for r in $(seq "$RUNS"); do [ -n "${V[fig,$1,$w,$r]:-}" ] && total=$((total + 1)); done
    q=0
    for r in $(quiet_rounds "$@"); do
        local s ok=1
        for s in "${@:1:$#-1}"; do [ "${V[noisy,$s,$w,$r]:-}" != yes ] || ok=0; done
        q=$((q + ok))
    done
    if [ "$q" = "$n" ]; then echo "$n quiet of $total"; else echo "$n of $total, noisy"; fi
}
med() { # med KEY SERVER WORKLOAD -> median over the rounds used
    local r
    for r in $(quiet_rounds "$2" "$3"); do echo "${V[$1,$2,$3,$r]:-}"; done | median
}
pair_ratios() { # pair_ratios KEY SERVER WORKLOAD -> one ratio per round used with both figures
    local r a b
    for r in $(quiet_rounds "$2" "$REF" "$3"); do
        a=${V[$1,$2,$3,$r]:-}; b=${V[$1,$REF,$3,$r]:-}
        [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { if (b + 0 != 0) printf "%.4f\n", a / b }'
    done
    return 0
}
ratio_cell() { # ratio_cell KEY SERVER WORKLOAD -> "1.23×" (median of the rounds' ratios)
    local m
    m=$(pair_ratios "$1" "$2" "$3" | median)
    [ -n "$m" ] && printf '%.2f×' "$m" || echo "n/a"
}
cell() { # cell KEY SERVER WORKLOAD -> "figure (ratio)"
    local v
    v=$(med "$1" "$2" "$3")
    if [ -z "$v" ]; then echo "—"
    elif [ "$2" = "$REF" ]; then fmt "$v"
    else echo "$(fmt "$v") ($(ratio_cell "$1" "$2" "$3"))"; fi
}
self_ratio() { # self_ratio SERVER W1 W2 -> "0.61×": median over rounds of its W1 figure / its W2 figure
    local r a b m
    m=$(for r in $(seq "$RUNS"); do
            a=${V[fig,$1,$2,$r]:-}; b=${V[fig,$1,$3,$r]:-}
            [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { if (b + 0 != 0) printf "%.4f\n", a / b }'
        done | median)
    [ -n "$m" ] && printf '%.2f×' "$m" || echo "—"
}
listed() { [[ ",$WORKLOADS," == *",$1,"* ]]; }
header() {
    echo "| workload | $(printf '%s | ' "${SERVER_LIST[@]}" | sed 's/ | $//') |"
    echo "|---|$(printf -- '---:|%.0s' "${SERVER_LIST[@]}")"
}
{
    if [ ${#SKIPPED[@]} -gt 0 ]; then printf '%s\n\n' "${SKIPPED[@]}"; fi
    if [ "$REF" = uws ] && has_server wshub; then
        echo "wshub against uWebSockets, side by side (median of the rounds' wshub/uws ratios; range over rounds):"
        echo
        echo "| workload | wshub / uws | range | p99 wshub / uws | server CPU per msg wshub / uws: with ksoftirqd, process only | pairs |"
        echo "|---|---:|---:|---:|---:|---|"
        for w in "${WORKLOAD_LIST[@]}"; do
            supports uws "$w" >/dev/null || continue    # the cluster rows: wshub alone
            p99="—"; cpu="—"
            is_msg "$w" && p99=$(ratio_cell p99_us wshub "$w")
            is_idle "$w" || cpu="$(ratio_cell server_core_ns_per_msg wshub "$w"), $(ratio_cell server_ns_per_msg wshub "$w")"
            echo "| $(workload_label "$w") | $(ratio_cell fig wshub "$w") | $(pair_ratios fig wshub "$w" | minmax) | $p99 | $cpu | $(rounds_used wshub uws "$w") |"
        done
        echo
        echo "Rates: above 1× wshub is faster. Idle RSS, p99 and CPU per message: below 1× wshub is better."
        echo
    fi
    header
    for w in "${WORKLOAD_LIST[@]}"; do
        row="| $(workload_label "$w") |"
        for s in "${SERVER_LIST[@]}"; do row="$row $(cell fig "$s" "$w") |"; done
        echo "$row"
    done
    echo
    echo "Median of $RUNS round(s) of ${DURATION} s each (connect: $CONNECT_TOTAL handshakes per run), of the"
    echo "quiet ones when there were at least $QUIET_MIN; in parentheses the median over those rounds of the"
    echo "server's figure divided by $REF's of the same round."
    if listed deflate_chat1k || listed deflate_idle; then
        echo
        echo "permessage-deflate, each server against itself (medians over rounds):"
        echo
        header
        row="| bytes received per delivery, deflate chat 1 KiB (uncompressed: chat1k) |"
        for s in "${SERVER_LIST[@]}"; do
            row="$row $(fmt "$(med rx_bytes_per_msg "$s" deflate_chat1k)") ($(fmt "$(med rx_bytes_per_msg "$s" chat1k)")) |"
        done
        echo "$row"
        row="| deliveries/s compressed / uncompressed (deflate_chat1k / chat1k; target ≥ 0.5×) |"
        for s in "${SERVER_LIST[@]}"; do row="$row $(self_ratio "$s" deflate_chat1k chat1k) |"; done
        echo "$row"
        row="| idle RSS per conn with deflate negotiated minus without (bytes; target ≤ 1024) |"
        for s in "${SERVER_LIST[@]}"; do
            a=$(med fig "$s" deflate_idle); b=$(med fig "$s" idle)
            row="$row $([ -n "$a" ] && [ -n "$b" ] && fmt "$(awk -v a="$a" -v b="$b" 'BEGIN { print a - b }')" || echo —) |"
        done
        echo "$row"
    fi
    if listed cluster1000 || listed cluster1000_split; then
        echo
        echo "Cluster through Redis (wshub; redis-server and both nodes on the server's core), against"
        echo "broadcast 1000 × 10 on a single node in the same rounds (target ≥ 0.5×):"
        echo
        echo "| server | one node via Redis / single node | two nodes / single node | publish → delivery on the other node, p50 / p99 µs |"
        echo "|---|---:|---:|---:|"
        for s in "${SERVER_LIST[@]}"; do
            case "$s" in wshub|wshub-*) ;; *) continue ;; esac
            echo "| $s | $(self_ratio "$s" cluster1000 broadcast1000) | $(self_ratio "$s" cluster1000_split broadcast1000) | $(fmt "$(med p50_cross_us "$s" cluster1000_split)") / $(fmt "$(med p99_cross_us "$s" cluster1000_split)") |"
        done
    fi
    lat=0
    for w in "${WORKLOAD_LIST[@]}"; do is_msg "$w" && lat=1; done
    if [ $lat = 1 ]; then
        echo
        echo "Latency p50 / p99 / max in µs (medians over rounds; lower is better):"
        echo
        header
        for w in "${WORKLOAD_LIST[@]}"; do
            is_msg "$w" || continue
            row="| $(short_label "$w") |"
            for s in "${SERVER_LIST[@]}"; do
                row="$row $(fmt "$(med p50_us "$s" "$w")") / $(fmt "$(med p99_us "$s" "$w")") / $(fmt "$(med max_us "$s" "$w")") |"
            done
            echo "$row"
        done
    fi
    cpu=0
    for w in "${WORKLOAD_LIST[@]}"; do is_idle "$w" || cpu=1; done
    if [ $cpu = 1 ]; then
        echo
        echo "Server CPU per message in ns (connect: per handshake): the server process (with the kernel's"
        echo "softirq work in its context) plus its core's ksoftirqd, median of the rounds (lower is better;"
        echo "in parentheses against $REF), then the process alone:"
        echo
        header
        for w in "${WORKLOAD_LIST[@]}"; do
            is_idle "$w" && continue
            row="| $(short_label "$w") |"
            for s in "${SERVER_LIST[@]}"; do row="$row $(cell server_core_ns_per_msg "$s" "$w") |"; done
            echo "$row"
        done
        for w in "${WORKLOAD_LIST[@]}"; do
            is_idle "$w" && continue
            row="| $(short_label "$w"), process only |"
            for s in "${SERVER_LIST[@]}"; do row="$row $(cell server_ns_per_msg "$s" "$w") |"; done
            echo "$row"
        done
        echo
        echo "The generator beside it: wsbench's CPU per message in ns (its processes plus its cores'"
        echo "ksoftirqd) and its processes' CPU in % of one core, medians:"
        echo
        header
        for w in "${WORKLOAD_LIST[@]}"; do
            is_idle "$w" && continue
            row="| $(short_label "$w") |"
            for s in "${SERVER_LIST[@]}"; do
                row="$row $(fmt "$(med client_core_ns_per_msg "$s" "$w")") ns, $(fmt "$(med client_cpu_pct "$s" "$w")")% |"
            done
            echo "$row"
        done
    fi
    echo
    echo "wshub built at $WSHUB_REV, bench/ at $GITREV$(has_server uws && echo "; uws: ${UWS_DESC:-versions not given}"); $NCPU cores, server on core $SERVER_CPU, wsbench on $CLIENT_CPUS ($PROCS process(es) for echo and connect); $((t_end - t_begin)) s."
    if [ ${#NOTE_KEYS[@]} -gt 0 ]; then
        echo
        echo "Notes:"
        echo
        for n in "${NOTE_KEYS[@]}"; do echo "- $n: ${NOTE_RUNS[$n]}"; done
    fi
} > "$OUT/table.md"
cat "$OUT/table.md"
echo "bench/run.sh: raw results in ${RESULTS#"$ROOT"/}, table in ${OUT#"$ROOT"/}/table.md, logs in ${OUT#"$ROOT"/}/logs/" >&2
