#!/usr/bin/env bash
# bench/scale.sh: wshub with --workers at scale on this machine (issue 14).
#
# Owns two measurements, each against a redis-server it starts itself on a
# free loopback port (no persistence) and a wshub it starts and stops:
#   scale    N concurrent idle chat WebSockets with pings (--ping-interval 10),
#            in 1 room and spread over 1,000 rooms, held by bench/wshold.c
#            processes (at most 19,000 connections each: the descriptor limit
#            here is 20,000 per process) from loopback sources 127.0.0.10,
#            .11, ... (at most 28,232 ephemeral ports per source); then one
#            message per room. Reports the time to connect them all, the
#            server's user-space memory per connection (the workers' VmRSS,
#            after minus before), the kernel's (slab and TCP buffer pages, for
#            both ends, which live here), and the broadcast's delivery time to
#            the last member. A worker holds at most 19,000 too, so wshub runs
#            --workers ceil(N / 19,000).
#   compare  1 process, 1 worker through Redis, and 2 workers through Redis,
#            side by side in rounds (order alternating): build/wsbench
#            broadcast 1000 members x 10 publishers (64 B binary) and echo
#            1000 connections (1 KiB), with the generator's and the server's
#            CPU (the workers, the supervisor and redis-server) over the run.
# Must never: edit bench/wsbench.c or bench/run.sh (others own them), leave a
# process behind (a trap stops what it started), or touch system settings.
#
# usage: bench/scale.sh [--conns N,N,...] [--rooms R,R,...] [--hold S]
#                       [--presence-limit N] [--in-flight N (handshakes per holder)]
#                       [--rounds R] [--duration S]
#                       [--scale-only | --compare-only]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CONNS=100000
ROOMS=1,1000
HOLD=15
ROUNDS=3
DURATION=5
PRESENCE=1000
IN_FLIGHT=64
DO_SCALE=1
DO_COMPARE=1
while [ $# -gt 0 ]; do
    case "$1" in
        --conns) CONNS=$2; shift 2 ;;
        --rooms) ROOMS=$2; shift 2 ;;
        --hold) HOLD=$2; shift 2 ;;
        --presence-limit) PRESENCE=$2; shift 2 ;;
        --in-flight) IN_FLIGHT=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --scale-only) DO_COMPARE=0; shift ;;
        --compare-only) DO_SCALE=0; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/scale.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

WSHUB=${WSHUB_BIN:-$ROOT/build/wshub}
WSBENCH=${WSBENCH_BIN:-$ROOT/build/wsbench}
OUT=$ROOT/build/scale
mkdir -p "$OUT"
[ -n "${WSHUB_BIN:-}" ] || make -s build/wshub
[ -n "${WSBENCH_BIN:-}" ] || make -s build/wsbench
cc -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o build/wshold bench/wshold.c
command -v redis-server >/dev/null || { echo "bench/scale.sh: redis-server is not installed" >&2; exit 1; }
PER_PROC=19000

PIDS=()        # everything started, stopped by the trap
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { python3 -c 'import time; print(time.monotonic_ns())'; }

REDIS_DIR=$(mktemp -d /tmp/wshub-scale-redis.XXXXXX)
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$REDIS_DIR" \
    --maxclients 10000 --protected-mode no --loglevel warning >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
REDIS_URL=redis://127.0.0.1:$REDIS_PORT

# start_wshub LOG ARGS...: sets SUP (the supervisor's or the one process's pid) and PORT.
start_wshub() {
    local log=$1; shift
    PORT=$(free_port)
    "$WSHUB" --host 127.0.0.1 --port "$PORT" --log-level warn "$@" >"$log" 2>&1 &
    SUP=$!
    PIDS+=("$SUP")
    for _ in $(seq 600); do
        kill -0 "$SUP" 2>/dev/null || { echo "wshub exited at start, see $log" >&2; exit 1; }
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz" || true)" = 200 ] && return 0
        sleep 0.1
    done
    echo "wshub not healthy within 60 s, see $log" >&2
    exit 1
}
stop_wshub() {
    kill -TERM "$SUP"
    local rc=0
    wait "$SUP" || rc=$?
    [ "$rc" = 0 ] || echo "note: wshub exited with $rc" >&2
}
server_pids() { echo "$SUP" $(pgrep -P "$SUP" || true); }
sum_rss_kb() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo $t; }
sum_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
slab_kb() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
tcp_mem_pages() { awk '/^TCP:/ {for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1)}' /proc/net/sockstat; }
stat_field() { curl -s "http://127.0.0.1:$PORT/stats" | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

RESULTS=$OUT/results-$(date -u +%Y%m%dT%H%M%SZ).txt
{
    echo "# bench/scale.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) at git $(git rev-parse --short HEAD 2>/dev/null || echo none)"
    echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), open files $(ulimit -Hn) per process, conntrack max $(cat /proc/sys/net/netfilter/nf_conntrack_max 2>/dev/null || echo none), load $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RESULTS"

# scale_case N ROOMS: one scale measurement; prints a SCALE line.
scale_case() {
    local n=$1 rooms=$2 tag="scale-$1-$2"
    local w=$(((n + PER_PROC - 1) / PER_PROC))
    local per=$(((n + w - 1) / w))
    per=$(((per + rooms - 1) / rooms * rooms))    # holder 0 owns connection r of every room r
    start_wshub "$OUT/$tag.server.log" --workers "$w" --redis "$REDIS_URL" --ping-interval 10 --idle-timeout 60 \
        --max-conns 20000 --presence-limit "$PRESENCE"
    local spids; spids=$(server_pids)
    local rss0 slab0 tcp0; rss0=$(sum_rss_kb $spids); slab0=$(slab_kb); tcp0=$(tcp_mem_pages)
    local hp=() outs=() left=$n i=0
    while [ "$left" -gt 0 ]; do
        local c=$((left < per ? left : per))
        : >"$OUT/$tag.h$i.out"
        build/wshold "127.0.0.$((10 + i))" 127.0.0.1 "$PORT" "$c" "$rooms" $((i * per)) $((i == 0)) "$IN_FLIGHT" \
            >"$OUT/$tag.h$i.out" 2>&1 &
        hp+=("$!"); PIDS+=("$!"); outs+=("$OUT/$tag.h$i.out")
        left=$((left - c)); i=$((i + 1))
    done
    local deadline=$((SECONDS + 900)) ok=0
    while [ $SECONDS -lt $deadline ]; do
        if grep -q '^fail' "${outs[@]}" 2>/dev/null; then break; fi
        if [ "$(cat "${outs[@]}" | grep -c '^open')" = "${#outs[@]}" ]; then ok=1; break; fi
        sleep 0.5
    done
    if [ $ok = 0 ]; then
        echo "SCALE conns=$n rooms=$rooms workers=$w FAILED: $(grep -h '^fail' "${outs[@]}" | head -3 | tr '\n' ';') open_websockets=$(stat_field 'd["connections"]["websocket"]') closed=$(stat_field 'd["closed"]' | tr -d ' ')" | tee -a "$RESULTS"
        kill -TERM "${hp[@]}" 2>/dev/null || true
        wait "${hp[@]}" 2>/dev/null || true
        stop_wshub
        return 1
    fi
    local t0 t1
    t0=$(cat "${outs[@]}" | awk '$1 == "start" {print $2}' | sort -n | head -1)
    t1=$(cat "${outs[@]}" | awk '$1 == "open" {print $3}' | sort -n | tail -1)
    sleep "$HOLD"    # every connection pinged (--ping-interval 10) and answered
    local rss1 slab1 tcp1 hrss pings ws
    rss1=$(sum_rss_kb $spids); slab1=$(slab_kb); tcp1=$(tcp_mem_pages); hrss=$(sum_rss_kb "${hp[@]}")
    pings=$(stat_field 'd["pings_sent"]'); ws=$(stat_field 'd["connections"]["websocket"]')
    kill -USR1 "${hp[@]}"
    deadline=$((SECONDS + 150))
    while [ $SECONDS -lt $deadline ] && [ "$(cat "${outs[@]}" | grep -c '^recv')" != "${#outs[@]}" ]; do sleep 0.2; done
    local sent got last
    sent=$(awk '$1 == "sent" {print $2}' "${outs[0]}")
    got=$(cat "${outs[@]}" | awk '$1 == "recv" {s += $2} END {print s + 0}')
    last=$(cat "${outs[@]}" | awk '$1 == "recv" {print $3}' | sort -n | tail -1)
    kill -TERM "${hp[@]}" 2>/dev/null || true
    wait "${hp[@]}" 2>/dev/null || true
    stop_wshub
    awk -v n="$n" -v rooms="$rooms" -v w="$w" -v h="${#hp[@]}" -v t0="$t0" -v t1="$t1" -v rss0="$rss0" \
        -v rss1="$rss1" -v slab0="$slab0" -v slab1="$slab1" -v tcp0="$tcp0" -v tcp1="$tcp1" -v hrss="$hrss" \
        -v pings="$pings" -v ws="$ws" -v sent="$sent" -v got="$got" -v last="$last" 'BEGIN {
        printf "SCALE conns=%d rooms=%d workers=%d holders=%d open_websockets=%d connect_s=%.1f connect_per_s=%.0f", n, rooms, w, h, ws, (t1 - t0) / 1e9, n / ((t1 - t0) / 1e9)
        printf " server_rss_per_conn=%.0f server_rss_mb=%.0f kernel_slab_per_conn=%.0f tcp_buffers_per_conn=%.0f holder_rss_per_conn=%.0f pings_sent=%d", (rss1 - rss0) * 1024 / n, rss1 / 1024, (slab1 - slab0) * 1024 / n, (tcp1 - tcp0) * 4096 / n, hrss * 1024 / n, pings
        printf " broadcast_received=%d/%d broadcast_last_ms=%.1f\n", got, n, got ? (last - sent) / 1e6 : -1 }' | tee -a "$RESULTS"
}

if [ $DO_SCALE = 1 ]; then
    for n in ${CONNS//,/ }; do
        for r in ${ROOMS//,/ }; do
            scale_case "$n" "$r" || true
        done
    done
fi

# compare_case CONFIG WORKLOAD ROUND: one wsbench run; prints a COMPARE line.
compare_case() {
    local cfg=$1 wl=$2 round=$3 args=()
    case "$cfg" in
        1-process) args=() ;;
        1-worker-redis) args=(--redis "$REDIS_URL") ;;
        2-workers-redis) args=(--workers 2 --redis "$REDIS_URL") ;;
    esac
    start_wshub "$OUT/compare-$cfg-$wl-$round.server.log" "${args[@]}" --rate-limit 0 --binary-rate-limit 0 \
        --binary-byte-rate 0 --max-binary 1m --max-conns 19000
    local spids; spids="$(server_pids) $([ "$cfg" = 1-process ] || echo "$REDIS_PID")"
    local wargs
    case "$wl" in
        broadcast) wargs=(broadcast --members 1000 --publishers 10 --size 64 --path /ws/bench) ;;
        echo) wargs=(echo --conns 1000 --inflight 1 --size 1024 --path /echo) ;;
    esac
    local c0 c1 line rc=0 tick; tick=$(getconf CLK_TCK)
    c0=$(sum_ticks $spids)
    line=$(timeout 120 "$WSBENCH" "${wargs[@]}" --duration "$DURATION" --warmup 2 --host 127.0.0.1 --port "$PORT" \
        2>"$OUT/compare-$cfg-$wl-$round.client.log" | grep -m1 '^RESULT') || rc=$?
    c1=$(sum_ticks $spids)
    stop_wshub
    local total=$((DURATION + 2))
    echo "COMPARE config=$cfg workload=$wl round=$round exit=$rc server_all_cpu_pct=$(( (c1 - c0) * 100 / tick / total )) ${line#RESULT }" | tee -a "$RESULTS"
}

if [ $DO_COMPARE = 1 ]; then
    configs=(1-process 1-worker-redis 2-workers-redis)
    for wl in broadcast echo; do
        for round in $(seq "$ROUNDS"); do
            order=("${configs[@]}")
            [ $((round % 2)) = 0 ] && order=(2-workers-redis 1-worker-redis 1-process)
            for cfg in "${order[@]}"; do compare_case "$cfg" "$wl" "$round"; done
        done
    done
    echo "# medians over $ROUNDS rounds (rate: deliveries/s for broadcast, round trips/s for echo; cpu in % of one core, over the warmup and the run for the server)" | tee -a "$RESULTS"
    for wl in broadcast echo; do
        for cfg in 1-process 1-worker-redis 2-workers-redis; do
            grep "^COMPARE config=$cfg workload=$wl " "$RESULTS" | awk -v cfg="$cfg" -v wl="$wl" '
                function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                               return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
                { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1], NR] = kv[2] } n = NR
                  r[NR] = v["rate", NR]; g[NR] = v["client_cpu_pct", NR]; s[NR] = v["server_all_cpu_pct", NR]; p[NR] = v["p99_us", NR]
                  bad += v["lost", NR] + v["reordered", NR] + v["errors", NR] }
                END { if (n) printf "MEDIAN workload=%s config=%s rate=%.0f generator_cpu_pct=%.0f server_cpu_pct=%.0f p99_us=%.0f lost_reordered_errors=%d rounds=%d\n", wl, cfg, med(r, n), med(g, n), med(s, n), med(p, n), bad, n }'
        done
    done | tee -a "$RESULTS"
fi
rm -rf "$REDIS_DIR"
echo "results in ${RESULTS#"$ROOT"/}" >&2
