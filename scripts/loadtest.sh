#!/usr/bin/env bash
# loadtest.sh: a chat-room load test of a running wshub, with websocat clients.
#
# Starts CLIENTS websocat clients in one room (nicks lt1..ltN), waits until
# every one has its welcome, has each send MESSAGES chat lines INTERVAL
# seconds apart, each line carrying a unique token "lt-<client>-<n> <run id>",
# then waits until every client has received every line of the run (senders
# see their own lines) or a timeout, closes the clients and prints, per client
# and in total: lines sent, `message` events of this run received, expected
# (CLIENTS x MESSAGES for every client), missing, duplicates and elapsed time.
#
# Exit status: 0 all delivered once; 1 a client could not join, or a line was
# missing or duplicated; 2 bad usage; 3 websocat is not in PATH; 130/143 when
# interrupted (INT/TERM). Bash 4.1+ (5 for the builtin clock), coreutils,
# grep and awk (mawk will do); no jq, no python.
#
# websocat (https://github.com/vi/websocat, 1.x) is run exactly as
#
#     websocat -t --linemode-strip-newlines [-k] ws[s]://HOST:PORT/ws/ROOM?nick=ltK
#
#   -t                         stdin lines go out as WebSocket text messages
#   --linemode-strip-newlines  without it websocat 1.x keeps each line's "\n"
#                              in the message, and wshub would relay it
#   -k                         (with our -k) accept any TLS certificate, for a
#                              test server with a self-signed one; without it
#                              a wss:// server's certificate is verified
#                              (SSL_CERT_FILE can name a CA to trust)
#
# with stdin a fifo that the script holds open until the end (websocat sends a
# close frame at stdin EOF, waits for the server's close and exits) and stdout
# a file: websocat prints each received text message (one JSON event) as one
# line. No other option is used; tests/standins/websocat, the stand-in the
# tests run, implements exactly these and refuses any other, so keep the two
# in step.
#
# Flood control: wshub's default --rate-limit is 20 lines/s per connection
# (burst 40). The default interval (0.1 s, 10 lines/s) stays under it; for
# intervals under 0.05 s with more than 40 messages start the server with
# --rate-limit 0 (or a higher limit), or the lines over it are dropped and
# show up here as missing.

set -u
export LC_ALL=C

PROG=${0##*/}
URL=ws://127.0.0.1:8080
ROOM=loadtest
CLIENTS=10
MESSAGES=20
INTERVAL=0.1
INSECURE=()        # (-k) when the server's certificate is not checked
JOIN_TIMEOUT=10    # seconds for every client to get its welcome
DRAIN_TIMEOUT=10   # seconds after the last send (plus MESSAGES x INTERVAL)
CLOSE_TIMEOUT=5    # seconds for the clients to exit after their stdin closed
POLL=0.1           # seconds between progress checks

usage() {
    cat <<EOF
Usage: $PROG [-u ws://HOST:PORT] [-r ROOM] [-c CLIENTS] [-m MESSAGES] [-i INTERVAL] [-k]
       $PROG -h | --help

Load test of a running wshub chat room with websocat clients: CLIENTS clients
(nicks lt1..ltN) join ROOM, each sends MESSAGES lines INTERVAL seconds apart,
and every client must receive every line of the run exactly once.

  -u URL       server, ws://HOST:PORT or wss://HOST:PORT  (default $URL)
  -r ROOM      chat room                                  (default $ROOM)
  -c CLIENTS   number of clients, a positive integer      (default $CLIENTS)
  -m MESSAGES  lines each client sends, positive integer  (default $MESSAGES)
  -i INTERVAL  seconds between a client's lines, >= 0     (default $INTERVAL)
  -k           wss://: accept any certificate (websocat -k), for a test
               server; otherwise it is verified (SSL_CERT_FILE=CA.pem
               trusts a private CA)
  -h, --help   show this help and exit

Each client must receive CLIENTS x MESSAGES message events (senders see their
own). Waits up to ${JOIN_TIMEOUT} s for the joins and up to ${DRAIN_TIMEOUT} s + MESSAGES x INTERVAL
after the last send for the deliveries.

wshub's default --rate-limit is 20 lines/s per connection with a burst of 40:
an INTERVAL under 0.05 with more than 40 MESSAGES needs the server started
with --rate-limit 0 (or a higher limit).

Exit status: 0 every line delivered once; 1 a client could not join, or lines
were missing or duplicated; 2 bad usage; 3 websocat not found in PATH.

Needs websocat 1.x in PATH: a release binary from
https://github.com/vi/websocat/releases, or 'cargo install websocat'.
EOF
}

die_usage() {
    printf '%s: %s\n' "$PROG" "$1" >&2
    printf "Try '%s --help'.\n" "$PROG" >&2
    exit 2
}

# ------------------------------------------------------------ arguments

while (($#)); do
    case $1 in
        -h|--help) usage; exit 0 ;;
        -k) INSECURE=(-k); shift ;;
        -u|-r|-c|-m|-i)
            (($# >= 2)) || die_usage "option $1 needs a value"
            case $1 in
                -u) URL=$2 ;;
                -r) ROOM=$2 ;;
                -c) CLIENTS=$2 ;;
                -m) MESSAGES=$2 ;;
                -i) INTERVAL=$2 ;;
            esac
            shift 2 ;;
        -u*) URL=${1#-u}; shift ;;
        -r*) ROOM=${1#-r}; shift ;;
        -c*) CLIENTS=${1#-c}; shift ;;
        -m*) MESSAGES=${1#-m}; shift ;;
        -i*) INTERVAL=${1#-i}; shift ;;
        -*) die_usage "unknown option: $1" ;;
        *) die_usage "unexpected argument: $1" ;;
    esac
done

[[ $URL =~ ^wss?://[^/?#[:space:]]+/?$ ]] \
    || die_usage "-u wants ws://HOST:PORT (or wss://), got '$URL'"
URL=${URL%/}
[[ -n $ROOM && $ROOM =~ ^[^/?#%[:space:][:cntrl:]]+$ ]] \
    || die_usage "-r wants a room name without spaces, '/', '?', '#' or '%', got '$ROOM'"
[[ $CLIENTS =~ ^[1-9][0-9]{0,5}$ ]] || die_usage "-c wants a positive integer, got '$CLIENTS'"
[[ $MESSAGES =~ ^[1-9][0-9]{0,6}$ ]] || die_usage "-m wants a positive integer, got '$MESSAGES'"
[[ $INTERVAL =~ ^([0-9]{1,6}(\.[0-9]*)?|\.[0-9]+)$ ]] \
    || die_usage "-i wants a number of seconds (such as 0.1), got '$INTERVAL'"

if ! command -v websocat >/dev/null 2>&1; then
    cat >&2 <<EOF
$PROG: websocat not found in PATH.
websocat is not packaged in Debian 12. Get a release binary from
https://github.com/vi/websocat/releases (for example websocat.x86_64-unknown-linux-musl,
renamed to websocat, made executable and put in a directory of your PATH), or
build it with 'cargo install websocat'.
EOF
    exit 3
fi

# ------------------------------------------------------------ helpers

# now_us: microseconds since the epoch (builtin clock on bash 5).
if [[ -n ${EPOCHREALTIME:-} ]]; then
    now_us() { local t=${EPOCHREALTIME//[.,]/}; printf -v NOW '%d' "$((10#$t))"; }
else
    now_us() { NOW=$(date +%s%6N); }
fi

# secs US: prints microseconds as seconds with two decimals.
secs() { printf '%d.%02d' "$(($1 / 1000000))" "$(($1 % 1000000 / 10000))"; }

# interval in microseconds, and the deadlines that depend on it
INTERVAL_US=$(awk -v i="$INTERVAL" 'BEGIN { printf "%d", i * 1000000 + 0.5 }')
SEND_US=$((MESSAGES * INTERVAL_US))
printf -v NAP_INTERVAL '%d.%06d' "$((INTERVAL_US / 1000000))" "$((INTERVAL_US % 1000000))"

if ((INTERVAL_US < 50000 && MESSAGES > 40)); then
    printf '%s: warning: -i %s is over 20 lines/s per client: a server with the default\n' \
        "$PROG" "$INTERVAL" >&2
    printf '%s: warning: --rate-limit 20 drops lines past the burst of 40; run it with --rate-limit 0\n' \
        "$PROG" >&2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wshub-loadtest.XXXXXX") || { echo "$PROG: mktemp failed" >&2; exit 1; }
WS_PIDS=()
SENDER_PIDS=()

# shellcheck disable=SC2317  # run from the traps
cleanup() {
    trap - EXIT INT TERM
    [[ -d $TMP ]] && : >"$TMP/stop"
    local pid
    for pid in "${SENDER_PIDS[@]}" "${WS_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    [[ -n ${SLEEP_FD:-} ]] && exec {SLEEP_FD}>&-
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# nap SECONDS: sleep without a fork (read with a timeout on a fifo that no one
# writes to), so that many senders can pace themselves cheaply.
mkfifo "$TMP/nap" || exit 1
exec {SLEEP_FD}<>"$TMP/nap"
rm -f "$TMP/nap"
nap() { read -r -t "$1" -u "$SLEEP_FD" _ 2>/dev/null; return 0; }

now_us
START_US=$NOW
RUN_ID="run$START_US-$$"

printf 'wshub load test: %s room %s, %d clients x %d messages, interval %s s, run %s\n' \
    "$URL" "$ROOM" "$CLIENTS" "$MESSAGES" "$INTERVAL" "$RUN_ID"

# ------------------------------------------------------------ clients

# sender K: holds client K's stdin fifo open; after $TMP/go sends MESSAGES
# lines, records how many in sent.K, then keeps stdin open until $TMP/stop.
sender() {
    local k=$1 n sent=0
    trap - EXIT INT TERM
    trap '' PIPE
    exec 3>"$TMP/in.$k" || exit 1
    until [[ -e $TMP/go || -e $TMP/stop ]]; do nap 0.02; done
    if [[ ! -e $TMP/stop ]]; then
        for ((n = 1; n <= MESSAGES; n++)); do
            printf 'lt-%d-%d %s\n' "$k" "$n" "$RUN_ID" >&3 2>/dev/null || break
            sent=$n
            ((n < MESSAGES && INTERVAL_US > 0)) && nap "$NAP_INTERVAL"
        done
    fi
    echo "$sent" >"$TMP/sent.$k"
    until [[ -e $TMP/stop ]]; do nap 0.05; done
    exec 3>&-
}

for ((k = 1; k <= CLIENTS; k++)); do
    mkfifo "$TMP/in.$k" || exit 1
    : >"$TMP/out.$k"
    websocat -t --linemode-strip-newlines ${INSECURE[@]+"${INSECURE[@]}"} "$URL/ws/$ROOM?nick=lt$k" \
        <"$TMP/in.$k" >"$TMP/out.$k" 2>"$TMP/err.$k" {SLEEP_FD}<&- &
    WS_PIDS[k]=$!
    sender "$k" &
    SENDER_PIDS[k]=$!
done

# ------------------------------------------------------------ joins

# Wait until every client has its welcome, or has exited, or the timeout.
declare -a JOINED=() DEAD=()
now_us
join_deadline=$((NOW + (JOIN_TIMEOUT + CLIENTS / 10) * 1000000))
joined=0
while :; do
    pend=()
    for ((k = 1; k <= CLIENTS; k++)); do
        [[ -z ${JOINED[k]:-} && -z ${DEAD[k]:-} ]] && pend+=("$TMP/out.$k")
    done
    if ((${#pend[@]})); then
        while IFS= read -r f; do
            JOINED[${f##*.}]=1
            joined=$((joined + 1))
        done < <(grep -l -F -e '"type":"welcome"' -- "${pend[@]}" 2>/dev/null)
    fi
    pending=0
    for ((k = 1; k <= CLIENTS; k++)); do
        [[ -n ${JOINED[k]:-} || -n ${DEAD[k]:-} ]] && continue
        if kill -0 "${WS_PIDS[k]}" 2>/dev/null; then
            pending=$((pending + 1))
        elif grep -q -F -e '"type":"welcome"' -- "$TMP/out.$k" 2>/dev/null; then
            JOINED[k]=1     # joined, then exited: the deliveries will tell
            joined=$((joined + 1))
        else
            DEAD[k]=1
        fi
    done
    now_us
    ((pending == 0 || NOW >= join_deadline)) && break
    nap "$POLL"
done
JOIN_US=$((NOW - START_US))

if ((joined < CLIENTS)); then
    printf '%s: FAILED: %d of %d clients could not join room %s at %s\n' \
        "$PROG" "$((CLIENTS - joined))" "$CLIENTS" "$ROOM" "$URL" >&2
    shown=0
    for ((k = 1; k <= CLIENTS && shown < 10; k++)); do
        [[ -n ${JOINED[k]:-} ]] && continue
        shown=$((shown + 1))
        if [[ -n ${DEAD[k]:-} ]]; then
            why=$(grep -v '^[[:space:]]*$' "$TMP/err.$k" 2>/dev/null | head -n 3 | tr '\n' ' ')
            printf '  lt%d: websocat exited: %s\n' "$k" "${why:-no message}" >&2
        else
            printf '  lt%d: no welcome within %d s\n' "$k" "$((JOIN_TIMEOUT + CLIENTS / 10))" >&2
        fi
    done
    ((CLIENTS - joined > shown)) && printf '  ...\n' >&2
    printf '%s: check the URL and the room name (1 to 64 of A-Z a-z 0-9 _ - .)\n' "$PROG" >&2
    exit 1
fi
printf 'all %d clients joined in %s s\n' "$CLIENTS" "$(secs "$JOIN_US")"

# ------------------------------------------------------------ sends and deliveries

EXPECTED=$((CLIENTS * MESSAGES))
declare -a DONE_US=()
now_us
GO_US=$NOW
: >"$TMP/go"

# Phase 1 ends when every sender is through (bounded by twice the sending time
# plus DRAIN_TIMEOUT in case a sender is stuck); phase 2 when every client has
# all EXPECTED lines, or DRAIN_TIMEOUT + MESSAGES x INTERVAL after the last send.
send_deadline=$((GO_US + 2 * SEND_US + DRAIN_TIMEOUT * 1000000))
last_send_us=
drain_deadline=
while :; do
    now_us
    if [[ -z $last_send_us ]]; then
        through=0
        for ((k = 1; k <= CLIENTS; k++)); do [[ -e $TMP/sent.$k ]] && through=$((through + 1)); done
        if ((through == CLIENTS || NOW >= send_deadline)); then
            last_send_us=$NOW
            drain_deadline=$((NOW + DRAIN_TIMEOUT * 1000000 + SEND_US))
        fi
    fi
    # progress: lines of this run per client (the exact count comes later)
    left=0
    pend=()
    for ((k = 1; k <= CLIENTS; k++)); do [[ -z ${DONE_US[k]:-} ]] && pend+=("$TMP/out.$k"); done
    if ((${#pend[@]})); then
        while IFS= read -r line; do
            f=${line%:*}
            c=${line##*:}
            k=${f##*.}
            if ((c >= EXPECTED)) || ! kill -0 "${WS_PIDS[k]}" 2>/dev/null; then
                DONE_US[k]=$((NOW - GO_US))
            else
                left=$((left + 1))
            fi
        done < <(grep -c -H -F -e " $RUN_ID\"" -- "${pend[@]}" 2>/dev/null)
    fi
    ((left == 0 && ${#pend[@]} == 0)) && break
    ((left == 0)) && continue
    [[ -n $drain_deadline ]] && ((NOW >= drain_deadline)) && break
    nap "$POLL"
done
now_us
TOTAL_US=$((NOW - GO_US))
for ((k = 1; k <= CLIENTS; k++)); do [[ -z ${DONE_US[k]:-} ]] && DONE_US[k]=$TOTAL_US; done

# Close: stdin EOF makes each websocat send its close and exit.
: >"$TMP/stop"
now_us
close_deadline=$((NOW + CLOSE_TIMEOUT * 1000000))
while :; do
    alive=0
    for ((k = 1; k <= CLIENTS; k++)); do kill -0 "${WS_PIDS[k]}" 2>/dev/null && alive=$((alive + 1)); done
    now_us
    ((alive == 0 || NOW >= close_deadline)) && break
    nap 0.05
done
for ((k = 1; k <= CLIENTS; k++)); do
    kill -0 "${WS_PIDS[k]}" 2>/dev/null && kill -TERM "${WS_PIDS[k]}" 2>/dev/null
    kill -0 "${SENDER_PIDS[k]}" 2>/dev/null && kill -TERM "${SENDER_PIDS[k]}" 2>/dev/null
done
unclean=0
for ((k = 1; k <= CLIENTS; k++)); do
    wait "${WS_PIDS[k]}" 2>/dev/null || unclean=$((unclean + 1))
    wait "${SENDER_PIDS[k]}" 2>/dev/null
done

# ------------------------------------------------------------ report

# One line per client: k received distinct_valid errors rate_limited, from
# out.k. Only top-level "message" events of this run count (a welcome's
# history is skipped; in JSON text a quote is escaped, so "type":"welcome"
# and "type":"message" unescaped can only be real keys).
for ((k = 1; k <= CLIENTS; k++)); do
    awk -v k="$k" -v id="$RUN_ID" -v C="$CLIENTS" -v M="$MESSAGES" '
        BEGIN { pat = "\"text\":\"lt-[0-9]+-[0-9]+ " id "\""; n = 0; good = 0; err = 0; rl = 0 }
        /"type":"welcome"/ { next }
        /"type":"error"/ { err++; if ($0 ~ /"code":"rate_limited"/) rl++; next }
        /"type":"message"/ {
            if (!match($0, pat)) next
            tok = substr($0, RSTART + 8, RLENGTH - 9)   # lt-S-N RUNID
            sub(/ .*/, "", tok)                         # lt-S-N
            n++
            if (seen[tok]++) next
            split(tok, p, "-")
            if (p[2] + 0 >= 1 && p[2] + 0 <= C && p[3] + 0 >= 1 && p[3] + 0 <= M) good++
        }
        END { print k, n, good, err, rl }
    ' "$TMP/out.$k"
done >"$TMP/report"

row() { printf '%-8s %8s %10s %10s %8s %11s %10s\n' "$@"; }
row client sent received expected missing duplicates elapsed_s
t_sent=0 t_recv=0 t_exp=0 t_miss=0 t_dup=0 t_err=0 t_rl=0
while read -r k recv good err rl; do
    sent=$(cat "$TMP/sent.$k" 2>/dev/null || echo 0)
    [[ $sent =~ ^[0-9]+$ ]] || sent=0
    miss=$((EXPECTED - good))
    dup=$((recv - good))
    row "lt$k" "$sent" "$recv" "$EXPECTED" "$miss" "$dup" "$(secs "${DONE_US[k]}")"
    t_sent=$((t_sent + sent)); t_recv=$((t_recv + recv)); t_exp=$((t_exp + EXPECTED))
    t_miss=$((t_miss + miss)); t_dup=$((t_dup + dup)); t_err=$((t_err + err)); t_rl=$((t_rl + rl))
done <"$TMP/report"
row total "$t_sent" "$t_recv" "$t_exp" "$t_miss" "$t_dup" "$(secs "$TOTAL_US")"

if ((t_sent < CLIENTS * MESSAGES)); then
    printf 'note: %d of %d lines could not be sent (a client was disconnected)\n' \
        "$((CLIENTS * MESSAGES - t_sent))" "$((CLIENTS * MESSAGES))"
fi
if ((t_rl > 0)); then
    printf 'note: the server answered %d rate_limited errors: raise -i, or run wshub with --rate-limit 0\n' "$t_rl"
elif ((t_err > 0)); then
    printf 'note: the server sent %d error events\n' "$t_err"
fi
if ((unclean > 0)); then
    printf 'note: %d websocat clients did not exit cleanly after the close\n' "$unclean"
fi
rate=$(awk -v n="$t_recv" -v us="$TOTAL_US" 'BEGIN { if (us > 0) printf "%.0f", n * 1000000 / us; else print 0 }')
if ((t_miss == 0 && t_dup == 0)); then
    printf 'OK: %d lines sent, every client got all %d once (%s message events/s delivered)\n' \
        "$t_sent" "$EXPECTED" "$rate"
    exit 0
fi
printf 'FAILED: %d missing, %d duplicates\n' "$t_miss" "$t_dup"
exit 1
