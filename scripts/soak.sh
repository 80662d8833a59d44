#!/bin/bash
# Soak test: starts wshub (WSHUB_BIN, default build/wshub) with --rate-limit 0
# --binary-rate-limit 0 --binary-byte-rate 0 --max-backlog 1m
# --history-total-bytes 32m --log-level warn and runs tests/soak/soak.py
# against it: thousands of chat clients joining, chatting, leaving and being
# killed, a binary fire-hose with slow consumers, and attackers (oversized
# binary, stalled huge text, tiny-frame floods, same-nick joins, history
# stuffing), every delivery checked; then the server's descriptors and memory
# must come back. Exit status non-zero on any violation, a server crash or a
# sanitizer report.
#
#   scripts/soak.sh [--seconds N] [--port P] [--clients N] [--rooms R]
#   (defaults: 600 s, a free port, 2000 clients, 20 rooms; other options are
#   passed to soak.py, see: /usr/bin/python3 tests/soak/soak.py --help)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${WSHUB_BIN:-$ROOT/build/wshub}
PYTHON=/usr/bin/python3
SECONDS_=600
PORT=
CLIENTS=2000
ROOMS=20
EXTRA=
# history across all rooms: small, so the history stuffers pass it within a
# short run (soak.py checks /stats history_bytes against it)
HISTORY_TOTAL=32m

while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --rooms) ROOMS=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) EXTRA="$EXTRA $1"; shift ;;
    esac
done

[ -x "$BIN" ] || { echo "soak: no server binary at $BIN (run make, or set WSHUB_BIN)" >&2; exit 2; }
[ -n "$PORT" ] || PORT=$($PYTHON -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# the client needs a descriptor per connection; so does the server (it raises its own)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# A sanitizer build keeps freed memory in ASan's quarantine (256 MiB by
# default), which would look like growth: cap it at 16 MiB and allow for it.
# Its allocator also rounds the history stuffers' 24 KiB events up to size
# classes with redzones: allow 1.5 bytes per byte of history.
SLACK=
if grep -q __asan_init "$BIN" 2>/dev/null; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
    SLACK="--rss-slack-mib 64 --history-rss-factor 1.5"
    echo "soak: sanitizer build: ASAN_OPTIONS=$ASAN_OPTIONS, RSS bound +64 MiB + 1.5 x the history total"
fi

LOG=$(mktemp /tmp/wshub-soak-log.XXXXXX)
"$BIN" --host 127.0.0.1 --port "$PORT" --static "$ROOT/static" \
    --rate-limit 0 --binary-rate-limit 0 --binary-byte-rate 0 --max-backlog 1m \
    --history-total-bytes "$HISTORY_TOTAL" --log-level warn >"$LOG" 2>&1 &
PID=$!
# shellcheck disable=SC2317  # called through trap
cleanup() {
    if kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID" 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM

i=0
until $PYTHON -c "import socket,sys; socket.create_connection(('127.0.0.1', $PORT), timeout=0.5).close()" 2>/dev/null; do
    i=$((i + 1))
    if ! kill -0 "$PID" 2>/dev/null || [ $i -gt 100 ]; then
        echo "soak: wshub did not start:" >&2; cat "$LOG" >&2; exit 2
    fi
    sleep 0.1
done
echo "soak: $BIN pid $PID on port $PORT, log $LOG"

status=0
# shellcheck disable=SC2086
$PYTHON "$ROOT/tests/soak/soak.py" --port "$PORT" --pid "$PID" --seconds "$SECONDS_" \
    --clients "$CLIENTS" --rooms "$ROOMS" --history-total-bytes "$HISTORY_TOTAL" $SLACK $EXTRA || status=$?

if ! kill -0 "$PID" 2>/dev/null; then
    echo "soak: FAIL: wshub died during the soak" >&2; status=1
    wait "$PID" || echo "soak: wshub exit status $?" >&2
else
    kill -TERM "$PID"
    code=0; wait "$PID" || code=$?
    if [ $code -ne 0 ]; then echo "soak: FAIL: wshub exited with $code after SIGTERM" >&2; status=1; fi
fi
trap - EXIT INT TERM
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' "$LOG"; then
    echo "soak: FAIL: sanitizer report in the server log:" >&2; cat "$LOG" >&2; status=1
fi
echo "soak: server log ($(wc -l <"$LOG") lines at warn level), last lines:"
tail -n 5 "$LOG" | sed 's/^/  /'
if [ $status -eq 0 ]; then echo "soak: PASS"; rm -f "$LOG"; else echo "soak: FAIL (log kept at $LOG)"; fi
exit $status
