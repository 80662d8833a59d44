#!/usr/bin/env bash
# Profiles servers side by side under one wsbench workload: what each does
# per message, measured the same way, one after the other.
#
#   bench/profile.sh [--only wshub,uws,wshub-LABEL...] [--seconds S] [--rounds R]
#                    [--stat-only] [--strace]
#                    [--workload "echo --conns 100 --size 32 --path /echo"]
#
# For each server (pinned to core 0, wsbench to core 1, as in bench/run.sh)
# separate runs of the workload, each measured for S seconds (default 3)
# after 1.5 s of warm-up, the messages of the window counted by wsbench
# between two marks (SIGUSR1) sent at the window's edges:
#   1. perf stat (switched on and off through its control fifos), R rounds
#      (default 3) with the servers taking turns, medians:
#      the server's task clock, core 0's CPU clock, and every system call it
#      made (syscall tracepoints), per message;
#   2. perf record of the exit tracepoints of recvfrom/read, sendto/sendmsg/
#      writev and epoll_wait: the sizes of reads and writes and the events
#      per wake-up, as distributions;
#   3. perf record -g (CPU-clock sampling): where the server's time goes,
#      kernel and user, by symbol and by system call.
# wshub-LABEL is another wshub build, from WSHUB_BIN_LABEL (as in bench/run.sh).
# --stat-only: only the perf stat rounds.
# With --strace also strace -c -f (slows the server a lot: counts only), and
# the socket options each server sets on an accepted socket (strace of the
# first connections).
#
# Output: a report on stdout and in build/bench/profile/report.md; the raw
# perf data in build/bench/profile/. Needs perf (Debian's linux-perf) and,
# for the tracepoints, root or kernel.perf_event_paranoid <= -1 (set when
# run as root). UWS_BIN as in bench/run.sh; WSHUB_BIN, WSBENCH_BIN override.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SERVERS="wshub,uws"
SECONDS_=3
ROUNDS=3
WORKLOAD="echo --conns 100 --inflight 1 --size 32 --path /echo"
STRACE=0
STAT_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --only) SERVERS=$2; shift 2 ;;
        --seconds) SECONDS_=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --workload) WORKLOAD=$2; shift 2 ;;
        --strace) STRACE=1; shift ;;
        --stat-only) STAT_ONLY=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/profile.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$SECONDS_" in ''|*[!0-9]*|0) echo "bench/profile.sh: --seconds wants a positive integer" >&2; exit 2 ;; esac
case "$ROUNDS" in ''|*[!0-9]*|0) echo "bench/profile.sh: --rounds wants a positive integer" >&2; exit 2 ;; esac
IFS=, read -r -a SERVER_LIST <<< "$SERVERS"

OUT=$ROOT/build/bench/profile
mkdir -p "$OUT"
WSHUB_BIN=${WSHUB_BIN:-$ROOT/build/wshub}
WSBENCH_BIN=${WSBENCH_BIN:-$ROOT/build/wsbench}
LWS_BIN=$ROOT/build/bench/lws-server
[ -x "$WSBENCH_BIN" ] || make --no-print-directory -s build/wsbench >&2
if ! command -v perf >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
    else
        echo "bench/profile.sh: needs perf: sudo apt-get install -y linux-perf" >&2; exit 1
    fi
fi
if [ "$(id -u)" = 0 ] && [ "$(cat /proc/sys/kernel/perf_event_paranoid)" -gt -1 ]; then
    sysctl -q kernel.perf_event_paranoid=-1 || true
fi
if [ $STRACE = 1 ] && ! command -v strace >/dev/null; then
    echo "bench/profile.sh: --strace needs strace" >&2; exit 1
fi

SERVER_PID=""; TRACEE=""
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    [ -z "$TRACEE" ] || kill -TERM "$TRACEE" 2>/dev/null || true
    TRACEE=""
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
start_server() { # start_server NAME PORT [wrapper...]
    local name=$1 port=$2 cmd
    shift 2
    case "$name" in
        wshub|wshub-*)
               local bin=$WSHUB_BIN v=WSHUB_BIN_${name#wshub-}
               [ "$name" = wshub ] || bin=${!v:-}
               [ -x "$bin" ] || { echo "bench/profile.sh: $name needs $v" >&2; return 1; }
               cmd=("$bin" --host 127.0.0.1 --port "$port" --rate-limit 0 --binary-rate-limit 0
                    --binary-byte-rate 0 --max-binary 1m --max-conns 50000 --log-level warn) ;;
        uws)   [ -x "${UWS_BIN:-}" ] || { echo "bench/profile.sh: uws needs UWS_BIN (see bench/run.sh)" >&2; return 1; }
               cmd=("$UWS_BIN" "$port") ;;
        lws)   cmd=("$LWS_BIN" "$port") ;;
        node)  cmd=(node bench/peers/node/server.js "$port") ;;
        *) echo "bench/profile.sh: unknown server $name" >&2; return 1 ;;
    esac
    taskset -c 0 "$@" "${cmd[@]}" >"$OUT/$name.server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            # under strace: the server is strace's child
            [ "${1:-}" != strace ] || TRACEE=$(pgrep -P "$SERVER_PID" | head -1 || true)
            return 0
        fi
        sleep 0.05
    done
    return 1
}
# load NAME PORT: wsbench in the background for warm-up + S + 1 s; its RESULT in $OUT/NAME.load.out
load() {
    read -r -a wargs <<< "$WORKLOAD"
    taskset -c 1 "$WSBENCH_BIN" "${wargs[@]}" --host 127.0.0.1 --port "$2" --warmup 1 \
        --duration $((SECONDS_ + 3)) >"$OUT/$1.load.out" 2>"$OUT/$1.load.err" &
    LOAD_PID=$!
}
field() { awk -v k="$1" '{for (i = 1; i <= NF; i++) { n = index($i, "="); if (n && substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' <<< "$2"; }
# messages in the perf window: wsbench's count between the two marks (SIGUSR1) sent around it
msgs_of() { grep 'wsbench: mark' "$OUT/$1.load.err" | sed 's/.*count=\([0-9]*\).*/\1/' | awk 'NR == 1 { a = $1 } NR == 2 { print $1 - a }'; }

SYSCALLS="recvfrom read readv recvmsg sendto sendmsg write writev sendfile64 epoll_wait epoll_pwait epoll_ctl accept4 close clock_gettime setsockopt shutdown"
declare -A MSGS

report=$OUT/report.md
{
echo "# bench/profile.sh: $WORKLOAD"
echo
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg); server on core 0, wsbench on core 1; windows of $SECONDS_ s."
} > "$report"

EVS="task-clock,context-switches"
for c in $SYSCALLS; do
    [ -d "/sys/kernel/tracing/events/syscalls/sys_enter_$c" ] || [ -d "/sys/kernel/debug/tracing/events/syscalls/sys_enter_$c" ] &&
        EVS="$EVS,syscalls:sys_enter_$c"
done
# 1. perf stat: clocks and system calls, in rounds (the order reversed every other round)
for r in $(seq "$ROUNDS"); do
    order=("${SERVER_LIST[@]}")
    if [ $((r % 2)) = 0 ]; then order=(); for ((i = ${#SERVER_LIST[@]} - 1; i >= 0; i--)); do order+=("${SERVER_LIST[i]}"); done; fi
    for s in "${order[@]}"; do
        echo "bench/profile.sh: $s: perf stat, round $r" >&2
        port=$(free_port); start_server "$s" "$port" || continue
        load "$s.stat.$r" "$port"; sleep 1.5
        # both counters start disabled and are switched on and off through
        # control fifos, with a mark from wsbench at each switch
        rm -f "$OUT"/ctl.* ; mkfifo "$OUT/ctl.p" "$OUT/ack.p" "$OUT/ctl.c" "$OUT/ack.c"
        perf stat -x, -D -1 --control "fifo:$OUT/ctl.p,$OUT/ack.p" -e "$EVS" -p "$SERVER_PID" \
            -o "$OUT/$s.stat.$r.txt" -- sleep $((SECONDS_ + 30)) >/dev/null 2>&1 &
        pp=$!
        perf stat -x, -D -1 --control "fifo:$OUT/ctl.c,$OUT/ack.c" -e cpu-clock -C 0 \
            -o "$OUT/$s.core0.$r.txt" -- sleep $((SECONDS_ + 30)) >/dev/null 2>&1 &
        pc=$!
        exec 5>"$OUT/ctl.p" 6<"$OUT/ack.p" 7>"$OUT/ctl.c" 8<"$OUT/ack.c"
        echo enable >&5; echo enable >&7; read -r -t 10 _ <&6 || true; read -r -t 10 _ <&8 || true
        kill -USR1 "$LOAD_PID" 2>/dev/null || true
        sleep "$SECONDS_"
        echo disable >&5; echo disable >&7; read -r -t 10 _ <&6 || true; read -r -t 10 _ <&8 || true
        kill -USR1 "$LOAD_PID" 2>/dev/null || true
        exec 5>&- 6<&- 7>&- 8<&-
        kill -INT "$pp" "$pc" 2>/dev/null || true
        wait "$pp" || true; wait "$pc" || true; wait "$LOAD_PID" || true
        rm -f "$OUT"/ctl.* "$OUT"/ack.*
        stop_server
        MSGS[$s,$r]=$(msgs_of "$s.stat.$r")
    done
done

for s in "${SERVER_LIST[@]}"; do
    [ $STAT_ONLY = 0 ] || break
    echo "bench/profile.sh: $s: sizes and profile" >&2
    # 2. sizes: exit tracepoints of reads, writes and waits
    port=$(free_port); start_server "$s" "$port" || continue
    load "$s.sizes" "$port"; sleep 1.5
    tps=""
    for c in recvfrom read sendto sendmsg writev epoll_wait epoll_pwait; do
        [ -d "/sys/kernel/tracing/events/syscalls/sys_exit_$c" ] || [ -d "/sys/kernel/debug/tracing/events/syscalls/sys_exit_$c" ] &&
            tps="$tps${tps:+,}syscalls:sys_exit_$c"
    done
    perf record -q -e "$tps" -p "$SERVER_PID" -o "$OUT/$s.sizes.data" -- sleep "$SECONDS_" >/dev/null 2>&1
    wait "$LOAD_PID" || true
    stop_server
    perf script -i "$OUT/$s.sizes.data" -F event,trace 2>/dev/null |
        awk '{ ev = $1; sub(/:$/, "", ev); sub(/.*sys_exit_/, "", ev); r = $NF; print ev, r }' > "$OUT/$s.sizes.txt" || true

    # 3. perf record -g: where the time goes
    port=$(free_port); start_server "$s" "$port" || continue
    load "$s.prof" "$port"; sleep 1.5
    perf record -q -g -F 2999 -p "$SERVER_PID" -o "$OUT/$s.prof.data" -- sleep "$SECONDS_" >/dev/null 2>&1
    wait "$LOAD_PID" || true
    stop_server

    # --strace: counts, and the socket options of accepted sockets
    if [ $STRACE = 1 ]; then
        port=$(free_port); start_server "$s" "$port" strace -f -qq -e trace=setsockopt,getsockopt,accept,accept4,epoll_ctl,fcntl,ioctl -o "$OUT/$s.sockopts.txt" || continue
        "$WSBENCH_BIN" echo --conns 3 --path /echo --host 127.0.0.1 --port "$port" --duration 0.3 --warmup 0 >/dev/null 2>&1 || true
        stop_server
        port=$(free_port); start_server "$s" "$port" || continue
        load "$s.strace" "$port"; sleep 1.5
        timeout $((SECONDS_ + 1)) strace -c -f -p "$SERVER_PID" -o "$OUT/$s.strace-c.txt" >/dev/null 2>&1 &
        sp=$!; sleep "$SECONDS_"; kill -INT "$sp" 2>/dev/null || true; wait "$sp" 2>/dev/null || true
        wait "$LOAD_PID" || true
        stop_server
    fi
done

# the report: pipes into head and greps that find nothing are not failures
set +e +o pipefail
per_msg() { awk -v v="$1" -v m="$2" 'BEGIN { if (m > 0 && v != "") printf "%.2f", v / m; else print "—" }'; }
stat_val() { # stat_val SERVER EVENT ROUND -> count
    awk -F, -v e="$2" '$3 == e || $3 == e ":u" { print $1; exit }' "$OUT/$1.stat.$3.txt" 2>/dev/null | sed 's/<not counted>//'
}
median() { sort -g | awk 'NF { v[++n] = $1 } END { if (!n) exit; if (n % 2) print v[(n + 1) / 2]; else print (v[n / 2] + v[n / 2 + 1]) / 2 }'; }
# permsg SERVER SCALE EXPR: median over rounds of (value * SCALE / messages); EXPR is a
# function name printing the round's value
permsg() {
    local s=$1 scale=$2 fn=$3 r v
    for r in $(seq "$ROUNDS"); do
        v=$("$fn" "$s" "$r")
        awk -v v="$v" -v m="${MSGS[$s,$r]:-0}" -v k="$scale" 'BEGIN { if (m > 0 && v != "") printf "%.4f\n", v * k / m }'
    done | median
}
v_task() { stat_val "$1" task-clock "$2"; }
v_core() { awk -F, '$3 ~ /cpu-clock/ { print $1; exit }' "$OUT/$1.core0.$2.txt" 2>/dev/null; }
v_cs() { stat_val "$1" context-switches "$2"; }
v_all() { local t=0 c v; for c in $SYSCALLS; do v=$(stat_val "$1" "syscalls:sys_enter_$c" "$2"); t=$((t + ${v:-0})); done; echo $t; }
v_sys() { local v; v=$(stat_val "$1" "syscalls:sys_enter_$SYS" "$2"); echo "${v:-0}"; }
rate_of() { local r; for r in $(seq "$ROUNDS"); do awk -v m="${MSGS[$1,$r]:-0}" -v s="$SECONDS_" 'BEGIN { if (m > 0) printf "%.0f\n", m / s }'; done | median; }
f0() { awk -v v="$1" 'BEGIN { if (v == "") print "—"; else printf "%.0f", v }'; }
f2() { awk -v v="$1" 'BEGIN { if (v == "") print "—"; else printf "%.2f", v }'; }
{
echo
echo "## Per message (perf stat; messages: wsbench's count between marks at the window's edges; medians of $ROUNDS round(s))"
echo
printf '| | %s |\n' "$(printf '%s | ' "${SERVER_LIST[@]}" | sed 's/ | $//')"
printf '|---|%s\n' "$(printf -- '---:|%.0s' "${SERVER_LIST[@]}")"
row="| messages/s in the window |"; for s in "${SERVER_LIST[@]}"; do row="$row $(f0 "$(rate_of "$s")") |"; done; echo "$row"
row="| server task clock, ns/msg |"; for s in "${SERVER_LIST[@]}"; do row="$row $(f0 "$(permsg "$s" 1e6 v_task)") |"; done; echo "$row"
row="| core 0 CPU clock (server + softirq + anything else), ns/msg |"; for s in "${SERVER_LIST[@]}"; do row="$row $(f0 "$(permsg "$s" 1e6 v_core)") |"; done; echo "$row"
row="| context switches/msg |"; for s in "${SERVER_LIST[@]}"; do row="$row $(f2 "$(permsg "$s" 1 v_cs)") |"; done; echo "$row"
row="| system calls/msg, all |"; for s in "${SERVER_LIST[@]}"; do row="$row $(f2 "$(permsg "$s" 1 v_all)") |"; done; echo "$row"
for SYS in $SYSCALLS; do
    any=0; row="| $SYS/msg |"
    for s in "${SERVER_LIST[@]}"; do v=$(permsg "$s" 1 v_sys); awk -v v="$v" 'BEGIN { exit !(v > 0.0005) }' && any=1; row="$row $(f2 "$v") |"; done
    [ $any = 1 ] && echo "$row"
done
echo
echo "## Sizes (perf record of the exit tracepoints over the window)"
echo
echo "Per server: calls, then the returned value's distribution (bytes for reads and writes, events for waits)."
for s in "${SERVER_LIST[@]}"; do
    [ -s "$OUT/$s.sizes.txt" ] || continue
    echo
    echo "### $s"
    echo
    echo '```'
    for e in $(awk '{ print $1 }' "$OUT/$s.sizes.txt" | sort -u); do
        awk -v e="$e" '$1 == e { print $2 + 0 }' "$OUT/$s.sizes.txt" | sort -n |
            awk -v e="$e" '{ if ($1 < 0) neg++; else { a[++k] = $1; t += $1 } }
                END { printf "%-11s %8d calls, %6d returned -1 (EAGAIN etc.)", e, NR, neg;
                      if (k) printf ", mean %.1f, p10 %d, p50 %d, p90 %d, p99 %d, max %d", t / k, a[int(k * .1) + 1], a[int(k * .5) + 1], a[int(k * .9) + 1], a[int(k * .99) + 1], a[k];
                      printf "\n" }'
    done
    echo '```'
done
echo
echo "## Where the time goes (perf record -g, CPU-clock samples of the server)"
for s in "${SERVER_LIST[@]}"; do
    [ -s "$OUT/$s.prof.data" ] || continue
    echo
    echo "### $s"
    echo
    echo '```'
    echo "by object (self):"
    perf report -i "$OUT/$s.prof.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -6
    echo "by system call and user entry (children, inclusive):"
    perf report -i "$OUT/$s.prof.data" --children --sort sym --stdio -g none 2>/dev/null |
        grep -E '^ +[0-9].*(__x64_sys_|do_syscall_64|entry_SYSCALL|ksys_|\[\.\] )' | head -25
    echo "top symbols (self):"
    perf report -i "$OUT/$s.prof.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -30
    echo '```'
done
if [ $STRACE = 1 ]; then
    echo
    echo "## strace -c -f over $SECONDS_ s (strace slows the server; compare counts, not times)"
    for s in "${SERVER_LIST[@]}"; do
        [ -s "$OUT/$s.strace-c.txt" ] || continue
        echo; echo "### $s"; echo; echo '```'; head -20 "$OUT/$s.strace-c.txt"; echo '```'
        echo; echo "Socket options and epoll registration of the first connections:"; echo; echo '```'
        grep -E 'setsockopt|epoll_ctl|accept' "$OUT/$s.sockopts.txt" | sed 's/^[0-9]* *//' | head -14; echo '```'
    done
fi
} >> "$report"
cat "$report"
