#!/usr/bin/env bash
# Side-by-side benchmarks: wshub against three peer servers with the same
# behaviour (/echo, and rooms named by the path that relay every message to
# all members): libwebsockets (C), Node's ws, and Python's websockets.
#
#   bench/run.sh [--runs N] [--duration S] [--only wshub,lws,node,python]
#                [--workloads broadcast1000,broadcast100,echo,chat,connect,idle]
#
# Each server is pinned to core 0 and build/wsbench to core 1 (taskset). Every
# run gets a fresh server process on a fresh port, so no run sees the rooms,
# memory or connections of another. The median of N runs (default 3, of S
# seconds each, default 5) goes into a Markdown table printed on stdout and
# written to build/bench/table.md; the raw RESULT lines go to
# build/bench/results.txt, each server's and client's output to
# build/bench/logs/. See docs/performance.md.
#
# Installs what is missing when run as root (libwebsockets-dev,
# python3-websockets, nodejs/npm, the ws package with `npm ci`); otherwise
# prints the command to run. WSHUB_BIN and WSBENCH_BIN override the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RUNS=3
DURATION=5
SERVERS="wshub,lws,node,python"
WORKLOADS="broadcast1000,broadcast100,echo,chat,connect,idle"
RUN_TIMEOUT=${RUN_TIMEOUT:-180}   # seconds one wsbench run may take at most

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --only) SERVERS=$2; shift 2 ;;
        --workloads) WORKLOADS=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "bench/run.sh: unknown option $1" >&2; usage 2 >&2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "bench/run.sh: --runs wants a positive integer" >&2; exit 2 ;; esac
case "$DURATION" in ''|*[!0-9.]*) echo "bench/run.sh: --duration wants seconds" >&2; exit 2 ;; esac
IFS=, read -r -a SERVER_LIST <<< "$SERVERS"
IFS=, read -r -a WORKLOAD_LIST <<< "$WORKLOADS"
for s in "${SERVER_LIST[@]}"; do
    case "$s" in wshub|lws|node|python) ;; *) echo "bench/run.sh: unknown server $s" >&2; exit 2 ;; esac
done
for w in "${WORKLOAD_LIST[@]}"; do
    case "$w" in broadcast1000|broadcast100|echo|chat|connect|idle) ;;
        *) echo "bench/run.sh: unknown workload $w" >&2; exit 2 ;; esac
done
has_server() { [[ ",$SERVERS," == *",$1,"* ]]; }

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
# Run copies, so that a rebuild during the run (make test, another worktree
# user) cannot mix two versions of wshub or wsbench in one table.
mkdir -p "$OUT/bin"
cp "$WSBENCH_BIN" "$OUT/bin/wsbench"; WSBENCH_BIN=$OUT/bin/wsbench
if has_server wshub; then cp "$WSHUB_BIN" "$OUT/bin/wshub"; WSHUB_BIN=$OUT/bin/wshub; fi
command -v taskset >/dev/null || need_debs util-linux

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

# ---- pinning, ports, processes ---------------------------------------------
# Server on core 0, load generator on core 1; on one core nothing is pinned.
if [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c 0); PIN_CLIENT=(taskset -c 1)
else
    PIN_SERVER=(); PIN_CLIENT=()
    echo "bench/run.sh: only one core: server and wsbench share it, nothing is pinned" >&2
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt 10100 ]; then
    echo "bench/run.sh: note: open files limit is $(ulimit -n); idle (10000 conns) needs more" >&2
fi

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

SERVER_PID=""
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM

# start_server NAME PORT LOG: the server in the background, pinned; 0 once it listens.
start_server() {
    local name=$1 port=$2 log=$3 cmd
    case "$name" in
        wshub)  cmd=("$WSHUB_BIN" --host 127.0.0.1 --port "$port" --rate-limit 0
                     --binary-rate-limit 0 --binary-byte-rate 0 --max-binary 1m --max-conns 50000 --log-level warn) ;;
        lws)    cmd=("$LWS_BIN" "$port") ;;
        node)   cmd=(node bench/peers/node/server.js "$port") ;;
        python) cmd=("$PY" bench/peers/python/server.py "$port") ;;
    esac
    "${PIN_SERVER[@]}" "${cmd[@]}" >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 200); do
        kill -0 "$SERVER_PID" 2>/dev/null || { wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""; return 1; }
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# ---- workloads -----------------------------------------------------------
workload_args() {
    case "$1" in
        broadcast1000) echo "broadcast --members 1000 --publishers 10 --size 64 --path /ws/bench --duration $DURATION" ;;
        broadcast100)  echo "broadcast --members 100 --publishers 100 --size 64 --path /ws/bench --duration $DURATION" ;;
        echo)          echo "echo --conns 1000 --inflight 1 --size 1024 --path /echo --duration $DURATION" ;;
        chat)          echo "chat --members 1000 --publishers 10 --size 64 --path /ws/bench --duration $DURATION" ;;
        connect)       echo "connect --total 10000 --concurrency 100 --path /echo" ;;
        idle)          echo "idle --conns 10000 --path /ws/idle --duration $DURATION" ;;
    esac
}
workload_label() {
    case "$1" in
        broadcast1000) echo "broadcast 1000 members × 10 publishers, 64 B binary (msg/s)" ;;
        broadcast100)  echo "broadcast 100 members × 100 publishers, 64 B binary (msg/s)" ;;
        echo)          echo "echo 1000 conns × 1 in flight, 1 KiB (msg/s)" ;;
        chat)          echo "chat 1000 members × 10 publishers, 64 B text (msg/s)" ;;
        connect)       echo "connect 10000 total, 100 concurrent (conn/s)" ;;
        idle)          echo "idle 10000 conns: server RSS per conn (bytes, lower is better)" ;;
    esac
}
# The figure a workload is judged by: rss_per_conn for idle, rate otherwise.
metric_of() { [ "$1" = idle ] && echo rss_per_conn || echo rate; }

field() { # field KEY LINE
    awk -v k="$1" '{for (i = 1; i <= NF; i++) { n = index($i, "="); if (n && substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' <<< "$2"
}
median() { # numbers on stdin, one a line -> median (empty when none)
    sort -g | awk 'NF {v[++n] = $1} END { if (!n) exit; if (n % 2) print v[(n + 1) / 2]; else print (v[n / 2] + v[n / 2 + 1]) / 2 }'
}

RESULTS=$OUT/results.txt
{
    echo "# bench/run.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) runs=$RUNS duration=$DURATION"
    echo "# git $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD -- src include bench 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$RESULTS"
NOTE_KEYS=()
declare -A NOTE_RUNS
note() { # note "SERVER WORKLOAD: what" "run N[ (detail)]": one line per what, runs gathered
    if [ -z "${NOTE_RUNS[$1]+x}" ]; then NOTE_KEYS+=("$1"); NOTE_RUNS[$1]=$2; else NOTE_RUNS[$1]+=", $2"; fi
}
declare -A FIG P99 NS   # medians by "server,workload"

echo "bench/run.sh: servers $SERVERS; workloads $WORKLOADS; $RUNS run(s) of ${DURATION} s" >&2
for w in "${WORKLOAD_LIST[@]}"; do
    metric=$(metric_of "$w")
    for s in "${SERVER_LIST[@]}"; do
        vals=(); p99s=(); nss=()
        for run in $(seq "$RUNS"); do
            port=$(free_port)
            slog=$OUT/logs/$s-$w-$run.server.log
            clog=$OUT/logs/$s-$w-$run.client.log
            if ! start_server "$s" "$port" "$slog"; then
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
            printf '  %-7s %-13s run %d: %s\n' "$s" "$w" "$run" "${line:-no RESULT (exit $rc)}" >&2
            if [ $alive = no ]; then
                note "$s $w: **the server exited during the run**" "run $run (see ${slog#"$ROOT"/})"
            fi
            if [ $rc -ne 0 ] || [ -z "$line" ]; then
                why="exit $rc"; [ $rc = 124 ] && why="timed out after ${RUN_TIMEOUT} s"
                note "$s $w: wsbench failed" "run $run ($why: $(tail -n 2 "$clog" | tr '\n' ' ' | cut -c1-200))"
                continue
            fi
            lost=$(field lost "$line"); reord=$(field reordered "$line"); errs=$(field errors "$line")
            bound=$(field client_bound "$line")
            [ "${lost:-0}" = 0 ] || note "$s $w: lost > 0" "run $run (lost=$lost)"
            [ "${reord:-0}" = 0 ] || note "$s $w: reordered > 0" "run $run (reordered=$reord)"
            [ "${errs:-0}" = 0 ] || note "$s $w: errors > 0" "run $run (errors=$errs)"
            [ "$bound" != yes ] || note "$s $w: client_bound=yes (wsbench, not the server, may have been the limit)" "run $run"
            v=$(field "$metric" "$line")
            [ -n "$v" ] && vals+=("$v")
            p=$(field p99_us "$line")
            [ -n "$p" ] && p99s+=("$p")
            n=$(field server_ns_per_msg "$line")
            [ -n "$n" ] && nss+=("$n")
        done
        # shellcheck disable=SC2034  # read through ${!name} in cell()
        {
            FIG[$s,$w]=$(printf '%s\n' "${vals[@]}" | median)
            P99[$s,$w]=$(printf '%s\n' "${p99s[@]}" | median)
            NS[$s,$w]=$(printf '%s\n' "${nss[@]}" | median)
        }
    done
done

# ---- the table -------------------------------------------------------------
fmt() { # a figure with thousands separators
    awk -v v="$1" 'BEGIN { if (v == "") { print "—"; exit } s = sprintf("%.0f", v); o = "";
        while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'
}
ratio() { # peer wshub -> "0.42×"
    awk -v p="$1" -v w="$2" 'BEGIN { if (p == "" || w == "" || w + 0 == 0) print "n/a"; else printf "%.2f×", p / w }'
}
cell() { # server workload table
    local v=${3}[$1,$2] wv=${3}[wshub,$2]
    local val=${!v:-} wval=${!wv:-}
    if [ "$1" = wshub ] || ! has_server wshub; then fmt "$val"
    elif [ -z "$val" ]; then echo "—"
    else echo "$(fmt "$val") ($(ratio "$val" "$wval"))"; fi
}
{
    echo "| workload | $(printf '%s | ' "${SERVER_LIST[@]}" | sed 's/ | $//') |"
    echo "|---|$(printf -- '---:|%.0s' "${SERVER_LIST[@]}")"
    for w in "${WORKLOAD_LIST[@]}"; do
        row="| $(workload_label "$w") |"
        for s in "${SERVER_LIST[@]}"; do row="$row $(cell "$s" "$w" FIG) |"; done
        echo "$row"
    done
    echo
    echo "Median of $RUNS run(s) of ${DURATION} s each (connect: 10000 connections per run). In parentheses:"
    echo "the peer's figure divided by wshub's. For rates above 1× means the peer is faster than wshub;"
    echo "for idle RSS per connection above 1× means the peer uses more memory than wshub."
    lat=0
    for w in "${WORKLOAD_LIST[@]}"; do case "$w" in broadcast*|echo|chat) lat=1 ;; esac; done
    if [ $lat = 1 ]; then
        echo
        echo "p99 latency in µs, median of the runs' p99 (lower is better; in parentheses peer/wshub,"
        echo "above 1× the peer is slower):"
        echo
        echo "| workload | $(printf '%s | ' "${SERVER_LIST[@]}" | sed 's/ | $//') |"
        echo "|---|$(printf -- '---:|%.0s' "${SERVER_LIST[@]}")"
        for w in "${WORKLOAD_LIST[@]}"; do
            case "$w" in broadcast*|echo|chat) ;; *) continue ;; esac
            row="| $(workload_label "$w" | sed 's/ (.*//') |"
            for s in "${SERVER_LIST[@]}"; do row="$row $(cell "$s" "$w" P99) |"; done
            echo "$row"
        done
    fi
    cpu=0
    for w in "${WORKLOAD_LIST[@]}"; do [ "$w" = idle ] || cpu=1; done
    if [ $cpu = 1 ]; then
        echo
        echo "Server CPU time per message in ns (connect: per connection), median of the runs; from"
        echo "/proc, so less disturbed than rates by other work on the machine (lower is better;"
        echo "in parentheses peer/wshub, above 1× the peer spends more CPU per message):"
        echo
        echo "| workload | $(printf '%s | ' "${SERVER_LIST[@]}" | sed 's/ | $//') |"
        echo "|---|$(printf -- '---:|%.0s' "${SERVER_LIST[@]}")"
        for w in "${WORKLOAD_LIST[@]}"; do
            [ "$w" = idle ] && continue
            row="| $(workload_label "$w" | sed 's/ (.*//') |"
            for s in "${SERVER_LIST[@]}"; do row="$row $(cell "$s" "$w" NS) |"; done
            echo "$row"
        done
    fi
    if [ ${#NOTE_KEYS[@]} -gt 0 ]; then
        echo
        echo "Notes:"
        echo
        for n in "${NOTE_KEYS[@]}"; do echo "- $n: ${NOTE_RUNS[$n]}"; done
    fi
} > "$OUT/table.md"
cat "$OUT/table.md"
echo "bench/run.sh: raw results in ${RESULTS#"$ROOT"/}, table in ${OUT#"$ROOT"/}/table.md, logs in ${OUT#"$ROOT"/}/logs/" >&2
